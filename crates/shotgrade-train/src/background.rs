//! Training the background network (S120): cross-entropy over the five classes on a stream of
//! composites, with real photos and their (weak) hints mixed into every batch.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;
use shotgrade_core::BACKGROUND_CLASSES;
use shotgrade_models::{
    BackdropTrees, BackgroundEnsemble, BackgroundNet, BackgroundNetConfig, split_light,
};
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64};
use std::path::PathBuf;
use std::time::Instant;
use thiserror::Error;

use crate::average::WeightAverage;
use crate::data::{BackgroundExample, TEST_SEED_BASE, real_background, synthetic_background};
use crate::metrics::{ClassMetrics, classification};
use crate::parallel::{deal, sharded_gradients};
use crate::pool::{Mirror, RecentPool, fresh_per_batch, mirror_rows};
use crate::schedule::{
    Checkpoints, ComputeDevice, Progress, RunSettings, learning_rate, starting_net, write_report,
};

/// A training run that could not go on.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Assets(#[from] shotgrade_synth::AssetError),
    #[error(transparent)]
    Weights(#[from] shotgrade_models::WeightsError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("invalid training setting: {0}")]
    Settings(String),
}

/// Everything a background training run needs.
#[derive(Debug, Clone)]
pub struct BackgroundTrainSettings {
    /// Folders, length, schedule and checkpointing of the run.
    pub run: RunSettings,
    /// Share of each batch drawn from real photos with hints (grocery/train, magento2, spree).
    pub real_fraction: f32,
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
            },
            real_fraction: 0.25,
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
    if model.members.is_empty() {
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
        // Only an MLP stage runs on tensors; trees read `statistics` below.
        let tensor = (features > 0 && model.level.is_some()).then(|| {
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
    if settings.run.batch_size < 2
        || settings.run.eval_every == 0
        || !(0.0..1.0).contains(&settings.real_fraction)
        || !(0.0..1.0).contains(&settings.replay_fraction)
        || settings.real_fraction + settings.replay_fraction >= 1.0
        || !(0.0..=1.0).contains(&settings.compose.boundary_share)
        || settings.reuse == 0
        || (settings.reuse > 1 && settings.reuse_pool == 0)
        || settings
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
    let started = Instant::now();
    let size = config.input_size;
    log("loading assets and real photos…");
    let assets = Assets::load(&settings.run.assets, 320, 640)?;
    let (real_train, skipped_train) = real_background(
        &settings.run.assets,
        &["real/grocery/train", "real/magento2", "real/spree"],
        &config,
    )?;
    let (real_val, skipped_val) = real_background(
        &settings.run.assets,
        &["real/grocery/val", "real/grocery/iconic"],
        &config,
    )?;
    log(&format!(
        "{} cut-outs; {} real training photos ({} unreadable); {} real validation photos ({} unreadable)",
        assets.cutouts.len(),
        real_train.len(),
        skipped_train,
        real_val.len(),
        skipped_val
    ));
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

    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let real_per_batch = if real_train.is_empty() {
        0
    } else {
        (settings.run.batch_size as f32 * settings.real_fraction).round() as usize
    };
    let replay_per_batch =
        (settings.run.batch_size as f32 * settings.replay_fraction).round() as usize;
    let synth_per_batch = settings.run.batch_size - real_per_batch - replay_per_batch;
    // Misclassified training images, the most recent first to go stale: the buffer follows
    // what the network currently gets wrong.
    let mut replay: RecentPool<BackgroundExample> = RecentPool::new(REPLAY_CAPACITY);
    let mut rng = SplitMix64::new(settings.run.seed ^ 0x5EED);
    let mut pool: RecentPool<BackgroundExample> =
        RecentPool::for_reuse(settings.reuse, settings.reuse_pool);
    let mut composites_rendered = 0;
    if settings.reuse > 1 {
        log(&format!(
            "reusing composites: each used ~{} times, from a pool of the {} most recent",
            settings.reuse, settings.reuse_pool
        ));
    }

    let mut checkpoints = Checkpoints::new::<BackgroundNet>(&settings.run, &config, &[])?;
    let mut average = settings
        .weight_average
        .map(|decay| WeightAverage::new(&model, decay));
    let mut steps_run = 0;
    let mut progress = Progress::new(settings.run.steps, settings.run.batch_size, "img");

    for step in 0..settings.run.steps {
        let base = settings.run.seed.wrapping_mul(1 << 32) + (step * synth_per_batch) as u64;
        let fresh = fresh_per_batch(synth_per_batch, settings.reuse, pool.is_full());
        let seeds: Vec<u64> = (0..fresh as u64)
            .map(|i| (base + i) % TEST_SEED_BASE)
            .collect();
        let synth: Vec<BackgroundExample> =
            synthetic_background(&assets, &seeds, &settings.compose, &config)
                .into_iter()
                .map(|(e, _)| e)
                .collect();
        composites_rendered += synth.len();
        let reused: Vec<BackgroundExample> = (fresh..synth_per_batch)
            .filter_map(|_| pool.draw_mirrored(size, &mut rng))
            .collect();
        let mut batch: Vec<&BackgroundExample> = synth.iter().chain(&reused).collect();
        for _ in 0..real_per_batch {
            batch.push(&real_train[(rng.next_u64() % real_train.len() as u64) as usize]);
        }
        let replayed: Vec<BackgroundExample> = (0..replay_per_batch)
            .filter_map(|_| replay.draw(&mut rng).cloned())
            .collect();
        batch.extend(replayed.iter());
        let lr = learning_rate(step, settings.run.steps, settings.run.learning_rate, 0);
        let track_mistakes = replay_per_batch > 0;
        let shards = deal(batch, settings.run.shards());
        let step_result = sharded_gradients(&model, &train_device, shards, |net, shard| {
            let (x, y) = batch_tensors(&shard, size, &train_device);
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
                .init(&train_device)
                .forward(logits, y);
            (loss, mistakes)
        });
        for e in step_result.outputs.into_iter().flatten() {
            replay.push(e.clone());
        }
        progress.add_loss(step_result.loss);
        model = optim.step(lr, model, step_result.grads);
        if let Some(a) = &mut average {
            a.update(&model);
        }
        for e in synth {
            pool.push(e);
        }
        steps_run = step + 1;

        if let Some(line) = progress.line(steps_run, lr) {
            log(&line);
        }
        if steps_run % settings.run.eval_every == 0 || steps_run == settings.run.steps {
            let net = match &average {
                Some(a) => a.average().clone(),
                None => model.valid(),
            };
            let synth_m = evaluate(&net, &synth_val, size, &eval_device);
            let real_m = evaluate(&net, &real_val, size, &eval_device);
            let improved = checkpoints.record(
                &net,
                synth_m.accuracy,
                steps_run,
                (synth_m.clone(), real_m.clone()),
            )?;
            log(&format!(
                "eval step {steps_run}: synthetic accuracy {:.4}, real accuracy {:.4}{}",
                synth_m.accuracy,
                real_m.accuracy,
                if improved { " (best so far)" } else { "" }
            ));
            if checkpoints.should_stop() {
                log("no improvement: stopping early");
                break;
            }
        }
    }
    let (best_step, (synthetic_validation, real_validation)) = checkpoints.into_best()?;
    let report = BackgroundReport {
        steps_run,
        best_step,
        seconds: started.elapsed().as_secs_f64(),
        images_seen: steps_run * settings.run.batch_size,
        composites_rendered,
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
