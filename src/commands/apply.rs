//! `membersync apply`: compute the plan (or read a saved one), check the safety limits, run it,
//! and report every change's outcome.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::apply::{Outcome, Report, execute};
use crate::clerk::Client;
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::plan::saved::PlanFile;
use crate::plan::{
    self, Action, Change, ChangeOutcome, MaxDeletes, OutcomeKind, Plan, render_json,
    render_outcomes,
};

use super::{Exit, prepare};

/// What one apply run did: the summary log line and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

impl Totals {
    fn set_request_counts(&mut self, client: &Client) {
        let stats = &client.stats;
        self.requests = stats.sent.load(Ordering::Relaxed);
        self.writes = stats.writes.load(Ordering::Relaxed);
        self.retries = stats.retries.load(Ordering::Relaxed);
        self.throttled = stats.throttled.load(Ordering::Relaxed);
    }
}

pub async fn run(global: &GlobalArgs, args: &ApplyArgs) -> Exit {
    if args.dry_run && args.saved.is_none() {
        return super::plan::run_with(global, &args.common, None).await;
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    let exit = match &args.saved {
        Some(saved) => run_saved(global, args, saved, &mut totals).await,
        None => apply_files(global, &args.common.files, args.into(), None, &mut totals).await,
    };
    if !args.dry_run {
        finish("apply", exit, started, &totals);
        if let Some(url) = &args.pushgateway
            && let Err(error) = crate::telemetry::push(url).await
        {
            tracing::warn!(%error, "metrics were not pushed");
        }
    }
    exit
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
        duration_ms = (elapsed * 1000.0) as u64,
        peak_rss_mib = crate::telemetry::peak_rss_bytes().unwrap_or_default() / (1024 * 1024),
        "run finished"
    );
}

/// Loads the files, computes the plan and applies it: `apply`, and each daemon cycle.
pub async fn apply_files(
    global: &GlobalArgs,
    files: &crate::cli::FileArgs,
    options: ApplyOptions,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
    totals: &mut Totals,
) -> Exit {
    let desired = match prepare::load(files) {
        Ok(desired) => desired,
        Err(exit) => return exit,
    };
    let client = match prepare::client_with_shutdown(global, shutdown) {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let computed = match prepare::compute(client.clone(), desired).await {
        Ok(computed) => computed,
        Err(exit) => {
            totals.set_request_counts(&client);
            return exit;
        }
    };
    super::report_missing(&computed.missing);
    totals.reached_clerk = true;
    totals.rejected = computed.plan.rejected.len();
    let exit = run_plan(&computed.client, &computed.plan, options, totals).await;
    totals.set_request_counts(&computed.client);
    if !computed.plan.rejected.is_empty() {
        super::report_error(format_args!(
            "{} change(s) were not sent because they cannot be made (marked ! in the plan); fix the roles in the file",
            computed.plan.rejected.len()
        ));
    }
    let unsettled = super::report_unsettled(&computed.plan);
    if exit == Exit::Success
        && (!computed.missing.is_empty() || !computed.plan.rejected.is_empty() || unsettled)
    {
        Exit::Failure
    } else {
        exit
    }
}

/// `apply --plan PLANFILE`: check that what the plan touches has not moved, then run it.
async fn run_saved(
    global: &GlobalArgs,
    args: &ApplyArgs,
    path: &Path,
    totals: &mut Totals,
) -> Exit {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!(
                "error: cannot read the plan file {}: {error}",
                path.display()
            );
            return Exit::Invalid;
        }
    };
    let file = match PlanFile::parse(&text) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return Exit::Invalid;
        }
    };
    let client = match prepare::client(global) {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    if let Some(planned) = &file.instance {
        let current = prepare::instance(&client);
        if planned != &current {
            eprintln!(
                "error: refused to apply {}: it was made against {} with a {} key, and this run talks to {} with a {} key; nothing was written",
                path.display(),
                planned.api_url,
                planned.key,
                current.api_url,
                current.key
            );
            return Exit::Refused;
        }
    }
    let organizations: Vec<String> = file
        .plan
        .organizations
        .iter()
        .filter(|o| !o.changes.is_empty())
        .map(|o| o.organization_id.clone())
        .collect();
    let observed = match prepare::read_organizations(&client, &organizations).await {
        Ok(observed) => observed,
        Err(error) => {
            eprintln!("error: {error}");
            totals.set_request_counts(&client);
            return Exit::Failure;
        }
    };
    let drifted = file.drifted(&observed);
    if !drifted.is_empty() {
        for entry in &drifted {
            eprintln!(
                "error: the membership of {} in {} changed since the plan was made (role, metadata or presence)",
                entry.user_id, entry.organization_id
            );
        }
        eprintln!(
            "error: refused to apply {}: {} membership(s) it touches changed since {}; nothing was written. Run plan again and review the new plan.",
            path.display(),
            drifted.len(),
            file.created_at
        );
        return Exit::Refused;
    }
    tracing::info!(plan = %path.display(), created_at = %file.created_at, "the saved plan matches the live state");
    if args.dry_run {
        let refusals = plan::refusals(&file.plan, args.common.max_deletes);
        super::plan::print_plan(&file.plan, &refusals, args.common.output);
        return if args.common.detailed_exitcode && !file.plan.is_empty() {
            Exit::Changes
        } else {
            Exit::Success
        };
    }
    let exit = run_plan(&client, &file.plan, args.into(), totals).await;
    totals.set_request_counts(&client);
    exit
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
}

impl From<&ApplyArgs> for ApplyOptions {
    fn from(args: &ApplyArgs) -> ApplyOptions {
        ApplyOptions {
            output: args.common.output,
            max_deletes: args.common.max_deletes,
            force: args.force,
            show_plan: true,
            quiet: false,
        }
    }
}

/// Checks the safety limits, then runs the plan and prints the report.
pub async fn run_plan(
    client: &Arc<Client>,
    plan: &Plan,
    options: ApplyOptions,
    totals: &mut Totals,
) -> Exit {
    let output = options.output;
    // The daemon prints nothing on stdout: its log lines are the record.
    let say = |text: String| {
        if !options.quiet {
            print!("{text}");
        }
    };
    totals.planned = plan.changes().count();
    set_drift(plan.changes());
    let refusals = plan::refusals(plan, options.max_deletes);
    if !refusals.is_empty() && !options.force {
        match output {
            OutputFormat::Json => say(format!("{}\n", render_json(plan, &refusals, None))),
            OutputFormat::Text => {
                let mut text = plan::render_text(plan);
                for refusal in &refusals {
                    text.push_str(&format!("Refused: {}.\n", refusal.reason));
                }
                say(text);
            }
        }
        for refusal in &refusals {
            tracing::error!(limit = ?refusal.limit, reason = %refusal.reason, "plan refused by a safety limit; nothing was written");
        }
        if !options.quiet {
            eprintln!(
                "error: the plan was refused by a safety limit; nothing was written (--force overrides, after review)"
            );
        }
        return Exit::Refused;
    }
    for refusal in &refusals {
        tracing::warn!(limit = ?refusal.limit, reason = %refusal.reason, "safety limit overridden by --force");
    }
    if output == OutputFormat::Text && (options.show_plan || plan.is_empty()) {
        say(plan::render_text(plan));
    }
    if plan.is_empty() {
        if output == OutputFormat::Json {
            say(format!("{}\n", render_json(plan, &refusals, Some(&[]))));
        }
        return Exit::Success;
    }
    if output == OutputFormat::Text && options.show_plan {
        say("\n".to_owned());
    }

    let total = plan.changes().count();
    let progress = if options.quiet {
        None
    } else {
        progress_bar(total as u64)
    };
    let on_done = |_: &Change, _: &Outcome| {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    };
    let report = execute(client, plan, &on_done).await;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let outcomes = outcome_pairs(&report);
    totals.applied = report.count(OutcomeKind::Applied);
    totals.failed = report.count(OutcomeKind::Failed);
    totals.skipped = report.count(OutcomeKind::Skipped);
    set_drift(
        plan.changes()
            .zip(&report.outcomes)
            .filter(|(_, outcome)| !matches!(outcome, Outcome::Applied { .. }))
            .map(|(change, _)| change),
    );
    match output {
        OutputFormat::Json => say(format!(
            "{}\n",
            render_json(plan, &refusals, Some(&outcomes))
        )),
        OutputFormat::Text => say(render_outcomes(plan, &outcomes)),
    }
    if report.is_success() {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// The drift gauge: these changes, counted by action.
fn set_drift<'a>(changes: impl Iterator<Item = &'a Change>) {
    let mut counts = [0usize; 4];
    for change in changes {
        counts[change.action as usize] += 1;
    }
    for action in [
        Action::Create,
        Action::UpdateRole,
        Action::UpdateMetadata,
        Action::Delete,
    ] {
        metrics::gauge!(crate::telemetry::names::DRIFT, "action" => action.name())
            .set(counts[action as usize] as f64);
    }
}

fn outcome_pairs(report: &Report) -> Vec<ChangeOutcome> {
    report
        .outcomes
        .iter()
        .map(|o| (o.kind(), o.detail().map(str::to_owned)))
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
    Some(bar)
}
