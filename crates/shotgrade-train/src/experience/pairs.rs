//! The experience network's training data: clean / degraded pairs of composites and of real
//! photos, and the real photos they are made from.

use image::RgbImage;
use rayon::prelude::*;
use shotgrade_image::{Preprocessor, on_jpeg_grid};
use shotgrade_synth::compose::{
    CLEAN_JPEG_QUALITY, DamageKinds, DegradationLabel, compose_clean, damage, jpeg_round_trip,
    random_damage,
};
use shotgrade_synth::{Assets, ComposeSettings, Degradation, SplitMix64, degrade};

use crate::error::TrainError;
use crate::pool::{Mirror, mirror_rows};

/// One preprocessed experience example: input and `(aesthetic, noise)` labels in `[0, 1]`.
#[derive(Debug, Clone)]
pub struct ExperienceExample {
    pub input: Vec<f32>,
    pub aesthetic: f32,
    pub noise: f32,
}

/// A clean / degraded pair from one composite.
#[derive(Debug, Clone)]
pub struct Pair {
    pub clean: ExperienceExample,
    pub degraded: ExperienceExample,
}

impl Mirror for ExperienceExample {
    /// The input mirrored left–right, each half of the `[global | detail]` input in place
    /// (`width` = the side of one half); labels unchanged.
    fn mirrored(&self, width: usize) -> Self {
        ExperienceExample {
            input: mirror_rows(&self.input, width),
            ..*self
        }
    }
}

impl Mirror for Pair {
    /// Both images mirrored.
    fn mirrored(&self, width: usize) -> Self {
        Pair {
            clean: self.clean.mirrored(width),
            degraded: self.degraded.mirrored(width),
        }
    }
}

/// Pairs for `seeds`: the clean composite (mild JPEG 90) and a copy with a random degradation
/// (always degraded), both with their labels.
pub fn synthetic_pairs(
    assets: &Assets,
    seeds: &[u64],
    settings: &ComposeSettings,
    side: u32,
) -> Vec<Pair> {
    seeds
        .par_iter()
        .map_init(
            || crate::data::preprocessor(side),
            |pre, &seed| {
                let clean = compose_clean(assets, seed, settings);
                let mut rng = SplitMix64::new(seed ^ 0x7A1E_5EED);
                let clean_sample = clean.finish(
                    DegradationLabel {
                        noise_sigma: 0.0,
                        blur_radius: 0,
                        jpeg_quality: 90,
                    },
                    rng.next_u64(),
                );
                let degraded_sample = clean.finish(
                    random_damage(&mut rng, 90, &DamageKinds::EXPERIENCE),
                    rng.next_u64(),
                );
                let example =
                    |s: &shotgrade_synth::Sample, pre: &mut Preprocessor| ExperienceExample {
                        input: pre.experience_input(&s.image),
                        aesthetic: s.label.aesthetic.score / 100.0,
                        noise: s.label.noise / 100.0,
                    };
                Pair {
                    clean: example(&clean_sample, pre),
                    degraded: example(&degraded_sample, pre),
                }
            },
        )
        .collect()
}

/// Longest sides the experience network's cut-outs and backdrops are loaded at: their full
/// size (the asset folder's limits), so a composite of at most 640 px never upscales them. An
/// upscaled product or backdrop is soft, and a soft image labelled clean teaches the noise head
/// that blur is clean — on real photos it then rated slightly blurred copies above the
/// originals (model card).
pub const ASSET_SIDES: (u32, u32) = (640, 1280);
/// A real training photo and the JPEG quality it arrived with (estimated from its
/// quantisation table; 100 when it is not a JPEG).
#[derive(Debug, Clone)]
pub struct DecodedPhoto {
    pub rgb: RgbImage,
    pub quality: u8,
}

/// A clean / degraded pair made from a real photo, with the damage of each copy (noise label
/// `1 − damage`).
#[derive(Debug, Clone)]
pub struct RealPair {
    pub clean: Vec<f32>,
    pub degraded: Vec<f32>,
    pub clean_damage: f32,
    pub damage: f32,
}

/// Pairs from real photos: for each `(photo index, seed)` the photo after a mild JPEG round
/// trip (quality 90–95) and a damaged copy (noise, blur and/or JPEG 5–90, as for composites).
/// The photos arrived compressed, so both labels count the photo's own JPEG quality: the clean
/// copy's damage is that of its original quality, and a re-encoding only adds damage when it
/// is stronger than the original's (the lower of the two qualities is labelled).
pub fn real_pairs(
    photos: &[DecodedPhoto],
    picks: &[(usize, u64)],
    side: u32,
    kinds: &DamageKinds,
) -> Vec<RealPair> {
    picks
        .par_iter()
        .filter_map(|&(i, seed)| photos.get(i).map(|p| (p, seed)))
        .map_init(
            || crate::data::preprocessor(side),
            |pre, (photo, seed)| {
                let mut rng = SplitMix64::new(seed ^ 0x5EA1_F070);
                let original = native_crop(&photo.rgb, &mut rng);
                let mild = rng.range(CLEAN_JPEG_QUALITY, 96.0) as u8;
                let clean = jpeg_round_trip(&original, mild);
                let d = random_damage(&mut rng, mild, kinds);
                let mut x = original;
                degrade(
                    &mut x,
                    &Degradation {
                        noise_sigma: d.noise_sigma,
                        blur_radius: d.blur_radius,
                    },
                    &mut rng,
                );
                let x = jpeg_round_trip(&x, d.jpeg_quality);
                let as_labelled = |d: DegradationLabel| DegradationLabel {
                    jpeg_quality: d.jpeg_quality.min(photo.quality),
                    ..d
                };
                RealPair {
                    clean: pre.experience_input(&clean),
                    degraded: pre.experience_input(&x),
                    clean_damage: damage(&as_labelled(DegradationLabel {
                        noise_sigma: 0.0,
                        blur_radius: 0,
                        jpeg_quality: mild,
                    })),
                    damage: damage(&as_labelled(d)),
                }
            },
        )
        .collect()
}

impl Mirror for RealPair {
    /// Both images mirrored (as for [`Pair`]); labels unchanged.
    fn mirrored(&self, width: usize) -> Self {
        RealPair {
            clean: mirror_rows(&self.clean, width),
            degraded: mirror_rows(&self.degraded, width),
            ..*self
        }
    }
}

/// A random crop of 60–100 % of each side of a photo larger than [`CROP_ABOVE`], at native
/// resolution, starting on the JPEG block grid; smaller photos are used whole.
fn native_crop(photo: &RgbImage, rng: &mut SplitMix64) -> RgbImage {
    let (w, h) = photo.dimensions();
    if w.max(h) <= CROP_ABOVE {
        return photo.clone();
    }
    let cw = ((w as f32 * rng.range(0.6, 1.0)) as u32).clamp(1, w);
    let ch = ((h as f32 * rng.range(0.6, 1.0)) as u32).clamp(1, h);
    // Starting on the block grid keeps the photo's own JPEG blocks where the file had them.
    let x = on_jpeg_grid((rng.range(0.0, 1.0) * (w - cw) as f32) as u32);
    let y = on_jpeg_grid((rng.range(0.0, 1.0) * (h - ch) as f32) as u32);
    image::imageops::crop_imm(photo, x, y, cw, ch).to_image()
}
/// Where the real training photos come from: disjoint from the ladder (`real/magento2`,
/// `real/spree`) and from the background network's real validation set.
pub const REAL_TRAINING_PHOTOS: &[&str] = &["real/grocery/train"];

/// Folders of large real photos (the backdrop pools: photographs, textures and wallpapers of up
/// to 1280 px, saved at quality ~90) used as large real pairs; no validation set uses them.
pub const LARGE_PHOTO_FOLDERS: &[&str] = &[
    "backgrounds/scenes",
    "backgrounds/textures",
    "backgrounds/graphics",
];

/// Photos with a longer side above this are cropped at random (native pixels, 60–100 % of each
/// side) before a pair is made from them, so their many detail views differ.
const CROP_ABOVE: u32 = 640;

/// Real photos for training, loaded once: every k-th of [`REAL_TRAINING_PHOTOS`] up to
/// `limit`, each with its estimated JPEG quality. Unreadable files are skipped.
pub(super) fn load_real_photos(
    root: &std::path::Path,
    limit: usize,
) -> Result<Vec<DecodedPhoto>, TrainError> {
    let photos = shotgrade_synth::assets::real_photos(root, REAL_TRAINING_PHOTOS)?;
    let step = (photos.len() / limit.max(1)).max(1);
    Ok(photos
        .par_iter()
        .step_by(step)
        .take(limit)
        .filter_map(|p| read_real_photo(&p.path))
        .collect())
}

/// A real photo and the JPEG quality the loader measured (100 when it is not a JPEG), or
/// `None` when the file cannot be read.
fn read_real_photo(path: &std::path::Path) -> Option<DecodedPhoto> {
    let loaded = shotgrade_image::load_path(path, &shotgrade_image::Limits::default()).ok()?;
    Some(DecodedPhoto {
        quality: loaded.facts.jpeg_quality.unwrap_or(100),
        rgb: loaded.rgb,
    })
}

/// The large real photos: those of [`LARGE_PHOTO_FOLDERS`] and `shop` (the shop photos of the
/// training product families), each with its estimated JPEG quality. Unreadable files are
/// skipped.
pub(super) fn load_large_photos(
    root: &std::path::Path,
    shop: Vec<shotgrade_synth::assets::RealPhoto>,
) -> Vec<DecodedPhoto> {
    let mut paths: Vec<std::path::PathBuf> = LARGE_PHOTO_FOLDERS
        .iter()
        .filter_map(|f| std::fs::read_dir(root.join(f)).ok())
        .flat_map(|dir| dir.flatten().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    paths.sort();
    paths.extend(shop.into_iter().map(|p| p.path));
    paths
        .par_iter()
        .filter_map(|p| read_real_photo(p))
        .collect()
}
