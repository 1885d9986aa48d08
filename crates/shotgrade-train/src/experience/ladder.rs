//! The distortion ladder: real photos at five levels of Gaussian noise, blur and JPEG quality,
//! scored by the experience network. `shotgrade eval` runs it on the held-out product families
//! of the shop photos; experience training runs a smaller one on the validation families to
//! choose its checkpoint (see `ShopSplit`).

use burn::tensor::Device;
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shotgrade_image::Limits;
use shotgrade_models::ExperienceNet;
use shotgrade_synth::assets::RealPhoto;
use shotgrade_synth::compose::jpeg_round_trip;
use shotgrade_synth::{Degradation, SplitMix64, degrade};

use super::measure::predict;
use super::pairs::ExperienceExample;
use crate::metrics::srcc;

/// How one distortion's ladder went.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The ladder over all three distortions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LadderSummary {
    pub ladder: Vec<LadderResult>,
    pub photos: usize,
    /// Over all three distortions.
    pub mean_srcc_noise: f32,
    pub pair_accuracy_middle: f32,
}

/// One rung of the ladder: its name, the pixel damage and the JPEG quality.
type Rung = (String, Degradation, u8);

/// The ladder's five levels per kind; the first is the photo itself (re-encoded at 95).
pub(crate) fn ladder_levels() -> Vec<(&'static str, Vec<Rung>)> {
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

/// Decoded ladder photos.
pub struct Ladder {
    images: Vec<RgbImage>,
}

impl Ladder {
    /// A fixed, spread-out subset of `photos`: every k-th in order, up to `count`, decoded once.
    /// Unreadable files are skipped.
    pub fn from_photos(photos: &[RealPhoto], count: usize) -> Ladder {
        let step = (photos.len() / count.max(1)).max(1);
        let chosen: Vec<&RealPhoto> = photos.iter().step_by(step).take(count).collect();
        Ladder {
            images: chosen
                .par_iter()
                .filter_map(|p| {
                    shotgrade_image::load_path(&p.path, &Limits::default())
                        .ok()
                        .map(|l| l.rgb)
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Scores every photo at every rung with `net` (input side `side`).
    pub fn measure(&self, net: &ExperienceNet, side: usize, device: &Device) -> LadderSummary {
        let mut ladder = Vec::new();
        let (mut all_srcc, mut all_wins, mut all_pairs) = (Vec::new(), 0usize, 0usize);
        for (name, levels) in ladder_levels() {
            let inputs: Vec<Vec<ExperienceExample>> = self
                .images
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
                let pred = predict(net, &refs, side, device);
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
        LadderSummary {
            ladder,
            photos: self.images.len(),
            mean_srcc_noise: all_srcc.iter().sum::<f32>() / all_srcc.len().max(1) as f32,
            pair_accuracy_middle: all_wins as f32 / all_pairs.max(1) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_has_five_levels_per_distortion_starting_undamaged() {
        for (_, levels) in ladder_levels() {
            assert_eq!(levels.len(), 5);
            let (_, first, quality) = &levels[0];
            assert_eq!(
                (first.noise_sigma, first.blur_radius, *quality),
                (0.0, 0, 95)
            );
        }
    }

    #[test]
    fn empty_ladder_measures_nothing() {
        let ladder = Ladder::from_photos(&[], 10);
        assert!(ladder.is_empty());
    }
}
