//! Organizations' domains, answered as Clerk answers them: the instance's listing
//! (`GET /organization_domains`, with its filters and orders) and an organization's
//! (`GET /organizations/{id}/domains`), create, enrollment mode change and delete, with Clerk's
//! errors. A domain another organization holds is `422 organization_domain_already_exists`
//! ("This domain is already used by another organization.") and a common email provider's
//! domain `422 organization_domain_common`, as Clerk's Backend API error reference gives them
//! (`OrganizationDomainAlreadyExists`, `OrganizationDomainCommon`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::objects::ImageUrl;
use super::organizations::fields;
use super::query::page_of;
use super::query::{all, one, paging, pairs};
use super::shared::{Shared, error};
use super::state::{SimDomain, SimState, now_ms};
use crate::desired::EnrollmentMode;

/// Email providers' domains no organization may hold (a few of Clerk's list).
const COMMON: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
];

/// `OrganizationDomainVerification`.
#[derive(Serialize)]
struct VerificationOut {
    status: &'static str,
    strategy: &'static str,
    attempts: Option<u32>,
    expire_at: Option<i64>,
    verified_at: Option<i64>,
}

/// `OrganizationInvitationPublicOrganizationData`.
#[derive(Serialize)]
struct PublicOrganizationOut<'a> {
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    image_url: ImageUrl<'a>,
    has_image: bool,
}

/// `OrganizationDomain`: a domain created through the Backend API is verified by an
/// administrator; its ownership was never proven by DNS.
#[derive(Serialize)]
struct DomainOut<'a> {
    object: &'static str,
    id: &'a str,
    organization_id: &'a str,
    name: &'a str,
    enrollment_mode: &'a str,
    affiliation_email_address: Option<&'a str>,
    affiliation_verification: VerificationOut,
    ownership_verification: VerificationOut,
    verification: VerificationOut,
    total_pending_invitations: u32,
    total_pending_suggestions: u32,
    public_organization_data: Option<PublicOrganizationOut<'a>>,
    created_at: i64,
    updated_at: i64,
}

/// The affiliation verification: an administrator's, through the Backend API.
fn verification(domain: &SimDomain) -> VerificationOut {
    VerificationOut {
        status: if domain.verified {
            "verified"
        } else {
            "unverified"
        },
        strategy: "admin",
        attempts: None,
        expire_at: None,
        verified_at: None,
    }
}

/// The DNS ownership proof, never attempted here. Clerk describes it as null until attempted,
/// but its schema (an `allOf` that `nullable` does not reach, read strictly as Prism reads it)
/// takes only an object: the simulator answers one that says it is not verified.
fn ownership() -> VerificationOut {
    VerificationOut {
        status: "unverified",
        strategy: "dns_txt",
        attempts: Some(0),
        expire_at: None,
        verified_at: None,
    }
}

fn domain_out<'a>(state: &'a SimState, domain: &'a SimDomain) -> DomainOut<'a> {
    let organization = state
        .organization(&domain.organization_id)
        .map(|o| PublicOrganizationOut {
            id: &o.id,
            name: &o.name,
            slug: &o.slug,
            image_url: ImageUrl(&o.id),
            has_image: false,
        });
    DomainOut {
        object: "organization_domain",
        id: &domain.id,
        organization_id: &domain.organization_id,
        name: &domain.name,
        enrollment_mode: &domain.enrollment_mode,
        affiliation_email_address: None,
        affiliation_verification: verification(domain),
        ownership_verification: ownership(),
        verification: verification(domain),
        total_pending_invitations: 0,
        total_pending_suggestions: 0,
        public_organization_data: organization,
        created_at: domain.created_at,
        updated_at: state.updated_at(&domain.id, domain.created_at),
    }
}

/// Whether a domain's mode passes an `enrollment_mode` filter: any value kept, each `-value`
/// left out (they compose as AND).
fn mode_passes(mode: &str, filters: &[String]) -> bool {
    let (excluded, included): (Vec<&str>, Vec<&str>) = filters
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|f| !f.is_empty())
        .partition(|f| f.starts_with('-'));
    (included.is_empty() || included.contains(&mode))
        && !excluded.iter().any(|e| e.trim_start_matches('-') == mode)
}

/// Checks the values of an `enrollment_mode` filter.
fn mode_filter(pairs: &[(String, String)]) -> Result<Vec<String>, Response> {
    let filters = all(pairs, "enrollment_mode");
    let bad = filters
        .iter()
        .flat_map(|f| f.split(','))
        .find(|f| EnrollmentMode::parse(f.trim_start_matches('-')).is_none());
    match bad {
        Some(bad) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            &format!("enrollment_mode cannot be `{bad}`."),
        )),
        None => Ok(filters),
    }
}

/// Whether a domain passes a `verified` filter (`true` or `false`).
fn verified_passes(domain: &SimDomain, pairs: &[(String, String)]) -> Result<bool, Response> {
    match one(pairs, "verified").as_deref() {
        None => Ok(true),
        Some("true") => Ok(domain.verified),
        Some("false") => Ok(!domain.verified),
        Some(other) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            &format!("verified cannot be `{other}`."),
        )),
    }
}

/// Sorts domains by `order_by` (`name` or `created_at`, default `-created_at`).
fn sort(domains: &mut [&SimDomain], order_by: Option<&str>) -> Result<(), Response> {
    let order_by = order_by.unwrap_or("-created_at");
    let (key, descending) = super::query::order_of(order_by);
    match key {
        "created_at" => domains.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))),
        "name" => domains.sort_by(|a, b| a.name.cmp(&b.name)),
        _ => return Err(super::query::unknown_order(order_by)),
    }
    if descending {
        domains.reverse();
    }
    Ok(())
}

/// `GET /organization_domains`: `organization_id`, `verified`, `enrollment_mode`, `query` (an
/// organization ID exactly, or part of a domain name), `domains` (exact names), `order_by`.
pub(super) async fn list_instance(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let modes = match mode_filter(&pairs) {
        Ok(modes) => modes,
        Err(response) => return response,
    };
    let organization = one(&pairs, "organization_id");
    let search = one(&pairs, "query");
    if search.as_ref().is_some_and(|q| q.trim().is_empty()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "query cannot be empty.",
        );
    }
    let names: Vec<String> = all(&pairs, "domains")
        .iter()
        .map(|n| n.to_lowercase())
        .collect();
    let inner = shared.lock();
    let state = &inner.state;
    let mut domains = Vec::new();
    for domain in &state.domains {
        let verified = match verified_passes(domain, &pairs) {
            Ok(verified) => verified,
            Err(response) => return response,
        };
        let searched = search
            .as_deref()
            .is_none_or(|q| match q.strip_prefix("org_") {
                Some(_) => domain.organization_id == q,
                None => domain.name.contains(&q.to_lowercase()),
            });
        if verified
            && searched
            && organization
                .as_ref()
                .is_none_or(|o| &domain.organization_id == o)
            && (names.is_empty() || names.contains(&domain.name))
            && mode_passes(&domain.enrollment_mode, &modes)
        {
            domains.push(domain);
        }
    }
    if let Err(response) = sort(&mut domains, one(&pairs, "order_by").as_deref()) {
        return response;
    }
    page_of(domains, limit, offset, |d| domain_out(state, d))
}

/// `GET /organizations/{id}/domains`: `verified`, `enrollment_mode`; newest first.
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
    let modes = match mode_filter(&pairs) {
        Ok(modes) => modes,
        Err(response) => return response,
    };
    let inner = shared.lock();
    let state = &inner.state;
    let Some(organization) = state.organization(&org) else {
        return organization_not_found();
    };
    let mut domains = Vec::new();
    for domain in state
        .domains
        .iter()
        .filter(|d| d.organization_id == organization.id)
    {
        match verified_passes(domain, &pairs) {
            Ok(true) if mode_passes(&domain.enrollment_mode, &modes) => domains.push(domain),
            Ok(_) => {}
            Err(response) => return response,
        }
    }
    if let Err(response) = sort(&mut domains, None) {
        return response;
    }
    page_of(domains, limit, offset, |d| domain_out(state, d))
}

/// A known enrollment mode from the body, or Clerk's 422.
fn mode_of(fields: &Map<String, Value>) -> Result<Option<String>, Response> {
    match fields.get("enrollment_mode").filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(mode) => match mode.as_str().and_then(EnrollmentMode::parse) {
            Some(mode) => Ok(Some(mode.as_str().to_owned())),
            None => Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_value_invalid",
                "enrollment_mode must be one of automatic_invitation, automatic_suggestion, manual_invitation or enterprise_sso.",
            )),
        },
    }
}

/// Clerk's answer to a domain another organization holds.
fn held_elsewhere() -> Response {
    let body = json!({
        "errors": [{
            "code": "organization_domain_already_exists",
            "message": "organizaton domain already exists",
            "long_message": "This domain is already used by another organization.",
            "meta": {"param_name": "name"}
        }],
        "clerk_trace_id": "sim-trace"
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// `POST /organizations/{id}/domains`.
pub(super) async fn create(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match fields(&body, &["name", "enrollment_mode", "verified"]) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let mode = match mode_of(&fields) {
        Ok(Some(mode)) => mode,
        Ok(None) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_missing",
                "enrollment_mode must be included.",
            );
        }
        Err(response) => return response,
    };
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .map(|n| n.trim().to_lowercase())
        .unwrap_or_default();
    if !name.contains('.') || name.contains(char::is_whitespace) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_format_invalid",
            "name must be a valid domain name.",
        );
    }
    if COMMON.contains(&name.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization_domain_common",
            "This is a common email provider domain. Please use a different one.",
        );
    }
    let mut inner = shared.lock();
    let Some(organization) = inner.state.organization(&org).map(|o| o.id.clone()) else {
        return organization_not_found();
    };
    if let Some(existing) = inner.state.domains.iter().find(|d| d.name == name) {
        if existing.organization_id != organization {
            return held_elsewhere();
        }
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_identifier_exists",
            "This organization already has this domain.",
        );
    }
    let id = format!("orgdmn_sim{}", inner.next_id);
    inner.next_id += 1;
    let domain = SimDomain {
        id,
        organization_id: organization,
        name,
        enrollment_mode: mode,
        verified: fields
            .get("verified")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        created_at: inner.next_created_at().max(now_ms()),
    };
    inner.state.domains.push(domain);
    let state = &inner.state;
    axum::Json(domain_out(state, &state.domains[state.domains.len() - 1])).into_response()
}

/// The position of the domain `id` of organization `org`, or Clerk's 404.
fn find(state: &SimState, org: &str, id: &str) -> Result<usize, Response> {
    let organization = state.organization(org).map(|o| o.id.as_str());
    state
        .domains
        .iter()
        .position(|d| d.id == id && Some(d.organization_id.as_str()) == organization)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "Organization domain not found",
            )
        })
}

/// `PATCH /organizations/{id}/domains/{domain_id}`: `enrollment_mode`, `verified`.
pub(super) async fn update(
    State(shared): State<Shared>,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = match fields(&body, &["enrollment_mode", "verified"]) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let mode = match mode_of(&fields) {
        Ok(mode) => mode,
        Err(response) => return response,
    };
    let mut inner = shared.lock();
    let position = match find(&inner.state, &org, &id) {
        Ok(position) => position,
        Err(response) => return response,
    };
    let domain = &mut inner.state.domains[position];
    if let Some(mode) = mode {
        domain.enrollment_mode = mode;
    }
    if let Some(verified) = fields.get("verified").and_then(Value::as_bool) {
        domain.verified = verified;
    }
    let (id, created_at) = (domain.id.clone(), domain.created_at);
    inner.state.touch(&id, created_at, now_ms());
    let state = &inner.state;
    axum::Json(domain_out(state, &state.domains[position])).into_response()
}

/// `DELETE /organizations/{id}/domains/{domain_id}`: `DeletedObject`.
pub(super) async fn delete(
    State(shared): State<Shared>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.lock();
    let position = match find(&inner.state, &org, &id) {
        Ok(position) => position,
        Err(response) => return response,
    };
    let domain = inner.state.domains.remove(position);
    inner.state.times.remove(&domain.id);
    axum::Json(json!({"object": "organization_domain", "id": domain.id, "deleted": true}))
        .into_response()
}

fn organization_not_found() -> Response {
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
    fn a_mode_filter_keeps_what_it_names_and_drops_what_it_excludes() {
        let filters = vec!["-enterprise_sso".to_owned()];
        assert!(mode_passes("manual_invitation", &filters));
        assert!(!mode_passes("enterprise_sso", &filters));
        let both = vec!["manual_invitation,automatic_invitation".to_owned()];
        assert!(mode_passes("automatic_invitation", &both));
        assert!(!mode_passes("automatic_suggestion", &both));
    }
}
