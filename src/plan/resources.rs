//! Changes that are not memberships: the instance's permissions, roles and role sets, and an
//! organization's own fields and domains. One shape for every kind ([`ResourceChange`]), so
//! that the plan, the reports, the safety limits, saved plans, metrics and the executor treat
//! them alike.
//!
//! Where they run: the instance-wide changes that create or update (permissions, roles, role
//! sets) before the organizations, the ones that take something away (a role set's role
//! removals, role deletions, permission deletions) after them; an organization's own changes
//! before its memberships. [`Plan::all_changes`] walks every change in that order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Change, OrganizationPlan, Plan};

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Membership,
    Invitation,
    Permission,
    Role,
    RoleSet,
    Organization,
    Domain,
}

impl Resource {
    /// Every kind, in the order of the summary.
    pub const ALL: [Resource; 7] = [
        Resource::Membership,
        Resource::Invitation,
        Resource::Permission,
        Resource::Role,
        Resource::RoleSet,
        Resource::Organization,
        Resource::Domain,
    ];

    /// The name reports and metrics give it.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Membership => "membership",
            Resource::Invitation => "invitation",
            Resource::Permission => "permission",
            Resource::Role => "role",
            Resource::RoleSet => "role_set",
            Resource::Organization => "organization",
            Resource::Domain => "domain",
        }
    }

    /// The names of the actions a change of this kind can have, in the order of the summary.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Resource::Membership => &["create", "update_role", "update_metadata", "delete"],
            Resource::Invitation => &["invite", "revoke_invitation"],
            Resource::Permission | Resource::Role | Resource::Domain => {
                &["create", "update", "delete"]
            }
            Resource::RoleSet => &["create", "update", "remove_role"],
            Resource::Organization => &["create", "update", "update_metadata"],
        }
    }

    /// Whether its changes are the instance's (`Plan::authorization`) rather than one
    /// organization's.
    pub fn is_instance_wide(self) -> bool {
        matches!(
            self,
            Resource::Permission | Resource::Role | Resource::RoleSet
        )
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// What a [`ResourceChange`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceAction {
    Create,
    Update,
    UpdateMetadata,
    Delete,
    /// A role leaves a role set; the people who hold it move to another role.
    RemoveRole,
}

impl ResourceAction {
    pub fn name(self) -> &'static str {
        match self {
            ResourceAction::Create => "create",
            ResourceAction::Update => "update",
            ResourceAction::UpdateMetadata => "update_metadata",
            ResourceAction::Delete => "delete",
            ResourceAction::RemoveRole => "remove_role",
        }
    }
}

/// One change to one object that is not a membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub resource: Resource,
    pub action: ResourceAction,
    /// What the file names the object by: a permission, role or role set key, an
    /// organization's slug or ID, a domain name.
    pub key: String,
    /// Clerk's ID of the object, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The organization of an organization's or domain's change; empty for an organization
    /// the plan creates (the executor fills in the ID the create returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The fields that change, as they are (update, delete, remove_role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Map<String, Value>>,
    /// The fields that change, as they will be (create, update, remove_role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Map<String, Value>>,
    /// Why the plan must not run this change (it would strand people's roles); the safety
    /// limits refuse a plan that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ResourceChange {
    /// A change of this kind and action to the object named `key`, with nothing else set yet.
    pub fn new(resource: Resource, action: ResourceAction, key: &str) -> ResourceChange {
        ResourceChange {
            resource,
            action,
            key: key.to_owned(),
            id: None,
            organization_id: None,
            before: None,
            after: None,
            refused: None,
        }
    }

    /// Whether it takes something away: the deletion limit counts it.
    pub fn takes_access(&self) -> bool {
        self.action == ResourceAction::Delete
    }

    /// Whether an instance-wide change runs after the organizations (it takes away what
    /// their members might still use) rather than before them.
    pub fn runs_after_organizations(&self) -> bool {
        matches!(
            self.action,
            ResourceAction::Delete | ResourceAction::RemoveRole
        )
    }

    /// The step an instance-wide change runs in: permissions, roles, role sets (creates,
    /// updates, roles added), [the organizations], role sets' role removals, role deletions,
    /// permission deletions. Changes of one step run together.
    pub fn step(&self) -> u8 {
        let kind = match self.resource {
            Resource::Permission => 0,
            Resource::Role => 1,
            Resource::RoleSet => 2,
            // An organization's own changes run within the organization.
            Resource::Organization | Resource::Domain | Resource::Membership => 3,
            Resource::Invitation => 3,
        };
        if self.runs_after_organizations() {
            // Removals in the reverse order: role sets (3 + 1), roles, permissions.
            4 + (2 - kind.min(2))
        } else {
            kind
        }
    }

    /// The value of one field after the change, if it sets it.
    pub fn after_field(&self, field: &str) -> Option<&Value> {
        self.after.as_ref().and_then(|after| after.get(field))
    }

    /// The value of one field before the change, if it had one.
    pub fn before_field(&self, field: &str) -> Option<&Value> {
        self.before.as_ref().and_then(|before| before.get(field))
    }
}

/// Puts instance-wide changes in the order they run (by step, then kind, action and key).
pub fn order_instance_changes(changes: &mut [ResourceChange]) {
    changes.sort_by(|a, b| {
        (a.step(), a.resource, a.action, &a.key).cmp(&(b.step(), b.resource, b.action, &b.key))
    });
}

/// An object a plan leaves alone although the files would change it, and why (a custom role
/// `prune` would delete while people still hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedResource {
    pub resource: Resource,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    pub reason: String,
}

/// Any change of a plan: a membership's (or invitation's), or another object's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyChange<'a> {
    Membership(&'a Change),
    Resource(&'a ResourceChange),
}

impl AnyChange<'_> {
    /// What it is about.
    pub fn resource(&self) -> Resource {
        match self {
            AnyChange::Membership(change) => change.resource(),
            AnyChange::Resource(change) => change.resource,
        }
    }

    /// Its action's name, as reports and metrics give it.
    pub fn action_name(&self) -> &'static str {
        match self {
            AnyChange::Membership(change) => change.action.name(),
            AnyChange::Resource(change) => change.action.name(),
        }
    }

    /// Whether the deletion limit counts it.
    pub fn takes_access(&self) -> bool {
        match self {
            AnyChange::Membership(change) => change.action.takes_access(),
            AnyChange::Resource(change) => change.takes_access(),
        }
    }
}

impl Change {
    /// `membership`, or `invitation` for an invitation's change.
    pub fn resource(&self) -> Resource {
        if self.action.is_invitation() {
            Resource::Invitation
        } else {
            Resource::Membership
        }
    }
}

impl OrganizationPlan {
    /// Every change of the organization, in the order they run: its own (the organization,
    /// its domains), then its memberships and invitations.
    pub fn all_changes(&self) -> impl Iterator<Item = AnyChange<'_>> {
        self.resources
            .iter()
            .map(AnyChange::Resource)
            .chain(self.changes.iter().map(AnyChange::Membership))
    }

    /// The same organization under the ID Clerk gave it: an organization the plan creates has
    /// none until its create returns one.
    pub fn with_id(&self, id: &str) -> OrganizationPlan {
        let mut named = self.clone();
        named.organization_id = id.to_owned();
        for change in &mut named.resources {
            change.organization_id = Some(id.to_owned());
        }
        for change in &mut named.changes {
            change.organization_id = id.to_owned();
        }
        named
    }

    /// How many changes it has, of every kind.
    pub fn change_count(&self) -> usize {
        self.resources.len() + self.changes.len()
    }
}

impl Plan {
    /// The instance-wide changes that run before the organizations.
    pub fn authorization_before(&self) -> impl Iterator<Item = &ResourceChange> {
        self.authorization
            .iter()
            .filter(|c| !c.runs_after_organizations())
    }

    /// The instance-wide changes that run after the organizations.
    pub fn authorization_after(&self) -> impl Iterator<Item = &ResourceChange> {
        self.authorization
            .iter()
            .filter(|c| c.runs_after_organizations())
    }

    /// Every change of the plan in the one order the executor runs them and the reports list
    /// them: the instance-wide changes that run before the organizations, then each
    /// organization's own changes and its memberships, then the instance-wide changes that
    /// run after.
    pub fn all_changes(&self) -> impl Iterator<Item = AnyChange<'_>> {
        self.authorization_before()
            .map(AnyChange::Resource)
            .chain(
                self.organizations
                    .iter()
                    .flat_map(OrganizationPlan::all_changes),
            )
            .chain(self.authorization_after().map(AnyChange::Resource))
    }

    /// Every change that is not a membership's or invitation's, in run order.
    pub fn resource_changes(&self) -> impl Iterator<Item = &ResourceChange> {
        self.all_changes().filter_map(|change| match change {
            AnyChange::Resource(change) => Some(change),
            AnyChange::Membership(_) => None,
        })
    }

    /// How many changes of this kind and action the plan has.
    pub fn count_resource(&self, resource: Resource, action: ResourceAction) -> usize {
        self.resource_changes()
            .filter(|c| c.resource == resource && c.action == action)
            .count()
    }

    /// The counts per kind and action of every kind the files manage besides memberships
    /// (`summary.resources`), in the order of [`Resource::ALL`]; `None` when they manage none.
    pub fn resource_summary(&self) -> Option<Map<String, Value>> {
        if self.managed.is_empty() {
            return None;
        }
        let mut summary = Map::new();
        for resource in Resource::ALL {
            if !self.managed.contains(&resource) {
                continue;
            }
            let counts: Map<String, Value> = resource
                .actions()
                .iter()
                .map(|&action| {
                    let count = self
                        .resource_changes()
                        .filter(|c| c.resource == resource && c.action.name() == action)
                        .count();
                    (action.to_owned(), Value::from(count))
                })
                .collect();
            summary.insert(resource.name().to_owned(), Value::Object(counts));
        }
        Some(summary)
    }

    /// `1 permission to create, 2 roles to update`: the resource changes the plan has, for
    /// the summary lines (empty when none).
    pub fn resource_counts(&self) -> Vec<String> {
        let mut counts = Vec::new();
        for resource in Resource::ALL {
            for action in [
                ResourceAction::Create,
                ResourceAction::Update,
                ResourceAction::UpdateMetadata,
                ResourceAction::RemoveRole,
                ResourceAction::Delete,
            ] {
                let count = self.count_resource(resource, action);
                if count > 0 {
                    counts.push(format!(
                        "{count} {} {}",
                        resource.name(),
                        match action {
                            ResourceAction::Create => "to create",
                            ResourceAction::Update => "to update",
                            ResourceAction::UpdateMetadata => "metadata to update",
                            ResourceAction::RemoveRole => "role removal(s)",
                            ResourceAction::Delete => "to delete",
                        }
                    ));
                }
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use serde_json::json;

    fn change(resource: Resource, action: ResourceAction, key: &str) -> ResourceChange {
        ResourceChange::new(resource, action, key)
    }

    fn organization(
        id: &str,
        resources: Vec<ResourceChange>,
        changes: Vec<Change>,
    ) -> OrganizationPlan {
        OrganizationPlan {
            organization_id: id.into(),
            label: None,
            resources,
            changes,
            current_members: 0,
            admins_before: 0,
            admins_after: 0,
            withheld: None,
            invitations: None,
            current_invitations: 0,
        }
    }

    #[test]
    fn instance_changes_run_in_the_order_of_a_run() {
        use Resource as R;
        use ResourceAction as A;
        let mut changes = vec![
            change(R::Permission, A::Delete, "org:a:b"),
            change(R::Role, A::Delete, "org:old"),
            change(R::RoleSet, A::RemoveRole, "role_set:s"),
            change(R::RoleSet, A::Update, "role_set:s"),
            change(R::Role, A::Create, "org:new"),
            change(R::Permission, A::Create, "org:c:d"),
            change(R::Role, A::Update, "org:billing"),
        ];
        order_instance_changes(&mut changes);
        let order: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.resource.name(), c.action.name()))
            .collect();
        assert_eq!(
            order,
            [
                ("permission", "create"),
                ("role", "create"),
                ("role", "update"),
                ("role_set", "update"),
                ("role_set", "remove_role"),
                ("role", "delete"),
                ("permission", "delete"),
            ]
        );
    }

    #[test]
    fn every_change_of_a_plan_is_walked_in_run_order() {
        let mut authorization = vec![
            change(Resource::Role, ResourceAction::Delete, "org:old"),
            change(Resource::Role, ResourceAction::Create, "org:new"),
        ];
        order_instance_changes(&mut authorization);
        let mut domain = change(Resource::Domain, ResourceAction::Create, "acme.com");
        domain.organization_id = Some("org_1".into());
        let plan = Plan {
            authorization,
            organizations: vec![organization(
                "org_1",
                vec![domain],
                vec![Change::new(Action::Create, "org_1", "user_1")],
            )],
            managed: vec![Resource::Role, Resource::Domain],
            ..Plan::default()
        };
        let walked: Vec<(Resource, &str)> = plan
            .all_changes()
            .map(|c| (c.resource(), c.action_name()))
            .collect();
        assert_eq!(
            walked,
            [
                (Resource::Role, "create"),
                (Resource::Domain, "create"),
                (Resource::Membership, "create"),
                (Resource::Role, "delete"),
            ]
        );
        assert!(!plan.is_empty());
        assert_eq!(plan.removals(), 1);
        assert_eq!(
            Value::Object(plan.resource_summary().unwrap()),
            json!({
                "role": {"create": 1, "update": 0, "delete": 1},
                "domain": {"create": 1, "update": 0, "delete": 0},
            })
        );
        assert_eq!(
            plan.resource_counts(),
            ["1 role to create", "1 role to delete", "1 domain to create"]
        );
    }

    #[test]
    fn a_plan_of_resource_changes_alone_is_not_empty() {
        let plan = Plan {
            authorization: vec![change(
                Resource::Permission,
                ResourceAction::Create,
                "org:a:b",
            )],
            ..Plan::default()
        };
        assert!(!plan.is_empty());
        assert_eq!(plan.changes().count(), 0);
        assert_eq!(plan.all_changes().count(), 1);
        assert!(plan.resource_summary().is_none());
    }
}
