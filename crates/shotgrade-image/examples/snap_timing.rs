//! Time of one `snap_to_backdrop` call on a 1000 × 1000 packshot and on a busy photo, where it
//! gives up after the border ring (medians of 200):
//! `cargo run --release -p shotgrade-image --example snap_timing`.

use shotgrade_core::BBox;
use shotgrade_image::{RgbImage, SnapSettings, snap_to_backdrop};
use std::time::Instant;

/// Median milliseconds of 200 snaps of `detected` on `image`; checks whether each snapped.
fn median_ms(image: &RgbImage, detected: &BBox, snaps: bool) -> f64 {
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let b = snap_to_backdrop(image, detected, &SnapSettings::default());
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(b.is_some(), snaps);
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let packshot = RgbImage::from_fn(1000, 1000, |x, y| {
        let inside = (200..800).contains(&x) && (150..850).contains(&y);
        let noise = ((x * 31 + y * 17) % 7) as u8;
        if inside {
            image::Rgb([180 - noise, 40, 60])
        } else {
            image::Rgb([252 - noise, 252 - noise, 252])
        }
    });
    let busy = RgbImage::from_fn(1000, 1000, |x, y| {
        image::Rgb([((x * 7 + y * 13) % 256) as u8, 0, 0])
    });
    let detected = BBox::new(210.0, 160.0, 790.0, 840.0);
    println!(
        "snap: median {:.3} ms",
        median_ms(&packshot, &detected, true)
    );
    println!("busy: median {:.3} ms", median_ms(&busy, &detected, false));
}
