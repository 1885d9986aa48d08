//! `shotgrade synth`: writes a labelled synthetic data set.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use shotgrade_synth::{Assets, ComposeSettings, compose};
use std::io::{IsTerminal, Write};

use crate::cli::SynthArgs;

pub fn run(args: SynthArgs) -> Result<()> {
    anyhow::ensure!(
        args.min_side >= 16 && args.min_side <= args.max_side,
        "need 16 <= --min-side <= --max-side"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.degrade_probability),
        "--degrade-probability must be within 0..1"
    );
    let assets = Assets::load(&args.assets, 640, 1280)
        .with_context(|| format!("loading assets from {}", args.assets.display()))?;
    eprintln!(
        "{} cut-outs, {} scene / {} plain / {} busy backgrounds",
        assets.cutouts.len(),
        assets.backgrounds.scenes.len(),
        assets.backgrounds.plain.len(),
        assets.backgrounds.busy.len()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let settings = ComposeSettings {
        min_side: args.min_side,
        max_side: args.max_side,
        degrade_probability: args.degrade_probability,
        ..ComposeSettings::default()
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(args.count)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} · {per_sec} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let manifest_path = args.out.join("manifest.jsonl");
    let mut manifest = std::io::BufWriter::new(
        std::fs::File::create(&manifest_path)
            .with_context(|| format!("cannot create {}", manifest_path.display()))?,
    );
    let seeds: Vec<u64> = (0..args.count).map(|i| args.seed + i).collect();
    for chunk in seeds.chunks(64) {
        let lines: Vec<Result<String>> = chunk
            .par_iter()
            .map(|&seed| {
                let sample = compose(&assets, seed, &settings);
                // PNG keeps the sample exactly as labelled (it already went through its JPEG
                // round trip); JPEG is what uploads look like.
                let name = match args.jpeg {
                    Some(_) => format!("{seed:08}.jpg"),
                    None => format!("{seed:08}.png"),
                };
                let path = args.out.join(&name);
                let written = match args.jpeg {
                    Some(quality) => std::fs::File::create(&path)
                        .map_err(image::ImageError::IoError)
                        .and_then(|f| {
                            image::codecs::jpeg::JpegEncoder::new_with_quality(
                                std::io::BufWriter::new(f),
                                quality,
                            )
                            .encode_image(&sample.image)
                        }),
                    None => sample.image.save(&path),
                };
                written.with_context(|| format!("cannot write {}", path.display()))?;
                let mut value = serde_json::to_value(&sample.label)?;
                value["file"] = serde_json::Value::String(name);
                Ok(serde_json::to_string(&value)?)
            })
            .collect();
        for line in lines {
            writeln!(manifest, "{}", line?)?;
        }
        bar.inc(chunk.len() as u64);
    }
    manifest.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} images and {}",
        args.count,
        manifest_path.display()
    );
    Ok(())
}
