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
use crate::plan::{self, Change, MaxDeletes, Plan, render_json, render_outcomes};

use super::{Exit, live};

pub async fn run(global: &GlobalArgs, args: &ApplyArgs) -> Exit {
    if let Some(saved) = &args.saved {
        return run_saved(global, args, saved).await;
    }
    if args.dry_run {
        return super::plan::run_with(global, &args.common, None).await;
    }
    let desired = match live::load(&args.common.files) {
        Ok(desired) => desired,
        Err(exit) => return exit,
    };
    let client = match live::client(global) {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let computed = match live::compute(client, &desired).await {
        Ok(computed) => computed,
        Err(exit) => return exit,
    };
    super::report_missing(&computed.missing);
    let exit = run_plan(&computed.client, &computed.plan, args.into()).await;
    if !computed.plan.rejected.is_empty() {
        eprintln!(
            "error: {} change(s) were not sent because they cannot be made (marked ! in the plan); fix the roles in the file",
            computed.plan.rejected.len()
        );
    }
    if exit == Exit::Success && (!computed.missing.is_empty() || !computed.plan.rejected.is_empty())
    {
        Exit::Failure
    } else {
        exit
    }
}

/// `apply --plan PLANFILE`: check that what the plan touches has not moved, then run it.
async fn run_saved(global: &GlobalArgs, args: &ApplyArgs, path: &Path) -> Exit {
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
    let client = match live::client(global) {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let organizations: Vec<String> = file
        .plan
        .organizations
        .iter()
        .filter(|o| !o.changes.is_empty())
        .map(|o| o.organization_id.clone())
        .collect();
    let observed = match live::read_organizations(&client, &organizations).await {
        Ok(observed) => observed,
        Err(error) => {
            eprintln!("error: {error}");
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
        let refusals = plan::check(&file.plan, args.common.max_deletes);
        super::plan::print_plan(&file.plan, &refusals, args.common.output);
        return if args.common.detailed_exitcode && !file.plan.is_empty() {
            Exit::Changes
        } else {
            Exit::Success
        };
    }
    run_plan(&client, &file.plan, args.into()).await
}

/// How a plan is applied: the output format and the safety limits.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub output: OutputFormat,
    pub max_deletes: MaxDeletes,
    pub force: bool,
    /// Print the plan (text) before running it; off when the caller has just shown it.
    pub show_plan: bool,
}

impl From<&ApplyArgs> for ApplyOptions {
    fn from(args: &ApplyArgs) -> ApplyOptions {
        ApplyOptions {
            output: args.common.output,
            max_deletes: args.common.max_deletes,
            force: args.force,
            show_plan: true,
        }
    }
}

/// Checks the safety limits, then runs the plan and prints the report.
pub async fn run_plan(client: &Arc<Client>, plan: &Plan, options: ApplyOptions) -> Exit {
    let output = options.output;
    let refusals = plan::check(plan, options.max_deletes);
    if !refusals.is_empty() && !options.force {
        match output {
            OutputFormat::Json => println!("{}", render_json(plan, &refusals, None)),
            OutputFormat::Text => {
                print!("{}", plan::render_text(plan));
                for refusal in &refusals {
                    println!("Refused: {}.", refusal.reason);
                }
            }
        }
        eprintln!(
            "error: the plan was refused by a safety limit; nothing was written (--force overrides, after review)"
        );
        return Exit::Refused;
    }
    for refusal in &refusals {
        tracing::warn!(reason = %refusal.reason, "safety limit overridden by --force");
    }
    if output == OutputFormat::Text && (options.show_plan || plan.is_empty()) {
        print!("{}", plan::render_text(plan));
    }
    if plan.is_empty() {
        if output == OutputFormat::Json {
            println!("{}", render_json(plan, &refusals, Some(&[])));
        }
        return Exit::Success;
    }
    if output == OutputFormat::Text && options.show_plan {
        println!();
    }

    let started = Instant::now();
    let total = plan.changes().count();
    let progress = progress_bar(total as u64);
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
    match output {
        OutputFormat::Json => println!("{}", render_json(plan, &refusals, Some(&outcomes))),
        OutputFormat::Text => print!("{}", render_outcomes(plan, &outcomes)),
    }
    let stats = &client.stats;
    tracing::info!(
        applied = report.count("applied"),
        failed = report.count("failed"),
        skipped = report.count("skipped"),
        requests = stats.sent.load(Ordering::Relaxed),
        writes = stats.writes.load(Ordering::Relaxed),
        retries = stats.retries.load(Ordering::Relaxed),
        throttled = stats.throttled.load(Ordering::Relaxed),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "apply finished"
    );
    if report.is_success() {
        Exit::Success
    } else {
        Exit::Failure
    }
}

fn outcome_pairs(report: &Report) -> Vec<(String, Option<String>)> {
    report
        .outcomes
        .iter()
        .map(|o| (o.name().to_owned(), o.detail().map(str::to_owned)))
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
