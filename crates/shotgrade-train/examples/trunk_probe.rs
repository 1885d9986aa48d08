//! Which trunk features classify the background of real photos: the labelled photos through
//! the frozen EfficientNet-Lite0 once per cut and input side, then linear heads over trunk
//! features, border statistics, or both, fitted on `train` and scored on `validation` (and
//! `test`, for the record).
//!
//! ```sh
//! cargo run --release -p shotgrade-train --example trunk_probe -- [SIZE …]
//! ```
//! Needs the trunk's weights (`shotgrade train trunk`) and `../shared/assets`. `NO_HEAD=1` skips
//! the pooled 1280-d head features, `COMPOSITES=N` adds N composites to the training photos,
//! `MIRROR=1` adds each training photo mirrored.

use burn::tensor::Device;
use shotgrade_synth::labels::Part;
use shotgrade_train::trunk::{cached_weights, load_imagenet_trunk};
use shotgrade_train::trunk_head::{
    FeatureSettings, TrunkCut, composite_features, fit_and_score, labelled_features,
};
use std::path::Path;

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![224] } else { sizes };
    let home = std::env::var_os("HOME").expect("HOME");
    let pth = cached_weights(&Path::new(&home).join(".cache/shotgrade/efficientnet"));
    let device = Device::flex();
    let net = load_imagenet_trunk(&pth, &device).expect("trunk weights: run shotgrade train trunk");
    let mut log = |l: &str| eprintln!("{l}");
    for size in sizes {
        let cuts: &[TrunkCut] = if std::env::var_os("NO_HEAD").is_some() {
            &[TrunkCut::Stages567]
        } else {
            &[TrunkCut::Stages567, TrunkCut::Head]
        };
        for &cut in cuts {
            let started = std::time::Instant::now();
            let features = labelled_features(
                &net,
                Path::new("data/real"),
                Path::new("../shared/assets"),
                FeatureSettings {
                    size,
                    cut,
                    mirror_train: std::env::var_os("MIRROR").is_some(),
                },
                &device,
                &mut log,
            )
            .expect("features");
            let composites: usize = std::env::var("COMPOSITES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut features = features;
            if composites > 0 {
                let assets = shotgrade_synth::Assets::load(Path::new("../shared/assets"), 320, 640)
                    .expect("assets");
                features.extend(
                    composite_features(&net, &assets, 1, composites, size, cut, &device)
                        .expect("composites"),
                );
            }
            println!(
                "{size} px, {cut:?}: {} photos and composites in {:.0} s",
                features.len(),
                started.elapsed().as_secs_f64()
            );
            for (trunk, border, name) in [
                (false, true, "border statistics"),
                (true, false, "trunk"),
                (true, true, "trunk + border"),
            ] {
                if !trunk && cut == TrunkCut::Head {
                    continue;
                }
                for l2 in [1e-3f32, 1e-2] {
                    let (_, scores) = fit_and_score(
                        &features,
                        trunk,
                        border,
                        l2,
                        &[Part::Validation, Part::Test],
                    )
                    .expect("fit");
                    let sources: Vec<String> = scores[0]
                        .per_source
                        .iter()
                        .map(|(s, n, a)| format!("{s} {:.0}% ({n})", 100.0 * a))
                        .collect();
                    println!(
                        "  {name:<18} l2 {l2:<6} validation {:.1} %  test {:.1} %   {}",
                        100.0 * scores[0].accuracy,
                        100.0 * scores[1].accuracy,
                        sources.join(", ")
                    );
                }
            }
        }
    }
}
