//! Training the background model's second stage — gradient-boosted trees ([`BackdropTrees`],
//! the default) or a small MLP ([`BackdropLevel`]): from the border band's statistics of
//! composites with a `white` or `solid` backdrop, whether the backdrop is white.
//! The stage is written into a copy of a trained background weights file, next to its
//! networks, which it does not change.

use burn::module::Module;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;
use serde::Serialize;
use shotgrade_core::BackgroundClass;
use shotgrade_image::{BACKDROP_FEATURES, backdrop_statistics};
use shotgrade_models::weights::NetKind;
use shotgrade_models::{
    BackdropLevel, BackdropTrees, BackgroundNetConfig, TREES_METADATA_KEY, TreeSettings,
};
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64, background_class, compose};
use std::path::PathBuf;
use std::time::Instant;

use crate::data::TEST_SEED_BASE;
use crate::ensemble::load_background_members;
use crate::error::TrainError;
use crate::fit::{Evaluation, FitSettings, Gradients, Guard, Schedule, Task, fit};
use crate::schedule::{create_out_dir, write_report};

/// First seed of the composites that choose the stage's epoch: a range of their own above
/// [`TEST_SEED_BASE`], so that neither the background validation split (seeds from
/// `TEST_SEED_BASE`) nor the test split (from `TEST_SEED_BASE` + 10⁷) is looked at.
pub const BACKDROP_VALIDATION_SEED: u64 = TEST_SEED_BASE + 30_000_000;

/// Which kind of second stage to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// A small MLP ([`BackdropLevel`], `width` hidden units), trained with Adam.
    Mlp,
    /// Gradient-boosted trees ([`BackdropTrees`]).
    Trees,
}

/// What `shotgrade train backdrop` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct BackdropTrainSettings {
    /// The shared asset folder.
    pub assets: PathBuf,
    /// The trained background weights (one network or an ensemble) the stage joins.
    pub network: PathBuf,
    /// Where the combined `background.safetensors` and `backdrop.metrics.json` go.
    pub out: PathBuf,
    /// Training composite seeds drawn; the `white` and `solid` ones (~40 %) are rendered.
    pub composites: usize,
    /// Validation composite seeds drawn, from [`BACKDROP_VALIDATION_SEED`]; likewise.
    pub validation_composites: usize,
    /// Width of the stage's hidden layer.
    pub width: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (cosine decay over the epochs).
    pub learning_rate: f64,
    /// Seed of the training composites and of the shuffling.
    pub seed: u64,
    /// Composite sizes and degradation — those of the background test set by default.
    pub compose: ComposeSettings,
    pub stage: StageKind,
    /// With [`StageKind::Trees`]: how they are grown.
    pub trees: TreeSettings,
    /// A time limit (and a stop asked from outside): the MLP stage ends early with its best
    /// epoch; the trees stage is refused when the limit has passed before it starts. Neither
    /// resumes: a stage trains in a minute or two.
    pub guard: Guard,
}

impl Default for BackdropTrainSettings {
    fn default() -> Self {
        BackdropTrainSettings {
            assets: PathBuf::from("../shared/assets"),
            network: PathBuf::from("models/background.safetensors"),
            out: PathBuf::from("runs/backdrop"),
            composites: 60_000,
            validation_composites: 4_000,
            width: 64,
            epochs: 80,
            batch_size: 256,
            learning_rate: 3e-3,
            seed: 1,
            compose: ComposeSettings {
                min_side: 160,
                max_side: 640,
                degrade_probability: 0.5,
                ..ComposeSettings::default()
            },
            stage: StageKind::Trees,
            trees: TreeSettings::default(),
            guard: Guard::default(),
        }
    }
}

/// What a run did, written as `backdrop.metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackdropReport {
    pub network: String,
    pub out: String,
    pub training_examples: usize,
    pub validation_examples: usize,
    /// White-against-solid accuracy on the validation composites after each epoch (one entry
    /// for trees).
    pub validation_accuracy: Vec<f32>,
    /// The epoch kept (1-based; 1 for trees) and its accuracy.
    pub best_epoch: usize,
    pub best_accuracy: f32,
    pub seconds: f64,
    pub settings: String,
}

/// One composite's statistics and whether its backdrop is white.
struct Example {
    statistics: [f32; BACKDROP_FEATURES],
    white: bool,
}

/// The `white` and `solid` composites of `seeds`, as examples; the others are not rendered.
fn examples(assets: &Assets, seeds: &[u64], settings: &ComposeSettings) -> Vec<Example> {
    seeds
        .par_iter()
        .filter(|&&seed| {
            matches!(
                background_class(seed, settings),
                BackgroundClass::White | BackgroundClass::Solid
            )
        })
        .map(|&seed| {
            let sample = compose(assets, seed, settings);
            Example {
                statistics: backdrop_statistics(&sample.image),
                white: sample.label.background == BackgroundClass::White,
            }
        })
        .collect()
}

fn statistics_tensor(examples: &[&Example], device: &Device) -> Tensor<2> {
    let data: Vec<f32> = examples.iter().flat_map(|e| e.statistics).collect();
    Tensor::from_data(
        TensorData::new(data, [examples.len(), BACKDROP_FEATURES]),
        device,
    )
}

/// Share of `examples` the stage gets right (white when its logit is positive).
fn accuracy(stage: &BackdropLevel, examples: &[Example], device: &Device) -> f32 {
    if examples.is_empty() {
        return 0.0;
    }
    let refs: Vec<&Example> = examples.iter().collect();
    let logits = stage.forward(statistics_tensor(&refs, device)).into_data();
    let right = logits
        .iter::<f32>()
        .zip(examples)
        .filter(|(l, e)| (*l > 0.0) == e.white)
        .count();
    right as f32 / examples.len() as f32
}

/// A trained second stage.
enum Stage {
    Mlp(Box<BackdropLevel>),
    Trees(BackdropTrees),
}

/// The MLP stage's training as a [`Task`]: epochs over the training examples in a new
/// shuffled order each (one step per batch), binary cross-entropy, validation accuracy after
/// each epoch as the selection key.
struct MlpTask<'a> {
    train: &'a [Example],
    val: &'a [Example],
    batch_size: usize,
    epochs: usize,
    order: Vec<usize>,
    rng: SplitMix64,
    device: Device,
    loss_sum: f32,
    batches: usize,
    /// Validation accuracy after each epoch.
    accuracy: Vec<f32>,
}

impl MlpTask<'_> {
    fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }
}

impl Task for MlpTask<'_> {
    type Model = BackdropLevel;
    type Batch = Vec<usize>;
    type Metrics = f32;

    fn batch(&mut self, step: usize) -> Vec<usize> {
        crate::fit::epoch_batch(&mut self.order, &mut self.rng, step, self.batch_size)
    }

    fn gradients(&mut self, stage: &BackdropLevel, batch: Vec<usize>) -> Gradients {
        let device = self.device.clone().autodiff();
        let examples: Vec<&Example> = batch.iter().map(|&i| &self.train[i]).collect();
        let targets: Vec<i64> = examples.iter().map(|e| i64::from(e.white)).collect();
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(targets, [examples.len(), 1]), &device);
        let logits = stage.forward(statistics_tensor(&examples, &device));
        let loss = BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(&device)
            .forward(logits, targets);
        let value = loss.clone().into_scalar::<f32>();
        self.loss_sum += value;
        self.batches += 1;
        Gradients {
            grads: GradientsParams::from_grads(loss.backward(), stage),
            loss: value,
        }
    }

    fn evaluate(&mut self, stage: &BackdropLevel) -> Evaluation<f32> {
        let acc = accuracy(stage, self.val, &self.device);
        self.accuracy.push(acc);
        let loss = self.loss_sum / self.batches.max(1) as f32;
        (self.loss_sum, self.batches) = (0.0, 0);
        Evaluation {
            key: acc,
            metrics: acc,
            summary: format!(
                "epoch {}/{} · loss {loss:.4} · validation accuracy {acc:.4}",
                self.accuracy.len(),
                self.epochs
            ),
        }
    }
}

/// Trains the MLP stage; returns it (best epoch), the per-epoch validation accuracy, the best
/// epoch (1-based) and its accuracy.
fn train_mlp(
    settings: &BackdropTrainSettings,
    train: &[Example],
    val: &[Example],
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<(Stage, Vec<f32>, usize, f32), TrainError> {
    device.seed(settings.seed);
    let stage = BackdropLevel::new(settings.width, &device.clone().autodiff());
    let mut task = MlpTask {
        train,
        val,
        batch_size: settings.batch_size,
        epochs: settings.epochs,
        order: (0..train.len()).collect(),
        rng: SplitMix64::new(settings.seed ^ 0x00BA_C0D0),
        device: device.clone(),
        loss_sum: 0.0,
        batches: 0,
        accuracy: Vec::with_capacity(settings.epochs),
    };
    let per_epoch = task.batches_per_epoch();
    let fit_settings = FitSettings {
        steps: settings.epochs * per_epoch,
        schedule: Schedule {
            peak: settings.learning_rate,
            warmup: 0,
            steps_per_unit: per_epoch,
        },
        eval_every: per_epoch,
        // Every epoch runs; the best one is kept.
        patience: usize::MAX,
        weight_average: None,
        items_per_step: settings.batch_size,
        unit: "examples",
        // A stage of a minute: the time limit guards it, nothing resumes it.
        guard: settings.guard.clone(),
        resume: None,
    };
    let fitted = fit(
        &mut task,
        stage,
        AdamConfig::new().init(),
        &fit_settings,
        log,
    )?;
    Ok((
        Stage::Mlp(Box::new(fitted.model.to_device(device))),
        task.accuracy,
        fitted.best_step / per_epoch,
        fitted.metrics,
    ))
}

/// Trains the stage on composites, keeps the epoch of best validation accuracy, and writes the
/// networks of `settings.network` with it as `background.safetensors` into `settings.out`.
pub fn train_backdrop(
    settings: &BackdropTrainSettings,
    log: &mut dyn FnMut(&str),
) -> Result<BackdropReport, TrainError> {
    if settings.width == 0
        || settings.epochs == 0
        || settings.trees.trees == 0
        || settings.batch_size == 0
        || settings.composites == 0
        || settings.validation_composites == 0
        || !(settings.learning_rate.is_finite() && settings.learning_rate > 0.0)
    {
        return Err(TrainError::Settings(
            "need width, epochs, trees, batch size and both composite counts of at least 1 and \
             a positive learning rate"
                .into(),
        ));
    }
    let started = Instant::now();
    let device = Device::flex();
    let loaded = load_background_members(std::slice::from_ref(&settings.network), &device)?;
    if loaded.ensemble.trunk.is_some() {
        return Err(TrainError::Settings(format!(
            "{} holds the pretrained-trunk model, whose head reads the backdrop statistics \
             itself: it takes no second stage",
            settings.network.display()
        )));
    }
    let networks = loaded.ensemble.members;
    let assets = Assets::load(&settings.assets, 320, 640)?;
    log(&format!(
        "rendering the white and solid composites among {} training and {} validation seeds…",
        settings.composites, settings.validation_composites
    ));
    let base = settings.seed.wrapping_mul(1 << 32).wrapping_add(1 << 31);
    let train_seeds: Vec<u64> = (0..settings.composites as u64)
        .map(|i| base.wrapping_add(i) % TEST_SEED_BASE)
        .collect();
    let val_seeds: Vec<u64> = (0..settings.validation_composites as u64)
        .map(|i| BACKDROP_VALIDATION_SEED + i)
        .collect();
    let train = examples(&assets, &train_seeds, &settings.compose);
    let val = examples(&assets, &val_seeds, &settings.compose);
    if train.is_empty() || val.is_empty() {
        return Err(TrainError::Settings(
            "no white or solid composite among those rendered: render more".into(),
        ));
    }
    log(&format!(
        "{} training and {} validation examples ({:.0} s)",
        train.len(),
        val.len(),
        started.elapsed().as_secs_f64()
    ));

    let (stage, validation_accuracy, best_epoch, best_accuracy) = match settings.stage {
        StageKind::Mlp => train_mlp(settings, &train, &val, &device, log)?,
        StageKind::Trees => {
            if settings.guard.limit.is_some_and(|l| l.left().is_zero()) {
                return Err(TrainError::Settings(
                    "the time limit passed while the composites rendered: no time left to grow \
                     the trees (give a longer --time-limit or fewer --composites)"
                        .into(),
                ));
            }
            let examples: Vec<_> = train.iter().map(|e| (e.statistics, e.white)).collect();
            let trees = BackdropTrees::fit(&examples, &settings.trees);
            let statistics: Vec<f32> = val.iter().flat_map(|e| e.statistics).collect();
            let right = trees
                .white_probabilities(&statistics)
                .iter()
                .zip(&val)
                .filter(|(p, e)| (**p > 0.5) == e.white)
                .count();
            let acc = right as f32 / val.len() as f32;
            log(&format!(
                "{} trees · validation accuracy {acc:.4}",
                settings.trees.trees
            ));
            (Stage::Trees(trees), vec![acc], 1, acc)
        }
    };

    create_out_dir(&settings.out)?;
    let (level, trees) = match stage {
        Stage::Mlp(level) => (Some(*level), None),
        Stage::Trees(trees) => (None, Some(trees)),
    };
    let config = BackgroundNetConfig {
        backdrop_level: level.as_ref().map(|_| settings.width),
        backdrop_trees: trees.as_ref().map(|_| settings.trees.trees),
        snapshots: (networks.len() > 1).then_some(networks.len()),
        ..loaded.config
    };
    let model = shotgrade_models::BackgroundEnsemble {
        members: networks,
        level,
        trunk: None,
    };
    let path = settings.out.join(NetKind::Background.file_name());
    let mut meta = vec![
        (
            "shotgrade.backdrop.network".to_string(),
            settings.network.display().to_string(),
        ),
        (
            "shotgrade.backdrop.validation_accuracy".to_string(),
            format!("{best_accuracy:.4}"),
        ),
    ];
    if let Some(trees) = &trees {
        let json = trees.to_json().map_err(TrainError::Settings)?;
        meta.push((TREES_METADATA_KEY.to_string(), json));
    }
    model.save(&config, true, &meta, &path)?;
    let report = BackdropReport {
        network: settings.network.display().to_string(),
        out: path.display().to_string(),
        training_examples: train.len(),
        validation_examples: val.len(),
        validation_accuracy,
        best_epoch,
        best_accuracy,
        seconds: started.elapsed().as_secs_f64(),
        settings: format!("{settings:?}"),
    };
    write_report(&settings.out.join("backdrop.metrics.json"), &report)?;
    Ok(report)
}
