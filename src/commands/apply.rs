//! `membersync apply`: compute the plan (or read a saved one), check the safety limits, run it,
//! and report every change's outcome.

use std::sync::Arc;
use std::time::Instant;

use crate::clerk::Client;
use crate::cli::ApplyArgs;
use crate::desired::Selection;
use crate::sync::Planned;

use super::execute::{ApplyOptions, Totals, finish, run_plan};
use super::interrupt::Interrupt;
use super::{CommandError, CommandResult, Exit, Finished, prepare};

pub async fn run(args: &ApplyArgs) -> CommandResult {
    check_flags(args)?;
    if args.dry_run && args.saved.is_none() {
        return super::plan::run_with(&args.api, &args.common).await;
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    if !args.dry_run {
        crate::telemetry::register_counters(&["apply"]);
    }
    let mut interrupt = Interrupt::install();
    let result = match &args.saved {
        Some(saved) => super::saved::run(args, saved, &mut interrupt, &mut totals).await,
        None => apply_now(args, &mut interrupt, &mut totals).await,
    };
    let result = interrupted(result, &interrupt, &totals);
    if !args.dry_run {
        finish("apply", Exit::of(&result), started, &totals);
        if let Some(url) = &args.pushgateway
            && let Err(error) = crate::telemetry::push(url).await
        {
            tracing::warn!(%error, "metrics were not pushed");
        }
    }
    result
}

/// Options that make no sense together, or without what they need (exit 2, no request).
fn check_flags(args: &ApplyArgs) -> Result<(), CommandError> {
    let wrong = if args.saved.is_some() && !args.common.organizations.is_empty() {
        Some(
            "--org selects the organizations to plan; a saved plan (--plan) applies exactly the organizations it was made for",
        )
    } else if args.saved.is_some() && args.common.out.is_some() {
        Some(
            "--out saves a new plan; it cannot be combined with --plan (the plan is saved already)",
        )
    } else if !args.dry_run && args.common.out.is_some() {
        Some(
            "--out saves a plan: use it with `plan` or `apply --dry-run` (MEMBERSYNC_PLAN_OUT sets it too)",
        )
    } else {
        None
    };
    match wrong {
        Some(message) => Err(CommandError::invalid(format!(
            "{message}; nothing was sent"
        ))),
        None => Ok(()),
    }
}

/// `apply`: loads the files, computes the plan and applies it, cleanly interrupted by a signal.
async fn apply_now(
    args: &ApplyArgs,
    interrupt: &mut Interrupt,
    totals: &mut Totals,
) -> CommandResult {
    let desired = prepare::load(&args.common.files)?;
    let selection = prepare::select(&desired, &args.common.organizations)?;
    let client = prepare::client_with_shutdown(&args.api, Some(interrupt.flag()))?;
    interrupt.watch(&client);
    apply_desired(client, desired, &selection, args.into(), totals).await
}

/// An interrupted run ends with exit 1 and says what is left, whatever it managed.
fn interrupted(result: CommandResult, interrupt: &Interrupt, totals: &Totals) -> CommandResult {
    if !interrupt.fired() {
        return result;
    }
    let error = CommandError::failure(if totals.planned == 0 {
        "interrupted before anything was written; run apply again".to_owned()
    } else {
        format!(
            "interrupted: {} change(s) applied, {} failed, {} not sent (skipped); run apply again to finish the job",
            totals.applied, totals.failed, totals.skipped
        )
    });
    match result {
        Ok(_) => Err(error),
        Err(earlier) => Err(earlier.and(error)),
    }
}

/// Computes the plan for `desired` (or the organizations `selection` names) with `client` and
/// applies it: `apply`, and each daemon cycle (which shares its client with the webhook
/// reconciles, so one limiter paces both).
pub async fn apply_desired(
    client: Arc<Client>,
    desired: crate::desired::DesiredState,
    selection: &Selection,
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    totals.begin(&client);
    let planned = match crate::sync::plan(&client, desired, selection).await {
        Ok(planned) => planned,
        Err(error) => {
            totals.set_request_counts(&client);
            return Err(error.into());
        }
    };
    apply_planned(&client, planned, options, totals).await
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
    totals.begin(&client);
    match crate::sync::plan_organization(&client, desired, id, slug).await {
        Ok(Some(planned)) => apply_planned(&client, planned, options, totals).await,
        Ok(None) => Ok(Finished::Done),
        Err(error) => {
            totals.set_request_counts(&client);
            Err(error.into())
        }
    }
}

/// Applies a computed plan and reports what it could not do.
async fn apply_planned(
    client: &Arc<Client>,
    planned: Planned,
    options: ApplyOptions,
    totals: &mut Totals,
) -> CommandResult {
    totals.reached_clerk = true;
    totals.rejected = planned.plan.rejected.len();
    let result = run_plan(client, &planned.plan, options, totals).await;
    totals.set_request_counts(client);
    let rejected = (!planned.plan.rejected.is_empty()).then(|| {
        CommandError::failure(format!(
            "{} change(s) were not sent because they cannot be made (marked ! in the plan); fix the roles in the file",
            planned.plan.rejected.len()
        ))
    });
    let found = [
        super::missing_error(&planned.missing),
        rejected,
        super::unsettled_error(&planned.plan),
        super::unavailable_error(&planned),
    ];
    match result {
        Ok(finished) => super::finish_with(finished, found),
        Err(error) => Err(found.into_iter().flatten().fold(error, CommandError::and)),
    }
}
