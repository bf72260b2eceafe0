//! One function per command: each takes its parsed arguments, does the work, prints the
//! result on stdout, and says which exit status the process ends with.

mod apply;
mod daemon;
mod demo;
mod export;
mod plan;
mod prepare;
mod simulate;
mod validate;

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Instrument;

use crate::cli::{Cli, Command};
use crate::desired::OrgRef;

/// How the process ends (CONTRACT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// In sync, or every change applied.
    Success = 0,
    /// Auth, network or API errors, or an operation that failed.
    Failure = 1,
    /// Invalid files or command line; no request was sent.
    Invalid = 2,
    /// Refused by a safety limit; no write request was sent.
    Refused = 3,
    /// `--detailed-exitcode` and the plan is not empty.
    Changes = 4,
}

impl Exit {
    /// The `result` label of metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure",
            Exit::Invalid => "invalid",
            Exit::Refused => "refused",
            Exit::Changes => "changes",
        }
    }
}

/// Runs the command the user asked for, in a span carrying a run ID (on every log line).
pub async fn run(cli: Cli) -> Exit {
    let span = tracing::info_span!("run", run_id = %new_run_id());
    dispatch(cli).instrument(span).await
}

/// A short random ID that tells one run's log lines from another's.
pub fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn dispatch(cli: Cli) -> Exit {
    match cli.command {
        Command::Validate(files) => validate::run(&files),
        Command::Plan(command) => plan::run(&cli.global, &command).await,
        Command::Apply(args) => apply::run(&cli.global, &args).await,
        Command::Export(args) => export::run(&cli.global, &args).await,
        Command::Simulate(args) => simulate::run(&cli.global, &args).await,
        Command::Demo(args) => demo::run(&cli.global, &args).await,
        Command::Daemon(args) => daemon::run(&cli.global, &args).await,
    }
}

/// Says which organizations of the file do not exist.
fn report_missing(missing: &[OrgRef]) {
    for missing in missing {
        report_error(format_args!(
            "organization `{missing}` does not exist in this Clerk instance; nothing is planned for it"
        ));
    }
}

/// Reports the organizations whose memberships could not be read consistently (the run then
/// ends with exit 1); says whether there were any.
fn report_unsettled(plan: &crate::plan::Plan) -> bool {
    let unsettled: Vec<&str> = plan
        .unsettled()
        .map(|organization| organization.organization_id.as_str())
        .collect();
    if !unsettled.is_empty() {
        report_error(format_args!(
            "the memberships of {} organization(s) kept changing while they were read ({}); no deletion or demotion was planned in them, and the next run will plan them",
            unsettled.len(),
            unsettled.join(", ")
        ));
    }
    !unsettled.is_empty()
}

/// Set by the daemon: problems go to the log (one structured line each) instead of plain
/// `error:` lines on stderr, so that JSON logs stay one JSON object per line.
static STRUCTURED: AtomicBool = AtomicBool::new(false);

fn report_structured() {
    STRUCTURED.store(true, Ordering::SeqCst);
}

/// Reports a problem: `error: …` on stderr, or an error log line in the daemon.
fn report_error(message: std::fmt::Arguments<'_>) {
    if STRUCTURED.load(Ordering::SeqCst) {
        tracing::error!("{message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// Reports something worth knowing that is not an error.
fn report_warning(message: std::fmt::Arguments<'_>) {
    if STRUCTURED.load(Ordering::SeqCst) {
        tracing::warn!("{message}");
    } else {
        eprintln!("warning: {message}");
    }
}
