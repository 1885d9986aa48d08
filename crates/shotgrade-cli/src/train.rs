//! `shotgrade train`.

use anyhow::{Context, Result};
use shotgrade_train::{
    BackgroundTrainSettings, ExperienceTrainSettings, PositionTrainSettings, TwinLoss,
    train_background, train_experience, train_position,
};

use crate::cli::{TrainCommand, TwinLossArg};

fn threads(jobs: Option<usize>) -> Result<()> {
    if let Some(jobs) = jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    Ok(())
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    let mut log = |line: &str| eprintln!("{line}");
    let report = match cmd {
        TrainCommand::Background(a) => {
            threads(a.jobs)?;
            let settings = BackgroundTrainSettings {
                assets: a.assets,
                out: a.out,
                steps: a.steps,
                batch_size: a.batch_size,
                learning_rate: a.learning_rate,
                seed: a.seed,
                real_fraction: a.real_fraction,
                eval_every: a.eval_every,
                patience: a.patience,
                validation_size: a.validation_size,
                init_from: a.init_from,
                ..BackgroundTrainSettings::default()
            };
            serde_json::to_string_pretty(&train_background(&settings, &mut log)?)?
        }
        TrainCommand::Position(a) => {
            threads(a.jobs)?;
            let settings = PositionTrainSettings {
                assets: a.assets,
                out: a.out,
                steps: a.steps,
                batch_size: a.batch_size,
                learning_rate: a.learning_rate,
                seed: a.seed,
                eval_every: a.eval_every,
                patience: a.patience,
                validation_size: a.validation_size,
                init_from: a.init_from,
                ..PositionTrainSettings::default()
            };
            serde_json::to_string_pretty(&train_position(&settings, &mut log)?)?
        }
        TrainCommand::Experience(a) => {
            threads(a.jobs)?;
            let settings = ExperienceTrainSettings {
                assets: a.assets,
                out: a.out,
                steps: a.steps,
                batch_size: a.batch_size,
                learning_rate: a.learning_rate,
                seed: a.seed,
                twin_loss: match a.twin_loss {
                    TwinLossArg::Seed => TwinLoss::Seed,
                    TwinLossArg::SeedSum => TwinLoss::SeedSum,
                    TwinLossArg::Ranked => TwinLoss::Ranked,
                    TwinLossArg::None => TwinLoss::None,
                },
                eval_every: a.eval_every,
                patience: a.patience,
                validation_size: a.validation_size,
                init_from: a.init_from,
                ..ExperienceTrainSettings::default()
            };
            serde_json::to_string_pretty(&train_experience(&settings, &mut log)?)?
        }
    };
    println!("{report}");
    Ok(())
}
