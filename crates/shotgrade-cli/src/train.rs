//! `shotgrade train`.

use anyhow::{Context, Result};
use shotgrade_train::{
    BackgroundTrainSettings, PositionTrainSettings, train_background, train_position,
};

use crate::cli::TrainCommand;

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Background(a) => {
            if let Some(jobs) = a.jobs {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(jobs.max(1))
                    .build_global()
                    .context("cannot start the worker threads")?;
            }
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
                ..BackgroundTrainSettings::default()
            };
            let report = train_background(&settings, &mut |line| eprintln!("{line}"))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
