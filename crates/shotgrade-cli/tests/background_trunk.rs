//! `shotgrade train background-trunk` end to end on a tiny labelled set: plain white and black
//! backdrops and busy scenes, which the ImageNet trunk plus the border statistics must tell
//! apart; the written model then grades a photo through `shotgrade score`. Needs the trunk's
//! cached weights (`shotgrade train trunk`, which `.ci/run` runs first); skips without them.

mod common;

use common::{bin, repo_root};
use image::{Rgb, RgbImage};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn cache() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("HOME")?).join(".cache/shotgrade/efficientnet");
    dir.join("efficientnet-lite0-57934424.pth")
        .exists()
        .then_some(dir)
}

/// A photo of backdrop `kind` (`white`, `black` or `cluttered`) with a grey product in the
/// middle; `i` varies the product and the clutter.
fn photo(kind: &str, i: u32) -> RgbImage {
    RgbImage::from_fn(160, 120, |x, y| {
        let product = (50 + i..110 + i).contains(&x) && (30..90).contains(&y);
        if product {
            return Rgb([120, 90 + (i * 7 % 60) as u8, 60]);
        }
        match kind {
            "white" => Rgb([255, 255, 255]),
            "black" => Rgb([0, 0, 0]),
            _ => {
                let v = ((x * 37 + y * 91 + i * 13) % 251) as u8;
                Rgb([v, v.wrapping_mul(3), 255 - v])
            }
        }
    })
}

/// Writes the photos and `data/real`-style labels (split.csv and labels/t.csv): per kind, six
/// `train` photos and three `validation` photos, each its own product family.
fn labelled_set(root: &Path) -> (PathBuf, PathBuf) {
    let (assets, labels) = (root.join("assets"), root.join("labels"));
    std::fs::create_dir_all(assets.join("real/t")).expect("mkdir");
    std::fs::create_dir_all(labels.join("labels")).expect("mkdir");
    let mut split = String::from("path,source,family,part\n");
    let mut rows = String::from("path,background,person,cut_off,overlay,box,box_method,note\n");
    for kind in ["white", "black", "cluttered"] {
        for i in 0..9u32 {
            let path = format!("real/t/{kind}{i}.png");
            photo(kind, i).save(assets.join(&path)).expect("png");
            let part = if i < 6 { "train" } else { "validation" };
            writeln!(split, "{path},t,{kind}{i},{part}").expect("write");
            writeln!(rows, "{path},{kind},none,no,none,,,").expect("write");
        }
    }
    std::fs::write(labels.join("split.csv"), split).expect("split");
    std::fs::write(labels.join("labels/t.csv"), rows).expect("labels");
    (assets, labels)
}

#[test]
fn a_size_off_the_trunk_stride_is_refused_before_anything_is_fetched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let run = bin()
        .args(["train", "background-trunk", "--size", "48", "--cache"])
        .arg(dir.path().join("no-cache"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("multiple of 32"), "{stderr}");
    assert!(!out.exists() && !dir.path().join("no-cache").exists());
}

#[test]
fn the_fitted_model_tells_plain_from_busy_backdrops_and_grades_with_them() {
    let Some(cache) = cache() else {
        eprintln!("trunk weights not cached (shotgrade train trunk): skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (assets, labels) = labelled_set(dir.path());
    let out = dir.path().join("out");
    let run = bin()
        .args([
            "train",
            "background-trunk",
            "--size",
            "64",
            "--l2",
            "0.01,0.1",
            "--composites",
            "0",
        ])
        .arg("--cache")
        .arg(&cache)
        .arg("--real-labels")
        .arg(&labels)
        .arg("--assets")
        .arg(&assets)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    assert_eq!(report["train_photos"], 18);
    assert_eq!(report["validation_photos"], 9);
    assert_eq!(report["tried"].as_array().map(Vec::len), Some(2));
    let accuracy = report["validation_accuracy"].as_f64().expect("accuracy");
    assert!(accuracy >= 8.0 / 9.0, "validation accuracy {accuracy}");
    assert!(out.join("background-trunk.metrics.json").exists());

    // The model grades: beside the shipped position and experience networks, a white
    // packshot's background reads white and a busy one's does not.
    let weights = dir.path().join("weights");
    std::fs::create_dir_all(&weights).expect("mkdir");
    std::fs::copy(
        out.join("background.safetensors"),
        weights.join("background.safetensors"),
    )
    .expect("copy");
    for net in ["position", "experience"] {
        let file = format!("{net}.safetensors");
        std::fs::copy(repo_root().join("models").join(&file), weights.join(&file)).expect("copy");
    }
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    photo("white", 20)
        .save(photos.join("a_white.png"))
        .expect("png");
    photo("cluttered", 20)
        .save(photos.join("b_busy.png"))
        .expect("png");
    let scored = bin()
        .arg("score")
        .arg(&photos)
        .arg("--weights")
        .arg(&weights)
        .args(["--format", "jsonl"])
        .output()
        .expect("score");
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    let rows = common::jsonl(&scored);
    let class = |i: usize| rows[i]["background"]["class"].as_str().map(str::to_string);
    assert_eq!(class(0).as_deref(), Some("white"), "{:?}", rows[0]);
    assert_eq!(class(1).as_deref(), Some("cluttered"), "{:?}", rows[1]);
}
