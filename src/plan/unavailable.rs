//! Organizations that use a directory group that is unavailable this run (it could not be
//! read, or came back empty without `allow_empty`; docs/directories.md). Its people are
//! unknown, so anyone there could have come from it: nothing it could decide is removed or
//! demoted this run. Creates, invitations and promotions from what was read go ahead.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::roles::admins_after;
use super::{Action, Change, Observed, OrganizationPlan, Role};

/// What resolution knows of an organization that uses unavailable directory groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Uncertain {
    /// Each unavailable group, described (`group support from corp could not be read`).
    pub groups: Vec<String>,
    /// The best precedence among them (see `desired::Source::rank`: lower wins).
    pub rank: u8,
    /// The precedence of the entry that lists each member, by user ID.
    pub ranks: HashMap<String, u8>,
}

/// An organization of the plan where changes were withheld because a directory group it uses
/// is unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UnavailableGroups {
    pub organization_id: String,
    /// Each unavailable group, described.
    pub groups: Vec<String>,
    /// The changes left out.
    pub withheld: usize,
}

impl Uncertain {
    /// Whether an unavailable group could have decided this change otherwise:
    /// - a deletion or a revoked invitation: the person may be in the group;
    /// - a role or metadata change of someone listed by an entry the group outranks: the
    ///   group's entry would have won;
    /// - a demotion (admin taken away) of someone listed by an entry of the group's own
    ///   precedence: the group could only agree, or make the file invalid — and an admin lost
    ///   to a file that may be invalid is not worth the risk.
    ///
    /// Creates, invitations and promotions (a role changed to admin) go ahead, and so does
    /// any change of someone an entry of better precedence lists.
    fn withholds(&self, change: &Change) -> bool {
        match change.action {
            Action::Delete | Action::RevokeInvitation => true,
            Action::Create | Action::Invite => false,
            Action::UpdateRole if change.role.as_deref() == Some(Role::ADMIN) => false,
            Action::UpdateRole | Action::UpdateMetadata => {
                let rank = self.ranks.get(&change.user_id).copied().unwrap_or(u8::MAX);
                rank > self.rank || (rank == self.rank && change.is_demotion())
            }
        }
    }
}

/// Leaves out of `organization` the changes an unavailable group could have decided
/// otherwise, and an invitation that would replace a revocation left out; returns the note
/// for the plan.
pub fn withhold(
    organization: &mut OrganizationPlan,
    uncertain: &Uncertain,
    live: &[Observed],
) -> UnavailableGroups {
    let before = organization.changes.len();
    let kept_invitations: HashSet<String> = organization
        .changes
        .iter()
        .filter(|c| c.action == Action::RevokeInvitation)
        .filter_map(|c| c.email.clone())
        .collect();
    organization.changes.retain(|change| {
        let replaces_a_kept_invitation = change.action == Action::Invite
            && change
                .email
                .as_ref()
                .is_some_and(|email| kept_invitations.contains(email));
        !uncertain.withholds(change) && !replaces_a_kept_invitation
    });
    organization.admins_after = admins_after(live, &organization.changes);
    UnavailableGroups {
        organization_id: organization.organization_id.clone(),
        groups: uncertain.groups.clone(),
        withheld: before - organization.changes.len(),
    }
}

/// What the plan says under an organization that uses an unavailable group.
pub(super) fn note(unavailable: &UnavailableGroups) -> String {
    format!(
        "{}; nothing it could decide is removed or demoted in this organization this run ({} change(s) left out); the next run reads it again",
        unavailable.groups.join(", "),
        unavailable.withheld
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: Action, user: &str, previous: Option<&str>, role: &str) -> Change {
        Change {
            role: Some(role.into()),
            previous_role: previous.map(Into::into),
            email: Some(format!("{user}@example.com")),
            ..Change::new(action, "org_1", user)
        }
    }

    fn observed(user: &str, role: &str) -> Observed {
        Observed {
            user_id: user.into(),
            email: None,
            role: Role::parse(role).unwrap(),
            public_metadata: Default::default(),
            private_metadata: Default::default(),
        }
    }

    #[test]
    fn removals_and_changes_the_group_could_decide_are_left_out_and_grants_go_ahead() {
        let uncertain = Uncertain {
            groups: vec!["group staff from corp could not be read".into()],
            rank: 1,
            ranks: HashMap::from([
                ("direct".to_owned(), 0),
                ("same".to_owned(), 1),
                ("same_admin".to_owned(), 1),
                ("rule".to_owned(), 2),
            ]),
        };
        let mut organization = OrganizationPlan {
            organization_id: "org_1".into(),
            label: None,
            resources: Vec::new(),
            changes: vec![
                change(Action::Create, "new", None, "org:member"),
                change(
                    Action::UpdateRole,
                    "direct",
                    Some("org:admin"),
                    "org:member",
                ),
                change(
                    Action::UpdateRole,
                    "same",
                    Some("org:member"),
                    "org:billing",
                ),
                change(
                    Action::UpdateRole,
                    "same_admin",
                    Some("org:admin"),
                    "org:member",
                ),
                change(Action::UpdateRole, "rule", Some("org:member"), "org:admin"),
                change(Action::Delete, "gone", None, "org:member"),
                change(Action::Invite, "", None, "org:member"),
                change(Action::RevokeInvitation, "", None, "org:member"),
            ],
            current_members: 5,
            admins_before: 2,
            admins_after: 0,
            withheld: None,
            invitations: None,
            current_invitations: 1,
        };
        let live = [
            observed("direct", "org:admin"),
            observed("same_admin", "org:admin"),
        ];
        let note = withhold(&mut organization, &uncertain, &live);
        let kept: Vec<(Action, &str)> = organization
            .changes
            .iter()
            .map(|c| (c.action, c.user_id.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                (Action::Create, "new"),
                (Action::UpdateRole, "direct"),
                (Action::UpdateRole, "same"),
                (Action::UpdateRole, "rule"),
            ],
            "the promotion goes ahead; the invitation replaces the revocation left out, so it waits too"
        );
        assert_eq!(note.withheld, 4);
        assert_eq!(organization.admins_after, 2);
    }
}
