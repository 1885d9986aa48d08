//! Fine-tuning the pretrained-trunk background model's late stages (6 and 7) and its head on
//! the labelled photos, after the linear head is fitted.
//!
//! Why these stages: the linear head over frozen ImageNet features stalls near 86 % on the real
//! validation part, and most of its mistakes are the amateur photos' `solid` against
//! `lifestyle` (a plain sheet against floor boards or a rug) — a texture question ImageNet's
//! late features were not made to answer. Stages 6 and 7 are a third of the trunk's weights
//! but run on 5 × 5 maps at 160 px, so they train in minutes on two cores from each photo's
//! stage-5 map computed once (the earlier stages stay frozen and never run again). The run
//! starts from the fitted linear head and keeps the step that scores best on validation;
//! the caller keeps the linear model when fine-tuning does not beat it.

use burn::optim::AdamWConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use shotgrade_image::BACKDROP_FEATURES;
use shotgrade_models::TrunkBackground;
use shotgrade_synth::SplitMix64;

use crate::error::TrainError;
use crate::fit::{Ended, Evaluation, FitSettings, Gradients, Guard, Schedule, Task, fit};
use crate::parallel::{deal, sharded_gradients};
use crate::trunk_head::PhotoFeatures;

/// How the late stages are fine-tuned.
#[derive(Debug, Clone)]
pub struct TuneSettings {
    /// Optimiser steps (0: no fine-tuning).
    pub steps: usize,
    /// Peak learning rate (AdamW, linear warm-up then cosine decay).
    pub learning_rate: f64,
    /// Photos and composites per step.
    pub batch: usize,
    /// Validation every this many steps (and after the last).
    pub eval_every: usize,
    /// Stop after this many evaluations without a better validation accuracy.
    pub patience: usize,
    /// Seed of the batch order.
    pub seed: u64,
    pub guard: Guard,
}

impl Default for TuneSettings {
    fn default() -> Self {
        TuneSettings {
            steps: 0,
            learning_rate: 1e-4,
            batch: 32,
            eval_every: 50,
            patience: 6,
            seed: 1,
            guard: Guard::default(),
        }
    }
}

/// What the fine-tuning measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TuneReport {
    pub steps_run: usize,
    pub best_step: usize,
    /// Validation accuracy of the model fine-tuned to `best_step`.
    pub validation_accuracy: f32,
}

/// The device a model to fine-tune is built on (its weights are loaded there, not moved).
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

struct TuneTask<'a> {
    train: Vec<&'a PhotoFeatures>,
    val: Vec<&'a PhotoFeatures>,
    /// `[channels, side, side]` of a stage-5 map.
    map: [usize; 3],
    batch: usize,
    order: Vec<usize>,
    rng: SplitMix64,
    train_device: Device,
    device: Device,
    loss_sum: f32,
    batches: usize,
}

/// The stage-5 maps and the statistics of `examples` as tensors on `device`.
fn inputs(examples: &[&PhotoFeatures], map: [usize; 3], device: &Device) -> (Tensor<4>, Tensor<2>) {
    let n = examples.len();
    let mut maps = Vec::with_capacity(n * map.iter().product::<usize>());
    let mut statistics = Vec::with_capacity(n * BACKDROP_FEATURES);
    for e in examples {
        maps.extend_from_slice(&e.map);
        statistics.extend_from_slice(e.border());
    }
    (
        Tensor::from_data(TensorData::new(maps, [n, map[0], map[1], map[2]]), device),
        Tensor::from_data(TensorData::new(statistics, [n, BACKDROP_FEATURES]), device),
    )
}

/// Share of `examples` whose predicted class is their label.
fn accuracy(
    model: &TrunkBackground,
    examples: &[&PhotoFeatures],
    map: [usize; 3],
    device: &Device,
) -> f32 {
    let mut right = 0usize;
    for chunk in examples.chunks(64) {
        let (x, s) = inputs(chunk, map, device);
        let predicted = model.logits_from(x, s).argmax(1).into_data();
        right += chunk
            .iter()
            .zip(predicted.iter::<i64>())
            .filter(|(e, p)| e.class.index() as i64 == *p)
            .count();
    }
    right as f32 / examples.len().max(1) as f32
}

impl Task for TuneTask<'_> {
    type Model = TrunkBackground;
    type Batch = Vec<usize>;
    type Metrics = f32;

    fn batch(&mut self, step: usize) -> Vec<usize> {
        crate::fit::epoch_batch(&mut self.order, &mut self.rng, step, self.batch)
    }

    fn gradients(&mut self, model: &TrunkBackground, batch: Vec<usize>) -> Gradients {
        let examples: Vec<&PhotoFeatures> = batch.iter().map(|&i| self.train[i]).collect();
        let total_weight: f32 = examples.iter().map(|e| e.weight).sum::<f32>().max(1e-6);
        let count = examples.len();
        let map = self.map;
        let device = &self.train_device;
        let shards = deal(examples, 2);
        let step = sharded_gradients(model, device, shards, |net, shard| {
            let n = shard.len();
            let (x, s) = inputs(&shard, map, device);
            let targets: Vec<i64> = shard.iter().map(|e| e.class.index() as i64).collect();
            let weights: Vec<f32> = shard.iter().map(|e| e.weight).collect();
            let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), device);
            let weights = Tensor::<1>::from_data(TensorData::new(weights, [n]), device);
            let picked = log_softmax(net.logits_from(x, s), 1)
                .gather(1, targets)
                .reshape([n]);
            // The weighted mean over the whole batch: `sharded_gradients` scales each shard's
            // loss by its share of the items, which this undoes.
            let loss = (picked * weights).sum().neg() * (count as f32 / (n as f32 * total_weight));
            (loss, ())
        });
        self.loss_sum += step.loss;
        self.batches += 1;
        Gradients {
            grads: step.grads,
            loss: step.loss,
        }
    }

    fn evaluate(&mut self, model: &TrunkBackground) -> Evaluation<f32> {
        let acc = accuracy(model, &self.val, self.map, &self.device);
        let loss = self.loss_sum / self.batches.max(1) as f32;
        (self.loss_sum, self.batches) = (0.0, 0);
        Evaluation {
            key: acc,
            metrics: acc,
            summary: format!("loss {loss:.4} · validation accuracy {acc:.4}"),
        }
    }
}

/// Fine-tunes stages 6–7 and the head of `model` (its head already fitted; built on
/// [`training_device`], so that its weights are tracked) on the `train` examples (their
/// stage-5 maps, [`PhotoFeatures::map`]), choosing the step on `validation`. Returns the
/// fine-tuned model (without autodiff) and what it measured, or `None` for the model when no
/// step beat `baseline` (the linear head's validation accuracy).
pub fn fine_tune(
    model: TrunkBackground,
    train: &[&PhotoFeatures],
    validation: &[&PhotoFeatures],
    baseline: f32,
    settings: &TuneSettings,
    log: &mut dyn FnMut(&str),
) -> Result<(Option<TrunkBackground>, TuneReport), TrainError> {
    let first = train
        .first()
        .ok_or_else(|| TrainError::Settings("no training photos to fine-tune on".into()))?;
    let channels = shotgrade_models::trunk::STAGE_CHANNELS
        [shotgrade_models::pretrained_background::HEAD_STAGES[0] - 1];
    let side = ((first.map.len() / channels) as f64).sqrt().round() as usize;
    if channels * side * side != first.map.len()
        || train
            .iter()
            .chain(validation)
            .any(|e| e.map.len() != first.map.len())
    {
        return Err(TrainError::Settings(
            "fine-tuning needs every photo's stage-5 map (FeatureSettings::keep_maps)".into(),
        ));
    }
    let train_device = training_device();
    let mut task = TuneTask {
        train: train.to_vec(),
        val: validation.to_vec(),
        map: [channels, side, side],
        batch: settings.batch.max(1),
        order: (0..train.len()).collect(),
        rng: SplitMix64::new(settings.seed ^ 0x7E57_57A6),
        train_device: train_device.clone(),
        device: Device::flex(),
        loss_sum: 0.0,
        batches: 0,
    };
    let fit_settings = FitSettings {
        steps: settings.steps,
        schedule: Schedule::per_step(settings.learning_rate, settings.steps / 20),
        eval_every: settings.eval_every.max(1),
        patience: settings.patience,
        weight_average: None,
        items_per_step: settings.batch,
        unit: "photos",
        guard: settings.guard.clone(),
        resume: None,
    };
    let optimiser = AdamWConfig::new().with_weight_decay(1e-4).init();
    log(&format!(
        "fine-tuning stages 6–7 and the head: {} examples, {} steps of {}, validation on {}",
        train.len(),
        settings.steps,
        settings.batch,
        validation.len()
    ));
    let fitted = fit(&mut task, model, optimiser, &fit_settings, log)?;
    match fitted.ended {
        Ended::TimeLimit => {
            return Err(TrainError::Stopped(
                "the time limit ran out while fine-tuning; nothing was written".into(),
            ));
        }
        Ended::Stopped(code) => {
            return Err(TrainError::Stopped(format!(
                "stopped by a signal (exit status {code}) while fine-tuning; nothing was written"
            )));
        }
        Ended::Schedule | Ended::EarlyStop => {}
    }
    let report = TuneReport {
        steps_run: fitted.steps_run,
        best_step: fitted.best_step,
        validation_accuracy: fitted.metrics,
    };
    let better = fitted.metrics > baseline;
    log(&format!(
        "fine-tuned: validation {:.1} % at step {} (linear head {:.1} %){}",
        100.0 * fitted.metrics,
        fitted.best_step,
        100.0 * baseline,
        if better {
            ""
        } else {
            ": the linear head is kept"
        }
    ));
    Ok((better.then_some(fitted.model), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shotgrade_core::BackgroundClass;
    use shotgrade_synth::labels::Part;

    /// Toy examples whose class is the sign of their stage-5 map: learnable by stages 6–7
    /// and the head, not by the statistics (all zero).
    fn toy(n: usize, part: Part, seed: u64) -> Vec<PhotoFeatures> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|i| {
                let white = i % 2 == 0;
                let map: Vec<f32> = (0..112 * 2 * 2)
                    .map(|_| (if white { 0.5 } else { -0.5 }) + rng.range(-0.3, 0.3))
                    .collect();
                PhotoFeatures {
                    path: format!("toy/{i}"),
                    source: "toy".into(),
                    part,
                    class: if white {
                        BackgroundClass::White
                    } else {
                        BackgroundClass::Cluttered
                    },
                    features: vec![0.0; BACKDROP_FEATURES],
                    weight: 1.0,
                    map,
                }
            })
            .collect()
    }

    #[test]
    fn fine_tuning_trains_the_late_stages_and_keeps_the_best_step() {
        let train = toy(64, Part::Train, 1);
        let val = toy(32, Part::Validation, 2);
        let model = TrunkBackground::init(5, &training_device());
        // Stage 6's first block (block 11).
        let stage6 = |m: &TrunkBackground| -> Vec<f32> {
            m.trunk.blocks[11]
                .project_conv
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let before = stage6(&model);
        let settings = TuneSettings {
            steps: 40,
            learning_rate: 3e-3,
            batch: 16,
            eval_every: 10,
            patience: 10,
            ..TuneSettings::default()
        };
        let (tuned, report) = fine_tune(
            model,
            &train.iter().collect::<Vec<_>>(),
            &val.iter().collect::<Vec<_>>(),
            0.5,
            &settings,
            &mut |_| {},
        )
        .expect("fine-tune");
        assert!(report.validation_accuracy >= 0.9, "{report:?}");
        let tuned = tuned.expect("beats chance");
        let after = stage6(&tuned);
        // Stage 6 moved: the gradients reach the trunk.
        assert!(before.iter().zip(&after).any(|(a, b)| (a - b).abs() > 1e-6));
    }

    #[test]
    fn photos_without_maps_are_refused() {
        let mut train = toy(4, Part::Train, 1);
        train[0].map.clear();
        let e = fine_tune(
            TrunkBackground::init(5, &training_device()),
            &train.iter().collect::<Vec<_>>(),
            &[],
            0.0,
            &TuneSettings {
                steps: 1,
                ..TuneSettings::default()
            },
            &mut |_| {},
        )
        .expect_err("refused");
        assert!(e.to_string().contains("stage-5 map"), "{e}");
    }
}
