//! `apply --plan PLANFILE`: check that the saved plan was made against this instance and that
//! what it touches has not moved since, then run exactly it. A refused plan is still printed,
//! in the output asked for, with the refusal (in bold in Markdown): CI posts what it prints.

use std::path::Path;

use crate::clerk::Client;
use crate::cli::ApplyArgs;
use crate::plan::saved::{PlanFile, Subject, Touched, TouchedResource};
use crate::plan::{self, Limit, Private, Refusal};

use super::execute::{ApplyOptions, Totals, run_plan};
use super::interrupt::Interrupt;
use super::{CommandError, CommandResult, Exit, Finished, prepare};

pub async fn run(
    args: &ApplyArgs,
    path: &Path,
    interrupt: &mut Interrupt,
    totals: &mut Totals,
) -> CommandResult {
    let file = read_plan_file(path)?;
    let client = prepare::client_with_shutdown(&args.api, Some(interrupt.flag()))?;
    interrupt.watch(&client);
    totals.begin(&client);
    if !file.plan.selected.is_empty() {
        tracing::info!(organizations = %file.plan.selected.join(", "), "the saved plan covers only the organizations selected with --org");
    }
    check_unmoved(&file, args, &client, path, totals).await?;
    tracing::info!(plan = %path.display(), created_at = %file.created_at, "the saved plan matches the live state");
    if args.dry_run {
        let refusals = plan::refusals(&file.plan, args.common.max_deletes);
        super::plan::print_plan(&file.plan, &refusals, args.common.output, private(args));
        return Ok(if args.common.detailed_exitcode && !file.plan.is_empty() {
            Finished::Changes
        } else {
            Finished::Done
        });
    }
    let options: ApplyOptions = args.into();
    let result = run_plan(&client, &file.plan, options, totals).await;
    totals.set_request_counts(&client);
    result
}

/// Reads and checks a plan file (exit 2 when it cannot be read or is not a saved plan).
fn read_plan_file(path: &Path) -> Result<PlanFile, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CommandError::invalid(format!(
            "cannot read the plan file {}: {error}",
            path.display()
        ))
    })?;
    PlanFile::parse(&text)
        .map_err(|error| CommandError::invalid(format!("{}: {error}", path.display())))
}

/// Checks that the saved plan was made against this instance and that nothing it touches
/// moved since: otherwise it is printed with why it is refused (exit 3).
async fn check_unmoved(
    file: &PlanFile,
    args: &ApplyArgs,
    client: &Client,
    path: &Path,
    totals: &mut Totals,
) -> Result<(), CommandError> {
    if let Some(refused) = other_instance(file, client, path) {
        return Err(refuse(file, args, vec![refused], Vec::new()));
    }
    let (observed, invitations) = match read(client, file).await {
        Ok(read) => read,
        Err(error) => {
            totals.set_request_counts(client);
            return Err(error.into());
        }
    };
    let drifted = file.drifted(&observed, &invitations);
    let moved = match moved_resources(client, file).await {
        Ok(moved) => moved,
        Err(error) => {
            totals.set_request_counts(client);
            return Err(error.into());
        }
    };
    if drifted.is_empty() && moved.is_empty() {
        return Ok(());
    }
    let what = match (drifted.len(), moved.len()) {
        (memberships, 0) => format!("{memberships} membership(s) it touches"),
        (0, objects) => format!("{objects} object(s) it changes"),
        (memberships, objects) => format!(
            "{memberships} membership(s) it touches and {objects} other object(s) it changes"
        ),
    };
    let reason = format!(
        "refused to apply {}: {what} changed since {}; nothing was written. Run plan again and review the new plan.",
        path.display(),
        file.created_at
    );
    let mut details = drift_errors(&drifted);
    details.extend(moved.iter().map(|entry| {
        let object = &entry.object;
        match &object.organization_id {
            Some(organization) => format!(
                "the {} {} of {organization} changed since the plan was made",
                object.resource, object.key
            ),
            None => format!(
                "the {} {} changed since the plan was made",
                object.resource, object.key
            ),
        }
    }));
    Err(refuse(file, args, vec![reason], details))
}

/// The objects other than memberships that the plan changes and that moved since it was
/// made (none read when it changes none).
async fn moved_resources(
    client: &Client,
    file: &PlanFile,
) -> Result<Vec<TouchedResource>, crate::clerk::ClerkError> {
    if file.touched_resources.is_empty() {
        return Ok(Vec::new());
    }
    let states = crate::sync::read_resource_states(client, &file.plan).await?;
    Ok(file.drifted_resources(&states))
}

fn private(args: &ApplyArgs) -> Private {
    Private::shown_if(args.common.show_private)
}

/// Why a plan made against another instance is refused, if it was.
fn other_instance(file: &PlanFile, client: &Client, path: &Path) -> Option<String> {
    let planned = file.instance.as_ref()?;
    let current = prepare::instance(client);
    (planned != &current).then(|| {
        format!(
            "refused to apply {}: it was made against {} with a {} key, and this run talks to {} with a {} key; nothing was written",
            path.display(),
            planned.api_url,
            planned.key,
            current.api_url,
            current.key
        )
    })
}

/// The live memberships and pending invitations of what the plan changes.
async fn read(
    client: &Client,
    file: &PlanFile,
) -> Result<
    (
        std::collections::HashMap<String, Vec<plan::Observed>>,
        plan::ObservedInvitations,
    ),
    crate::clerk::ClerkError,
> {
    let organizations: Vec<String> = file
        .plan
        .organizations
        .iter()
        // An organization the plan creates has no memberships to have moved.
        .filter(|o| !o.changes.is_empty() && !o.organization_id.is_empty())
        .map(|o| o.organization_id.clone())
        .collect();
    let inviting: Vec<String> = file
        .plan
        .organizations
        .iter()
        .filter(|o| !o.organization_id.is_empty())
        .filter(|o| o.changes.iter().any(|c| c.action.is_invitation()))
        .map(|o| o.organization_id.clone())
        .collect();
    let observed = crate::sync::read_organizations(client, &organizations).await?;
    let invitations = crate::sync::read_invitations(client, &inviting).await?;
    Ok((observed, invitations))
}

/// One line per membership (or invited email) that moved since the plan was made.
fn drift_errors(drifted: &[Touched]) -> Vec<String> {
    drifted
        .iter()
        .map(|entry| match &entry.subject {
            Subject::Invited(email) => format!(
                "the pending invitations of {email} in {} changed since the plan was made",
                entry.organization_id
            ),
            Subject::Member(user_id) => format!(
                "the membership of {user_id} in {} changed since the plan was made (role, metadata or presence)",
                entry.organization_id
            ),
        })
        .collect()
}

/// Prints the saved plan with why it is refused (so that a CI comment says so rather than
/// nothing), and ends the run with exit 3.
fn refuse(
    file: &PlanFile,
    args: &ApplyArgs,
    reasons: Vec<String>,
    details: Vec<String>,
) -> CommandError {
    let refusals: Vec<Refusal> = reasons
        .iter()
        .map(|reason| Refusal {
            limit: Limit::Stale,
            reason: reason.trim_end_matches('.').to_owned(),
        })
        .collect();
    super::plan::print_plan(&file.plan, &refusals, args.common.output, private(args));
    CommandError {
        exit: Exit::Refused,
        errors: details.into_iter().chain(reasons).collect(),
        summary: None,
    }
}
