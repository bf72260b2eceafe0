//! The plan of the instance's permissions, roles and role sets (docs/authorization.md: "Roles and
//! permissions as code"): what `authorization` declares against what the instance has. Pure:
//! the instance is read by the caller into [`LiveAuthorization`].

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::saved::{ResourceRef, ResourceStates, digest};
use super::{RejectedResource, Resource, ResourceAction, ResourceChange, order_instance_changes};
use crate::desired::{Authorization, DesiredRoleSet, Diagnostic, Named};

/// A permission of the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePermission {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    /// One of Clerk's own (`org:sys_…`).
    pub system: bool,
}

/// A role of the instance, with its permissions' keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRole {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// A role set of the instance, with how many members hold each of its roles (Clerk's
/// `members_count`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoleSet {
    pub key: String,
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub default_role: Option<String>,
    pub creator_role: Option<String>,
    pub initial: bool,
    pub holders: HashMap<String, u64>,
    /// Pending invitations with each role in the organizations of this set.
    pub invited: HashMap<String, u64>,
}

/// The instance's permissions, roles and role sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveAuthorization {
    pub permissions: Vec<LivePermission>,
    pub roles: Vec<LiveRole>,
    pub role_sets: Vec<LiveRoleSet>,
}

/// What the plan does to them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorizationPlan {
    /// In run order.
    pub changes: Vec<ResourceChange>,
    /// Objects `prune` leaves alone because something uses them.
    pub rejected: Vec<RejectedResource>,
    /// The custom permissions and roles `prune` could delete (for a percentage
    /// `--max-deletes`).
    pub deletable: usize,
    /// The roles of each role set the file manages, as the plan leaves it.
    pub role_sets: HashMap<String, HashSet<String>>,
    /// The roles the plan creates.
    pub created_roles: Vec<String>,
}

/// Plans `desired` against `live`. A permission or role the file names that exists neither in
/// the file nor in the instance is an error at its line.
pub fn plan_authorization(
    desired: &Authorization,
    live: &LiveAuthorization,
) -> Result<AuthorizationPlan, Vec<Diagnostic>> {
    check_references(desired, live)?;
    let mut plan = AuthorizationPlan::default();
    for permission in desired.permissions.iter().flatten() {
        let found = live.permissions.iter().find(|p| p.key == permission.key);
        let mut after = Map::new();
        after.insert("name".into(), json!(permission.name));
        if let Some(description) = &permission.description {
            after.insert("description".into(), json!(description));
        }
        plan.changes.extend(upsert(
            Resource::Permission,
            &permission.key,
            found.map(|p| (p.id.clone(), permission_fields(p))),
            after,
        ));
    }
    for role in desired.roles.iter().flatten() {
        let found = live.roles.iter().find(|r| r.key == role.key);
        let mut after = Map::new();
        after.insert("name".into(), json!(role.name));
        if let Some(description) = &role.description {
            after.insert("description".into(), json!(description));
        }
        let keys: BTreeSet<&str> = role.permissions.iter().map(|p| p.key.as_str()).collect();
        after.insert("permissions".into(), json!(keys));
        if found.is_none() {
            plan.created_roles.push(role.key.clone());
        }
        plan.changes.extend(upsert(
            Resource::Role,
            &role.key,
            found.map(|r| (r.id.clone(), role_fields(r))),
            after,
        ));
    }
    for set in desired.role_sets.iter().flatten() {
        let found = live.role_sets.iter().find(|s| s.key == set.key);
        plan.changes.extend(role_set_changes(set, found));
        let roles = set.roles.iter().map(|r| r.key.clone()).collect();
        plan.role_sets.insert(set.key.clone(), roles);
    }
    prune(desired, live, &mut plan);
    order_instance_changes(&mut plan.changes);
    Ok(plan)
}

fn permission_fields(permission: &LivePermission) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("name".into(), json!(permission.name));
    fields.insert("description".into(), json!(permission.description));
    fields
}

fn role_fields(role: &LiveRole) -> Map<String, Value> {
    let keys: BTreeSet<&str> = role.permissions.iter().map(String::as_str).collect();
    let mut fields = Map::new();
    fields.insert("name".into(), json!(role.name));
    fields.insert("description".into(), json!(role.description));
    fields.insert("permissions".into(), json!(keys));
    fields
}

fn role_set_fields(set: &LiveRoleSet) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("name".into(), json!(set.name));
    fields.insert("description".into(), json!(set.description));
    fields.insert("roles".into(), json!(set.roles));
    fields.insert("default_role".into(), json!(set.default_role));
    fields.insert("creator_role".into(), json!(set.creator_role));
    fields.insert("initial".into(), json!(set.initial));
    fields
}

/// A create (nothing found) or an update of the fields of `after` that differ from `found`'s;
/// nothing when none differs.
fn upsert(
    resource: Resource,
    key: &str,
    found: Option<(String, Map<String, Value>)>,
    after: Map<String, Value>,
) -> Option<ResourceChange> {
    let Some((id, fields)) = found else {
        return Some(ResourceChange {
            after: Some(after),
            ..ResourceChange::new(resource, ResourceAction::Create, key)
        });
    };
    let mut before = Map::new();
    let mut changed = Map::new();
    for (field, value) in after {
        let old = fields.get(&field).cloned().unwrap_or(Value::Null);
        if old != value {
            before.insert(field.clone(), old);
            changed.insert(field, value);
        }
    }
    (!changed.is_empty()).then(|| ResourceChange {
        id: Some(id),
        before: Some(before),
        after: Some(changed),
        ..ResourceChange::new(resource, ResourceAction::Update, key)
    })
}

/// A role set's create, or its update (roles added with the other fields), and a removal for
/// each role that leaves it.
fn role_set_changes(set: &DesiredRoleSet, found: Option<&LiveRoleSet>) -> Vec<ResourceChange> {
    let roles: Vec<&str> = set.roles.iter().map(|r| r.key.as_str()).collect();
    let mut after = Map::new();
    after.insert("name".into(), json!(set.name));
    if let Some(description) = &set.description {
        after.insert("description".into(), json!(description));
    }
    after.insert("default_role".into(), json!(set.default_role));
    after.insert("creator_role".into(), json!(set.creator_role));
    let Some(live) = found else {
        after.insert("roles".into(), json!(roles));
        after.insert("initial".into(), json!(set.initial));
        return upsert(Resource::RoleSet, &set.key, None, after)
            .into_iter()
            .collect();
    };
    if set.initial {
        after.insert("initial".into(), json!(true));
    }
    let mut kept: Vec<String> = live.roles.clone();
    kept.extend(
        roles
            .iter()
            .filter(|r| !live.roles.iter().any(|l| l == *r))
            .map(|r| (*r).to_owned()),
    );
    after.insert("roles".into(), json!(kept));
    let id = live.key.clone();
    let mut changes: Vec<ResourceChange> = upsert(
        Resource::RoleSet,
        &set.key,
        Some((id, role_set_fields(live))),
        after,
    )
    .into_iter()
    .collect();
    for role in live.roles.iter().filter(|r| !roles.contains(&r.as_str())) {
        changes.push(removal(set, live, role));
    }
    changes
}

/// `role` leaves the set: its holders get the set's `reassign` target for it, or, when none
/// holds it, the set's default role. Refused when people hold it and `reassign` says nothing.
fn removal(set: &DesiredRoleSet, live: &LiveRoleSet, role: &str) -> ResourceChange {
    let target = set.reassign.iter().find(|(from, _)| from == role);
    let holders = live.holders.get(role).copied().unwrap_or(0);
    let invited = live.invited.get(role).copied().unwrap_or(0);
    let mut change = ResourceChange::new(Resource::RoleSet, ResourceAction::RemoveRole, &set.key);
    change.before = Some(Map::from_iter([("role".to_owned(), json!(role))]));
    match target {
        Some((_, to)) => {
            change.after = Some(Map::from_iter([("reassign".to_owned(), json!(to))]));
        }
        None if holders == 0 && invited == 0 => {
            let to = &set.default_role;
            change.after = Some(Map::from_iter([("reassign".to_owned(), json!(to))]));
        }
        None => {
            let who = match invited {
                0 => format!("{holders} member(s)"),
                _ => format!("{holders} member(s) and {invited} pending invitation(s)"),
            };
            change.refused = Some(format!(
                "the role set {} drops {role}, which {who} hold, and its `reassign` names no role for them (add `reassign: {{{role}: <a role of the set>}}` at {})",
                set.key, set.origin
            ));
        }
    }
    change
}

/// Every permission a role names and every role a role set names exists in the file or the
/// instance.
fn check_references(
    desired: &Authorization,
    live: &LiveAuthorization,
) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let permissions: HashSet<&str> = desired
        .permissions
        .iter()
        .flatten()
        .map(|p| p.key.as_str())
        .chain(live.permissions.iter().map(|p| p.key.as_str()))
        .collect();
    let roles: HashSet<&str> = desired
        .roles
        .iter()
        .flatten()
        .map(|r| r.key.as_str())
        .chain(live.roles.iter().map(|r| r.key.as_str()))
        .collect();
    let mut unknown = |named: &Named, what: &str, known: &HashSet<&str>| {
        if !known.contains(named.key.as_str()) {
            errors.push(named.origin.diagnostic(
                "authorization",
                format!(
                    "the {what} `{}` exists neither in the file nor in the instance",
                    named.key
                ),
            ));
        }
    };
    for role in desired.roles.iter().flatten() {
        for permission in &role.permissions {
            unknown(permission, "permission", &permissions);
        }
    }
    for set in desired.role_sets.iter().flatten() {
        for role in &set.roles {
            unknown(role, "role", &roles);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The digest of the state of every permission, role and role set of the instance, as saved
/// plans keep it.
pub fn authorization_states(live: &LiveAuthorization) -> ResourceStates {
    let mut states = ResourceStates::new();
    let mut add = |resource: Resource, key: &str, fields: Map<String, Value>| {
        let object = ResourceRef {
            resource,
            organization_id: None,
            key: key.to_owned(),
        };
        states.insert(object, digest(&Value::Object(fields)));
    };
    for permission in &live.permissions {
        add(
            Resource::Permission,
            &permission.key,
            permission_fields(permission),
        );
    }
    for role in &live.roles {
        add(Resource::Role, &role.key, role_fields(role));
    }
    for set in &live.role_sets {
        add(Resource::RoleSet, &set.key, role_set_fields(set));
    }
    states
}

// `prune: true` of `authorization`: the custom permissions and roles the file does not list
// are deleted, unless something still uses them — then they are rejected, with the reason,
// and nothing is sent for them. Clerk's own roles `org:admin` and `org:member` are never
// deleted.

/// Roles membersync never deletes: Clerk's defaults.
const DEFAULT_ROLES: [&str; 2] = ["org:admin", "org:member"];

/// Adds the deletions (and the rejected objects) of `prune` to `plan`.
fn prune(desired: &Authorization, live: &LiveAuthorization, plan: &mut AuthorizationPlan) {
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
