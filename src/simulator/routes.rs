//! The membership endpoints, answered from the simulated instance as Clerk answers them: the
//! instance's and an organization's listings (paging, filters, order), create, role change,
//! metadata merge and delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::filters::{Order, OrderKey, PeopleFilter};
use super::merge::merge_patch;
use super::objects::membership_out;
use super::query::{PageOut, page_of};
use super::query::{all, paging, pairs};
use super::shared::{Shared, error};
use super::state::{SimMembership, SimOrganization, SimState, now_ms};

pub(super) async fn unknown(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        &format!("{method} {uri} is not simulated"),
    )
}

/// Writes one membership as Clerk does.
pub(super) fn membership_response(state: &SimState, membership: &SimMembership) -> Response {
    axum::Json(membership_out(state, membership)).into_response()
}

/// A page of memberships, written straight from the state.
pub(super) fn page(
    state: &SimState,
    memberships: Vec<&SimMembership>,
    limit: usize,
    offset: usize,
) -> Response {
    page_of(memberships, limit, offset, |m| membership_out(state, m))
}

pub(super) async fn list_instance(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let order = match Order::from_query(&pairs) {
        Ok(order) => order,
        Err(response) => return response,
    };
    let mut inner = shared.lock();
    if order.key != OrderKey::CreatedAt {
        let state = &inner.state;
        let mut memberships: Vec<&SimMembership> = state.memberships.iter().collect();
        order.sort(state, &mut memberships);
        return page(state, memberships, limit, offset);
    }
    if !inner.sorted {
        // Sorted once, then kept in order: a page costs its 500 entries, not the instance.
        inner
            .state
            .memberships
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        inner.sorted = true;
    }
    // Either direction without copying a million references per page.
    let state = &inner.state;
    let total_count = state.memberships.len();
    let data = if order.descending {
        let newest = state.memberships.iter().rev().skip(offset).take(limit);
        newest.map(|m| membership_out(state, m)).collect()
    } else {
        let oldest = state.memberships.iter().skip(offset).take(limit);
        oldest.map(|m| membership_out(state, m)).collect()
    };
    axum::Json(PageOut { data, total_count }).into_response()
}

pub(super) async fn list_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let (filter, order) = match (PeopleFilter::from_query(&pairs), Order::from_query(&pairs)) {
        (Ok(filter), Ok(order)) => (filter, order),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    // The `role` filter (any of the roles given).
    let roles = all(&pairs, "role");
    let inner = shared.lock();
    let state = &inner.state;
    let Some(organization) = state.organization(&org) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    let mut memberships: Vec<&SimMembership> = state
        .memberships
        .iter()
        .filter(|m| {
            m.organization_id == organization.id
                && filter.keeps_membership(state, m)
                && (roles.is_empty() || roles.contains(&m.role))
        })
        .collect();
    order.sort(state, &mut memberships);
    page(state, memberships, limit, offset)
}

#[derive(Deserialize)]
struct CreateBody {
    user_id: String,
    role: String,
    #[serde(default)]
    public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<Map<String, Value>>,
}

pub(super) async fn create(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<CreateBody>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "user_id and role are required",
        );
    };
    let mut inner = shared.lock();
    let Some(organization) = inner.state.organization(&org).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    if let Err(response) = check_role(&inner.state, &organization, &body.role) {
        return response;
    }
    if let Err(response) = check_quota(&inner.state, &organization) {
        return response;
    }
    let organization_id = organization.id;
    if inner.state.user(&body.user_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "User not found",
        );
    }
    if inner
        .state
        .memberships
        .iter()
        .any(|m| m.organization_id == organization_id && m.user_id == body.user_id)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "already_a_member_in_organization",
            "The user is already a member of this organization.",
        );
    }
    let id = inner.next_id;
    inner.next_id += 1;
    let membership = SimMembership {
        id: format!("orgmem_sim{id}"),
        organization_id,
        user_id: body.user_id,
        role: body.role,
        public_metadata: body.public_metadata.unwrap_or_default(),
        private_metadata: body.private_metadata.unwrap_or_default(),
        created_at: inner.next_created_at(),
    };
    let response = membership_response(&inner.state, &membership);
    if inner
        .state
        .memberships
        .last()
        .is_some_and(|last| (last.created_at, &last.id) > (membership.created_at, &membership.id))
    {
        inner.sorted = false;
    }
    inner.state.memberships.push(membership);
    response
}

/// Refuses a new member of a full organization (`max_allowed_memberships`, 0: no limit), as
/// Clerk does: 403 `organization_membership_quota_exceeded`, a refusal of this one change.
fn check_quota(state: &SimState, organization: &SimOrganization) -> Result<(), Response> {
    let Some(max) = organization.max_allowed_memberships.filter(|max| *max > 0) else {
        return Ok(());
    };
    let members = state
        .memberships
        .iter()
        .filter(|m| m.organization_id == organization.id)
        .count();
    if members < max {
        return Ok(());
    }
    Err(error(
        StatusCode::FORBIDDEN,
        "organization_membership_quota_exceeded",
        "The organization has reached its maximum number of memberships.",
    ))
}

/// Refuses a role the organization does not allow, as Clerk does.
pub(super) fn check_role(
    state: &SimState,
    organization: &SimOrganization,
    role: &str,
) -> Result<(), Response> {
    if state.allowed_roles(organization).iter().any(|r| r == role) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            &format!("The role `{role}` does not exist in this organization."),
        ))
    }
}

/// Moves the `updated_at` of the membership at `index` to now.
fn touch(state: &mut SimState, index: usize) {
    let membership = &state.memberships[index];
    let (id, created_at) = (membership.id.clone(), membership.created_at);
    state.touch(&id, created_at, now_ms());
}

/// Finds a membership by organization (ID or slug) and user, or answers 404.
pub(super) fn find(state: &SimState, org: &str, user: &str) -> Result<usize, Response> {
    let organization_id = state
        .organization(org)
        .map(|o| o.id.clone())
        .unwrap_or_default();
    state
        .memberships
        .iter()
        .position(|m| m.organization_id == organization_id && m.user_id == user)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "Organization membership not found",
            )
        })
}

pub(super) async fn update_role(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(role) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("role")?.as_str().map(str::to_owned))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "role is required",
        );
    };
    let mut inner = shared.lock();
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            if let Some(organization) = inner.state.organization(&org).cloned()
                && let Err(response) = check_role(&inner.state, &organization, &role)
            {
                return response;
            }
            if role != ADMIN && is_last_admin(&inner.state, index) {
                return last_admin_refused();
            }
            inner.state.memberships[index].role = role;
            touch(&mut inner.state, index);
            membership_response(&inner.state, &inner.state.memberships[index])
        }
        Err(response) => response,
    }
}

const ADMIN: &str = "org:admin";

/// Whether the membership at `index` is its organization's only `org:admin`. Checked under
/// the state's lock, with the write it guards: two writers that each remove a different admin
/// of a two-admin organization cannot both succeed.
fn is_last_admin(state: &SimState, index: usize) -> bool {
    let membership = &state.memberships[index];
    membership.role == ADMIN
        && !state.memberships.iter().any(|other| {
            other.organization_id == membership.organization_id
                && other.role == ADMIN
                && other.user_id != membership.user_id
        })
}

/// Clerk refuses to remove or demote an organization's last admin, with this error (Clerk's
/// error reference: `OrganizationMinimumPermissionsNeeded`, status 400).
fn last_admin_refused() -> Response {
    let body = json!({
        "errors": [{
            "code": "organization_minimum_permissions_needed",
            "message": "minimum organization permissions needed",
            "long_message": "There has to be at least one organization member with the minimum required permissions",
            "meta": {}
        }],
        "clerk_trace_id": "sim-trace"
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

pub(super) async fn delete(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.lock();
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            if is_last_admin(&inner.state, index) {
                return last_admin_refused();
            }
            let membership = inner.state.memberships.remove(index);
            let response = membership_response(&inner.state, &membership);
            inner.state.times.remove(&membership.id);
            response
        }
        Err(response) => response,
    }
}

pub(super) async fn merge_metadata(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_invalid",
            "a JSON object is required",
        );
    };
    if patch
        .keys()
        .any(|k| k != "public_metadata" && k != "private_metadata")
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_unknown",
            "only public_metadata and private_metadata",
        );
    }
    let mut inner = shared.lock();
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            let membership = &mut inner.state.memberships[index];
            if let Some(Value::Object(part)) = patch.get("public_metadata") {
                merge_patch(&mut membership.public_metadata, part);
            }
            if let Some(Value::Object(part)) = patch.get("private_metadata") {
                merge_patch(&mut membership.private_metadata, part);
            }
            touch(&mut inner.state, index);
            membership_response(&inner.state, &inner.state.memberships[index])
        }
        Err(response) => response,
    }
}
