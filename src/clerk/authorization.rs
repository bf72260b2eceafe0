//! The instance's organization permissions, roles and role sets: their models, one function per
//! endpoint, and the read of all three (docs/authorization.md: "Roles and permissions as code"). Only a file
//! with `authorization` reads or writes them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::models::Page;
use super::{ClerkError, Client, PAGE_LIMIT, Request};
use crate::plan::authorization::{LiveAuthorization, LivePermission, LiveRole, LiveRoleSet};

/// An organization permission (`Permission`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Permission {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `system` for Clerk's own (`org:sys_…`); custom ones are `user`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Permission {
    /// Whether it is one of Clerk's system permissions, which cannot be changed.
    pub fn is_system(&self) -> bool {
        self.kind.as_deref() == Some("system") || self.key.starts_with("org:sys_")
    }
}

/// An organization role (`Role`) with its permissions.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Role {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// One role of a role set (`RoleSetItem`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoleSetRole {
    pub key: String,
    /// How many members of the set's organizations hold it, where Clerk says (the spec gives
    /// it no lower bound; a negative count counts as none).
    #[serde(default)]
    pub members_count: Option<i64>,
}

/// A role set (`RoleSet`) as `authorization` manages it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoleSetDetails {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub roles: Vec<RoleSetRole>,
    #[serde(default)]
    pub default_role: Option<RoleSetRole>,
    #[serde(default)]
    pub creator_role: Option<RoleSetRole>,
    /// `initial` or `custom`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl RoleSetDetails {
    /// Whether it is the role set new organizations get.
    pub fn is_initial(&self) -> bool {
        self.kind.as_deref() == Some("initial")
    }
}

/// The instance's permissions, roles and role sets, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    pub permissions: Vec<Permission>,
    pub roles: Vec<Role>,
    pub role_sets: Vec<RoleSetDetails>,
}

/// Reads every permission, role and role set of the instance, page by page.
pub async fn read_authorization(client: &Client) -> Result<Authorization, ClerkError> {
    let (permissions, roles, role_sets) = futures::try_join!(
        every(|offset| client.list_organization_permissions(offset, PAGE_LIMIT)),
        every(|offset| client.list_organization_roles_full(offset, PAGE_LIMIT)),
        every(|offset| client.list_role_sets(offset, PAGE_LIMIT)),
    )?;
    Ok(Authorization {
        permissions,
        roles,
        role_sets,
    })
}

/// The pending invitations of the organizations of each role set, by role (role set key →
/// role → count): people a role keeps, as its members do, when it leaves a set. Reads every
/// organization and every pending invitation of the instance.
pub(crate) async fn invited_by_role_set(
    client: &Client,
) -> Result<HashMap<String, HashMap<String, u64>>, ClerkError> {
    let (organizations, invitations) = futures::try_join!(
        super::list_every_organization(client),
        every(|offset| client.list_instance_invitations(offset, PAGE_LIMIT)),
    )?;
    let set_of: HashMap<String, String> = organizations
        .into_iter()
        .filter_map(|o| Some((o.id, o.role_set_key?)))
        .collect();
    let mut invited: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for invitation in invitations {
        let organization = invitation
            .organization_id
            .or_else(|| invitation.public_organization_data.map(|o| o.id));
        if let Some(set) = organization.and_then(|id| set_of.get(&id)) {
            *invited
                .entry(set.clone())
                .or_default()
                .entry(invitation.role)
                .or_default() += 1;
        }
    }
    Ok(invited)
}

/// Every item of a listing, following `offset` until `total_count`.
async fn every<T, F, Fut>(mut page: F) -> Result<Vec<T>, ClerkError>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, ClerkError>>,
{
    let mut items = Vec::new();
    loop {
        let next = page(items.len() as u64).await?;
        let count = next.data.len();
        items.extend(next.data);
        if count == 0 || items.len() as u64 >= next.total_count {
            return Ok(items);
        }
    }
}

impl Client {
    /// `GET /organization_permissions`: a page of the instance's permissions.
    pub async fn list_organization_permissions(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<Page<Permission>, ClerkError> {
        self.send(
            Request::get(
                "list_organization_permissions",
                &["organization_permissions"],
                format!("listing the organization permissions (offset {offset})"),
            )
            .page(offset, limit),
        )
        .await
    }

    /// `POST /organization_permissions`.
    pub async fn create_organization_permission(
        &self,
        key: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<Permission, ClerkError> {
        let mut body = json!({ "key": key, "name": name });
        if let Some(description) = description {
            body["description"] = json!(description);
        }
        self.send(Request::post(
            "create_organization_permission",
            &["organization_permissions"],
            body,
            format!("creating the permission {key}"),
        ))
        .await
    }

    /// `PATCH /organization_permissions/{id}`: the fields of `changes` (name, description).
    pub async fn update_organization_permission(
        &self,
        id: &str,
        changes: Value,
    ) -> Result<Permission, ClerkError> {
        self.send(Request::patch(
            "update_organization_permission",
            &["organization_permissions", id],
            changes,
            format!("updating the permission {id}"),
        ))
        .await
    }

    /// `DELETE /organization_permissions/{id}`.
    pub async fn delete_organization_permission(&self, id: &str) -> Result<Value, ClerkError> {
        self.send(Request::delete(
            "delete_organization_permission",
            &["organization_permissions", id],
            format!("deleting the permission {id}"),
        ))
        .await
    }

    /// `GET /organization_roles`: a page of the instance's roles, with their permissions.
    pub async fn list_organization_roles_full(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<Page<Role>, ClerkError> {
        self.send(
            Request::get(
                "list_organization_roles",
                &["organization_roles"],
                format!("listing the organization roles (offset {offset})"),
            )
            .page(offset, limit),
        )
        .await
    }

    /// `POST /organization_roles`: `fields` holds name, key, description and permissions (IDs).
    pub async fn create_organization_role(&self, fields: Value) -> Result<Role, ClerkError> {
        let key = fields["key"].as_str().unwrap_or_default().to_owned();
        self.send(Request::post(
            "create_organization_role",
            &["organization_roles"],
            fields,
            format!("creating the role {key}"),
        ))
        .await
    }

    /// `PATCH /organization_roles/{id}`: the fields of `changes` (name, description, the whole
    /// set of permission IDs).
    pub async fn update_organization_role(
        &self,
        id: &str,
        changes: Value,
    ) -> Result<Role, ClerkError> {
        self.send(Request::patch(
            "update_organization_role",
            &["organization_roles", id],
            changes,
            format!("updating the role {id}"),
        ))
        .await
    }

    /// `DELETE /organization_roles/{id}`.
    pub async fn delete_organization_role(&self, id: &str) -> Result<Value, ClerkError> {
        self.send(Request::delete(
            "delete_organization_role",
            &["organization_roles", id],
            format!("deleting the role {id}"),
        ))
        .await
    }

    /// `POST /organization_roles/{id}/permissions/{permission_id}`.
    pub async fn assign_role_permission(
        &self,
        role_id: &str,
        permission_id: &str,
    ) -> Result<Role, ClerkError> {
        self.send(Request::post_empty(
            "assign_role_permission",
            &["organization_roles", role_id, "permissions", permission_id],
            format!("giving the role {role_id} the permission {permission_id}"),
        ))
        .await
    }

    /// `DELETE /organization_roles/{id}/permissions/{permission_id}`.
    pub async fn remove_role_permission(
        &self,
        role_id: &str,
        permission_id: &str,
    ) -> Result<Role, ClerkError> {
        self.send(Request::delete(
            "remove_role_permission",
            &["organization_roles", role_id, "permissions", permission_id],
            format!("taking the permission {permission_id} from the role {role_id}"),
        ))
        .await
    }

    /// `GET /role_sets`: a page of the instance's role sets.
    pub async fn list_role_sets(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<Page<RoleSetDetails>, ClerkError> {
        self.send(
            Request::get(
                "list_role_sets",
                &["role_sets"],
                format!("listing the role sets (offset {offset})"),
            )
            .page(offset, limit),
        )
        .await
    }

    /// `POST /role_sets`: `fields` holds name, key, description, type, roles, default and
    /// creator role keys.
    pub async fn create_role_set(&self, fields: Value) -> Result<RoleSetDetails, ClerkError> {
        let key = fields["key"].as_str().unwrap_or_default().to_owned();
        self.send(Request::post(
            "create_role_set",
            &["role_sets"],
            fields,
            format!("creating the role set {key}"),
        ))
        .await
    }

    /// `PATCH /role_sets/{key}`: name, description, type, default and creator role keys.
    pub async fn update_role_set(
        &self,
        key: &str,
        changes: Value,
    ) -> Result<RoleSetDetails, ClerkError> {
        self.send(Request::patch(
            "update_role_set",
            &["role_sets", key],
            changes,
            format!("updating the role set {key}"),
        ))
        .await
    }

    /// `POST /role_sets/{key}/roles`: roles added (at most 10), optionally with a new default
    /// or creator role among them.
    pub async fn add_role_set_roles(
        &self,
        key: &str,
        body: Value,
    ) -> Result<RoleSetDetails, ClerkError> {
        self.send(Request::post(
            "add_role_set_roles",
            &["role_sets", key, "roles"],
            body,
            format!("adding roles to the role set {key}"),
        ))
        .await
    }

    /// `POST /role_sets/{key}/roles/replace`: `role` leaves the set; whoever holds it in the
    /// set's organizations gets `to_role`.
    pub async fn replace_role_set_role(
        &self,
        key: &str,
        role: &str,
        to_role: &str,
    ) -> Result<RoleSetDetails, ClerkError> {
        self.send(Request::post(
            "replace_role_set_role",
            &["role_sets", key, "roles", "replace"],
            json!({ "role_key": role, "to_role_key": to_role }),
            format!("taking {role} out of the role set {key} (its holders get {to_role})"),
        ))
        .await
    }
}

impl Authorization {
    /// The instance as planning reads it.
    pub fn into_live(self) -> LiveAuthorization {
        let text = |value: Option<String>| value.unwrap_or_default();
        LiveAuthorization {
            permissions: self
                .permissions
                .into_iter()
                .map(|p| LivePermission {
                    system: p.is_system(),
                    id: p.id,
                    key: p.key,
                    name: p.name,
                    description: text(p.description),
                })
                .collect(),
            roles: self
                .roles
                .into_iter()
                .map(|r| LiveRole {
                    id: r.id,
                    key: r.key,
                    name: r.name,
                    description: text(r.description),
                    permissions: r.permissions.into_iter().map(|p| p.key).collect(),
                })
                .collect(),
            role_sets: self.role_sets.into_iter().map(live_role_set).collect(),
        }
    }
}

fn live_role_set(set: RoleSetDetails) -> LiveRoleSet {
    LiveRoleSet {
        initial: set.is_initial(),
        invited: HashMap::new(),
        holders: set
            .roles
            .iter()
            .map(|r| (r.key.clone(), r.members_count.unwrap_or(0).max(0) as u64))
            .collect(),
        key: set.key,
        name: set.name,
        description: set.description.unwrap_or_default(),
        roles: set.roles.into_iter().map(|r| r.key).collect(),
        default_role: set.default_role.map(|r| r.key),
        creator_role: set.creator_role.map(|r| r.key),
    }
}
