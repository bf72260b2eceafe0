//! The plan (or an apply's outcome) for people: grouped by organization, one line per change,
//! then a summary line (docs/plan-and-apply.md: "Plan output"). The Markdown document reuses these lines.

use std::fmt::Write;

use serde_json::Value;

use super::private::{Private, hidden_change, hidden_object};
use super::resource_text::{rejected_line, resource_line};
use super::{
    Action, AnyChange, Change, ChangeOutcome, OrganizationPlan, OutcomeKind, Pending, Plan,
    Rejected, RejectedResource,
};

/// Why an organization got no deletion or demotion this run.
pub(super) fn unsettled_note(organization: &OrganizationPlan) -> Option<String> {
    organization.withheld.map(|withheld| {
        format!(
            "its memberships kept changing while they were read, so no deletion or demotion is planned in it this run ({withheld} left out); the next run plans them from a consistent read"
        )
    })
}

/// What a reader must know about an organization: its reads were inconsistent, or a directory
/// group it uses is unavailable this run.
pub(super) fn organization_note(plan: &Plan, organization: &OrganizationPlan) -> Option<String> {
    let unavailable = plan
        .unavailable
        .iter()
        .find(|u| u.organization_id == organization.organization_id)
        .map(super::unavailable::note);
    match (unsettled_note(organization), unavailable) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// Renders the plan for a terminal: the instance's permissions, roles and role sets first,
/// then grouped by organization, one line per change, then a summary line. Private metadata
/// values are shown only with `Private::Shown`.
pub(super) fn render_text(plan: &Plan, private: Private) -> String {
    let mut out = String::new();
    if let Some(selected) = selected_line(plan) {
        let _ = writeln!(out, "{selected}\n");
    }
    let sections = Sections::of(plan);
    if !sections.authorization.is_empty() || !instance_rejected(plan).is_empty() {
        let _ = writeln!(out, "{AUTHORIZATION}");
        for (_, change) in &sections.authorization {
            let _ = writeln!(out, "  {}", any_line(*change, private));
        }
        for rejected in instance_rejected(plan) {
            let _ = writeln!(out, "  {}", rejected_line(rejected));
        }
        out.push('\n');
    }
    for organization in &plan.organizations {
        let pending: Vec<&Pending> = plan
            .pending
            .iter()
            .filter(|p| p.organization_id == organization.organization_id)
            .collect();
        let rejected: Vec<&Rejected> = plan
            .rejected
            .iter()
            .filter(|r| r.organization_id == organization.organization_id)
            .collect();
        let note = organization_note(plan, organization);
        if organization.change_count() == 0
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
        for change in organization.all_changes() {
            let _ = writeln!(out, "  {}", any_line(change, private));
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

/// The heading of the instance's permissions, roles and role sets.
pub(super) const AUTHORIZATION: &str = "authorization";

/// The rejected objects that belong to no organization (the instance's).
pub(super) fn instance_rejected(plan: &Plan) -> Vec<&RejectedResource> {
    plan.rejected_resources
        .iter()
        .filter(|r| r.organization_id.is_none())
        .collect()
}

/// The changes of a plan as the reports group them, each with its position in the run order
/// of [`Plan::all_changes`] (where its outcome is): the instance's changes (those that run
/// before the organizations, then those that run after), and each organization's.
pub(super) struct Sections<'a> {
    pub authorization: Vec<(usize, AnyChange<'a>)>,
    pub organizations: Vec<(&'a OrganizationPlan, Vec<(usize, AnyChange<'a>)>)>,
}

impl<'a> Sections<'a> {
    pub(super) fn of(plan: &'a Plan) -> Sections<'a> {
        let before = plan.authorization_before().count();
        let after = plan.authorization_after().count();
        let all: Vec<(usize, AnyChange<'a>)> = plan.all_changes().enumerate().collect();
        let (head, rest) = all.split_at(before);
        let (middle, tail) = rest.split_at(rest.len() - after);
        let mut organizations = Vec::with_capacity(plan.organizations.len());
        let mut middle = middle.iter().copied();
        for organization in &plan.organizations {
            let changes = middle.by_ref().take(organization.change_count()).collect();
            organizations.push((organization, changes));
        }
        Sections {
            authorization: head.iter().chain(tail).copied().collect(),
            organizations,
        }
    }
}

/// The line of any change.
pub(super) fn any_line(change: AnyChange<'_>, private: Private) -> String {
    match change {
        AnyChange::Membership(change) => change_line(change, private),
        AnyChange::Resource(change) => {
            resource_line(&super::organization_output::shown(change, private))
        }
    }
}

/// `organization org_x (slug)`, or `organization acme (to be created)` for one the plan
/// creates.
pub(super) fn header(organization: &OrganizationPlan) -> String {
    if organization.organization_id.is_empty() {
        let label = organization.label.as_deref().unwrap_or_default();
        return format!("organization {label} (to be created)");
    }
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
pub(super) fn change_line(change: &Change, private: Private) -> String {
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
pub(super) fn summary_line(plan: &Plan) -> String {
    let rejected = plan.rejected.len() + plan.rejected_resources.len();
    let rejected = if rejected == 0 {
        String::new()
    } else {
        format!(" {rejected} change(s) rejected (marked !).")
    };
    let unsettled = plan.unsettled().count();
    let unsettled = if unsettled == 0 {
        String::new()
    } else {
        format!(
            " {unsettled} organization(s) read inconsistently: no deletion or demotion planned in them."
        )
    };
    let unavailable = if plan.unavailable.is_empty() {
        String::new()
    } else {
        format!(
            " {} organization(s) use a directory group unavailable this run: nothing it could decide is removed or demoted in them.",
            plan.unavailable.len()
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
    format!(
        "{}{rejected}{unsettled}{unavailable}{missing}",
        counts_line(plan)
    )
}

fn counts_line(plan: &Plan) -> String {
    if plan.is_empty() {
        let pending = if plan.pending.is_empty() {
            String::new()
        } else {
            format!(" ({} pending)", plan.pending.len())
        };
        // Only a clean run may say that everything matches.
        let troubled = !plan.missing.is_empty()
            || !plan.rejected.is_empty()
            || !plan.rejected_resources.is_empty()
            || plan.unsettled().count() > 0
            || !plan.unavailable.is_empty();
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
    let resources = plan.resource_counts();
    let resources = if resources.is_empty() {
        String::new()
    } else {
        format!("; {}", resources.join(", "))
    };
    format!(
        "Plan: {} to create, {} role change(s), {} metadata change(s), {} to delete{invitations}, {} pending{resources}.",
        plan.count(Action::Create),
        plan.count(Action::UpdateRole),
        plan.count(Action::UpdateMetadata),
        plan.count(Action::Delete),
        plan.pending.len()
    )
}

/// Renders what an apply did: the instance's changes, then per organization, one line per
/// change with its outcome (and the error or note under it), then the failures again at the
/// end so none is missed. `outcomes` is in run order ([`Plan::all_changes`]).
pub(super) fn render_outcomes(plan: &Plan, outcomes: &[ChangeOutcome], private: Private) -> String {
    let mut out = String::new();
    let mut failures = Vec::new();
    let sections = Sections::of(plan);
    let mut section = |out: &mut String, heading: String, changes: &[(usize, AnyChange<'_>)]| {
        let _ = writeln!(out, "{heading}");
        for (index, change) in changes {
            let (outcome, detail) = outcomes
                .get(*index)
                .map(|(o, d)| (*o, d.as_deref()))
                .unwrap_or((OutcomeKind::Planned, None));
            let line = any_line(*change, private);
            let _ = writeln!(out, "  {outcome:<8} {line}");
            if let Some(detail) = detail {
                let _ = writeln!(out, "           {detail}");
                if outcome != OutcomeKind::Applied {
                    failures.push(format!("{outcome}: {line}\n    {detail}"));
                }
            }
        }
    };
    if !sections.authorization.is_empty() {
        section(&mut out, AUTHORIZATION.to_owned(), &sections.authorization);
        out.push('\n');
    }
    for (organization, changes) in &sections.organizations {
        let note = organization_note(plan, organization);
        if changes.is_empty() && note.is_none() {
            continue;
        }
        let mut heading = header(organization);
        if let Some(note) = &note {
            heading.push_str(&format!("\n  warning: {note}"));
        }
        section(&mut out, heading, changes);
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
