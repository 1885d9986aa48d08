//! `shotgrade serve`: the HTTP scoring service.

use anyhow::{Context, Result};
use shotgrade::{Grader, GraderSettings};
use shotgrade_server::{BatchSettings, ServerSettings, serve, shutdown_signal};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> Result<()> {
    anyhow::ensure!(args.max_batch > 0, "--max-batch must be at least 1");
    anyhow::ensure!(args.queue > 0, "--queue must be at least 1");
    let settings = GraderSettings {
        scoring: crate::info::load_scoring_config(args.config.as_deref())?,
        batch_size: args.max_batch,
        profiles: crate::info::load_profiles(&args.profiles)?,
        ..GraderSettings::default()
    };
    let grader = Arc::new(Grader::new(
        crate::info::load_models(&args.weights)?,
        settings,
    )?);
    let server = ServerSettings {
        max_body_bytes: (args.max_body_mb * 1024.0 * 1024.0) as usize,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        batch: BatchSettings {
            queue_capacity: args.queue,
            max_batch: args.max_batch,
            max_wait: Duration::from_millis(args.max_wait_ms),
            workers: args.workers.max(1),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        eprintln!(
            "shotgrade serve: listening on http://{} (weights: {})",
            listener.local_addr()?,
            grader.models().provenance.source
        );
        serve(listener, grader, server, shutdown_signal())
            .await
            .context("server error")?;
        eprintln!("shotgrade serve: stopped");
        Ok(())
    })
}
