//! `shotgrade train`.

use anyhow::{Context, Result, bail, ensure};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser};
use shotgrade::models::BackgroundNetConfig;
use shotgrade::models::TreeSettings;
use shotgrade_synth::ComposeSettings;
use shotgrade_train::backdrop::StageKind;
use shotgrade_train::ensemble::write_background_ensemble;
use shotgrade_train::resume::ResumeDir;
use shotgrade_train::schedule::TimeLimit;
use shotgrade_train::{
    BackdropTrainSettings, BackgroundTrainSettings, ExperienceTrainSettings, Guard,
    PositionTrainSettings, RunSettings, TwinLoss, train_backdrop, train_background,
    train_experience, train_position,
};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cli::{Cli, Command, StageArg, TrainCommand, TrainCommon, TwinLossArg};

/// The options a resumed run may be given anew; every other one comes from the command line
/// that started the run.
const RUN_ONLY: [&str; 3] = ["resume", "time_limit", "jobs"];

/// How a training command runs besides its options: when it started, what stops it, and the
/// command line its checkpoints keep.
struct Launch {
    started: Instant,
    stop: Arc<AtomicUsize>,
    command: Vec<String>,
}

impl Launch {
    fn guard(&self, limit: Option<Duration>) -> Guard {
        Guard {
            limit: limit.map(|limit| TimeLimit {
                started: self.started,
                limit,
            }),
            stop: Some(self.stop.clone()),
        }
    }
}

/// Asks a running `fit` to stop on SIGINT or SIGTERM (it writes its last checkpoint, then
/// evaluates if time allows; the command exits 130 or 143); a second signal ends the process
/// at once with that status.
fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicUsize::new(0));
    let signalled = Arc::new(AtomicBool::new(false));
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, status, signalled.clone())
            .context("cannot install the signal handlers")?;
        signal_hook::flag::register(signal, signalled.clone())
            .context("cannot install the signal handlers")?;
        signal_hook::flag::register_usize(signal, stop.clone(), status as usize)
            .context("cannot install the signal handlers")?;
    }
    Ok(stop)
}

/// Splits a `train …` command line into the run's own options and the run-only ones
/// ([`RUN_ONLY`]: `--resume DIR`, `--time-limit D`, `--jobs N` / `-j N`, with or without `=`).
fn split_run_only(args: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut own, mut run_only) = (Vec::new(), Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let takes_value = ["--resume", "--time-limit", "--jobs", "-j"].contains(&arg.as_str());
        let joined = ["--resume=", "--time-limit=", "--jobs="]
            .iter()
            .any(|p| arg.starts_with(p))
            || (arg.starts_with("-j") && arg.len() > 2 && !arg.starts_with("--"));
        if takes_value {
            run_only.push(arg.clone());
            run_only.extend(args.next().cloned());
        } else if joined {
            run_only.push(arg.clone());
        } else {
            own.push(arg.clone());
        }
    }
    (own, run_only)
}

/// The command and the command line of a resumed run: the one saved with its checkpoints, with
/// this invocation's run-only options.
fn resumed(dir: &Path, name: &str, given: &ArgMatches) -> Result<(TrainCommand, Vec<String>)> {
    let definition = Cli::command();
    let options = definition
        .find_subcommand("train")
        .and_then(|t| t.find_subcommand(name))
        .context("no such training command")?;
    let changed: Vec<String> = options
        .get_arguments()
        .filter(|arg| !RUN_ONLY.contains(&arg.get_id().as_str()))
        .filter(|arg| given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|arg| match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => arg.get_id().to_string(),
        })
        .collect();
    ensure!(
        changed.is_empty(),
        "--resume continues a run with the options it was started with; only --time-limit and \
         --jobs may be given with it, not {}",
        changed.join(", ")
    );
    let saved = ResumeDir::of_run(dir).latest()?;
    let command = saved.state.command;
    // The run's relative paths (--assets, --real-labels, --init-from) mean what they meant
    // where it started: continue from there.
    if let Some(cwd) = &saved.state.cwd {
        std::env::set_current_dir(cwd).with_context(|| {
            format!(
                "the run was started in {}, which is gone: its relative paths cannot be resolved",
                cwd.display()
            )
        })?;
    }
    let saved_name = command.get(1).map_or("?", String::as_str);
    if command.first().map(String::as_str) != Some("train") {
        bail!(
            "{} holds a run that was not started by `shotgrade train`: nothing to resume",
            dir.display()
        );
    }
    if saved_name != name {
        bail!(
            "{} holds a `train {saved_name}` run: resume it with `shotgrade train {saved_name} \
             --resume {}`",
            dir.display(),
            dir.display()
        );
    }
    let now: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (_, run_only) = split_run_only(&now);
    let mut argv = vec!["shotgrade".to_string()];
    argv.extend(command.iter().cloned());
    // This invocation's --time-limit and --jobs; --resume as the absolute folder.
    let mut run_only = run_only.into_iter();
    while let Some(arg) = run_only.next() {
        if arg == "--resume" {
            run_only.next();
        } else if !arg.starts_with("--resume=") {
            argv.push(arg);
        }
    }
    argv.push("--resume".into());
    argv.push(dir.to_string_lossy().into_owned());
    let cli = Cli::try_parse_from(&argv).with_context(|| {
        format!(
            "the run's own command line no longer parses: {}",
            command.join(" ")
        )
    })?;
    let Command::Train(cmd) = cli.command else {
        bail!("the run's own command line is not a training command");
    };
    Ok((cmd, command))
}

impl TrainCommand {
    /// The options every fit-based trainer shares.
    fn common(&self) -> Option<&TrainCommon> {
        match self {
            TrainCommand::Background(a) => Some(&a.common),
            TrainCommand::Position(a) => Some(&a.common),
            TrainCommand::Experience(a) => Some(&a.common),
            TrainCommand::Backdrop(_)
            | TrainCommand::Ensemble(_)
            | TrainCommand::Trunk(_)
            | TrainCommand::BackgroundTrunk(_) => None,
        }
    }
}

/// Starts `jobs` worker threads (default: one per core).
fn start_workers(jobs: Option<usize>) -> Result<()> {
    if let Some(jobs) = jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    Ok(())
}

impl TrainCommon {
    /// Starts the worker threads and overrides the network's default run settings with the
    /// options given.
    fn apply(self, run: &mut RunSettings, launch: &Launch) -> Result<()> {
        start_workers(self.jobs)?;
        run.guard = launch.guard(self.time_limit);
        run.command = launch.command.clone();
        run.resume = self.resume.is_some();
        run.assets = self.assets;
        run.seed = self.seed;
        run.init_from = self.init_from;
        run.device = self.device;
        run.keep_checkpoints = self.keep_checkpoints;
        // A resumed run writes where it is resumed from, wherever it started.
        if let Some(v) = self.resume.or(self.out) {
            run.out = v;
        }
        if let Some(v) = self.steps {
            run.steps = v;
        }
        if let Some(v) = self.batch_size {
            run.batch_size = v;
        }
        if let Some(v) = self.learning_rate {
            run.learning_rate = v;
        }
        if let Some(v) = self.eval_every {
            run.eval_every = v;
        }
        if let Some(v) = self.patience {
            run.patience = v;
        }
        if let Some(v) = self.validation_size {
            run.validation_size = v;
        }
        Ok(())
    }
}

/// Runs a training command. A run stopped by a signal ends with that signal's status (130 or
/// 143), also when it stopped before its first step (an error then says so).
pub fn run(cmd: TrainCommand, matches: &ArgMatches) -> Result<ExitCode> {
    let stop = stop_on_signals()?;
    match run_with(cmd, matches, stop.clone()) {
        Err(e) if stop.load(Ordering::SeqCst) != 0 => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(
                u8::try_from(stop.load(Ordering::SeqCst)).unwrap_or(1),
            ))
        }
        other => other,
    }
}

fn run_with(cmd: TrainCommand, matches: &ArgMatches, stop: Arc<AtomicUsize>) -> Result<ExitCode> {
    let started = Instant::now();
    let (name, given) = matches
        .subcommand_matches("train")
        .and_then(ArgMatches::subcommand)
        .context("no training command given")?;
    let (cmd, command) = match cmd.common().and_then(|c| c.resume.clone()) {
        Some(dir) => {
            // Absolute before `resumed` moves to the run's own folder.
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            resumed(&dir, name, given)?
        }
        None => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            (cmd, split_run_only(&args).0)
        }
    };
    let launch = Launch {
        started,
        stop,
        command,
    };
    let mut log = |line: &str| eprintln!("{line}");
    let report = match cmd {
        TrainCommand::Background(a) => {
            let defaults = BackgroundTrainSettings::default();
            let (reuse, reuse_pool) = a.reuse.settings(defaults.reuse_pool)?;
            let mut settings = BackgroundTrainSettings {
                real_fraction: a.real_fraction,
                real_labels: a.real_labels.clone(),
                replay_fraction: a.replay_fraction,
                reuse,
                reuse_pool,
                weight_average: a.weight_average,
                input_size: a.input_size.map(usize::from),
                compose: ComposeSettings {
                    max_side: a.max_side,
                    boundary_share: a.boundary_share,
                    ..defaults.compose
                },
                config: BackgroundNetConfig {
                    median_colours: a.median_colours.then_some(true),
                    colour_spread: a.colour_spread.then_some(true),
                    colour_features: a.colour_features.map(usize::from),
                    stage_channels: match &a.stage_channels {
                        Some(c) => <[u16; 4]>::try_from(c.as_slice())
                            .context("--stage-channels takes four numbers")?
                            .map(usize::from),
                        None => defaults.config.stage_channels,
                    },
                    ..defaults.config.clone()
                },
                ..defaults
            };
            a.common.apply(&mut settings.run, &launch)?;
            serde_json::to_string_pretty(&train_background(&settings, &mut log)?)?
        }
        TrainCommand::Position(a) => {
            let mut settings = PositionTrainSettings::default();
            if let Some(side) = a.input_size {
                settings.config.input_size = usize::from(side);
            }
            if let Some(c) = &a.channels {
                settings.config.channels = <[u16; 5]>::try_from(c.as_slice())
                    .context("--channels takes five numbers")?
                    .map(usize::from);
            }
            if let Some(u) = &a.csp1_units {
                settings.config.csp1_units = <[u16; 3]>::try_from(u.as_slice())
                    .context("--csp1-units takes three numbers")?
                    .map(usize::from);
            }
            settings.config.validate().map_err(|e| anyhow::anyhow!(e))?;
            anyhow::ensure!(
                (0.0..=1.0).contains(&a.real_fraction),
                "--real-fraction must be in [0, 1], got {}",
                a.real_fraction
            );
            settings.real_labels = a.real_labels.clone();
            settings.real_fraction = a.real_fraction;
            a.common.apply(&mut settings.run, &launch)?;
            serde_json::to_string_pretty(&train_position(&settings, &mut log)?)?
        }
        TrainCommand::Experience(a) => {
            let twin_loss = match a.twin_loss {
                TwinLossArg::Seed => TwinLoss::Seed,
                TwinLossArg::SeedSum => TwinLoss::SeedSum,
                TwinLossArg::Ranked => TwinLoss::Ranked,
                TwinLossArg::None => TwinLoss::None,
            };
            let defaults = ExperienceTrainSettings::default();
            let (reuse, reuse_pool) = a.reuse.settings(defaults.reuse_pool)?;
            let mut settings = ExperienceTrainSettings {
                twin_loss,
                // The twin variants need composite labels for both copies: no real pairs.
                real_fraction: a.real_fraction.unwrap_or(if twin_loss == TwinLoss::None {
                    defaults.real_fraction
                } else {
                    0.0
                }),
                large_share: a.large_share,
                ladder_photos: a.ladder_photos,
                low_jpeg_share: a.low_jpeg_share,
                mild_share: a.mild_share,
                reuse,
                reuse_pool,
                ..defaults
            };
            a.common.apply(&mut settings.run, &launch)?;
            serde_json::to_string_pretty(&train_experience(&settings, &mut log)?)?
        }
        TrainCommand::Backdrop(a) => {
            start_workers(a.jobs)?;
            let settings = BackdropTrainSettings {
                assets: a.assets,
                network: a.network,
                out: a.out,
                composites: a.composites,
                validation_composites: a.validation_composites,
                stage: match a.stage {
                    StageArg::Trees => StageKind::Trees,
                    StageArg::Mlp => StageKind::Mlp,
                },
                trees: TreeSettings {
                    trees: a.trees,
                    ..TreeSettings::default()
                },
                width: a.width,
                epochs: a.epochs,
                learning_rate: a.learning_rate,
                seed: a.seed,
                guard: launch.guard(a.time_limit),
                ..BackdropTrainSettings::default()
            };
            serde_json::to_string_pretty(&train_backdrop(&settings, &mut log)?)?
        }
        TrainCommand::Trunk(a) => serde_json::to_string_pretty(&trunk(&a, &mut log)?)?,
        TrainCommand::BackgroundTrunk(a) => {
            use shotgrade_train::trunk_head::{TrunkBackgroundSettings, train_trunk_background};
            let mut settings = TrunkBackgroundSettings {
                trunk_weights: Default::default(),
                labels: a.real_labels,
                assets: a.assets,
                out: a.out,
                size: a.size,
                l2: a.l2,
                mirror: a.mirror,
                composites: a.composites,
                composite_weight: a.composite_weight,
                people: a.people,
                tune_steps: a.fine_tune_steps,
                tune_learning_rate: a.fine_tune_lr,
                guard: launch.guard(a.time_limit),
            };
            // Settings are checked before anything is fetched.
            settings.config()?;
            settings.trunk_weights =
                shotgrade_train::trunk::fetch_weights(&trunk_cache(a.cache.as_ref())?, &mut log)?;
            serde_json::to_string_pretty(&train_trunk_background(&settings, &mut log)?)?
        }
        TrainCommand::Ensemble(a) => serde_json::to_string_pretty(
            &write_background_ensemble(&a.snapshots, &a.out)
                .with_context(|| format!("cannot write the ensemble into {}", a.out.display()))?,
        )?,
    };
    println!("{report}");
    // A run stopped by a signal ends with that signal's status (130 or 143).
    Ok(match launch.stop.load(Ordering::SeqCst) {
        0 => ExitCode::SUCCESS,
        status => ExitCode::from(u8::try_from(status).unwrap_or(1)),
    })
}

/// Where the trunk's weights are cached: `cache`, or `~/.cache/shotgrade/efficientnet`.
fn trunk_cache(cache: Option<&std::path::PathBuf>) -> Result<std::path::PathBuf> {
    Ok(match cache {
        Some(c) => c.clone(),
        None => Path::new(&std::env::var_os("HOME").context("no HOME: give --cache")?)
            .join(".cache/shotgrade/efficientnet"),
    })
}

/// `train trunk`: fetch and check the pretrained trunk; the top-5 results as the report.
fn trunk(a: &crate::cli::TrainTrunkArgs, log: &mut dyn FnMut(&str)) -> Result<serde_json::Value> {
    use shotgrade_train::trunk::{fetch_weights, load_imagenet_trunk, top5_check};
    let pth = fetch_weights(&trunk_cache(a.cache.as_ref())?, log)?;
    log(&format!("weights: {} (SHA-256 checked)", pth.display()));
    let device = shotgrade::models::Device::flex();
    let net = load_imagenet_trunk(&pth, &device)?;
    if !a.assets.join("real").is_dir() {
        log(&format!(
            "no photos in {}: top-5 check skipped",
            a.assets.join("real").display()
        ));
        return Ok(serde_json::json!({ "weights": pth, "top5": null }));
    }
    let results = top5_check(&net, &a.top5_list, &a.assets, &device)?;
    for r in &results {
        let got: Vec<String> = r
            .top5
            .iter()
            .map(|(i, p)| format!("{i} ({p:.2})"))
            .collect();
        log(&format!(
            "{} {:<60} expected {} {}: {}",
            if r.hit { "hit " } else { "MISS" },
            r.path,
            r.expected,
            r.expected_name,
            got.join(", ")
        ));
    }
    let hits = results.iter().filter(|r| r.hit).count();
    log(&format!(
        "expected class in the top 5: {hits} of {}",
        results.len()
    ));
    Ok(
        serde_json::json!({ "weights": pth, "hits": hits, "photos": results.len(), "top5": results }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn run_only_options_are_split_off_in_every_spelling() {
        let (own, run_only) = split_run_only(&strings(
            "train position --steps 30 --time-limit 25m -j 2 --resume runs/a --seed 3 \
             --jobs=1 -j2 --time-limit=1h --input-size 128",
        ));
        assert_eq!(
            own,
            strings("train position --steps 30 --seed 3 --input-size 128")
        );
        assert_eq!(
            run_only,
            strings("--time-limit 25m -j 2 --resume runs/a --jobs=1 -j2 --time-limit=1h")
        );
    }
}
