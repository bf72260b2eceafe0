//! The plan (or an apply's outcome) as one Markdown document, for a pull-request comment or a
//! CI job summary (docs/ci.md: "CI recipes"): a headline with the counts, any safety refusal in
//! bold at the top, each organization's changes as a fenced `diff` block (the text plan's lines, so
//! that GitHub and GitLab colour `+` and `-`), pending emails and rejected changes. A plan too
//! large for a comment is summarised per organization.

use std::fmt::Write;

use super::private::Private;
use super::text::{
    AUTHORIZATION, Sections, any_line, header, organization_note, selected_line, summary_line,
};
use super::{AnyChange, ChangeOutcome, OrganizationPlan, OutcomeKind, Plan, Refusal};

/// The first line of every document: CI recipes find their earlier comment by it and update
/// it in place.
pub const MARKER: &str = "<!-- membersync-plan -->";

/// The longest document written in full; GitHub refuses comments over 65,536 characters.
const LIMIT: usize = 60_000;

/// Renders the document. `outcomes` (in plan order) makes it an apply's report; `None`, a plan.
/// Private metadata values are shown only with `Private::Shown`.
pub(super) fn render_markdown(
    plan: &Plan,
    refusals: &[Refusal],
    outcomes: Option<&[ChangeOutcome]>,
    private: Private,
) -> String {
    let full = document(plan, refusals, outcomes, private, false);
    if full.len() <= LIMIT {
        return full;
    }
    let mut summary = document(plan, refusals, outcomes, private, true);
    if summary.len() > LIMIT {
        let cut = summary[..LIMIT].rfind('\n').unwrap_or(0);
        summary.truncate(cut);
        summary.push_str("\n\n… (cut to fit a comment)\n");
    }
    summary
}

fn document(
    plan: &Plan,
    refusals: &[Refusal],
    outcomes: Option<&[ChangeOutcome]>,
    private: Private,
    summarised: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let _ = writeln!(out, "### {}\n", headline(plan, outcomes));
    if let Some(selected) = selected_line(plan) {
        let _ = writeln!(out, "{}\n", escape(&selected));
    }
    for refusal in refusals {
        let reason = escape(&refusal.reason);
        let _ = match outcomes {
            _ if !refusal.limit.overridable() => writeln!(out, "**Refused: {reason}.**\n"),
            None => writeln!(
                out,
                "**Refused by a safety limit: {reason}.** Nothing is written unless `--force` is given after review.\n"
            ),
            Some(_) => writeln!(
                out,
                "**A safety limit was overridden with `--force`: {reason}.**\n"
            ),
        };
    }
    let sections = Sections::of(plan);
    authorization_section(&mut out, &sections.authorization, outcomes, private);
    if summarised {
        summary_table(&mut out, plan);
    } else {
        for (organization, changes) in &sections.organizations {
            organization_section(&mut out, plan, organization, changes, outcomes, private);
        }
    }
    pending_section(&mut out, plan);
    rejected_section(&mut out, plan);
    missing_section(&mut out, plan);
    if let Some(outcomes) = outcomes {
        not_applied(&mut out, plan, outcomes, private);
    }
    let _ = writeln!(out, "<sub>{}</sub>", escape(&summary_line(plan)));
    out
}

/// The people the plan waits for: no Clerk user has their email yet.
fn pending_section(out: &mut String, plan: &Plan) {
    if !plan.pending.is_empty() {
        let _ = writeln!(out, "**Pending** (no Clerk user has this email yet):\n");
        for pending in &plan.pending {
            let _ = writeln!(
                out,
                "- `{}` {} in `{}`",
                pending.email, pending.role, pending.organization_id
            );
        }
        out.push('\n');
    }
}

/// What the plan leaves out, and why.
fn rejected_section(out: &mut String, plan: &Plan) {
    if !plan.rejected.is_empty() || !plan.rejected_resources.is_empty() {
        let _ = writeln!(out, "**Rejected** (not sent):\n");
        for rejected in &plan.rejected_resources {
            let place = rejected
                .organization_id
                .as_deref()
                .map(|id| format!(" in `{id}`"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{} {}`{place}: {}",
                rejected.resource,
                rejected.key,
                escape(&rejected.reason)
            );
        }
        for rejected in &plan.rejected {
            let who = match (&rejected.email, rejected.user_id.is_empty()) {
                (Some(email), true) => format!("invite {email}"),
                (Some(email), false) => format!("{} ({email})", rejected.user_id),
                (None, _) => rejected.user_id.clone(),
            };
            let _ = writeln!(
                out,
                "- `{who}` {} in `{}`: {}",
                rejected.role,
                rejected.organization_id,
                escape(&rejected.reason)
            );
        }
        out.push('\n');
    }
}

/// `membersync plan: 2 to create, …` or `membersync apply: 5 applied, 1 failed, 0 skipped`.
fn headline(plan: &Plan, outcomes: Option<&[ChangeOutcome]>) -> String {
    match outcomes {
        Some(outcomes) => {
            let count = |kind| outcomes.iter().filter(|(o, _)| *o == kind).count();
            format!(
                "membersync apply: {} applied, {} failed, {} skipped",
                count(OutcomeKind::Applied),
                count(OutcomeKind::Failed),
                count(OutcomeKind::Skipped)
            )
        }
        None if plan.is_empty() => "membersync plan: no changes".to_owned(),
        None => {
            let mut counts: Vec<String> = super::Action::ALL
                .iter()
                .map(|action| (action, plan.count(*action)))
                .filter(|(_, count)| *count > 0)
                .map(|(action, count)| format!("{count} {}", action.name()))
                .collect();
            counts.extend(plan.resource_counts());
            format!("membersync plan: {}", counts.join(", "))
        }
    }
}

/// The instance's permissions, roles and role sets, before the organizations.
/// (Rejected objects are listed with the other rejected changes.)
fn authorization_section(
    out: &mut String,
    changes: &[(usize, AnyChange<'_>)],
    outcomes: Option<&[ChangeOutcome]>,
    private: Private,
) {
    if changes.is_empty() {
        return;
    }
    let _ = writeln!(out, "#### {AUTHORIZATION}\n");
    out.push_str("```diff\n");
    diff_lines(out, changes, outcomes, private);
    out.push_str("```\n\n");
}

fn organization_section(
    out: &mut String,
    plan: &Plan,
    organization: &OrganizationPlan,
    changes: &[(usize, AnyChange<'_>)],
    outcomes: Option<&[ChangeOutcome]>,
    private: Private,
) {
    let note = organization_note(plan, organization);
    let pending = plan
        .pending
        .iter()
        .any(|p| p.organization_id == organization.organization_id);
    if changes.is_empty() && note.is_none() && !pending {
        return;
    }
    let _ = writeln!(out, "#### {}\n", escape(&header(organization)));
    if let Some(note) = note {
        let _ = writeln!(out, "> **Warning:** {}\n", escape(&note));
    }
    if changes.is_empty() {
        return;
    }
    for change in &organization.resources {
        if let Some(everyone) = super::organization_output::everyone_note(change) {
            let _ = writeln!(
                out,
                "**! {}: {}.**\n",
                escape(&change.key),
                escape(&everyone)
            );
        }
    }
    out.push_str("```diff\n");
    diff_lines(out, changes, outcomes, private);
    out.push_str("```\n\n");
}

/// The lines of a `diff` block, each marked with its outcome unless it was applied.
fn diff_lines(
    out: &mut String,
    changes: &[(usize, AnyChange<'_>)],
    outcomes: Option<&[ChangeOutcome]>,
    private: Private,
) {
    for (index, change) in changes {
        let line = any_line(*change, private);
        match outcomes.and_then(|o| o.get(*index)) {
            Some((kind, _)) if *kind != OutcomeKind::Applied => {
                let _ = writeln!(out, "{line}   ({kind})");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
}

/// The organizations the files name that do not exist.
fn missing_section(out: &mut String, plan: &Plan) {
    if plan.missing.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "**Not found** (the files name these organizations; they do not exist in this Clerk instance):\n"
    );
    for missing in &plan.missing {
        let _ = writeln!(out, "- `{missing}`");
    }
    out.push('\n');
}

/// Too large for a comment: one row per organization with its counts.
fn summary_table(out: &mut String, plan: &Plan) {
    let _ = writeln!(
        out,
        "The plan is too large for a comment: each organization's counts follow. Get the whole plan as JSON with `membersync plan --output json` (the CI recipes keep it as an artifact).\n"
    );
    out.push_str("| organization | changes |\n|---|---|\n");
    for organization in &plan.organizations {
        if organization.change_count() == 0 {
            continue;
        }
        let mut counts: Vec<String> = organization
            .resources
            .iter()
            .map(|c| format!("1 {} {}", c.resource, c.action.name()))
            .collect();
        let membership_counts = super::Action::ALL
            .iter()
            .map(|action| {
                let count = organization
                    .changes
                    .iter()
                    .filter(|c| c.action == *action)
                    .count();
                (action, count)
            })
            .filter(|(_, count)| *count > 0)
            .map(|(action, count)| format!("{count} {}", action.name()));
        counts.extend(membership_counts);
        let _ = writeln!(
            out,
            "| {} | {} |",
            escape(&header(organization)),
            counts.join(", ")
        );
    }
    out.push('\n');
}

fn not_applied(out: &mut String, plan: &Plan, outcomes: &[ChangeOutcome], private: Private) {
    let failures: Vec<String> = plan
        .all_changes()
        .zip(outcomes)
        .filter(|(_, (kind, _))| *kind != OutcomeKind::Applied)
        .map(|(change, (kind, detail))| {
            format!(
                "- {kind}: `{}` — {}",
                any_line(change, private),
                escape(detail.as_deref().unwrap_or_default())
            )
        })
        .collect();
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "**Not applied:**\n");
    for failure in failures {
        let _ = writeln!(out, "{failure}");
    }
    out.push('\n');
}

/// Text outside code: characters Markdown would read as markup are escaped.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '|' | '#'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, Limit, Pending};

    fn plan(changes: Vec<Change>) -> Plan {
        Plan {
            organizations: vec![OrganizationPlan {
                organization_id: "org_1".into(),
                label: Some("acme".into()),
                resources: Vec::new(),
                changes,
                current_members: 3,
                admins_before: 1,
                admins_after: 1,
                withheld: None,
                invitations: None,
                current_invitations: 0,
            }],
            pending: vec![Pending {
                organization_id: "org_1".into(),
                email: "later@example.com".into(),
                role: "org:member".into(),
            }],
            rejected: Vec::new(),
            ..Plan::default()
        }
    }

    fn change(action: Action, user: &str, role: &str) -> Change {
        Change {
            role: Some(role.into()),
            previous_role: Some("org:admin".into()),
            ..Change::new(action, "org_1", user)
        }
    }

    #[test]
    fn every_change_is_a_diff_line_and_a_refusal_is_bold_at_the_top() {
        let plan = plan(vec![
            change(Action::Create, "user_1", "org:member"),
            change(Action::UpdateRole, "user_2", "org:member"),
            change(Action::Delete, "user_3", "org:member"),
        ]);
        let refusals = [Refusal {
            limit: Limit::MaxDeletes,
            reason: "the plan deletes 1 of 3 memberships, over --max-deletes 0".into(),
        }];
        let text = render_markdown(&plan, &refusals, None, Private::Hidden);
        assert!(text.starts_with(MARKER));
        let refused = text.find("**Refused by a safety limit:").unwrap();
        let first_org = text.find("#### organization org\\_1 (acme)").unwrap();
        assert!(refused < first_org, "{text}");
        assert!(text.contains(
            "```diff\n+ user_1 org:member\n~ user_2 role org:admin → org:member\n- user_3 org:member\n```"
        ), "{text}");
        assert!(
            text.contains("- `later@example.com` org:member in `org_1`"),
            "{text}"
        );
        assert!(
            text.contains("### membersync plan: 1 create, 1 update_role, 1 delete"),
            "{text}"
        );
    }

    #[test]
    fn an_apply_marks_what_was_not_applied() {
        let plan = plan(vec![
            change(Action::Create, "user_1", "org:member"),
            change(Action::Delete, "user_3", "org:member"),
        ]);
        let outcomes = [
            (OutcomeKind::Applied, None),
            (OutcomeKind::Failed, Some("HTTP 500".to_owned())),
        ];
        let text = render_markdown(&plan, &[], Some(&outcomes), Private::Hidden);
        assert!(
            text.contains("### membersync apply: 1 applied, 1 failed, 0 skipped"),
            "{text}"
        );
        assert!(text.contains("- user_3 org:member   (failed)\n"), "{text}");
        assert!(
            text.contains("- failed: `- user_3 org:member` — HTTP 500"),
            "{text}"
        );
    }

    #[test]
    fn a_very_large_plan_is_summarised_within_a_comment() {
        let changes = (0..5_000)
            .map(|n| change(Action::Create, &format!("user_{n:06}"), "org:member"))
            .collect();
        let text = render_markdown(&plan(changes), &[], None, Private::Hidden);
        assert!(text.len() <= LIMIT, "{}", text.len());
        assert!(
            text.contains("| organization org\\_1 (acme) | 5000 create |"),
            "{text}"
        );
        assert!(text.contains("membersync plan --output json"));
    }
}
