//! `membersync daemon`: apply every interval with the same guards as `apply` (a refused cycle
//! is reported, never forced), re-reading the files each cycle, and serving health and metrics.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::cli::{DaemonArgs, GlobalArgs, OutputFormat};
use crate::daemon::{self, Health};

use super::apply::{ApplyOptions, Totals, apply_files, exit_code, finish};
use super::{CommandError, CommandResult, Exit, Outcome};

pub async fn run(global: &GlobalArgs, args: &DaemonArgs) -> CommandResult {
    super::report_structured();
    let health = Arc::new(Health::default());
    health.set_ready(false);
    let address = daemon::serve(args.listen, health.clone())
        .await
        .map_err(|error| {
            CommandError::failure(format!("cannot listen on {}: {error}", args.listen))
        })?;
    tracing::info!(%address, interval = ?args.interval, "daemon started: /healthz, /readyz, /metrics");
    let (shutdown, signal) = daemon::shutdown_on_signal();
    let options = ApplyOptions {
        output: OutputFormat::Text,
        max_deletes: args.max_deletes,
        force: false,
        show_plan: false,
        quiet: true,
    };
    daemon::run_loop(args.interval, signal, || {
        let span = tracing::info_span!("cycle", cycle_id = %super::new_run_id());
        let shutdown = shutdown.clone();
        let health = health.clone();
        async move {
            let started = Instant::now();
            let mut totals = Totals::default();
            let result =
                apply_files(global, &args.files, options, Some(shutdown), &mut totals).await;
            let exit = exit_code(&result);
            if let Err(error) = &result {
                super::report(error);
            }
            match exit {
                // The files did not parse: the cycle is skipped; readiness is unchanged.
                Exit::Invalid => {
                    tracing::error!(
                        "invalid input (see above); this cycle is skipped, nothing was written"
                    )
                }
                _ => health.set_ready(totals.reached_clerk),
            }
            finish("daemon", exit, started, &totals);
        }
        .instrument(span)
    })
    .await;
    tracing::info!("daemon stopped");
    Ok(Outcome::Done)
}
