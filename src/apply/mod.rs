//! The executor: runs a [`Plan`](crate::plan::Plan) against Clerk. The only module that writes.
//!
//! The instance's permissions, roles and role sets that are created or updated run first, step by
//! step; those that are taken away (a role leaving a role set, role and permission deletions) run
//! last, once every organization is done. Organizations run concurrently in between (the client's
//! pacer bounds what is in flight), each its own changes (its fields, its domains) first; within one
//! organization the membership phases run in order — creates and promotions, then demotions, then deletions —
//! and the changes of one phase run concurrently. A change that would take away an organization's
//! last admin because an earlier change of that organization failed is skipped rather than sent.
//!
//! Every outcome is idempotent, so retries, races and a crash midway converge on the next run: a
//! create that meets `already_a_member_in_organization` converges the existing membership; a delete
//! that meets 404 is done already; an update that meets 404 creates the membership as declared.

mod admins;
mod authorization;
mod invitations;
mod organizations;
mod outcome;
mod resources;

use admins::removes_admin;
pub use outcome::{ANOTHER_WRITER, ChangeError, Outcome, Report};

use std::sync::atomic::AtomicBool;

use futures::StreamExt;
use futures::stream;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::clerk::{ClerkError, Client, Halt};
use crate::desired::Role;
use crate::plan::{
    Action, AnyChange, Change, Observed, OrganizationPlan, Phase, Plan, ResourceChange, converge,
};

/// Called once per change as it ends (progress bars, logs).
pub type OnDone<'a> = &'a (dyn Fn(AnyChange<'_>, &Outcome) + Sync);

/// Runs every change of `plan`: the instance's changes that come first, then up to
/// `--concurrency` organizations at a time, each in its phases, then the instance's changes
/// that come last; reports each change to `on_done` as it ends. The outcomes are in run order
/// ([`Plan::all_changes`]).
pub async fn execute(client: &Client, plan: &Plan, on_done: OnDone<'_>) -> Report {
    let parallel = (client.config().concurrency as usize).max(1);
    let before: Vec<&ResourceChange> = plan.authorization_before().collect();
    let mut outcomes = resources::run_steps(client, &before, parallel, on_done).await;
    outcomes.extend(run_organizations(client, plan, parallel, on_done).await);
    let after: Vec<&ResourceChange> = plan.authorization_after().collect();
    outcomes.extend(resources::run_steps(client, &after, parallel, on_done).await);
    let report = Report { outcomes };
    warn_about(&report);
    report
}

/// Runs the organizations, up to `parallel` at a time; their outcomes in plan order.
async fn run_organizations(
    client: &Client,
    plan: &Plan,
    parallel: usize,
    on_done: OnDone<'_>,
) -> Vec<Outcome> {
    // Set once Clerk's invitation limit defers an invitation: the run sends no more.
    let deferred = AtomicBool::new(false);
    let deferred = &deferred;
    let mut per_organization: Vec<(usize, Vec<Outcome>)> =
        stream::iter(plan.organizations.iter().enumerate())
            .map(|(index, organization)| {
                let span = tracing::info_span!("organization", id = %organization.organization_id);
                let run = Run {
                    client,
                    parallel,
                    on_done,
                    deferred,
                };
                async move { (index, run_organization(run, organization).await) }.instrument(span)
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
    per_organization.sort_by_key(|(index, _)| *index);
    per_organization
        .into_iter()
        .flat_map(|(_, outcomes)| outcomes)
        .collect()
}

/// Warns about what a whole run met: other writers, and invitations Clerk's limit deferred.
fn warn_about(report: &Report) {
    let raced = report
        .outcomes
        .iter()
        .filter(|o| o.met_another_writer())
        .count();
    if raced > 0 {
        tracing::warn!(
            changes = raced,
            "{raced} change(s) found the membership already as the change would make it, or gone: {ANOTHER_WRITER} (an overlapping apply, a CronJob and a CI job at once?)"
        );
    }
    let deferred = report.deferred();
    if deferred > 0 {
        metrics::counter!(crate::telemetry::names::INVITATIONS_DEFERRED).increment(deferred as u64);
        tracing::warn!(
            deferred,
            "{deferred} invitation change(s) deferred by Clerk's invitation limit; the next run sends them"
        );
    }
}

/// What every organization of one run shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    client: &'a Client,
    parallel: usize,
    on_done: OnDone<'a>,
    /// Set once Clerk's invitation limit deferred an invitation.
    deferred: &'a AtomicBool,
}

/// Whether a change makes someone admin who was not.
fn grants_admin(change: &Change) -> bool {
    matches!(change.action, Action::Create | Action::UpdateRole)
        && change.role.as_deref() == Some(Role::ADMIN)
        && change.previous_role.as_deref() != Some(Role::ADMIN)
}

/// Runs one organization: its own changes (its fields, its domains), then its memberships.
/// An organization the plan creates gets the ID its create returns; when it could not be
/// created, none of its memberships is sent.
async fn run_organization(run: Run<'_>, organization: &OrganizationPlan) -> Vec<Outcome> {
    let (mut outcomes, created) =
        resources::run_own(run.client, &organization.resources, run.on_done).await;
    let named;
    let organization = match created {
        Some(id) if organization.organization_id.is_empty() => {
            named = organization.with_id(&id);
            &named
        }
        _ => organization,
    };
    if organization.organization_id.is_empty() {
        let label = organization.label.as_deref().unwrap_or_default();
        for change in &organization.changes {
            let outcome = Outcome::Skipped {
                reason: format!("not sent: the organization {label} was not created"),
            };
            finished(change, &outcome, run.on_done);
            outcomes.push(outcome);
        }
        return outcomes;
    }
    outcomes.extend(run_memberships(run, organization).await);
    outcomes
}

/// Runs an organization's membership and invitation changes, phase by phase.
async fn run_memberships(run: Run<'_>, organization: &OrganizationPlan) -> Vec<Outcome> {
    let Run {
        client,
        parallel,
        on_done,
        deferred,
    } = run;
    let changes = &organization.changes;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; changes.len()];
    // The admins the organization must keep at every moment: one, unless the plan itself
    // (forced) leaves it without.
    let keep = usize::from(organization.admins_after > 0);
    let mut admins = organization.admins_before;
    // Whether the organization's admins were read again before an admin removal.
    let mut confirmed = false;
    for phase in Phase::ALL {
        let mut runnable = runnable(organization, phase, keep, &mut admins, &mut outcomes);
        if keep > 0 && !confirmed && runnable.iter().any(|&i| removes_admin(&changes[i])) {
            confirmed = true;
            admins +=
                admins::confirm_or_fail(client, organization, &mut outcomes, &mut runnable).await;
        }
        if phase == Phase::Invitations {
            // Invitations: batched through the bulk endpoint.
            let done = invitations::send(client, organization, &runnable, deferred, parallel).await;
            for (index, outcome) in done {
                outcomes[index] = Some(outcome);
            }
            continue;
        }
        let done: Vec<(usize, Outcome)> = stream::iter(runnable)
            .map(|index| {
                let change = &changes[index];
                let span = tracing::info_span!("change", action = change.action.name(), user = %change.user_id);
                async move { (index, run_change(client, change).await) }.instrument(span)
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        for (index, outcome) in done {
            let change = &changes[index];
            let applied = matches!(outcome, Outcome::Applied { .. });
            if applied && grants_admin(change) {
                admins += 1;
            }
            if !applied && removes_admin(change) {
                admins += 1;
            }
            outcomes[index] = Some(outcome);
        }
    }
    changes
        .iter()
        .zip(outcomes)
        .map(|(change, outcome)| {
            let outcome = outcome.unwrap_or_else(|| Outcome::Skipped {
                reason: "not sent".to_owned(),
            });
            finished(change, &outcome, on_done);
            outcome
        })
        .collect()
}

/// Logs a membership change's outcome, counts it, and tells `on_done`.
fn finished(change: &Change, outcome: &Outcome, on_done: OnDone<'_>) {
    log_outcome(change, outcome);
    on_done(AnyChange::Membership(change), outcome);
}

/// Counts one change's outcome in `membersync_changes_total{resource, action, outcome}`.
fn count_outcome(change: AnyChange<'_>, outcome: &Outcome) {
    metrics::counter!(
        crate::telemetry::names::CHANGES,
        "resource" => change.resource().name(),
        "action" => change.action_name(),
        "outcome" => outcome.kind().name()
    )
    .increment(1);
}

/// The changes of `phase` still to run: a change that would take away an admin the
/// organization must keep (`keep`; `admins` it has now) is skipped instead.
fn runnable(
    organization: &OrganizationPlan,
    phase: Phase,
    keep: usize,
    admins: &mut usize,
    outcomes: &mut [Option<Outcome>],
) -> Vec<usize> {
    let mut runnable = Vec::new();
    for (index, change) in organization.changes.iter().enumerate() {
        if change.phase() != phase || outcomes[index].is_some() {
            continue;
        }
        if removes_admin(change) {
            if *admins <= keep {
                outcomes[index] = Some(Outcome::Skipped {
                    reason: format!(
                        "not sent: it would leave {} without an org:admin, because an earlier change of this organization did not succeed",
                        organization.organization_id
                    ),
                });
                continue;
            }
            *admins -= 1;
        }
        runnable.push(index);
    }
    runnable
}

fn log_outcome(change: &Change, outcome: &Outcome) {
    let action = change.action.name();
    count_outcome(AnyChange::Membership(change), outcome);
    let (organization, user) = (&change.organization_id, &change.user_id);
    let email = change.email.as_deref().unwrap_or_default();
    match outcome {
        Outcome::Applied { note } => tracing::info!(
            organization = %organization, user = %user, email, action, outcome = "applied",
            note = note.as_deref().unwrap_or_default(), "change applied"
        ),
        Outcome::Failed { error } => tracing::warn!(
            organization = %organization, user = %user, email, action, outcome = "failed",
            error = %error, "change failed"
        ),
        Outcome::Skipped { reason } | Outcome::Deferred { reason } => tracing::warn!(
            organization = %organization, user = %user, email, action, outcome = "skipped",
            reason = %reason, "change skipped"
        ),
    }
}

/// Why a change must not start: the key was refused, membersync is shutting down, or the
/// retry budget is spent ([`Client::halted`]).
fn not_to_start(client: &Client) -> Option<Outcome> {
    let skipped = |reason: &str| Outcome::Skipped {
        reason: reason.to_owned(),
    };
    client.halted().map(|halt| match halt {
        Halt::Stopped => skipped(crate::clerk::NOT_SENT_STOPPED),
        Halt::ShuttingDown => skipped(crate::clerk::NOT_SENT_SHUTTING_DOWN),
        Halt::OutOfRetries => ChangeError::OutOfRetries.into(),
    })
}

/// Runs one change, turning the idempotent cases into success.
async fn run_change(client: &Client, change: &Change) -> Outcome {
    if let Some(outcome) = not_to_start(client) {
        return outcome;
    }
    let (organization, user) = (change.organization_id.as_str(), change.user_id.as_str());
    match change.action {
        Action::Create => {
            let (public, private) = parts(change.metadata_patch.as_ref());
            let role = change.role.as_deref().unwrap_or(Role::MEMBER);
            match client
                .create_membership(organization, user, role, public, private)
                .await
            {
                Ok(_) => Outcome::applied(),
                Err(error) if error.has_code("already_a_member_in_organization") => {
                    converge_existing(client, change).await
                }
                Err(error) => Outcome::failed(error),
            }
        }
        Action::UpdateRole => {
            let role = change.role.as_deref().unwrap_or(Role::MEMBER);
            match client
                .update_membership_role(organization, user, role)
                .await
            {
                Ok(_) => Outcome::applied(),
                Err(error) if is_not_found(&error) => recreate(client, change).await,
                Err(error) => Outcome::failed(error),
            }
        }
        Action::UpdateMetadata => {
            let patch = change
                .metadata_patch
                .clone()
                .unwrap_or(Value::Object(Map::new()));
            match client
                .merge_membership_metadata(organization, user, &patch)
                .await
            {
                Ok(_) => Outcome::applied(),
                Err(error) if is_not_found(&error) => recreate(client, change).await,
                Err(error) => Outcome::failed(error),
            }
        }
        Action::Delete => match client.delete_membership(organization, user).await {
            Ok(_) => Outcome::applied(),
            Err(error) if is_not_found(&error) => {
                Outcome::applied_meeting_another_writer("the membership was already gone")
            }
            Err(error) => Outcome::failed(error),
        },
        Action::RevokeInvitation => invitations::revoke(client, change).await,
        // Sent in their own phase, in batches (`invitations::send`).
        Action::Invite => Outcome::Skipped {
            reason: "not sent".to_owned(),
        },
    }
}

fn is_not_found(error: &ClerkError) -> bool {
    error.status() == Some(404) && error.has_code("resource_not_found")
}

/// A metadata object, if the part is managed.
type Part<'a> = Option<&'a Map<String, Value>>;

/// The `public_metadata` and `private_metadata` objects of a create's metadata.
fn parts(metadata: Option<&Value>) -> (Part<'_>, Part<'_>) {
    let part = |name| {
        metadata
            .and_then(|m| m.get(name))
            .and_then(Value::as_object)
    };
    (part("public_metadata"), part("private_metadata"))
}

/// The user is a member already (an earlier attempt took effect, or someone added them):
/// read that membership and bring its role and metadata to what the file declares.
async fn converge_existing(client: &Client, change: &Change) -> Outcome {
    let Some(declared) = &change.declared else {
        return ChangeError::AlreadyMember {
            user_id: change.user_id.clone(),
            organization_id: change.organization_id.clone(),
        }
        .into();
    };
    let (organization, user) = (change.organization_id.as_str(), change.user_id.as_str());
    let page = match client
        .list_organization_memberships(organization, 0, 10, &[user])
        .await
    {
        Ok(page) => page,
        Err(error) => return Outcome::failed(error),
    };
    let current = page
        .data
        .into_iter()
        .find(|m| m.public_user_data.user_id == user)
        .map(Observed::from);
    let Some(current) = current else {
        // Gone again between the two requests: one more create settles it.
        let (public, private) = parts(change.metadata_patch.as_ref());
        return match client
            .create_membership(organization, user, &declared.role, public, private)
            .await
        {
            Ok(_) => Outcome::applied(),
            Err(error) => Outcome::failed(error),
        };
    };
    let follow_ups = converge(
        organization,
        user,
        change.email.clone(),
        declared,
        Some(&current),
    );
    for follow_up in &follow_ups {
        let result = match follow_up.action {
            Action::UpdateRole => client
                .update_membership_role(organization, user, &declared.role)
                .await
                .map(drop),
            Action::UpdateMetadata => match &follow_up.metadata_patch {
                Some(patch) => client
                    .merge_membership_metadata(organization, user, patch)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Action::Create | Action::Delete | Action::Invite | Action::RevokeInvitation => Ok(()),
        };
        if let Err(error) = result {
            return Outcome::failed(error);
        }
    }
    if follow_ups.is_empty() {
        Outcome::applied_meeting_another_writer("already a member as declared")
    } else {
        Outcome::applied_meeting_another_writer(
            "already a member; role and metadata brought to what is declared",
        )
    }
}

/// The membership an update was for is gone: create it as the file declares it.
async fn recreate(client: &Client, change: &Change) -> Outcome {
    let Some(declared) = &change.declared else {
        return ChangeError::Gone {
            user_id: change.user_id.clone(),
            organization_id: change.organization_id.clone(),
        }
        .into();
    };
    let create = converge(
        &change.organization_id,
        &change.user_id,
        change.email.clone(),
        declared,
        None,
    );
    let Some(create) = create.first() else {
        return Outcome::applied();
    };
    match Box::pin(run_change(client, create)).await {
        Outcome::Applied { .. } => Outcome::applied_meeting_another_writer(
            "the membership was gone; created it as declared",
        ),
        other => other,
    }
}
