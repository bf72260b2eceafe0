//! The plan for people (text) and for programs (one JSON document), as CONTRACT §5 says.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use super::private::{Private, hidden_change, hidden_object};
use super::{Action, Change, Pending, Plan, Refusal};

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
    pub rejected: &'a [super::Rejected],
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

/// Why an organization got no deletion or demotion this run.
pub fn unsettled_note(organization: &super::OrganizationPlan) -> Option<String> {
    organization.withheld.map(|withheld| {
        format!(
            "its memberships kept changing while they were read, so no deletion or demotion is planned in it this run ({withheld} left out); the next run plans them from a consistent read"
        )
    })
}

/// Renders the JSON document. `outcomes` gives each change's outcome (`applied`, `failed`,
/// `skipped`) and its detail in plan order — the error or reason, or for `applied` a note;
/// `None` means every change is `planned`.
pub fn render_json(
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

/// Renders the plan for a terminal: grouped by organization, one line per change, then a
/// summary line. Private metadata values are shown only with `Private::Shown`.
pub fn render_text(plan: &Plan, private: Private) -> String {
    let mut out = String::new();
    if let Some(selected) = selected_line(plan) {
        let _ = writeln!(out, "{selected}\n");
    }
    for organization in &plan.organizations {
        let pending: Vec<&Pending> = plan
            .pending
            .iter()
            .filter(|p| p.organization_id == organization.organization_id)
            .collect();
        let rejected: Vec<&super::Rejected> = plan
            .rejected
            .iter()
            .filter(|r| r.organization_id == organization.organization_id)
            .collect();
        let note = unsettled_note(organization);
        if organization.changes.is_empty()
            && pending.is_empty()
            && rejected.is_empty()
            && note.is_none()
        {
            continue;
        }
        let _ = writeln!(out, "{}", header(organization));
        if let Some(note) = note {
            let _ = writeln!(out, "  warning: {note}");
        }
        for change in &organization.changes {
            let _ = writeln!(out, "  {}", change_line(change, private));
        }
        for pending in pending {
            let _ = writeln!(
                out,
                "  ? {} {} (pending: no Clerk user has this email yet)",
                pending.email, pending.role
            );
        }
        for rejected in rejected {
            let who = match &rejected.email {
                Some(email) if rejected.user_id.is_empty() => format!("invite {email}"),
                Some(email) => format!("{} ({email})", rejected.user_id),
                None => rejected.user_id.clone(),
            };
            let _ = writeln!(
                out,
                "  ! {who} {}: not sent: {}",
                rejected.role, rejected.reason
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    out
}

/// `organization org_x (slug)`.
pub(super) fn header(organization: &super::OrganizationPlan) -> String {
    match &organization.label {
        Some(label) => format!("organization {} ({label})", organization.organization_id),
        None => format!("organization {}", organization.organization_id),
    }
}

/// `Only the organizations selected with --org: …`, when `--org` selected some.
pub(super) fn selected_line(plan: &Plan) -> Option<String> {
    (!plan.selected.is_empty()).then(|| {
        format!(
            "Only the organizations selected with --org: {}.",
            plan.selected.join(", ")
        )
    })
}

/// `+ user_x (alice@example.com) org:admin`, `~ … role a → b`, `- …`, `+ invite EMAIL ROLE`,
/// `- revoke invitation EMAIL ROLE`.
pub fn change_line(change: &Change, private: Private) -> String {
    let line = change_text(change, private);
    match &change.source {
        Some(source) => format!("{line} ({source})"),
        None => line,
    }
}

fn change_text(change: &Change, private: Private) -> String {
    let who = change.who();
    let role = change.role.as_deref().unwrap_or_default();
    match change.action {
        Action::Create => match &change.metadata_patch {
            Some(metadata) => format!("+ {who} {role} with {}", compact_parts(metadata, private)),
            None => format!("+ {who} {role}"),
        },
        Action::UpdateRole => {
            format!(
                "~ {who} role {} → {role}",
                change.previous_role.as_deref().unwrap_or("?")
            )
        }
        Action::UpdateMetadata => {
            let patch = change
                .metadata_patch
                .as_ref()
                .cloned()
                .unwrap_or(Value::Null);
            let previous = change.previous_metadata.clone().unwrap_or(Value::Null);
            let mut parts = Vec::new();
            for part in ["public_metadata", "private_metadata"] {
                if let Some(part_patch) = patch.get(part).and_then(Value::as_object) {
                    let before = previous
                        .get(part)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if part == "private_metadata" && private == Private::Hidden {
                        parts.push(format!("{part} {}", hidden_change(&before, part_patch)));
                        continue;
                    }
                    let mut after = before.clone();
                    super::metadata::apply_patch(&mut after, part_patch);
                    parts.push(format!(
                        "{part} {} → {}",
                        Value::Object(before),
                        Value::Object(after)
                    ));
                }
            }
            format!("~ {who} {}", parts.join(", "))
        }
        Action::Delete => format!("- {who} {role}"),
        Action::Invite => match &change.metadata_patch {
            Some(metadata) => format!(
                "+ invite {who} {role} with {}",
                compact_parts(metadata, private)
            ),
            None => format!("+ invite {who} {role}"),
        },
        Action::RevokeInvitation => format!("- revoke invitation {who} {role}"),
    }
}

fn compact_parts(metadata: &Value, private: Private) -> String {
    let mut parts = Vec::new();
    for part in ["public_metadata", "private_metadata"] {
        match metadata.get(part) {
            Some(Value::Object(object))
                if part == "private_metadata" && private == Private::Hidden =>
            {
                parts.push(format!("{part} {}", hidden_object(object.keys())));
            }
            Some(value) => parts.push(format!("{part} {value}")),
            None => {}
        }
    }
    parts.join(", ")
}

/// `Plan: 2 to create, 1 role change, 0 metadata changes, 1 to delete, 1 pending.`
pub fn summary_line(plan: &Plan) -> String {
    let rejected = if plan.rejected.is_empty() {
        String::new()
    } else {
        format!(" {} change(s) rejected (marked !).", plan.rejected.len())
    };
    let unsettled = plan.unsettled().count();
    let unsettled = if unsettled == 0 {
        String::new()
    } else {
        format!(
            " {unsettled} organization(s) read inconsistently: no deletion or demotion planned in them."
        )
    };
    let missing = if plan.missing.is_empty() {
        String::new()
    } else {
        format!(
            " {} organization(s) named in the files do not exist: {}.",
            plan.missing.len(),
            plan.missing.join(", ")
        )
    };
    format!("{}{rejected}{unsettled}{missing}", counts_line(plan))
}

fn counts_line(plan: &Plan) -> String {
    if plan.is_empty() {
        let pending = if plan.pending.is_empty() {
            String::new()
        } else {
            format!(" ({} pending)", plan.pending.len())
        };
        // Only a clean run may say that everything matches.
        let troubled =
            !plan.missing.is_empty() || !plan.rejected.is_empty() || plan.unsettled().count() > 0;
        if troubled {
            return format!(
                "No changes to send in the {} organization(s) read{pending}, but not everything could be planned:",
                plan.organizations.len()
            );
        }
        return format!(
            "No changes: the {} managed organization(s) match the desired state{pending}.",
            plan.organizations.len()
        );
    }
    let invitations = if plan.sends_invitations() {
        format!(
            ", {} to invite, {} invitation(s) to revoke",
            plan.count(Action::Invite),
            plan.count(Action::RevokeInvitation)
        )
    } else {
        String::new()
    };
    format!(
        "Plan: {} to create, {} role change(s), {} metadata change(s), {} to delete{invitations}, {} pending.",
        plan.count(Action::Create),
        plan.count(Action::UpdateRole),
        plan.count(Action::UpdateMetadata),
        plan.count(Action::Delete),
        plan.pending.len()
    )
}

/// Renders what an apply did: per organization, one line per change with its outcome (and
/// the error or note under it), then the failures again at the end so none is missed.
/// `outcomes` is in plan order, as for [`render_json`].
pub fn render_outcomes(plan: &Plan, outcomes: &[ChangeOutcome], private: Private) -> String {
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut index = 0;
    for organization in &plan.organizations {
        let note = unsettled_note(organization);
        if organization.changes.is_empty() && note.is_none() {
            continue;
        }
        let _ = writeln!(out, "{}", header(organization));
        if let Some(note) = &note {
            let _ = writeln!(out, "  warning: {note}");
        }
        for change in &organization.changes {
            let (outcome, detail) = outcomes
                .get(index)
                .map(|(o, d)| (*o, d.as_deref()))
                .unwrap_or((OutcomeKind::Planned, None));
            index += 1;
            let line = change_line(change, private);
            let _ = writeln!(out, "  {outcome:<8} {line}");
            if let Some(detail) = detail {
                let _ = writeln!(out, "           {detail}");
                if outcome != OutcomeKind::Applied {
                    failures.push(format!("{outcome}: {line}\n    {detail}"));
                }
            }
        }
        out.push('\n');
    }
    let count = |kind: OutcomeKind| outcomes.iter().filter(|(o, _)| *o == kind).count();
    if !failures.is_empty() {
        let _ = writeln!(out, "Not applied:");
        for failure in &failures {
            let _ = writeln!(out, "  {failure}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Apply {}: {} applied, {} failed, {} skipped.",
        if failures.is_empty() {
            "complete"
        } else {
            "incomplete"
        },
        count(OutcomeKind::Applied),
        count(OutcomeKind::Failed),
        count(OutcomeKind::Skipped),
    );
    out
}
