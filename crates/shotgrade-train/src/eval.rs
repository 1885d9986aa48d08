//! `shotgrade eval`: every metric of the model card, on data the networks never trained on.
//!
//! * background — a synthetic test set (seeds disjoint from training *and* from the validation
//!   set used to pick checkpoints) and the real photos `grocery/val` (cluttered) and
//!   `grocery/iconic` (white);
//! * position — a synthetic test set (mAP@0.5, mAP@0.5:0.95, subject accuracy, mean IoU) and the
//!   real `magento2` photos whose hint is white, against the box of their non-white pixels;
//! * experience — synthetic clean/degraded pairs, and a distortion ladder on real photos: each
//!   photo at 5 levels of Gaussian noise, blur and JPEG quality. The ladder's photos are shop
//!   packshots of the held-out product families (`ShopSplit`): no training run sees them.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use serde::Serialize;
use shotgrade_core::{BBox, DetectionDecoder, iou};
use shotgrade_image::Limits;
use shotgrade_models::{BackgroundNet, ExperienceNet, PositionNet, load_net};
use shotgrade_synth::assets::real_photos;
use shotgrade_synth::compose::jpeg_round_trip;
use shotgrade_synth::{Assets, ComposeSettings, Degradation, SplitMix64, degrade};
use std::path::Path;

use crate::background::{TrainError, predict as predict_background};
use crate::data::{TEST_SEED_BASE, real_background, synthetic_background};
use crate::experience::{
    ExperienceExample, ExperienceMetrics, evaluate_experience, predict as predict_experience,
    synthetic_pairs,
};
use crate::metrics::{ClassMetrics, classification, srcc};
use crate::position::{PositionMetrics, evaluate_position, synthetic_position};

/// First seeds of the test sets (validation sets use other offsets from `TEST_SEED_BASE`).
const BACKGROUND_TEST: u64 = TEST_SEED_BASE + 10_000_000;
const POSITION_TEST: u64 = TEST_SEED_BASE + 11_000_000;
const EXPERIENCE_TEST: u64 = TEST_SEED_BASE + 12_000_000;

/// Sizes of the evaluation sets.
#[derive(Debug, Clone, Copy)]
pub struct EvalSizes {
    pub synthetic: usize,
    /// Real photos in the distortion ladder.
    pub ladder_photos: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackgroundEval {
    pub synthetic: ClassMetrics,
    /// Every synthetic test image the network got wrong, with its degradation: where the
    /// errors come from.
    pub synthetic_errors: Vec<BackgroundError>,
    pub real: ClassMetrics,
    pub real_sources: Vec<String>,
}

/// One misclassified synthetic test image.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundError {
    pub seed: u64,
    pub truth: shotgrade_core::BackgroundClass,
    pub predicted: shotgrade_core::BackgroundClass,
    pub degradation: shotgrade_synth::compose::DegradationLabel,
}

#[derive(Debug, Clone, Serialize)]
pub struct PositionEval {
    pub synthetic: PositionMetrics,
    /// Mean IoU of the main detection with the box of non-white pixels, magento2 white photos.
    pub real_white_mean_iou: f32,
    pub real_white_photos: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LadderResult {
    pub distortion: String,
    pub levels: Vec<String>,
    /// Mean over photos of SRCC(level, noise sub-score): −1 means the score always falls.
    pub mean_srcc_noise: f32,
    /// Share of photos whose clean visual score beats the middle level's.
    pub pair_accuracy_middle: f32,
    /// Mean noise sub-score (0–1) of all photos at each level.
    pub mean_noise_per_level: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperienceEval {
    pub synthetic: ExperienceMetrics,
    pub ladder: Vec<LadderResult>,
    pub ladder_photos: usize,
    /// Over all three distortions.
    pub ladder_mean_srcc_noise: f32,
    pub ladder_pair_accuracy_middle: f32,
}

pub fn eval_background(
    weights: &Path,
    assets_dir: &Path,
    sizes: EvalSizes,
) -> Result<BackgroundEval, TrainError> {
    let device = Device::flex();
    let (net, config) = load_net::<BackgroundNet>(weights, &device)?;
    let config_size = config.input_size;
    let assets = Assets::load(assets_dir, 320, 640)?;
    let seeds: Vec<u64> = (0..sizes.synthetic as u64)
        .map(|i| BACKGROUND_TEST + i)
        .collect();
    let settings = ComposeSettings {
        min_side: 160,
        max_side: 640,
        degrade_probability: 0.5,
    };
    let (synth, labels): (Vec<_>, Vec<_>) =
        synthetic_background(&assets, &seeds, &settings, config_size as u32)
            .into_iter()
            .unzip();
    let truth: Vec<usize> = synth.iter().map(|e| e.class.index()).collect();
    let predicted = predict_background(&net, &synth, config_size, &device);
    let synthetic = classification(&truth, &predicted, 5);
    let synthetic_errors = labels
        .iter()
        .zip(&predicted)
        .filter(|(label, p)| label.background.index() != **p)
        .map(|(label, &p)| BackgroundError {
            seed: label.seed,
            truth: label.background,
            predicted: shotgrade_core::BACKGROUND_CLASSES[p],
            degradation: label.degradation,
        })
        .collect();
    let prefixes = ["real/grocery/val", "real/grocery/iconic"];
    let (real, _) = real_background(assets_dir, &prefixes, config_size as u32)?;
    let truth: Vec<usize> = real.iter().map(|e| e.class.index()).collect();
    let real_m = classification(
        &truth,
        &predict_background(&net, &real, config_size, &device),
        5,
    );
    Ok(BackgroundEval {
        synthetic,
        synthetic_errors,
        real: real_m,
        real_sources: prefixes.iter().map(|s| s.to_string()).collect(),
    })
}

/// Box of the pixels that are not near-white (any channel < 240), if any.
pub fn non_white_box(img: &image::RgbImage) -> Option<BBox> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if p.0.iter().any(|&c| c < 240) {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    (x0 < x1).then(|| BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32))
}

pub fn eval_position(
    weights: &Path,
    assets_dir: &Path,
    sizes: EvalSizes,
) -> Result<PositionEval, TrainError> {
    let device = Device::flex();
    let (net, config) = load_net::<PositionNet>(weights, &device)?;
    let size = config.input_size;
    let levels = config.levels();
    let assets = Assets::load(assets_dir, 320, 640)?;
    let seeds: Vec<u64> = (0..sizes.synthetic as u64)
        .map(|i| POSITION_TEST + i)
        .collect();
    let settings = ComposeSettings {
        min_side: 256,
        max_side: 640,
        degrade_probability: 0.3,
    };
    let synth = synthetic_position(&assets, &seeds, &settings, size as u32);
    let synthetic = evaluate_position(&net, &levels, &synth, size, &device);

    let photos: Vec<_> = real_photos(assets_dir, &["real/magento2"])?
        .into_iter()
        .filter(|p| p.hint == Some(shotgrade_core::BackgroundClass::White))
        .collect();
    let decoder = DetectionDecoder {
        levels: levels.clone(),
        min_probability: 0.05,
        iou_threshold: 0.5,
        max_detections: 20,
    };
    let prepared: Vec<(Vec<f32>, shotgrade_core::Letterbox, BBox)> = photos
        .par_iter()
        .map_init(
            || crate::data::preprocessor(size as u32),
            |pre, photo| {
                let img = shotgrade_image::load_path(&photo.path, &Limits::default()).ok()?;
                let truth = non_white_box(&img.rgb)?;
                let (input, lb) = pre.position_input(&img.rgb);
                Some((input, lb, truth))
            },
        )
        .flatten()
        .collect();
    let mut iou_sum = 0.0;
    for chunk in prepared.chunks(32) {
        let mut data = Vec::new();
        for (input, ..) in chunk {
            data.extend_from_slice(input);
        }
        let x =
            Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, size, size]), &device);
        let flat: Vec<f32> = net.forward(x).packed().into_data().iter::<f32>().collect();
        let per = flat.len() / chunk.len();
        for ((_, lb, truth), raw) in chunk.iter().zip(flat.chunks(per)) {
            if let Some(top) = decoder.decode(raw).first() {
                iou_sum += iou(&lb.to_source(&top.bbox), truth);
            }
        }
    }
    Ok(PositionEval {
        synthetic,
        real_white_mean_iou: iou_sum / prepared.len().max(1) as f32,
        real_white_photos: prepared.len(),
    })
}

/// One rung of the distortion ladder: its name, the pixel damage and the JPEG quality.
type Rung = (String, Degradation, u8);

/// The distortion ladder's five levels per kind.
fn ladder_levels() -> Vec<(&'static str, Vec<Rung>)> {
    let noise = [0.0, 4.0, 8.0, 16.0, 32.0].map(|s| {
        (
            format!("sigma {s}"),
            Degradation {
                noise_sigma: s,
                blur_radius: 0,
            },
            95u8,
        )
    });
    let blur = [0u32, 1, 2, 3, 5].map(|r| {
        (
            format!("box radius {r} ×2"),
            Degradation {
                noise_sigma: 0.0,
                blur_radius: r,
            },
            95u8,
        )
    });
    let jpeg = [95u8, 60, 35, 15, 5].map(|q| (format!("quality {q}"), Degradation::default(), q));
    vec![
        ("gaussian_noise", noise.to_vec()),
        ("blur", blur.to_vec()),
        ("jpeg", jpeg.to_vec()),
    ]
}

pub fn eval_experience(
    weights: &Path,
    assets_dir: &Path,
    sizes: EvalSizes,
) -> Result<ExperienceEval, TrainError> {
    let device = Device::flex();
    let (net, config) = load_net::<ExperienceNet>(weights, &device)?;
    let side = config.input_size;
    let assets = Assets::load(
        assets_dir,
        crate::experience::ASSET_SIDES.0,
        crate::experience::ASSET_SIDES.1,
    )?;
    let seeds: Vec<u64> = (0..sizes.synthetic as u64)
        .map(|i| EXPERIENCE_TEST + i)
        .collect();
    let settings = ComposeSettings {
        min_side: 320,
        max_side: 640,
        degrade_probability: 0.0,
    };
    let pairs = synthetic_pairs(&assets, &seeds, &settings, side as u32);
    let synthetic = evaluate_experience(&net, &pairs, side, &device);

    // Only product families no training run sees (see `ShopSplit`).
    let mut photos = shotgrade_synth::assets::shop_photo_split(assets_dir)?.held_out;
    // A fixed, spread-out subset: every k-th photo in index order.
    let step = (photos.len() / sizes.ladder_photos.max(1)).max(1);
    photos = photos
        .into_iter()
        .step_by(step)
        .take(sizes.ladder_photos)
        .collect();
    let images: Vec<image::RgbImage> = photos
        .par_iter()
        .filter_map(|p| {
            shotgrade_image::load_path(&p.path, &Limits::default())
                .ok()
                .map(|l| l.rgb)
        })
        .collect();
    let mut ladder = Vec::new();
    let (mut all_srcc, mut all_wins, mut all_pairs) = (Vec::new(), 0usize, 0usize);
    for (name, levels) in ladder_levels() {
        let inputs: Vec<Vec<ExperienceExample>> = images
            .par_iter()
            .enumerate()
            .map_init(
                || crate::data::preprocessor(side as u32),
                |pre, (i, img)| {
                    levels
                        .iter()
                        .map(|(_, d, q)| {
                            let mut x = img.clone();
                            degrade(&mut x, d, &mut SplitMix64::new(i as u64));
                            let x = jpeg_round_trip(&x, *q);
                            ExperienceExample {
                                input: pre.experience_input(&x),
                                aesthetic: 0.0,
                                noise: 0.0,
                            }
                        })
                        .collect()
                },
            )
            .collect();
        let mut srccs = Vec::new();
        let mut wins = 0;
        let mut noise_sums = vec![0.0f32; levels.len()];
        for per_photo in &inputs {
            let refs: Vec<&ExperienceExample> = per_photo.iter().collect();
            let pred = predict_experience(&net, &refs, side, &device);
            for (sum, p) in noise_sums.iter_mut().zip(&pred) {
                *sum += p.1;
            }
            let level_index: Vec<f32> = (0..pred.len()).map(|l| l as f32).collect();
            let noise: Vec<f32> = pred.iter().map(|p| p.1).collect();
            srccs.push(srcc(&level_index, &noise));
            if pred[0].0 + pred[0].1 > pred[2].0 + pred[2].1 {
                wins += 1;
            }
        }
        let n = inputs.len().max(1);
        ladder.push(LadderResult {
            distortion: name.to_string(),
            levels: levels.iter().map(|(l, ..)| l.clone()).collect(),
            mean_srcc_noise: srccs.iter().sum::<f32>() / n as f32,
            pair_accuracy_middle: wins as f32 / n as f32,
            mean_noise_per_level: noise_sums.iter().map(|s| s / n as f32).collect(),
        });
        all_srcc.extend(srccs);
        all_wins += wins;
        all_pairs += inputs.len();
    }
    Ok(ExperienceEval {
        synthetic,
        ladder,
        ladder_photos: images.len(),
        ladder_mean_srcc_noise: all_srcc.iter().sum::<f32>() / all_srcc.len().max(1) as f32,
        ladder_pair_accuracy_middle: all_wins as f32 / all_pairs.max(1) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_white_box_finds_the_product() {
        let mut img = image::RgbImage::from_pixel(50, 40, image::Rgb([255, 255, 255]));
        for x in 10..20 {
            for y in 5..30 {
                img.put_pixel(x, y, image::Rgb([250, 100, 100]));
            }
        }
        assert_eq!(non_white_box(&img), Some(BBox::new(10.0, 5.0, 20.0, 30.0)));
        assert_eq!(
            non_white_box(&image::RgbImage::from_pixel(
                5,
                5,
                image::Rgb([245, 250, 255])
            )),
            None
        );
    }

    #[test]
    fn ladder_has_five_increasing_levels_per_distortion() {
        for (_, levels) in ladder_levels() {
            assert_eq!(levels.len(), 5);
        }
    }
}
