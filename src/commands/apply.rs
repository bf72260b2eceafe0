//! `membersync apply`: compute the plan (or read a saved one), check the safety limits, run it,
//! and report every change's outcome.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::apply::{Outcome as ChangeResult, Report};
use crate::clerk::Client;
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::plan::saved::PlanFile;
use crate::plan::{
    self, Action, Change, ChangeOutcome, MaxDeletes, OutcomeKind, Plan, render_json,
    render_outcomes,
};

use crate::sync::{Applied, Limits, guard_and_apply};

use super::{CommandError, CommandResult, Exit, Outcome, prepare};

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

pub async fn run(global: &GlobalArgs, args: &ApplyArgs) -> CommandResult {
    if args.dry_run && args.saved.is_none() {
        return super::plan::run_with(global, &args.common, None).await;
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    let result = match &args.saved {
        Some(saved) => run_saved(global, args, saved, &mut totals).await,
        None => apply_files(global, &args.common.files, args.into(), None, &mut totals).await,
    };
    if !args.dry_run {
        finish("apply", exit_code(&result), started, &totals);
        if let Some(url) = &args.pushgateway
            && let Err(error) = crate::telemetry::push(url).await
        {
            tracing::warn!(%error, "metrics were not pushed");
        }
    }
    result
}

/// The exit status a result ends the process with.
pub fn exit_code(result: &CommandResult) -> Exit {
    match result {
        Ok(outcome) => (*outcome).into(),
        Err(error) => error.exit,
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
        duration_ms = (elapsed * 1000.0) as u64,
        peak_rss_mib = crate::telemetry::peak_rss_bytes().unwrap_or_default() / (1024 * 1024),
        "run finished"
    );
}

/// Loads the files, computes the plan and applies it: `apply`.
pub async fn apply_files(
    global: &GlobalArgs,
    files: &crate::cli::FileArgs,
    options: ApplyOptions,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
    totals: &mut Totals,
) -> CommandResult {
    let desired = prepare::load(files)?;
    let client = prepare::client_with_shutdown(global, shutdown)?;
    apply_desired(client, desired, options, totals).await
}

/// Computes the plan for `desired` with `client` and applies it: `apply`, and each daemon
/// cycle (which shares its client with the webhook reconciles, so one limiter paces both).
pub async fn apply_desired(
    client: Arc<Client>,
    desired: crate::desired::DesiredState,
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    let computed = match prepare::compute(client.clone(), desired).await {
        Ok(computed) => computed,
        Err(error) => {
            totals.set_request_counts(&client);
            return Err(error);
        }
    };
    apply_computed(computed, options, totals).await
}

/// Applies one organization alone, read with its own listing: a webhook reconcile. An
/// organization the files do not manage is left alone, with no request.
pub async fn apply_organization(
    client: Arc<Client>,
    desired: crate::desired::DesiredState,
    organization: (&str, Option<&str>),
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    let (id, slug) = organization;
    match prepare::compute_organization(client.clone(), desired, id, slug).await {
        Ok(Some(computed)) => apply_computed(computed, options, totals).await,
        Ok(None) => Ok(Outcome::Done),
        Err(error) => {
            totals.set_request_counts(&client);
            Err(error)
        }
    }
}

/// Applies a computed plan and reports what it could not do.
async fn apply_computed(
    computed: prepare::Computed,
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    totals.reached_clerk = true;
    totals.rejected = computed.plan.rejected.len();
    let result = run_plan(&computed.client, &computed.plan, options, totals).await;
    totals.set_request_counts(&computed.client);
    let rejected = (!computed.plan.rejected.is_empty()).then(|| {
        CommandError::failure(format!(
            "{} change(s) were not sent because they cannot be made (marked ! in the plan); fix the roles in the file",
            computed.plan.rejected.len()
        ))
    });
    let found = [
        super::missing_error(&computed.missing),
        rejected,
        super::unsettled_error(&computed.plan),
    ];
    match result {
        Ok(outcome) => super::finish_with(outcome, found),
        Err(error) => Err(found.into_iter().flatten().fold(error, CommandError::and)),
    }
}

/// `apply --plan PLANFILE`: check that what the plan touches has not moved, then run it.
async fn run_saved(
    global: &GlobalArgs,
    args: &ApplyArgs,
    path: &Path,
    totals: &mut Totals,
) -> CommandResult {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CommandError::invalid(format!(
            "cannot read the plan file {}: {error}",
            path.display()
        ))
    })?;
    let file = PlanFile::parse(&text)
        .map_err(|error| CommandError::invalid(format!("{}: {error}", path.display())))?;
    let client = prepare::client(global)?;
    if let Some(planned) = &file.instance {
        let current = prepare::instance(&client);
        if planned != &current {
            return Err(CommandError::new(
                Exit::Refused,
                format!(
                    "refused to apply {}: it was made against {} with a {} key, and this run talks to {} with a {} key; nothing was written",
                    path.display(),
                    planned.api_url,
                    planned.key,
                    current.api_url,
                    current.key
                ),
            ));
        }
    }
    let organizations: Vec<String> = file
        .plan
        .organizations
        .iter()
        .filter(|o| !o.changes.is_empty())
        .map(|o| o.organization_id.clone())
        .collect();
    let inviting: Vec<String> = file
        .plan
        .organizations
        .iter()
        .filter(|o| o.changes.iter().any(|c| c.action.is_invitation()))
        .map(|o| o.organization_id.clone())
        .collect();
    let read = async {
        let observed = crate::sync::read_organizations(&client, &organizations).await?;
        let invitations = crate::sync::read_invitations(&client, &inviting).await?;
        Ok::<_, crate::clerk::ClerkError>((observed, invitations))
    };
    let (observed, invitations) = match read.await {
        Ok(read) => read,
        Err(error) => {
            totals.set_request_counts(&client);
            return Err(error.into());
        }
    };
    let drifted = file.drifted(&observed, &invitations);
    if !drifted.is_empty() {
        let mut errors: Vec<String> = drifted
            .iter()
            .map(|entry| {
                match entry.user_id.strip_prefix("invitation:") {
                    Some(email) => format!(
                        "the pending invitations of {email} in {} changed since the plan was made",
                        entry.organization_id
                    ),
                    None => format!(
                        "the membership of {} in {} changed since the plan was made (role, metadata or presence)",
                        entry.user_id, entry.organization_id
                    ),
                }
            })
            .collect();
        errors.push(format!(
            "refused to apply {}: {} membership(s) it touches changed since {}; nothing was written. Run plan again and review the new plan.",
            path.display(),
            drifted.len(),
            file.created_at
        ));
        return Err(CommandError {
            exit: Exit::Refused,
            errors,
            summary: None,
        });
    }
    tracing::info!(plan = %path.display(), created_at = %file.created_at, "the saved plan matches the live state");
    if args.dry_run {
        let refusals = plan::refusals(&file.plan, args.common.max_deletes);
        super::plan::print_plan(&file.plan, &refusals, args.common.output);
        return Ok(if args.common.detailed_exitcode && !file.plan.is_empty() {
            Outcome::Changes
        } else {
            Outcome::Done
        });
    }
    let result = run_plan(&client, &file.plan, args.into(), totals).await;
    totals.set_request_counts(&client);
    result
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
) -> CommandResult {
    let output = options.output;
    // The daemon prints nothing on stdout: its log lines are the record.
    let say = |text: String| {
        if !options.quiet {
            print!("{text}");
        }
    };
    totals.planned = plan.changes().count();
    set_drift(plan.changes());
    let total = plan.changes().count() as u64;
    let progress = if options.quiet || plan.is_empty() {
        None
    } else {
        progress_bar(total)
    };
    let on_done = |_: &Change, _: &ChangeResult| {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    };
    let before = |_: &[plan::Refusal]| {
        if output == OutputFormat::Text && (options.show_plan || plan.is_empty()) {
            say(plan::render_text(plan));
        }
        if output == OutputFormat::Text && options.show_plan && !plan.is_empty() {
            say("\n".to_owned());
        }
    };
    let limits = Limits {
        max_deletes: options.max_deletes,
        force: options.force,
    };
    let (refusals, report) = match guard_and_apply(client, plan, limits, before, &on_done).await {
        Applied::Refused(refusals) => {
            match output {
                OutputFormat::Json => say(format!("{}\n", render_json(plan, &refusals, None))),
                OutputFormat::Markdown => say(plan::render_markdown(plan, &refusals, None)),
                OutputFormat::Text => {
                    let mut text = plan::render_text(plan);
                    for refusal in &refusals {
                        text.push_str(&format!("Refused: {}.\n", refusal.reason));
                    }
                    say(text);
                }
            }
            return Err(CommandError {
                exit: Exit::Refused,
                // The daemon has logged each refusal.
                errors: if options.quiet {
                    Vec::new()
                } else {
                    vec!["the plan was refused by a safety limit; nothing was written (--force overrides, after review)".to_owned()]
                },
                summary: None,
            });
        }
        Applied::Ran { overridden, report } => (overridden, report),
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if plan.is_empty() {
        match output {
            OutputFormat::Json => say(format!("{}\n", render_json(plan, &refusals, Some(&[])))),
            OutputFormat::Markdown => say(plan::render_markdown(plan, &refusals, Some(&[]))),
            OutputFormat::Text => {}
        }
        return Ok(Outcome::Done);
    }
    let outcomes = outcome_pairs(&report);
    totals.applied = report.count(OutcomeKind::Applied);
    totals.failed = report.count(OutcomeKind::Failed);
    totals.skipped = report.count(OutcomeKind::Skipped);
    set_drift(
        plan.changes()
            .zip(&report.outcomes)
            .filter(|(_, outcome)| !matches!(outcome, ChangeResult::Applied { .. }))
            .map(|(change, _)| change),
    );
    match output {
        OutputFormat::Json => say(format!(
            "{}\n",
            render_json(plan, &refusals, Some(&outcomes))
        )),
        OutputFormat::Text => say(render_outcomes(plan, &outcomes)),
        OutputFormat::Markdown => say(plan::render_markdown(plan, &refusals, Some(&outcomes))),
    }
    Ok(if report.is_success() {
        Outcome::Done
    } else {
        Outcome::ChangesFailed
    })
}

/// The drift gauge: these changes, counted by action.
fn set_drift<'a>(changes: impl Iterator<Item = &'a Change>) {
    let mut counts = [0usize; Action::ALL.len()];
    for change in changes {
        counts[change.action as usize] += 1;
    }
    for action in Action::ALL {
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
