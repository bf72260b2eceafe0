//! The instance's lookups, answered as Clerk answers them: users (listing and count, with
//! their filters, and one by ID), organizations (listing and one by ID or slug, with
//! `members_count` only when asked), and the organization roles (listing).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::filters::{Order, PeopleFilter};
use super::objects::{organization_out, role_out, user_out};
use super::query::page_of;
use super::query::{all, one, paging, pairs};
use super::shared::{Shared, error};
use super::state::{SimOrganization, SimState, SimUser};

/// The users listing's `order_by` keys the simulated users have no value for.
const USER_ORDER_KEYS: &[&str] = &[
    "updated_at",
    "last_sign_in_at",
    "last_active_at",
    "web3wallet",
];

/// The users a users listing or count keeps, in its order.
fn matching_users<'a>(
    state: &'a SimState,
    pairs: &[(String, String)],
) -> Result<Vec<&'a SimUser>, Response> {
    let filter = PeopleFilter::from_query(pairs)?;
    let order = Order::from_query_with(pairs, USER_ORDER_KEYS)?;
    let mut users: Vec<(&SimUser, i64)> = state
        .users
        .iter()
        .filter(|u| filter.keeps(&u.id, Some(u)))
        .map(|u| (u, state.times_of(&u.id).created_at))
        .collect();
    order.sort_people(state, &mut users, |(u, created)| {
        (u.id.as_str(), *created, u.id.as_str())
    });
    Ok(users.into_iter().map(|(u, _)| u).collect())
}

/// `GET /users`: a bare array of users, newest first unless `order_by` says otherwise.
pub(super) async fn list_users(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let inner = shared.lock();
    let state = &inner.state;
    match matching_users(state, &pairs) {
        Ok(users) => {
            let page: Vec<_> = users
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|u| user_out(state, u))
                .collect();
            axum::Json(page).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /users/{id}`.
pub(super) async fn get_user(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = shared.lock();
    match inner.state.user(&id) {
        Some(user) => axum::Json(user_out(&inner.state, user)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "User not found",
        ),
    }
}

/// `{"object": "total_count", "total_count": N}`.
#[derive(Serialize)]
struct TotalCountOut {
    object: &'static str,
    total_count: usize,
}

/// `GET /users/count`: how many users the same filters keep.
pub(super) async fn count_users(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let inner = shared.lock();
    match matching_users(&inner.state, &pairs) {
        Ok(users) => axum::Json(TotalCountOut {
            object: "total_count",
            total_count: users.len(),
        })
        .into_response(),
        Err(response) => response,
    }
}

/// Whether `include_members_count` is `true`.
fn with_counts(pairs: &[(String, String)]) -> bool {
    one(pairs, "include_members_count").is_some_and(|v| v == "true")
}

/// The organizations an organizations listing keeps: `organization_id` (at most 100) and
/// `query` (the exact ID, or part of the name or slug).
fn matching_organizations<'a>(
    state: &'a SimState,
    pairs: &[(String, String)],
) -> Result<Vec<&'a SimOrganization>, Response> {
    let ids = all(pairs, "organization_id");
    if ids.len() > 100 {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "organization_id accepts up to 100 values.",
        ));
    }
    let query = one(pairs, "query").map(|q| q.to_lowercase());
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    Ok(state
        .organizations
        .iter()
        .filter(|o| wanted.is_empty() || wanted.contains(o.id.as_str()))
        .filter(|o| {
            query.as_ref().is_none_or(|q| {
                o.id == *q || o.name.to_lowercase().contains(q) || o.slug.contains(q.as_str())
            })
        })
        .collect())
}

/// Sorts organizations by `order_by` (`created_at`, `name` or `members_count`, default
/// `-created_at`); ties keep the state's order.
fn sort_organizations(
    state: &SimState,
    organizations: &mut [&SimOrganization],
    counts: &HashMap<&str, usize>,
    order_by: Option<&str>,
) -> Result<(), Response> {
    let order_by = order_by.unwrap_or("-created_at");
    let (key, descending) = super::query::order_of(order_by);
    match key {
        "created_at" => organizations.sort_by_key(|o| state.times_of(&o.id).created_at),
        "name" => organizations.sort_by(|a, b| a.name.cmp(&b.name)),
        "members_count" => organizations.sort_by_key(|o| counts.get(o.id.as_str())),
        _ => return Err(super::query::unknown_order(order_by)),
    }
    if descending {
        organizations.reverse();
    }
    Ok(())
}

/// `GET /organizations`.
pub(super) async fn list_organizations(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let inner = shared.lock();
    let state = &inner.state;
    let mut matching = match matching_organizations(state, &pairs) {
        Ok(matching) => matching,
        Err(response) => return response,
    };
    // One pass over the memberships counts the members of every matching organization.
    let order_by = one(&pairs, "order_by");
    let counting = with_counts(&pairs)
        || order_by
            .as_deref()
            .is_some_and(|o| o.ends_with("members_count"));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    if counting {
        counts = matching.iter().map(|o| (o.id.as_str(), 0)).collect();
        for membership in &state.memberships {
            if let Some(count) = counts.get_mut(membership.organization_id.as_str()) {
                *count += 1;
            }
        }
    }
    if let Err(response) = sort_organizations(state, &mut matching, &counts, order_by.as_deref()) {
        return response;
    }
    let shown = with_counts(&pairs);
    page_of(matching, limit, offset, |o| {
        organization_out(state, o, shown.then(|| counts[o.id.as_str()]))
    })
}

/// `GET /organizations/{id or slug}`.
pub(super) async fn get_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let inner = shared.lock();
    let state = &inner.state;
    let Some(organization) = state.organization(&org) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    let count = with_counts(&pairs).then(|| {
        state
            .memberships
            .iter()
            .filter(|m| m.organization_id == organization.id)
            .count()
    });
    axum::Json(organization_out(state, organization, count)).into_response()
}

/// `GET /organization_roles`.
pub(super) async fn list_roles(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let inner = shared.lock();
    let state = &inner.state;
    let roles = state.instance_roles();
    page_of(roles.iter().collect(), limit, offset, |r| {
        role_out(state, r)
    })
}
