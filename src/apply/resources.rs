//! Running the changes that are not memberships: the instance's (permissions, roles, role sets)
//! in their steps before and after the organizations, and an organization's own (its fields,
//! its domains) before its memberships. Each kind sends its own requests ([`run_change`]);
//! everything else — the order, the outcomes, the logs and metrics — is shared.

use futures::StreamExt;
use futures::stream;
use tracing::Instrument;

use super::outcome::Done;
use super::{OnDone, Outcome, not_to_start};
use crate::clerk::Client;
use crate::plan::{AnyChange, Resource, ResourceChange};

/// Runs instance-wide changes (already in run order) step by step; the changes of one step
/// run together, up to `parallel` at a time. Returns their outcomes in the same order.
pub(super) async fn run_steps(
    client: &Client,
    changes: &[&ResourceChange],
    parallel: usize,
    on_done: OnDone<'_>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; changes.len()];
    let mut start = 0;
    while start < changes.len() {
        let step = changes[start].step();
        let end = changes[start..]
            .iter()
            .position(|c| c.step() != step)
            .map_or(changes.len(), |offset| start + offset);
        let done: Vec<(usize, Outcome)> = stream::iter(start..end)
            .map(|index| async move { (index, run_one(client, changes[index]).await.outcome) })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        for (index, outcome) in done {
            outcomes[index] = Some(outcome);
        }
        start = end;
    }
    changes
        .iter()
        .zip(outcomes)
        .map(|(change, outcome)| {
            let outcome = outcome.unwrap_or_else(not_sent);
            finished(change, &outcome, on_done);
            outcome
        })
        .collect()
}

/// Runs an organization's own changes in order. Returns their outcomes and the ID of the
/// organization when a change of them created it.
pub(super) async fn run_own(
    client: &Client,
    changes: &[ResourceChange],
    on_done: OnDone<'_>,
) -> (Vec<Outcome>, Option<String>) {
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut created = None;
    for change in changes {
        let mut change = change.clone();
        if let Some(id) = &created
            && change.organization_id.as_deref().is_none_or(str::is_empty)
        {
            change.organization_id = Some(String::clone(id));
        }
        let done = run_one(client, &change).await;
        created = created.or(done.created_id);
        finished(&change, &done.outcome, on_done);
        outcomes.push(done.outcome);
    }
    (outcomes, created)
}

/// Runs one change, in a span naming it.
async fn run_one(client: &Client, change: &ResourceChange) -> Done {
    if let Some(outcome) = not_to_start(client) {
        return outcome.into();
    }
    let span = tracing::info_span!("change", resource = change.resource.name(), action = change.action.name(), key = %change.key);
    run_change(client, change).instrument(span).await
}

/// Sends the requests of one change, turning the idempotent cases into success. Each kind
/// has its own arm; a kind this build does not write yet is reported as not sent.
async fn run_change(client: &Client, change: &ResourceChange) -> Done {
    match change.resource {
        Resource::Permission | Resource::Role | Resource::RoleSet => {
            super::authorization::run(client, change).await
        }
        Resource::Organization | Resource::Domain => {
            super::organizations::run(client, change).await
        }
        Resource::Membership | Resource::Invitation => unsupported(client, change),
    }
}

/// The outcome of a change of a kind this build cannot write: skipped, nothing sent.
fn unsupported(_client: &Client, change: &ResourceChange) -> Done {
    Outcome::Skipped {
        reason: format!(
            "not sent: this build of membersync cannot apply {} changes",
            change.resource
        ),
    }
    .into()
}

fn not_sent() -> Outcome {
    Outcome::Skipped {
        reason: "not sent".to_owned(),
    }
}

/// Logs a change's outcome, counts it, and tells `on_done`.
fn finished(change: &ResourceChange, outcome: &Outcome, on_done: OnDone<'_>) {
    super::count_outcome(AnyChange::Resource(change), outcome);
    let (resource, action, key) = (change.resource.name(), change.action.name(), &change.key);
    match outcome {
        Outcome::Applied { note } => tracing::info!(
            resource, action, key = %key, outcome = "applied",
            note = note.as_deref().unwrap_or_default(), "change applied"
        ),
        Outcome::Failed { error } => tracing::warn!(
            resource, action, key = %key, outcome = "failed", error = %error, "change failed"
        ),
        Outcome::Skipped { reason } | Outcome::Deferred { reason } => tracing::warn!(
            resource, action, key = %key, outcome = "skipped", reason = %reason, "change skipped"
        ),
    }
    on_done(AnyChange::Resource(change), outcome);
}
