//! Organization invitations, answered as Clerk answers them: the instance and organization
//! listings, single and bulk creation with Clerk's errors (a pending invitation already there,
//! already a member, the membership quota, more than 10 in one bulk request), revocation, one
//! invitation and the pending ones, and an hourly limit of invitation requests answered 429
//! with a long `Retry-After`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::objects::invitation_out;
use super::query::{PageOut, page_of};
use super::query::{all, one, paging, pairs};
use super::routes::check_role;
use super::shared::{Inner, Shared, error};
use super::state::{SimInvitation, SimMembership, SimOrganization, SimState, SimUser, now_ms};

/// The most invitations one bulk request may carry (Clerk's documented maximum).
const BULK_LIMIT: usize = 10;

/// One invitation, as the organization's endpoints answer it.
fn invitation_response(state: &SimState, invitation: &SimInvitation) -> Response {
    axum::Json(invitation_out(state, invitation, false)).into_response()
}

/// A page of invitations, newest first unless `order_by=+created_at`, of the given `status`es
/// (repeatable; none: any). The instance's listing adds each one's organization.
fn invitation_page(
    state: &SimState,
    pairs: &[(String, String)],
    with_organization: bool,
    keep: impl Fn(&SimInvitation) -> bool,
) -> Response {
    let (limit, offset) = match paging(pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let statuses = all(pairs, "status");
    let mut invitations: Vec<&SimInvitation> = state
        .invitations
        .iter()
        .filter(|i| (statuses.is_empty() || statuses.contains(&i.status)) && keep(i))
        .collect();
    invitations.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if !matches!(
        one(pairs, "order_by").as_deref(),
        Some("+created_at" | "created_at")
    ) {
        // Clerk's default order is the newest first.
        invitations.reverse();
    }
    page_of(invitations, limit, offset, |i| {
        invitation_out(state, i, with_organization)
    })
}

pub(super) async fn list_instance(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let inner = shared.lock();
    invitation_page(&inner.state, &pairs, true, |_| true)
}

pub(super) async fn list_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let inner = shared.lock();
    let Some(organization) = inner.state.organization(&org) else {
        return not_found("Organization not found");
    };
    let id = organization.id.clone();
    let email = one(&pairs, "email_address");
    invitation_page(&inner.state, &pairs, false, |i| {
        i.organization_id == id
            && email
                .as_ref()
                .is_none_or(|e| e.eq_ignore_ascii_case(&i.email_address))
    })
}

/// `GET /organizations/{id}/invitations/pending`: the pending ones, newest first.
pub(super) async fn list_pending(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> = pairs(&query)
        .into_iter()
        .filter(|(name, _)| name == "limit" || name == "offset")
        .collect();
    let inner = shared.lock();
    let Some(organization) = inner.state.organization(&org) else {
        return not_found("Organization not found");
    };
    let id = organization.id.clone();
    invitation_page(&inner.state, &pairs, false, |i| {
        i.organization_id == id && i.status == "pending"
    })
}

/// `GET /organizations/{id}/invitations/{invitation_id}`.
pub(super) async fn get(
    State(shared): State<Shared>,
    Path((org, invitation_id)): Path<(String, String)>,
) -> Response {
    let inner = shared.lock();
    let Some(organization) = inner.state.organization(&org) else {
        return not_found("Organization not found");
    };
    match inner
        .state
        .invitations
        .iter()
        .find(|i| i.id == invitation_id && i.organization_id == organization.id)
    {
        Some(invitation) => invitation_response(&inner.state, invitation),
        None => not_found("Invitation not found"),
    }
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "resource_not_found", message)
}

#[derive(Deserialize)]
struct InvitationBody {
    email_address: String,
    role: String,
    #[serde(default)]
    public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    redirect_url: Option<String>,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

pub(super) async fn create(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<InvitationBody>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "email_address and role are required",
        );
    };
    let mut inner = shared.lock();
    if let Some(response) = over_hourly_limit(&mut inner, &shared) {
        return response;
    }
    match invite(&mut inner, &org, std::slice::from_ref(&body)) {
        Ok(mut created) => {
            let invitation = created.remove(0);
            invitation_response(&inner.state, &invitation)
        }
        Err(response) => response,
    }
}

pub(super) async fn create_bulk(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(bodies) = serde_json::from_slice::<Vec<InvitationBody>>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "a JSON array of invitations, each with email_address and role, is required",
        );
    };
    if bodies.is_empty() || bodies.len() > BULK_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            "bulk_size_exceeded",
            &format!("A bulk request carries 1 to {BULK_LIMIT} invitations."),
        );
    }
    let mut inner = shared.lock();
    if let Some(response) = over_hourly_limit(&mut inner, &shared) {
        return response;
    }
    match invite(&mut inner, &org, &bodies) {
        Ok(created) => {
            let data: Vec<_> = created
                .iter()
                .map(|i| invitation_out(&inner.state, i, false))
                .collect();
            let total_count = data.len();
            axum::Json(PageOut { data, total_count }).into_response()
        }
        Err(response) => response,
    }
}

/// Counts one invitation request against the hourly limit; over it, 429 with the seconds
/// until the hour ends.
fn over_hourly_limit(inner: &mut Inner, shared: &Shared) -> Option<Response> {
    let limit = shared.options.invitation_limit?;
    let now = inner.started.elapsed();
    let hour = std::time::Duration::from_secs(3600);
    inner
        .invitation_requests
        .retain(|at| now.saturating_sub(*at) < hour);
    if inner.invitation_requests.len() >= limit as usize {
        let oldest = inner.invitation_requests.first().copied().unwrap_or(now);
        let wait = hour
            .saturating_sub(now.saturating_sub(oldest))
            .as_secs()
            .max(1);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many invitation requests; try again later.",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return Some(response);
    }
    inner.invitation_requests.push(now);
    None
}

/// Creates these invitations in `org`, all or none, as Clerk checks them.
fn invite(
    inner: &mut Inner,
    org: &str,
    bodies: &[InvitationBody],
) -> Result<Vec<SimInvitation>, Response> {
    let Some(organization) = inner.state.organization(org).cloned() else {
        return Err(not_found("Organization not found"));
    };
    let mut emails = std::collections::HashSet::new();
    for body in bodies {
        check(&inner.state, &organization, body)?;
        if !emails.insert(body.email_address.to_lowercase()) {
            return Err(not_unique());
        }
    }
    if let Some(max) = organization.max_allowed_memberships {
        let members = inner
            .state
            .memberships
            .iter()
            .filter(|m| m.organization_id == organization.id)
            .count();
        let pending = inner.state.pending_invitations(&organization.id).len();
        if members + pending + bodies.len() > max {
            return Err(error(
                StatusCode::FORBIDDEN,
                "organization_membership_quota_exceeded",
                "The organization has reached its maximum number of memberships.",
            ));
        }
    }
    let mut created = Vec::with_capacity(bodies.len());
    for body in bodies {
        let id = inner.next_id;
        inner.next_id += 1;
        let invitation = SimInvitation {
            id: format!("orginv_sim{id}"),
            organization_id: organization.id.clone(),
            email_address: body.email_address.clone(),
            role: body.role.clone(),
            public_metadata: body.public_metadata.clone().unwrap_or_default(),
            private_metadata: body.private_metadata.clone().unwrap_or_default(),
            status: "pending".to_owned(),
            created_at: inner.next_created_at(),
            redirect_url: body.redirect_url.clone(),
            expires_in_days: body.expires_in_days,
        };
        inner.state.invitations.push(invitation.clone());
        created.push(invitation);
    }
    Ok(created)
}

fn not_unique() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "organization_invitation_not_unique",
        "There is already a pending invitation for this email address.",
    )
}

/// Clerk's checks of one invitation: the role, the fields, an existing pending invitation,
/// and an email that is a member already.
fn check(
    state: &SimState,
    organization: &SimOrganization,
    body: &InvitationBody,
) -> Result<(), Response> {
    check_role(state, organization, &body.role)?;
    let email = &body.email_address;
    if !email.contains('@') {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_format_invalid",
            &format!("`{email}` is not a valid email address."),
        ));
    }
    if body
        .expires_in_days
        .is_some_and(|days| !(1..=365).contains(&days))
        || body
            .redirect_url
            .as_ref()
            .is_some_and(|url| !url.starts_with("http"))
    {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "expires_in_days must be 1..=365 and redirect_url a URL",
        ));
    }
    if state.invitations.iter().any(|i| {
        i.organization_id == organization.id
            && i.status == "pending"
            && i.email_address.eq_ignore_ascii_case(email)
    }) {
        return Err(not_unique());
    }
    if let Some(user) = state.user_by_email(email)
        && state
            .memberships
            .iter()
            .any(|m| m.organization_id == organization.id && m.user_id == user.id)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "already_a_member_in_organization",
            "The user is already a member of this organization.",
        ));
    }
    Ok(())
}

pub(super) async fn revoke(
    State(shared): State<Shared>,
    Path((org, invitation_id)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.lock();
    let Some(organization_id) = inner.state.organization(&org).map(|o| o.id.clone()) else {
        return not_found("Organization not found");
    };
    let Some(invitation) = inner
        .state
        .invitations
        .iter_mut()
        .find(|i| i.id == invitation_id && i.organization_id == organization_id)
    else {
        return not_found("Invitation not found");
    };
    if invitation.status != "pending" {
        return error(
            StatusCode::BAD_REQUEST,
            "organization_invitation_not_pending",
            "Only pending invitations can be revoked.",
        );
    }
    invitation.status = "revoked".to_owned();
    let invitation = invitation.clone();
    inner
        .state
        .touch(&invitation.id, invitation.created_at, now_ms());
    invitation_response(&inner.state, &invitation)
}

/// A person signs up with `email` and accepts their pending invitations: the user is created
/// if there is none, and each invitation becomes a membership with its role and metadata.
/// Returns how many invitations were accepted.
pub(super) fn accept(inner: &mut Inner, email: &str) -> usize {
    let user_id = match inner.state.user_by_email(email) {
        Some(user) => user.id.clone(),
        None => {
            let id = format!("user_sim{}", inner.next_id);
            inner.next_id += 1;
            inner.state.users.push(SimUser {
                id: id.clone(),
                emails: vec![email.to_owned()],
            });
            inner.state.reindex();
            inner.state.created(&id, now_ms());
            id
        }
    };
    let pending: Vec<usize> = (0..inner.state.invitations.len())
        .filter(|&i| {
            let invitation = &inner.state.invitations[i];
            invitation.status == "pending" && invitation.email_address.eq_ignore_ascii_case(email)
        })
        .collect();
    for &index in &pending {
        inner.state.invitations[index].status = "accepted".to_owned();
        let invitation = inner.state.invitations[index].clone();
        inner
            .state
            .touch(&invitation.id, invitation.created_at, now_ms());
        let id = inner.next_id;
        inner.next_id += 1;
        let membership = SimMembership {
            id: format!("orgmem_sim{id}"),
            organization_id: invitation.organization_id,
            user_id: user_id.clone(),
            role: invitation.role,
            public_metadata: invitation.public_metadata,
            private_metadata: invitation.private_metadata,
            created_at: inner.next_created_at(),
        };
        inner.state.memberships.push(membership);
        inner.sorted = false;
    }
    pending.len()
}
