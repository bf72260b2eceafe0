//! The instance's permissions, roles and role sets in a run: read and planned before the
//! organizations, put into the plan, and the role sets the member roles are checked against.

use std::collections::HashMap;

use super::{Planned, SyncError};
use crate::clerk::{self, Client};
use crate::desired;
use crate::plan::authorization::AuthorizationPlan;
use crate::plan::saved::ResourceStates;
use crate::plan::{self, Plan};

/// Reads the instance's permissions, roles and role sets and plans `block` against them;
/// also the digests of their states (for saved plans).
pub(super) async fn plan_authorization(
    client: &Client,
    block: &desired::Authorization,
) -> Result<(AuthorizationPlan, ResourceStates), SyncError> {
    let mut live = clerk::read_authorization(client).await?.into_live();
    // A role a set drops keeps the people invited with it too: read them only then.
    let drops = block.role_sets.iter().flatten().any(|set| {
        live.role_sets.iter().any(|l| {
            l.key == set.key
                && l.roles
                    .iter()
                    .any(|r| set.roles.iter().all(|d| d.key != *r))
        })
    });
    if drops {
        let mut invited = clerk::invited_by_role_set(client).await?;
        for set in &mut live.role_sets {
            set.invited = invited.remove(&set.key).unwrap_or_default();
        }
    }
    let planned =
        plan::authorization::plan_authorization(block, &live).map_err(SyncError::Invalid)?;
    Ok((planned, plan::authorization::authorization_states(&live)))
}

/// Puts the authorization plan into the plan; the roles of each role set it leaves, and the
/// roles it creates (what the member roles are checked against).
pub(super) fn attach_authorization(
    planned: &mut Planned,
    authorization: AuthorizationPlan,
    states: ResourceStates,
) -> (
    HashMap<String, std::collections::HashSet<String>>,
    Vec<String>,
) {
    let sets = (
        authorization.role_sets.clone(),
        authorization.created_roles.clone(),
    );
    let plan = &mut planned.plan;
    plan.authorization = authorization.changes;
    plan.rejected_resources = authorization.rejected;
    plan.current_resources = authorization.deletable;
    plan.managed = vec![
        plan::Resource::Permission,
        plan::Resource::Role,
        plan::Resource::RoleSet,
    ];
    for rejected in &plan.rejected_resources {
        tracing::warn!(resource = %rejected.resource, key = %rejected.key, reason = %rejected.reason, "left alone");
    }
    planned.resource_states = states;
    sets
}

/// An organization the plan moves to another role set (a change not refused) has its members'
/// roles checked against that set as the plan leaves it (`moved_to`: the sets the read of the
/// organizations' own fields found, with the file's definitions over them).
pub(super) fn moved_role_sets(
    plan: &Plan,
    moved_to: &HashMap<String, Vec<String>>,
    allowed: &mut HashMap<String, std::collections::HashSet<String>>,
) {
    for organization in &plan.organizations {
        let Some(roles) = allowed.get_mut(&organization.organization_id) else {
            continue;
        };
        let key = organization
            .resources
            .iter()
            .filter(|c| c.resource == plan::Resource::Organization && c.refused.is_none())
            .find_map(|c| c.after_field("role_set_key").and_then(|key| key.as_str()));
        if let Some(set) = key.and_then(|key| moved_to.get(key)) {
            *roles = set.iter().cloned().collect();
        }
    }
}
