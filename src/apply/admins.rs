//! The last-admin check at write time. The plan's own check ran against the state read when
//! the plan was made; another writer (a CronJob overlapping a CI apply, someone in the
//! dashboard) may have demoted or removed admins since. So before the first change that takes
//! an `org:admin` away in an organization, one read of that organization's admins confirms
//! that one remains after every admin removal this run makes there; otherwise none of them is
//! sent. Two writers that read at the same moment can still both pass: Clerk itself refuses
//! the write that would remove the last admin (`organization_minimum_permissions_needed`),
//! and that change fails with Clerk's message.

use super::{ChangeError, Outcome};
use crate::clerk::{Client, PAGE_LIMIT};
use crate::desired::Role;
use crate::plan::{Action, Change, OrganizationPlan};

/// Why a change that takes an admin away is not sent when the organization would be left
/// without one.
pub const ADMINS_CHANGED: &str =
    "not sent: another writer changed the organization's admins; re-plan";

/// Confirms with one read that `organization_id` keeps an `org:admin` once `removals` (the
/// users whose admin role this run takes away there) have lost theirs. `Err`: the outcome of
/// each removal, not sent.
pub async fn confirm(
    client: &Client,
    organization_id: &str,
    removals: &[&str],
) -> Result<(), Outcome> {
    let read = client
        .list_organization_memberships_with_role(organization_id, Role::ADMIN, PAGE_LIMIT)
        .await;
    let page = match read {
        Ok(page) => page,
        Err(error) => {
            return Err(match error.not_sent_reason() {
                // Interrupted, or the key was refused: skipped as every change not sent.
                Some(reason) => Outcome::Skipped {
                    reason: reason.to_owned(),
                },
                None => ChangeError::AdminsUnconfirmed {
                    organization_id: organization_id.to_owned(),
                    error,
                }
                .into(),
            });
        }
    };
    let remaining = page
        .data
        .iter()
        .filter(|m| m.role == Role::ADMIN)
        .filter(|m| !removals.contains(&m.public_user_data.user_id.as_str()))
        .count();
    // More admins than one page holds: each removal takes one at most.
    let beyond_the_page =
        page.total_count > page.data.len() as u64 && page.total_count > removals.len() as u64;
    if remaining > 0 || beyond_the_page {
        return Ok(());
    }
    tracing::warn!(
        organization = organization_id,
        admins = page.total_count,
        removals = removals.len(),
        "the organization's admins changed since the plan was made: no admin would remain; its admin removals are not sent"
    );
    Err(ChangeError::AdminsChanged.into())
}

/// Whether a change takes an admin away (a demotion, or deleting an admin).
pub fn removes_admin(change: &Change) -> bool {
    change.is_demotion()
        || (change.action == Action::Delete && change.role.as_deref() == Some(Role::ADMIN))
}

/// Before the first admin removal of `organization`: confirms that an admin remains after
/// every admin removal not yet decided (this phase's `runnable` ones and later phases'), or
/// fails them all, unsent, and takes them out of `runnable`. Returns how many of `runnable`
/// were taken out (the admins they no longer take away).
pub async fn confirm_or_fail(
    client: &Client,
    organization: &OrganizationPlan,
    outcomes: &mut [Option<Outcome>],
    runnable: &mut Vec<usize>,
) -> usize {
    let changes = &organization.changes;
    let undecided = |index: usize, outcomes: &[Option<Outcome>]| {
        outcomes[index].is_none() && removes_admin(&changes[index])
    };
    let removals: Vec<&str> = (0..changes.len())
        .filter(|&index| undecided(index, outcomes))
        .map(|index| changes[index].user_id.as_str())
        .collect();
    let Err(outcome) = confirm(client, &organization.organization_id, &removals).await else {
        return 0;
    };
    for index in 0..changes.len() {
        if undecided(index, outcomes) {
            outcomes[index] = Some(outcome.clone());
        }
    }
    let before = runnable.len();
    runnable.retain(|&index| !removes_admin(&changes[index]));
    before - runnable.len()
}
