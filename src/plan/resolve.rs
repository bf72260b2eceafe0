//! Resolution: the desired state with every slug and email replaced by Clerk IDs, expired
//! entries dropped, and the checks that need IDs (one user listed twice in one organization).

use std::collections::HashMap;

use time::Date;

use super::{Invitee, Pending, Target, TargetMember};
use crate::desired::{DesiredOrganization, Diagnostic, OrgRef, UserRef};

/// What resolution needs from Clerk.
pub struct ResolveInput<'a> {
    /// Found organizations: reference → (ID, label).
    pub organizations: &'a HashMap<&'a OrgRef, (&'a str, Option<&'a str>)>,
    /// Lower-cased email → user ID.
    pub users: &'a HashMap<String, String>,
    /// Today, in UTC, for `expires`.
    pub today: Date,
}

/// The problems found while resolving.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Invalid input discovered once IDs are known (exit 2, nothing is written).
    pub errors: Vec<Diagnostic>,
    /// Organizations the file names that do not exist (reported; the others proceed).
    pub missing: Vec<OrgRef>,
}

/// Resolves the desired organizations one by one, handing each target to `each` as soon as
/// it is ready, so that a caller can diff and drop it before the next one; each desired
/// organization is dropped once resolved too (at 500,000 members, holding either all at once
/// would cost tens of MB).
pub fn resolve_each(
    input: &ResolveInput<'_>,
    organizations: Vec<DesiredOrganization>,
    mut each: impl FnMut(Target),
) -> Resolution {
    let mut resolution = Resolution::default();
    let mut declared: HashMap<&str, (OrgRef, crate::desired::Origin)> = HashMap::new();
    for organization in organizations {
        let Some((organization_id, label)) = input.organizations.get(&organization.key) else {
            resolution.missing.push(organization.key.clone());
            continue;
        };
        if let Some((first_key, first_origin)) = declared.insert(
            organization_id,
            (organization.key.clone(), organization.origin.clone()),
        ) {
            resolution.errors.push(organization.origin.diagnostic(
                format!("organizations.{}", organization.key),
                format!(
                    "`{}` and `{first_key}` (at {first_origin}) are the same organization ({organization_id})",
                    organization.key
                ),
            ));
            continue;
        }
        let mut target = Target {
            organization_id: (*organization_id).to_owned(),
            label: label.map(str::to_owned),
            prune: organization.prune,
            metadata_mode: organization.metadata_mode,
            members: Vec::with_capacity(organization.members.len()),
            ignore: Vec::new(),
            ignore_emails: Vec::new(),
            pending: Vec::new(),
            invitations: organization.invitations.clone(),
            invitees: Vec::new(),
        };
        let mut seen: HashMap<String, (&crate::desired::DesiredMember, u8)> = HashMap::new();
        // Emails with no user yet, once each (the first entry wins, as for users).
        let mut unresolved: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (index, member) in organization.members.iter().enumerate() {
            let source = organization.source_of(index);
            let (user_id, email) = match &member.user {
                UserRef::Id(id) => (id.clone(), None),
                UserRef::Email(email) => match input.users.get(email) {
                    Some(id) => (id.clone(), Some(email.clone())),
                    None if !member.is_listed_on(input.today) => continue,
                    None if !unresolved.insert(email) => continue,
                    None => {
                        if target.invitations.is_some() {
                            target.invitees.push(Invitee {
                                email: email.clone(),
                                role: member.role.clone(),
                                public_metadata: member.public_metadata().cloned(),
                                private_metadata: member.private_metadata().cloned(),
                                source: source.label(),
                            });
                        } else {
                            target.pending.push(Pending {
                                organization_id: (*organization_id).to_owned(),
                                email: email.clone(),
                                role: member.role.to_string(),
                            });
                        }
                        continue;
                    }
                },
            };
            if let Some((first, rank)) = seen.get(&user_id).copied() {
                // Members come in precedence order: a direct entry beats a group entry, and
                // both beat `all_organizations`; entries that agree are one.
                if rank < source.rank() || crate::desired::agree(first, member) {
                    continue;
                }
                resolution.errors.push(organization.origin.at(member.position).diagnostic(
                    format!("organizations.{}.members", organization.key),
                    format!(
                        "`{}` and `{}` (line {}) are the same user ({user_id}); list each user once",
                        member.user, first.user, first.position.line
                    ),
                ));
                continue;
            }
            seen.insert(user_id.clone(), (member, source.rank()));
            if member.is_listed_on(input.today) {
                target.members.push(TargetMember {
                    user_id,
                    email,
                    role: member.role.clone(),
                    public_metadata: member.public_metadata().cloned(),
                    private_metadata: member.private_metadata().cloned(),
                    source: source.label(),
                });
            }
        }
        for user in &organization.ignore {
            match user {
                UserRef::Id(id) => target.ignore.push(id.clone()),
                UserRef::Email(email) => {
                    if let Some(id) = input.users.get(email) {
                        target.ignore.push(id.clone());
                    }
                    target.ignore_emails.push(email.clone());
                }
            }
        }
        each(target);
    }
    resolution
}
