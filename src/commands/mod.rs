//! One function per command: each takes its parsed arguments, does the work, prints its output on
//! stdout, and returns how it finished (`Finished`) or a `CommandError`, which
//! [`run`](crate::commands::run) reports once.

mod apply;
mod daemon;
#[cfg(feature = "simulator")]
mod demo;
mod execute;
mod export;
mod interrupt;
mod plan;
mod prepare;
mod saved;
#[cfg(feature = "simulator")]
mod simulate;
mod validate;

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Instrument;

use crate::cli::{Cli, Command};
use crate::desired::OrgRef;

/// How the process ends (docs/file-format.md: "Exit codes").
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
    /// How a command's result ends the process.
    pub(crate) fn of(result: &CommandResult) -> Exit {
        match result {
            Ok(finished) => (*finished).into(),
            Err(error) => error.exit,
        }
    }

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

/// What a command that finished says about its result, once its output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// In sync, or every change applied.
    Done,
    /// `--detailed-exitcode` and the plan is not empty.
    Changes,
    /// Some changes failed or were skipped; the report on stdout lists them.
    ChangesFailed,
}

impl From<Finished> for Exit {
    fn from(finished: Finished) -> Exit {
        match finished {
            Finished::Done => Exit::Success,
            Finished::Changes => Exit::Changes,
            Finished::ChangesFailed => Exit::Failure,
        }
    }
}

/// Why a command did not succeed: what to tell the user, and how the process ends. It is
/// printed in one place, [`report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandError {
    pub exit: Exit,
    /// Each printed as `error: …` (or logged as an error in the daemon).
    pub errors: Vec<String>,
    /// A last line, printed as it is (`2 errors found; nothing was sent`).
    pub summary: Option<String>,
}

impl CommandError {
    pub fn new(exit: Exit, error: impl Into<String>) -> CommandError {
        CommandError {
            exit,
            errors: vec![error.into()],
            summary: None,
        }
    }

    /// Invalid files or command line (exit 2).
    pub fn invalid(error: impl Into<String>) -> CommandError {
        CommandError::new(Exit::Invalid, error)
    }

    /// An operational failure (exit 1).
    pub fn failure(error: impl Into<String>) -> CommandError {
        CommandError::new(Exit::Failure, error)
    }

    /// Invalid desired state: one line per diagnostic, then how many.
    pub fn diagnostics(diagnostics: &[crate::desired::Diagnostic], nothing: &str) -> CommandError {
        let count = diagnostics.len();
        CommandError {
            exit: Exit::Invalid,
            errors: diagnostics.iter().map(ToString::to_string).collect(),
            summary: Some(format!(
                "{count} {} found; nothing was {nothing}",
                validate::plural(count, "error", "errors")
            )),
        }
    }

    /// Adds the problems of `other`; the process ends with the more serious exit.
    pub fn and(mut self, other: CommandError) -> CommandError {
        if other.exit as u8 > self.exit as u8 {
            self.exit = other.exit;
        }
        self.errors.extend(other.errors);
        self.summary = self.summary.or(other.summary);
        self
    }
}

impl From<crate::sync::SyncError> for CommandError {
    fn from(error: crate::sync::SyncError) -> CommandError {
        match error {
            crate::sync::SyncError::Invalid(diagnostics) => {
                CommandError::diagnostics(&diagnostics, "written")
            }
            crate::sync::SyncError::Clerk(error) => CommandError::failure(error.to_string()),
            crate::sync::SyncError::NotManaged(error) => CommandError::failure(error),
        }
    }
}

impl From<crate::clerk::ClerkError> for CommandError {
    fn from(error: crate::clerk::ClerkError) -> CommandError {
        CommandError::failure(error.to_string())
    }
}

/// What a command returns.
pub(crate) type CommandResult = Result<Finished, CommandError>;

/// Runs the command the user asked for, in a span carrying a run ID (on every log line),
/// reports an error, and says how the process ends.
pub async fn run(cli: Cli) -> Exit {
    // With JSON logs, stderr stays one JSON object per line: errors are log lines too.
    if cli.global.log_format == crate::telemetry::LogFormat::Json {
        report_structured();
    }
    let span = tracing::info_span!("run", run_id = %new_run_id());
    let result = dispatch(cli).instrument(span).await;
    if let Err(error) = &result {
        report(error);
    }
    Exit::of(&result)
}

/// A short random ID that tells one run's log lines from another's.
pub(crate) fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn dispatch(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Validate(files) => validate::run(&files),
        Command::Plan(command) => plan::run(&command).await,
        Command::Apply(args) => apply::run(&args).await,
        Command::Export(args) => export::run(&args).await,
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => simulate::run(&args).await,
        #[cfg(feature = "simulator")]
        Command::Demo(args) => demo::run(&args).await,
        Command::Daemon(args) => daemon::run(&args).await,
        Command::Schema => {
            print!("{}", crate::desired::json_schema());
            Ok(Finished::Done)
        }
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "membersync",
                &mut std::io::stdout(),
            );
            Ok(Finished::Done)
        }
    }
}

/// The organizations of the file that do not exist, as errors (the run ends with exit 1).
fn missing_error(missing: &[OrgRef]) -> Option<CommandError> {
    let errors: Vec<String> = missing
        .iter()
        .map(|missing| {
            format!(
                "organization `{missing}` does not exist in this Clerk instance; nothing is planned for it"
            )
        })
        .collect();
    (!errors.is_empty()).then_some(CommandError {
        exit: Exit::Failure,
        errors,
        summary: None,
    })
}

/// The organizations whose memberships could not be read consistently, as an error (the run
/// then ends with exit 1).
fn unsettled_error(plan: &crate::plan::Plan) -> Option<CommandError> {
    let unsettled: Vec<&str> = plan
        .unsettled()
        .map(|organization| organization.organization_id.as_str())
        .collect();
    (!unsettled.is_empty()).then(|| {
        CommandError::failure(format!(
            "the memberships of {} organization(s) kept changing while they were read ({}); no deletion or demotion was planned in them, and the next run will plan them",
            unsettled.len(),
            unsettled.join(", ")
        ))
    })
}

/// Exit 1 when a directory group was unavailable this run (what it could decide was kept).
fn unavailable_error(planned: &crate::sync::Planned) -> Option<CommandError> {
    let errors: Vec<String> = planned
        .unavailable_groups
        .iter()
        .map(|(group, why)| match why {
            crate::desired::Unavailable::Unreadable(why) => format!(
                "directory group {group} could not be read ({why}); no one was removed or demoted because of it this run"
            ),
            crate::desired::Unavailable::Empty => format!(
                "directory group {group} came back empty, and its entry does not say `allow_empty: true`; no one was removed or demoted because of it this run"
            ),
        })
        .collect();
    (!errors.is_empty()).then_some(CommandError {
        exit: Exit::Failure,
        errors,
        summary: None,
    })
}

/// Joins the errors found after a command's output was printed: none is `Ok(finished)`.
fn finish_with(
    finished: Finished,
    errors: impl IntoIterator<Item = Option<CommandError>>,
) -> CommandResult {
    match errors.into_iter().flatten().reduce(CommandError::and) {
        Some(error) => Err(error),
        None => Ok(finished),
    }
}

/// Set by the daemon and by `--log-format json`: problems go to the log (one structured line
/// each, with the exit code) instead of plain `error:` lines on stderr, so that JSON logs stay
/// one JSON object per line.
static STRUCTURED: AtomicBool = AtomicBool::new(false);

fn report_structured() {
    STRUCTURED.store(true, Ordering::SeqCst);
}

/// Reports a command's error: `error: …` lines on stderr, or error log lines in the daemon.
/// The only place errors are printed.
pub(crate) fn report(error: &CommandError) {
    let structured = STRUCTURED.load(Ordering::SeqCst);
    let exit_code = error.exit as u8;
    for line in &error.errors {
        if structured {
            tracing::error!(exit_code, "{line}");
        } else {
            eprintln!("error: {line}");
        }
    }
    if let Some(summary) = &error.summary {
        if structured {
            tracing::error!(exit_code, "{summary}");
        } else {
            eprintln!("{summary}");
        }
    }
}

/// Tells the user something on stderr that is neither a log line nor an error (`Saved the
/// plan to …`): a plain line, or an info log line with JSON logs.
fn report_info(message: std::fmt::Arguments<'_>) {
    if STRUCTURED.load(Ordering::SeqCst) {
        tracing::info!("{message}");
    } else {
        eprintln!("{message}");
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
