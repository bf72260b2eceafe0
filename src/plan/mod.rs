//! The planner: desired × observed → Plan. Pure: no IO, no async.
//!
//! `resolve` turns the desired state into per-organization targets (IDs, not slugs or
//! emails); `diff` compares targets with live memberships; `guard` evaluates the safety
//! limits; `render` prints the plan as text or JSON.

pub mod authorization;
mod diff;
pub(crate) mod found;
mod guard;
mod invitations;
mod json;
pub mod markdown;
pub mod metadata;
pub mod organization_output;
pub mod organizations;
mod private;
mod render;
mod resolve;
mod resource_text;
mod resources;
mod roles;
pub mod saved;
mod text;
mod unavailable;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::desired::{Invitations, Metadata};
use crate::desired::{MetadataMode, Role};

pub use diff::diff;
pub(crate) use diff::{compute, converge};
pub(crate) use guard::refusals;
pub use guard::{Limit, MaxDeletes, MaxDeletesError, Refusal};
pub(crate) use invitations::invitation_in_sync;
pub(crate) use private::Private;
pub(crate) use render::{Format, Stage, render};
pub(crate) use resolve::ResolveInput;
pub use resources::{
    AnyChange, RejectedResource, Resource, ResourceAction, ResourceChange, order_instance_changes,
};
pub(crate) use roles::reject_disallowed_roles;
pub use unavailable::{UnavailableGroups, Uncertain};

/// What one change does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    UpdateRole,
    UpdateMetadata,
    Delete,
    /// Invite an email that has no Clerk user yet.
    Invite,
    /// Revoke a pending invitation.
    RevokeInvitation,
}

impl Action {
    /// Every action, in the order of the summary.
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::UpdateRole,
        Action::UpdateMetadata,
        Action::Delete,
        Action::Invite,
        Action::RevokeInvitation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::UpdateRole => "update_role",
            Action::UpdateMetadata => "update_metadata",
            Action::Delete => "delete",
            Action::Invite => "invite",
            Action::RevokeInvitation => "revoke_invitation",
        }
    }

    /// Whether the action is about an invitation rather than a membership.
    pub fn is_invitation(self) -> bool {
        matches!(self, Action::Invite | Action::RevokeInvitation)
    }

    /// Whether the safety limit on deletions counts it (deletions and revocations).
    pub fn takes_access(self) -> bool {
        matches!(self, Action::Delete | Action::RevokeInvitation)
    }
}

/// How a change ended (or `planned`, before an apply), as the reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Planned,
    Applied,
    Failed,
    Skipped,
}

impl OutcomeKind {
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Planned => "planned",
            OutcomeKind::Applied => "applied",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.pad(self.name())
    }
}

/// One change's outcome and its detail: the error or reason, or for `applied` a note.
pub type ChangeOutcome = (OutcomeKind, Option<String>);

/// One change to one membership.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Change {
    pub action: Action,
    pub organization_id: String,
    /// Empty for invitations (the person has no Clerk user yet).
    #[serde(default)]
    pub user_id: String,
    /// The user's email, where known (from the file or from Clerk).
    pub email: Option<String>,
    /// The new role (create, update_role) or the current one (delete).
    pub role: Option<String>,
    pub previous_role: Option<String>,
    /// For update_metadata: the merge patch sent. For create: the declared metadata sent in
    /// the POST. `{"public_metadata": {…}, "private_metadata": {…}}`, either part optional.
    pub metadata_patch: Option<Value>,
    /// For update_metadata: the metadata before, for display (`old → new`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_metadata: Option<Value>,
    /// For create and updates: the member as the file declares it, so that the executor can
    /// converge from whatever it meets (already a member, or gone) without the file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub declared: Option<Declared>,
    /// For revoke_invitation: the invitation revoked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub invitation_id: Option<String>,
    /// Why the change is made when the person is not listed directly: `group support`,
    /// `all organizations`, `all organizations, group support`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
}

/// A member as the file declares it: role, managed metadata (`None`: unmanaged), and whether
/// declared metadata is the whole metadata (`exact`) or merged in.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Declared {
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub private_metadata: Option<Map<String, Value>>,
    pub exact: bool,
}

impl Change {
    /// A change of this action to one membership, with nothing else set yet.
    pub fn new(action: Action, organization_id: &str, user_id: &str) -> Change {
        Change {
            action,
            organization_id: organization_id.to_owned(),
            user_id: user_id.to_owned(),
            email: None,
            role: None,
            previous_role: None,
            metadata_patch: None,
            previous_metadata: None,
            declared: None,
            invitation_id: None,
            source: None,
        }
    }

    /// Who the change is about: `user_x (email)`, `user_x`, or the email of an invitation.
    pub fn who(&self) -> String {
        match (&self.email, self.user_id.is_empty()) {
            (Some(email), true) => email.clone(),
            (Some(email), false) => format!("{} ({email})", self.user_id),
            (None, _) => self.user_id.clone(),
        }
    }

    /// A role change that takes admin away.
    pub fn is_demotion(&self) -> bool {
        self.action == Action::UpdateRole
            && self.previous_role.as_deref() == Some(Role::ADMIN)
            && self.role.as_deref() != Some(Role::ADMIN)
    }

    /// The ordering phase within an organization (see [`Phase`]).
    pub fn phase(&self) -> Phase {
        match self.action {
            Action::Invite => Phase::Invitations,
            Action::Delete | Action::RevokeInvitation => Phase::Removals,
            _ if self.is_demotion() => Phase::Demotions,
            _ => Phase::Grants,
        }
    }
}

/// The steps an organization's changes run in, in this order: everything that cannot remove
/// an admin first, then demotions, then deletions and revocations, then invitations (after the
/// revocation of an invitation they replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Creates, promotions and metadata changes.
    Grants,
    /// Role changes that take admin away.
    Demotions,
    /// Deletions and revocations of invitations.
    Removals,
    /// Invitations to send.
    Invitations,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 4] = [
        Phase::Grants,
        Phase::Demotions,
        Phase::Removals,
        Phase::Invitations,
    ];
}

/// A member whose email matches no Clerk user yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pending {
    pub organization_id: String,
    pub email: String,
    pub role: String,
}

/// The changes of one managed organization, in the order they must run.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct OrganizationPlan {
    pub organization_id: String,
    /// Slug or name, for display.
    pub label: Option<String>,
    /// The organization's own changes (its fields, its domains), run before its memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceChange>,
    pub changes: Vec<Change>,
    /// Memberships today.
    pub current_members: usize,
    /// `org:admin` members today, and after the plan.
    pub admins_before: usize,
    pub admins_after: usize,
    /// Deletions and demotions left out because the organization's memberships kept changing
    /// while they were read (see `diff::withhold_removals`); `None` when it was read
    /// consistently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<usize>,
    /// How the organization invites people; `None` when it sends no invitations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitations: Option<Box<Invitations>>,
    /// Pending invitations today (read only where invitations are sent).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current_invitations: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// Everything a run would change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Plan {
    pub organizations: Vec<OrganizationPlan>,
    pub pending: Vec<Pending>,
    /// Changes that cannot be made (a role the organization does not allow); never sent.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    /// The organizations `--org` selected, as given; empty: every organization the files
    /// manage. A saved plan records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected: Vec<String>,
    /// Organizations the files name that do not exist in Clerk: nothing is planned for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// The instance's permissions, roles and role sets to change, in the order they run
    /// (see [`ResourceChange::step`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization: Vec<ResourceChange>,
    /// Objects other than memberships that the plan leaves alone although the files would
    /// change them (a role `prune` would delete that people still hold), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_resources: Vec<RejectedResource>,
    /// The kinds of objects besides memberships the files manage (`summary.resources` counts
    /// these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed: Vec<Resource>,
    /// The objects besides memberships that the plan could delete today (custom permissions
    /// and roles under `prune`, domains of organizations that list them): a percentage
    /// `--max-deletes` is taken over these and the memberships together.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current_resources: usize,
    /// Organizations that use a directory group unavailable this run, with the changes left
    /// out in them (docs/directories.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<UnavailableGroups>,
}

/// A change left out of the plan because it cannot succeed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rejected {
    pub organization_id: String,
    pub user_id: String,
    pub email: Option<String>,
    pub role: String,
    pub reason: String,
}

impl Plan {
    /// The membership and invitation changes, organization by organization ([`Plan::all_changes`]
    /// walks every change).
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.organizations.iter().flat_map(|org| org.changes.iter())
    }

    /// Whether the plan changes nothing at all (memberships, invitations or other objects).
    pub fn is_empty(&self) -> bool {
        self.all_changes().next().is_none()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes()
            .filter(|change| change.action == action)
            .count()
    }

    /// Organizations whose memberships could not be read consistently this run.
    pub fn unsettled(&self) -> impl Iterator<Item = &OrganizationPlan> {
        self.organizations
            .iter()
            .filter(|org| org.withheld.is_some())
    }

    /// Memberships of the managed organizations today, and their pending invitations where
    /// they send invitations.
    pub fn current_members(&self) -> usize {
        self.organizations
            .iter()
            .map(|org| org.current_members + org.current_invitations)
            .sum()
    }

    /// Deletions and revocations, of memberships and of other objects: what the deletion
    /// limit counts.
    pub fn removals(&self) -> usize {
        self.all_changes().filter(AnyChange::takes_access).count()
    }

    /// Deletions of objects other than memberships and invitations.
    pub fn resource_removals(&self) -> usize {
        self.resource_changes().filter(|c| c.takes_access()).count()
    }

    /// Whether any organization of the plan sends invitations.
    pub fn sends_invitations(&self) -> bool {
        self.organizations.iter().any(|o| o.invitations.is_some())
    }
}

/// One managed organization as the file wants it, with every reference resolved to IDs.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub organization_id: String,
    pub label: Option<String>,
    pub prune: bool,
    pub metadata_mode: MetadataMode,
    /// Listed (and not expired) members, by user ID.
    pub members: Vec<TargetMember>,
    /// User IDs never touched.
    pub ignore: Vec<String>,
    /// Emails never touched (their invitations are never revoked), lower-cased.
    pub ignore_emails: Vec<String>,
    pub pending: Vec<Pending>,
    /// How the organization invites; `None`: emails with no user stay pending.
    pub invitations: Option<Box<Invitations>>,
    /// Listed emails with no Clerk user, to invite (only when `invitations` is set).
    pub invitees: Vec<Invitee>,
    /// When it uses directory groups that are unavailable this run: what they could decide.
    pub unavailable: Option<Box<Uncertain>>,
    /// The organization's own fields and domains the file declares (`None`: none).
    pub fields: Option<Box<crate::desired::OrganizationFields>>,
}

/// An email the file lists that has no Clerk user yet, in an organization that invites.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitee {
    /// Lower-cased.
    pub email: String,
    pub role: Role,
    pub public_metadata: Option<Metadata>,
    pub private_metadata: Option<Metadata>,
    /// Why the email is listed when not directly.
    pub source: Option<String>,
}

/// The pending invitations of the organizations that send invitations, by organization ID.
pub type ObservedInvitations = HashMap<String, Vec<ObservedInvitation>>;

/// One pending invitation, as the diff needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedInvitation {
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub role: Role,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
}

/// One member as the file wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMember {
    pub user_id: String,
    pub email: Option<String>,
    pub role: Role,
    pub public_metadata: Option<Metadata>,
    pub private_metadata: Option<Metadata>,
    /// Why the member is listed when not directly: `group support`, `all organizations`.
    pub source: Option<String>,
}

/// What was read live, as the diff needs it.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The memberships of the managed organizations, by organization ID.
    pub memberships: HashMap<String, Vec<Observed>>,
    /// Organizations whose memberships kept changing while they were read.
    pub unsettled: Vec<String>,
    /// The pending invitations of the organizations that send invitations, by organization ID.
    pub invitations: HashMap<String, Vec<ObservedInvitation>>,
    /// Organizations whose invitations kept changing while they were read.
    pub unsettled_invitations: Vec<String>,
    /// The organizations that declare their own fields, as Clerk has them, by ID (read only
    /// for those).
    pub organizations: HashMap<String, organizations::ObservedOrganization>,
    /// The domains of the organizations that declare `domains`, by organization ID.
    pub domains: HashMap<String, Vec<organizations::ObservedDomain>>,
    /// Organizations whose domains kept changing while they were read.
    pub unsettled_domains: Vec<String>,
    /// The roles of the role sets organizations move to, by role set key (read only for
    /// those); a key missing here does not exist.
    pub role_sets: HashMap<String, Vec<String>>,
}

/// One live membership, as the diff needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub user_id: Box<str>,
    pub email: Option<Box<str>>,
    pub role: Role,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
}
