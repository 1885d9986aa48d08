//! `shotgrade`: the command-line front end.

mod bench;
mod cli;
mod eval;
mod info;
mod output;
mod report;
mod score;
mod serve;
mod synth;
mod train;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

use cli::{Cli, Command};

/// Exit status when some inputs could not be scored.
pub const EXIT_SOME_FAILED: u8 = 2;
/// Exit status for usage, configuration and weights errors.
pub const EXIT_USAGE: u8 = 1;

fn main() -> ExitCode {
    // The matches are kept: `train --resume` needs to know which options were given.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            // Help and version go to stdout with status 0; real usage errors are status 1 (not
            // clap's 2, which means "some inputs failed" here).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Models(args) => info::models(args).map(|_| ExitCode::SUCCESS),
        Command::Config(args) => info::config(args).map(|_| ExitCode::SUCCESS),
        Command::Profiles(args) => info::profiles(args).map(|_| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args).map(|_| ExitCode::SUCCESS),
        Command::Report(args) => report::run(args).map(|_| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).map(|_| ExitCode::SUCCESS),
        Command::Synth(args) => synth::run(args).map(|_| ExitCode::SUCCESS),
        Command::Train(cmd) => train::run(cmd, &matches),
        Command::Eval(args) => eval::run(args).map(|_| ExitCode::SUCCESS),
        Command::MakeExamples { out } => info::make_examples(&out).map(|_| ExitCode::SUCCESS),
        Command::InitWeights { out } => info::init_weights(&out).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
