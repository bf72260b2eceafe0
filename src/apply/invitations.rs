//! Sending and revoking invitations (docs/invitations.md: "Onboarding people who have no account yet"). Several
//! invitations to one organization go through the bulk endpoint, 10 per request. A bulk request
//! Clerk refuses is not retried as a whole: the organization's pending invitations are read again
//! and the rest are sent one by one, so that one bad address costs only itself. Once Clerk's own
//! invitation limit asks for a longer wait than a run makes, the invitations not yet sent are
//! deferred to the next run.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, stream};
use serde_json::{Value, json};

use super::{ChangeError, Outcome, is_not_found, parts};
use crate::clerk::{ClerkError, Client, NOT_SENT_DEFERRED, pending_invitations};
use crate::plan::{Change, ObservedInvitation, OrganizationPlan, invitation_in_sync};

/// The most invitations one bulk request carries (the spec's `maxItems`).
pub const BULK_LIMIT: usize = 10;

/// Sends the invitations at `indices` of `organization.changes`.
pub(super) async fn send(
    client: &Client,
    organization: &OrganizationPlan,
    indices: &[usize],
    deferred: &AtomicBool,
    parallel: usize,
) -> Vec<(usize, Outcome)> {
    let id = organization.organization_id.as_str();
    let bodies: Vec<(usize, Value)> = indices
        .iter()
        .map(|&index| (index, body(organization, &organization.changes[index])))
        .collect();
    if bodies.len() == 1 {
        let (index, body) = &bodies[0];
        let change = &organization.changes[*index];
        return vec![(*index, single(client, id, change, body, deferred).await)];
    }
    let batches: Vec<&[(usize, Value)]> = bodies.chunks(BULK_LIMIT).collect();
    stream::iter(batches)
        .map(|batch| bulk(client, organization, batch, deferred))
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The request body of one invitation: email, role, declared metadata, and the organization's
/// invitation settings.
fn body(organization: &OrganizationPlan, change: &Change) -> Value {
    let mut body = json!({
        "email_address": change.email.as_deref().unwrap_or_default(),
        "role": change.role.as_deref().unwrap_or(crate::desired::Role::MEMBER),
    });
    let (public, private) = parts(change.metadata_patch.as_ref());
    if let Some(public) = public {
        body["public_metadata"] = Value::Object(public.clone());
    }
    if let Some(private) = private {
        body["private_metadata"] = Value::Object(private.clone());
    }
    if let Some(settings) = &organization.invitations {
        if let Some(url) = &settings.redirect_url {
            body["redirect_url"] = json!(url);
        }
        if let Some(days) = settings.expires_in_days {
            body["expires_in_days"] = json!(days);
        }
    }
    body
}

fn deferred_outcome() -> Outcome {
    Outcome::Deferred {
        reason: NOT_SENT_DEFERRED.to_owned(),
    }
}

/// One bulk request; if Clerk refuses it, each invitation on its own.
async fn bulk(
    client: &Client,
    organization: &OrganizationPlan,
    batch: &[(usize, Value)],
    deferred: &AtomicBool,
) -> Vec<(usize, Outcome)> {
    let id = organization.organization_id.as_str();
    let all = |outcome: Outcome| -> Vec<(usize, Outcome)> {
        batch
            .iter()
            .map(|(index, _)| (*index, outcome.clone()))
            .collect()
    };
    if deferred.load(Ordering::SeqCst) {
        return all(deferred_outcome());
    }
    if let Some(outcome) = super::not_to_start(client) {
        return all(outcome);
    }
    let bodies: Vec<Value> = batch.iter().map(|(_, body)| body.clone()).collect();
    let error = match client.create_invitations(id, &bodies).await {
        Ok(_) => return all(Outcome::applied()),
        Err(ClerkError::Deferred { .. }) => {
            deferred.store(true, Ordering::SeqCst);
            return all(deferred_outcome());
        }
        Err(error) if !matches!(error.status(), Some(400..=499)) || client.is_stopped() => {
            return all(Outcome::failed(error));
        }
        Err(error) => error,
    };
    // Whether one bad address fails the whole request is not documented: assume it does,
    // see what did get created, and send the rest one by one.
    tracing::warn!(organization = %id, %error, "Clerk refused a bulk invitation request; sending its invitations one by one");
    let pending = match pending_invitations(client, id, None).await {
        Ok(pending) => pending,
        Err(error) => return all(Outcome::failed(error)),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for (index, body) in batch {
        let change = &organization.changes[*index];
        let outcome = if invited_as_declared(change, &pending) {
            Outcome::applied_with("invited as declared")
        } else {
            single(client, id, change, body, deferred).await
        };
        outcomes.push((*index, outcome));
    }
    outcomes
}

/// One invitation through the single endpoint, with the idempotent cases.
async fn single(
    client: &Client,
    organization_id: &str,
    change: &Change,
    body: &Value,
    deferred: &AtomicBool,
) -> Outcome {
    if deferred.load(Ordering::SeqCst) {
        return deferred_outcome();
    }
    if let Some(outcome) = super::not_to_start(client) {
        return outcome;
    }
    match client.create_invitation(organization_id, body).await {
        Ok(_) => Outcome::applied(),
        Err(ClerkError::Deferred { .. }) => {
            deferred.store(true, Ordering::SeqCst);
            deferred_outcome()
        }
        Err(error) if error.has_code("organization_invitation_not_unique") => {
            match pending_invitations(client, organization_id, change.email.as_deref()).await {
                Ok(pending) if invited_as_declared(change, &pending) => {
                    Outcome::applied_with("already invited as declared")
                }
                Ok(_) => ChangeError::OtherInvitationPending(error).into(),
                Err(error) => Outcome::failed(error),
            }
        }
        Err(error) if error.has_code("already_a_member_in_organization") => Outcome::applied_with(
            "already a member (they signed up); the next run manages the membership",
        ),
        Err(error) => Outcome::failed(error),
    }
}

/// Revokes one pending invitation; one already gone counts as revoked.
pub(super) async fn revoke(client: &Client, change: &Change) -> Outcome {
    let organization = change.organization_id.as_str();
    let Some(invitation) = change.invitation_id.as_deref() else {
        return ChangeError::NoInvitation.into();
    };
    match client.revoke_invitation(organization, invitation).await {
        Ok(_) => Outcome::applied(),
        Err(error) if is_not_found(&error) => {
            Outcome::applied_with("the invitation was already gone")
        }
        Err(error @ ClerkError::Deferred { .. }) => Outcome::Deferred {
            reason: error.to_string(),
        },
        Err(error) => Outcome::failed(error),
    }
}

/// Whether one of `pending` invites this change's email as it declares.
fn invited_as_declared(change: &Change, pending: &[ObservedInvitation]) -> bool {
    let (Some(email), Some(declared)) = (change.email.as_deref(), change.declared.as_ref()) else {
        return false;
    };
    pending
        .iter()
        .any(|invitation| invitation.email == email && invitation_in_sync(declared, invitation))
}
