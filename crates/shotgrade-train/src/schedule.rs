//! What every training loop shares: the learning-rate schedule, progress lines, keeping the best
//! checkpoint with early stopping, and writing the report.

use burn::tensor::Device;
use serde::Serialize;
use shotgrade_models::Network;
use shotgrade_models::weights;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::TrainError;
use crate::fit::{FitSettings, Guard, ResumeSettings, Schedule};
use crate::resume::ResumeDir;

/// The learning rate at `step`: a linear warm-up over `warmup_steps`, then cosine decay from
/// `peak` to 1 % of it at the last step.
pub fn learning_rate(step: usize, steps: usize, peak: f64, warmup_steps: usize) -> f64 {
    let warm = if warmup_steps == 0 {
        1.0
    } else {
        ((step + 1) as f64 / warmup_steps as f64).min(1.0)
    };
    let progress = step as f64 / steps.max(1) as f64;
    peak * warm * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()).max(0.02)
}

/// Averages the loss and turns it into a progress line every `every` steps: pace, elapsed
/// time, and with a time limit the time left and how many steps fit into it.
pub struct Progress {
    start: Instant,
    /// The step this session of the run started at (a resumed run's pace counts from it).
    first_step: usize,
    every: usize,
    steps: usize,
    items_per_step: usize,
    unit: &'static str,
    limit: Option<TimeLimit>,
    loss_sum: f32,
    losses: usize,
}

impl Progress {
    pub fn new(settings: &FitSettings, first_step: usize) -> Self {
        Progress {
            start: Instant::now(),
            first_step,
            every: 25,
            steps: settings.steps,
            items_per_step: settings.items_per_step,
            unit: settings.unit,
            limit: settings.guard.limit,
            loss_sum: 0.0,
            losses: 0,
        }
    }

    pub fn add_loss(&mut self, loss: f32) {
        self.loss_sum += loss;
        self.losses += 1;
    }

    /// Seconds per step in this session so far (`None` before the first).
    pub fn seconds_per_step(&self, steps_done: usize) -> Option<f64> {
        let taken = steps_done.checked_sub(self.first_step).filter(|&n| n > 0)?;
        Some(self.start.elapsed().as_secs_f64() / taken as f64)
    }

    /// The line to log after `steps_done` steps, when one is due; `reserve` is the time kept
    /// back from a time limit for the last evaluation and checkpoint.
    pub fn line(&mut self, steps_done: usize, lr: f64, reserve: Duration) -> Option<String> {
        if !steps_done.is_multiple_of(self.every) {
            return None;
        }
        let per_step = self.seconds_per_step(steps_done)?;
        let rate = self.items_per_step as f64 / per_step.max(1e-9);
        let eta = per_step * self.steps.saturating_sub(steps_done) as f64;
        let loss = self.loss_sum / self.losses.max(1) as f32;
        self.loss_sum = 0.0;
        self.losses = 0;
        let elapsed = self
            .limit
            .map_or_else(|| self.start.elapsed(), |l| l.started.elapsed());
        let mut line = format!(
            "step {steps_done}/{} · loss {loss:.5} · lr {lr:.2e} · {rate:.0} {}/s · {} elapsed · \
             ETA {}",
            self.steps,
            self.unit,
            clock(elapsed),
            clock(Duration::from_secs_f64(eta))
        );
        if let Some(limit) = self.limit {
            let left = limit.left();
            let usable = left.saturating_sub(reserve).as_secs_f64();
            let more = ((usable / per_step.max(1e-9)) as usize).min(self.steps - steps_done);
            line += &format!(
                " · {} left of the {} limit: ~{more} more steps at this pace",
                clock(left),
                clock(limit.limit)
            );
        }
        Some(line)
    }
}

/// A run's wall-clock limit: how long it may take from when the command started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeLimit {
    pub started: Instant,
    pub limit: Duration,
}

impl TimeLimit {
    /// A limit of `limit` from now.
    pub fn from_now(limit: Duration) -> Self {
        TimeLimit {
            started: Instant::now(),
            limit,
        }
    }

    /// Time left before the limit (zero once past it).
    pub fn left(&self) -> Duration {
        self.limit.saturating_sub(self.started.elapsed())
    }
}

/// A duration for people: `1h05m`, `4m10s`, `12s`, `0.4s`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s >= 10 {
        format!("{s}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Parses a duration such as `25m`, `1h30m`, `90s` or `2h` (hours, minutes and seconds, in
/// that order, each at most once); zero and anything else are refused with a reason.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: write e.g. 90s, 25m or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0u64;
    let mut last_unit = 0; // 1 = h, 2 = m, 3 = s: units must come in that order
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let (unit, scale) = match rest[digits..].chars().next() {
            Some('h') => (1, 3600),
            Some('m') => (2, 60),
            Some('s') => (3, 1),
            _ => return Err(bad()),
        };
        if unit <= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        total = value
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(format!(
            "`{text}` is no time at all: give a limit above zero"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// What every training run has: where it reads and writes, how long it runs, its schedule
/// and checkpointing. Each network's settings embed one, with that network's defaults (the
/// ones its shipped weights were trained with).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// The shared asset folder.
    pub assets: PathBuf,
    /// Where weights, checkpoint and metrics go.
    pub out: PathBuf,
    pub steps: usize,
    pub batch_size: usize,
    /// Peak learning rate (warm-up, then cosine decay).
    pub learning_rate: f64,
    /// Seed of the composite stream.
    pub seed: u64,
    /// Evaluate on the validation set (and checkpoint the best) every this many steps.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement.
    pub patience: usize,
    /// Size of the held-out synthetic validation set.
    pub validation_size: usize,
    /// Start from these weights (fine-tuning or continuing a run) instead of a fresh network;
    /// their file's shape replaces the settings' network config.
    pub init_from: Option<PathBuf>,
    /// Where the network's passes run.
    pub device: ComputeDevice,
    /// Also save every evaluated checkpoint, not only the best, as `NET.stepN.safetensors`
    /// (for averaging or ensembling snapshots after the run).
    pub keep_checkpoints: bool,
    /// A time limit and a stop request that end the run early (with its checkpoints written).
    pub guard: Guard,
    /// Continue the run whose last checkpoint set is in `out` ([`crate::resume`]).
    pub resume: bool,
    /// The command line that started the run, kept with its checkpoints so that a resume can
    /// repeat it (empty when the run is not started from the command line).
    pub command: Vec<String>,
}

impl RunSettings {
    /// Into how many shards each batch is dealt ([`crate::parallel`]): one per worker thread on
    /// the CPU; one on a GPU, which parallelises inside each operation.
    pub fn shards(&self) -> usize {
        match self.device {
            ComputeDevice::Cpu => rayon::current_num_threads(),
            ComputeDevice::Gpu(_) => 1,
        }
    }

    /// Where `fit` keeps the run's last checkpoint set, and whether it starts from it.
    pub fn resume_settings(&self) -> Option<ResumeSettings> {
        Some(ResumeSettings {
            dir: ResumeDir::of_run(&self.out),
            from_saved: self.resume,
            command: self.command.clone(),
            cwd: std::env::current_dir().ok(),
        })
    }

    /// How `fit` runs this: its length, cadence and patience, with a per-step cosine schedule
    /// after `warmup` warm-up steps; progress counted in batches of `unit`.
    pub fn fit_settings(&self, warmup: usize, unit: &'static str) -> FitSettings {
        FitSettings {
            steps: self.steps,
            schedule: Schedule::per_step(self.learning_rate, warmup),
            eval_every: self.eval_every,
            patience: self.patience,
            weight_average: None,
            items_per_step: self.batch_size,
            unit,
            guard: self.guard.clone(),
            resume: self.resume_settings(),
        }
    }

    /// The run's devices: `(training, evaluation)` — the same device, with and without
    /// autodiff. The device's random generator (network initialisation) is seeded with the
    /// run's seed, so the same settings train the same network.
    pub fn devices(&self) -> Result<(Device, Device), TrainError> {
        let eval = self.device.device()?;
        eval.seed(self.seed);
        Ok((eval.clone().autodiff(), eval))
    }
}

/// Where a training run's tensors live: burn's CPU backend (flex), or a GPU through Vulkan when
/// shotgrade was built with the `vulkan` feature. The compositor always runs on the CPU's
/// worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeDevice {
    #[default]
    Cpu,
    /// The discrete GPU with this index, through Vulkan.
    Gpu(usize),
}

impl ComputeDevice {
    /// The burn device, or why this build cannot use it.
    pub fn device(self) -> Result<Device, TrainError> {
        match self {
            ComputeDevice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "vulkan")]
            ComputeDevice::Gpu(index) => probe_gpu(index),
            #[cfg(not(feature = "vulkan"))]
            ComputeDevice::Gpu(_) => Err(TrainError::Settings(
                "this shotgrade was built without GPU support: rebuild it with \
                 `cargo build --release -p shotgrade-cli --features vulkan`"
                    .into(),
            )),
        }
    }
}

/// The Vulkan device of discrete GPU `index`, after one tiny round trip through it: burn's wgpu
/// runtime panics (on a worker thread, then on ours) when no adapter exists, so the first use is
/// caught here and turned into an error that says what is missing.
#[cfg(feature = "vulkan")]
fn probe_gpu(index: usize) -> Result<Device, TrainError> {
    use burn::tensor::{DeviceKind, Tensor};
    let device = Device::vulkan(DeviceKind::DiscreteGpu(index));
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<1>::ones([1], &device).sum().into_scalar::<f32>()
    }));
    std::panic::set_hook(quiet);
    match probe {
        Ok(v) if (v - 1.0).abs() < 1e-6 => Ok(device),
        _ => Err(TrainError::Settings(format!(
            "no Vulkan GPU number {index} (discrete GPUs, counted from 0): check that the GPU \
             driver and its Vulkan loader (libvulkan1) are installed, or train with --device cpu"
        ))),
    }
}

impl std::str::FromStr for ComputeDevice {
    type Err = String;

    /// `cpu`, `gpu` (the first discrete GPU) or `gpu:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(ComputeDevice::Cpu),
            "gpu" => Ok(ComputeDevice::Gpu(0)),
            other => other
                .strip_prefix("gpu:")
                .and_then(|n| n.parse().ok())
                .map(ComputeDevice::Gpu)
                .ok_or_else(|| format!("unknown device `{s}`: expected cpu, gpu or gpu:N")),
        }
    }
}

impl std::fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComputeDevice::Cpu => f.write_str("cpu"),
            ComputeDevice::Gpu(i) => write!(f, "gpu:{i}"),
        }
    }
}

/// The best evaluation so far (higher key is better) and the early-stopping count.
pub struct BestTracker<M> {
    best: Option<(f32, usize, M)>,
    since_best: usize,
    patience: usize,
}

impl<M> BestTracker<M> {
    pub fn new(patience: usize) -> Self {
        BestTracker {
            best: None,
            since_best: 0,
            patience,
        }
    }

    /// Whether `key` beats the best so far.
    /// A NaN key (a diverged evaluation) is never better.
    pub fn is_better(&self, key: f32) -> bool {
        !key.is_nan() && self.best.as_ref().is_none_or(|(k, ..)| key > *k)
    }

    /// Records an evaluation (call after saving the checkpoint when [`is_better`](Self::is_better)).
    pub fn record(&mut self, key: f32, step: usize, metrics: M) {
        self.record_with(key, step, metrics, true);
    }

    /// Records an evaluation; one that `counts` as a scheduled evaluation advances early
    /// stopping when it is no better (an extra one, taken when a run stops off its cadence,
    /// may still become the best but never ends a run sooner).
    pub fn record_with(&mut self, key: f32, step: usize, metrics: M, counts: bool) {
        if self.is_better(key) {
            self.best = Some((key, step, metrics));
            self.since_best = 0;
        } else if counts {
            self.since_best += 1;
        }
    }

    /// True after `patience` evaluations in a row without improvement.
    pub fn should_stop(&self) -> bool {
        self.since_best >= self.patience
    }

    /// The best evaluation so far: key, step and metrics.
    pub fn best(&self) -> Option<(f32, usize, &M)> {
        self.best.as_ref().map(|(k, s, m)| (*k, *s, m))
    }

    /// Evaluations since the best one.
    pub fn since_best(&self) -> usize {
        self.since_best
    }

    /// Continues a tracker saved by a run (resuming it).
    pub fn restore(&mut self, best: Option<(f32, usize, M)>, since_best: usize) {
        self.best = best;
        self.since_best = since_best;
    }

    /// The best step and its metrics.
    pub fn into_best(self) -> Result<(usize, M), TrainError> {
        self.best.map(|(_, step, m)| (step, m)).ok_or_else(|| {
            TrainError::Settings("no evaluation ran: steps must be at least 1".into())
        })
    }
}

/// The network a run starts from: the weights of `run.init_from` with the config their file
/// records, or a fresh network built from `config`. The config is checked either way.
pub fn starting_net<N: Network>(
    run: &RunSettings,
    config: &N::Config,
    device: &Device,
) -> Result<(N, N::Config), TrainError> {
    let (net, config) = match &run.init_from {
        Some(path) => shotgrade_models::load_net::<N>(path, device)?,
        None => {
            N::check(config).map_err(TrainError::Settings)?;
            (N::build(config, device), config.clone())
        }
    };
    Ok((net, config))
}

/// Where a run writes its network: `<out>/<net>.safetensors` whenever an evaluation is the
/// best so far (and every evaluated one as `<net>.stepN.safetensors` with
/// [`RunSettings::keep_checkpoints`]), each with the run's provenance in its metadata.
pub struct CheckpointFiles {
    kind: shotgrade_models::NetKind,
    path: PathBuf,
    config_json: String,
    /// Provenance written into every checkpoint, besides the step.
    meta: Vec<(String, String)>,
    keep_all: bool,
}

impl CheckpointFiles {
    /// Creates the output folder; `extra` provenance is added to the run's seed, batch size
    /// and learning rate.
    pub fn new<N: Network>(
        run: &RunSettings,
        config: &N::Config,
        extra: &[(&str, String)],
    ) -> Result<Self, TrainError> {
        create_out_dir(&run.out)?;
        let mut meta = vec![
            ("shotgrade.train.seed".to_string(), run.seed.to_string()),
            (
                "shotgrade.train.batch_size".to_string(),
                run.batch_size.to_string(),
            ),
            (
                "shotgrade.train.learning_rate".to_string(),
                run.learning_rate.to_string(),
            ),
        ];
        meta.extend(
            extra
                .iter()
                .map(|(k, v)| (format!("shotgrade.train.{k}"), v.clone())),
        );
        Ok(CheckpointFiles {
            kind: N::KIND,
            path: run.out.join(N::KIND.file_name()),
            config_json: config.to_string(),
            meta,
            keep_all: run.keep_checkpoints,
        })
    }

    /// Writes `net` as evaluated after `step` steps: as the run's network when it is the `best`
    /// so far, and under its step when every checkpoint is kept.
    pub fn write<N: Network>(&self, net: &N, step: usize, best: bool) -> Result<(), TrainError> {
        let mut meta = self.meta.clone();
        meta.push(("shotgrade.train.step".to_string(), step.to_string()));
        if best {
            weights::save_net(net, self.kind, &self.config_json, true, &meta, &self.path)?;
        }
        if self.keep_all {
            let path = self.path.with_file_name(step_file_name(self.kind, step));
            weights::save_net(net, self.kind, &self.config_json, true, &meta, &path)?;
        }
        Ok(())
    }
}

/// File name of the checkpoint after `step` steps, kept with [`RunSettings::keep_checkpoints`].
pub fn step_file_name(kind: shotgrade_models::NetKind, step: usize) -> String {
    format!("{}.step{step}.safetensors", kind.name())
}

/// Creates the output folder.
pub fn create_out_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes a run's report as pretty JSON.
pub fn write_report<T: Serialize>(path: &Path, report: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(report).map_err(|e| TrainError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| TrainError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let lr = |s| learning_rate(s, 1000, 1.0, 100);
        assert!((lr(0) - 0.01).abs() < 1e-9);
        assert!((lr(99) - 1.0 * 0.5 * (1.0 + (std::f64::consts::PI * 0.099).cos())).abs() < 1e-9);
        assert!(lr(500) < lr(200) && lr(999) < lr(500));
        assert!(lr(999) >= 0.01 - 1e-12);
        assert!(
            (learning_rate(0, 10, 2.0, 0) - 2.0).abs() < 1e-9,
            "no warm-up"
        );
    }

    #[test]
    fn devices_parse_and_print() {
        for (text, device) in [
            ("cpu", ComputeDevice::Cpu),
            ("GPU", ComputeDevice::Gpu(0)),
            ("gpu:3", ComputeDevice::Gpu(3)),
        ] {
            assert_eq!(text.parse::<ComputeDevice>(), Ok(device));
        }
        assert_eq!(
            ComputeDevice::Gpu(2).to_string().parse(),
            Ok(ComputeDevice::Gpu(2))
        );
        for bad in ["", "tpu", "gpu:", "gpu:x", "gpu:-1"] {
            assert!(bad.parse::<ComputeDevice>().is_err(), "{bad}");
        }
        assert!(ComputeDevice::Cpu.device().is_ok());
        #[cfg(not(feature = "vulkan"))]
        assert!(
            ComputeDevice::Gpu(0)
                .device()
                .is_err_and(|e| e.to_string().contains("--features vulkan"))
        );
    }

    #[test]
    fn extra_evaluations_never_end_a_run_sooner_and_nan_is_never_best() {
        let mut t = BestTracker::new(1);
        t.record(0.5, 10, "a");
        t.record_with(0.4, 13, "b", false);
        assert!(
            !t.should_stop(),
            "an evaluation off the cadence does not count"
        );
        t.record_with(0.6, 17, "c", false);
        assert_eq!(t.best().map(|(_, step, _)| step), Some(17));
        assert!(!t.is_better(f32::NAN));
        assert!(!BestTracker::<()>::new(1).is_better(f32::NAN));
        t.record(0.1, 20, "d");
        assert!(t.should_stop());
    }

    #[test]
    fn tracker_keeps_best_and_stops_after_patience() {
        let mut t = BestTracker::new(2);
        t.record(0.5, 10, "a");
        assert!(t.is_better(0.6) && !t.is_better(0.5));
        t.record(0.4, 20, "b");
        assert!(!t.should_stop());
        t.record(0.45, 30, "c");
        assert!(t.should_stop());
        assert_eq!(t.into_best().expect("best"), (10, "a"));
        assert!(BestTracker::<()>::new(1).into_best().is_err());
    }
}
