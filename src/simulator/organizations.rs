//! Writing organizations, answered as Clerk answers them: create (`POST /organizations`),
//! update (`PATCH /organizations/{id}`) and the metadata merge
//! (`PATCH /organizations/{id}/metadata`), with Clerk's errors: a slug another organization
//! has is `422 form_identifier_exists` ("That slug is taken. Please try another.", as Clerk
//! answers it: its error reference lists `FormIdentifierExists` with status 422, and the message
//! is the one Clerk returned for a taken organization slug, quoted in vm0-ai/vm0#8981), an
//! unknown organization `404 resource_not_found`, a field the endpoint does not take
//! `422 form_param_unknown`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::merge::merge_patch;
use super::objects::organization_out;
use super::shared::{Shared, error};
use super::state::{SimOrganization, SimState, now_ms};

/// What `POST /organizations` takes (`created_by`, `created_at` are accepted and `created_by`
/// becomes the organization's admin).
const CREATE_FIELDS: &[&str] = &[
    "name",
    "slug",
    "created_by",
    "created_at",
    "max_allowed_memberships",
    "role_set_key",
    "public_metadata",
    "private_metadata",
];

/// What `PATCH /organizations/{id}` takes (`additionalProperties: false`; metadata goes through
/// the metadata endpoint since API version 2026-05-12).
const UPDATE_FIELDS: &[&str] = &[
    "name",
    "slug",
    "max_allowed_memberships",
    "admin_delete_enabled",
    "created_at",
    "role_set_key",
];

/// The body as an object of these fields, or Clerk's 422.
pub(super) fn fields(body: &Bytes, allowed: &[&str]) -> Result<Map<String, Value>, Response> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_invalid",
            "a JSON object is required",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_unknown",
            &format!("{unknown} is not a valid parameter for this request."),
        ));
    }
    Ok(fields)
}

/// Clerk's answer to a slug another organization has.
fn slug_taken() -> Response {
    let body = json!({
        "errors": [{
            "code": "form_identifier_exists",
            "message": "That slug is taken. Please try another.",
            "long_message": "That slug is taken. Please try another.",
            "meta": {"param_name": "slug"}
        }],
        "clerk_trace_id": "sim-trace"
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

fn invalid(message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
        message,
    )
}

/// A slug Clerk accepts: lower-case letters, digits and `-`.
fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A slug made from a name, as Clerk makes one when none is given.
fn slug_from(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join("-")
}

/// Checks and applies the fields create and update share to `organization`.
fn apply_fields(
    state: &SimState,
    organization: &mut SimOrganization,
    fields: &Map<String, Value>,
) -> Result<(), Response> {
    if let Some(name) = fields.get("name").filter(|v| !v.is_null()) {
        match name.as_str().map(str::trim) {
            Some(name) if !name.is_empty() && name.chars().count() <= 256 => {
                organization.name = name.to_owned();
            }
            _ => return Err(invalid("The organization name is invalid.")),
        }
    }
    if let Some(slug) = fields.get("slug").filter(|v| !v.is_null()) {
        let slug = slug.as_str().unwrap_or_default();
        if !valid_slug(slug) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_format_invalid",
                "slug can contain only lowercase alphanumeric characters and the dash \"-\".",
            ));
        }
        if state
            .organizations
            .iter()
            .any(|o| o.slug == slug && o.id != organization.id)
        {
            return Err(slug_taken());
        }
        organization.slug = slug.to_owned();
    }
    if let Some(limit) = fields
        .get("max_allowed_memberships")
        .filter(|v| !v.is_null())
    {
        let Some(limit) = limit.as_u64() else {
            return Err(invalid("max_allowed_memberships must be 0 or more."));
        };
        organization.max_allowed_memberships = Some(limit as usize);
    }
    if let Some(enabled) = fields.get("admin_delete_enabled").filter(|v| !v.is_null()) {
        let Some(enabled) = enabled.as_bool() else {
            return Err(invalid("admin_delete_enabled must be a boolean."));
        };
        organization.admin_delete_enabled = Some(enabled);
    }
    if let Some(key) = fields.get("role_set_key").filter(|v| !v.is_null()) {
        let key = key.as_str().unwrap_or_default();
        let Some(set) = state.role_sets.iter().find(|s| s.key == key) else {
            return Err(invalid(&format!("The role set `{key}` does not exist.")));
        };
        // The members keep their roles: one the new set lacks would be stranded.
        let stranded = state
            .memberships
            .iter()
            .any(|m| m.organization_id == organization.id && !set.roles.contains(&m.role));
        if stranded {
            return Err(invalid(
                "Members of this organization hold roles the role set does not have.",
            ));
        }
        organization.role_set_key = Some(key.to_owned());
    }
    Ok(())
}

/// `POST /organizations`.
pub(super) async fn create(State(shared): State<Shared>, body: Bytes) -> Response {
    let fields = match fields(&body, CREATE_FIELDS) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    if fields.get("name").and_then(Value::as_str).is_none() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "name must be included.",
        );
    }
    let mut inner = shared.lock();
    let id = format!("org_sim{}", inner.next_id);
    inner.next_id += 1;
    let mut organization = SimOrganization {
        id: id.clone(),
        ..SimOrganization::default()
    };
    if let Err(response) = apply_fields(&inner.state, &mut organization, &fields) {
        return response;
    }
    if organization.slug.is_empty() {
        organization.slug = slug_from(&organization.name);
        if inner.state.organization(&organization.slug).is_some() {
            return slug_taken();
        }
    }
    for (part, target) in [
        ("public_metadata", &mut organization.public_metadata),
        ("private_metadata", &mut organization.private_metadata),
    ] {
        if let Some(Value::Object(metadata)) = fields.get(part) {
            *target = metadata.clone();
        }
    }
    let creator = fields.get("created_by").and_then(Value::as_str);
    if let Some(creator) = creator
        && inner.state.user(creator).is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "organization_creator_not_found",
            &format!("No users found with id {creator}."),
        );
    }
    inner.state.organizations.push(organization);
    inner.state.reindex();
    let now = now_ms();
    inner.state.created(&id, now);
    if let Some(creator) = creator {
        add_creator(&mut inner, &id, creator);
    }
    let state = &inner.state;
    let created = state
        .organization(&id)
        .unwrap_or_else(|| &state.organizations[0]);
    axum::Json(organization_out(state, created, None)).into_response()
}

/// The creator of an organization becomes its first admin, as Clerk makes them.
fn add_creator(inner: &mut super::shared::Inner, organization_id: &str, user_id: &str) {
    let id = inner.next_id;
    inner.next_id += 1;
    let created_at = inner.next_created_at();
    inner.state.memberships.push(super::state::SimMembership {
        id: format!("orgmem_sim{id}"),
        organization_id: organization_id.to_owned(),
        user_id: user_id.to_owned(),
        role: "org:admin".into(),
        public_metadata: Map::new(),
        private_metadata: Map::new(),
        created_at,
    });
}

/// `PATCH /organizations/{id}`.
pub(super) async fn update(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match fields(&body, UPDATE_FIELDS) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let mut inner = shared.lock();
    let Some((position, organization)) = inner.state.organization_at(&org) else {
        return not_found();
    };
    let mut updated = organization.clone();
    if let Err(response) = apply_fields(&inner.state, &mut updated, &fields) {
        return response;
    }
    inner.state.organizations[position] = updated;
    inner.state.reindex();
    touch(&mut inner.state, position)
}

/// `PATCH /organizations/{id}/metadata`: a deep merge (RFC 7396) of either metadata object.
pub(super) async fn merge_metadata(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let patch = match fields(&body, &["public_metadata", "private_metadata"]) {
        Ok(patch) => patch,
        Err(response) => return response,
    };
    if patch.values().any(|part| !part.is_object()) {
        return invalid("public_metadata and private_metadata must be objects.");
    }
    let mut inner = shared.lock();
    let Some((position, _)) = inner.state.organization_at(&org) else {
        return not_found();
    };
    let organization = &mut inner.state.organizations[position];
    if let Some(Value::Object(part)) = patch.get("public_metadata") {
        merge_patch(&mut organization.public_metadata, part);
    }
    if let Some(Value::Object(part)) = patch.get("private_metadata") {
        merge_patch(&mut organization.private_metadata, part);
    }
    touch(&mut inner.state, position)
}

/// Moves the organization's `updated_at` to now and answers it.
fn touch(state: &mut SimState, position: usize) -> Response {
    let id = state.organizations[position].id.clone();
    let created_at = state.times_of(&id).created_at;
    state.touch(&id, created_at, now_ms());
    axum::Json(organization_out(
        state,
        &state.organizations[position],
        None,
    ))
    .into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        "Given organization not found.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slug_is_made_from_the_name_when_none_is_given() {
        assert_eq!(slug_from("Acme Corp, Inc."), "acme-corp-inc");
        assert!(valid_slug("acme-2") && !valid_slug("Acme") && !valid_slug(""));
    }
}
