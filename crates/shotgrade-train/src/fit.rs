//! One training loop for every model: [`fit`], and what a model must provide to be trained by
//! it, a [`Task`].
//!
//! The split follows burn-train's learner: a task knows its data, its loss and its metrics
//! (burn-train's `TrainStep` / `ValidStep`); `fit` owns everything around them — the
//! learning-rate schedule, the optimiser step, weight averaging, the evaluation cadence,
//! keeping the best model, checkpoints, early stopping, resuming and the progress lines.
//! Nothing else in the crate steps an optimiser, so a new model (an overlay detector, say) is
//! one `Task` and one model type.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

use crate::average::WeightAverage;
use crate::error::TrainError;
use crate::schedule::{BestTracker, Progress, learning_rate};

/// One step's gradients and the loss they come from.
pub struct Gradients {
    /// Gradients of the batch's mean loss.
    pub grads: GradientsParams,
    /// The batch's mean loss (for the progress lines).
    pub loss: f32,
}

/// What one evaluation of held-out data measured.
pub struct Evaluation<M> {
    /// Model selection key, higher is better: the best model is the one with the highest key.
    pub key: f32,
    pub metrics: M,
    /// One line for the log, e.g. `mAP@0.5 0.91, mean IoU 0.83`.
    pub summary: String,
}

/// A model to train: its batches, its loss and its held-out evaluation.
///
/// `fit` calls, for every step, [`batch`](Task::batch) then [`gradients`](Task::gradients) and
/// steps the optimiser; every `eval_every` steps and after the last, [`evaluate`](Task::evaluate)
/// on the model without autodiff (or on its weight average) and then
/// [`checkpoint`](Task::checkpoint).
pub trait Task {
    /// The trained module (on an autodiff device while training).
    type Model: Module + Clone;
    /// The examples of one step.
    type Batch;
    /// What an evaluation measures.
    type Metrics: Clone;

    /// The examples of step `step` (0-based). Called once per step, in order; a task whose
    /// data depends on a random stream draws from it here.
    fn batch(&mut self, step: usize) -> Self::Batch;

    /// The loss of `batch` under `model` and its gradients. A task may keep by-products here
    /// (recent mistakes to replay, composites to reuse).
    fn gradients(&mut self, model: &Self::Model, batch: Self::Batch) -> Gradients;

    /// Measures `model` (without autodiff) on held-out data.
    fn evaluate(&mut self, model: &Self::Model) -> Evaluation<Self::Metrics>;

    /// Writes `model` after an evaluation at `step`; `best` says whether it beats every
    /// earlier evaluation. The default writes nothing (the best model is returned by `fit`).
    fn checkpoint(
        &mut self,
        _model: &Self::Model,
        _step: usize,
        _best: bool,
    ) -> Result<(), TrainError> {
        Ok(())
    }
}

/// The learning rate over a run: a linear warm-up, then cosine decay to 1 % of the peak
/// ([`learning_rate`]), changing every `steps_per_unit` steps (1 for every step; an epoch's
/// batches for a task that decays per epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub peak: f64,
    /// Warm-up length, in units.
    pub warmup: usize,
    pub steps_per_unit: usize,
}

impl Schedule {
    /// Per-step decay after `warmup` warm-up steps.
    pub fn per_step(peak: f64, warmup: usize) -> Self {
        Schedule {
            peak,
            warmup,
            steps_per_unit: 1,
        }
    }

    /// The learning rate at `step` of a run of `steps`.
    pub fn at(&self, step: usize, steps: usize) -> f64 {
        let unit = self.steps_per_unit.max(1);
        learning_rate(step / unit, steps.div_ceil(unit), self.peak, self.warmup)
    }
}

/// How `fit` runs a task.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSettings {
    pub steps: usize,
    pub schedule: Schedule,
    /// Evaluate every this many steps (and after the last).
    pub eval_every: usize,
    /// Stop after this many evaluations in a row without improvement.
    pub patience: usize,
    /// Evaluate and keep an exponential moving average of the weights with this decay per step
    /// ([`crate::average`]) instead of the weights themselves.
    pub weight_average: Option<f32>,
    /// Items (images, pairs, examples) per step and their name, for the progress lines.
    pub items_per_step: usize,
    pub unit: &'static str,
    /// The first step to take: 0 for a new run; when continuing a run, the steps it already
    /// took (the model passed to `fit` is then the one saved after them, and the schedule
    /// continues where it was).
    pub start: usize,
}

/// What `fit` returns: how far it ran and the best evaluation with its model.
pub struct Fitted<Model, Metrics> {
    /// Steps taken (the last step when the run stopped early), counting resumed ones.
    pub steps_run: usize,
    /// The step of the best evaluation and what it measured.
    pub best_step: usize,
    pub metrics: Metrics,
    /// The model evaluated at `best_step` (without autodiff).
    pub model: Model,
    /// The model after the last step (on the training device), for continuing.
    pub last: Model,
}

/// Trains `model` on `task` with `optimiser` (see the module docs).
///
/// Errors when a checkpoint cannot be written or no evaluation ran (`steps` 0 or `start` past
/// the end).
pub fn fit<T: Task>(
    task: &mut T,
    mut model: T::Model,
    mut optimiser: ModuleOptimizer,
    settings: &FitSettings,
    log: &mut dyn FnMut(&str),
) -> Result<Fitted<T::Model, T::Metrics>, TrainError> {
    if settings.eval_every == 0 {
        return Err(TrainError::Settings("eval_every must be at least 1".into()));
    }
    let mut tracker = BestTracker::new(settings.patience);
    let mut best_model = None;
    let mut average = settings
        .weight_average
        .map(|decay| WeightAverage::new(&model, decay));
    let mut progress = Progress::new(settings.steps, settings.items_per_step, settings.unit);
    let mut steps_run = settings.start;
    for step in settings.start..settings.steps {
        let batch = task.batch(step);
        let lr = settings.schedule.at(step, settings.steps);
        let Gradients { grads, loss } = task.gradients(&model, batch);
        progress.add_loss(loss);
        model = optimiser.step(lr, model, grads);
        if let Some(a) = &mut average {
            a.update(&model);
        }
        steps_run = step + 1;
        if let Some(line) = progress.line(steps_run, lr) {
            log(&line);
        }
        if !steps_run.is_multiple_of(settings.eval_every) && steps_run != settings.steps {
            continue;
        }
        let evaluated = match &average {
            Some(a) => a.average().clone(),
            None => model.valid(),
        };
        let Evaluation {
            key,
            metrics,
            summary,
        } = task.evaluate(&evaluated);
        let best = tracker.is_better(key);
        task.checkpoint(&evaluated, steps_run, best)?;
        tracker.record(key, steps_run, metrics);
        log(&format!(
            "eval step {steps_run}: {summary}{}",
            if best { " (best so far)" } else { "" }
        ));
        if best {
            best_model = Some(evaluated);
        }
        if tracker.should_stop() {
            log("no improvement: stopping early");
            break;
        }
    }
    let (best_step, metrics) = tracker.into_best()?;
    let model_at_best = best_model.ok_or_else(|| {
        TrainError::Settings("no evaluation ran: steps must be at least 1".into())
    })?;
    Ok(Fitted {
        steps_run,
        best_step,
        metrics,
        model: model_at_best,
        last: model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::SgdConfig;
    use burn::tensor::{Device, Tensor, TensorData};

    /// A toy task: fit `y = 2x − 1` with one linear unit; evaluation is the negative mean
    /// squared error on fixed points.
    struct Line {
        device: Device,
        batches: usize,
        checkpoints: Vec<(usize, bool)>,
    }

    fn points(xs: &[f32], device: &Device) -> (Tensor<2>, Tensor<2>) {
        let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x - 1.0).collect();
        (
            Tensor::from_data(TensorData::new(xs.to_vec(), [xs.len(), 1]), device),
            Tensor::from_data(TensorData::new(ys, [xs.len(), 1]), device),
        )
    }

    impl Task for Line {
        type Model = Linear;
        type Batch = Vec<f32>;
        type Metrics = f32;

        fn batch(&mut self, step: usize) -> Vec<f32> {
            self.batches += 1;
            (0..8)
                .map(|i| ((step * 8 + i) % 17) as f32 / 8.0 - 1.0)
                .collect()
        }

        fn gradients(&mut self, model: &Linear, batch: Vec<f32>) -> Gradients {
            let (x, y) = points(&batch, &self.device);
            let loss = (model.forward(x) - y).powi_scalar(2).mean();
            Gradients {
                loss: loss.clone().into_scalar::<f32>(),
                grads: GradientsParams::from_grads(loss.backward(), model),
            }
        }

        fn evaluate(&mut self, model: &Linear) -> Evaluation<f32> {
            let (x, y) = points(&[-1.0, 0.0, 0.5, 1.0], &Device::flex());
            let mse = (model.forward(x) - y)
                .powi_scalar(2)
                .mean()
                .into_scalar::<f32>();
            Evaluation {
                key: -mse,
                metrics: mse,
                summary: format!("mse {mse:.4}"),
            }
        }

        fn checkpoint(&mut self, _: &Linear, step: usize, best: bool) -> Result<(), TrainError> {
            self.checkpoints.push((step, best));
            Ok(())
        }
    }

    fn settings(steps: usize, patience: usize) -> FitSettings {
        FitSettings {
            steps,
            schedule: Schedule::per_step(0.1, 0),
            eval_every: 10,
            patience,
            weight_average: None,
            items_per_step: 8,
            unit: "points",
            start: 0,
        }
    }

    fn toy() -> (Line, Linear) {
        let device = Device::flex().autodiff();
        let model = LinearConfig::new(1, 1).init(&device);
        let task = Line {
            device,
            batches: 0,
            checkpoints: Vec::new(),
        };
        (task, model)
    }

    #[test]
    fn fit_trains_a_toy_task_and_keeps_the_best() {
        let (mut task, model) = toy();
        let before = task.evaluate(&model.valid()).metrics;
        let mut lines = Vec::new();
        let fitted = fit(
            &mut task,
            model,
            SgdConfig::new().init(),
            &settings(205, 100),
            &mut |l| lines.push(l.to_string()),
        )
        .expect("fit");
        assert_eq!(fitted.steps_run, 205);
        assert_eq!(task.batches, 205, "one batch per step");
        // Evaluations every 10 steps and after the last.
        assert_eq!(task.checkpoints.len(), 21);
        assert_eq!(task.checkpoints.last().map(|c| c.0), Some(205));
        assert!(
            task.checkpoints[0].1,
            "the first evaluation is the best so far"
        );
        assert!(
            fitted.metrics < 1e-3 && fitted.metrics < before,
            "{before} → {}",
            fitted.metrics
        );
        // The returned model is the one evaluated at the best step.
        let again = task.evaluate(&fitted.model).metrics;
        assert!((again - fitted.metrics).abs() < 1e-6);
        assert!(lines.iter().any(|l| l.starts_with("eval step 10: mse")));
        assert!(lines.iter().any(|l| l.starts_with("step 25/205")));
    }

    /// Fits a fresh toy task with `settings`, quietly; returns the task and the outcome.
    fn fit_toy(settings: &FitSettings) -> (Line, Result<Fitted<Linear, f32>, TrainError>) {
        let (mut task, model) = toy();
        let fitted = fit(
            &mut task,
            model,
            SgdConfig::new().init(),
            settings,
            &mut |_| {},
        );
        (task, fitted)
    }

    #[test]
    fn fit_stops_early_and_resumes_from_a_step() {
        // A zero learning rate never improves: stop after `patience` evaluations.
        let mut frozen = settings(100, 2);
        frozen.schedule.peak = 0.0;
        let (_, fitted) = fit_toy(&frozen);
        let fitted = fitted.expect("fit");
        assert_eq!(fitted.steps_run, 30, "evaluations at 10, 20, 30");
        assert_eq!(fitted.best_step, 10);

        let (task, fitted) = fit_toy(&FitSettings {
            start: 90,
            ..settings(100, 5)
        });
        let fitted = fitted.expect("fit");
        assert_eq!((task.batches, fitted.steps_run), (10, 100));
        assert_eq!(task.checkpoints, vec![(100, true)]);

        let (_, err) = fit_toy(&FitSettings {
            start: 100,
            ..settings(100, 5)
        });
        assert!(err.is_err(), "no evaluation ran");
    }

    /// The crate's rule: only `fit` steps an optimiser (every `ModuleOptimizer::step` call is
    /// written `optimiser.step(lr, …)` here).
    #[test]
    fn nothing_outside_fit_steps_an_optimiser() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10, "{files:?}");
        for file in files.iter().filter(|f| !f.ends_with("fit.rs")) {
            let text = std::fs::read_to_string(file).expect("read");
            for pattern in [".step(lr", "step_multi(", "optim.step(", "optimiser.step("] {
                assert!(
                    !text.contains(pattern),
                    "{} steps an optimiser",
                    file.display()
                );
            }
        }
    }

    #[test]
    fn schedule_decays_per_unit() {
        let per_epoch = Schedule {
            peak: 1.0,
            warmup: 0,
            steps_per_unit: 4,
        };
        // Steps of one epoch share its rate; epoch e of 3 is learning_rate(e, 3).
        for step in 0..12 {
            assert_eq!(
                per_epoch.at(step, 12),
                learning_rate(step / 4, 3, 1.0, 0),
                "{step}"
            );
        }
        assert_eq!(
            Schedule::per_step(2.0, 100).at(7, 1000),
            learning_rate(7, 1000, 2.0, 100)
        );
    }
}
