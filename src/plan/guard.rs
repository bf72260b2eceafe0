//! The safety limits of a plan (docs/plan-and-apply.md: "Safety limits"): too many deletions, or an
//! organization that has an admin today left without one.

use std::fmt;
use std::str::FromStr;

use super::{Action, Plan};

/// `--max-deletes`: a count, or a percentage of the managed organizations' memberships.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDeletes {
    Count(usize),
    Percent(f64),
}

impl Default for MaxDeletes {
    fn default() -> MaxDeletes {
        MaxDeletes::Percent(25.0)
    }
}

/// Why a `--max-deletes` value is not a deletion limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a deletion limit; write a count like 12 or a percentage like 25%")]
pub struct MaxDeletesError(String);

impl FromStr for MaxDeletes {
    type Err = MaxDeletesError;

    fn from_str(text: &str) -> Result<MaxDeletes, MaxDeletesError> {
        let bad = || MaxDeletesError(text.to_owned());
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(number) => {
                let percent: f64 = number.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err(bad());
                }
                Ok(MaxDeletes::Percent(percent))
            }
            None => text.parse().map(MaxDeletes::Count).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for MaxDeletes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDeletes::Count(count) => write!(formatter, "{count}"),
            MaxDeletes::Percent(percent) => write!(formatter, "{percent}%"),
        }
    }
}

/// Why a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// Which limit refused (not in the JSON report, which gives the reason).
    #[serde(skip, default)]
    pub limit: Limit,
    pub reason: String,
}

/// The safety limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limit {
    /// More deletions than `--max-deletes`.
    #[default]
    MaxDeletes,
    /// An organization that has an admin today left without one.
    LastAdmin,
    /// A saved plan that no longer matches: what it touches changed since it was made, or it
    /// was made against another instance. `--force` does not override it: plan again.
    Stale,
    /// A change that would leave people with a role their organization no longer allows (a
    /// role leaving a role set while members or pending invitations hold it, and no
    /// `reassign` says where they go). `--force` does not override it: the file must say.
    RolesInUse,
}

impl Limit {
    /// Whether `--force` overrides it after review.
    pub fn overridable(self) -> bool {
        matches!(self, Limit::MaxDeletes | Limit::LastAdmin)
    }
}

/// Evaluates the limits on a plan; an empty list means the plan may run.
pub fn refusals(plan: &Plan, max_deletes: MaxDeletes) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    // Revoked invitations count as deletions, and pending invitations as memberships.
    // So do deletions of other objects (permissions, roles, domains), and the objects the plan
    // could delete count with the memberships for a percentage.
    let deletes = plan.removals();
    let current = plan.current_members() + plan.current_resources;
    let over = match max_deletes {
        MaxDeletes::Count(limit) => deletes > limit,
        MaxDeletes::Percent(percent) => deletes as f64 > percent / 100.0 * current as f64,
    };
    if over {
        let others = plan.resource_removals();
        let reason = if others > 0 {
            format!(
                "the plan deletes {deletes} of {current} memberships, pending invitations and other objects it manages ({others} of the deletions are permissions, roles or domains), over --max-deletes {max_deletes}"
            )
        } else if plan.count(Action::RevokeInvitation) == 0 {
            format!(
                "the plan deletes {deletes} of {current} memberships of the managed organizations, over --max-deletes {max_deletes}"
            )
        } else {
            format!(
                "the plan deletes or revokes {deletes} of {current} memberships and pending invitations of the managed organizations, over --max-deletes {max_deletes}"
            )
        };
        refusals.push(Refusal {
            limit: Limit::MaxDeletes,
            reason,
        });
    }
    for change in plan.resource_changes() {
        if let Some(reason) = &change.refused {
            refusals.push(Refusal {
                limit: Limit::RolesInUse,
                reason: reason.clone(),
            });
        }
    }
    for organization in &plan.organizations {
        if organization.admins_before > 0 && organization.admins_after == 0 {
            let label = organization
                .label
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            refusals.push(Refusal {
                limit: Limit::LastAdmin,
                reason: format!(
                    "the plan leaves {}{label} without an org:admin (it has {} today)",
                    organization.organization_id, organization.admins_before
                ),
            });
        }
    }
    refusals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_deletes_parses_counts_and_percentages() {
        assert_eq!("12".parse(), Ok(MaxDeletes::Count(12)));
        assert_eq!("25%".parse(), Ok(MaxDeletes::Percent(25.0)));
        assert_eq!("0".parse(), Ok(MaxDeletes::Count(0)));
        for bad in ["", "-1", "12.5", "150%", "x%", "%"] {
            assert!(bad.parse::<MaxDeletes>().is_err(), "{bad}");
        }
    }
}
