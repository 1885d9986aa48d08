//! Chooses the box-snapping settings ([`shotgrade::image::SnapSettings`]) on one part of the
//! labelled real photos: grades the part once with the detector's own boxes, then snaps them
//! under every setting of a small grid and prints the main box's mean IoU per group (white,
//! non-white, frame-filling, on-model) as `shotgrade eval real` reports it.
//!
//! `cargo run --release -p shotgrade-cli --example snap_sweep -- [PART]` (PART: `validation`,
//! the default, or `train`; choosing on `test` would leak it).

use rayon::prelude::*;
use shotgrade::Row;
use shotgrade::core::{BBox, iou};
use shotgrade::image::{Limits, RgbImage, SnapSettings, snap_to_backdrop};
use shotgrade::models::{Device, Models};
use shotgrade::{GradeOptions, Grader, GraderSettings, Source};
use shotgrade_synth::labels::{Part, Person, load_labelled};
use shotgrade_train::eval::{ProbeCutouts, frame_filling_probes, score_probes};
use shotgrade_train::real_metrics::{BoxScores, RealOutcome, score_real};
use std::path::Path;

struct Case {
    path: String,
    rgb: RgbImage,
    truth: BBox,
    detected: Option<BBox>,
    /// The photo's labels as `eval real` scores them; `predicted_box` is filled per variant.
    outcome: RealOutcome,
}

/// `eval real`'s box groups for one set of boxes (one per case), and the mean IoU over all.
fn box_scores(cases: &[Case], boxes: &[Option<BBox>]) -> (BoxScores, f32) {
    let outcomes: Vec<RealOutcome> = cases
        .iter()
        .zip(boxes)
        .map(|(c, b)| RealOutcome {
            predicted_box: *b,
            ..c.outcome.clone()
        })
        .collect();
    let b = score_real(&outcomes).boxes;
    let all = (b.white.mean * b.white.count as f32 + b.non_white.mean * b.non_white.count as f32)
        / (b.white.count + b.non_white.count).max(1) as f32;
    (b, all)
}

/// Each case's detector box snapped under `settings` (kept where snapping declines).
fn snapped(cases: &[Case], settings: &SnapSettings) -> Vec<Option<BBox>> {
    cases
        .par_iter()
        .map(|c| {
            c.detected
                .map(|d| snap_to_backdrop(&c.rgb, &d, settings).unwrap_or(d))
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let part = match std::env::args().nth(1).as_deref() {
        None | Some("validation") => Part::Validation,
        Some("train") => Part::Train,
        Some(other) => anyhow::bail!("part must be validation or train, not {other}"),
    };
    let assets = Path::new("../shared/assets");
    let photos: Vec<_> = load_labelled(Path::new("data/real"))?
        .into_iter()
        .filter(|p| p.part == part && p.bbox.is_some())
        .collect();
    let models = Models::load_dir(Path::new("models"), &Device::flex())?;
    let settings = GraderSettings {
        snap_box: None,
        ..GraderSettings::default()
    };
    let grader = Grader::new(models, settings)?;
    let sources: Vec<Source> = photos
        .iter()
        .map(|p| Source::File(assets.join(&p.path)))
        .collect();
    let rows = grader.grade(&sources, &GradeOptions::default());
    let cases: Vec<Case> = photos
        .par_iter()
        .zip(&rows)
        .filter_map(|(p, row)| {
            let Row::Scored(s) = row else { return None };
            let rgb = shotgrade::image::load_path(&assets.join(&p.path), &Limits::default())
                .ok()?
                .rgb;
            let outcome = RealOutcome {
                source: p.source.clone(),
                truth_class: p.background,
                predicted_class: None,
                truth_box: p.bbox,
                predicted_box: None,
                fills_frame: p.fills_frame(rgb.width(), rgb.height()),
                on_model: p.person == Person::Worn,
                truth_cut_off: p.cut_off,
                predicted_cut_off: None,
            };
            Some(Case {
                path: p.path.clone(),
                truth: p.bbox?,
                detected: s.position.main.as_ref().map(|m| m.bbox),
                outcome,
                rgb,
            })
        })
        .collect();
    println!("{} boxed photos of the part", cases.len());
    let report = |name: &str, boxes: &[Option<BBox>]| {
        let (b, all) = box_scores(&cases, boxes);
        println!(
            "{name:<34} white {:.4}  non-white {:.4}  frame-filling {:.4}  on-model {:.4}  all {all:.4}",
            b.white.mean, b.non_white.mean, b.frame_filling.mean, b.on_model_non_white.mean,
        );
    };
    let detector: Vec<Option<BBox>> = cases.iter().map(|c| c.detected).collect();
    // Frame-filling probes of training cut-outs (the held-out ones are the test suite's).
    let probes = frame_filling_probes(
        Path::new("models/position.safetensors"),
        assets,
        ProbeCutouts::Training,
        120,
    )?;
    let probe_line = |snap: Option<&SnapSettings>| {
        ["white", "off-white", "textured"]
            .iter()
            .map(|kind| {
                let f = score_probes(probes.iter().filter(|p| p.kind == *kind), snap);
                format!("{:.3}/{:.3}", f.within_5_points, f.mean_iou)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "probes (within 5 points / IoU: white, off-white, textured), detector: {}",
        probe_line(None)
    );
    report("detector", &detector);
    if std::env::var_os("SNAP_DEBUG").is_some() {
        // Photos the default settings make worse, worst first.
        let s = SnapSettings::default();
        let mut worse: Vec<(f32, String)> = cases
            .iter()
            .filter_map(|c| {
                let d = c.detected?;
                let b = snap_to_backdrop(&c.rgb, &d, &s)?;
                let (before, after) = (iou(&d, &c.truth), iou(&b, &c.truth));
                Some((
                    after - before,
                    format!(
                        "{} {}x{} truth {:?} detector {:?} ({before:.3}) snapped {:?} ({after:.3})",
                        c.path,
                        c.rgb.width(),
                        c.rgb.height(),
                        c.truth,
                        d,
                        b
                    ),
                ))
            })
            .collect();
        worse.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, line) in worse.iter().take(25) {
            println!("{line}");
        }
    }
    let mut grid = Vec::new();
    for grid_side in [128u32, 160, 192, 256] {
        for tolerance in [18u8, 24, 32] {
            for step in [4u8, 6, 8] {
                for min_agreement in [0.75f32, 0.8] {
                    grid.push(SnapSettings {
                        grid_side,
                        tolerance,
                        step,
                        min_agreement,
                        ..SnapSettings::default()
                    });
                }
            }
        }
    }
    grid.insert(0, SnapSettings::default());
    let mut results: Vec<(f32, String, Vec<Option<BBox>>)> = grid
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let boxes = snapped(&cases, s);
            let changed = boxes.iter().zip(&detector).filter(|(a, b)| a != b).count();
            let name = format!(
                "{}grid {} tol {} step {} drift {} plain {} agree {} ({changed})",
                if k == 0 { "DEFAULT " } else { "" },
                s.grid_side,
                s.tolerance,
                s.step,
                s.max_drift,
                s.min_plain_border,
                s.min_agreement,
            );
            let (_, all) = box_scores(&cases, &boxes);
            (all, format!("{name} probes {}", probe_line(Some(s))), boxes)
        })
        .collect();
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, name, boxes) in results.iter().take(3) {
        report(name, boxes);
    }
    for (all, name, _) in results.iter().take(200) {
        println!("{all:.4} {name}");
    }
    if let Some((all, name, _)) = results.iter().find(|(_, n, _)| n.starts_with("DEFAULT")) {
        println!("{all:.4} {name}");
    }
    Ok(())
}
