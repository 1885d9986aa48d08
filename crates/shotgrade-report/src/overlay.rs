//! Annotated copies of graded photos: the product box with its subject call, the background
//! class and the four scores drawn onto the pixels, so a seller sees what the models saw.
//!
//! Text uses the public-domain 8×8 bitmap font of the `font8x8` crate, scaled by an integer
//! factor; that keeps the overlay dependency-light and pixel-exact (golden-testable), at the
//! price of ASCII-only labels.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use image::{Rgb, RgbImage};
use shotgrade_core::ScoredRow;
use shotgrade_core::types::PositionCategory;

const SUBJECT: Rgb<u8> = Rgb([40, 200, 90]);
const NON_SUBJECT: Rgb<u8> = Rgb([255, 150, 30]);
const TEXT: Rgb<u8> = Rgb([255, 255, 255]);
const GLYPH: u32 = 8;

/// Colour of a 0–100 score: green from 75, amber from 50, red below.
pub fn score_colour(score: f32) -> Rgb<u8> {
    if score >= 75.0 {
        Rgb([60, 210, 100])
    } else if score >= 50.0 {
        Rgb([250, 190, 40])
    } else {
        Rgb([240, 70, 60])
    }
}

/// Draws the row's verdicts onto `img`, which shows the graded photo at any size (the row's
/// box is in original pixels and is scaled to `img`).
pub fn draw_overlay(img: &mut RgbImage, row: &ScoredRow) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let scale = w as f32 / row.image.width.max(1) as f32;
    // Text about 1/60 of the longer side, at least the font's native 8 px.
    let k = (w.max(h) / (60 * GLYPH)).max(1);
    let line = (GLYPH + 3) * k;

    if let Some(main) = &row.position.main {
        let colour = match main.category {
            PositionCategory::Subject => SUBJECT,
            PositionCategory::NonSubject => NON_SUBJECT,
        };
        let b = main.bbox;
        let (x0, y0) = ((b.x0 * scale) as i64, (b.y0 * scale) as i64);
        let (x1, y1) = ((b.x1 * scale) as i64, (b.y1 * scale) as i64);
        stroke_rect(img, (x0, y0, x1, y1), 2 * k as i64, colour);
        let label = format!(
            "{} {:.0}%  p {:.2}",
            match main.category {
                PositionCategory::Subject => "subject",
                PositionCategory::NonSubject => "non-subject",
            },
            main.subject_probability * 100.0,
            main.probability
        );
        // Inside the box's top edge when there is no room above it.
        let ty = if y0 >= line as i64 {
            y0 - line as i64
        } else {
            y0 + 2 * k as i64
        };
        label_box(img, x0.max(0), ty, &label, k, colour);
    }

    let s = &row.scores;
    let mut lines = vec![
        (
            format!(
                "TOTAL {:.0}  BG {:.0}  POS {:.0}  VIS {:.0}",
                s.total, s.background, s.position, s.visual
            ),
            score_colour(s.total),
        ),
        (
            format!(
                "background {} {:.0}%",
                row.background.class,
                row.background.probability * 100.0
            ),
            TEXT,
        ),
    ];
    if let Some(p) = &row.profile {
        lines.push((
            format!("{} {}", p.name, p.status.to_string().to_uppercase()),
            match p.status {
                shotgrade_core::Status::Pass => score_colour(100.0),
                shotgrade_core::Status::Warn => score_colour(60.0),
                shotgrade_core::Status::Fail => score_colour(0.0),
            },
        ));
    }
    let widest = lines.iter().map(|(t, _)| t.len() as u32).max().unwrap_or(0);
    let banner_h = line * lines.len() as u32 + 2 * k;
    shade(
        img,
        (0, 0, (widest * GLYPH * k + 4 * k) as i64, banner_h as i64),
    );
    for (i, (text, colour)) in lines.iter().enumerate() {
        draw_text(
            img,
            2 * k as i64,
            (2 * k + i as u32 * line) as i64,
            text,
            k,
            *colour,
        );
    }
}

/// Text on a darkened strip, with a coloured left edge.
fn label_box(img: &mut RgbImage, x: i64, y: i64, text: &str, k: u32, edge: Rgb<u8>) {
    let tw = (text.len() as u32 * GLYPH * k + 4 * k) as i64;
    let th = ((GLYPH + 2) * k) as i64;
    shade(img, (x, y, x + tw, y + th));
    fill_rect(img, (x, y, x + k as i64, y + th), edge);
    draw_text(img, x + 2 * k as i64, y + k as i64, text, k, TEXT);
}

/// Pixels of a rectangle `(x0, y0, x1, y1)`, end-exclusive, clipped to the image.
fn clipped(img: &RgbImage, (x0, y0, x1, y1): (i64, i64, i64, i64)) -> (u32, u32, u32, u32) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    (
        x0.clamp(0, w) as u32,
        y0.clamp(0, h) as u32,
        x1.clamp(0, w) as u32,
        y1.clamp(0, h) as u32,
    )
}

fn fill_rect(img: &mut RgbImage, r: (i64, i64, i64, i64), colour: Rgb<u8>) {
    let (x0, y0, x1, y1) = clipped(img, r);
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x, y, colour);
        }
    }
}

/// Darkens a rectangle to 35 % so light text reads on any photo.
fn shade(img: &mut RgbImage, r: (i64, i64, i64, i64)) {
    let (x0, y0, x1, y1) = clipped(img, r);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel_mut(x, y);
            p.0 = p.0.map(|v| (v as u32 * 35 / 100) as u8);
        }
    }
}

fn stroke_rect(img: &mut RgbImage, (x0, y0, x1, y1): (i64, i64, i64, i64), t: i64, c: Rgb<u8>) {
    fill_rect(img, (x0, y0, x1, y0 + t), c);
    fill_rect(img, (x0, y1 - t, x1, y1), c);
    fill_rect(img, (x0, y0, x0 + t, y1), c);
    fill_rect(img, (x1 - t, y0, x1, y1), c);
}

/// Draws ASCII text with its top-left corner at `(x, y)`, each font pixel `k × k`.
/// Characters the font lacks are drawn as `?`.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, k: u32, colour: Rgb<u8>) {
    let k = k as i64;
    for (i, ch) in text.chars().enumerate() {
        let Some(rows) = BASIC_FONTS.get(ch).or_else(|| BASIC_FONTS.get('?')) else {
            continue;
        };
        let gx = x + i as i64 * GLYPH as i64 * k;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let px = gx + col * k;
                    let py = y + row as i64 * k;
                    fill_rect(img, (px, py, px + k, py + k), colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shotgrade_core::BBox;

    fn row(json: &str) -> ScoredRow {
        serde_json::from_str(json).expect("row json")
    }

    pub(crate) fn sample_row(w: u32, h: u32, bbox: BBox) -> ScoredRow {
        row(&format!(
            r#"{{"path":"a.jpg","status":"ok","scene":"general",
            "scores":{{"total":82.0,"background":90.0,"position":80.0,"visual":75.0,"aesthetic":70.0,"noise":80.0}},
            "image":{{"width":{w},"height":{h},"format":"jpeg","file_bytes":1,"has_alpha":false,
              "transparent_fraction":0.0,"border_rgb":[255,255,255],"border_pure_white_fraction":1.0}},
            "background":{{"class":"white","probability":0.97,"probabilities":{{}}}},
            "position":{{"main":{{"category":"subject","bbox":{{"x0":{},"y0":{},"x1":{},"y1":{}}},
              "probability":0.9,"subject_probability":0.92,"fill":0.5,"centre_offset":0.0,"touches":[]}},
              "detections":1}},
            "reasons":[]}}"#,
            bbox.x0, bbox.y0, bbox.x1, bbox.y1
        ))
    }

    #[test]
    fn box_is_drawn_at_the_scaled_position_in_the_subject_colour() {
        let r = sample_row(800, 600, BBox::new(200.0, 200.0, 600.0, 500.0));
        // Drawn at half size: the box lands at (100, 100)–(300, 250).
        let mut img = RgbImage::from_pixel(400, 300, Rgb([128, 128, 128]));
        draw_overlay(&mut img, &r);
        assert_eq!(*img.get_pixel(100, 180), SUBJECT, "left edge");
        assert_eq!(*img.get_pixel(299, 180), SUBJECT, "right edge");
        assert_eq!(*img.get_pixel(200, 249), SUBJECT, "bottom edge");
        assert_eq!(
            *img.get_pixel(200, 180),
            Rgb([128, 128, 128]),
            "inside untouched"
        );
        // The banner darkens the top-left corner.
        assert!(img.get_pixel(1, 1).0[0] < 60);
        assert_eq!(*img.get_pixel(399, 299), Rgb([128, 128, 128]));
    }

    #[test]
    fn boxes_off_the_image_and_tiny_images_do_not_panic() {
        let r = sample_row(100, 100, BBox::new(-50.0, -50.0, 500.0, 500.0));
        for (w, h) in [(1, 1), (3, 200), (100, 100), (2000, 10)] {
            let mut img = RgbImage::new(w, h);
            draw_overlay(&mut img, &r);
        }
    }

    #[test]
    fn text_pixels_match_the_font() {
        let mut img = RgbImage::new(16, 8);
        draw_text(&mut img, 0, 0, "I", 1, TEXT);
        let glyph = BASIC_FONTS.get('I').expect("glyph");
        for (y, bits) in glyph.iter().enumerate() {
            for x in 0..8u32 {
                let on = bits & (1 << x) != 0;
                assert_eq!(*img.get_pixel(x, y as u32) == TEXT, on, "({x},{y})");
            }
        }
        // Scaled ×2 covers 2×2 blocks.
        let mut big = RgbImage::new(16, 16);
        draw_text(&mut big, 0, 0, "I", 2, TEXT);
        assert_eq!(
            big.pixels().filter(|p| **p == TEXT).count(),
            4 * img.pixels().filter(|p| **p == TEXT).count()
        );
    }
}
