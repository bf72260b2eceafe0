//! `prune: true` of `authorization`: the custom permissions and roles the file does not list
//! are deleted, unless something still uses them — then they are rejected, with the reason,
//! and nothing is sent for them. Clerk's own roles `org:admin` and `org:member` are never
//! deleted.

use std::collections::HashSet;

use serde_json::{Map, json};

use super::authorization::{AuthorizationPlan, LiveAuthorization};
use super::{RejectedResource, Resource, ResourceAction, ResourceChange};
use crate::desired::Authorization;

/// Roles membersync never deletes: Clerk's defaults.
const DEFAULT_ROLES: [&str; 2] = ["org:admin", "org:member"];

/// Adds the deletions (and the rejected objects) of `prune` to `plan`.
pub(super) fn prune(
    desired: &Authorization,
    live: &LiveAuthorization,
    plan: &mut AuthorizationPlan,
) {
    if !desired.prune {
        return;
    }
    let mut deleted_roles: HashSet<&str> = HashSet::new();
    if let Some(roles) = &desired.roles {
        let listed: HashSet<&str> = roles.iter().map(|r| r.key.as_str()).collect();
        for role in live
            .roles
            .iter()
            .filter(|r| !listed.contains(r.key.as_str()))
        {
            if DEFAULT_ROLES.contains(&role.key.as_str()) {
                continue;
            }
            plan.deletable += 1;
            match role_use(live, plan, &role.key) {
                Some(reason) => plan
                    .rejected
                    .push(rejected(Resource::Role, &role.key, reason)),
                None => {
                    deleted_roles.insert(&role.key);
                    plan.changes
                        .push(deletion(Resource::Role, &role.key, &role.id, &role.name));
                }
            }
        }
    }
    let Some(permissions) = &desired.permissions else {
        return;
    };
    let listed: HashSet<&str> = permissions.iter().map(|p| p.key.as_str()).collect();
    let kept: HashSet<&str> = kept_permissions(desired, live, &deleted_roles);
    for permission in live
        .permissions
        .iter()
        .filter(|p| !p.system && !listed.contains(p.key.as_str()))
    {
        plan.deletable += 1;
        if kept.contains(permission.key.as_str()) {
            let reason = "a role the plan keeps has it".to_owned();
            plan.rejected
                .push(rejected(Resource::Permission, &permission.key, reason));
        } else {
            let change = deletion(
                Resource::Permission,
                &permission.key,
                &permission.id,
                &permission.name,
            );
            plan.changes.push(change);
        }
    }
}

/// The permissions of every role that stays: the file's roles as it declares them, and the
/// instance's other roles as they are.
fn kept_permissions<'a>(
    desired: &'a Authorization,
    live: &'a LiveAuthorization,
    deleted: &HashSet<&str>,
) -> HashSet<&'a str> {
    let declared: HashSet<&str> = desired
        .roles
        .iter()
        .flatten()
        .map(|r| r.key.as_str())
        .collect();
    let from_file = desired
        .roles
        .iter()
        .flatten()
        .flat_map(|r| r.permissions.iter().map(|p| p.key.as_str()));
    let from_instance = live
        .roles
        .iter()
        .filter(|r| !declared.contains(r.key.as_str()) && !deleted.contains(r.key.as_str()))
        .flat_map(|r| r.permissions.iter().map(String::as_str));
    from_file.chain(from_instance).collect()
}

/// Why a role cannot be deleted: it is in a role set as the plan leaves it, or a role set's
/// default or creator role.
fn role_use(live: &LiveAuthorization, plan: &AuthorizationPlan, role: &str) -> Option<String> {
    for set in &live.role_sets {
        let roles_after = plan.role_sets.get(&set.key);
        let inside = match roles_after {
            Some(roles) => roles.contains(role),
            None => set.roles.iter().any(|r| r == role),
        };
        if inside {
            let holders = set.holders.get(role).copied().unwrap_or(0);
            return Some(format!(
                "it is in the role set {} ({holders} member(s) hold it there)",
                set.key
            ));
        }
        if set.default_role.as_deref() == Some(role) || set.creator_role.as_deref() == Some(role) {
            return Some(format!(
                "it is the default or creator role of the role set {}",
                set.key
            ));
        }
    }
    None
}

fn rejected(resource: Resource, key: &str, reason: String) -> RejectedResource {
    RejectedResource {
        resource,
        key: key.to_owned(),
        organization_id: None,
        reason: format!("not deleted: {reason}"),
    }
}

fn deletion(resource: Resource, key: &str, id: &str, name: &str) -> ResourceChange {
    ResourceChange {
        id: Some(id.to_owned()),
        before: Some(Map::from_iter([("name".to_owned(), json!(name))])),
        ..ResourceChange::new(resource, ResourceAction::Delete, key)
    }
}
