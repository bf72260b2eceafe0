//! Reading live state: the memberships of the managed organizations, through the instance's
//! listing or each organization's own, whichever needs fewer requests (`choose_listing`), each
//! listing read until it holds still (`listing`); and the organizations and users the files
//! name (`lookup`).

mod listing;
mod lookup;

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt, stream};

use super::{ClerkError, Client, FILTER_LIMIT, Membership, MembershipPage, PAGE_LIMIT};
use crate::desired::Role;
use crate::plan::Observed;
pub(super) use listing::pages;
use listing::{CLOCK_MARGIN_MS, Moved, read_listing};
pub(super) use lookup::lookup_ids;
pub use lookup::{OrgLookup, resolve_emails, resolve_organizations};

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
        let members = self.memberships.entry(organization).or_default();
        if members.len() == members.capacity() {
            // Grow by a quarter, not double: a million memberships in 50,000 organizations
            // would otherwise carry a third of their size as spare capacity.
            members.reserve_exact((members.len() / 4).max(4));
        }
        members.push(Observed::from(membership));
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

/// A live membership reduced to what the planner needs: the user, the email where Clerk's
/// identifier is one, the role (shared) and the metadata (boxed when not empty).
impl From<Membership> for Observed {
    fn from(membership: Membership) -> Observed {
        Observed {
            user_id: membership.public_user_data.user_id.into_boxed_str(),
            email: membership
                .public_user_data
                .identifier
                .filter(|id| id.contains('@'))
                .map(String::into_boxed_str),
            role: Role::observed(&membership.role),
            public_metadata: membership.public_metadata.unwrap_or_default().into(),
            private_metadata: membership.private_metadata.unwrap_or_default().into(),
        }
    }
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
    /// Organizations whose own listing kept changing while it was read (sorted): their view
    /// may lack memberships, so no deletion or demotion may be planned from it.
    pub unsettled: Vec<String>,
}

impl LiveState {
    /// Takes what the per-organization listings read; organizations found gone join `missing`.
    fn take_per_organization(&mut self, read: PerOrganization, missing: &mut Vec<String>) {
        self.strategy = Some(ListingStrategy::PerOrganization);
        self.memberships = read.collected.memberships;
        self.slugs = read.collected.slugs;
        self.unsettled = read.unsettled;
        missing.extend(read.gone);
    }
}

/// Lists the memberships of the organizations in `managed` (by ID; values are member counts
/// when already known, from a slug lookup). Chooses the listing that needs fewer requests
/// (`choose_listing`). Returns the live state, and the IDs that turned out not to exist.
pub async fn read_memberships(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
) -> Result<(LiveState, Vec<String>), ClerkError> {
    // No write of this process moves the listing while it is read (the daemon's webhook
    // reconciles wait).
    let _listing = client.shared.own_writes.listing().await;
    let first = client.list_instance_memberships(0, PAGE_LIMIT).await?;
    let instance_total = first.total_count;
    let instance_pages_left = pages(instance_total).saturating_sub(1);
    let mut missing = Vec::new();
    // The counts of the organizations to read each with its own listing, when that is cheaper.
    let per_organization = match choose_listing(instance_pages_left, managed.values().copied()) {
        Some(ListingStrategy::Instance) => None,
        // The counts not known are looked up (none when every count is known).
        _ => {
            let counts = look_up_counts(client, managed, &mut missing).await?;
            let cheaper = choose_listing(instance_pages_left, counts.values().map(|&c| Some(c)));
            (cheaper == Some(ListingStrategy::PerOrganization)).then_some(counts)
        }
    };
    let mut state = match per_organization {
        Some(counts) => {
            // An organization counted empty needs no read.
            let ids = counts
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(id, _)| id);
            let read = list_per_organization(client, ids.collect()).await?;
            let mut state = LiveState::default();
            state.take_per_organization(read, &mut missing);
            state
        }
        None => read_instance(client, managed, first, instance_pages_left, &mut missing).await?,
    };
    state.instance_total = instance_total;
    for id in managed.keys() {
        if !missing.contains(id) {
            state.memberships.entry(id.clone()).or_default();
        }
    }
    missing.sort();
    Ok((state, missing))
}

/// The cost model: which listing reads the managed organizations in fewer requests, given the
/// pages of the instance's listing left after its first, and each managed organization's
/// member count (`None`: not known). An organization's own listing costs its pages; one whose
/// count is unknown costs at least one page, and knowing it costs a lookup per 100 of them.
/// `None`: the per-organization listing may win, and the unknown counts must be looked up to
/// tell (then asked again, every count known).
fn choose_listing(
    instance_pages_left: u64,
    counts: impl Iterator<Item = Option<u64>>,
) -> Option<ListingStrategy> {
    let (mut known_cost, mut unknown) = (0, 0u64);
    for count in counts {
        match count {
            Some(count) => known_cost += pages(count),
            None => unknown += 1,
        }
    }
    let lookup_cost = unknown.div_ceil(FILTER_LIMIT as u64);
    // Per-organization listing can only win if its likely cheapest case (every managed
    // organization has at least one member, as listed ones do) beats the instance pages.
    if instance_pages_left == 0 || lookup_cost + known_cost + unknown >= instance_pages_left {
        Some(ListingStrategy::Instance)
    } else if unknown > 0 {
        None
    } else {
        Some(ListingStrategy::PerOrganization)
    }
}

/// Every managed organization's member count: as known, or looked up (100 per request, none
/// when every count is known); one whose count Clerk does not give costs as much as it could.
/// Those that do not exist join `missing`.
async fn look_up_counts(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
    missing: &mut Vec<String>,
) -> Result<HashMap<String, u64>, ClerkError> {
    let mut counts: HashMap<String, u64> = managed
        .iter()
        .filter_map(|(id, count)| count.map(|c| (id.clone(), c)))
        .collect();
    let unknown: Vec<&str> = managed
        .iter()
        .filter(|(_, count)| count.is_none())
        .map(|(id, _)| id.as_str())
        .collect();
    let organizations = lookup_ids(client, &unknown).await?;
    for id in unknown {
        match organizations.get(id) {
            Some(org) => {
                counts.insert(id.to_owned(), org.members_count.unwrap_or(u64::MAX / 2));
            }
            None => missing.push(id.to_owned()),
        }
    }
    Ok(counts)
}

/// Reads the instance's listing after `first`, keeping the managed organizations'. When it
/// moved while it was read, reads it once more if that is cheaper and a creation just before
/// the read may explain it, and otherwise each managed organization's own listing.
async fn read_instance(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
    first: MembershipPage,
    instance_pages_left: u64,
    missing: &mut Vec<String>,
) -> Result<LiveState, ClerkError> {
    let mut state = LiveState {
        strategy: Some(ListingStrategy::Instance),
        ..LiveState::default()
    };
    let (mut collected, mut moved) = list_instance(client, managed, first).await?;
    // A membership created just before the read (the `Date` header has whole seconds) looks
    // created meanwhile, as after a large apply: once that doubt has passed, one more read of
    // the instance costs less than every managed organization's own.
    if moved == Some(Moved::CreatedMeanwhile) && managed.len() as u64 > instance_pages_left + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(2 * CLOCK_MARGIN_MS as u64)).await;
        let first = client.list_instance_memberships(0, PAGE_LIMIT).await?;
        (collected, moved) = list_instance(client, managed, first).await?;
    }
    // An organization with no membership in the listing may not exist at all: check those
    // (and only those) so that a typo is reported rather than planned into.
    let unseen: Vec<&str> = managed
        .iter()
        .filter(|(id, count)| {
            count.is_none() && !collected.memberships.contains_key(*id) && !missing.contains(*id)
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
    if moved.is_none() {
        state.memberships = collected.memberships;
        state.slugs = collected.slugs;
        return Ok(state);
    }
    // The listing may have skipped memberships. Each managed organization's own listing is
    // usually small (one page is one consistent read) and, unless it is the organization that
    // changes, holds still.
    tracing::warn!(
        organizations = managed.len(),
        "the instance's memberships changed while they were read; reading the managed organizations one by one"
    );
    drop(collected);
    // Every one, even an organization that looked empty: the view was not to be trusted.
    let ids = managed.keys().filter(|id| !missing.contains(*id));
    let read = list_per_organization(client, ids.collect()).await?;
    state.take_per_organization(read, missing);
    Ok(state)
}

/// Reads these organizations (by ID) each with its own listing: a webhook reconcile of one
/// organization. Returns the live state, and the IDs that do not exist.
pub async fn read_own_listings(
    client: &Client,
    ids: &[String],
) -> Result<(LiveState, Vec<String>), ClerkError> {
    let read = list_per_organization(client, ids.iter().collect()).await?;
    let mut state = LiveState::default();
    let mut missing = Vec::new();
    state.take_per_organization(read, &mut missing);
    for id in ids {
        if !missing.contains(id) {
            state.memberships.entry(id.clone()).or_default();
        }
    }
    Ok((state, missing))
}

/// Reads of one organization's own listing before its memberships count as unsettled.
const ORGANIZATION_ATTEMPTS: usize = 3;

/// Every instance page after `first`; only managed organizations are kept, one membership
/// per user. Also says why the listing did not hold still while it was read, if it did not:
/// a listing that moved may have skipped memberships and must not be planned from.
async fn list_instance(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
    first: MembershipPage,
) -> Result<(Collected, Option<Moved>), ClerkError> {
    let mut collected = Collected::default();
    let moved = read_listing(
        client,
        first,
        |offset| client.list_instance_memberships(offset, PAGE_LIMIT),
        |page| {
            for membership in page.data {
                if managed.contains_key(&membership.organization.id) {
                    collected.keep(membership);
                }
            }
        },
    )
    .await?;
    if let Some(moved) = moved {
        tracing::info!(
            reason = moved.as_str(),
            "the instance's memberships changed while they were read"
        );
    }
    Ok((collected.finish(), moved))
}

/// One organization's memberships as its own listing showed them.
struct OrganizationRead {
    memberships: Vec<Membership>,
    /// Whether every page agreed (same total, every row once): a complete view.
    settled: bool,
}

/// Each organization's own listing (`GET /organizations/{id}/memberships`), organizations
/// concurrently. An organization whose listing moved while it was read is read again, up to
/// [`ORGANIZATION_ATTEMPTS`] times; one that kept moving is reported in `unsettled`. An
/// organization that no longer exists is reported in `gone`.
async fn list_per_organization(
    client: &Client,
    ids: Vec<&String>,
) -> Result<PerOrganization, ClerkError> {
    let concurrency = client.config().concurrency as usize;
    let reads: Vec<(&String, Option<OrganizationRead>)> = stream::iter(ids)
        .map(|id| async move {
            let read = read_organization(client, id).await?;
            Ok::<_, ClerkError>((id, read))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut result = PerOrganization::default();
    for (id, read) in reads {
        let Some(read) = read else {
            result.gone.push(id.clone());
            continue;
        };
        if !read.settled {
            result.unsettled.push(id.clone());
        }
        for membership in read.memberships {
            result.collected.keep(membership);
        }
    }
    result.collected = result.collected.finish();
    result.unsettled.sort();
    Ok(result)
}

/// What [`list_per_organization`] found.
#[derive(Default)]
struct PerOrganization {
    collected: Collected,
    unsettled: Vec<String>,
    gone: Vec<String>,
}

/// Reads every page of one organization (its first page says how many), again while its
/// listing moves. `None`: the organization does not exist (404).
async fn read_organization(
    client: &Client,
    id: &str,
) -> Result<Option<OrganizationRead>, ClerkError> {
    let mut last = None;
    for attempt in 1..=ORGANIZATION_ATTEMPTS {
        let first = match client
            .list_organization_memberships(id, 0, PAGE_LIMIT, &[])
            .await
        {
            Ok(first) => first,
            Err(error) if error.status() == Some(404) => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut memberships: Vec<Membership> = Vec::new();
        let moved = read_listing(
            client,
            first,
            |offset| client.list_organization_memberships(id, offset, PAGE_LIMIT, &[]),
            |page| memberships.extend(page.data),
        )
        .await?;
        let Some(moved) = moved else {
            return Ok(Some(OrganizationRead {
                memberships,
                settled: true,
            }));
        };
        tracing::info!(
            organization = id,
            attempt,
            reason = moved.as_str(),
            "the organization's memberships changed while they were read"
        );
        last = Some(OrganizationRead {
            memberships,
            settled: false,
        });
        if moved == Moved::CreatedMeanwhile && attempt < ORGANIZATION_ATTEMPTS {
            // The creation may have come just before the read; past the clocks' margin, a
            // re-read tells.
            tokio::time::sleep(std::time::Duration::from_millis(2 * CLOCK_MARGIN_MS as u64)).await;
        }
    }
    metrics::counter!(crate::telemetry::names::INCONSISTENT_READS).increment(1);
    tracing::warn!(
        organization = id,
        attempts = ORGANIZATION_ATTEMPTS,
        "the organization's memberships kept changing while they were read; no deletion or demotion is planned in it this run"
    );
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_page_instance_is_read_as_it_is() {
        assert_eq!(
            choose_listing(0, [Some(1)].into_iter()),
            Some(ListingStrategy::Instance)
        );
    }

    #[test]
    fn known_counts_read_per_organization_when_their_pages_are_fewer() {
        // 3 organizations of 600 members: 6 pages, against 9 instance pages left.
        let counts = [Some(600), Some(600), Some(600)];
        assert_eq!(
            choose_listing(9, counts.into_iter()),
            Some(ListingStrategy::PerOrganization)
        );
        // As many pages as the instance's: the instance listing (one consistent view).
        assert_eq!(
            choose_listing(6, counts.into_iter()),
            Some(ListingStrategy::Instance)
        );
    }

    #[test]
    fn unknown_counts_are_looked_up_only_when_the_organizations_could_win() {
        // One known page, two unknown (at least a page each) and one lookup: 4 < 10.
        assert_eq!(choose_listing(10, [Some(10), None, None].into_iter()), None);
        // 150 unknown organizations cost at least 150 pages and 2 lookups: not against 100.
        let many = std::iter::repeat_n(None, 150);
        assert_eq!(choose_listing(100, many), Some(ListingStrategy::Instance));
    }
}
