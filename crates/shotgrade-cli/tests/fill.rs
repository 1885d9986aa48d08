//! The fill rules of the marketplace profiles on the shipped weights, through the real binary:
//! a compliant packshot whose product spans 94 % of a pure-white 1600 px frame passes
//! `amazon-main` (the detector alone boxed a print on such a product and failed it), and the
//! same product at 60 % fails the fill rule with the fill it has (issue 40).

mod common;

use common::{bin, jsonl};
use image::{ImageEncoder, Rgb, RgbImage};

/// A 1600 px pure-white PNG with a carton spanning `span` of the frame's height (0.7 × that
/// wide), shaded left to right, with a printed band and a dark round logo on its face, and a
/// soft contact shadow under it. Returns the PNG and the carton's `[x0, y0, x1, y1]`.
fn carton(span: f32) -> (Vec<u8>, [u32; 4]) {
    const SIDE: u32 = 1600;
    let h = (SIDE as f32 * span).round() as u32;
    let w = (h as f32 * 0.7).round() as u32;
    let (x0, y0) = ((SIDE - w) / 2, (SIDE - h) / 2);
    let (x1, y1) = (x0 + w, y0 + h);
    let (cx, cy) = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
    let img = RgbImage::from_fn(SIDE, SIDE, |x, y| {
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            let t = (x - x0) as f32 / w as f32;
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            if dx * dx + dy * dy < (0.28 * w as f32).powi(2) {
                Rgb([20, 30, 70])
            } else if ((y - y0) as f32 / h as f32 - 0.75).abs() < 0.06 {
                Rgb([230, 200, 40])
            } else {
                let v = |c: f32| (c * (1.0 - 0.35 * t)) as u8;
                Rgb([v(200.0), v(60.0), v(50.0)])
            }
        } else if y >= y1 && y < y1 + 12 && x + 20 > x0 && x < x1 + 20 {
            // A contact shadow fading out below the carton.
            let fade = (y - y1) as f32 / 12.0;
            let v = (240.0 + 15.0 * fade) as u8;
            Rgb([v, v, v])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(img.as_raw(), SIDE, SIDE, image::ExtendedColorType::Rgb8)
        .expect("png");
    (png, [x0, y0, x1, y1])
}

/// Scores `png` with `--profile amazon-main` and returns the row.
fn score(png: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("carton.png");
    std::fs::write(&path, png).expect("write");
    let out = bin()
        .args([
            "score",
            "--quiet",
            "--profile",
            "amazon-main",
            "--format",
            "jsonl",
        ])
        .arg(&path)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    jsonl(&out).pop().expect("one row")
}

/// The `product_fill` check of a row's profile and the fill it reports, in percent.
fn fill_check(row: &serde_json::Value) -> (String, f64) {
    let checks = row["profile"]["checks"].as_array().expect("checks");
    let fill = checks
        .iter()
        .find(|c| c["check"] == "product_fill")
        .expect("product_fill check");
    let measured = fill["measured"].as_str().expect("measured");
    let percent: f64 = measured
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|e| panic!("fill {measured:?}: {e}"));
    (fill["status"].as_str().unwrap_or("").to_string(), percent)
}

#[test]
fn a_compliant_frame_filling_packshot_passes_amazon_main() {
    let (png, b) = carton(0.94);
    let row = score(&png);
    let (status, fill) = fill_check(&row);
    assert_eq!(status, "pass", "{row}");
    assert!(
        (91.0..=97.0).contains(&fill),
        "fill {fill} for a 94 % span: {row}"
    );
    assert_eq!(row["profile"]["status"], "pass", "{}", row["profile"]);
    // The box is the carton's, to a few pixels of the 1600 px frame.
    let main = &row["position"]["main"]["bbox"];
    for (key, truth) in ["x0", "y0", "x1", "y1"].iter().zip(b) {
        let v = main[key].as_f64().expect("box");
        assert!((v - f64::from(truth)).abs() <= 24.0, "{key} {v} vs {truth}");
    }
}

#[test]
fn a_product_at_60_percent_fails_the_fill_rule_with_its_fill() {
    let (png, _) = carton(0.60);
    let row = score(&png);
    let (status, fill) = fill_check(&row);
    assert_eq!(status, "fail", "{row}");
    assert!(
        (57.0..=63.0).contains(&fill),
        "fill {fill} for a 60 % span: {row}"
    );
    assert_eq!(row["profile"]["status"], "fail");
}
