//! Frame-filling probes of products no training run composes (issue 40): the held-out
//! cut-outs (`shotgrade_synth::assets::HELD_OUT_CUTOUT_SOURCES`: printed cartons, bottles and
//! produce) scaled to span 85–98 % of an 800 px frame on pure white, off-white and texture
//! photos, boxed by the shipped position network and snapped to the pixels as the grader does.
//!
//! The floors are the shipped detector's measured level less a margin — a guard against a
//! detector that boxes frame-filling products worse, not the bar (95 % within 5
//! points), which the detector does not meet yet. Needs `../shared/assets` (or
//! `SHOTGRADE_ASSETS`); without it the test says so and passes.

use shotgrade_image::SnapSettings;
use shotgrade_train::eval::held_out_frame_filling;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn assets() -> Option<PathBuf> {
    let path = std::env::var_os("SHOTGRADE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/assets"));
    path.join("cutouts/index.csv").exists().then_some(path)
}

#[test]
fn held_out_products_that_fill_the_frame_are_boxed_at_the_measured_level() {
    let Some(assets) = assets() else {
        eprintln!("../shared/assets not found (set SHOTGRADE_ASSETS): skipped");
        return;
    };
    let results = held_out_frame_filling(
        &repo().join("models/position.safetensors"),
        &assets,
        40,
        Some(&SnapSettings::default()),
    )
    .expect("probes");
    // (kind, least share within 5 points of the true span, least mean IoU): measured
    // 1.000 / 0.974, 0.950 / 0.958 and 0.825 / 0.891 with the detector shipped 2026-12-07 and
    // the grader's snapping (the network's own boxes: 0.875 / 0.911, 0.700 / 0.891, 0.625 /
    // 0.854), less four probes and 0.03 of IoU.
    let floors = [
        ("white", 0.9, 0.94),
        ("off-white", 0.85, 0.92),
        ("textured", 0.725, 0.86),
    ];
    assert_eq!(results.len(), floors.len());
    for ((kind, probes), (name, within, iou)) in results.iter().zip(floors) {
        eprintln!(
            "{kind}: {} probes, within 5 points {:.3}, mean span error {:.2}, mean IoU {:.3}",
            probes.probes, probes.within_5_points, probes.mean_span_error, probes.mean_iou
        );
        assert_eq!(*kind, name);
        assert_eq!(probes.probes, 40, "{kind}");
        assert!(probes.within_5_points >= within, "{kind}: {probes:?}");
        assert!(probes.mean_iou >= iou, "{kind}: {probes:?}");
    }
}
