//! The plan, or what an apply did, in the format asked for: for a terminal, one JSON document,
//! or one Markdown document (docs/plan-and-apply.md: "Plan output"). The commands print what [`render`] gives.

use super::json::render_json;
use super::markdown::render_markdown;
use super::private::Private;
use super::text::{render_outcomes, render_text};
use super::{ChangeOutcome, Plan, Refusal};

/// How the plan and the report are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For a terminal.
    #[default]
    Text,
    /// One JSON document, for programs.
    Json,
    /// One Markdown document, for a pull-request comment or a CI job summary.
    Markdown,
}

/// What is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage<'a> {
    /// A plan, with what the safety limits would say of it (or why a saved plan is refused).
    Planned,
    /// A plan the safety limits refused: nothing was written.
    Refused,
    /// What an apply did: each change's outcome and its detail, in plan order.
    Applied(&'a [ChangeOutcome]),
}

/// The plan at `stage` in `format`. `refusals` are why the plan is (or would be) refused; for
/// an apply, the limits overridden with `--force`. Private metadata values are shown only
/// with `Private::Shown`.
pub fn render(
    format: Format,
    plan: &Plan,
    refusals: &[Refusal],
    stage: Stage<'_>,
    private: Private,
) -> String {
    let outcomes = match stage {
        Stage::Applied(outcomes) => Some(outcomes),
        Stage::Planned | Stage::Refused => None,
    };
    match (format, stage) {
        (Format::Json, _) => format!("{}\n", render_json(plan, refusals, outcomes)),
        (Format::Markdown, _) => render_markdown(plan, refusals, outcomes, private),
        (Format::Text, Stage::Applied(outcomes)) => render_outcomes(plan, outcomes, private),
        (Format::Text, Stage::Planned | Stage::Refused) => {
            let mut text = render_text(plan, private);
            for refusal in refusals {
                text.push_str(&refusal_line(refusal, stage));
                text.push('\n');
            }
            text
        }
    }
}

/// What the text plan says of one refusal: the plan was refused, or apply would refuse it.
fn refusal_line(refusal: &Refusal, stage: Stage<'_>) -> String {
    if stage == Stage::Refused || !refusal.limit.overridable() {
        format!("Refused: {}.", refusal.reason)
    } else {
        format!(
            "apply would refuse this plan: {} (--force overrides)",
            refusal.reason
        )
    }
}
