//! Reading live state: organizations named by the file, users named by email, and the
//! memberships of the managed organizations — in as few requests as the API allows.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use super::{ClerkError, Client, FILTER_LIMIT, Membership, Organization, PAGE_LIMIT, User};
use crate::desired::OrgRef;
use crate::plan::Observed;

/// Memberships by organization as pages arrive: only managed organizations are kept, each
/// membership reduced to what the planner needs.
#[derive(Default)]
struct Collected {
    memberships: HashMap<String, Vec<Observed>>,
    slugs: HashMap<String, String>,
}

impl Collected {
    fn keep(&mut self, membership: Membership) {
        let organization = membership.organization.id.clone();
        if let Some(slug) = &membership.organization.slug
            && !self.slugs.contains_key(&organization)
        {
            self.slugs.insert(organization.clone(), slug.clone());
        }
        self.memberships
            .entry(organization)
            .or_default()
            .push(Observed::from(membership));
    }

    /// One membership per user and organization: a page read twice (offsets shifted) must
    /// not count a member twice.
    fn finish(mut self) -> Collected {
        for members in self.memberships.values_mut() {
            members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
            members.dedup_by(|a, b| a.user_id == b.user_id);
            members.shrink_to_fit();
        }
        self
    }
}

/// The organizations the file names, as found in Clerk.
#[derive(Debug, Default)]
pub struct OrgLookup {
    /// Found organizations by the reference the file uses.
    pub found: HashMap<OrgRef, Organization>,
    /// References that name no organization.
    pub missing: Vec<OrgRef>,
}

/// How the memberships were listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingStrategy {
    /// `GET /organization_memberships`, every page, keeping the managed organizations'.
    Instance,
    /// `GET /organizations/{id}/memberships` for each managed organization.
    PerOrganization,
}

/// The live memberships of the managed organizations, kept in the compact form the planner
/// needs (the rest of each membership is dropped as pages arrive).
#[derive(Debug, Default)]
pub struct LiveState {
    /// Memberships by organization ID (every managed, existing organization has an entry),
    /// one per user.
    pub memberships: HashMap<String, Vec<Observed>>,
    /// Organization slugs seen in the listing, by ID (for display).
    pub slugs: HashMap<String, String>,
    pub strategy: Option<ListingStrategy>,
    /// Memberships in the whole instance, as the first instance page reported.
    pub instance_total: u64,
}

fn pages(count: u64) -> u64 {
    count.div_ceil(PAGE_LIMIT)
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
async fn lookup_ids(
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

/// Lists the memberships of the organizations in `managed` (by ID; values are member counts
/// when already known, from a slug lookup). Chooses the listing that needs fewer requests.
/// Returns the live state, and the IDs that turned out not to exist.
pub async fn read_memberships(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
) -> Result<(LiveState, Vec<String>), ClerkError> {
    let first = client.list_instance_memberships(0, PAGE_LIMIT).await?;
    let instance_total = first.total_count;
    let instance_pages_left = pages(instance_total).saturating_sub(1);

    let mut counts: HashMap<String, u64> = managed
        .iter()
        .filter_map(|(id, count)| count.map(|c| (id.clone(), c)))
        .collect();
    let unknown: Vec<&str> = managed
        .keys()
        .filter(|id| !counts.contains_key(*id))
        .map(String::as_str)
        .collect();
    let lookup_cost = unknown.len().div_ceil(FILTER_LIMIT) as u64;
    let known_cost: u64 = counts.values().map(|&c| pages(c)).sum();
    let mut missing = Vec::new();

    // Per-organization listing can only win if its likely cheapest case (every managed
    // organization has at least one member, as listed ones do) beats the instance pages.
    let unknown_cost = unknown.len() as u64;
    let per_org = if instance_pages_left > 0
        && lookup_cost + known_cost + unknown_cost < instance_pages_left
    {
        let organizations = lookup_ids(client, &unknown).await?;
        for id in &unknown {
            match organizations.get(*id) {
                Some(org) => {
                    counts.insert((*id).to_owned(), org.members_count.unwrap_or(u64::MAX / 2));
                }
                None => missing.push((*id).to_owned()),
            }
        }
        let cost: u64 = counts.values().map(|&c| pages(c)).sum();
        cost < instance_pages_left
    } else {
        false
    };

    let mut state = LiveState {
        instance_total,
        ..LiveState::default()
    };
    if per_org {
        state.strategy = Some(super::ListingStrategy::PerOrganization);
        let collected = list_per_organization(client, &counts).await?;
        state.memberships = collected.memberships;
        state.slugs = collected.slugs;
    } else {
        state.strategy = Some(super::ListingStrategy::Instance);
        let collected = list_instance(client, managed, first).await?;
        state.memberships = collected.memberships;
        state.slugs = collected.slugs;
        // An organization with no membership in the listing may not exist at all: check
        // those (and only those) so that a typo is reported rather than planned into.
        let unseen: Vec<&str> = managed
            .iter()
            .filter(|(id, count)| {
                count.is_none() && !state.memberships.contains_key(*id) && !missing.contains(*id)
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if !unseen.is_empty() {
            let organizations = lookup_ids(client, &unseen).await?;
            missing.extend(
                unseen
                    .iter()
                    .filter(|id| !organizations.contains_key(**id))
                    .map(|id| (*id).to_owned()),
            );
        }
    }
    for id in managed.keys() {
        if !missing.contains(id) {
            state.memberships.entry(id.clone()).or_default();
        }
    }
    missing.sort();
    Ok((state, missing))
}

/// Every instance page after `first`, fetched concurrently; only managed organizations are
/// kept, one membership per user. If the total changed while reading (offsets shifted), the
/// listing is read again, up to three times.
async fn list_instance(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
    mut first: super::MembershipPage,
) -> Result<Collected, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let mut result = Collected::default();
    for pass in 1..=3 {
        let total = first.total_count;
        let mut collected = Collected::default();
        let mut stable = true;
        let mut keep = |page: super::MembershipPage, stable: &mut bool| {
            if page.total_count != total {
                *stable = false;
            }
            for membership in page.data {
                if managed.contains_key(&membership.organization.id) {
                    collected.keep(membership);
                }
            }
        };
        keep(first, &mut stable);
        let offsets: Vec<u64> = (1..pages(total)).map(|page| page * PAGE_LIMIT).collect();
        let mut pages_stream = stream::iter(offsets)
            .map(|offset| client.list_instance_memberships(offset, PAGE_LIMIT))
            .buffer_unordered(concurrency);
        while let Some(page) = pages_stream.next().await {
            keep(page?, &mut stable);
        }
        drop(pages_stream);
        result = collected;
        if stable || pass == 3 {
            if !stable {
                tracing::warn!(
                    "the instance's memberships kept changing while they were read; the next run will pick up what moved"
                );
            }
            break;
        }
        tracing::info!(
            pass,
            "the instance's memberships changed while they were read; reading them again"
        );
        first = client.list_instance_memberships(0, PAGE_LIMIT).await?;
    }
    Ok(result.finish())
}

/// Every page of each organization, fetched concurrently. The pages a count promises are
/// read first; if a page reports a larger total (the organization grew since it was
/// counted), the missing pages are read too, up to three rounds.
async fn list_per_organization(
    client: &Client,
    counts: &HashMap<String, u64>,
) -> Result<Collected, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let mut collected = Collected::default();
    // Pages read so far, and pages needed, per organization.
    let mut read: HashMap<&str, u64> = HashMap::new();
    let mut needed: HashMap<&str, u64> = counts
        .iter()
        .map(|(id, &count)| (id.as_str(), pages(count)))
        .collect();
    for _round in 0..3 {
        let requests: Vec<(&str, u64)> = needed
            .iter()
            .flat_map(|(&id, &wanted)| {
                let done = read.get(id).copied().unwrap_or(0);
                (done..wanted).map(move |page| (id, page * PAGE_LIMIT))
            })
            .collect();
        if requests.is_empty() {
            break;
        }
        for (id, _) in &requests {
            let wanted = needed[id];
            read.insert(id, wanted);
        }
        let mut pages_stream = stream::iter(requests)
            .map(|(id, offset)| async move {
                (
                    id,
                    client
                        .list_organization_memberships(id, offset, PAGE_LIMIT, &[])
                        .await,
                )
            })
            .buffer_unordered(concurrency);
        while let Some((id, page)) = pages_stream.next().await {
            let page = page?;
            let wanted = needed.entry(id).or_default();
            *wanted = (*wanted).max(pages(page.total_count));
            for membership in page.data {
                collected.keep(membership);
            }
        }
    }
    Ok(collected.finish())
}

/// The roles each of these organizations allows: its role set's roles (`GET /role_sets/{key}`,
/// once per distinct key), or the instance's organization roles (`GET /organization_roles`)
/// for organizations without a role set. Organizations not in `known` are read first, 100 per
/// request.
pub async fn allowed_roles(
    client: &Client,
    organization_ids: &[String],
    known: &HashMap<String, Organization>,
) -> Result<HashMap<String, HashSet<String>>, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let unknown: Vec<&str> = organization_ids
        .iter()
        .filter(|id| !known.contains_key(*id))
        .map(String::as_str)
        .collect();
    let mut organizations = lookup_ids(client, &unknown).await?;
    for id in organization_ids {
        if let Some(organization) = known.get(id) {
            organizations.insert(id.clone(), organization.clone());
        }
    }
    let mut keys: Vec<&str> = organizations
        .values()
        .filter_map(|o| o.role_set_key.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    keys.sort();
    let sets: Vec<(String, HashSet<String>)> = stream::iter(keys)
        .map(|key| async move {
            let set = client.get_role_set(key).await?;
            Ok::<_, ClerkError>((
                key.to_owned(),
                set.roles.into_iter().map(|r| r.key).collect(),
            ))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let sets: HashMap<String, HashSet<String>> = sets.into_iter().collect();
    let instance_roles = if organizations.values().any(|o| o.role_set_key.is_none()) {
        Some(instance_roles(client).await?)
    } else {
        None
    };
    let mut allowed = HashMap::new();
    for id in organization_ids {
        let roles = match organizations.get(id).and_then(|o| o.role_set_key.as_ref()) {
            Some(key) => sets.get(key).cloned(),
            None => instance_roles.clone(),
        };
        if let Some(roles) = roles {
            allowed.insert(id.clone(), roles);
        }
    }
    Ok(allowed)
}

/// Every organization role of the instance, paging `GET /organization_roles`.
async fn instance_roles(client: &Client) -> Result<HashSet<String>, ClerkError> {
    let mut roles = HashSet::new();
    let mut offset = 0;
    loop {
        let page = client.list_organization_roles(offset, PAGE_LIMIT).await?;
        let count = page.data.len() as u64;
        roles.extend(page.data.into_iter().map(|r| r.key));
        offset += count;
        if count == 0 || offset >= page.total_count {
            return Ok(roles);
        }
    }
}

/// Every organization of the instance: the first page, then the rest concurrently.
pub async fn list_every_organization(client: &Client) -> Result<Vec<Organization>, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let first = client.list_all_organizations(0, PAGE_LIMIT).await?;
    let rest: Vec<Vec<Organization>> = stream::iter(1..pages(first.total_count))
        .map(|page| async move {
            client
                .list_all_organizations(page * PAGE_LIMIT, PAGE_LIMIT)
                .await
                .map(|p| p.data)
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let mut seen = HashSet::new();
    Ok(first
        .data
        .into_iter()
        .chain(rest.into_iter().flatten())
        .filter(|o| seen.insert(o.id.clone()))
        .collect())
}
