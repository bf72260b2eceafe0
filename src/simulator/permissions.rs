//! Organization permissions, as Clerk serves them: the system ones (`org:sys_…`, which cannot
//! be created, changed or deleted) and the instance's custom ones (listing, create, read,
//! update, delete; a permission a role still has is taken out of that role when deleted, as
//! Clerk does).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::query::page_of;
use super::query::{one, paging, pairs};
use super::shared::{Shared, error};
use super::state::{SimPermission, SimState, now_ms};

/// Clerk's system permissions: key and name.
pub(super) const SYSTEM: [(&str, &str); 8] = [
    ("org:sys_profile:manage", "Manage organization"),
    ("org:sys_profile:delete", "Delete organization"),
    ("org:sys_memberships:read", "Read members"),
    ("org:sys_memberships:manage", "Manage members"),
    ("org:sys_domains:read", "Read domains"),
    ("org:sys_domains:manage", "Manage domains"),
    ("org:sys_billing:read", "Read billing"),
    ("org:sys_billing:manage", "Manage billing"),
];

/// `Permission`.
#[derive(Serialize)]
pub(super) struct PermissionOut<'a> {
    object: &'static str,
    id: String,
    name: &'a str,
    key: &'a str,
    description: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: i64,
    updated_at: i64,
}

/// A permission's ID, made from its key.
pub(super) fn permission_id(key: &str) -> String {
    format!("perm_{}", key.replace(':', "_"))
}

/// The permission with this key, system or custom, as Clerk writes it.
pub(super) fn permission_out<'a>(state: &'a SimState, key: &'a str) -> Option<PermissionOut<'a>> {
    let times = state.times_of(key);
    let (name, description, kind) = match SYSTEM.iter().find(|(k, _)| *k == key) {
        Some((_, name)) => (*name, "", "system"),
        None => {
            let custom = state.permissions.iter().find(|p| p.key == key)?;
            (custom.name.as_str(), custom.description.as_str(), "user")
        }
    };
    Some(PermissionOut {
        object: "permission",
        id: permission_id(key),
        name,
        key,
        description,
        kind,
        created_at: times.created_at,
        updated_at: times.updated_at,
    })
}

/// Every permission's key: the system ones, then the custom ones.
fn all_keys(state: &SimState) -> Vec<&str> {
    SYSTEM
        .iter()
        .map(|(key, _)| *key)
        .chain(state.permissions.iter().map(|p| p.key.as_str()))
        .collect()
}

/// The key of the permission with this ID (or key).
pub(super) fn permission_key<'a>(state: &'a SimState, id: &str) -> Option<&'a str> {
    all_keys(state)
        .into_iter()
        .find(|key| *key == id || permission_id(key) == id)
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        "Permission not found",
    )
}

/// A key as Clerk accepts it: `prefix` followed by `segments` parts of lowercase letters,
/// digits and `_` (the file's own check).
pub(super) use crate::desired::key_format as valid_key;

/// `GET /organization_permissions` (`query`: part of the key or name).
pub(super) async fn list(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let wanted = one(&pairs, "query").unwrap_or_default().to_lowercase();
    let inner = shared.lock();
    let state = &inner.state;
    let keys: Vec<&str> = all_keys(state)
        .into_iter()
        .filter(|key| key.contains(&wanted))
        .collect();
    page_of(keys, limit, offset, |key| permission_out(state, key))
}

/// `GET /organization_permissions/{id}`.
pub(super) async fn get(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = shared.lock();
    let state = &inner.state;
    match permission_key(state, &id).and_then(|key| permission_out(state, key)) {
        Some(permission) => axum::Json(permission).into_response(),
        None => not_found(),
    }
}

#[derive(Deserialize)]
struct Fields {
    name: Option<String>,
    key: Option<String>,
    description: Option<String>,
}

fn unprocessable(code: &str, message: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `POST /organization_permissions`.
pub(super) async fn create(State(shared): State<Shared>, body: Bytes) -> Response {
    let Ok(Fields {
        name: Some(name),
        key: Some(key),
        description,
    }) = serde_json::from_slice::<Fields>(&body)
    else {
        return unprocessable("form_param_missing", "name and key are required");
    };
    if !valid_key(&key, "org:", 2) || key.starts_with("org:sys_") {
        return unprocessable(
            "form_param_format_invalid",
            "key must have the format org:feature:action and must not begin with org:sys_",
        );
    }
    let mut inner = shared.lock();
    if permission_key(&inner.state, &key).is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "duplicate_record",
            "A permission with this key already exists.",
        );
    }
    inner.state.permissions.push(SimPermission {
        key: key.clone(),
        name,
        description: description.unwrap_or_default(),
    });
    inner.state.created(&key, now_ms());
    let state = &inner.state;
    axum::Json(permission_out(state, &key)).into_response()
}

/// `PATCH /organization_permissions/{id}`: name, description (a key change is refused here:
/// membersync never renames).
pub(super) async fn update(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("form_param_invalid", "the body must be a JSON object");
    };
    let mut inner = shared.lock();
    let Some(key) = permission_key(&inner.state, &id).map(str::to_owned) else {
        return not_found();
    };
    if key.starts_with("org:sys_") {
        return system_refused();
    }
    if fields.key.as_ref().is_some_and(|new| *new != key) {
        return unprocessable(
            "form_param_value_invalid",
            "the simulator does not rename permissions",
        );
    }
    let state = &mut inner.state;
    if let Some(permission) = state.permissions.iter_mut().find(|p| p.key == key) {
        if let Some(name) = fields.name {
            permission.name = name;
        }
        if let Some(description) = fields.description {
            permission.description = description;
        }
    }
    state.touch(&key, super::state::SEEDED_AT, now_ms());
    axum::Json(permission_out(state, &key)).into_response()
}

fn system_refused() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "system_permission_update_not_allowed",
        "System permissions cannot be changed or deleted.",
    )
}

/// `DELETE /organization_permissions/{id}`.
pub(super) async fn delete(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    let Some(key) = permission_key(&inner.state, &id).map(str::to_owned) else {
        return not_found();
    };
    if key.starts_with("org:sys_") {
        return system_refused();
    }
    let state = &mut inner.state;
    state.permissions.retain(|p| p.key != key);
    for fields in state.role_fields.values_mut() {
        fields.permissions.retain(|p| *p != key);
    }
    deleted("permission", &permission_id(&key))
}

/// `DeletedObject`.
pub(super) fn deleted(object: &str, id: &str) -> Response {
    axum::Json(serde_json::json!({ "object": object, "id": id, "deleted": true })).into_response()
}
