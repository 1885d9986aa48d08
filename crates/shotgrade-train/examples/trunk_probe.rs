//! Which input side and view suit the pretrained trunk's background head: the labelled photos
//! through the frozen EfficientNet-Lite0 once per side, prepared as the grader prepares them,
//! then linear heads over the pooled stages 5–7, the border statistics, or both, fitted on
//! `train` and scored on `validation` (and `test`, for the record).
//!
//! ```sh
//! cargo run --release -p shotgrade-train --example trunk_probe -- [SIZE …]
//! ```
//! Needs the trunk's weights (`shotgrade train trunk`) and `../shared/assets`. `SQUASH=1`
//! squashes photos to the square instead of letterboxing them on white, `COMPOSITES=N` adds N
//! composites to the training photos (each of weight `COMPOSITE_WEIGHT`, default 1),
//! `BOTH_ONLY=1` fits only the shipped kind of head (trunk + border), `PEOPLE=N` adds N copies of each person matted off the `train` on-model photos to the
//! composites' cut-outs, `MIRROR=1` adds each training photo mirrored, `FINAL=1` also prints the test accuracy (for
//! the record, once the choice is made on validation).

use burn::tensor::Device;
use shotgrade_image::BackgroundView;
use shotgrade_synth::labels::Part;
use shotgrade_train::trunk::{cached_weights, imagenet_background};
use shotgrade_train::trunk_head::{
    FeatureSettings, composite_features, fit_and_score, labelled_features,
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
    let model =
        imagenet_background(&pth, &device).expect("trunk weights: run shotgrade train trunk");
    let mut log = |l: &str| eprintln!("{l}");
    let view = if std::env::var_os("SQUASH").is_some() {
        BackgroundView::Squash
    } else {
        BackgroundView::LetterboxWhite
    };
    for size in sizes {
        let settings = FeatureSettings {
            size,
            view,
            mirror_train: std::env::var_os("MIRROR").is_some(),
        };
        let started = std::time::Instant::now();
        let mut features = labelled_features(
            &model,
            Path::new("data/real"),
            Path::new("../shared/assets"),
            settings,
            &device,
            &mut log,
        )
        .expect("features");
        let composites: usize = std::env::var("COMPOSITES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let weight: f32 = std::env::var("COMPOSITE_WEIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.0);
        if composites > 0 {
            let mut assets = shotgrade_synth::Assets::load(Path::new("../shared/assets"), 320, 640)
                .expect("assets");
            shotgrade_train::trunk_head::drop_held_out_cutouts(&mut assets, Path::new("data/real"))
                .expect("labels");
            let people: usize = std::env::var("PEOPLE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if people > 0 {
                shotgrade_train::trunk_head::add_people(
                    &mut assets,
                    Path::new("data/real"),
                    Path::new("../shared/assets"),
                    people,
                    &mut log,
                )
                .expect("people");
            }
            features.extend(
                composite_features(&model, &assets, 1, composites, weight, settings, &device)
                    .expect("composites"),
            );
        }
        println!(
            "{size} px, {view:?}: {} photos and composites in {:.0} s",
            features.len(),
            started.elapsed().as_secs_f64()
        );
        let heads: &[(bool, bool, &str)] = if std::env::var_os("BOTH_ONLY").is_some() {
            &[(true, true, "trunk + border")]
        } else {
            &[
                (false, true, "border statistics"),
                (true, false, "trunk"),
                (true, true, "trunk + border"),
            ]
        };
        for &(trunk, border, name) in heads {
            for l2 in [1e-3f32, 1e-2, 3e-2] {
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
                // Test accuracy only for the record of a choice already made (FINAL=1):
                // choices between settings look at validation alone.
                let test = if std::env::var_os("FINAL").is_some() {
                    format!("  test {:.1} %", 100.0 * scores[1].accuracy)
                } else {
                    String::new()
                };
                println!(
                    "  {name:<18} l2 {l2:<6} validation {:.1} %{test}   {}",
                    100.0 * scores[0].accuracy,
                    sources.join(", ")
                );
            }
        }
    }
}
