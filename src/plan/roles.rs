//! Role checks: a create, role change or invitation to a role the organization does not
//! allow is taken out of the plan (and reported) before anything is sent; the other changes
//! stay.

use std::collections::{HashMap, HashSet};

use super::{Action, Change, Observed, Plan, Rejected, Role};

/// Moves every create, role change and invitation whose role is not in its organization's `allowed`
/// roles from the plan to `plan.rejected`. Organizations absent from `allowed` are not
/// checked. `observed` (live memberships) recomputes the admins left after the plan.
pub fn reject_disallowed_roles(
    plan: &mut Plan,
    allowed: &HashMap<String, HashSet<String>>,
    observed: &HashMap<String, Vec<Observed>>,
) {
    let empty = Vec::new();
    for organization in &mut plan.organizations {
        let Some(roles) = allowed.get(&organization.organization_id) else {
            continue;
        };
        let before = organization.changes.len();
        let mut rejected = Vec::new();
        organization.changes.retain(|change| {
            let role = change.role.as_deref().unwrap_or_default();
            let checked = matches!(
                change.action,
                Action::Create | Action::UpdateRole | Action::Invite
            );
            if !checked || roles.contains(role) {
                return true;
            }
            let mut known: Vec<&str> = roles.iter().map(String::as_str).collect();
            known.sort();
            rejected.push(Rejected {
                organization_id: change.organization_id.clone(),
                user_id: change.user_id.clone(),
                email: change.email.clone(),
                role: role.to_owned(),
                reason: format!(
                    "the role `{role}` does not exist in this organization (its roles: {})",
                    known.join(", ")
                ),
            });
            false
        });
        // An invitation that cannot be sent does not replace the one there.
        let not_invited: HashSet<&str> = rejected
            .iter()
            .filter(|r| r.user_id.is_empty())
            .filter_map(|r| r.email.as_deref())
            .collect();
        organization.changes.retain(|change| {
            change.action != Action::RevokeInvitation
                || !change
                    .email
                    .as_deref()
                    .is_some_and(|email| not_invited.contains(email))
        });
        if organization.changes.len() != before {
            let live = observed
                .get(&organization.organization_id)
                .unwrap_or(&empty);
            organization.admins_after = admins_after(live, &organization.changes);
        }
        plan.rejected.extend(rejected);
    }
}

/// The number of `org:admin` members once every change has run.
pub fn admins_after(live: &[Observed], changes: &[Change]) -> usize {
    let mut roles: HashMap<&str, &str> = live
        .iter()
        .map(|m| (&*m.user_id, m.role.as_str()))
        .collect();
    for change in changes {
        match change.action {
            Action::Create | Action::UpdateRole => {
                roles.insert(&change.user_id, change.role.as_deref().unwrap_or_default());
            }
            Action::Delete => {
                roles.remove(change.user_id.as_str());
            }
            Action::UpdateMetadata | Action::Invite | Action::RevokeInvitation => {}
        }
    }
    roles.values().filter(|role| **role == Role::ADMIN).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, OrganizationPlan};

    fn change(action: Action, user: &str, role: &str) -> Change {
        Change {
            role: Some(role.into()),
            ..Change::new(action, "org_1", user)
        }
    }

    #[test]
    fn a_role_the_organization_lacks_is_rejected_and_the_rest_stays() {
        let mut plan = Plan {
            organizations: vec![OrganizationPlan {
                organization_id: "org_1".into(),
                label: None,
                resources: Vec::new(),
                changes: vec![
                    change(Action::Create, "user_1", "org:admin"),
                    change(Action::Create, "user_2", "org:wizard"),
                    change(Action::Delete, "user_3", "org:wizard"),
                ],
                current_members: 1,
                admins_before: 0,
                admins_after: 1,
                withheld: None,
                invitations: None,
                current_invitations: 0,
            }],
            ..Plan::default()
        };
        let allowed = HashMap::from([(
            "org_1".to_owned(),
            HashSet::from(["org:admin".to_owned(), "org:member".to_owned()]),
        )]);
        reject_disallowed_roles(&mut plan, &allowed, &HashMap::new());
        let users: Vec<&str> = plan.changes().map(|c| c.user_id.as_str()).collect();
        assert_eq!(users, ["user_1", "user_3"]);
        assert_eq!(plan.rejected.len(), 1);
        assert_eq!(plan.rejected[0].user_id, "user_2");
        assert!(plan.rejected[0].reason.contains("org:admin, org:member"));
    }
}
