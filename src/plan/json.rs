//! The plan (or an apply's outcome) for programs: one JSON document (README: "Plan output").

use serde::Serialize;
use serde_json::Value;

use super::text::unsettled_note;
use super::{Action, ChangeOutcome, OutcomeKind, Pending, Plan, Refusal, Rejected};

/// The outcome of one change, for the JSON report and the text report of an apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeReport<'a> {
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
}

/// The JSON document of `--output json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonReport<'a> {
    pub changes: Vec<ChangeReport<'a>>,
    pub pending: &'a [Pending],
    /// Changes left out because they cannot succeed (a role the organization lacks).
    pub rejected: &'a [Rejected],
    pub summary: Summary,
    /// Why the plan is (or would be) refused by the safety limits; empty when it is not.
    pub refused: &'a [Refusal],
    /// What a reader must know about an organization (its memberships kept changing while
    /// they were read, so no deletion or demotion was planned in it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<OrganizationNote<'a>>,
}

/// A note about one organization in the JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrganizationNote<'a> {
    pub organization_id: &'a str,
    pub note: String,
}

/// Renders the JSON document. `outcomes` gives each change's outcome (`applied`, `failed`,
/// `skipped`) and its detail in plan order — the error or reason, or for `applied` a note;
/// `None` means every change is `planned`.
pub(super) fn render_json(
    plan: &Plan,
    refusals: &[Refusal],
    outcomes: Option<&[ChangeOutcome]>,
) -> String {
    let changes: Vec<ChangeReport<'_>> = plan
        .changes()
        .enumerate()
        .map(|(index, change)| {
            let (outcome, detail) = outcomes
                .and_then(|all| all.get(index))
                .map(|(outcome, detail)| (*outcome, detail.as_deref()))
                .unwrap_or((OutcomeKind::Planned, None));
            let (error, note) = if outcome == OutcomeKind::Applied {
                (None, detail)
            } else {
                (detail, None)
            };
            ChangeReport {
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
        })
        .collect();
    let failed = changes
        .iter()
        .filter(|c| c.outcome == OutcomeKind::Failed)
        .count();
    let skipped = changes
        .iter()
        .filter(|c| c.outcome == OutcomeKind::Skipped)
        .count();
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
        },
        changes,
        pending: &plan.pending,
        rejected: &plan.rejected,
        refused: refusals,
        notes: plan
            .organizations
            .iter()
            .filter_map(|organization| {
                unsettled_note(organization).map(|note| OrganizationNote {
                    organization_id: &organization.organization_id,
                    note,
                })
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
