//! `shotgrade serve`: the HTTP scoring service.

use anyhow::{Context, Result};
use shotgrade::{Grader, GraderSettings};
use shotgrade_server::{BatchSettings, ServerSettings, serve, shutdown_signal};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{LogFormat, ServeArgs};

/// Logs go to stderr, as text or one JSON object per line; each request's lines carry its
/// span (id, method, path).
fn init_logging(format: LogFormat, filter: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid --log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

pub fn run(args: ServeArgs) -> Result<()> {
    if args.print_openapi {
        print!("{}", shotgrade_server::openapi::pretty());
        return Ok(());
    }
    anyhow::ensure!(args.max_batch > 0, "--max-batch must be at least 1");
    anyhow::ensure!(args.queue > 0, "--queue must be at least 1");
    anyhow::ensure!(
        args.request_timeout_s.is_finite() && args.request_timeout_s > 0.0,
        "--request-timeout-s must be a positive number of seconds"
    );
    init_logging(args.log_format, &args.log)?;
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
        request_timeout: Duration::from_secs_f64(args.request_timeout_s),
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
        tracing::info!(
            url = %format!("http://{}", listener.local_addr()?),
            weights = %grader.models().provenance.source,
            "listening"
        );
        serve(listener, grader, server, shutdown_signal())
            .await
            .context("server error")?;
        tracing::info!("stopped");
        Ok(())
    })
}
