//! A contact sheet of the people cut off the `train` on-model photos, each on magenta (so a
//! matte's leftovers show), and one of composites made with them — to check the mattes by eye.
//!
//! ```sh
//! cargo run --release -p shotgrade-synth --example people_sheet -- OUT_DIR [COMPOSITES]
//! ```
//! Reads `data/real` and `../shared/assets`; writes `OUT_DIR/people.png` and
//! `OUT_DIR/composites.png`.

use image::{Rgb, RgbImage};
use shotgrade_synth::labels::Part;
use shotgrade_synth::matte::{MatteSettings, people_cutouts};
use shotgrade_synth::{Assets, ComposeSettings, compose};
use std::path::Path;

const CELL: u32 = 160;

fn sheet(images: &[RgbImage], cols: u32) -> RgbImage {
    let rows = (images.len() as u32).div_ceil(cols).max(1);
    let mut out = RgbImage::from_pixel(cols * CELL, rows * CELL, Rgb([40, 40, 40]));
    for (i, img) in images.iter().enumerate() {
        let (w, h) = img.dimensions();
        let s = (CELL as f32 - 4.0) / w.max(h) as f32;
        let small = image::imageops::resize(
            img,
            ((w as f32 * s) as u32).max(1),
            ((h as f32 * s) as u32).max(1),
            image::imageops::FilterType::Triangle,
        );
        let (x, y) = ((i as u32 % cols) * CELL + 2, (i as u32 / cols) * CELL + 2);
        image::imageops::overlay(&mut out, &small, i64::from(x), i64::from(y));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = Path::new(args.first().map_or("runs/people", String::as_str)).to_path_buf();
    let composites: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(40);
    std::fs::create_dir_all(&out).expect("out dir");
    let people = people_cutouts(
        Path::new("data/real"),
        Path::new("../shared/assets"),
        Part::Train,
        &MatteSettings::default(),
    )
    .expect("labels");
    println!(
        "{} people matted, {} skipped",
        people.cutouts.len(),
        people.skipped.len()
    );
    let on_magenta: Vec<RgbImage> = people
        .cutouts
        .iter()
        .map(|c| {
            let (w, h) = c.image.dimensions();
            let mut canvas = image::RgbaImage::from_pixel(w, h, image::Rgba([255, 0, 255, 255]));
            image::imageops::overlay(&mut canvas, &c.image, 0, 0);
            image::DynamicImage::ImageRgba8(canvas).to_rgb8()
        })
        .collect();
    sheet(&on_magenta, 12)
        .save(out.join("people.png"))
        .expect("write people.png");
    let mut assets = Assets::load(Path::new("../shared/assets"), 320, 640).expect("assets");
    assets.cutouts = people.cutouts;
    let settings = ComposeSettings::default();
    let samples: Vec<RgbImage> = (1..=composites)
        .map(|seed| compose(&assets, seed, &settings).image)
        .collect();
    sheet(&samples, 8)
        .save(out.join("composites.png"))
        .expect("write composites.png");
}
