//! Training the background network (S120): cross-entropy over the five classes on a stream of
//! composites, with real photos and their (weak) hints mixed into every batch.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;
use shotgrade_core::BACKGROUND_CLASSES;
use shotgrade_models::{
    BackdropTrees, BackgroundEnsemble, BackgroundNet, BackgroundNetConfig, split_light,
};
use shotgrade_synth::labels::Part;
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64};
use std::path::PathBuf;
use std::time::Instant;

use crate::data::{
    BackgroundExample, TEST_SEED_BASE, labelled_background, real_background, synthetic_background,
};
use crate::error::TrainError;
use crate::fit::{Evaluation, FitSettings, Gradients, Task, fit};
use crate::metrics::{ClassMetrics, classification};
use crate::parallel::{deal, sharded_gradients};
use crate::pool::{Mirror, RecentPool, fresh_per_batch, mirror_rows};
use crate::schedule::{CheckpointFiles, ComputeDevice, RunSettings, starting_net, write_report};

/// Everything a background training run needs.
#[derive(Debug, Clone)]
pub struct BackgroundTrainSettings {
    /// Folders, length, schedule and checkpointing of the run.
    pub run: RunSettings,
    /// Share of each batch drawn from real photos: the store photos of `grocery/train` (whose
    /// hint is reliable) and, with `real_labels`, the `train` part of the photos labelled by eye.
    pub real_fraction: f32,
    /// The photos labelled by eye (`data/real`): their `train` part joins the real photos
    /// trained on and their `validation` part is the real validation set. No photo of the
    /// `validation` or `test` parts is trained on, and the shop folders' border-heuristic
    /// hints (`magento2`, `spree`) are not used: most of those photos are labelled, a third
    /// of them held out. Without it, the real validation set is `grocery/val` and
    /// `grocery/iconic`.
    pub real_labels: Option<std::path::PathBuf>,
    /// Share of each batch replayed from recently misclassified training images (hard-example
    /// mining): the rare hard cases — white backdrops under heavy noise, busy scenes — come
    /// back until they are learned.
    pub replay_fraction: f32,
    /// How many times, on average, each rendered composite is used. With `reuse > 1`, once a
    /// pool of the `reuse_pool` most recent composites has filled, each step renders only
    /// `⌈composites per batch / reuse⌉` new ones and draws the rest of the batch's composites
    /// from the pool, each mirrored left–right with probability ½ (a backdrop's class does not
    /// depend on the side the product stands on). 1 renders every composite afresh.
    pub reuse: usize,
    /// Composites kept for reuse ([`REUSE_POOL`] by default).
    pub reuse_pool: usize,
    /// Evaluate and keep an exponential moving average of the weights with this decay per
    /// step ([`crate::average`]) instead of the weights themselves; `None` keeps the weights.
    pub weight_average: Option<f32>,
    pub compose: ComposeSettings,
    pub config: BackgroundNetConfig,
    /// Train at this input side instead of the config's (or the `--init-from` file's): the
    /// weights do not depend on it ([`BackgroundNet::with_input_size`]), so a cycle on 64-px
    /// inputs can start a chain that continues at the shipped 128 px. `None` keeps it.
    pub input_size: Option<usize>,
}

/// Default number of composites kept for reuse: ~400 MB of 128-px inputs, enough that a batch
/// rarely holds the same composite twice.
pub const REUSE_POOL: usize = 2048;

impl Default for BackgroundTrainSettings {
    fn default() -> Self {
        BackgroundTrainSettings {
            run: RunSettings {
                assets: PathBuf::from("../shared/assets"),
                out: PathBuf::from("runs/background"),
                steps: 4000,
                batch_size: 32,
                learning_rate: 2e-3,
                seed: 1,
                eval_every: 250,
                patience: 5,
                validation_size: 500,
                init_from: None,
                device: ComputeDevice::Cpu,
                keep_checkpoints: false,
                guard: Default::default(),
                resume: false,
                command: Vec::new(),
            },
            real_fraction: 0.25,
            real_labels: None,
            replay_fraction: 0.0,
            reuse: 1,
            reuse_pool: REUSE_POOL,
            weight_average: None,
            compose: ComposeSettings {
                min_side: 160,
                max_side: 320,
                degrade_probability: 0.5,
                ..ComposeSettings::default()
            },
            config: BackgroundNetConfig::new(),
            input_size: None,
        }
    }
}

/// What a run measured, written next to the weights.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundReport {
    pub steps_run: usize,
    pub best_step: usize,
    pub seconds: f64,
    pub images_seen: usize,
    /// Composites rendered for training (fewer than the synthetic images seen with `reuse > 1`).
    pub composites_rendered: usize,
    /// Held-out composites (seeds ≥ 2^40, never trained on).
    pub synthetic_validation: ClassMetrics,
    /// Real photos never trained on: grocery/val (cluttered) and grocery/iconic (white).
    pub real_validation: ClassMetrics,
    pub classes: Vec<String>,
    pub settings: String,
}

fn batch_tensors(
    examples: &[&BackgroundExample],
    size: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let channels = examples
        .first()
        .map_or(3, |e| e.input.len() / (size * size).max(1));
    let mut data = Vec::with_capacity(examples.len() * channels * size * size);
    let mut targets = Vec::with_capacity(examples.len());
    for e in examples {
        data.extend_from_slice(&e.input);
        targets.push(e.class.index() as i64);
    }
    let n = examples.len();
    (
        Tensor::from_data(TensorData::new(data, [n, channels, size, size]), device),
        Tensor::from_data(TensorData::new(targets, [n]), device),
    )
}

/// Predicted classes of a trained (non-autodiff) network, as the grader decides them (from
/// [`BackgroundNet::probabilities`]: the image and its mirror image).
pub fn predict(
    net: &BackgroundNet,
    examples: &[BackgroundExample],
    size: usize,
    device: &Device,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(64) {
        let refs: Vec<&BackgroundExample> = chunk.iter().collect();
        let (x, _) = batch_tensors(&refs, size, device);
        out.extend(argmax(net.probabilities(x)));
    }
    out
}

/// Predicted classes of a background model as the grader decides them
/// ([`BackgroundEnsemble::classify`]): the mean of its networks' probabilities, split between
/// `white` and `solid` by its second stage (the ensemble's MLP or `trees`) when it has one and
/// the examples carry backdrop statistics.
pub fn predict_ensemble(
    model: &BackgroundEnsemble,
    trees: Option<&BackdropTrees>,
    examples: &[BackgroundExample],
    size: usize,
    device: &Device,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(examples.len());
    if model.members.is_empty() && model.trunk.is_none() {
        return out;
    }
    for chunk in examples.chunks(64) {
        let refs: Vec<&BackgroundExample> = chunk.iter().collect();
        let (x, _) = batch_tensors(&refs, size, device);
        let features = chunk.first().map_or(0, |e| e.backdrop.len());
        let statistics: Vec<f32> = chunk
            .iter()
            .flat_map(|e| e.backdrop.iter().copied())
            .collect();
        // Trees read `statistics` below, outside the model.
        let tensor = (features > 0 && model.takes_statistics_tensor()).then(|| {
            Tensor::from_data(
                TensorData::new(statistics.clone(), [chunk.len(), features]),
                device,
            )
        });
        let probabilities = model.classify(x, tensor);
        match trees.filter(|_| features > 0) {
            None => out.extend(argmax(probabilities)),
            Some(trees) => {
                let values = probabilities
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default();
                let white = trees.white_probabilities(&statistics);
                for (row, &w) in values.chunks_exact(5).zip(&white) {
                    let mut p = [row[0], row[1], row[2], row[3], row[4]];
                    split_light(&mut p, w);
                    let best = (0..5).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                    out.push(best);
                }
            }
        }
    }
    out
}

/// The index of each row's largest entry.
fn argmax(probabilities: Tensor<2>) -> Vec<usize> {
    let classes = probabilities.argmax(1).into_data();
    classes.iter::<i64>().map(|c| c.max(0) as usize).collect()
}

fn evaluate(
    net: &BackgroundNet,
    examples: &[BackgroundExample],
    size: usize,
    device: &Device,
) -> ClassMetrics {
    let predicted = predict(net, examples, size, device);
    let truth: Vec<usize> = examples.iter().map(|e| e.class.index()).collect();
    classification(&truth, &predicted, BACKGROUND_CLASSES.len())
}

impl Mirror for BackgroundExample {
    /// The `C × S × S` input mirrored left–right (`width` = S); the class stays.
    fn mirrored(&self, width: usize) -> Self {
        BackgroundExample {
            input: mirror_rows(&self.input, width),
            // Band statistics and absolute horizontal steps do not change in a mirror.
            backdrop: self.backdrop.clone(),
            class: self.class,
        }
    }
}

/// Most misclassified training images kept for replay.
const REPLAY_CAPACITY: usize = 512;

/// Background training as a [`Task`]: each batch mixes fresh composites, reused ones (from
/// the pool, mirrored), real photos with hints and replayed mistakes; cross-entropy over the
/// five classes; synthetic validation accuracy as the selection key.
struct BackgroundTask {
    assets: Assets,
    compose: ComposeSettings,
    config: BackgroundNetConfig,
    seed: u64,
    reuse: usize,
    synth_per_batch: usize,
    real_per_batch: usize,
    replay_per_batch: usize,
    shards: usize,
    train_device: Device,
    eval_device: Device,
    real_train: Vec<BackgroundExample>,
    synth_val: Vec<BackgroundExample>,
    real_val: Vec<BackgroundExample>,
    /// Misclassified training images, the most recent first to go stale: the buffer follows
    /// what the network currently gets wrong.
    replay: RecentPool<BackgroundExample>,
    pool: RecentPool<BackgroundExample>,
    rng: SplitMix64,
    composites_rendered: usize,
    files: CheckpointFiles,
}

/// One step's examples: fresh composites, reused ones, indices of real photos, replayed
/// mistakes.
struct BackgroundBatch {
    fresh: Vec<BackgroundExample>,
    reused: Vec<BackgroundExample>,
    real: Vec<usize>,
    replayed: Vec<BackgroundExample>,
}

impl Task for BackgroundTask {
    type Model = BackgroundNet;
    type Batch = BackgroundBatch;
    type Metrics = (ClassMetrics, ClassMetrics);

    /// Composites follow from the step; reused ones, real photos and replays are drawn from
    /// one stream. The reuse and replay pools are not saved: a resumed run refills them.
    fn stream_state(&self) -> Vec<u64> {
        vec![self.rng.state(), self.composites_rendered as u64]
    }

    fn restore_stream(&mut self, state: &[u64]) {
        if let [rng, rendered] = state {
            self.rng = SplitMix64::new(*rng);
            self.composites_rendered = *rendered as usize;
        }
    }

    fn batch(&mut self, step: usize) -> BackgroundBatch {
        let size = self.config.input_size;
        let base = self.seed.wrapping_mul(1 << 32) + (step * self.synth_per_batch) as u64;
        let fresh = fresh_per_batch(self.synth_per_batch, self.reuse, self.pool.is_full());
        let seeds: Vec<u64> = (0..fresh as u64)
            .map(|i| (base + i) % TEST_SEED_BASE)
            .collect();
        let fresh: Vec<BackgroundExample> =
            synthetic_background(&self.assets, &seeds, &self.compose, &self.config)
                .into_iter()
                .map(|(e, _)| e)
                .collect();
        self.composites_rendered += fresh.len();
        let reused: Vec<BackgroundExample> = (fresh.len()..self.synth_per_batch)
            .filter_map(|_| self.pool.draw_mirrored(size, &mut self.rng))
            .collect();
        let real = (0..self.real_per_batch)
            .map(|_| (self.rng.next_u64() % self.real_train.len() as u64) as usize)
            .collect();
        let replayed = (0..self.replay_per_batch)
            .filter_map(|_| self.replay.draw(&mut self.rng).cloned())
            .collect();
        BackgroundBatch {
            fresh,
            reused,
            real,
            replayed,
        }
    }

    fn gradients(&mut self, model: &BackgroundNet, batch: BackgroundBatch) -> Gradients {
        let size = self.config.input_size;
        let mut examples: Vec<&BackgroundExample> =
            batch.fresh.iter().chain(&batch.reused).collect();
        examples.extend(batch.real.iter().map(|&i| &self.real_train[i]));
        examples.extend(batch.replayed.iter());
        let track_mistakes = self.replay_per_batch > 0;
        let device = &self.train_device;
        let shards = deal(examples, self.shards);
        let step = sharded_gradients(model, device, shards, |net, shard| {
            let (x, y) = batch_tensors(&shard, size, device);
            let logits = net.forward(x);
            let mut mistakes = Vec::new();
            if track_mistakes {
                let predicted = logits.clone().argmax(1).into_data();
                mistakes.extend(
                    shard
                        .iter()
                        .zip(predicted.iter::<i64>())
                        .filter(|(e, p)| e.class.index() as i64 != *p)
                        .map(|(e, _)| *e),
                );
            }
            let loss = CrossEntropyLossConfig::new()
                .init(device)
                .forward(logits, y);
            (loss, mistakes)
        });
        let mistakes: Vec<BackgroundExample> =
            step.outputs.into_iter().flatten().cloned().collect();
        let gradients = Gradients {
            grads: step.grads,
            loss: step.loss,
        };
        for e in mistakes {
            self.replay.push(e);
        }
        for e in batch.fresh {
            self.pool.push(e);
        }
        gradients
    }

    fn evaluate(&mut self, net: &BackgroundNet) -> Evaluation<(ClassMetrics, ClassMetrics)> {
        let size = self.config.input_size;
        let synth = evaluate(net, &self.synth_val, size, &self.eval_device);
        let real = evaluate(net, &self.real_val, size, &self.eval_device);
        Evaluation {
            key: synth.accuracy,
            summary: format!(
                "synthetic accuracy {:.4}, real accuracy {:.4}",
                synth.accuracy, real.accuracy
            ),
            metrics: (synth, real),
        }
    }

    fn checkpoint(
        &mut self,
        net: &BackgroundNet,
        step: usize,
        best: bool,
    ) -> Result<(), TrainError> {
        self.files.write(net, step, best)
    }
}

impl BackgroundTrainSettings {
    /// Why these settings cannot train, if they cannot.
    fn check(&self) -> Result<(), TrainError> {
        let shares = [self.real_fraction, self.replay_fraction];
        if self.run.batch_size < 2
            || self.run.eval_every == 0
            || shares.iter().any(|s| !(0.0..1.0).contains(s))
            || self.real_fraction + self.replay_fraction >= 1.0
            || !(0.0..=1.0).contains(&self.compose.boundary_share)
            || self.reuse == 0
            || (self.reuse > 1 && self.reuse_pool == 0)
            || self
                .weight_average
                .is_some_and(|d| !(0.0..1.0).contains(&d))
        {
            return Err(TrainError::Settings(
                "need batch_size >= 2, eval_every >= 1, reuse >= 1 (with a pool of at least one \
                 composite), real_fraction and replay_fraction in [0, 1) with a sum below 1, \
                 boundary_share in [0, 1], a weight-average decay in [0, 1)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The real photos a background run trains on and validates with, preprocessed for `config`.
fn real_sets(
    settings: &BackgroundTrainSettings,
    config: &BackgroundNetConfig,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<BackgroundExample>, Vec<BackgroundExample>), TrainError> {
    let root = &settings.run.assets;
    let (mut train, mut skipped_train) = real_background(root, &["real/grocery/train"], config)?;
    let (val, skipped_val) = match &settings.real_labels {
        Some(labels) => {
            let labelled = |part| {
                labelled_background(labels, root, part, config)
                    .map_err(|e| TrainError::Settings(format!("real labels: {e}")))
            };
            let (more, skipped) = labelled(Part::Train)?;
            train.extend(more);
            skipped_train += skipped;
            labelled(Part::Validation)?
        }
        None => real_background(root, &["real/grocery/val", "real/grocery/iconic"], config)?,
    };
    log(&format!(
        "{} real training photos ({} unreadable); {} real validation photos ({} unreadable)",
        train.len(),
        skipped_train,
        val.len(),
        skipped_val
    ));
    Ok((train, val))
}

/// Trains, keeps the best network by synthetic validation accuracy, and writes
/// `background.safetensors` and `background.metrics.json` into `settings.run.out`.
pub fn train_background(
    settings: &BackgroundTrainSettings,
    log: &mut dyn FnMut(&str),
) -> Result<BackgroundReport, TrainError> {
    let (train_device, eval_device) = settings.run.devices()?;
    let (mut model, mut config) =
        starting_net::<BackgroundNet>(&settings.run, &settings.config, &train_device)?;
    if let Some(size) = settings.input_size.filter(|&s| s != config.input_size) {
        config.input_size = size;
        config.validate().map_err(TrainError::Settings)?;
        model = model.with_input_size(&config);
    }
    settings.check()?;
    let started = Instant::now();
    log("loading assets and real photos…");
    let assets = Assets::load(&settings.run.assets, 320, 640)?;
    log(&format!("{} cut-outs", assets.cutouts.len()));
    let (real_train, real_val) = real_sets(settings, &config, log)?;
    let val_seeds: Vec<u64> = (0..settings.run.validation_size as u64)
        .map(|i| TEST_SEED_BASE + i)
        .collect();
    // The validation set keeps the test distribution whatever the training emphasis.
    let val_compose = ComposeSettings {
        boundary_share: 0.0,
        ..settings.compose
    };
    let synth_val: Vec<BackgroundExample> =
        synthetic_background(&assets, &val_seeds, &val_compose, &config)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
    let batch = settings.run.batch_size;
    let real_per_batch = if real_train.is_empty() {
        0
    } else {
        (batch as f32 * settings.real_fraction).round() as usize
    };
    let replay_per_batch = (batch as f32 * settings.replay_fraction).round() as usize;
    if settings.reuse > 1 {
        log(&format!(
            "reusing composites: each used ~{} times, from a pool of the {} most recent",
            settings.reuse, settings.reuse_pool
        ));
    }
    let mut task = BackgroundTask {
        assets,
        compose: settings.compose,
        config: config.clone(),
        seed: settings.run.seed,
        reuse: settings.reuse,
        synth_per_batch: batch - real_per_batch - replay_per_batch,
        real_per_batch,
        replay_per_batch,
        shards: settings.run.shards(),
        train_device,
        eval_device,
        real_train,
        synth_val,
        real_val,
        replay: RecentPool::new(REPLAY_CAPACITY),
        pool: RecentPool::for_reuse(settings.reuse, settings.reuse_pool),
        rng: SplitMix64::new(settings.run.seed ^ 0x5EED),
        composites_rendered: 0,
        files: CheckpointFiles::new::<BackgroundNet>(&settings.run, &config, &[])?,
    };
    let fit_settings = FitSettings {
        weight_average: settings.weight_average,
        ..settings.run.fit_settings(0, "img")
    };
    let optimiser = AdamWConfig::new().with_weight_decay(1e-4).init();
    let fitted = fit(&mut task, model, optimiser, &fit_settings, log)?;
    let (synthetic_validation, real_validation) = fitted.metrics;
    let report = BackgroundReport {
        steps_run: fitted.steps_run,
        best_step: fitted.best_step,
        seconds: started.elapsed().as_secs_f64(),
        images_seen: fitted.steps_run * batch,
        composites_rendered: task.composites_rendered,
        synthetic_validation,
        real_validation,
        classes: BACKGROUND_CLASSES
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        // The network's own config: a continued run's comes from its file, not the settings.
        settings: format!(
            "{:?}",
            BackgroundTrainSettings {
                config,
                ..settings.clone()
            }
        ),
    };
    write_report(&settings.run.out.join("background.metrics.json"), &report)?;
    Ok(report)
}
