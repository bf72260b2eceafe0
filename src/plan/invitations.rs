//! The invitation diff (docs/invitations.md: "Onboarding people who have no account yet"): the emails an
//! organization lists that have no Clerk user yet × its pending invitations → invitations to
//! send and to revoke.

use std::collections::{HashMap, HashSet};

use super::metadata::{declared_metadata, metadata_patch};
use super::{Action, Change, Declared, Metadata, ObservedInvitation, Target};
use crate::desired::MetadataMode;

/// Whether a pending invitation already says what is declared: the same role, and managed
/// metadata that a membership made from it would not need to change.
pub fn invitation_in_sync(declared: &Declared, invitation: &ObservedInvitation) -> bool {
    invitation.role == declared.role
        && metadata_patch(
            declared,
            &invitation.public_metadata,
            &invitation.private_metadata,
        )
        .is_none()
}

/// The invitations to send and to revoke in one organization that sends invitations. A
/// listed email whose pending invitation differs (role or metadata) gets it revoked and a new
/// one sent; with prune, the pending invitations of emails the organization neither lists nor
/// ignores are revoked. Emails the organization lists that have a Clerk user are members, not
/// invitees: their invitations are left alone.
pub fn diff_invitations(
    target: &Target,
    listed_emails: &HashSet<&str>,
    live: &[ObservedInvitation],
) -> Vec<Change> {
    if target.invitations.is_none() {
        return Vec::new();
    }
    let organization = target.organization_id.as_str();
    let exact = target.metadata_mode == MetadataMode::Exact;
    let mut by_email: HashMap<&str, Vec<&ObservedInvitation>> = HashMap::new();
    for invitation in live {
        by_email
            .entry(invitation.email.as_str())
            .or_default()
            .push(invitation);
    }
    let ignored: HashSet<&str> = target.ignore_emails.iter().map(String::as_str).collect();
    let mut changes = Vec::new();
    let mut invitees = HashSet::new();
    for invitee in &target.invitees {
        if ignored.contains(invitee.email.as_str()) {
            continue;
        }
        invitees.insert(invitee.email.as_str());
        let declared = Declared {
            role: invitee.role.to_string(),
            public_metadata: invitee.public_metadata.as_ref().map(Metadata::to_map),
            private_metadata: invitee.private_metadata.as_ref().map(Metadata::to_map),
            exact,
        };
        let existing = by_email.get(invitee.email.as_str()).map(Vec::as_slice);
        let existing = existing.unwrap_or_default();
        if existing
            .iter()
            .any(|invitation| invitation_in_sync(&declared, invitation))
        {
            continue;
        }
        changes.extend(
            existing
                .iter()
                .map(|invitation| revoke(organization, invitation)),
        );
        changes.push(Change {
            source: invitee.source.clone(),
            ..invite(organization, &invitee.email, declared)
        });
    }
    if target.prune {
        for invitation in live {
            let email = invitation.email.as_str();
            if !invitees.contains(email)
                && !listed_emails.contains(email)
                && !ignored.contains(email)
            {
                changes.push(revoke(organization, invitation));
            }
        }
    }
    changes
}

/// An invitation carrying the declared role and metadata.
pub fn invite(organization_id: &str, email: &str, declared: Declared) -> Change {
    Change {
        email: Some(email.to_owned()),
        role: Some(declared.role.clone()),
        metadata_patch: declared_metadata(&declared),
        declared: Some(declared),
        ..Change::new(Action::Invite, organization_id, "")
    }
}

fn revoke(organization_id: &str, invitation: &ObservedInvitation) -> Change {
    Change {
        email: Some(invitation.email.clone()),
        role: Some(invitation.role.to_string()),
        invitation_id: Some(invitation.id.clone()),
        ..Change::new(Action::RevokeInvitation, organization_id, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Role;
    use serde_json::json;

    fn target(prune: bool) -> Target {
        Target {
            organization_id: "org_1".into(),
            label: None,
            prune,
            metadata_mode: MetadataMode::Exact,
            members: Vec::new(),
            ignore: Vec::new(),
            ignore_emails: vec!["breakglass@example.com".into()],
            pending: Vec::new(),
            invitations: Some(Box::default()),
            invitees: vec![super::super::Invitee {
                email: "new@example.com".into(),
                role: Role::parse("member").unwrap(),
                public_metadata: Some(json!({"team": "a"}).as_object().cloned().unwrap().into()),
                private_metadata: None,
                source: None,
            }],
            unavailable: None,
            fields: None,
        }
    }

    fn pending(id: &str, email: &str, role: &str, public: serde_json::Value) -> ObservedInvitation {
        ObservedInvitation {
            id: id.into(),
            email: email.into(),
            role: Role::observed(role),
            public_metadata: public.as_object().cloned().unwrap().into(),
            private_metadata: Metadata::default(),
        }
    }

    fn actions(changes: &[Change]) -> Vec<(Action, String)> {
        changes
            .iter()
            .map(|c| (c.action, c.email.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_uninvited_email_is_invited_with_its_role_and_metadata() {
        let changes = diff_invitations(&target(true), &HashSet::new(), &[]);
        assert_eq!(
            actions(&changes),
            [(Action::Invite, "new@example.com".into())]
        );
        assert_eq!(changes[0].role.as_deref(), Some("org:member"));
        assert_eq!(
            changes[0].metadata_patch,
            Some(json!({"public_metadata": {"team": "a"}}))
        );
    }

    #[test]
    fn an_invitation_as_declared_is_in_sync() {
        let live = [pending(
            "inv_1",
            "new@example.com",
            "org:member",
            json!({"team": "a"}),
        )];
        assert!(diff_invitations(&target(true), &HashSet::new(), &live).is_empty());
    }

    #[test]
    fn another_role_or_metadata_is_revoked_and_invited_again() {
        for live in [
            pending(
                "inv_1",
                "new@example.com",
                "org:admin",
                json!({"team": "a"}),
            ),
            pending(
                "inv_1",
                "new@example.com",
                "org:member",
                json!({"team": "b"}),
            ),
        ] {
            let changes = diff_invitations(&target(false), &HashSet::new(), &[live]);
            assert_eq!(
                actions(&changes),
                [
                    (Action::RevokeInvitation, "new@example.com".into()),
                    (Action::Invite, "new@example.com".into())
                ]
            );
            assert_eq!(changes[0].invitation_id.as_deref(), Some("inv_1"));
            assert!(changes[0].phase() < changes[1].phase(), "revoked first");
        }
    }

    #[test]
    fn prune_revokes_unlisted_invitations_but_not_ignored_or_listed_ones() {
        let live = [
            pending("inv_1", "gone@example.com", "org:member", json!({})),
            pending("inv_2", "breakglass@example.com", "org:admin", json!({})),
            pending("inv_3", "member@example.com", "org:member", json!({})),
            pending(
                "inv_4",
                "new@example.com",
                "org:member",
                json!({"team": "a"}),
            ),
        ];
        let listed: HashSet<&str> = ["member@example.com"].into();
        let changes = diff_invitations(&target(true), &listed, &live);
        assert_eq!(
            actions(&changes),
            [(Action::RevokeInvitation, "gone@example.com".into())]
        );
        assert!(diff_invitations(&target(false), &listed, &live).is_empty());
    }

    #[test]
    fn an_organization_that_does_not_invite_plans_nothing() {
        let mut target = target(true);
        target.invitations = None;
        let live = [pending(
            "inv_1",
            "gone@example.com",
            "org:member",
            json!({}),
        )];
        assert!(diff_invitations(&target, &HashSet::new(), &live).is_empty());
    }
}
