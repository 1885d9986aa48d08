//! Real photos with boxes drawn by eye (`data/real`, see its GUIDE.md) for the position
//! network: the `train` part feeds training batches (mirrored at random), the `validation`
//! part chooses checkpoints. Composites alone never showed the detector a garment worn by a
//! model, a styled backdrop or a patterned product filling the frame.

use std::path::Path;

use rayon::prelude::*;
use shotgrade_core::BBox;
use shotgrade_image::{Limits, Preprocessor, RgbImage};
use shotgrade_synth::SplitMix64;
use shotgrade_synth::labels::{LabelledPhoto, Part, load_labelled};

use crate::error::TrainError;
use crate::position::PositionExample;

/// Longest side real photos are kept at in memory: the network sees them letterboxed to a few
/// hundred pixels at most.
const KEEP_SIDE: u32 = 512;

/// One boxed real photo, decoded once.
pub struct BoxedPhoto {
    pub image: RgbImage,
    /// The main product's box in `image`'s pixels.
    pub bbox: BBox,
    /// Whole in the frame: the label says it is not cut off.
    pub subject: bool,
}

/// The boxed photos of one part, decoded with the hardened loader and shrunk to
/// [`KEEP_SIDE`]. Photos that fail to load are an error: the labelled set is ours.
pub fn load_boxed(labels: &Path, assets: &Path, part: Part) -> Result<Vec<BoxedPhoto>, TrainError> {
    let photos: Vec<LabelledPhoto> = load_labelled(labels)
        .map_err(|e| TrainError::Settings(format!("real labels: {e}")))?
        .into_iter()
        .filter(|p| p.part == part && p.bbox.is_some())
        .collect();
    photos
        .par_iter()
        .map(|p| {
            let path = assets.join(&p.path);
            let loaded = shotgrade_image::load_path(&path, &Limits::default())
                .map_err(|e| TrainError::Settings(format!("real photo {}: {e}", path.display())))?;
            let (w, h) = loaded.rgb.dimensions();
            let scale = (KEEP_SIDE as f32 / w.max(h) as f32).min(1.0);
            let image = if scale < 1.0 {
                let (nw, nh) = (
                    ((w as f32 * scale).round() as u32).max(1),
                    ((h as f32 * scale).round() as u32).max(1),
                );
                crate::data::preprocessor(nw.max(nh)).squash(&loaded.rgb, nw, nh)
            } else {
                loaded.rgb
            };
            let b = p.bbox.unwrap_or(BBox::new(0.0, 0.0, 0.0, 0.0));
            Ok(BoxedPhoto {
                image,
                bbox: BBox::new(b.x0 * scale, b.y0 * scale, b.x1 * scale, b.y1 * scale),
                subject: !p.cut_off,
            })
        })
        .collect()
}

/// `photo` letterboxed to the network's input, mirrored left–right when `mirror`, with its box
/// on the canvas.
pub fn real_example(pre: &mut Preprocessor, photo: &BoxedPhoto, mirror: bool) -> PositionExample {
    let (image, bbox) = if mirror {
        let w = photo.image.width() as f32;
        let b = photo.bbox;
        (
            image::imageops::flip_horizontal(&photo.image),
            BBox::new(w - b.x1, b.y0, w - b.x0, b.y1),
        )
    } else {
        (photo.image.clone(), photo.bbox)
    };
    let (input, letterbox) = pre.position_input(&image);
    PositionExample {
        input,
        bbox: letterbox.to_canvas(&bbox),
        subject: photo.subject,
    }
}

/// `count` training examples drawn from `photos` with `rng` (photo and mirroring).
pub fn real_batch(
    photos: &[BoxedPhoto],
    count: usize,
    rng: &mut SplitMix64,
    size: u32,
) -> Vec<PositionExample> {
    if photos.is_empty() {
        return Vec::new();
    }
    let picks: Vec<(usize, bool)> = (0..count)
        .map(|_| {
            let i = (rng.next_u64() % photos.len() as u64) as usize;
            (i, rng.unit() < 0.5)
        })
        .collect();
    picks
        .par_iter()
        .map_init(
            || crate::data::preprocessor(size),
            |pre, &(i, mirror)| real_example(pre, &photos[i], mirror),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_moves_the_box_with_the_product() {
        // A 40 × 20 photo, dark product at x 5..15 on white.
        let image = RgbImage::from_fn(40, 20, |x, _| {
            if (5..15).contains(&x) {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let photo = BoxedPhoto {
            image,
            bbox: BBox::new(5.0, 2.0, 15.0, 18.0),
            subject: true,
        };
        let mut pre = crate::data::preprocessor(64);
        let plain = real_example(&mut pre, &photo, false);
        let mirrored = real_example(&mut pre, &photo, true);
        // 40 px wide → 64 px canvas: scale 1.6, no horizontal padding.
        assert!((plain.bbox.x0 - 8.0).abs() < 1e-3, "{:?}", plain.bbox);
        assert!(
            (mirrored.bbox.x0 - 40.0).abs() < 1e-3,
            "{:?}",
            mirrored.bbox
        );
        assert!((mirrored.bbox.x1 - 56.0).abs() < 1e-3);
        // The mirrored input is dark where the mirrored box says (red plane, row 16).
        let at = |e: &PositionExample, x: usize| e.input[16 * 64 + x];
        assert!(at(&mirrored, 48) < 0.1 && at(&mirrored, 12) > 0.9);
        assert!(at(&plain, 12) < 0.1 && at(&plain, 48) > 0.9);
    }
}
