//! Running a plan, for `apply`, `apply --plan`, the daemon and the demo: the safety limits,
//! the run with its progress bar, the report in the asked format, and the run's totals in
//! the metrics and its `run finished` line.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use crate::apply::{Outcome, Report};
use crate::clerk::{Client, StatsSnapshot};
use crate::cli::{ApplyArgs, OutputFormat};
use crate::plan::{
    self, AnyChange, ChangeOutcome, Format, MaxDeletes, OutcomeKind, Plan, Private, Resource, Stage,
};
use crate::sync::{Applied, Limits, guard_and_apply};

use super::{CommandError, CommandResult, Exit, Finished};

/// What one apply run did: the summary log line and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub planned: usize,
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
    pub rejected: usize,
    /// Live state was read: Clerk answered and the key was accepted.
    pub reached_clerk: bool,
    pub requests: u64,
    pub writes: u64,
    pub retries: u64,
    pub throttled: u64,
    /// The pace the run ended at, in requests per second: the rate limit, or what the pacer
    /// learnt Clerk accepts (`None` before a client was set up).
    pub pace_per_second: Option<f64>,
    /// Tokens left in the retry budget.
    pub retry_tokens: Option<u32>,
    /// The client's counters when the run started: a client shared with other runs (the
    /// daemon's) has counted theirs too.
    baseline: StatsSnapshot,
}

impl Totals {
    /// Marks the start of the run on `client`: its requests are counted from here.
    pub fn begin(&mut self, client: &Client) {
        self.baseline = client.snapshot();
    }

    /// The requests, writes, retries and 429s since [`Totals::begin`]. When other runs share
    /// the client at the same time (a daemon cycle and webhook reconciles), theirs are counted
    /// too: each run's figures are then approximate.
    pub fn set_request_counts(&mut self, client: &Client) {
        let counted = client.snapshot().since(self.baseline);
        self.requests = counted.sent;
        self.writes = counted.writes;
        self.retries = counted.retries;
        self.throttled = counted.throttled;
        self.pace_per_second = Some((counted.pace_per_second * 100.0).round() / 100.0);
        self.retry_tokens = Some(client.retry_budget().tokens());
    }
}

/// Records a finished run in the metrics and ends it with one structured summary line.
pub fn finish(command: &'static str, exit: Exit, started: Instant, totals: &Totals) {
    use crate::telemetry::names;
    let result = exit.name();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(names::RUNS, "command" => command, "result" => result).increment(1);
    metrics::histogram!(names::RUN_DURATION, "command" => command).record(elapsed);
    if exit == Exit::Success {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        metrics::gauge!(names::LAST_SUCCESS, "command" => command).set(now);
    }
    if exit == Exit::Invalid {
        metrics::counter!(names::CONFIG_ERRORS).increment(1);
    }
    tracing::info!(
        command,
        result,
        exit_code = exit as u8,
        planned = totals.planned,
        applied = totals.applied,
        failed = totals.failed,
        skipped = totals.skipped,
        rejected = totals.rejected,
        requests = totals.requests,
        writes = totals.writes,
        retries = totals.retries,
        throttled = totals.throttled,
        pace_per_second = totals.pace_per_second,
        retry_tokens = totals.retry_tokens,
        duration_ms = (elapsed * 1000.0) as u64,
        peak_rss_mib = crate::telemetry::peak_rss_bytes().unwrap_or_default() / (1024 * 1024),
        "run finished"
    );
}

/// How a plan is applied: the output format and the safety limits.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub output: OutputFormat,
    pub max_deletes: MaxDeletes,
    pub force: bool,
    /// Print the plan (text) before running it; off when the caller has just shown it.
    pub show_plan: bool,
    /// Print nothing on stdout (the daemon).
    pub quiet: bool,
    /// Whether the text and Markdown output show private metadata values.
    pub private: Private,
}

impl ApplyOptions {
    /// Prints `text` on stdout, unless quiet: the daemon prints nothing there, its log lines
    /// are the record.
    fn say(&self, text: String) {
        if !self.quiet {
            print!("{text}");
        }
    }
}

impl From<&ApplyArgs> for ApplyOptions {
    fn from(args: &ApplyArgs) -> ApplyOptions {
        ApplyOptions {
            output: args.common.output,
            max_deletes: args.common.max_deletes,
            force: args.force,
            show_plan: true,
            quiet: false,
            private: Private::shown_if(args.common.show_private),
        }
    }
}

/// Checks the safety limits, then runs the plan and prints the report.
pub async fn run_plan(
    client: &Arc<Client>,
    plan: &Plan,
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    totals.planned = plan.all_changes().count();
    set_drift(plan.all_changes());
    let progress = if options.quiet || plan.is_empty() {
        None
    } else {
        progress_bar(totals.planned as u64)
    };
    let on_done = |_: AnyChange<'_>, _: &Outcome| {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    };
    let before = |_: &[plan::Refusal]| {
        if options.output == OutputFormat::Text && (options.show_plan || plan.is_empty()) {
            options.say(plan::render(
                Format::Text,
                plan,
                &[],
                Stage::Planned,
                options.private,
            ));
        }
        if options.output == OutputFormat::Text && options.show_plan && !plan.is_empty() {
            options.say("\n".to_owned());
        }
    };
    let limits = Limits {
        max_deletes: options.max_deletes,
        force: options.force,
    };
    let applied = guard_and_apply(client, plan, limits, before, &on_done).await;
    crate::telemetry::clear_progress();
    match applied {
        Applied::Refused(refusals) => Err(refused(plan, &refusals, options)),
        Applied::Ran { overridden, report } => {
            Ok(report_ran(plan, &overridden, &report, options, totals))
        }
    }
}

/// Prints the plan a safety limit refused, with why; the run ends with exit 3.
fn refused(plan: &Plan, refusals: &[plan::Refusal], options: ApplyOptions) -> CommandError {
    options.say(plan::render(
        options.output.into(),
        plan,
        refusals,
        Stage::Refused,
        options.private,
    ));
    CommandError {
        exit: Exit::Refused,
        // The daemon has logged each refusal.
        errors: if options.quiet {
            Vec::new()
        } else {
            vec![if refusals.iter().all(|r| r.limit.overridable()) {
                "the plan was refused by a safety limit; nothing was written (--force overrides, after review)"
            } else {
                "the plan was refused; nothing was written (--force does not override this: change the files as the refusal says)"
            }
            .to_owned()]
        },
        summary: None,
    }
}

/// Counts and prints what the run did (the limits `overridden` with `--force` too).
fn report_ran(
    plan: &Plan,
    overridden: &[plan::Refusal],
    report: &Report,
    options: ApplyOptions,
    totals: &mut Totals,
) -> Finished {
    if plan.is_empty() {
        // The text plan said it all already.
        if options.output != OutputFormat::Text {
            options.say(render_report(plan, overridden, &[], options));
        }
        return Finished::Done;
    }
    let outcomes = outcome_pairs(report);
    totals.applied = report.count(OutcomeKind::Applied);
    totals.failed = report.count(OutcomeKind::Failed);
    totals.skipped = report.count(OutcomeKind::Skipped);
    set_drift(
        plan.all_changes()
            .zip(&report.outcomes)
            .filter(|(_, outcome)| !matches!(outcome, Outcome::Applied { .. }))
            .map(|(change, _)| change),
    );
    options.say(render_report(plan, overridden, &outcomes, options));
    if report.is_success() {
        Finished::Done
    } else {
        Finished::ChangesFailed
    }
}

/// What an apply did, in the output asked for.
fn render_report(
    plan: &Plan,
    overridden: &[plan::Refusal],
    outcomes: &[ChangeOutcome],
    options: ApplyOptions,
) -> String {
    plan::render(
        options.output.into(),
        plan,
        overridden,
        Stage::Applied(outcomes),
        options.private,
    )
}

/// The drift gauge: these changes, counted by kind and action (every kind and action is set,
/// to 0 where none).
fn set_drift<'a>(changes: impl Iterator<Item = AnyChange<'a>>) {
    let mut counts: std::collections::HashMap<(Resource, &str), usize> = Default::default();
    for change in changes {
        *counts
            .entry((change.resource(), change.action_name()))
            .or_default() += 1;
    }
    for resource in Resource::ALL {
        for &action in resource.actions() {
            let count = counts.get(&(resource, action)).copied().unwrap_or_default();
            metrics::gauge!(crate::telemetry::names::DRIFT, "resource" => resource.name(), "action" => action)
                .set(count as f64);
        }
    }
}

fn outcome_pairs(report: &Report) -> Vec<ChangeOutcome> {
    report
        .outcomes
        .iter()
        .map(|o| (o.kind(), o.detail().map(Into::into)))
        .collect()
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} applying [{bar:30}] {pos}/{len} changes ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    // Log lines are written above the bar, not over it.
    crate::telemetry::set_progress(bar.clone());
    Some(bar)
}
