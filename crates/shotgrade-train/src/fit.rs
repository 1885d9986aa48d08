//! One training loop for every model: [`fit`], and what a model must provide to be trained by
//! it, a [`Task`].
//!
//! The split follows burn-train's learner: a task knows its data, its loss and its metrics
//! (burn-train's `TrainStep` / `ValidStep`); `fit` owns everything around them — the
//! learning-rate schedule, the optimiser step, weight averaging, the evaluation cadence,
//! keeping the best model, checkpoints, early stopping, the time limit, stops asked from
//! outside, resuming and the progress lines. Nothing else in the crate steps an optimiser, so a
//! new model (an overlay detector, say) is one `Task` and one model type, and gets
//! `--time-limit` and `--resume` for free.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Tensor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::average::WeightAverage;
use crate::error::TrainError;
use crate::resume::{
    AVERAGE_FILE, BEST_FILE, FORMAT, MODEL_FILE, OPTIMISER_FILE, ResumeDir, ResumeState, SavedBest,
};
use crate::schedule::{BestTracker, Progress, TimeLimit, clock, learning_rate};

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
    /// What an evaluation measures (kept with the run's checkpoints as JSON).
    type Metrics: Clone + Serialize + DeserializeOwned;

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

    /// The state of the task's random streams after the last batch drawn, saved with the
    /// run's checkpoints so that a resumed run draws the batches the run would have drawn.
    /// A task whose batches depend on the step alone keeps the default (nothing). Pools that
    /// refill from the stream (reused composites, replayed mistakes) are not saved: a resumed
    /// run refills them.
    fn stream_state(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Continues the streams saved by [`stream_state`](Task::stream_state).
    fn restore_stream(&mut self, _state: &[u64]) {}
}

/// Batch `step` of epochs over `order` (indices of a task's examples), `batch` at a time: at
/// each epoch's first step `order` is shuffled (Fisher–Yates with the run's generator, so the
/// same seed gives the same batches); an epoch's last batch may be short.
pub fn epoch_batch(
    order: &mut [usize],
    rng: &mut shotgrade_synth::SplitMix64,
    step: usize,
    batch: usize,
) -> Vec<usize> {
    let batch = batch.max(1);
    let per_epoch = order.len().div_ceil(batch).max(1);
    let i = step % per_epoch;
    if i == 0 {
        for k in (1..order.len()).rev() {
            order.swap(k, (rng.next_u64() % (k as u64 + 1)) as usize);
        }
    }
    let end = ((i + 1) * batch).min(order.len());
    order[(i * batch).min(end)..end].to_vec()
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

/// What may end a run before its schedule does: a wall-clock limit, and a stop asked for from
/// outside (a signal handler sets `stop` to the exit status the command will end with: 130
/// for SIGINT, 143 for SIGTERM; 0 means carry on).
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub limit: Option<TimeLimit>,
    pub stop: Option<Arc<AtomicUsize>>,
}

impl PartialEq for Guard {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
            && match (&self.stop, &other.stop) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Guard {
    /// The exit status of a stop asked for from outside, if one was.
    pub fn stop_requested(&self) -> Option<usize> {
        self.stop
            .as_ref()
            .map(|s| s.load(Ordering::SeqCst))
            .filter(|&code| code != 0)
    }
}

/// Where `fit` keeps a run's last checkpoint set and whether it starts from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeSettings {
    pub dir: ResumeDir,
    /// Continue from the newest set in `dir` (`--resume`) instead of starting afresh.
    pub from_saved: bool,
    /// The command line that started the run, kept in every set.
    pub command: Vec<String>,
    /// The folder the command ran in (its relative paths resolve against it).
    pub cwd: Option<std::path::PathBuf>,
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
    /// A time limit and a stop request that end the run early.
    pub guard: Guard,
    /// The last checkpoint set: written at every evaluation and when the run ends early, so
    /// that `--resume` continues it; `None` writes none.
    pub resume: Option<ResumeSettings>,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every planned step was taken.
    Schedule,
    /// `patience` evaluations without improvement.
    EarlyStop,
    /// The time limit came near; the run can be resumed.
    TimeLimit,
    /// A stop asked for from outside (its exit status); the run can be resumed.
    Stopped(usize),
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
    pub ended: Ended,
}

/// A run's state between two steps: what a checkpoint set holds.
struct RunState<T: Task> {
    optimiser: ModuleOptimizer,
    tracker: BestTracker<T::Metrics>,
    best_model: Option<T::Model>,
    average: Option<WeightAverage<T::Model>>,
    /// Steps taken.
    step: usize,
    /// The step of the last evaluation and of the last checkpoint set.
    evaluated_at: Option<usize>,
    saved_at: Option<usize>,
    /// How long the last evaluation and the last set's writing took.
    eval_time: Option<Duration>,
    save_time: Duration,
    /// Training time of earlier sessions of the run (resumed ones).
    elapsed_before: f64,
    session_start: Instant,
}

/// Trains `model` on `task` with `optimiser` (see the module docs).
///
/// Errors when a checkpoint cannot be written, a resume cannot be read, or no evaluation ran
/// (`steps` 0).
pub fn fit<T: Task>(
    task: &mut T,
    model: T::Model,
    optimiser: ModuleOptimizer,
    settings: &FitSettings,
    log: &mut dyn FnMut(&str),
) -> Result<Fitted<T::Model, T::Metrics>, TrainError> {
    if settings.eval_every == 0 {
        return Err(TrainError::Settings("eval_every must be at least 1".into()));
    }
    let average = settings
        .weight_average
        .map(|decay| WeightAverage::new(&model, decay));
    let mut model = model;
    let mut run = RunState::<T> {
        optimiser,
        tracker: BestTracker::new(settings.patience),
        best_model: None,
        average,
        step: 0,
        evaluated_at: None,
        saved_at: None,
        eval_time: None,
        save_time: Duration::ZERO,
        elapsed_before: 0.0,
        session_start: Instant::now(),
    };
    if let Some(resume) = settings.resume.as_ref().filter(|r| r.from_saved) {
        model = run.load(task, settings, &resume.dir, model)?;
        log(&format!(
            "resumed at step {} of {} from {}",
            run.step,
            settings.steps,
            resume.dir.root().display()
        ));
    }
    let first_step = run.step;
    let mut progress = Progress::new(settings, first_step);
    let ended = loop {
        if run.step >= settings.steps {
            break Ended::Schedule;
        }
        if run.tracker.should_stop() {
            // A resumed run that had already stopped early.
            break Ended::EarlyStop;
        }
        if let Some(code) = settings.guard.stop_requested() {
            break Ended::Stopped(code);
        }
        if run.near_limit(settings, &progress) {
            break Ended::TimeLimit;
        }
        let step = run.step;
        let batch = task.batch(step);
        let lr = settings.schedule.at(step, settings.steps);
        let Gradients { grads, loss } = task.gradients(&model, batch);
        progress.add_loss(loss);
        model = run.optimiser.step(lr, model, grads);
        if let Some(a) = &mut run.average {
            a.update(&model);
        }
        run.step = step + 1;
        if let Some(line) = progress.line(run.step, lr, run.reserve(settings)) {
            log(&line);
        }
        if !run.step.is_multiple_of(settings.eval_every) && run.step != settings.steps {
            continue;
        }
        run.evaluate(task, &model, true, log)?;
        run.save(task, &model, settings)?;
        if run.tracker.should_stop() {
            log("no improvement: stopping early");
            break Ended::EarlyStop;
        }
    };
    if matches!(ended, Ended::TimeLimit | Ended::Stopped(_)) && run.step == first_step {
        // Nothing learnt in this session: writing a set and evaluating would only cost time.
        let why = match ended {
            Ended::TimeLimit => format!(
                "the time limit ({}) ran out before the first step: start-up took {}; give a \
                 longer --time-limit",
                clock(settings.guard.limit.map_or(Duration::ZERO, |l| l.limit)),
                clock(
                    settings
                        .guard
                        .limit
                        .map_or(Duration::ZERO, |l| l.started.elapsed())
                )
            ),
            _ => "stopped before the first step: nothing was written".into(),
        };
        return Err(TrainError::Stopped(why));
    }
    match ended {
        Ended::Schedule | Ended::EarlyStop => {}
        Ended::TimeLimit => {
            if run.evaluated_at != Some(run.step) {
                run.evaluate(task, &model, false, log)?;
            }
            if run.saved_at != Some(run.step) {
                run.save(task, &model, settings)?;
            }
            let limit = settings.guard.limit.map_or(Duration::ZERO, |l| l.limit);
            log(&format!(
                "stopped at the time limit ({}) after step {} of {}; continue with --resume",
                clock(limit),
                run.step,
                settings.steps
            ));
        }
        Ended::Stopped(code) => {
            // The checkpoint first: a scheduler's SIGKILL may follow within seconds.
            if run.saved_at != Some(run.step) {
                run.save(task, &model, settings)?;
            }
            log(&format!(
                "stop requested: checkpoint written after step {} of {}",
                run.step, settings.steps
            ));
            // Then an evaluation, when there is none of these weights and one is quick (or
            // there is none at all, without which the run has no result).
            let quick = run.eval_time.is_none_or(|t| t <= Duration::from_secs(20));
            let in_time = settings
                .guard
                .limit
                .is_none_or(|l| run.eval_time.is_none_or(|t| l.left() > t));
            if run.evaluated_at != Some(run.step) && (run.best_model.is_none() || quick && in_time)
            {
                run.evaluate(task, &model, false, log)?;
                run.save(task, &model, settings)?;
            }
            log(&format!(
                "stopped (exit status {code}); continue with --resume"
            ));
        }
    }
    run.finish(model, ended)
}

impl<T: Task> RunState<T> {
    /// Evaluates the model (or its weight average), lets the task write its checkpoint and
    /// records the result.
    /// `scheduled` says whether it is one of the run's cadence (only those count towards
    /// early stopping).
    fn evaluate(
        &mut self,
        task: &mut T,
        model: &T::Model,
        scheduled: bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<(), TrainError> {
        let started = Instant::now();
        let evaluated = match &self.average {
            Some(a) => a.average().clone(),
            None => model.valid(),
        };
        let Evaluation {
            key,
            metrics,
            summary,
        } = task.evaluate(&evaluated);
        let best = self.tracker.is_better(key);
        task.checkpoint(&evaluated, self.step, best)?;
        self.tracker.record_with(key, self.step, metrics, scheduled);
        log(&format!(
            "eval step {}: {summary}{}",
            self.step,
            if best { " (best so far)" } else { "" }
        ));
        if best {
            self.best_model = Some(evaluated);
        }
        self.evaluated_at = Some(self.step);
        self.eval_time = Some(started.elapsed());
        Ok(())
    }

    /// Time kept back from a time limit: one evaluation (a tenth of the limit before the first
    /// has been timed) and one checkpoint set.
    fn reserve(&self, settings: &FitSettings) -> Duration {
        let eval = self.eval_time.unwrap_or_else(|| {
            settings
                .guard
                .limit
                .map_or(Duration::ZERO, |l| l.limit / 10)
        });
        eval + self.save_time.max(Duration::from_millis(200))
    }

    /// Whether another step would run into the time already kept back from the limit.
    fn near_limit(&self, settings: &FitSettings, progress: &Progress) -> bool {
        let Some(limit) = settings.guard.limit else {
            return false;
        };
        let step = progress
            .seconds_per_step(self.step)
            .map_or(Duration::ZERO, Duration::from_secs_f64);
        limit.left() < self.reserve(settings) + step
    }

    /// Writes the run's last checkpoint set ([`crate::resume`]).
    fn save(
        &mut self,
        task: &T,
        model: &T::Model,
        settings: &FitSettings,
    ) -> Result<(), TrainError> {
        let Some(resume) = &settings.resume else {
            return Ok(());
        };
        let started = Instant::now();
        let set = resume.dir.begin()?;
        save_module(model, &set.path(MODEL_FILE))?;
        let optimiser_path = set.path(OPTIMISER_FILE);
        self.optimiser
            .save(&optimiser_path)
            .map_err(|e| TrainError::Write {
                path: optimiser_path.display().to_string(),
                message: e.to_string(),
            })?;
        if let Some(best) = &self.best_model {
            save_module(best, &set.path(BEST_FILE))?;
        }
        if let Some(a) = &self.average {
            save_module(a.average(), &set.path(AVERAGE_FILE))?;
        }
        let best = match self.tracker.best() {
            Some((key, step, metrics)) => Some(SavedBest {
                key,
                step,
                metrics: serde_json::to_value(metrics).map_err(|e| TrainError::Write {
                    path: set.path("state.json").display().to_string(),
                    message: e.to_string(),
                })?,
            }),
            None => None,
        };
        set.write_state(&ResumeState {
            format: FORMAT,
            command: resume.command.clone(),
            steps_taken: self.step,
            evaluated_at: self.evaluated_at,
            steps: settings.steps,
            param_ids: param_ids(model),
            best,
            since_best: self.tracker.since_best(),
            stream: task.stream_state(),
            average_updates: self.average.as_ref().map(WeightAverage::updates),
            elapsed_s: self.elapsed_before + self.session_start.elapsed().as_secs_f64(),
            eval_s: self.eval_time.map(|t| t.as_secs_f64()),
            save_s: self.save_time.as_secs_f64(),
            plan: plan(settings),
            cwd: resume.cwd.clone(),
        })?;
        resume.dir.commit(set)?;
        self.saved_at = Some(self.step);
        self.save_time = started.elapsed();
        Ok(())
    }

    /// Continues from the newest set in `dir`: returns `model` with the set's weights.
    fn load(
        &mut self,
        task: &mut T,
        settings: &FitSettings,
        dir: &ResumeDir,
        model: T::Model,
    ) -> Result<T::Model, TrainError> {
        let saved = dir.latest()?;
        let state = &saved.state;
        let refuse = |message: String| {
            TrainError::Resume(format!(
                "cannot resume from {}: {message}",
                saved.dir.display()
            ))
        };
        if state.steps != settings.steps {
            return Err(refuse(format!(
                "the run plans {} steps, these settings {}",
                state.steps, settings.steps
            )));
        }
        if !state.plan.is_empty() && state.plan != plan(settings) {
            return Err(refuse(format!(
                "its settings resolve differently now ({} then, {} now)",
                state.plan,
                plan(settings)
            )));
        }
        let model = load_module(model, &saved.path(MODEL_FILE))?;
        let model = set_param_ids(model, &state.param_ids).map_err(refuse)?;
        let optimiser_path = saved.path(OPTIMISER_FILE);
        self.optimiser = self
            .optimiser
            .clone()
            .load(&optimiser_path)
            .map_err(|e| refuse(format!("{}: {e}", optimiser_path.display())))?;
        let best = match &state.best {
            Some(b) => {
                let metrics: T::Metrics = serde_json::from_value(b.metrics.clone())
                    .map_err(|e| refuse(format!("its best metrics: {e}")))?;
                self.best_model = Some(load_module(model.valid(), &saved.path(BEST_FILE))?);
                Some((b.key, b.step, metrics))
            }
            None => None,
        };
        self.tracker.restore(best, state.since_best);
        match (&mut self.average, state.average_updates) {
            (Some(a), Some(updates)) => {
                let average = load_module(a.average().clone(), &saved.path(AVERAGE_FILE))?;
                a.restore(average, updates);
            }
            (None, None) => {}
            _ => return Err(refuse("the weight average setting differs".into())),
        }
        task.restore_stream(&state.stream);
        self.step = state.steps_taken;
        self.evaluated_at = state.evaluated_at;
        self.saved_at = Some(state.steps_taken);
        self.elapsed_before = state.elapsed_s;
        self.eval_time = state.eval_s.map(Duration::from_secs_f64);
        self.save_time = Duration::from_secs_f64(state.save_s);
        Ok(model)
    }

    fn finish(
        self,
        last: T::Model,
        ended: Ended,
    ) -> Result<Fitted<T::Model, T::Metrics>, TrainError> {
        let (best_step, metrics) = self.tracker.into_best()?;
        let model = self.best_model.ok_or_else(|| {
            TrainError::Settings("no evaluation ran: steps must be at least 1".into())
        })?;
        Ok(Fitted {
            steps_run: self.step,
            best_step,
            metrics,
            model,
            last,
            ended,
        })
    }
}

/// What a run plans besides its length, as one line a resume compares.
fn plan(settings: &FitSettings) -> String {
    format!(
        "{:?}, eval every {}, patience {}, weight average {:?}, {} {} per step",
        settings.schedule,
        settings.eval_every,
        settings.patience,
        settings.weight_average,
        settings.items_per_step,
        settings.unit
    )
}

/// Writes a module's tensors (the weights of a checkpoint set; no header: the set's state says
/// what they are).
fn save_module<M: Module>(module: &M, path: &Path) -> Result<(), TrainError> {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    module.save_into(&mut store).map_err(|e| TrainError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Loads tensors written by [`save_module`] into `module` (of the same shape).
fn load_module<M: Module>(mut module: M, path: &Path) -> Result<M, TrainError> {
    let fail = |message: String| {
        TrainError::Resume(format!("cannot resume from {}: {message}", path.display()))
    };
    let mut store = SafetensorsStore::from_file(path).validate(true);
    let result = module
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(fail(format!(
            "the network's shape differs ({} errors, {} missing, {} unexpected tensors)",
            result.errors.len(),
            result.missing.len(),
            result.unused.len()
        )));
    }
    Ok(module)
}

/// The ids of a module's float parameters, in visiting order.
fn param_ids<M: Module>(module: &M) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// Gives a reloaded module the parameter ids it had when saved, which key the optimiser's
/// state (a fresh module draws new random ids).
fn set_param_ids<M: Module>(module: M, ids: &[u64]) -> Result<M, String> {
    struct SetIds<'a> {
        ids: std::slice::Iter<'a, u64>,
        short: bool,
    }
    impl ModuleMapper for SetIds<'_> {
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.ids.next() {
                Some(&id) => param.id = ParamId::from(id),
                None => self.short = true,
            }
            param
        }
    }
    let mut mapper = SetIds {
        ids: ids.iter(),
        short: false,
    };
    let module = module.map(&mut mapper);
    if mapper.short || mapper.ids.next().is_some() {
        return Err(format!(
            "the saved run has {} parameters, this network {}",
            ids.len(),
            param_ids(&module).len()
        ));
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamWConfig, SgdConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    /// A toy task: fit `y = 2x − 1` with one linear unit; evaluation is the negative mean
    /// squared error on fixed points.
    struct Line {
        device: Device,
        batches: usize,
        checkpoints: Vec<(usize, bool)>,
        /// After this many batches, ask the run to stop as SIGTERM would.
        stop_after: Option<(usize, Arc<AtomicUsize>)>,
        /// Makes each step take at least this long.
        step_pause: Duration,
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
            if let Some((n, flag)) = &self.stop_after
                && self.batches == *n
            {
                flag.store(143, Ordering::SeqCst);
            }
            std::thread::sleep(self.step_pause);
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
            guard: Guard::default(),
            resume: None,
        }
    }

    fn toy() -> (Line, Linear) {
        let device = Device::flex().autodiff();
        let mut model = LinearConfig::new(1, 1).init(&device);
        // A fixed start, so that separate runs can be compared weight for weight.
        model.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.3f32], [1, 1]),
            &device,
        ));
        model.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![-0.2f32], [1]),
            &device,
        )));
        let task = Line {
            device,
            batches: 0,
            checkpoints: Vec::new(),
            stop_after: None,
            step_pause: Duration::ZERO,
        };
        (task, model)
    }

    #[test]
    fn epoch_batches_cover_every_example_once_per_epoch_in_a_seeded_order() {
        let draw = |seed| {
            let mut order: Vec<usize> = (0..10).collect();
            let mut rng = shotgrade_synth::SplitMix64::new(seed);
            (0..8)
                .map(|step| epoch_batch(&mut order, &mut rng, step, 3))
                .collect::<Vec<_>>()
        };
        let batches = draw(7);
        // 10 examples in batches of 3: 3, 3, 3, 1 per epoch.
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 3, 1, 3, 3, 3, 1]
        );
        for epoch in batches.chunks(4) {
            let mut seen: Vec<usize> = epoch.concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(batches, draw(7));
        assert_ne!(batches, draw(8));
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
    fn fit_stops_early() {
        // A zero learning rate never improves: stop after `patience` evaluations.
        let mut frozen = settings(100, 2);
        frozen.schedule.peak = 0.0;
        let (_, fitted) = fit_toy(&frozen);
        let fitted = fitted.expect("fit");
        assert_eq!(fitted.steps_run, 30, "evaluations at 10, 20, 30");
        assert_eq!(fitted.best_step, 10);
        assert_eq!(fitted.ended, Ended::EarlyStop);
        let (_, err) = fit_toy(&settings(0, 5));
        assert!(err.is_err(), "no evaluation ran");
    }

    fn temp_out(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("shotgrade-fit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The weights of a linear unit, as numbers.
    fn weights(model: &Linear) -> Vec<f32> {
        let mut w = model
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("weight");
        if let Some(b) = &model.bias {
            w.extend(b.val().into_data().try_to_vec::<f32>().expect("bias"));
        }
        w
    }

    fn resume_into(out: &std::path::Path, from_saved: bool) -> Option<ResumeSettings> {
        Some(ResumeSettings {
            dir: ResumeDir::of_run(out),
            from_saved,
            command: vec!["train".into(), "toy".into()],
            cwd: None,
        })
    }

    /// Runs the toy task with AdamW (an optimiser with state to carry over) and `settings`;
    /// `stop_after` asks it to stop from outside after that many batches.
    fn adam_run(
        settings: &FitSettings,
        stop_after: Option<usize>,
    ) -> Result<Fitted<Linear, f32>, TrainError> {
        let (mut task, model) = toy();
        let mut settings = settings.clone();
        if let Some(n) = stop_after {
            let flag = Arc::new(AtomicUsize::new(0));
            task.stop_after = Some((n, flag.clone()));
            settings.guard.stop = Some(flag);
        }
        fit(
            &mut task,
            model,
            AdamWConfig::new().init(),
            &settings,
            &mut |_| {},
        )
    }

    fn assert_same(a: &Linear, b: &Linear, what: &str) {
        for (x, y) in weights(a).iter().zip(weights(b)) {
            assert!((x - y).abs() <= 1e-6, "{what}: {x} vs {y}");
        }
    }

    /// The bar: 100 steps straight, and 40 steps stopped from outside then resumed
    /// for the other 60, end with the same weights and the same best step — with and without
    /// a weight average, whose state is carried over too.
    #[test]
    fn a_stopped_and_resumed_run_ends_where_a_straight_one_does() {
        for average in [None, Some(0.9)] {
            let out = temp_out(&format!("resume-{}", average.is_some()));
            let mut plan = settings(100, 100);
            plan.schedule.peak = 0.02;
            plan.weight_average = average;
            let straight = adam_run(&plan, None).expect("straight");
            assert_eq!(straight.ended, Ended::Schedule);

            plan.resume = resume_into(&out, false);
            let first = adam_run(&plan, Some(40)).expect("first part");
            assert_eq!(first.ended, Ended::Stopped(143));
            assert_eq!(first.steps_run, 40);
            plan.resume = resume_into(&out, true);
            let resumed = adam_run(&plan, None).expect("resumed");
            assert_eq!(resumed.steps_run, 100);
            assert_eq!(resumed.best_step, straight.best_step, "{average:?}");
            assert_same(&straight.last, &resumed.last, "last weights");
            assert_same(&straight.model, &resumed.model, "best weights");
            assert!((straight.metrics - resumed.metrics).abs() <= 1e-6);
            let _ = std::fs::remove_dir_all(&out);
        }
    }

    /// A write of the next set cut short between writing its files and naming it in `LATEST`
    /// (a kill at the worst moment): the resume reads the previous set and still ends where a
    /// straight run does.
    #[test]
    fn a_torn_checkpoint_leaves_the_previous_set_to_resume_from() {
        let out = temp_out("torn");
        let mut plan = settings(60, 100);
        plan.schedule.peak = 0.02;
        let straight = adam_run(&plan, None).expect("straight");
        plan.resume = resume_into(&out, false);
        adam_run(&plan, Some(30)).expect("first part");
        // The fault: a new set's files written, the process gone before the commit.
        let dir = ResumeDir::of_run(&out);
        let torn = dir.begin().expect("begin");
        std::fs::write(torn.path(MODEL_FILE), b"half a file").expect("write");
        std::fs::write(torn.path(OPTIMISER_FILE), b"").expect("write");
        drop(torn);
        assert_eq!(dir.latest().expect("previous set").state.steps_taken, 30);
        plan.resume = resume_into(&out, true);
        let resumed = adam_run(&plan, None).expect("resumed");
        assert_same(&straight.last, &resumed.last, "last weights");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_time_limit_ends_the_run_with_an_evaluation_and_a_set() {
        let out = temp_out("limit");
        let (mut task, model) = toy();
        task.step_pause = Duration::from_millis(10);
        let mut plan = settings(10_000, 10_000);
        plan.guard.limit = Some(TimeLimit::from_now(Duration::from_millis(800)));
        plan.resume = resume_into(&out, false);
        let mut lines = Vec::new();
        let started = Instant::now();
        let fitted = fit(
            &mut task,
            model,
            AdamWConfig::new().init(),
            &plan,
            &mut |l| lines.push(l.to_string()),
        )
        .expect("fit");
        assert_eq!(fitted.ended, Ended::TimeLimit);
        // A guard, not a deadline to the millisecond: the last evaluation and set may run a
        // little over on a loaded machine, but the run must not go on.
        assert!(
            started.elapsed() < Duration::from_millis(2_000),
            "{:?}",
            started.elapsed()
        );
        assert!(fitted.steps_run > 5 && fitted.steps_run < 10_000);
        let set = ResumeDir::of_run(&out).latest().expect("set");
        assert_eq!(set.state.steps_taken, fitted.steps_run);
        assert_eq!(set.state.evaluated_at, Some(fitted.steps_run));
        let stop = lines.last().expect("lines");
        assert!(
            stop.starts_with("stopped at the time limit")
                && stop.contains(&format!("after step {}", fitted.steps_run)),
            "{stop}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("step 25/10000")
                && l.contains("left of the")
                && l.contains("more steps at this pace")),
            "{lines:?}"
        );
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_resume_with_another_plan_or_nothing_saved_is_refused() {
        let out = temp_out("refuse");
        let mut plan = settings(20, 100);
        plan.resume = resume_into(&out, true);
        let err = adam_run(&plan, None)
            .err()
            .expect("nothing saved")
            .to_string();
        assert!(err.contains("no resumable run"), "{err}");
        plan.resume = resume_into(&out, false);
        adam_run(&plan, None).expect("run");
        plan.steps = 30;
        plan.resume = resume_into(&out, true);
        let err = adam_run(&plan, None).err().expect("other plan").to_string();
        assert!(err.contains("plans 20 steps"), "{err}");
        let _ = std::fs::remove_dir_all(&out);
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
