//! Resolution: the desired state with every slug and email replaced by Clerk IDs, expired
//! entries dropped, and the checks that need IDs (one user listed twice in one organization).

use std::collections::{HashMap, HashSet};

use time::Date;

use super::{Invitee, Pending, Target, TargetMember, Uncertain};
use crate::desired::{
    DesiredMember, DesiredOrganization, Diagnostic, OrgRef, Origin, Source, UserRef,
};

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
    let mut declared: HashMap<&str, (OrgRef, Origin)> = HashMap::new();
    for organization in organizations {
        let Some((organization_id, label)) = input
            .organizations
            .get(&organization.key)
            .copied()
            .or_else(|| to_create(&organization))
        else {
            resolution.missing.push(organization.key.clone());
            continue;
        };
        // An organization to create has no ID yet: it is no other entry's organization.
        if !organization_id.is_empty()
            && let Some((first_key, first_origin)) = declared.insert(
                organization_id,
                (organization.key.clone(), organization.origin.clone()),
            )
        {
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
            unavailable: uncertain(&organization),
            fields: organization.fields.clone(),
        };
        resolve_members(input, &organization, &mut target, &mut resolution.errors);
        resolve_ignore(input, &organization, &mut target);
        each(target);
    }
    resolution
}

/// An organization keyed by a slug no organization has, whose file gives its `name`: it is
/// created, and has no ID until then (`""`); its label is its slug.
fn to_create(organization: &DesiredOrganization) -> Option<(&'static str, Option<&str>)> {
    let named = organization
        .fields
        .as_ref()
        .is_some_and(|fields| fields.name.is_some());
    match &organization.key {
        OrgRef::Slug(slug) if named => Some(("", Some(slug.as_str()))),
        _ => None,
    }
}

/// The members of one organization, by user ID. An email with no Clerk user is invited where
/// the organization invites, and pending otherwise (once each: the first entry wins, as for
/// users). A user listed twice is one entry when the entries agree or one outranks the other
/// (a direct entry beats a group entry, both beat `all_organizations`), and an error otherwise.
fn resolve_members(
    input: &ResolveInput<'_>,
    organization: &DesiredOrganization,
    target: &mut Target,
    errors: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<String, (&DesiredMember, u8)> = HashMap::new();
    let mut unresolved: HashSet<&str> = HashSet::new();
    for (index, member) in organization.members.iter().enumerate() {
        let source = organization.source_of(index);
        let (user_id, email) = match &member.user {
            UserRef::Id(id) => (id.clone(), None),
            UserRef::Email(email) => match input.users.get(email) {
                Some(id) => (id.clone(), Some(email.clone())),
                None => {
                    if member.is_listed_on(input.today) && unresolved.insert(email) {
                        add_unresolved(target, member, email, source);
                    }
                    continue;
                }
            },
        };
        if let Some((first, rank)) = seen.get(&user_id).copied() {
            // Members come in precedence order; entries that agree are one.
            if rank < source.rank() || crate::desired::agree(first, member) {
                continue;
            }
            errors.push(organization.origin.at(member.position).diagnostic(
                format!("organizations.{}.members", organization.key),
                format!(
                    "`{}` and `{}` (line {}) are the same user ({user_id}); list each user once",
                    member.user, first.user, first.position.line
                ),
            ));
            continue;
        }
        seen.insert(user_id.clone(), (member, source.rank()));
        if let Some(uncertain) = target.unavailable.as_mut() {
            uncertain.ranks.insert(user_id.clone(), source.rank());
        }
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
}

/// What the unavailable directory groups an organization uses could decide there, when it
/// uses any (the precedence of each member is filled in as they are resolved).
fn uncertain(organization: &DesiredOrganization) -> Option<Box<Uncertain>> {
    let rank = organization.unavailable.iter().map(|g| g.rank).min()?;
    Some(Box::new(Uncertain {
        groups: organization
            .unavailable
            .iter()
            .map(|group| group.describe())
            .collect(),
        rank,
        ranks: HashMap::new(),
    }))
}

/// A listed email with no Clerk user yet: an invitee where the organization invites, pending
/// otherwise.
fn add_unresolved(target: &mut Target, member: &DesiredMember, email: &str, source: &Source) {
    if target.invitations.is_some() {
        target.invitees.push(Invitee {
            email: email.to_owned(),
            role: member.role.clone(),
            public_metadata: member.public_metadata().cloned(),
            private_metadata: member.private_metadata().cloned(),
            source: source.label(),
        });
    } else {
        target.pending.push(Pending {
            organization_id: target.organization_id.clone(),
            email: email.to_owned(),
            role: member.role.to_string(),
        });
    }
}

/// The users never touched, by ID; an ignored email also keeps its invitations.
fn resolve_ignore(
    input: &ResolveInput<'_>,
    organization: &DesiredOrganization,
    target: &mut Target,
) {
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
}
