//! Which organization a verified event asks the daemon to reconcile. Events are matched by
//! organization ID: a file entry keyed by slug stands for the organization that slug leads to
//! now (resolved through Clerk, learnt from every cycle's lookups, corrected by
//! `organization.updated` events), never for the slug an event carries. So an event whose ID
//! is not a managed organization is ignored whatever slug it carries — a late redelivery after
//! a rename, say — and the reconcile plans the organization from the listing of its own ID.

use futures::{StreamExt, TryStreamExt, stream};

use super::{Event, Family};
use crate::clerk::{self, ClerkError, Client};
use crate::desired::{DesiredState, Managed, OrgRef};

/// An organization to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    /// The slug the files name it by (a key or an `except` entry), when they do.
    pub slug: Option<String>,
}

/// What the event says of organizations' slugs: a created or renamed organization's slug leads
/// to its ID; a deleted organization's slugs lead nowhere.
pub fn learn(client: &Client, event: &Event) {
    let slugs = &client.shared().slugs;
    match (
        event.kind.as_str(),
        event.organization_id.as_deref(),
        event.slug.as_deref(),
    ) {
        ("organization.created" | "organization.updated", Some(id), Some(slug)) => {
            slugs.learn(slug, Some(id));
        }
        ("organization.deleted", Some(id), _) => slugs.forget(id),
        _ => {}
    }
}

/// The organization the files act on for this event: a membership event of a managed
/// organization, an invitation event where invitations are sent, `organization.created` where
/// `all_organizations` applies, `organization.updated` where the files declare the
/// organization's own fields and `organizationDomain.*` where they declare its domains. `None` when the files do not act on it (no reconcile).
pub async fn target(
    client: &Client,
    desired: &DesiredState,
    event: &Event,
) -> Result<Option<Target>, ClerkError> {
    let Some(id) = event.organization_id.as_deref() else {
        return Ok(None);
    };
    if event.family() == Family::Other {
        return Ok(None);
    }
    let slug = slug_of(client, desired, id).await?;
    let acts = match (event.family(), desired.manages(id, slug.as_deref())) {
        (Family::Membership, Some(_)) => true,
        (Family::Invitation, Some(managed)) => desired.sends_invitations(managed),
        (Family::OrganizationCreated, Some(Managed::Rule)) => true,
        (Family::OrganizationUpdated, Some(Managed::Named { index, .. })) => desired.organizations
            [index]
            .fields
            .as_ref()
            .is_some_and(|fields| fields.declares_fields()),
        (Family::Domain, Some(Managed::Named { index, .. })) => desired.organizations[index]
            .fields
            .as_ref()
            .is_some_and(|fields| fields.domains.is_some()),
        _ => false,
    };
    Ok(acts.then(|| Target {
        id: id.to_owned(),
        slug,
    }))
}

/// The slug by which the files name organization `id` (an organization key or an `except`
/// entry), if any slug of theirs leads to it now.
async fn slug_of(
    client: &Client,
    desired: &DesiredState,
    id: &str,
) -> Result<Option<String>, ClerkError> {
    let mut slugs: Vec<&str> = desired
        .organizations
        .iter()
        .map(|o| &o.key)
        .chain(
            desired
                .all_organizations
                .iter()
                .flat_map(|r| r.except.iter()),
        )
        .filter_map(|reference| match reference {
            OrgRef::Slug(slug) => Some(slug.as_str()),
            OrgRef::Id(_) => None,
        })
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    let concurrency = client.config().concurrency as usize;
    let resolved: Vec<(&str, Option<String>)> = stream::iter(slugs)
        .map(|slug| async move {
            clerk::organization_id(client, slug)
                .await
                .map(|found| (slug, found))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(resolved
        .into_iter()
        .find(|(_, found)| found.as_deref() == Some(id))
        .map(|(slug, _)| slug.to_owned()))
}
