//! Organizations as a whole: the roles each allows (for the role checks), every organization
//! of the instance (for `export` and `all_organizations`), and the endpoints that create an
//! organization and change its own fields and metadata (docs/organizations.md: "Organizations and their
//! domains").

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value};

use super::read::{lookup_ids, pages};
use super::{ClerkError, Client, Organization, PAGE_LIMIT, Request};

impl Client {
    /// `POST /organizations`: a new organization with its name, slug and the other fields
    /// `body` carries (`max_allowed_memberships`, `role_set_key`, both metadata objects).
    pub async fn create_organization(
        &self,
        body: &Map<String, Value>,
    ) -> Result<Organization, ClerkError> {
        let slug = body.get("slug").and_then(Value::as_str).unwrap_or_default();
        let created: Organization = self
            .send(Request::post(
                "create_organization",
                &["organizations"],
                Value::Object(body.clone()),
                format!("creating the organization {slug}"),
            ))
            .await?;
        // Learnt for the daemon, which matches webhook events to slugs through it.
        if let Some(slug) = &created.slug {
            self.shared.slugs.learn(slug, Some(&created.id));
        }
        Ok(created)
    }

    /// `PATCH /organizations/{id}`: the fields `changes` holds (`name`,
    /// `max_allowed_memberships`, `admin_delete_enabled`, `role_set_key`).
    pub async fn update_organization(
        &self,
        organization_id: &str,
        changes: &Map<String, Value>,
    ) -> Result<Organization, ClerkError> {
        self.send(Request::patch(
            "update_organization",
            &["organizations", organization_id],
            Value::Object(changes.clone()),
            format!("updating {organization_id}"),
        ))
        .await
    }

    /// `PATCH /organizations/{id}/metadata`: a deep merge (RFC 7396) of
    /// `{"public_metadata": …, "private_metadata": …}`.
    pub async fn merge_organization_metadata(
        &self,
        organization_id: &str,
        patch: &Value,
    ) -> Result<Organization, ClerkError> {
        self.send(Request::patch(
            "merge_organization_metadata",
            &["organizations", organization_id, "metadata"],
            patch.clone(),
            format!("merging the metadata of {organization_id}"),
        ))
        .await
    }
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

/// The ID of the organization that has `slug`: as the process last learnt it (see
/// [`super::Slugs`]), or from `GET /organizations/{slug}`. `None`: no organization has it.
pub async fn organization_id(client: &Client, slug: &str) -> Result<Option<String>, ClerkError> {
    let slugs = &client.shared().slugs;
    if let Some(known) = slugs.get(slug) {
        return Ok(known);
    }
    let id = match client.get_organization(slug).await {
        Ok(organization) => Some(organization.id),
        Err(error) if error.status() == Some(404) => None,
        Err(error) => return Err(error),
    };
    slugs.learn(slug, id.as_deref());
    Ok(id)
}
