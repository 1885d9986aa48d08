//! Training the visual-experience network (S140) with its twin (claims 2–4).
//!
//! For every composite the **twin** sees the clean image with the clean labels and the **main**
//! network a degraded copy (Gaussian noise, blur and/or strong JPEG) with that copy's labels.
//! Both have the same architecture and separate parameters; the main network is the one that
//! ships. Loss variants ([`TwinLoss`]):
//!
//! * `seed` — the claims literally: no loss when the twin's visual score ≥ the main network's;
//!   otherwise a function of the twin's regression loss `L_t` and the main network's `L_m`,
//!   "their difference": `|L_t − L_m|` (the signed difference is unbounded below, so its
//!   magnitude is used).
//! * `seed-sum` — the same gate with `L_t + L_m`, the other reading of claim 4.
//! * `ranked` — regression losses always on (`L_t + L_m`) plus a hinge that is active only when
//!   the twin scores below the main network: `λ · max(0, v_m − v_t + margin)`.
//! * `none` — no twin: the main network's regression loss alone, on the degraded copies and
//!   the clean images alike.
//!
//! With `none`, real photos (`real/grocery/train`, the backdrop photos and the shop photos of
//! the training product families — never a product family of the distortion ladder, see
//! `ShopSplit`) can join every batch as clean / degraded pairs
//! ([`real_pairs`]): their noise label is the damage of each copy, as for composites, counting
//! the JPEG quality the photo arrived with (estimated from its quantisation table); their
//! aesthetic is unknown, so the clean copy has no aesthetic target and the degraded copy's
//! target is the clean copy's prediction (held fixed) lowered by the sharpness term of the
//! aesthetic label for the damage added, `0.20 · Δdamage`.
//!
//! The visual score in the gate is `(aesthetic + noise) / 2` of the network outputs.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;
use shotgrade_image::{Preprocessor, on_jpeg_grid};
use shotgrade_models::{ExperienceNet, ExperienceNetConfig};
use shotgrade_synth::compose::{
    CLEAN_JPEG_QUALITY, DamageKinds, DegradationLabel, compose_clean, damage, jpeg_round_trip,
    random_damage,
};
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64};
use shotgrade_synth::{Degradation, degrade};
use std::path::PathBuf;
use std::time::Instant;

use crate::background::TrainError;
use crate::data::TEST_SEED_BASE;
use crate::ladder::{Ladder, LadderSummary};
use crate::metrics::{plcc, srcc};
use crate::pool::{Mirror, RecentPool, fresh_per_batch, mirror_rows};
use crate::schedule::{
    Checkpoints, ComputeDevice, Progress, RunSettings, learning_rate, starting_net, write_report,
};

/// How the twin's and the main network's losses combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwinLoss {
    Seed,
    SeedSum,
    Ranked,
    None,
}

impl TwinLoss {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "seed" => Some(TwinLoss::Seed),
            "seed-sum" => Some(TwinLoss::SeedSum),
            "ranked" => Some(TwinLoss::Ranked),
            "none" => Some(TwinLoss::None),
            _ => None,
        }
    }
}

/// Margin and weight of the `ranked` hinge (scores in 0–1).
const HINGE_MARGIN: f32 = 0.05;
const HINGE_WEIGHT: f32 = 2.0;

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

/// Weight of the sharpness index in the aesthetic label (see the compositor's label).
const AESTHETIC_SHARPNESS_WEIGHT: f32 = 0.20;

/// A real training photo and the JPEG quality it arrived with (estimated from its
/// quantisation table; 100 when it is not a JPEG).
#[derive(Debug, Clone)]
pub struct RealPhoto {
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
    photos: &[RealPhoto],
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

/// Settings of an experience training run.
#[derive(Debug, Clone)]
pub struct ExperienceTrainSettings {
    /// Folders, length, schedule and checkpointing of the run.
    pub run: RunSettings,
    pub twin_loss: TwinLoss,
    /// Real-photo pairs per batch, as a share of the synthetic pairs (`none` loss only).
    pub real_fraction: f32,
    /// Most real photos held in memory for the real pairs.
    pub real_photos: usize,
    /// Share of the real pairs drawn from the large, high-quality photos — the backdrop photos
    /// ([`LARGE_PHOTO_FOLDERS`], up to 1280 px) and the shop packshots of the training product
    /// families (645–800 px), as random native-resolution crops — rather than the 348 px store
    /// photos: damage on a large photo is only visible in the detail view, which is what
    /// uploads of 800–2000 px need.
    pub large_share: f32,
    /// Photos in the validation ladder (shop photos of the validation product families, see
    /// `ShopSplit`) measured at every evaluation; the checkpoint is chosen by it together with
    /// the synthetic validation pairs. 0 chooses by the synthetic pairs alone.
    pub ladder_photos: usize,
    /// Share of the real pairs' JPEG damage drawn from the very low qualities (5–20) rather
    /// than uniformly from 5–90 ([`DamageKinds::low_jpeg_share`]).
    pub low_jpeg_share: f32,
    /// Share of the real pairs whose damaged copy gets one mild damage (σ 2–10, blur radius
    /// 1–2 or JPEG 45–85, [`DamageKinds::mild_share`]): the ladder's first rungs.
    pub mild_share: f32,
    /// How many times, on average, each rendered pair (synthetic or real) is used: with
    /// `reuse > 1`, once a pool of the `reuse_pool` most recent pairs has filled, each step
    /// renders `⌈pairs / reuse⌉` afresh and draws the rest from the pool, both images of a
    /// drawn pair mirrored left–right with probability ½. 1 renders every pair afresh.
    pub reuse: usize,
    /// Pairs each reuse pool (synthetic, real) holds ([`EXPERIENCE_REUSE_POOL`] by default).
    pub reuse_pool: usize,
    pub compose: ComposeSettings,
    pub config: ExperienceNetConfig,
}

/// Default size of each experience reuse pool: 384 pairs of ~1.2 MB, ~0.9 GB for both pools.
pub const EXPERIENCE_REUSE_POOL: usize = 384;

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

impl Default for ExperienceTrainSettings {
    fn default() -> Self {
        ExperienceTrainSettings {
            run: RunSettings {
                assets: PathBuf::from("../shared/assets"),
                out: PathBuf::from("runs/experience"),
                steps: 800,
                batch_size: 16,
                learning_rate: 1e-3,
                seed: 1,
                eval_every: 200,
                patience: 10,
                validation_size: 300,
                init_from: None,
                device: ComputeDevice::Cpu,
                keep_checkpoints: false,
            },
            twin_loss: TwinLoss::None,
            // The data settings of `exp-lowjpeg` (models/README.md); the shipped weights' last run
            // differed only in `low_jpeg_share` (0.5) and its seed.
            real_fraction: 0.5,
            real_photos: 1500,
            large_share: 0.8,
            ladder_photos: 40,
            low_jpeg_share: 0.3,
            mild_share: 0.0,
            reuse: 1,
            reuse_pool: EXPERIENCE_REUSE_POOL,
            compose: ComposeSettings {
                min_side: 320,
                max_side: 640,
                degrade_probability: 0.0,
                ..ComposeSettings::default()
            },
            config: ExperienceNetConfig::new(),
        }
    }
}

/// Held-out measurements of an experience network on synthetic pairs.
#[derive(Debug, Clone, Serialize)]
pub struct ExperienceMetrics {
    /// SRCC between the noise label and the noise sub-score, over clean and degraded images.
    pub noise_srcc: f32,
    pub noise_plcc: f32,
    /// SRCC between the aesthetic label and the aesthetic sub-score.
    pub aesthetic_srcc: f32,
    /// Share of pairs where the clean image's visual score beats its degraded copy's.
    pub pair_accuracy: f32,
    pub pairs: usize,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExperienceReport {
    pub twin_loss: TwinLoss,
    pub steps_run: usize,
    pub best_step: usize,
    pub seconds: f64,
    /// Pairs rendered for training, synthetic and real (fewer than the pairs seen with
    /// `reuse > 1`).
    pub pairs_rendered: usize,
    pub synthetic_validation: ExperienceMetrics,
    /// The validation ladder at the chosen step (`None` when `ladder_photos` is 0).
    pub ladder_validation: Option<LadderSummary>,
    pub settings: String,
}

fn tensor(examples: &[&ExperienceExample], side: usize, device: &Device) -> (Tensor<4>, Tensor<2>) {
    let mut data = Vec::with_capacity(examples.len() * 6 * side * side);
    let mut labels = Vec::with_capacity(examples.len() * 2);
    for e in examples {
        data.extend_from_slice(&e.input);
        labels.extend_from_slice(&[e.aesthetic, e.noise]);
    }
    let n = examples.len();
    (
        Tensor::from_data(TensorData::new(data, [n, 3, side, 2 * side]), device),
        Tensor::from_data(TensorData::new(labels, [n, 2]), device),
    )
}

/// `(aesthetic, noise)` predictions in `[0, 1]` of a (non-autodiff) network.
pub fn predict(
    net: &ExperienceNet,
    examples: &[&ExperienceExample],
    side: usize,
    device: &Device,
) -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(32) {
        let (x, _) = tensor(chunk, side, device);
        let o = net.forward(x);
        let a: Vec<f32> = o.aesthetic.into_data().iter::<f32>().collect();
        let n: Vec<f32> = o.noise.into_data().iter::<f32>().collect();
        out.extend(a.into_iter().zip(n));
    }
    out
}

/// Noise/aesthetic correlations and clean > degraded pair accuracy.
pub fn evaluate_experience(
    net: &ExperienceNet,
    pairs: &[Pair],
    side: usize,
    device: &Device,
) -> ExperienceMetrics {
    let clean: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.clean).collect();
    let degraded: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.degraded).collect();
    let pc = predict(net, &clean, side, device);
    let pd = predict(net, &degraded, side, device);
    let all_examples: Vec<&ExperienceExample> = clean.iter().chain(&degraded).copied().collect();
    let all_pred: Vec<(f32, f32)> = pc.iter().chain(&pd).copied().collect();
    let noise_label: Vec<f32> = all_examples.iter().map(|e| e.noise).collect();
    let noise_pred: Vec<f32> = all_pred.iter().map(|p| p.1).collect();
    let aes_label: Vec<f32> = all_examples.iter().map(|e| e.aesthetic).collect();
    let aes_pred: Vec<f32> = all_pred.iter().map(|p| p.0).collect();
    let wins = pc
        .iter()
        .zip(&pd)
        .filter(|(c, d)| c.0 + c.1 > d.0 + d.1)
        .count();
    ExperienceMetrics {
        noise_srcc: srcc(&noise_label, &noise_pred),
        noise_plcc: plcc(&noise_label, &noise_pred),
        aesthetic_srcc: srcc(&aes_label, &aes_pred),
        pair_accuracy: wins as f32 / pairs.len().max(1) as f32,
        pairs: pairs.len(),
    }
}

/// Per-sample mean squared error of both heads. `[n, 2]` predictions and labels → `[n]`.
fn regression(pred: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    (pred - labels).powf_scalar(2.0).mean_dim(1)
}

/// The loss on real pairs from `(aesthetic, noise)` predictions of the clean copies and the
/// degraded copies (`[n, 2]` each): noise regression on both, and the degraded copy's
/// aesthetic pulled to the clean copy's (held fixed) minus the sharpness share of the damage
/// it added.
fn real_pair_loss(
    clean: Tensor<2>,
    degraded: Tensor<2>,
    pairs: &[RealPair],
    device: &Device,
) -> Tensor<1> {
    let n = pairs.len();
    let column = |f: fn(&RealPair) -> f32| {
        let v: Vec<f32> = pairs.iter().map(f).collect();
        Tensor::<2>::from_data(TensorData::new(v, [n, 1]), device)
    };
    let c = column(|p| p.clean_damage);
    let d = column(|p| p.damage);
    let noise_clean = (clean.clone().narrow(1, 1, 1) - (c.clone().neg() + 1.0)).powf_scalar(2.0);
    let noise_degraded =
        (degraded.clone().narrow(1, 1, 1) - (d.clone().neg() + 1.0)).powf_scalar(2.0);
    let aesthetic_target = (clean.narrow(1, 0, 1).detach()
        - (d - c).clamp_min(0.0) * AESTHETIC_SHARPNESS_WEIGHT)
        .clamp_min(0.0);
    let aesthetic = (degraded.narrow(1, 0, 1) - aesthetic_target).powf_scalar(2.0);
    (noise_clean + noise_degraded + aesthetic).mean() / 2.0
}

/// Real photos for training, loaded once: every k-th of [`REAL_TRAINING_PHOTOS`] up to
/// `limit`, each with its estimated JPEG quality. Unreadable files are skipped.
fn load_real_photos(root: &std::path::Path, limit: usize) -> Result<Vec<RealPhoto>, TrainError> {
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
fn read_real_photo(path: &std::path::Path) -> Option<RealPhoto> {
    let loaded = shotgrade_image::load_path(path, &shotgrade_image::Limits::default()).ok()?;
    Some(RealPhoto {
        quality: loaded.facts.jpeg_quality.unwrap_or(100),
        rgb: loaded.rgb,
    })
}

/// The large real photos: those of [`LARGE_PHOTO_FOLDERS`] and `shop` (the shop photos of the
/// training product families), each with its estimated JPEG quality. Unreadable files are
/// skipped.
fn load_large_photos(
    root: &std::path::Path,
    shop: Vec<shotgrade_synth::assets::RealPhoto>,
) -> Vec<RealPhoto> {
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

/// Trains the main network (and its twin), keeps the best main network by noise SRCC and pair
/// accuracy on held-out synthetic pairs and on the validation ladder, writes
/// `experience.safetensors` and `experience.metrics.json`.
pub fn train_experience(
    settings: &ExperienceTrainSettings,
    log: &mut dyn FnMut(&str),
) -> Result<ExperienceReport, TrainError> {
    let (device, eval_device) = settings.run.devices()?;
    let (mut main, config) =
        starting_net::<ExperienceNet>(&settings.run, &settings.config, &device)?;
    // The twin starts where the main network does when continuing, fresh otherwise.
    let mut twin = match settings.run.init_from {
        Some(_) => main.clone(),
        None => config.init(&device),
    };
    if settings.run.batch_size < 2
        || settings.run.eval_every == 0
        || !(0.0..=1.0).contains(&settings.large_share)
        || !(0.0..=1.0).contains(&settings.low_jpeg_share)
        || !(0.0..=1.0).contains(&settings.mild_share)
        || settings.reuse == 0
        || (settings.reuse > 1 && settings.reuse_pool == 0)
    {
        return Err(TrainError::Settings(
            "need batch_size >= 2, eval_every >= 1, large_share, low_jpeg_share and mild_share \
             in [0, 1], reuse >= 1 (with a pool of at least one pair)"
                .into(),
        ));
    }
    let started = Instant::now();
    let side = config.input_size;
    log("loading assets…");
    let assets = Assets::load(&settings.run.assets, ASSET_SIDES.0, ASSET_SIDES.1)?;
    let val_seeds: Vec<u64> = (0..settings.run.validation_size as u64)
        .map(|i| TEST_SEED_BASE + 2_000_000 + i)
        .collect();
    let validation = synthetic_pairs(&assets, &val_seeds, &settings.compose, side as u32);
    let shop = shotgrade_synth::assets::shop_photo_split(&settings.run.assets)?;
    let ladder = if settings.ladder_photos > 0 {
        let ladder = Ladder::from_photos(&shop.validation, settings.ladder_photos);
        log(&format!(
            "validation ladder: {} shop photos of the validation product families",
            ladder.len()
        ));
        Some(ladder).filter(|l| !l.is_empty())
    } else {
        None
    };

    let real_per_batch = (settings.run.batch_size as f32 * settings.real_fraction).round() as usize;
    if real_per_batch > 0 && settings.twin_loss != TwinLoss::None {
        return Err(TrainError::Settings(
            "real photos (--real-fraction) are used with --twin-loss none only: the twin variants \
             need composite labels for both copies"
                .into(),
        ));
    }
    let real = if real_per_batch > 0 {
        let photos = load_real_photos(&settings.run.assets, settings.real_photos)?;
        let mut qualities: Vec<u8> = photos.iter().map(|p| p.quality).collect();
        qualities.sort_unstable();
        log(&format!(
            "{} real training photos from {} (median JPEG quality {})",
            photos.len(),
            REAL_TRAINING_PHOTOS.join(", "),
            qualities.get(qualities.len() / 2).copied().unwrap_or(100)
        ));
        if photos.is_empty() {
            return Err(TrainError::Settings(
                "no readable real training photos".into(),
            ));
        }
        photos
    } else {
        Vec::new()
    };
    let large = if real_per_batch > 0 && settings.large_share > 0.0 {
        let photos = load_large_photos(&settings.run.assets, shop.training);
        log(&format!(
            "{} large real photos from {} and the training families of {}",
            photos.len(),
            LARGE_PHOTO_FOLDERS.join(", "),
            shotgrade_synth::assets::SHOP_PHOTOS.join(", ")
        ));
        photos
    } else {
        Vec::new()
    };
    // Both pools in one list: store photos first, then the large ones.
    let store_count = real.len();
    let real: Vec<RealPhoto> = real.into_iter().chain(large).collect();
    let large_count = real.len() - store_count;
    let mut real_rng = SplitMix64::new(settings.run.seed ^ 0x0E1F_2A3B);
    let real_damage = DamageKinds {
        low_jpeg_share: settings.low_jpeg_share,
        mild_share: settings.mild_share,
        ..DamageKinds::EXPERIENCE
    };

    let mut optim_main = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut optim_twin = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut checkpoints = Checkpoints::new::<ExperienceNet>(
        &settings.run,
        &config,
        &[("twin_loss", format!("{:?}", settings.twin_loss))],
    )?;
    let mut steps_run = 0;
    let b = settings.run.batch_size;
    let mut progress = Progress::new(settings.run.steps, b, "pairs");
    let mut synthetic_pool: RecentPool<Pair> =
        RecentPool::for_reuse(settings.reuse, settings.reuse_pool);
    let mut real_pool: RecentPool<RealPair> =
        RecentPool::for_reuse(settings.reuse, settings.reuse_pool);
    // A stream of its own, so `reuse` 1 leaves the composite and real-photo streams as they were.
    let mut pool_rng = SplitMix64::new(settings.run.seed ^ 0x9E5E_0F00);
    let mut pairs_rendered = 0;
    if settings.reuse > 1 {
        log(&format!(
            "reusing pairs: each used ~{} times, from pools of the {} most recent",
            settings.reuse, settings.reuse_pool
        ));
    }

    for step in 0..settings.run.steps {
        let base = settings
            .run
            .seed
            .wrapping_mul(1 << 32)
            .wrapping_add(3 << 30)
            + (step * b) as u64;
        let fresh = fresh_per_batch(b, settings.reuse, synthetic_pool.is_full());
        let seeds: Vec<u64> = (0..fresh as u64)
            .map(|i| (base + i) % TEST_SEED_BASE)
            .collect();
        let mut pairs = synthetic_pairs(&assets, &seeds, &settings.compose, side as u32);
        pairs_rendered += pairs.len();
        pairs.extend((fresh..b).filter_map(|_| synthetic_pool.draw_mirrored(side, &mut pool_rng)));
        let clean: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.clean).collect();
        let degraded: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.degraded).collect();
        let n = pairs.len();

        let lr = learning_rate(step, settings.run.steps, settings.run.learning_rate, 100);

        if settings.twin_loss == TwinLoss::None {
            // No twin: the main network learns from the clean and the degraded images.
            let both: Vec<&ExperienceExample> = clean.iter().chain(&degraded).copied().collect();
            let (x, y) = tensor(&both, side, &device);
            let fresh_real = fresh_per_batch(real_per_batch, settings.reuse, real_pool.is_full());
            let picks: Vec<(usize, u64)> = (0..fresh_real)
                .map(|_| {
                    let i = if large_count > 0 && real_rng.unit() < settings.large_share {
                        store_count + (real_rng.next_u64() % large_count as u64) as usize
                    } else {
                        (real_rng.next_u64() % store_count.max(1) as u64) as usize
                    };
                    (i, real_rng.next_u64())
                })
                .collect();
            let mut real_batch = real_pairs(&real, &picks, side as u32, &real_damage);
            pairs_rendered += real_batch.len();
            real_batch.extend(
                (fresh_real..real_per_batch)
                    .filter_map(|_| real_pool.draw_mirrored(side, &mut pool_rng)),
            );
            let m = real_batch.len();
            let x = if m > 0 {
                let mut data = Vec::with_capacity(2 * m * 6 * side * side);
                for p in &real_batch {
                    data.extend_from_slice(&p.clean);
                }
                for p in &real_batch {
                    data.extend_from_slice(&p.degraded);
                }
                let xr =
                    Tensor::from_data(TensorData::new(data, [2 * m, 3, side, 2 * side]), &device);
                Tensor::cat(vec![x, xr], 0)
            } else {
                x
            };
            let (a, nz) = main.logits(x);
            let pred = sigmoid(Tensor::cat(vec![a, nz], 1));
            let synthetic = both.len();
            let mut loss = regression(pred.clone().narrow(0, 0, synthetic), y).mean();
            if m > 0 {
                loss = loss
                    + real_pair_loss(
                        pred.clone().narrow(0, synthetic, m),
                        pred.narrow(0, synthetic + m, m),
                        &real_batch,
                        &device,
                    );
            }
            progress.add_loss(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &main);
            main = optim_main.step(lr, main, grads);
            for p in real_batch.into_iter().take(fresh_real) {
                real_pool.push(p);
            }
        } else {
            let (xt, yt) = tensor(&clean, side, &device);
            let (xm, ym) = tensor(&degraded, side, &device);
            let (ta, tn) = twin.logits(xt);
            let (ma, mn) = main.logits(xm);
            let pt = sigmoid(Tensor::cat(vec![ta, tn], 1));
            let pm = sigmoid(Tensor::cat(vec![ma, mn], 1));
            let vt = pt.clone().mean_dim(1); // twin visual score [n, 1]
            let vm = pm.clone().mean_dim(1);
            let lt = regression(pt, yt); // [n, 1]
            let lm = regression(pm, ym);
            let gate = vm.clone().detach().greater(vt.clone().detach()).float(); // 1 where twin < main
            let loss = match settings.twin_loss {
                TwinLoss::Seed => ((lt - lm).abs() * gate).sum() / n as f64,
                TwinLoss::SeedSum => ((lt + lm) * gate).sum() / n as f64,
                TwinLoss::Ranked => {
                    (lt + lm + (vm - vt + HINGE_MARGIN).clamp_min(0.0) * HINGE_WEIGHT).mean()
                }
                TwinLoss::None => unreachable!("handled above"),
            };
            progress.add_loss(loss.clone().into_scalar::<f32>());
            let mut grads = loss.backward();
            let gm = GradientsParams::from_module(&mut grads, &main);
            let gt = GradientsParams::from_module(&mut grads, &twin);
            main = optim_main.step(lr, main, gm);
            twin = optim_twin.step(lr, twin, gt);
        }
        for p in pairs.into_iter().take(fresh) {
            synthetic_pool.push(p);
        }
        steps_run = step + 1;
        if let Some(line) = progress.line(steps_run, lr) {
            log(&line);
        }
        if steps_run % settings.run.eval_every == 0 || steps_run == settings.run.steps {
            let net = main.valid();
            let m = evaluate_experience(&net, &validation, side, &eval_device);
            let l = ladder.as_ref().map(|l| l.measure(&net, side, &eval_device));
            // Model selection on held-out data: noise SRCC plus pair accuracy of the synthetic
            // pairs, and of the validation ladder (its SRCC is negative when right).
            let key = m.noise_srcc
                + m.pair_accuracy
                + l.as_ref()
                    .map_or(0.0, |l| l.pair_accuracy_middle - l.mean_srcc_noise);
            let ladder_line = l.as_ref().map_or(String::new(), |l| {
                format!(
                    "; validation ladder SRCC {:.4}, clean > middle {:.4}",
                    l.mean_srcc_noise, l.pair_accuracy_middle
                )
            });
            let improved = checkpoints.record(&net, key, steps_run, (m.clone(), l))?;
            log(&format!(
                "eval step {steps_run}: noise SRCC {:.4}, PLCC {:.4}, aesthetic SRCC {:.4}, pair accuracy {:.4}{ladder_line}{}",
                m.noise_srcc,
                m.noise_plcc,
                m.aesthetic_srcc,
                m.pair_accuracy,
                if improved { " (best so far)" } else { "" }
            ));
            if checkpoints.should_stop() {
                log("no improvement: stopping early");
                break;
            }
        }
    }
    let (best_step, (synthetic_validation, ladder_validation)) = checkpoints.into_best()?;
    let report = ExperienceReport {
        twin_loss: settings.twin_loss,
        steps_run,
        best_step,
        seconds: started.elapsed().as_secs_f64(),
        pairs_rendered,
        synthetic_validation,
        ladder_validation,
        settings: format!("{settings:?}"),
    };
    write_report(&settings.run.out.join("experience.metrics.json"), &report)?;
    Ok(report)
}
