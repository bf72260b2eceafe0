//! Resolution: the desired state with every slug and email replaced by Clerk IDs, expired
//! entries dropped, and the checks that need IDs (one user listed twice in one organization).

use std::collections::HashMap;

use time::Date;

use super::{Pending, Target, TargetMember};
use crate::desired::{DesiredState, Diagnostic, OrgRef, UserRef};

/// What resolution needs from Clerk.
pub struct ResolveInput<'a> {
    pub desired: &'a DesiredState,
    /// Found organizations: reference → (ID, label).
    pub organizations: &'a HashMap<OrgRef, (String, Option<String>)>,
    /// Lower-cased email → user ID.
    pub users: &'a HashMap<String, String>,
    /// Today, in UTC, for `expires`.
    pub today: Date,
}

/// The targets, and the problems found.
#[derive(Debug, Default)]
pub struct Resolution {
    pub targets: Vec<Target>,
    /// Invalid input discovered once IDs are known (exit 2, nothing is written).
    pub errors: Vec<Diagnostic>,
    /// Organizations the file names that do not exist (reported; the others proceed).
    pub missing: Vec<OrgRef>,
}

/// Resolves every organization and member of the desired state.
pub fn resolve(input: &ResolveInput<'_>) -> Resolution {
    let mut targets = Vec::new();
    let mut resolution = resolve_each(input, |target| targets.push(target));
    resolution.targets = targets;
    resolution
}

/// Resolves organization by organization, handing each target to `each` as soon as it is
/// ready, so that a caller can diff and drop it before the next one (at 500,000 members, all
/// targets at once would cost ~100 MB). The returned resolution has no targets.
pub fn resolve_each(input: &ResolveInput<'_>, mut each: impl FnMut(Target)) -> Resolution {
    let mut resolution = Resolution::default();
    let mut declared: HashMap<&str, &crate::desired::DesiredOrganization> = HashMap::new();
    for organization in &input.desired.organizations {
        let Some((organization_id, label)) = input.organizations.get(&organization.key) else {
            resolution.missing.push(organization.key.clone());
            continue;
        };
        if let Some(first) = declared.insert(organization_id, organization) {
            resolution.errors.push(organization.origin.diagnostic(
                format!("organizations.{}", organization.key),
                format!(
                    "`{}` and `{}` (at {}) are the same organization ({organization_id})",
                    organization.key, first.key, first.origin
                ),
            ));
            continue;
        }
        let mut target = Target {
            organization_id: organization_id.clone(),
            label: label.clone(),
            prune: organization.prune,
            metadata_mode: organization.metadata_mode,
            members: Vec::new(),
            ignore: Vec::new(),
            pending: Vec::new(),
        };
        let mut seen: HashMap<String, &crate::desired::DesiredMember> = HashMap::new();
        for member in &organization.members {
            let (user_id, email) = match &member.user {
                UserRef::Id(id) => (id.clone(), None),
                UserRef::Email(email) => match input.users.get(email) {
                    Some(id) => (id.clone(), Some(email.clone())),
                    None => {
                        if member.is_listed_on(input.today) {
                            target.pending.push(Pending {
                                organization_id: organization_id.clone(),
                                email: email.clone(),
                                role: member.role.to_string(),
                            });
                        }
                        continue;
                    }
                },
            };
            if let Some(first) = seen.insert(user_id.clone(), member) {
                resolution.errors.push(member.origin.diagnostic(
                    format!("organizations.{}.members", organization.key),
                    format!(
                        "`{}` and `{}` (line {}) are the same user ({user_id}); list each user once",
                        member.user, first.user, first.origin.line
                    ),
                ));
                continue;
            }
            if member.is_listed_on(input.today) {
                target.members.push(TargetMember {
                    user_id,
                    email,
                    role: member.role.clone(),
                    public_metadata: member.public_metadata.clone(),
                    private_metadata: member.private_metadata.clone(),
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
                }
            }
        }
        target.members.shrink_to_fit();
        each(target);
    }
    resolution
}
