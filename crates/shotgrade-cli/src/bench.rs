//! `shotgrade bench`: decode + preprocess speed, each network's forward time at batch 1 and
//! 16, and end-to-end throughput, all measured in one run on this machine.

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use shotgrade::image::{Limits, Preprocessor};
use shotgrade::models::{Device, ModelConfigs, Models, NetKind};
use shotgrade::{GradeOptions, Grader, GraderSettings, Source};
use shotgrade_synth::{Backdrop, Degradation, ProductShape, Scene, SplitMix64};
use std::time::{Duration, Instant};

use crate::cli::BenchArgs;

#[derive(Serialize)]
struct ForwardTiming {
    net: &'static str,
    batch: usize,
    median_ms: f64,
    per_image_ms: f64,
}

#[derive(Serialize)]
struct BenchReport {
    images: usize,
    mean_megapixels: f64,
    threads: usize,
    decode_preprocess_images_per_s: f64,
    forward: Vec<ForwardTiming>,
    /// Median over `--repeats` passes after one warm-up pass: the rate a long run settles at.
    end_to_end_images_per_s: f64,
    /// The first, cold pass (fresh buffers and thread pools), for comparison.
    end_to_end_first_pass_images_per_s: f64,
    weights: String,
}

/// A varied set of `count` photos of `size × size`, encoded as JPEG quality 90.
fn generated_jpegs(count: usize, size: u32) -> Result<Vec<(String, Vec<u8>)>> {
    let mut rng = SplitMix64::new(2026);
    (0..count)
        .map(|i| {
            let s = size as f32;
            let backdrop = match i % 4 {
                0 => Backdrop::Uniform([255; 3]),
                1 => Backdrop::Gradient {
                    top: [230, 220, 210],
                    bottom: [150, 140, 160],
                },
                2 => Backdrop::Clutter { objects: 25 },
                _ => Backdrop::Room {
                    wall: [200, 190, 170],
                    table: [140, 100, 60],
                },
            };
            let fill = rng.range(0.2, 0.8);
            let scene = Scene {
                width: size,
                height: size,
                backdrop,
                product: Some((
                    ProductShape::Carton,
                    shotgrade::core::BBox::from_center(s / 2.0, s / 2.0, s * fill, s * fill),
                    [200, 50, 40],
                )),
                shadow: true,
                degradation: Degradation {
                    noise_sigma: if i % 3 == 0 { 8.0 } else { 0.0 },
                    blur_radius: 0,
                },
                seed: i as u64,
            };
            let img = shotgrade_synth::render(&scene);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
                .encode_image(&img)?;
            Ok((format!("generated-{i}.jpg"), bytes))
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let images: Vec<(String, Vec<u8>)> = if args.paths.is_empty() {
        eprintln!(
            "generating {} {}×{} JPEGs…",
            args.count, args.size, args.size
        );
        generated_jpegs(args.count, args.size)?
    } else {
        args.paths
            .iter()
            .map(|p| {
                Ok((
                    p.display().to_string(),
                    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
                ))
            })
            .collect::<Result<_>>()?
    };
    anyhow::ensure!(!images.is_empty(), "no images to benchmark");

    let device = Device::flex();
    let models = match &args.weights {
        Some(dir) => Models::load_dir(dir, &device)?,
        None => match Models::embedded(&device) {
            Some(m) => m?,
            None => Models::untrained(ModelConfigs::default(), &device),
        },
    };
    let weights = models.provenance.source.clone();
    let spec = shotgrade::input_spec(&models);
    let limits = Limits::default();

    eprintln!("decode + preprocess…");
    let start = Instant::now();
    let pixels: u64 = images
        .par_iter()
        .map_init(
            || Preprocessor::new(spec),
            |pre, (_, bytes)| match shotgrade::image::load_bytes(bytes, &limits) {
                Ok(loaded) => {
                    std::hint::black_box(pre.prepare(&loaded.rgb));
                    loaded.facts.width as u64 * loaded.facts.height as u64
                }
                Err(_) => 0,
            },
        )
        .sum();
    let decode_rate = images.len() as f64 / start.elapsed().as_secs_f64();

    // Each network as trained, then the position network as the grader runs it (batch norms
    // folded into its convolutions), so the gain of folding is measured in the same run.
    let mut forward = Vec::new();
    let mut models = models;
    let mut time = |models: &Models, kind: NetKind, net: &'static str| {
        for batch in [1usize, 16] {
            eprintln!("forward {net} batch {batch}…");
            models.time_forward(kind, batch); // warm-up
            let t = median(
                (0..args.repeats.max(1))
                    .map(|_| models.time_forward(kind, batch))
                    .collect(),
            );
            let ms = t.as_secs_f64() * 1000.0;
            forward.push(ForwardTiming {
                net,
                batch,
                median_ms: ms,
                per_image_ms: ms / batch as f64,
            });
        }
    };
    for kind in NetKind::ALL {
        time(&models, kind, kind.name());
    }
    models.fold_for_inference();
    time(&models, NetKind::Position, "position-folded");

    eprintln!("end to end…");
    let grader = Grader::new(models, GraderSettings::default())?;
    let sources: Vec<Source> = images
        .iter()
        .map(|(name, bytes)| Source::Bytes {
            name: name.clone(),
            bytes: bytes.clone(),
        })
        .collect();
    // One cold pass, then the median of `repeats` warm ones: a catalogue run is thousands of
    // images, so the warm rate is what it sees (`score` over 10,000 files agrees with it).
    let pass = || {
        let start = Instant::now();
        let rows = grader.grade(&sources, &GradeOptions::default());
        (rows.len(), start.elapsed())
    };
    let (graded, cold) = pass();
    let first_pass = graded as f64 / cold.as_secs_f64();
    let warm = median((0..args.repeats.max(1)).map(|_| pass().1).collect());
    let e2e = graded as f64 / warm.as_secs_f64();

    let report = BenchReport {
        images: images.len(),
        mean_megapixels: pixels as f64 / images.len() as f64 / 1e6,
        threads: rayon::current_num_threads(),
        decode_preprocess_images_per_s: decode_rate,
        forward,
        end_to_end_images_per_s: e2e,
        end_to_end_first_pass_images_per_s: first_pass,
        weights,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} images, {:.2} MP on average, {} threads, weights: {}",
        report.images, report.mean_megapixels, report.threads, report.weights
    );
    println!(
        "decode + preprocess: {:.1} images/s",
        report.decode_preprocess_images_per_s
    );
    println!(
        "{:<15} {:>5} {:>10} {:>12}",
        "NET", "BATCH", "MEDIAN ms", "ms / IMAGE"
    );
    for f in &report.forward {
        println!(
            "{:<15} {:>5} {:>10.2} {:>12.2}",
            f.net, f.batch, f.median_ms, f.per_image_ms
        );
    }
    println!(
        "end to end (decode + 3 nets + scoring, batch 16): {:.1} images/s (median of {} passes after a warm-up; first pass {:.1})",
        report.end_to_end_images_per_s,
        args.repeats.max(1),
        report.end_to_end_first_pass_images_per_s
    );
    Ok(())
}
