//! The plan (or an apply's outcome) for programs: one JSON document (docs/plan-and-apply.md: "Plan output").

use serde::Serialize;
use serde_json::{Map, Value};

use super::text::organization_note;
use super::{
    Action, AnyChange, Change, ChangeOutcome, OutcomeKind, Pending, Plan, Refusal, Rejected,
    RejectedResource, Resource, ResourceAction, ResourceChange,
};

/// One element of `changes`: a membership's or invitation's change, or another object's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChangeEntry<'a> {
    Membership(ChangeReport<'a>),
    Resource(ResourceReport<'a>),
}

/// The outcome of one membership or invitation change, for the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeReport<'a> {
    /// `membership` or `invitation`.
    pub resource: Resource,
    pub action: Action,
    pub organization_id: &'a str,
    /// `null` for invitations (the person has no Clerk user yet).
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub role: Option<&'a str>,
    pub previous_role: Option<&'a str>,
    pub metadata_patch: Option<&'a Value>,
    pub outcome: OutcomeKind,
    /// Why a change failed or was skipped.
    pub error: Option<&'a str>,
    /// How an applied change was done, when it was not the plain request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    /// Why the change is made when the person is not listed directly (`group support`,
    /// `all organizations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
}

/// The outcome of a change to an object that is not a membership (a permission, role, role
/// set, organization or domain).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceReport<'a> {
    pub resource: Resource,
    pub action: ResourceAction,
    pub key: &'a str,
    /// Organization and domain changes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<&'a str>,
    /// The fields that change, as they are; `null` for a create.
    pub before: Option<&'a Map<String, Value>>,
    /// The fields that change, as they will be; `null` for a delete.
    pub after: Option<&'a Map<String, Value>>,
    pub outcome: OutcomeKind,
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
}

/// One element of `rejected`: a membership or invitation change, or another object left alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RejectedEntry<'a> {
    Membership(&'a Rejected),
    Resource(&'a RejectedResource),
}

/// Counts per action, and failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update_role: usize,
    pub update_metadata: usize,
    pub delete: usize,
    /// Only when an organization of the plan sends invitations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_invitation: Option<usize>,
    pub failed: usize,
    pub skipped: usize,
    /// Counts per kind and action of the other objects the files manage (permissions, roles,
    /// role sets, organizations, domains); only when they manage some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Map<String, Value>>,
}

/// The JSON document of `--output json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonReport<'a> {
    pub changes: Vec<ChangeEntry<'a>>,
    pub pending: &'a [Pending],
    /// Changes left out because they cannot succeed (a role the organization lacks), and
    /// objects left alone (a role `prune` would delete that people still hold).
    pub rejected: Vec<RejectedEntry<'a>>,
    pub summary: Summary,
    /// Why the plan is (or would be) refused by the safety limits; empty when it is not.
    pub refused: &'a [Refusal],
    /// What a reader must know about an organization (its memberships kept changing while
    /// they were read, so no deletion or demotion was planned in it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<OrganizationNote<'a>>,
    /// Organizations that use a directory group unavailable this run, with the groups and
    /// how many changes were left out there.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub unavailable: &'a [super::UnavailableGroups],
}

/// A note about one organization in the JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrganizationNote<'a> {
    pub organization_id: &'a str,
    pub note: String,
}

/// Renders the JSON document. `outcomes` gives each change's outcome (`applied`, `failed`,
/// `skipped`) and its detail in run order ([`Plan::all_changes`]) — the error or reason, or
/// for `applied` a note; `None` means every change is `planned`.
pub(super) fn render_json(
    plan: &Plan,
    refusals: &[Refusal],
    outcomes: Option<&[ChangeOutcome]>,
) -> String {
    let mut failed = 0;
    let mut skipped = 0;
    let changes: Vec<ChangeEntry<'_>> = plan
        .all_changes()
        .enumerate()
        .map(|(index, change)| {
            let (outcome, detail) = outcomes
                .and_then(|all| all.get(index))
                .map(|(outcome, detail)| (*outcome, detail.as_deref()))
                .unwrap_or((OutcomeKind::Planned, None));
            failed += usize::from(outcome == OutcomeKind::Failed);
            skipped += usize::from(outcome == OutcomeKind::Skipped);
            let (error, note) = if outcome == OutcomeKind::Applied {
                (None, detail)
            } else {
                (detail, None)
            };
            match change {
                AnyChange::Membership(change) => {
                    ChangeEntry::Membership(membership_report(change, outcome, error, note))
                }
                AnyChange::Resource(change) => {
                    ChangeEntry::Resource(resource_report(change, outcome, error, note))
                }
            }
        })
        .collect();
    let invitations = plan.sends_invitations();
    let report = JsonReport {
        summary: Summary {
            create: plan.count(Action::Create),
            update_role: plan.count(Action::UpdateRole),
            update_metadata: plan.count(Action::UpdateMetadata),
            delete: plan.count(Action::Delete),
            invite: invitations.then(|| plan.count(Action::Invite)),
            revoke_invitation: invitations.then(|| plan.count(Action::RevokeInvitation)),
            failed,
            skipped,
            resources: plan.resource_summary(),
        },
        changes,
        pending: &plan.pending,
        rejected: plan
            .rejected
            .iter()
            .map(RejectedEntry::Membership)
            .chain(plan.rejected_resources.iter().map(RejectedEntry::Resource))
            .collect(),
        refused: refusals,
        unavailable: &plan.unavailable,
        notes: plan
            .organizations
            .iter()
            .filter_map(|organization| {
                organization_note(plan, organization).map(|note| OrganizationNote {
                    organization_id: &organization.organization_id,
                    note,
                })
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

fn membership_report<'a>(
    change: &'a Change,
    outcome: OutcomeKind,
    error: Option<&'a str>,
    note: Option<&'a str>,
) -> ChangeReport<'a> {
    ChangeReport {
        resource: change.resource(),
        action: change.action,
        organization_id: &change.organization_id,
        user_id: (!change.user_id.is_empty()).then_some(change.user_id.as_str()),
        email: change.email.as_deref(),
        role: change.role.as_deref(),
        previous_role: change.previous_role.as_deref(),
        metadata_patch: change.metadata_patch.as_ref(),
        outcome,
        error,
        note,
        source: change.source.as_deref(),
    }
}

fn resource_report<'a>(
    change: &'a ResourceChange,
    outcome: OutcomeKind,
    error: Option<&'a str>,
    note: Option<&'a str>,
) -> ResourceReport<'a> {
    ResourceReport {
        resource: change.resource,
        action: change.action,
        key: &change.key,
        organization_id: change.organization_id.as_deref(),
        before: change.before.as_ref(),
        after: change.after.as_ref(),
        outcome,
        error,
        note,
    }
}
