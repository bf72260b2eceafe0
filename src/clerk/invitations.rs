//! Reading the pending invitations of the organizations that send invitations (docs/invitations.md: "Onboarding
//! people who have no account yet"): through the instance-wide listing or organization by
//! organization, whichever needs fewer requests, and never for an organization that does not send
//! invitations.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use super::{ClerkError, Client, Invitation, InvitationPage, PAGE_LIMIT};
use crate::desired::Role;
use crate::plan::ObservedInvitation;

impl From<Invitation> for ObservedInvitation {
    fn from(invitation: Invitation) -> ObservedInvitation {
        ObservedInvitation {
            id: invitation.id,
            email: invitation.email_address.to_lowercase(),
            role: Role::observed(&invitation.role),
            public_metadata: invitation.public_metadata.unwrap_or_default().into(),
            private_metadata: invitation.private_metadata.unwrap_or_default().into(),
        }
    }
}

/// Reads of one organization's own listing before its invitations count as unsettled.
const ATTEMPTS: usize = 3;

/// The pending invitations read, by organization ID.
#[derive(Debug, Default)]
pub struct PendingInvitations {
    pub by_organization: HashMap<String, Vec<Invitation>>,
    /// Organizations whose invitations kept changing while they were read: no revocation is
    /// planned in them this run.
    pub unsettled: Vec<String>,
    /// Requests the read took.
    pub requests: u64,
}

/// Reads the pending invitations of `organizations` (IDs). None: no request at all.
pub async fn read_invitations(
    client: &Client,
    organizations: &[String],
) -> Result<PendingInvitations, ClerkError> {
    let mut read = PendingInvitations::default();
    if organizations.is_empty() {
        return Ok(read);
    }
    let wanted: HashSet<&str> = organizations.iter().map(String::as_str).collect();
    if organizations.len() > 1 {
        // No write of this process moves the instance listing while it is read.
        let _listing = client.shared.own_writes.listing().await;
        // One request tells how many pages the instance listing has; per organization it
        // takes at least one request each.
        let first = client.list_instance_invitations(0, PAGE_LIMIT).await?;
        read.requests += 1;
        if pages(first.total_count) <= organizations.len() as u64 {
            let (invitations, requests, settled) = rest_of_instance(client, first).await?;
            read.requests += requests;
            if settled {
                for id in organizations {
                    read.by_organization.entry(id.clone()).or_default();
                }
                for invitation in invitations {
                    if let Some(organization) = invitation.organization()
                        && wanted.contains(organization)
                    {
                        read.by_organization
                            .entry(organization.to_owned())
                            .or_default()
                            .push(invitation);
                    }
                }
                return Ok(read);
            }
            tracing::info!(
                "the instance's invitations changed while they were read; reading each organization's own"
            );
        }
    }
    let concurrency = client.config().concurrency as usize;
    let per_organization: Vec<(String, Option<Vec<Invitation>>, u64)> =
        stream::iter(organizations.iter().cloned())
            .map(|id| async move {
                let (invitations, requests) = read_organization(client, &id).await?;
                Ok::<_, ClerkError>((id, invitations, requests))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    for (id, invitations, requests) in per_organization {
        read.requests += requests;
        match invitations {
            Some(invitations) => {
                read.by_organization.insert(id, invitations);
            }
            None => {
                tracing::warn!(organization = %id, "its pending invitations kept changing while they were read; no invitation is revoked in it this run");
                read.by_organization.insert(id.clone(), Vec::new());
                read.unsettled.push(id);
            }
        }
    }
    read.unsettled.sort();
    Ok(read)
}

fn pages(count: u64) -> u64 {
    count.div_ceil(PAGE_LIMIT).max(1)
}

/// The instance listing after its first page; whether every page agreed.
async fn rest_of_instance(
    client: &Client,
    first: InvitationPage,
) -> Result<(Vec<Invitation>, u64, bool), ClerkError> {
    let total = first.total_count;
    let mut invitations = first.data;
    let mut requests = 0;
    let mut settled = true;
    for page in 1..pages(total) {
        let next = client
            .list_instance_invitations(page * PAGE_LIMIT, PAGE_LIMIT)
            .await?;
        requests += 1;
        settled &= next.total_count == total;
        invitations.extend(next.data);
    }
    let settled = settled && holds_still(&invitations, total);
    Ok((invitations, requests, settled))
}

/// Whether a listing's rows are exactly its total, each once.
fn holds_still(invitations: &[Invitation], total: u64) -> bool {
    let distinct: HashSet<&str> = invitations.iter().map(|i| i.id.as_str()).collect();
    distinct.len() == invitations.len() && invitations.len() as u64 == total
}

/// One organization's pending invitations (`None`: they kept changing), and the requests it
/// took.
async fn read_organization(
    client: &Client,
    id: &str,
) -> Result<(Option<Vec<Invitation>>, u64), ClerkError> {
    let mut requests = 0;
    for _ in 0..ATTEMPTS {
        let first = client
            .list_organization_invitations(id, 0, PAGE_LIMIT, None)
            .await?;
        requests += 1;
        let total = first.total_count;
        let mut invitations = first.data;
        let mut settled = true;
        for page in 1..pages(total) {
            let next = client
                .list_organization_invitations(id, page * PAGE_LIMIT, PAGE_LIMIT, None)
                .await?;
            requests += 1;
            settled &= next.total_count == total;
            invitations.extend(next.data);
        }
        if settled && holds_still(&invitations, total) {
            return Ok((Some(invitations), requests));
        }
    }
    Ok((None, requests))
}

/// An organization's pending invitations (only those to `email`, when given).
pub async fn pending_invitations(
    client: &Client,
    organization_id: &str,
    email: Option<&str>,
) -> Result<Vec<ObservedInvitation>, ClerkError> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = client
            .list_organization_invitations(organization_id, offset, PAGE_LIMIT, email)
            .await?;
        let count = page.data.len() as u64;
        all.extend(page.data.into_iter().map(ObservedInvitation::from));
        offset += count;
        if count == 0 || offset >= page.total_count {
            return Ok(all);
        }
    }
}
