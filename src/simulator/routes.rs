//! The endpoints membersync uses, answered from the simulated instance as Clerk answers them.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::merge::merge_patch;
use super::server::{Shared, error};
use super::state::{SimMembership, SimOrganization, SimState};

pub(super) async fn unknown(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        &format!("{method} {uri} is not simulated"),
    )
}

/// Query pairs, repeated keys kept.
pub(super) fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn one(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub(super) fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `limit` (1..=500, default 10) and `offset`; out-of-range values get a 422 like Clerk's.
pub(super) fn paging(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
    let limit = one(pairs, "limit")
        .map(|v| v.parse::<usize>())
        .unwrap_or(Ok(10));
    let offset = one(pairs, "offset")
        .map(|v| v.parse::<usize>())
        .unwrap_or(Ok(0));
    match (limit, offset) {
        (Ok(limit), Ok(offset)) if (1..=500).contains(&limit) => Ok((limit, offset)),
        _ => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "limit must be 1..=500",
        )),
    }
}

/// A membership as Clerk serializes it (`OrganizationMembership`), borrowed from the state so
/// that a page of 500 is written without building a JSON tree first.
#[derive(Serialize)]
struct MembershipOut<'a> {
    object: &'static str,
    id: &'a str,
    role: &'a str,
    permissions: [&'a str; 0],
    public_metadata: &'a Map<String, Value>,
    private_metadata: &'a Map<String, Value>,
    organization: OrganizationOut<'a>,
    public_user_data: UserOut<'a>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct OrganizationOut<'a> {
    object: &'static str,
    id: &'a str,
    slug: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct UserOut<'a> {
    user_id: &'a str,
    identifier: Option<&'a str>,
}

fn membership_out<'a>(state: &'a SimState, membership: &'a SimMembership) -> MembershipOut<'a> {
    let organization = state.organization(&membership.organization_id);
    let identifier = state
        .user(&membership.user_id)
        .and_then(|u| u.emails.first().map(String::as_str));
    MembershipOut {
        object: "organization_membership",
        id: &membership.id,
        role: &membership.role,
        permissions: [],
        public_metadata: &membership.public_metadata,
        private_metadata: &membership.private_metadata,
        organization: OrganizationOut {
            object: "organization",
            id: &membership.organization_id,
            slug: organization.map(|o| o.slug.as_str()),
            name: organization.map(|o| o.name.as_str()),
        },
        public_user_data: UserOut {
            user_id: &membership.user_id,
            identifier,
        },
        created_at: membership.created_at,
        updated_at: membership.created_at,
    }
}

pub(super) fn membership_json(state: &SimState, membership: &SimMembership) -> Value {
    serde_json::to_value(membership_out(state, membership)).unwrap_or(Value::Null)
}

/// A page of memberships, written straight from the state.
#[derive(Serialize)]
struct PageOut<'a> {
    data: Vec<MembershipOut<'a>>,
    total_count: usize,
}

pub(super) fn organization_json(organization: &SimOrganization, count: usize) -> Value {
    json!({
        "object": "organization",
        "id": organization.id,
        "slug": organization.slug,
        "name": organization.name,
        "members_count": count,
        "role_set_key": organization.role_set_key,
    })
}

pub(super) fn page(
    state: &SimState,
    memberships: Vec<&SimMembership>,
    limit: usize,
    offset: usize,
) -> Response {
    let total_count = memberships.len();
    let data = memberships
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|m| membership_out(state, m))
        .collect();
    axum::Json(PageOut { data, total_count }).into_response()
}

pub(super) fn sorted_by_creation(
    mut memberships: Vec<&SimMembership>,
    order_by: Option<String>,
) -> Vec<&SimMembership> {
    memberships.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if order_by.as_deref() == Some("-created_at") {
        memberships.reverse();
    }
    memberships
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
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let ascending = one(&pairs, "order_by").as_deref() != Some("-created_at");
    if ascending && !inner.sorted {
        // Sorted once, then kept in order: a page costs its 500 entries, not the instance.
        inner
            .state
            .memberships
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        inner.sorted = true;
    }
    let state = &inner.state;
    if ascending {
        // The usual case, without copying a million references per page.
        let data = state
            .memberships
            .iter()
            .skip(offset)
            .take(limit)
            .map(|m| membership_out(state, m))
            .collect();
        let total_count = state.memberships.len();
        return axum::Json(PageOut { data, total_count }).into_response();
    }
    let memberships =
        sorted_by_creation(state.memberships.iter().collect(), one(&pairs, "order_by"));
    page(state, memberships, limit, offset)
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
    let users = all(&pairs, "user_id");
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(organization) = inner.state.organization(&org) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    let memberships = inner
        .state
        .memberships
        .iter()
        .filter(|m| {
            m.organization_id == organization.id && (users.is_empty() || users.contains(&m.user_id))
        })
        .collect();
    let memberships = sorted_by_creation(memberships, one(&pairs, "order_by"));
    page(&inner.state, memberships, limit, offset)
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
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
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
    let response = membership_json(&inner.state, &membership);
    if inner
        .state
        .memberships
        .last()
        .is_some_and(|last| (last.created_at, &last.id) > (membership.created_at, &membership.id))
    {
        inner.sorted = false;
    }
    inner.state.memberships.push(membership);
    axum::Json(response).into_response()
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
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            if let Some(organization) = inner.state.organization(&org).cloned()
                && let Err(response) = check_role(&inner.state, &organization, &role)
            {
                return response;
            }
            inner.state.memberships[index].role = role;
            let response = membership_json(&inner.state, &inner.state.memberships[index]);
            axum::Json(response).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn delete(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            let membership = inner.state.memberships.remove(index);
            axum::Json(membership_json(&inner.state, &membership)).into_response()
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
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            let membership = &mut inner.state.memberships[index];
            if let Some(Value::Object(part)) = patch.get("public_metadata") {
                merge_patch(&mut membership.public_metadata, part);
            }
            if let Some(Value::Object(part)) = patch.get("private_metadata") {
                merge_patch(&mut membership.private_metadata, part);
            }
            let response = membership_json(&inner.state, &inner.state.memberships[index]);
            axum::Json(response).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn list_users(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let emails: Vec<String> = all(&pairs, "email_address")
        .iter()
        .map(|e| e.to_lowercase())
        .collect();
    if emails.len() > 100 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "at most 100 email addresses",
        );
    }
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let users: Vec<Value> = inner
        .state
        .users
        .iter()
        .filter(|u| emails.is_empty() || u.emails.iter().any(|e| emails.contains(&e.to_lowercase())))
        .skip(offset)
        .take(limit)
        .map(|u| {
            let addresses: Vec<Value> = u
                .emails
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"object": "email_address", "id": format!("idn_{}_{i}", u.id), "email_address": e}))
                .collect();
            json!({"object": "user", "id": u.id, "primary_email_address_id": format!("idn_{}_0", u.id), "email_addresses": addresses})
        })
        .collect();
    axum::Json(Value::Array(users)).into_response()
}

pub(super) async fn list_organizations(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let ids = all(&pairs, "organization_id");
    if ids.len() > 100 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "at most 100 organization IDs",
        );
    }
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let matching: Vec<&SimOrganization> = inner
        .state
        .organizations
        .iter()
        .filter(|o| wanted.is_empty() || wanted.contains(o.id.as_str()))
        .skip(offset)
        .take(limit)
        .collect();
    let total = if wanted.is_empty() {
        inner.state.organizations.len()
    } else {
        inner
            .state
            .organizations
            .iter()
            .filter(|o| wanted.contains(o.id.as_str()))
            .count()
    };
    // One pass over the memberships counts the members of every organization of the page.
    let mut counts: std::collections::HashMap<&str, usize> =
        matching.iter().map(|o| (o.id.as_str(), 0)).collect();
    for membership in &inner.state.memberships {
        if let Some(count) = counts.get_mut(membership.organization_id.as_str()) {
            *count += 1;
        }
    }
    let data: Vec<Value> = matching
        .iter()
        .map(|o| organization_json(o, counts[o.id.as_str()]))
        .collect();
    axum::Json(json!({"data": data, "total_count": total})).into_response()
}

pub(super) async fn get_role_set(
    State(shared): State<Shared>,
    Path(key): Path<String>,
) -> Response {
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match inner.state.role_sets.iter().find(|s| s.key == key) {
        Some(set) => {
            let roles: Vec<Value> = set
                .roles
                .iter()
                .map(|r| json!({"object": "role_set_item", "id": format!("role_{r}"), "name": r, "key": r}))
                .collect();
            axum::Json(json!({
                "object": "role_set", "id": format!("rs_{}", set.key), "name": set.key, "key": set.key,
                "description": null, "roles": roles, "type": "custom", "created_at": 0, "updated_at": 0
            }))
            .into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Role set not found",
        ),
    }
}

pub(super) async fn list_roles(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let roles = inner.state.instance_roles();
    let data: Vec<Value> = roles
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| json!({"object": "role", "id": format!("role_{r}"), "name": r, "key": r, "description": null,
                        "is_creator_eligible": r == "org:admin", "permissions": [], "created_at": 0, "updated_at": 0}))
        .collect();
    axum::Json(json!({"data": data, "total_count": roles.len()})).into_response()
}

pub(super) async fn get_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    _headers: HeaderMap,
) -> Response {
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match inner.state.organization(&org) {
        Some(organization) => {
            let count = inner
                .state
                .memberships
                .iter()
                .filter(|m| m.organization_id == organization.id)
                .count();
            axum::Json(organization_json(organization, count)).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        ),
    }
}
