//! `shotgrade models`, `shotgrade config`, and the shared loading of weights and config.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use shotgrade::core::{ProfileSet, ScoringConfig};
use shotgrade::image::BACKDROP_FEATURES;
use shotgrade::models::{Device, ModelConfigs, Models};
use std::path::Path;

use crate::cli::{ConfigArgs, ModelsArgs, ProfilesArgs, ProfilesFileArgs, WeightsArgs};

/// The scoring configuration: defaults, merged with a TOML file if given.
pub fn load_scoring_config(path: Option<&Path>) -> Result<ScoringConfig> {
    match path {
        None => Ok(ScoringConfig::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            ScoringConfig::from_toml_str(&text)
                .with_context(|| format!("in config file {}", p.display()))
        }
    }
}

/// The built-in profiles, extended with the user's file when given.
pub fn load_profiles(args: &ProfilesFileArgs) -> Result<ProfileSet> {
    let mut set = ProfileSet::builtin();
    if let Some(p) = &args.file {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read profiles file {}", p.display()))?;
        set.extend_from_toml(&text)
            .with_context(|| format!("in profiles file {}", p.display()))?;
    }
    Ok(set)
}

/// `shotgrade profiles`: a list, one profile in full, or the built-in file.
pub fn profiles(args: ProfilesArgs) -> Result<()> {
    if args.print {
        print!("{}", shotgrade::core::profile::BUILTIN_PROFILES);
        return Ok(());
    }
    let set = load_profiles(&args.profiles)?;
    let Some(name) = args.name else {
        println!("{:<16} TITLE", "PROFILE");
        for (name, p) in set.iter() {
            println!("{name:<16} {}", p.title);
        }
        println!("\nShow one in full with `shotgrade profiles NAME`.");
        return Ok(());
    };
    let p = set.get(&name)?;
    println!("{name}: {}\nsource: {}", p.title, p.source);
    if !p.notes.is_empty() {
        println!("notes: {}", p.notes);
    }
    if !p.formats.is_empty() {
        println!("format: one of {}", p.formats.join(", "));
    }
    if !p.background.is_empty() {
        let classes: Vec<&str> = p.background.iter().map(|c| c.name()).collect();
        println!("background: one of {}", classes.join(", "));
    }
    for (measure, b) in &p.checks {
        let limit = |label: &str, v: Option<f64>| v.map(|v| format!("{label} {v}"));
        let parts: Vec<String> = [
            limit("fail below", b.min),
            limit("fail above", b.max),
            limit("warn below", b.warn_min),
            limit("warn above", b.warn_max),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!("{}: {}", measure.name(), parts.join(", "));
    }
    Ok(())
}

/// Loads the weights the user asked for, refusing untrained ones unless allowed.
pub fn load_models(args: &WeightsArgs) -> Result<Models> {
    let device = Device::flex();
    let models = match &args.weights {
        Some(dir) => Models::load_dir(dir, &device)?,
        None => match Models::embedded(&device) {
            Some(loaded) => loaded.context("the weights built into this binary are unusable")?,
            None => bail!(
                "no trained weights: this build has no default weights (models/ held none when it was \
                 built). Train them with `shotgrade train` or pass --weights DIR with trained weights. \
                 shotgrade will not print scores from untrained networks."
            ),
        },
    };
    if !models.provenance.trained && !args.allow_untrained {
        bail!(
            "the weights in {} were never trained, so their scores would mean nothing; use trained \
             weights (or --allow-untrained to test the pipeline only)",
            models.provenance.source
        );
    }
    Ok(models)
}

#[derive(Serialize)]
struct NetInfo {
    net: &'static str,
    input: String,
    parameters: usize,
    mmacs: f64,
    gflops: f64,
}

#[derive(Serialize)]
struct ModelsInfo {
    weights: String,
    trained: bool,
    sha256: String,
    nets: Vec<NetInfo>,
}

pub fn models(args: ModelsArgs) -> Result<()> {
    let device = Device::flex();
    // Showing the architecture needs no trained weights: fall back to a fresh initialisation.
    let models = match (&args.weights.weights, Models::embedded(&device)) {
        (Some(dir), _) => Models::load_dir(dir, &device)?,
        (None, Some(loaded)) => loaded?,
        (None, None) => Models::untrained(ModelConfigs::default(), &device),
    };
    let (b, p, e) = models.input_sizes();
    let [pb, pp, pe] = models.param_counts();
    let info = |net, input: String, parameters, macs: u64| NetInfo {
        net,
        input,
        parameters,
        mmacs: macs as f64 / 1e6,
        gflops: 2.0 * macs as f64 / 1e9,
    };
    let nets = vec![
        info(
            "background",
            {
                let config = &models.configs.background;
                if config.is_pretrained() {
                    format!(
                        "3×{b}×{b} letterbox, EfficientNet-Lite0 + {BACKDROP_FEATURES} border statistics"
                    )
                } else {
                    let input = match (config.has_median_colours(), config.has_colour_spread()) {
                        (true, true) => format!("9×{b}×{b} squash+medians+spreads"),
                        (true, false) => format!("6×{b}×{b} squash+medians"),
                        _ => format!("3×{b}×{b} squash"),
                    };
                    let input = match models.background.members.len() {
                        1 => input,
                        n => format!("{input} ×{n} snapshots"),
                    };
                    match (config.backdrop_level, config.backdrop_trees) {
                        (Some(w), _) => {
                            format!("{input} + {BACKDROP_FEATURES} border statistics (MLP, {w})")
                        }
                        (None, Some(n)) => {
                            format!("{input} + {BACKDROP_FEATURES} border statistics ({n} trees)")
                        }
                        (None, None) => input,
                    }
                }
            },
            pb,
            models.background.macs(b),
        ),
        info(
            "position",
            format!("3×{p}×{p} letterbox"),
            pp,
            models.position.macs(p),
        ),
        info(
            "experience",
            format!("3×{e}×{} global+detail", 2 * e),
            pe,
            models.experience.macs(e),
        ),
    ];
    let report = ModelsInfo {
        weights: if models.provenance.source == "random" {
            "none (untrained initialisation shown)".into()
        } else {
            models.provenance.source.clone()
        },
        trained: models.provenance.trained,
        sha256: models.provenance.sha256.clone(),
        nets,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "weights: {}  trained: {}  sha256: {}",
        report.weights,
        report.trained,
        if report.sha256.is_empty() {
            "-"
        } else {
            &report.sha256
        }
    );
    // The input column is as wide as its longest entry (a second stage lengthens it).
    let w = report
        .nets
        .iter()
        .map(|n| n.input.chars().count())
        .max()
        .unwrap_or(0)
        .max(26);
    println!(
        "{:<11} {:<w$} {:>11} {:>9} {:>8}",
        "NET", "INPUT", "PARAMETERS", "MMACs", "GFLOPs"
    );
    for n in &report.nets {
        println!(
            "{:<11} {:<w$} {:>11} {:>9.1} {:>8.3}",
            n.net, n.input, n.parameters, n.mmacs, n.gflops
        );
    }
    let total: f64 = report.nets.iter().map(|n| n.gflops).sum();
    println!(
        "{:<11} {:<w$} {:>11} {:>9} {:>8.3}",
        "total",
        "",
        report.nets.iter().map(|n| n.parameters).sum::<usize>(),
        "",
        total
    );
    Ok(())
}

pub fn config(args: ConfigArgs) -> Result<()> {
    let config = load_scoring_config(args.config.as_deref())?;
    if args.print || args.config.is_none() {
        print!("{}", config.to_toml_string());
    } else {
        println!(
            "config OK: {} scenes, default scene `{}`",
            config.scenes.len(),
            config.default_scene
        );
    }
    Ok(())
}

pub fn init_weights(out: &Path) -> Result<()> {
    let models = Models::untrained(ModelConfigs::default(), &Device::flex());
    models.save_dir(out, false, &[])?;
    eprintln!("wrote untrained weights to {}", out.display());
    Ok(())
}

pub fn make_examples(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, scene) in shotgrade_synth::example_scenes() {
        let img = shotgrade_synth::render(&scene);
        let path = out.join(name);
        if name.ends_with(".png") {
            // Cut-out: everything that is still backdrop becomes transparent.
            let rgba = image::RgbaImage::from_fn(img.width(), img.height(), |x, y| {
                let p = img.get_pixel(x, y).0;
                let alpha = if p == [255, 255, 255] { 0 } else { 255 };
                image::Rgba([p[0], p[1], p[2], alpha])
            });
            rgba.save(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        } else {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 88)
                .encode_image(&img)
                .with_context(|| format!("cannot encode {}", path.display()))?;
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
