//! The diff: targets × live memberships → ordered changes.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::invitations::diff_invitations;
use super::metadata::{declared_metadata, metadata_patch};
use super::organizations::target_resources;
use super::resolve::{ResolveInput, resolve_each};
use super::roles::admins_after;
use super::{
    Action, Change, Declared, Live, Metadata, Observed, ObservedInvitation, OrganizationPlan,
    Phase, Plan, Resource, Target,
};
use crate::desired::{DesiredOrganization, Diagnostic, MetadataMode, OrgRef, Role};

/// Compares each target with its live memberships. Organizations not in `targets` are never
/// looked at. The result is deterministic: organizations by ID, and within one organization
/// by phase (creates and promotions, demotions, deletions), then action, then user ID.
pub fn diff(targets: &[Target], observed: &HashMap<String, Vec<Observed>>) -> Plan {
    let empty = Vec::new();
    let mut plan = Plan::default();
    for target in targets {
        let live = observed.get(&target.organization_id).unwrap_or(&empty);
        plan.organizations.push(diff_organization(target, live));
        plan.pending.extend(target.pending.iter().cloned());
    }
    in_order(plan)
}

/// Resolves and diffs the desired organizations one by one against what was read live
/// (each desired organization and each target is dropped once diffed, so that a large file
/// never exists twice). In an organization whose memberships kept changing while they were
/// read, deletions and demotions are withheld; in one whose invitations did, revocations.
/// Returns the plan in order and the organizations that do not exist, or the problems that
/// make the input invalid.
pub fn compute(
    input: &ResolveInput<'_>,
    organizations: Vec<DesiredOrganization>,
    live: &Live,
) -> Result<(Plan, Vec<OrgRef>), Vec<Diagnostic>> {
    let unsettled: HashSet<&str> = live.unsettled.iter().map(String::as_str).collect();
    let no_members = Vec::new();
    let no_invitations = Vec::new();
    let mut plan = Plan::default();
    plan.organizations.reserve_exact(input.organizations.len());
    // The kinds besides memberships these organizations manage, and how many of their
    // objects the plan could delete today.
    let mut managed = std::collections::BTreeSet::new();
    let mut current_resources = 0;
    let resolution = resolve_each(input, organizations, |target| {
        let id = target.organization_id.as_str();
        let members = live.memberships.get(id).unwrap_or(&no_members);
        let mut organization = diff_organization(&target, members);
        if unsettled.contains(id) {
            withhold_removals(&mut organization, members);
        }
        if target.invitations.is_some() {
            let invitations = live.invitations.get(id).unwrap_or(&no_invitations);
            let settled = !live.unsettled_invitations.iter().any(|o| o == id);
            add_invitations(&mut organization, &target, invitations, settled);
        }
        if let Some(uncertain) = &target.unavailable {
            let note = super::unavailable::withhold(&mut organization, uncertain, members);
            plan.unavailable.push(note);
        }
        if let Some(fields) = &target.fields {
            organization.resources = target_resources(&target, fields, members, live);
            managed.insert(Resource::Organization);
            if fields.domains.is_some() {
                managed.insert(Resource::Domain);
                current_resources += live.domains.get(id).map_or(0, Vec::len);
            }
        }
        plan.organizations.push(organization);
        plan.pending.extend(target.pending);
    });
    if !resolution.errors.is_empty() {
        return Err(resolution.errors);
    }
    plan.managed.extend(managed);
    plan.current_resources += current_resources;
    Ok((in_order(plan), resolution.missing))
}

/// Adds an inviting organization's invitation changes to its plan. When its invitations kept
/// changing while they were read (`settled` false), nothing is revoked, and an invitation
/// that would replace one is not sent either.
fn add_invitations(
    organization: &mut OrganizationPlan,
    target: &Target,
    invitations: &[ObservedInvitation],
    settled: bool,
) {
    let listed: HashSet<&str> = target
        .members
        .iter()
        .filter_map(|member| member.email.as_deref())
        .collect();
    let mut changes = diff_invitations(target, &listed, invitations);
    if !settled {
        let replaced: HashSet<String> = changes
            .iter()
            .filter(|c| c.action == Action::RevokeInvitation)
            .filter_map(|c| c.email.clone())
            .collect();
        changes.retain(|c| {
            c.action == Action::Invite && !c.email.as_ref().is_some_and(|e| replaced.contains(e))
        });
    }
    organization.changes.extend(changes);
    sort_changes(&mut organization.changes);
    organization.invitations = target.invitations.clone();
    organization.current_invitations = invitations.len();
}

/// The order within one organization: by phase, then action, then user ID and email.
fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        (a.phase(), a.action, &a.user_id, &a.email).cmp(&(
            b.phase(),
            b.action,
            &b.user_id,
            &b.email,
        ))
    });
}

/// Puts a plan built organization by organization in its deterministic order.
pub fn in_order(mut plan: Plan) -> Plan {
    plan.organizations
        .sort_by(|a, b| a.organization_id.cmp(&b.organization_id));
    plan.pending
        .sort_by(|a, b| (&a.organization_id, &a.email).cmp(&(&b.organization_id, &b.email)));
    plan.unavailable
        .sort_by(|a, b| a.organization_id.cmp(&b.organization_id));
    plan
}

/// The changes of one organization.
pub fn diff_organization(target: &Target, live: &[Observed]) -> OrganizationPlan {
    let ignored: HashSet<&str> = target.ignore.iter().map(String::as_str).collect();
    let by_user: HashMap<&str, &Observed> = live.iter().map(|m| (&*m.user_id, m)).collect();
    let wanted: HashSet<&str> = target.members.iter().map(|m| m.user_id.as_str()).collect();
    let exact = target.metadata_mode == MetadataMode::Exact;
    let mut changes = Vec::new();

    for member in &target.members {
        if ignored.contains(member.user_id.as_str()) {
            continue;
        }
        let declared = Declared {
            role: member.role.to_string(),
            public_metadata: member.public_metadata.as_ref().map(Metadata::to_map),
            private_metadata: member.private_metadata.as_ref().map(Metadata::to_map),
            exact,
        };
        let current = by_user.get(member.user_id.as_str()).copied();
        let email = member
            .email
            .clone()
            .or_else(|| current.and_then(|c| c.email.as_deref().map(str::to_owned)));
        let converged = converge(
            &target.organization_id,
            &member.user_id,
            email,
            &declared,
            current,
        );
        changes.extend(converged.into_iter().map(|change| Change {
            source: member.source.clone(),
            ..change
        }));
    }
    if target.prune {
        for current in live {
            let user = &*current.user_id;
            if !wanted.contains(user) && !ignored.contains(user) {
                changes.push(Change {
                    role: Some(current.role.to_string()),
                    ..bare(
                        Action::Delete,
                        &target.organization_id,
                        user,
                        current.email.as_deref().map(str::to_owned),
                    )
                });
            }
        }
    }
    sort_changes(&mut changes);

    let admins_before = live.iter().filter(|m| m.role == Role::ADMIN).count();
    let admins_after = admins_after(live, &changes);
    OrganizationPlan {
        organization_id: target.organization_id.clone(),
        label: target.label.clone(),
        resources: Vec::new(),
        changes,
        current_members: live.len(),
        admins_before,
        admins_after,
        withheld: None,
        invitations: None,
        current_invitations: 0,
    }
}

/// Leaves out the deletions and demotions of an organization whose memberships kept changing
/// while they were read: its view may lack members, and a removal planned from it could take
/// the wrong person's access or leave no admin. Creates, promotions and metadata changes stay
/// (the executor converges a membership that turns out to exist).
pub fn withhold_removals(organization: &mut OrganizationPlan, live: &[Observed]) {
    let before = organization.changes.len();
    organization
        .changes
        .retain(|change| change.phase() == Phase::Grants || change.action.is_invitation());
    organization.withheld = Some(before - organization.changes.len());
    organization.admins_after = admins_after(live, &organization.changes);
}

/// The changes that take one member from `current` (`None`: not a member) to `declared`.
/// The diff uses it for every listed member; the executor uses it to converge a membership
/// it met in another state than planned (already a member, or gone).
pub fn converge(
    organization_id: &str,
    user_id: &str,
    email: Option<String>,
    declared: &Declared,
    current: Option<&Observed>,
) -> Vec<Change> {
    let change = |action| Change {
        declared: Some(declared.clone()),
        ..bare(action, organization_id, user_id, email.clone())
    };
    let Some(current) = current else {
        return vec![Change {
            role: Some(declared.role.clone()),
            metadata_patch: declared_metadata(declared),
            ..change(Action::Create)
        }];
    };
    let mut changes = Vec::new();
    if current.role != declared.role {
        changes.push(Change {
            role: Some(declared.role.clone()),
            previous_role: Some(current.role.to_string()),
            ..change(Action::UpdateRole)
        });
    }
    if let Some(patch) = metadata_patch(
        declared,
        &current.public_metadata,
        &current.private_metadata,
    ) {
        let previous = previous_metadata(&patch, current);
        changes.push(Change {
            metadata_patch: Some(patch),
            previous_metadata: Some(previous),
            ..change(Action::UpdateMetadata)
        });
    }
    changes
}

fn bare(action: Action, organization_id: &str, user_id: &str, email: Option<String>) -> Change {
    Change {
        email,
        ..Change::new(action, organization_id, user_id)
    }
}

/// The current metadata of the parts a patch touches.
fn previous_metadata(patch: &Value, current: &Observed) -> Value {
    let mut previous = Map::new();
    if patch.get("public_metadata").is_some() {
        previous.insert(
            "public_metadata".into(),
            Value::Object(current.public_metadata.to_map()),
        );
    }
    if patch.get("private_metadata").is_some() {
        previous.insert(
            "private_metadata".into(),
            Value::Object(current.private_metadata.to_map()),
        );
    }
    Value::Object(previous)
}
