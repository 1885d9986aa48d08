//! `shotgrade train`.

use anyhow::{Context, Result};
use shotgrade::models::BackgroundNetConfig;
use shotgrade::models::TreeSettings;
use shotgrade_synth::ComposeSettings;
use shotgrade_train::backdrop::StageKind;
use shotgrade_train::ensemble::write_background_ensemble;
use shotgrade_train::{
    BackdropTrainSettings, BackgroundTrainSettings, ExperienceTrainSettings, PositionTrainSettings,
    RunSettings, TwinLoss, train_backdrop, train_background, train_experience, train_position,
};

use crate::cli::{StageArg, TrainCommand, TrainCommon, TwinLossArg};

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
    fn apply(self, run: &mut RunSettings) -> Result<()> {
        start_workers(self.jobs)?;
        run.assets = self.assets;
        run.seed = self.seed;
        run.init_from = self.init_from;
        run.device = self.device;
        run.keep_checkpoints = self.keep_checkpoints;
        if let Some(v) = self.out {
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

pub fn run(cmd: TrainCommand) -> Result<()> {
    let mut log = |line: &str| eprintln!("{line}");
    let report = match cmd {
        TrainCommand::Background(a) => {
            let defaults = BackgroundTrainSettings::default();
            let (reuse, reuse_pool) = a.reuse.settings(defaults.reuse_pool)?;
            let mut settings = BackgroundTrainSettings {
                real_fraction: a.real_fraction,
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
            a.common.apply(&mut settings.run)?;
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
            a.common.apply(&mut settings.run)?;
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
            a.common.apply(&mut settings.run)?;
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
                ..BackdropTrainSettings::default()
            };
            serde_json::to_string_pretty(&train_backdrop(&settings, &mut log)?)?
        }
        TrainCommand::Ensemble(a) => serde_json::to_string_pretty(
            &write_background_ensemble(&a.snapshots, &a.out)
                .with_context(|| format!("cannot write the ensemble into {}", a.out.display()))?,
        )?,
    };
    println!("{report}");
    Ok(())
}
