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

use burn::tensor::Device;
use rayon::prelude::*;
use serde::Serialize;
use shotgrade_core::BBox;
use shotgrade_models::position::detections;
use shotgrade_models::{ExperienceNet, PositionNet, load_net};
use shotgrade_synth::labels::Part;
use shotgrade_synth::{Assets, ComposeSettings};
use std::path::{Path, PathBuf};

use crate::background::predict_ensemble;
use crate::data::{TEST_SEED_BASE, real_background, synthetic_background};
use crate::ensemble::load_background_members;
use crate::error::TrainError;
use crate::experience::ladder::{Ladder, LadderResult};
use crate::experience::{ExperienceMetrics, evaluate_experience, synthetic_pairs};
use crate::metrics::{ClassMetrics, classification};
use crate::position::{PositionMetrics, evaluate_position, raw_outputs, synthetic_position};
use crate::position_real::{load_boxed, real_example};

/// First seeds of the test sets (validation sets use other offsets from `TEST_SEED_BASE`).
const BACKGROUND_TEST: u64 = TEST_SEED_BASE + 10_000_000;
const POSITION_TEST: u64 = TEST_SEED_BASE + 11_000_000;
const EXPERIENCE_TEST: u64 = TEST_SEED_BASE + 12_000_000;

/// Sizes (and, for the ladder, the source) of the evaluation sets.
#[derive(Debug, Clone, Copy)]
pub struct EvalSizes {
    pub synthetic: usize,
    /// Real photos in the distortion ladder.
    pub ladder_photos: usize,
    /// Which product families the ladder's photos come from.
    pub ladder_families: LadderFamilies,
    /// Which seeds the background composites come from.
    pub background_split: BackgroundSplit,
}

/// The seed range of the background evaluation's composites (always 160–640 px).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundSplit {
    /// Never trained on or chosen by: the numbers of the model card.
    #[default]
    Test,
    /// The seeds `train background` chooses checkpoints by (its validation composites, drawn
    /// at 160–640 px): for choosing between candidates — e.g. which snapshots to ensemble —
    /// without looking at the test set.
    Validation,
}

/// The shop-photo product families a distortion ladder is drawn from (see `ShopSplit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LadderFamilies {
    /// Never trained on or chosen by: the numbers of the model card.
    #[default]
    Test,
    /// The families experience training chooses checkpoints by: for comparing candidate
    /// weights without looking at the test families.
    Validation,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackgroundEval {
    /// The weights files evaluated (more than one: their snapshot ensemble).
    pub weights: Vec<String>,
    /// Whether the model has its second stage (white against off-white from the border).
    pub second_stage: bool,
    /// Whose seeds the synthetic composites come from.
    pub split: BackgroundSplit,
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
    /// The top detection against the boxes drawn by eye on the labelled real photos of one
    /// part (`data/real`). Replaces the old "box of the non-white pixels" truth on magento2's
    /// white photos: most of those are garments worn by a model, where the product is the
    /// garment, not the whole person.
    pub real: RealBoxes,
    pub frame_filling: FrameFillingProbes,
}

/// Mean IoU of the top detection on the boxed real photos of one part.
#[derive(Debug, Clone, Serialize)]
pub struct RealBoxes {
    pub part: &'static str,
    pub photos: usize,
    pub mean_iou: f32,
}

/// Cut-outs (printed cartons, patterned clothes, electronics) pasted on pure white so that
/// they span 85–98 % of the frame: how far the top detection's span is from the truth.
#[derive(Debug, Clone, Serialize)]
pub struct FrameFillingProbes {
    pub probes: usize,
    /// Mean |predicted span − true span| in points of the frame, on the axis the product
    /// spans most (a probe with no detection counts its whole span).
    pub mean_span_error: f32,
    /// Share of probes whose span is within 5 points of the truth.
    pub within_5_points: f32,
    /// Mean IoU of the top detection with the true box (0 where nothing was detected).
    pub mean_iou: f32,
}

/// Side of the square probe frames.
const PROBE_SIDE: u32 = 800;

/// A cut-out on `backdrop` (a `PROBE_SIDE` square), scaled so that its opaque box spans `span`
/// of the frame on its longer axis, centred; returns the photo and that box.
fn frame_filling_probe(
    cutout: &shotgrade_synth::assets::Cutout,
    span: f32,
    backdrop: &image::RgbImage,
) -> (image::RgbImage, BBox) {
    let o = cutout.opaque;
    let scale = span * PROBE_SIDE as f32 / o.width().max(o.height()).max(1.0);
    let (w, h) = (
        ((cutout.image.width() as f32 * scale).round() as u32).max(1),
        ((cutout.image.height() as f32 * scale).round() as u32).max(1),
    );
    let resized =
        image::imageops::resize(&cutout.image, w, h, image::imageops::FilterType::Triangle);
    // Centre the opaque box, not the cut-out's canvas.
    let (bx0, by0) = (o.x0 * scale, o.y0 * scale);
    let (bw, bh) = (o.width() * scale, o.height() * scale);
    let ox = (PROBE_SIDE as f32 - bw) / 2.0 - bx0;
    let oy = (PROBE_SIDE as f32 - bh) / 2.0 - by0;
    let mut canvas = backdrop.clone();
    for (x, y, p) in resized.enumerate_pixels() {
        let (cx, cy) = (x as i64 + ox.round() as i64, y as i64 + oy.round() as i64);
        if cx < 0 || cy < 0 || cx >= PROBE_SIDE as i64 || cy >= PROBE_SIDE as i64 {
            continue;
        }
        let a = p[3] as f32 / 255.0;
        let dst = canvas.get_pixel_mut(cx as u32, cy as u32);
        for c in 0..3 {
            dst[c] = (p[c] as f32 * a + dst[c] as f32 * (1.0 - a)).round() as u8;
        }
    }
    let truth = BBox::new(
        bx0 + ox.round(),
        by0 + oy.round(),
        bx0 + ox.round() + bw,
        by0 + oy.round() + bh,
    );
    (canvas, truth)
}

/// A plain `PROBE_SIDE` square of one colour.
fn plain_backdrop(rgb: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_pixel(PROBE_SIDE, PROBE_SIDE, image::Rgb(rgb))
}

/// The frame-filling probes of [`FrameFillingProbes`] for `net`: `count` probes, probe `i` the
/// cut-out `i mod n` on the backdrop `i mod b` (each a `PROBE_SIDE` square), spans spread
/// evenly over 85–98 %.
fn probe_frame_filling(
    net: &PositionNet,
    config: &shotgrade_models::PositionNetConfig,
    cutouts: &[shotgrade_synth::assets::Cutout],
    backdrops: &[image::RgbImage],
    count: usize,
    device: &Device,
) -> FrameFillingProbes {
    let size = config.input_size;
    let decoder = config.decoder();
    let count = if cutouts.is_empty() || backdrops.is_empty() {
        0
    } else {
        count
    };
    let probes: Vec<(Vec<f32>, shotgrade_core::Letterbox, BBox)> = (0..count)
        .into_par_iter()
        .map_init(
            || crate::data::preprocessor(size as u32),
            |pre, i| {
                let span = 0.85 + 0.13 * (i as f32 + 0.5) / count as f32;
                let (photo, truth) = frame_filling_probe(
                    &cutouts[i % cutouts.len()],
                    span,
                    &backdrops[i % backdrops.len()],
                );
                let (input, lb) = pre.position_input(&photo);
                (input, lb, truth)
            },
        )
        .collect();
    let span_of = |b: &BBox, truth: &BBox| {
        if truth.width() >= truth.height() {
            b.width() / PROBE_SIDE as f32
        } else {
            b.height() / PROBE_SIDE as f32
        }
    };
    let raw = raw_outputs(net, probes.iter().map(|(i, ..)| i.as_slice()), size, device);
    let scored: Vec<(f32, f32)> = probes
        .iter()
        .zip(&raw)
        .map(|((_, lb, truth), raw)| {
            let top = detections(&decoder, raw, lb).into_iter().next();
            let predicted = top.as_ref().map_or(0.0, |t| span_of(&t.bbox, truth));
            let iou = top.map_or(0.0, |t| shotgrade_core::geometry::iou(&t.bbox, truth));
            ((predicted - span_of(truth, truth)).abs() * 100.0, iou)
        })
        .collect();
    let n = scored.len().max(1) as f32;
    FrameFillingProbes {
        probes: scored.len(),
        mean_span_error: scored.iter().map(|(e, _)| e).sum::<f32>() / n,
        within_5_points: scored.iter().filter(|(e, _)| *e <= 5.0).count() as f32 / n,
        mean_iou: scored.iter().map(|(_, iou)| iou).sum::<f32>() / n,
    }
}

/// Frame-filling probes of products no training run composes (the held-out cut-outs: printed
/// cartons, bottles and produce), per kind of backdrop: pure white, off-white (RGB 236, 232,
/// 224) and the texture photos (paper, canvas, wood) — `count` probes each.
pub fn held_out_frame_filling(
    weights: &Path,
    assets_dir: &Path,
    count: usize,
) -> Result<Vec<(&'static str, FrameFillingProbes)>, TrainError> {
    let device = Device::flex();
    let (net, config) = load_net::<PositionNet>(weights, &device)?;
    let cutouts = shotgrade_synth::assets::held_out_cutouts(assets_dir, 640)?;
    let textures: Vec<image::RgbImage> = shotgrade_synth::assets::textures(assets_dir, 800)?
        .iter()
        .map(|t| {
            image::imageops::resize(
                t,
                PROBE_SIDE,
                PROBE_SIDE,
                image::imageops::FilterType::Triangle,
            )
        })
        .collect();
    let kinds: [(&'static str, Vec<image::RgbImage>); 3] = [
        ("white", vec![plain_backdrop([255, 255, 255])]),
        ("off-white", vec![plain_backdrop([236, 232, 224])]),
        ("textured", textures),
    ];
    Ok(kinds
        .into_iter()
        .map(|(kind, backdrops)| {
            let probes = probe_frame_filling(&net, &config, &cutouts, &backdrops, count, &device);
            (kind, probes)
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperienceEval {
    pub synthetic: ExperienceMetrics,
    pub ladder_families: LadderFamilies,
    pub ladder: Vec<LadderResult>,
    pub ladder_photos: usize,
    /// Over all three distortions.
    pub ladder_mean_srcc_noise: f32,
    pub ladder_pair_accuracy_middle: f32,
}

/// Evaluates the background network in `weights` — or, given several files (or an ensemble
/// file), the snapshot ensemble of all their networks (the mean of their probabilities; all
/// must share one shape).
pub fn eval_background(
    weights: &[PathBuf],
    assets_dir: &Path,
    sizes: EvalSizes,
) -> Result<BackgroundEval, TrainError> {
    let device = Device::flex();
    let loaded = load_background_members(weights, &device)?;
    let (model, config, trees) = (loaded.ensemble, loaded.config, loaded.trees);
    let second_stage = model.level.is_some() || trees.is_some();
    let config_size = config.input_size;
    let assets = Assets::load(assets_dir, 320, 640)?;
    let first_seed = match sizes.background_split {
        BackgroundSplit::Test => BACKGROUND_TEST,
        BackgroundSplit::Validation => TEST_SEED_BASE,
    };
    let seeds: Vec<u64> = (0..sizes.synthetic as u64)
        .map(|i| first_seed + i)
        .collect();
    let settings = ComposeSettings {
        min_side: 160,
        max_side: 640,
        degrade_probability: 0.5,
        ..ComposeSettings::default()
    };
    let (synth, labels): (Vec<_>, Vec<_>) =
        synthetic_background(&assets, &seeds, &settings, &config)
            .into_iter()
            .unzip();
    let truth: Vec<usize> = synth.iter().map(|e| e.class.index()).collect();
    let predicted = predict_ensemble(&model, trees.as_ref(), &synth, config_size, &device);
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
    let (real, _) = real_background(assets_dir, &prefixes, &config)?;
    let truth: Vec<usize> = real.iter().map(|e| e.class.index()).collect();
    let real_m = classification(
        &truth,
        &predict_ensemble(&model, trees.as_ref(), &real, config_size, &device),
        5,
    );
    Ok(BackgroundEval {
        weights: weights.iter().map(|p| p.display().to_string()).collect(),
        second_stage,
        split: sizes.background_split,
        synthetic,
        synthetic_errors,
        real: real_m,
        real_sources: prefixes.iter().map(|s| s.to_string()).collect(),
    })
}

/// The position network on synthetic test composites, the boxed real photos of `part` and
/// the frame-filling probes.
pub fn eval_position(
    weights: &Path,
    assets_dir: &Path,
    labels: &Path,
    part: Part,
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
        ..ComposeSettings::default()
    };
    let synth = synthetic_position(&assets, &seeds, &settings, size as u32);
    let synthetic = evaluate_position(&net, &levels, &synth, size, &device);

    let mut pre = crate::data::preprocessor(size as u32);
    let boxed: Vec<_> = load_boxed(labels, assets_dir, part)?
        .iter()
        .map(|p| real_example(&mut pre, p, false))
        .collect();
    let real = evaluate_position(&net, &levels, &boxed, size, &device);
    // Every `step`-th training cut-out on white: the series the model card has tracked since
    // the first detector (`held_out_frame_filling` measures products no run trained on).
    let step = (assets.cutouts.len() / 200).max(1);
    let spread: Vec<shotgrade_synth::assets::Cutout> = assets
        .cutouts
        .iter()
        .step_by(step)
        .take(200)
        .cloned()
        .collect();
    let frame_filling = probe_frame_filling(
        &net,
        &config,
        &spread,
        &[plain_backdrop([255, 255, 255])],
        spread.len(),
        &device,
    );
    Ok(PositionEval {
        synthetic,
        real: RealBoxes {
            part: part.as_str(),
            photos: real.count,
            mean_iou: real.mean_iou,
        },
        frame_filling,
    })
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
        ..ComposeSettings::default()
    };
    let pairs = synthetic_pairs(&assets, &seeds, &settings, side as u32);
    let synthetic = evaluate_experience(&net, &pairs, side, &device);

    // Only the test product families: no training run sees them, and none chooses a checkpoint
    // by them (see `ShopSplit`).
    let split = shotgrade_synth::assets::shop_photo_split(assets_dir)?;
    let photos = match sizes.ladder_families {
        LadderFamilies::Test => split.test,
        LadderFamilies::Validation => split.validation,
    };
    let ladder = Ladder::from_photos(&photos, sizes.ladder_photos).measure(&net, side, &device);
    Ok(ExperienceEval {
        synthetic,
        ladder_families: sizes.ladder_families,
        ladder_photos: ladder.photos,
        ladder_mean_srcc_noise: ladder.mean_srcc_noise,
        ladder_pair_accuracy_middle: ladder.pair_accuracy_middle,
        ladder: ladder.ladder,
    })
}
