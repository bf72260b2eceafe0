//! Writing an organization's own changes (docs/organizations.md: "Onboarding a customer organization in one
//! pull request"): its create (one `POST /organizations`), the update of its fields (one
//! `PATCH /organizations/{id}`), its metadata (the merge patch), and its domains (create,
//! enrollment mode change, delete). Organizations are never deleted.
//!
//! Idempotent like the memberships: a create that finds its slug taken by an organization of
//! the declared name (an earlier attempt of this run that took effect) converges on it; a
//! domain that is already there, or already gone, is done.

use serde_json::{Map, Value};

use super::Outcome;
use super::outcome::Done;
use crate::clerk::{ClerkError, Client};
use crate::plan::metadata::parts_patch;
use crate::plan::{Resource, ResourceAction, ResourceChange};

/// Sends the requests of one organization or domain change.
pub(super) async fn run(client: &Client, change: &ResourceChange) -> Done {
    let organization_id = change.organization_id.as_deref().unwrap_or_default();
    if organization_id.is_empty() && change.action != ResourceAction::Create
        || organization_id.is_empty() && change.resource == Resource::Domain
    {
        return Outcome::Skipped {
            reason: format!(
                "not sent: the organization of {} was not created",
                change.key
            ),
        }
        .into();
    }
    let empty = Map::new();
    let after = change.after.as_ref().unwrap_or(&empty);
    match (change.resource, change.action) {
        (Resource::Organization, ResourceAction::Create) => create(client, change, after).await,
        (Resource::Organization, ResourceAction::Update) => {
            let result = client.update_organization(organization_id, after).await;
            done(result.map(drop))
        }
        (Resource::Organization, ResourceAction::UpdateMetadata) => {
            let before = change.before.as_ref().unwrap_or(&empty);
            match metadata_patch(before, after) {
                Some(patch) => done(
                    client
                        .merge_organization_metadata(organization_id, &patch)
                        .await
                        .map(drop),
                ),
                None => Outcome::applied_with("already as declared").into(),
            }
        }
        (Resource::Domain, action) => domain(client, change, organization_id, action).await,
        _ => Outcome::Skipped {
            reason: format!(
                "not sent: organizations are never {}d",
                change.action.name()
            ),
        }
        .into(),
    }
}

fn done(result: Result<(), ClerkError>) -> Done {
    match result {
        Ok(()) => Outcome::applied().into(),
        Err(error) => Outcome::failed(error).into(),
    }
}

/// `POST /organizations` with the body the plan carries; the new ID is handed on to the
/// organization's other changes and its memberships.
async fn create(client: &Client, change: &ResourceChange, body: &Map<String, Value>) -> Done {
    match client.create_organization(body).await {
        Ok(created) => Done {
            outcome: Outcome::applied(),
            created_id: Some(created.id),
        },
        Err(error) if error.has_code("form_identifier_exists") => {
            converge_create(client, change, body, error).await
        }
        Err(error) => Outcome::failed(error).into(),
    }
}

/// The slug was taken between the plan and the create: by this organization when an earlier
/// attempt took effect (same name), otherwise by someone else, and the change fails.
async fn converge_create(
    client: &Client,
    change: &ResourceChange,
    body: &Map<String, Value>,
    error: ClerkError,
) -> Done {
    let name = body.get("name").and_then(Value::as_str);
    match client.get_organization(&change.key).await {
        Ok(existing) if existing.name.as_deref() == name => Done {
            outcome: Outcome::applied_meeting_another_writer(
                "an organization of this slug and name already exists",
            ),
            created_id: Some(existing.id),
        },
        _ => Outcome::failed(error).into(),
    }
}

/// The metadata merge patch that turns `before` into `after` (each holding the metadata parts
/// that change, whole); `None` when they agree.
fn metadata_patch(before: &Map<String, Value>, after: &Map<String, Value>) -> Option<Value> {
    let part = |map: &Map<String, Value>, name: &str| -> Option<Map<String, Value>> {
        map.get(name).and_then(Value::as_object).cloned()
    };
    let (public, private) = (
        part(after, "public_metadata"),
        part(after, "private_metadata"),
    );
    let (had_public, had_private) = (
        part(before, "public_metadata").unwrap_or_default(),
        part(before, "private_metadata").unwrap_or_default(),
    );
    parts_patch(
        [
            (public.as_ref(), &had_public),
            (private.as_ref(), &had_private),
        ],
        true,
    )
}

/// A domain's create, enrollment mode change or delete.
async fn domain(
    client: &Client,
    change: &ResourceChange,
    organization_id: &str,
    action: ResourceAction,
) -> Done {
    let mode = change
        .after_field("enrollment_mode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = change.id.as_deref().unwrap_or_default();
    let result = match action {
        ResourceAction::Create => {
            match client
                .create_domain(organization_id, &change.key, mode)
                .await
            {
                Err(error) if error.has_code("form_identifier_exists") => {
                    return Outcome::applied_meeting_another_writer(
                        "the organization already has this domain",
                    )
                    .into();
                }
                result => result.map(drop),
            }
        }
        ResourceAction::Update => client
            .update_domain(organization_id, id, mode)
            .await
            .map(drop),
        ResourceAction::Delete => match client.delete_domain(organization_id, id).await {
            Err(error) if error.status() == Some(404) => {
                return Outcome::applied_meeting_another_writer("already gone").into();
            }
            result => result,
        },
        _ => {
            return Outcome::Skipped {
                reason: format!("not sent: a domain cannot be {}", action.name()),
            }
            .into();
        }
    };
    done(result)
}
