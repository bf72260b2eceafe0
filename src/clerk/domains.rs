//! Organizations' verified domains (docs/organizations.md: "Organizations and their domains"): the endpoints,
//! and reading the domains of the organizations whose file manages them — through the
//! instance-wide listing or organization by organization, whichever needs fewer requests, and
//! never for an organization whose file does not declare `domains`.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::json;

use super::{ClerkError, Client, Domain, DomainPage, PAGE_LIMIT, Request};

impl Client {
    /// `GET /organization_domains`: a page of every domain of the instance, oldest first.
    pub async fn list_instance_domains(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<DomainPage, ClerkError> {
        self.send(
            Request::get(
                "list_instance_domains",
                &["organization_domains"],
                format!("listing the instance's organization domains (offset {offset})"),
            )
            .page(offset, limit),
        )
        .await
    }

    /// `GET /organizations/{id}/domains`: a page of one organization's domains.
    pub async fn list_organization_domains(
        &self,
        organization_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<DomainPage, ClerkError> {
        self.send(
            Request::get(
                "list_organization_domains",
                &["organizations", organization_id, "domains"],
                format!("listing the domains of {organization_id}"),
            )
            .query("limit", limit)
            .query("offset", offset),
        )
        .await
    }

    /// `POST /organizations/{id}/domains`: a verified domain with its enrollment mode.
    pub async fn create_domain(
        &self,
        organization_id: &str,
        name: &str,
        enrollment_mode: &str,
    ) -> Result<Domain, ClerkError> {
        self.send(Request::post(
            "create_domain",
            &["organizations", organization_id, "domains"],
            json!({ "name": name, "enrollment_mode": enrollment_mode, "verified": true }),
            format!("adding the domain {name} to {organization_id}"),
        ))
        .await
    }

    /// `PATCH /organizations/{id}/domains/{domain_id}`: another enrollment mode.
    pub async fn update_domain(
        &self,
        organization_id: &str,
        domain_id: &str,
        enrollment_mode: &str,
    ) -> Result<Domain, ClerkError> {
        self.send(Request::patch(
            "update_domain",
            &["organizations", organization_id, "domains", domain_id],
            json!({ "enrollment_mode": enrollment_mode }),
            format!("changing the enrollment mode of {domain_id} in {organization_id}"),
        ))
        .await
    }

    /// `DELETE /organizations/{id}/domains/{domain_id}`.
    pub async fn delete_domain(
        &self,
        organization_id: &str,
        domain_id: &str,
    ) -> Result<(), ClerkError> {
        let _: serde_json::Value = self
            .send(Request::delete(
                "delete_domain",
                &["organizations", organization_id, "domains", domain_id],
                format!("deleting the domain {domain_id} of {organization_id}"),
            ))
            .await?;
        Ok(())
    }
}

/// Reads of one organization's own listing before its domains count as unsettled.
const ATTEMPTS: usize = 3;

/// The domains read, by organization ID.
#[derive(Debug, Default)]
pub struct OrganizationDomains {
    /// Every organization asked for has an entry.
    pub by_organization: HashMap<String, Vec<Domain>>,
    /// Organizations whose domains kept changing while they were read: no domain is deleted in
    /// them this run.
    pub unsettled: Vec<String>,
}

/// Reads the domains of `organizations` (IDs). None: no request at all. One organization is
/// read with its own listing; several through one request to the instance's listing, which
/// tells how many pages it has, when those pages are no more than one per organization.
pub async fn read_domains(
    client: &Client,
    organizations: &[String],
) -> Result<OrganizationDomains, ClerkError> {
    let mut read = OrganizationDomains::default();
    if organizations.is_empty() {
        return Ok(read);
    }
    if organizations.len() > 1 {
        let first = client.list_instance_domains(0, PAGE_LIMIT).await?;
        if pages(first.total_count) <= organizations.len() as u64 {
            if let Some(domains) = rest_of_instance(client, first).await? {
                let wanted: HashSet<&str> = organizations.iter().map(String::as_str).collect();
                for id in organizations {
                    read.by_organization.entry(id.clone()).or_default();
                }
                for domain in domains {
                    if wanted.contains(domain.organization_id.as_str()) {
                        read.by_organization
                            .entry(domain.organization_id.clone())
                            .or_default()
                            .push(domain);
                    }
                }
                return Ok(read);
            }
            tracing::info!(
                "the instance's domains changed while they were read; reading each organization's own"
            );
        }
    }
    let concurrency = client.config().concurrency as usize;
    let per_organization: Vec<(String, Option<Vec<Domain>>)> =
        stream::iter(organizations.iter().cloned())
            .map(|id| async move {
                let domains = read_organization(client, &id).await?;
                Ok::<_, ClerkError>((id, domains))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    for (id, domains) in per_organization {
        match domains {
            Some(domains) => {
                read.by_organization.insert(id, domains);
            }
            None => {
                tracing::warn!(organization = %id, "its domains kept changing while they were read; no domain is deleted in it this run");
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

/// The instance listing after its first page; `None` when its pages disagreed.
async fn rest_of_instance(
    client: &Client,
    first: DomainPage,
) -> Result<Option<Vec<Domain>>, ClerkError> {
    let total = first.total_count;
    let mut domains = first.data;
    let mut agreed = true;
    for page in 1..pages(total) {
        let next = client
            .list_instance_domains(page * PAGE_LIMIT, PAGE_LIMIT)
            .await?;
        agreed &= next.total_count == total;
        domains.extend(next.data);
    }
    Ok((agreed && holds_still(&domains, total)).then_some(domains))
}

/// Whether a listing's rows are exactly its total, each once.
fn holds_still(domains: &[Domain], total: u64) -> bool {
    let distinct: HashSet<&str> = domains.iter().map(|d| d.id.as_str()).collect();
    distinct.len() == domains.len() && domains.len() as u64 == total
}

/// One organization's domains (`None`: they kept changing while they were read).
async fn read_organization(client: &Client, id: &str) -> Result<Option<Vec<Domain>>, ClerkError> {
    for _ in 0..ATTEMPTS {
        let first = client.list_organization_domains(id, 0, PAGE_LIMIT).await?;
        let total = first.total_count;
        let mut domains = first.data;
        let mut agreed = true;
        for page in 1..pages(total) {
            let next = client
                .list_organization_domains(id, page * PAGE_LIMIT, PAGE_LIMIT)
                .await?;
            agreed &= next.total_count == total;
            domains.extend(next.data);
        }
        if agreed && holds_still(&domains, total) {
            return Ok(Some(domains));
        }
    }
    Ok(None)
}
