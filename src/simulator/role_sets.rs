//! Role sets, as Clerk serves them: listing, one by key or ID, create, update (name,
//! description, `initial`, default and creator role), roles added, and one role replaced by
//! another (its holders in the set's organizations move to the other role). Clerk's refusals:
//! 0 or more than 10 roles, a default or creator role outside the set, an unknown role, a
//! default or creator role taken out.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::objects::{RoleSetItemOut, role_set_item_out};
use super::permissions::valid_key;
use super::query::page_of;
use super::query::{one, paging, pairs};
use super::shared::{Shared, error};
use super::state::{SEEDED_AT, SimRoleSet, SimState, now_ms};

/// The most roles a role set holds.
pub(super) const MAX_ROLES: usize = 10;

/// `RoleSet`.
#[derive(Serialize)]
struct RoleSetOut<'a> {
    object: &'static str,
    id: String,
    name: &'a str,
    key: &'a str,
    description: Option<&'a str>,
    roles: Vec<RoleSetItemOut<'a>>,
    default_role: Option<RoleSetItemOut<'a>>,
    creator_role: Option<RoleSetItemOut<'a>>,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: i64,
    updated_at: i64,
}

fn role_set_out<'a>(state: &'a SimState, set: &'a SimRoleSet) -> RoleSetOut<'a> {
    let times = state.times_of(&set.key);
    RoleSetOut {
        object: "role_set",
        id: format!("rs_{}", set.key),
        name: set.name.as_deref().unwrap_or(&set.key),
        key: &set.key,
        description: set.description.as_deref(),
        roles: set
            .roles
            .iter()
            .map(|r| role_set_item_out(state, r, Some(holders(state, &set.key, r))))
            .collect(),
        default_role: set
            .default_role()
            .map(|r| role_set_item_out(state, r, None)),
        creator_role: set
            .creator_role()
            .map(|r| role_set_item_out(state, r, None)),
        kind: if set.initial { "initial" } else { "custom" },
        created_at: times.created_at,
        updated_at: times.updated_at,
    }
}

/// How many members of the organizations with this role set hold `role`.
fn holders(state: &SimState, set_key: &str, role: &str) -> u64 {
    let organizations: Vec<&str> = state
        .organizations
        .iter()
        .filter(|o| o.role_set_key.as_deref() == Some(set_key))
        .map(|o| o.id.as_str())
        .collect();
    state
        .memberships
        .iter()
        .filter(|m| m.role == role && organizations.contains(&m.organization_id.as_str()))
        .count() as u64
}

/// The position of the role set with this key or ID.
fn position(state: &SimState, key: &str) -> Option<usize> {
    state
        .role_sets
        .iter()
        .position(|s| s.key == key || format!("rs_{}", s.key) == key)
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        "Role set not found",
    )
}

fn unprocessable(message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
        message,
    )
}

/// `GET /role_sets/{key or ID}`.
pub(super) async fn get(State(shared): State<Shared>, Path(key): Path<String>) -> Response {
    let inner = shared.lock();
    let state = &inner.state;
    match position(state, &key) {
        Some(index) => axum::Json(role_set_out(state, &state.role_sets[index])).into_response(),
        None => not_found(),
    }
}

/// `GET /role_sets`: the role sets, in the state's order (`query`: part of the key).
pub(super) async fn list(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let wanted = one(&pairs, "query").unwrap_or_default().to_lowercase();
    let inner = shared.lock();
    let state = &inner.state;
    let sets: Vec<&SimRoleSet> = state
        .role_sets
        .iter()
        .filter(|s| s.key.to_lowercase().contains(&wanted))
        .collect();
    page_of(sets, limit, offset, |s| role_set_out(state, s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    key: Option<String>,
    description: Option<String>,
    default_role_key: Option<String>,
    creator_role_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    roles: Option<Vec<String>>,
    role_keys: Option<Vec<String>>,
}

/// Why a set with these roles, default and creator role is refused, if it is.
fn refusal(state: &SimState, set: &SimRoleSet) -> Option<String> {
    if set.roles.is_empty() || set.roles.len() > MAX_ROLES {
        return Some(format!(
            "a role set holds 1 to {MAX_ROLES} roles, not {}",
            set.roles.len()
        ));
    }
    let known = state.instance_roles();
    if let Some(role) = set.roles.iter().find(|r| !known.contains(r)) {
        return Some(format!("the role {role} does not exist"));
    }
    for (what, role) in [
        ("default", &set.default_role),
        ("creator", &set.creator_role),
    ] {
        if let Some(role) = role
            && !set.roles.contains(role)
        {
            return Some(format!("the {what} role {role} is not in the role set"));
        }
    }
    None
}

/// Makes `key` the instance's one initial role set.
fn make_initial(state: &mut SimState, key: &str) {
    for set in &mut state.role_sets {
        set.initial = set.key == key;
    }
}

/// `POST /role_sets`.
pub(super) async fn create(State(shared): State<Shared>, body: Bytes) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("the body holds an unknown field");
    };
    let (Some(name), Some(roles), Some(default), Some(creator)) = (
        fields.name,
        fields.roles,
        fields.default_role_key,
        fields.creator_role_key,
    ) else {
        return unprocessable("name, roles, default_role_key and creator_role_key are required");
    };
    let key = fields
        .key
        .unwrap_or_else(|| format!("role_set:{}", name.to_lowercase()));
    if !valid_key(&key, "role_set:", 1) {
        return unprocessable(
            "key must start with role_set: followed by lowercase letters, digits and underscores",
        );
    }
    let mut inner = shared.lock();
    let state = &mut inner.state;
    if position(state, &key).is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "duplicate_record",
            "A role set with this key already exists.",
        );
    }
    let set = SimRoleSet {
        key: key.clone(),
        roles,
        name: Some(name),
        description: fields.description,
        default_role: Some(default),
        creator_role: Some(creator),
        initial: false,
    };
    if let Some(reason) = refusal(state, &set) {
        return unprocessable(&reason);
    }
    state.role_sets.push(set);
    if fields.kind.as_deref() == Some("initial") {
        make_initial(state, &key);
    }
    state.created(&key, now_ms());
    let index = state.role_sets.len() - 1;
    axum::Json(role_set_out(state, &state.role_sets[index])).into_response()
}

/// `PATCH /role_sets/{key}`.
pub(super) async fn update(
    State(shared): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("the body holds an unknown field");
    };
    if fields.roles.is_some() || fields.role_keys.is_some() {
        return unprocessable("roles are changed with /roles and /roles/replace");
    }
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(index) = position(state, &key) else {
        return not_found();
    };
    let mut set = state.role_sets[index].clone();
    if fields.key.as_ref().is_some_and(|new| *new != set.key) {
        return unprocessable("the simulator does not rename role sets");
    }
    set.name = fields.name.or(set.name);
    set.description = fields.description.or(set.description);
    set.default_role = fields.default_role_key.or(set.default_role);
    set.creator_role = fields.creator_role_key.or(set.creator_role);
    if let Some(reason) = refusal(state, &set) {
        return unprocessable(&reason);
    }
    let key = set.key.clone();
    state.role_sets[index] = set;
    if fields.kind.as_deref() == Some("initial") {
        make_initial(state, &key);
    }
    state.touch(&key, SEEDED_AT, now_ms());
    axum::Json(role_set_out(state, &state.role_sets[index])).into_response()
}

/// `POST /role_sets/{key}/roles`.
pub(super) async fn add_roles(
    State(shared): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(fields) = serde_json::from_slice::<Fields>(&body) else {
        return unprocessable("the body holds an unknown field");
    };
    let Some(added) = fields.role_keys.filter(|keys| !keys.is_empty()) else {
        return unprocessable("role_keys must hold at least one role");
    };
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(index) = position(state, &key) else {
        return not_found();
    };
    let mut set = state.role_sets[index].clone();
    if let Some(role) = added.iter().find(|r| set.roles.contains(r)) {
        return unprocessable(&format!("the role {role} is already in the role set"));
    }
    set.roles.extend(added);
    set.default_role = fields.default_role_key.or(set.default_role);
    set.creator_role = fields.creator_role_key.or(set.creator_role);
    if let Some(reason) = refusal(state, &set) {
        return unprocessable(&reason);
    }
    let key = set.key.clone();
    state.role_sets[index] = set;
    state.touch(&key, SEEDED_AT, now_ms());
    axum::Json(role_set_out(state, &state.role_sets[index])).into_response()
}

#[derive(Deserialize)]
struct Replace {
    role_key: String,
    to_role_key: String,
}

/// `POST /role_sets/{key}/roles/replace`: the role leaves the set; the members and pending
/// invitations of the set's organizations that hold it get `to_role_key`.
pub(super) async fn replace_role(
    State(shared): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(replace) = serde_json::from_slice::<Replace>(&body) else {
        return unprocessable("role_key and to_role_key are required");
    };
    let mut inner = shared.lock();
    let state = &mut inner.state;
    let Some(index) = position(state, &key) else {
        return not_found();
    };
    let set = &state.role_sets[index];
    let (from, to) = (&replace.role_key, &replace.to_role_key);
    if !set.roles.contains(from) || !set.roles.contains(to) || from == to {
        return unprocessable("role_key and to_role_key must be two roles of the role set");
    }
    if set.default_role() == Some(from.as_str()) || set.creator_role() == Some(from.as_str()) {
        return unprocessable(&format!(
            "the role {from} is the role set's default or creator role"
        ));
    }
    let set_key = set.key.clone();
    move_holders(state, &set_key, from, to);
    state.role_sets[index].roles.retain(|r| r != from);
    state.touch(&set_key, SEEDED_AT, now_ms());
    axum::Json(role_set_out(state, &state.role_sets[index])).into_response()
}

/// Gives `to` to every member and pending invitation of the set's organizations that holds
/// `from`.
fn move_holders(state: &mut SimState, set_key: &str, from: &str, to: &str) {
    let organizations: Vec<String> = state
        .organizations
        .iter()
        .filter(|o| o.role_set_key.as_deref() == Some(set_key))
        .map(|o| o.id.clone())
        .collect();
    let now = now_ms();
    let mut moved = Vec::new();
    for membership in &mut state.memberships {
        if membership.role == from && organizations.contains(&membership.organization_id) {
            membership.role = to.to_owned();
            moved.push((membership.id.clone(), membership.created_at));
        }
    }
    for invitation in &mut state.invitations {
        if invitation.status == "pending"
            && invitation.role == from
            && organizations.contains(&invitation.organization_id)
        {
            invitation.role = to.to_owned();
        }
    }
    for (id, created_at) in moved {
        state.touch(&id, created_at, now);
    }
}
