//! Organization roles, as Clerk serves them: create, read, update (name, description, the
//! exact set of permissions), delete (refused while the role is in use: held by a member or a
//! pending invitation, in a role set, or a role set's default or creator role), and one
//! permission assigned or removed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::objects::role_out;
use super::permissions::{deleted, permission_key, valid_key};
use super::shared::{Shared, error};
use super::state::{SEEDED_AT, SimRoleFields, SimState, now_ms};

/// The key of the instance's role with this ID (or key).
pub(super) fn role_key(state: &SimState, id: &str) -> Option<String> {
    state
        .instance_roles()
        .into_iter()
        .find(|key| key == id || format!("role_{}", key.replace(':', "_")) == id)
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        "Role not found",
    )
}

fn unprocessable(code: &str, message: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    key: Option<String>,
    description: Option<String>,
    permissions: Option<Vec<String>>,
    include_in_initial_role_set: Option<bool>,
}

/// The keys of these permission IDs, or the answer naming the first unknown one.
fn permission_keys(state: &SimState, ids: &[String]) -> Result<Vec<String>, Response> {
    let mut keys = Vec::with_capacity(ids.len());
    for id in ids {
        match permission_key(state, id) {
            Some(key) if !keys.iter().any(|k| k == key) => keys.push(key.to_owned()),
            Some(_) => {}
            None => {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "resource_not_found",
                    &format!("Permission {id} not found"),
                ));
            }
        }
    }
    Ok(keys)
}

/// `POST /organization_roles`.
pub(super) async fn create(State(shared): State<Shared>, body: Bytes) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("form_param_unknown", "the body holds an unknown field");
    };
    let (Some(name), Some(key)) = (fields.name, fields.key) else {
        return unprocessable("form_param_missing", "name and key are required");
    };
    if !valid_key(&key, "org:", 1) {
        return unprocessable(
            "form_param_format_invalid",
            "key must start with org: followed by lowercase letters, digits and underscores",
        );
    }
    let mut inner = shared.lock();
    let state = &mut inner.state;
    if role_key(state, &key).is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "duplicate_record",
            "A role with this key already exists.",
        );
    }
    let permissions = match permission_keys(state, &fields.permissions.unwrap_or_default()) {
        Ok(keys) => keys,
        Err(response) => return response,
    };
    state.roles = state.instance_roles();
    state.roles.push(key.clone());
    state.role_fields.insert(
        key.clone(),
        SimRoleFields {
            name: Some(name),
            description: fields.description,
            permissions,
        },
    );
    if fields.include_in_initial_role_set == Some(true)
        && let Some(set) = state.role_sets.iter_mut().find(|s| s.initial)
        && set.roles.len() < super::role_sets::MAX_ROLES
    {
        set.roles.push(key.clone());
    }
    state.created(&key, now_ms());
    axum::Json(role_out(state, &key)).into_response()
}

/// `GET /organization_roles/{id}`.
pub(super) async fn get(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = shared.lock();
    let state = &inner.state;
    match role_key(state, &id) {
        Some(key) => axum::Json(role_out(state, &key)).into_response(),
        None => not_found(),
    }
}

/// `PATCH /organization_roles/{id}`: name, description, and permissions (the whole set).
pub(super) async fn update(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("form_param_unknown", "the body holds an unknown field");
    };
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(key) = role_key(state, &id) else {
        return not_found();
    };
    if fields.key.as_ref().is_some_and(|new| *new != key) {
        return unprocessable(
            "form_param_value_invalid",
            "the simulator does not rename roles",
        );
    }
    let permissions = match fields
        .permissions
        .as_deref()
        .map(|ids| permission_keys(state, ids))
    {
        Some(Err(response)) => return response,
        Some(Ok(keys)) => Some(keys),
        None => None,
    };
    let entry = state.role_fields.entry(key.clone()).or_default();
    if let Some(name) = fields.name {
        entry.name = Some(name);
    }
    if let Some(description) = fields.description {
        entry.description = Some(description);
    }
    if let Some(permissions) = permissions {
        entry.permissions = permissions;
    }
    state.touch(&key, SEEDED_AT, now_ms());
    axum::Json(role_out(state, &key)).into_response()
}

/// Why a role cannot be deleted now, if it cannot.
fn in_use(state: &SimState, key: &str) -> Option<&'static str> {
    if state.memberships.iter().any(|m| m.role == key) {
        return Some("it is assigned to members");
    }
    if state
        .invitations
        .iter()
        .any(|i| i.status == "pending" && i.role == key)
    {
        return Some("pending invitations carry it");
    }
    for set in &state.role_sets {
        if set.default_role() == Some(key) || set.creator_role() == Some(key) {
            return Some("it is a role set's default or creator role");
        }
        if set.roles.iter().any(|r| r == key) {
            return Some("it is in a role set");
        }
    }
    None
}

/// `DELETE /organization_roles/{id}`.
pub(super) async fn delete(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(key) = role_key(state, &id) else {
        return not_found();
    };
    if let Some(reason) = in_use(state, &key) {
        return unprocessable(
            "organization_role_in_use",
            &format!("The role {key} cannot be deleted: {reason}."),
        );
    }
    state.roles = state.instance_roles();
    state.roles.retain(|r| *r != key);
    state.role_fields.remove(&key);
    deleted("role", &format!("role_{}", key.replace(':', "_")))
}

/// `POST` or `DELETE /organization_roles/{id}/permissions/{permission_id}`.
pub(super) async fn assign_permission(
    State(shared): State<Shared>,
    Path((id, permission)): Path<(String, String)>,
) -> Response {
    change_permission(&shared, &id, &permission, true)
}

pub(super) async fn remove_permission(
    State(shared): State<Shared>,
    Path((id, permission)): Path<(String, String)>,
) -> Response {
    change_permission(&shared, &id, &permission, false)
}

fn change_permission(shared: &Shared, id: &str, permission: &str, assign: bool) -> Response {
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(key) = role_key(state, id) else {
        return not_found();
    };
    let Some(permission) = permission_key(state, permission).map(str::to_owned) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Permission not found",
        );
    };
    let entry = state.role_fields.entry(key.clone()).or_default();
    let has = entry.permissions.contains(&permission);
    match (assign, has) {
        (true, true) => {
            return error(
                StatusCode::CONFLICT,
                "duplicate_record",
                "The role already has this permission.",
            );
        }
        (true, false) => entry.permissions.push(permission),
        (false, true) => entry.permissions.retain(|p| *p != permission),
        (false, false) => {
            return unprocessable(
                "resource_not_found",
                "The role does not have this permission.",
            );
        }
    }
    state.touch(&key, SEEDED_AT, now_ms());
    axum::Json(role_out(state, &key)).into_response()
}
