//! The organizations and users the files name, looked up in Clerk: slugs one by one, IDs and
//! emails 100 per request.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use crate::clerk::{ClerkError, Client, FILTER_LIMIT, Organization, User};
use crate::desired::OrgRef;

/// The organizations the file names, as found in Clerk.
#[derive(Debug, Default)]
pub struct OrgLookup {
    /// Found organizations by the reference the file uses.
    pub found: HashMap<OrgRef, Organization>,
    /// References that name no organization.
    pub missing: Vec<OrgRef>,
}

/// Looks up slugs one by one (`GET /organizations/{slug}`) and, when `ids_too`, IDs in
/// batches of 100 (`GET /organizations?organization_id=…`). A 404 marks the reference missing.
pub async fn resolve_organizations(
    client: &Client,
    refs: &[OrgRef],
    ids_too: bool,
) -> Result<OrgLookup, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let slugs: Vec<&OrgRef> = refs
        .iter()
        .filter(|r| matches!(r, OrgRef::Slug(_)))
        .collect();
    let mut lookup = OrgLookup::default();
    let found: Vec<(OrgRef, Option<Organization>)> = stream::iter(slugs)
        .map(|reference| async move {
            match client.get_organization(reference.as_str()).await {
                Ok(organization) => Ok((reference.clone(), Some(organization))),
                Err(error) if error.status() == Some(404) => Ok((reference.clone(), None)),
                Err(error) => Err(error),
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    for (reference, organization) in found {
        // Learnt for the daemon, which matches webhook events to slugs through it.
        let slugs = &client.shared.slugs;
        slugs.learn(
            reference.as_str(),
            organization.as_ref().map(|o| o.id.as_str()),
        );
        match organization {
            Some(organization) => {
                lookup.found.insert(reference, organization);
            }
            None => lookup.missing.push(reference),
        }
    }
    if ids_too {
        let ids: Vec<&str> = refs
            .iter()
            .filter(|r| matches!(r, OrgRef::Id(_)))
            .map(OrgRef::as_str)
            .collect();
        let organizations = lookup_ids(client, &ids).await?;
        for id in ids {
            match organizations.get(id) {
                Some(organization) => {
                    lookup
                        .found
                        .insert(OrgRef::Id(id.to_owned()), organization.clone());
                }
                None => lookup.missing.push(OrgRef::Id(id.to_owned())),
            }
        }
    }
    lookup.missing.sort();
    Ok(lookup)
}

/// Organizations by ID, in batches of 100.
pub(in crate::clerk) async fn lookup_ids(
    client: &Client,
    ids: &[&str],
) -> Result<HashMap<String, Organization>, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let batches: Vec<Vec<Organization>> = stream::iter(ids.chunks(FILTER_LIMIT))
        .map(|chunk| async move { client.list_organizations(chunk).await.map(|page| page.data) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(batches
        .into_iter()
        .flatten()
        .map(|org| (org.id.clone(), org))
        .collect())
}

/// Resolves emails (lower-cased) to users, 100 per request; emails with no user are absent.
pub async fn resolve_emails(
    client: &Client,
    emails: &[String],
) -> Result<HashMap<String, User>, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let wanted: HashSet<&str> = emails.iter().map(String::as_str).collect();
    let batches: Vec<Vec<User>> = stream::iter(emails.chunks(FILTER_LIMIT))
        .map(|chunk| async move {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            client.list_users_by_email(&chunk).await
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut users = HashMap::new();
    for user in batches.into_iter().flatten() {
        for address in &user.email_addresses {
            let email = address.email_address.to_lowercase();
            if wanted.contains(email.as_str()) {
                users.insert(email, user.clone());
            }
        }
    }
    Ok(users)
}
