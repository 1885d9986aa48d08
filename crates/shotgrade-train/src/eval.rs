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
use shotgrade_image::SnapSettings;
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
    /// The same probes with the boxes snapped to the pixels, as the grader boxes them.
    pub frame_filling_snapped: FrameFillingProbes,
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

/// One frame-filling probe: the photo, its true box and the network's top box.
pub struct FrameFillingProbe {
    /// Which backdrop it is on: `white`, `off-white` or `textured`.
    pub kind: &'static str,
    pub photo: image::RgbImage,
    pub truth: BBox,
    /// The position network's most probable box, in the photo's pixels.
    pub detected: Option<BBox>,
}

/// `count` probes for `net`: probe `i` the cut-out `i mod n` on the backdrop `i mod b` (each a
/// `PROBE_SIDE` square), spans spread evenly over 85–98 %.
fn detect_probes(
    net: &PositionNet,
    config: &shotgrade_models::PositionNetConfig,
    (kind, cutouts, backdrops): (
        &'static str,
        &[shotgrade_synth::assets::Cutout],
        &[image::RgbImage],
    ),
    count: usize,
    device: &Device,
) -> Vec<FrameFillingProbe> {
    let size = config.input_size;
    let decoder = config.decoder();
    let count = if cutouts.is_empty() || backdrops.is_empty() {
        0
    } else {
        count
    };
    let probes: Vec<(image::RgbImage, Vec<f32>, shotgrade_core::Letterbox, BBox)> = (0..count)
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
                (photo, input, lb, truth)
            },
        )
        .collect();
    let raw = raw_outputs(
        net,
        probes.iter().map(|(_, i, ..)| i.as_slice()),
        size,
        device,
    );
    probes
        .into_iter()
        .zip(&raw)
        .map(|((photo, _, lb, truth), raw)| FrameFillingProbe {
            kind,
            photo,
            truth,
            detected: detections(&decoder, raw, &lb).first().map(|d| d.bbox),
        })
        .collect()
}

/// Span error, share within 5 points and mean IoU of `probes`' boxes: the network's own, or
/// snapped to the pixels as the grader does when `snap` is given.
pub fn score_probes<'a>(
    probes: impl IntoIterator<Item = &'a FrameFillingProbe>,
    snap: Option<&SnapSettings>,
) -> FrameFillingProbes {
    let span_of = |b: &BBox, truth: &BBox| {
        if truth.width() >= truth.height() {
            b.width() / PROBE_SIDE as f32
        } else {
            b.height() / PROBE_SIDE as f32
        }
    };
    let probes: Vec<&FrameFillingProbe> = probes.into_iter().collect();
    let scored: Vec<(f32, f32)> = probes
        .par_iter()
        .map(|p| {
            let boxed = p.detected.map(|d| match snap {
                Some(s) => shotgrade_image::snap_to_backdrop(&p.photo, &d, s).unwrap_or(d),
                None => d,
            });
            let predicted = boxed.map_or(0.0, |b| span_of(&b, &p.truth));
            let iou = boxed.map_or(0.0, |b| shotgrade_core::geometry::iou(&b, &p.truth));
            ((predicted - span_of(&p.truth, &p.truth)).abs() * 100.0, iou)
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

/// Which cut-outs frame-filling probes are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeCutouts {
    /// Products no training run composes (`shotgrade_synth::assets::HELD_OUT_CUTOUT_SOURCES`:
    /// printed cartons, bottles and produce): the test suite's probes.
    HeldOut,
    /// Every n-th training cut-out, 200 in all: for choosing settings without the held-out ones.
    Training,
}

/// Frame-filling probes per kind of backdrop — pure white, off-white (RGB 236, 232, 224) and
/// the texture photos (paper, canvas, wood) — `count` each, boxed by the position network in
/// `weights`.
pub fn frame_filling_probes(
    weights: &Path,
    assets_dir: &Path,
    cutouts: ProbeCutouts,
    count: usize,
) -> Result<Vec<FrameFillingProbe>, TrainError> {
    let device = Device::flex();
    let (net, config) = load_net::<PositionNet>(weights, &device)?;
    let cutouts = match cutouts {
        ProbeCutouts::HeldOut => shotgrade_synth::assets::held_out_cutouts(assets_dir, 640)?,
        ProbeCutouts::Training => training_spread(&Assets::load(assets_dir, 320, 640)?),
    };
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
        .iter()
        .flat_map(|(kind, backdrops)| {
            detect_probes(&net, &config, (kind, &cutouts, backdrops), count, &device)
        })
        .collect())
}

/// [`frame_filling_probes`] of the held-out cut-outs, scored per kind of backdrop with the
/// grader's snapping (`snap`) or the network's own boxes (`None`).
pub fn held_out_frame_filling(
    weights: &Path,
    assets_dir: &Path,
    count: usize,
    snap: Option<&SnapSettings>,
) -> Result<Vec<(&'static str, FrameFillingProbes)>, TrainError> {
    let probes = frame_filling_probes(weights, assets_dir, ProbeCutouts::HeldOut, count)?;
    Ok(["white", "off-white", "textured"]
        .into_iter()
        .map(|kind| {
            let of_kind = probes.iter().filter(|p| p.kind == kind);
            (kind, score_probes(of_kind, snap))
        })
        .collect())
}

/// Every n-th training cut-out, 200 in all: the series the model card has tracked since the
/// first detector.
fn training_spread(assets: &Assets) -> Vec<shotgrade_synth::assets::Cutout> {
    let step = (assets.cutouts.len() / 200).max(1);
    assets
        .cutouts
        .iter()
        .step_by(step)
        .take(200)
        .cloned()
        .collect()
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
    // Every n-th training cut-out on white: the series the model card has tracked since the
    // first detector (`held_out_frame_filling` measures products no run trained on).
    let spread = training_spread(&assets);
    let probes = detect_probes(
        &net,
        &config,
        ("white", &spread, &[plain_backdrop([255, 255, 255])]),
        spread.len(),
        &device,
    );
    let frame_filling = score_probes(&probes, None);
    let frame_filling_snapped = score_probes(&probes, Some(&SnapSettings::default()));
    Ok(PositionEval {
        synthetic,
        real: RealBoxes {
            part: part.as_str(),
            photos: real.count,
            mean_iou: real.mean_iou,
        },
        frame_filling,
        frame_filling_snapped,
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
