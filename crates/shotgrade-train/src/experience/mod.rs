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
use serde::Serialize;
use shotgrade_models::{ExperienceNet, ExperienceNetConfig};
use shotgrade_synth::compose::DamageKinds;
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64};
use std::path::PathBuf;
use std::time::Instant;

pub mod ladder;
mod loss;
mod measure;
mod pairs;

pub use ladder::{Ladder, LadderResult, LadderSummary};
pub use measure::{ExperienceMetrics, evaluate_experience, predict};
pub use pairs::{
    ASSET_SIDES, DecodedPhoto, ExperienceExample, LARGE_PHOTO_FOLDERS, Pair, REAL_TRAINING_PHOTOS,
    RealPair, real_pairs, synthetic_pairs,
};

use crate::data::TEST_SEED_BASE;
use crate::error::TrainError;
use crate::fit::{Evaluation, Gradients, Task, fit};
use crate::pool::{RecentPool, fresh_per_batch};
use crate::schedule::{CheckpointFiles, ComputeDevice, RunSettings, starting_net, write_report};
use loss::{real_pair_loss, regression, twin_loss};
use measure::tensor;
use pairs::{load_large_photos, load_real_photos};

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
                guard: Default::default(),
                resume: false,
                command: Vec::new(),
            },
            twin_loss: TwinLoss::None,
            // The data settings of `exp-lowjpeg` (models/HISTORY.md); the shipped weights' last run
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

/// The main network and its twin, trained together (one optimiser: AdamW keeps its moments
/// per parameter, so this is the two optimisers of the claims in one). Only `main` ships.
#[derive(Module, Debug)]
pub struct TwinPair {
    pub main: ExperienceNet,
    pub twin: ExperienceNet,
}

/// Experience training as a [`Task`] (module docs).
struct ExperienceTask {
    settings: ExperienceTrainSettings,
    assets: Assets,
    side: usize,
    device: Device,
    eval_device: Device,
    validation: Vec<Pair>,
    ladder: Option<Ladder>,
    real: RealPool,
    real_per_batch: usize,
    synthetic_pool: RecentPool<Pair>,
    real_pool: RecentPool<RealPair>,
    /// A stream of its own, so `reuse` 1 leaves the composite and real-photo streams as they
    /// were.
    pool_rng: SplitMix64,
    pairs_rendered: usize,
    files: CheckpointFiles,
}

/// The real photos real pairs are made from: the store photos, then the large ones.
struct RealPool {
    photos: Vec<DecodedPhoto>,
    store_count: usize,
    large_count: usize,
    rng: SplitMix64,
    damage: DamageKinds,
}

impl RealPool {
    /// `(photo index, seed)` of `count` real pairs: a large photo with chance `large_share`.
    fn picks(&mut self, count: usize, large_share: f32) -> Vec<(usize, u64)> {
        (0..count)
            .map(|_| {
                let i = if self.large_count > 0 && self.rng.unit() < large_share {
                    self.store_count + (self.rng.next_u64() % self.large_count as u64) as usize
                } else {
                    (self.rng.next_u64() % self.store_count.max(1) as u64) as usize
                };
                (i, self.rng.next_u64())
            })
            .collect()
    }
}

/// One step's examples: synthetic pairs (fresh first, then reused) and, without a twin, real
/// pairs (likewise).
struct ExperienceBatch {
    pairs: Vec<Pair>,
    fresh: usize,
    real: Vec<RealPair>,
    fresh_real: usize,
}

impl ExperienceTask {
    /// The main network's loss without a twin: regression on the clean and degraded images
    /// of the synthetic pairs, and the real pairs' loss.
    fn loss_without_twin(&self, main: &ExperienceNet, batch: &ExperienceBatch) -> Tensor<1> {
        let (side, device) = (self.side, &self.device);
        let clean = batch.pairs.iter().map(|p| &p.clean);
        let both: Vec<&ExperienceExample> = clean
            .chain(batch.pairs.iter().map(|p| &p.degraded))
            .collect();
        let (x, y) = tensor(&both, side, device);
        let m = batch.real.len();
        let x = if m > 0 {
            let mut data = Vec::with_capacity(2 * m * 6 * side * side);
            for p in &batch.real {
                data.extend_from_slice(&p.clean);
            }
            for p in &batch.real {
                data.extend_from_slice(&p.degraded);
            }
            let xr = Tensor::from_data(TensorData::new(data, [2 * m, 3, side, 2 * side]), device);
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
                    &batch.real,
                    device,
                );
        }
        loss
    }

    /// The twin variants' loss: the twin on the clean images, the main network on the
    /// degraded copies.
    fn loss_with_twin(&self, model: &TwinPair, batch: &ExperienceBatch) -> Tensor<1> {
        let clean: Vec<&ExperienceExample> = batch.pairs.iter().map(|p| &p.clean).collect();
        let degraded: Vec<&ExperienceExample> = batch.pairs.iter().map(|p| &p.degraded).collect();
        let (xt, yt) = tensor(&clean, self.side, &self.device);
        let (xm, ym) = tensor(&degraded, self.side, &self.device);
        let (ta, tn) = model.twin.logits(xt);
        let (ma, mn) = model.main.logits(xm);
        let pt = sigmoid(Tensor::cat(vec![ta, tn], 1));
        let pm = sigmoid(Tensor::cat(vec![ma, mn], 1));
        twin_loss(self.settings.twin_loss, pt, pm, yt, ym)
    }
}

impl Task for ExperienceTask {
    type Model = TwinPair;
    type Batch = ExperienceBatch;
    type Metrics = (ExperienceMetrics, Option<LadderSummary>);

    /// Synthetic pairs follow from the step; real pairs and reused pairs are drawn from two
    /// streams. The reuse pools are not saved: a resumed run refills them.
    fn stream_state(&self) -> Vec<u64> {
        vec![
            self.real.rng.state(),
            self.pool_rng.state(),
            self.pairs_rendered as u64,
        ]
    }

    fn restore_stream(&mut self, state: &[u64]) {
        if let [real, pool, rendered] = state {
            self.real.rng = SplitMix64::new(*real);
            self.pool_rng = SplitMix64::new(*pool);
            self.pairs_rendered = *rendered as usize;
        }
    }

    fn batch(&mut self, step: usize) -> ExperienceBatch {
        let (b, side) = (self.settings.run.batch_size, self.side);
        let reuse = self.settings.reuse;
        let base = self
            .settings
            .run
            .seed
            .wrapping_mul(1 << 32)
            .wrapping_add(3 << 30)
            + (step * b) as u64;
        let fresh = fresh_per_batch(b, reuse, self.synthetic_pool.is_full());
        let seeds: Vec<u64> = (0..fresh as u64)
            .map(|i| (base + i) % TEST_SEED_BASE)
            .collect();
        let mut pairs = synthetic_pairs(&self.assets, &seeds, &self.settings.compose, side as u32);
        self.pairs_rendered += pairs.len();
        pairs.extend(
            (fresh..b).filter_map(|_| self.synthetic_pool.draw_mirrored(side, &mut self.pool_rng)),
        );
        let (mut real, mut fresh_real) = (Vec::new(), 0);
        if self.settings.twin_loss == TwinLoss::None {
            fresh_real = fresh_per_batch(self.real_per_batch, reuse, self.real_pool.is_full());
            let picks = self.real.picks(fresh_real, self.settings.large_share);
            real = real_pairs(&self.real.photos, &picks, side as u32, &self.real.damage);
            self.pairs_rendered += real.len();
            real.extend(
                (fresh_real..self.real_per_batch)
                    .filter_map(|_| self.real_pool.draw_mirrored(side, &mut self.pool_rng)),
            );
        }
        ExperienceBatch {
            pairs,
            fresh,
            real,
            fresh_real,
        }
    }

    fn gradients(&mut self, model: &TwinPair, batch: ExperienceBatch) -> Gradients {
        let loss = if self.settings.twin_loss == TwinLoss::None {
            self.loss_without_twin(&model.main, &batch)
        } else {
            self.loss_with_twin(model, &batch)
        };
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), model);
        for p in batch.real.into_iter().take(batch.fresh_real) {
            self.real_pool.push(p);
        }
        for p in batch.pairs.into_iter().take(batch.fresh) {
            self.synthetic_pool.push(p);
        }
        Gradients { grads, loss: value }
    }

    fn evaluate(&mut self, model: &TwinPair) -> Evaluation<Self::Metrics> {
        let net = &model.main;
        let m = evaluate_experience(net, &self.validation, self.side, &self.eval_device);
        let l = self
            .ladder
            .as_ref()
            .map(|l| l.measure(net, self.side, &self.eval_device));
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
        Evaluation {
            key,
            summary: format!(
                "noise SRCC {:.4}, PLCC {:.4}, aesthetic SRCC {:.4}, pair accuracy {:.4}{ladder_line}",
                m.noise_srcc, m.noise_plcc, m.aesthetic_srcc, m.pair_accuracy,
            ),
            metrics: (m, l),
        }
    }

    fn checkpoint(&mut self, model: &TwinPair, step: usize, best: bool) -> Result<(), TrainError> {
        self.files.write(&model.main, step, best)
    }
}

impl ExperienceTrainSettings {
    /// Why these settings cannot train, if they cannot.
    fn check(&self) -> Result<(), TrainError> {
        let shares = [self.large_share, self.low_jpeg_share, self.mild_share];
        if self.run.batch_size < 2
            || self.run.eval_every == 0
            || shares.iter().any(|s| !(0.0..=1.0).contains(s))
            || self.reuse == 0
            || (self.reuse > 1 && self.reuse_pool == 0)
        {
            return Err(TrainError::Settings(
                "need batch_size >= 2, eval_every >= 1, large_share, low_jpeg_share and \
                 mild_share in [0, 1], reuse >= 1 (with a pool of at least one pair)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Real pairs per batch; an error when real photos are asked for with a twin variant.
    fn real_per_batch(&self) -> Result<usize, TrainError> {
        let real = (self.run.batch_size as f32 * self.real_fraction).round() as usize;
        if real > 0 && self.twin_loss != TwinLoss::None {
            return Err(TrainError::Settings(
                "real photos (--real-fraction) are used with --twin-loss none only: the twin \
                 variants need composite labels for both copies"
                    .into(),
            ));
        }
        Ok(real)
    }
}

/// The validation ladder of `settings.ladder_photos` shop photos of the validation product
/// families (none when 0).
fn validation_ladder(
    settings: &ExperienceTrainSettings,
    shop: &shotgrade_synth::assets::ShopSplit,
    log: &mut dyn FnMut(&str),
) -> Option<Ladder> {
    if settings.ladder_photos == 0 {
        return None;
    }
    let ladder = Ladder::from_photos(&shop.validation, settings.ladder_photos);
    log(&format!(
        "validation ladder: {} shop photos of the validation product families",
        ladder.len()
    ));
    Some(ladder).filter(|l| !l.is_empty())
}

/// The real photos of the real pairs (none when `real_per_batch` is 0): the store photos, then
/// the large ones.
fn real_pool(
    settings: &ExperienceTrainSettings,
    real_per_batch: usize,
    shop_training: Vec<shotgrade_synth::assets::RealPhoto>,
    log: &mut dyn FnMut(&str),
) -> Result<RealPool, TrainError> {
    let store = if real_per_batch > 0 {
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
        let photos = load_large_photos(&settings.run.assets, shop_training);
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
    let store_count = store.len();
    let photos: Vec<DecodedPhoto> = store.into_iter().chain(large).collect();
    Ok(RealPool {
        large_count: photos.len() - store_count,
        store_count,
        photos,
        rng: SplitMix64::new(settings.run.seed ^ 0x0E1F_2A3B),
        damage: DamageKinds {
            low_jpeg_share: settings.low_jpeg_share,
            mild_share: settings.mild_share,
            ..DamageKinds::EXPERIENCE
        },
    })
}

/// Trains the main network (and its twin), keeps the best main network by noise SRCC and pair
/// accuracy on held-out synthetic pairs and on the validation ladder, writes
/// `experience.safetensors` and `experience.metrics.json`.
pub fn train_experience(
    settings: &ExperienceTrainSettings,
    log: &mut dyn FnMut(&str),
) -> Result<ExperienceReport, TrainError> {
    let (device, eval_device) = settings.run.devices()?;
    let (main, config) = starting_net::<ExperienceNet>(&settings.run, &settings.config, &device)?;
    // The twin starts where the main network does when continuing (its own copy, loaded
    // again, so the two share no parameter), fresh otherwise.
    let twin = match settings.run.init_from {
        Some(_) => starting_net::<ExperienceNet>(&settings.run, &config, &device)?.0,
        None => config.init(&device),
    };
    settings.check()?;
    let started = Instant::now();
    let side = config.input_size;
    log("loading assets…");
    let assets = Assets::load(&settings.run.assets, ASSET_SIDES.0, ASSET_SIDES.1)?;
    let val_seeds: Vec<u64> = (0..settings.run.validation_size as u64)
        .map(|i| TEST_SEED_BASE + 2_000_000 + i)
        .collect();
    let validation = synthetic_pairs(&assets, &val_seeds, &settings.compose, side as u32);
    let shop = shotgrade_synth::assets::shop_photo_split(&settings.run.assets)?;
    let ladder = validation_ladder(settings, &shop, log);
    let real_per_batch = settings.real_per_batch()?;
    let real = real_pool(settings, real_per_batch, shop.training, log)?;
    let files = CheckpointFiles::new::<ExperienceNet>(
        &settings.run,
        &config,
        &[("twin_loss", format!("{:?}", settings.twin_loss))],
    )?;
    if settings.reuse > 1 {
        log(&format!(
            "reusing pairs: each used ~{} times, from pools of the {} most recent",
            settings.reuse, settings.reuse_pool
        ));
    }
    let mut task = ExperienceTask {
        settings: settings.clone(),
        assets,
        side,
        device,
        eval_device,
        validation,
        ladder,
        real,
        real_per_batch,
        synthetic_pool: RecentPool::for_reuse(settings.reuse, settings.reuse_pool),
        real_pool: RecentPool::for_reuse(settings.reuse, settings.reuse_pool),
        pool_rng: SplitMix64::new(settings.run.seed ^ 0x9E5E_0F00),
        pairs_rendered: 0,
        files,
    };
    let optimiser = AdamWConfig::new().with_weight_decay(1e-4).init();
    let fitted = fit(
        &mut task,
        TwinPair { main, twin },
        optimiser,
        &settings.run.fit_settings(100, "pairs"),
        log,
    )?;
    let (synthetic_validation, ladder_validation) = fitted.metrics;
    let report = ExperienceReport {
        twin_loss: settings.twin_loss,
        steps_run: fitted.steps_run,
        best_step: fitted.best_step,
        seconds: started.elapsed().as_secs_f64(),
        pairs_rendered: task.pairs_rendered,
        synthetic_validation,
        ladder_validation,
        settings: format!("{settings:?}"),
    };
    write_report(&settings.run.out.join("experience.metrics.json"), &report)?;
    Ok(report)
}
