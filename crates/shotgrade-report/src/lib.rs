//! # shotgrade-report
//!
//! What people look at: annotated overlays of graded photos ([`overlay`]) and the
//! self-contained HTML report of a whole run ([`html`]). Pure functions of result rows and
//! pixels — no models, no file system — so the CLI, the server and tests share them.

pub mod html;
pub mod overlay;

use base64::Engine;
use image::RgbImage;
use shotgrade_core::ScoredRow;

pub use html::{Entry, ReportSettings, render};
pub use overlay::draw_overlay;

/// Longer side of report thumbnails, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// A downscaled copy of `rgb` with the row's overlay drawn on it, as a JPEG `data:` URI for
/// embedding in the HTML report.
pub fn thumbnail_data_uri(rgb: &RgbImage, row: &ScoredRow) -> Result<String, image::ImageError> {
    let mut thumb = shrink(rgb, THUMBNAIL_SIDE);
    draw_overlay(&mut thumb, row);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&thumb)?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    ))
}

/// `rgb` scaled down so its longer side is at most `side` (never up).
pub fn shrink(rgb: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let longer = w.max(h).max(1);
    if longer <= side {
        return rgb.clone();
    }
    let f = side as f32 / longer as f32;
    let (tw, th) = (
        ((w as f32 * f).round() as u32).max(1),
        ((h as f32 * f).round() as u32).max(1),
    );
    image::imageops::thumbnail(rgb, tw, th)
}
