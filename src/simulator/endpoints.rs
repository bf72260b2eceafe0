//! Every endpoint the simulator serves, in one table: the router is built from it, and
//! `Simulator::endpoints` lists it, so that the checks against Clerk's API description
//! (`tests/simulator_spec.rs`) fail on an endpoint they do not exercise.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use super::shared::Shared;
use super::{domains, invitations, lookups, organizations, routes};

/// One endpoint: its method, its path (axum's syntax, under `/v1`) and its handler.
struct Endpoint {
    method: Method,
    path: &'static str,
    handler: MethodRouter<Shared>,
}

fn endpoint(method: Method, path: &'static str, handler: MethodRouter<Shared>) -> Endpoint {
    Endpoint {
        method,
        path,
        handler,
    }
}

fn table() -> Vec<Endpoint> {
    use Method as M;
    const MEMBERSHIPS: &str = "/v1/organizations/{org}/memberships";
    const MEMBERSHIP: &str = "/v1/organizations/{org}/memberships/{user}";
    const INVITATIONS: &str = "/v1/organizations/{org}/invitations";
    const DOMAINS: &str = "/v1/organizations/{org}/domains";
    const DOMAIN: &str = "/v1/organizations/{org}/domains/{domain}";
    vec![
        endpoint(
            M::GET,
            "/v1/organization_memberships",
            get(routes::list_instance),
        ),
        endpoint(M::GET, MEMBERSHIPS, get(routes::list_organization)),
        endpoint(M::POST, MEMBERSHIPS, post(routes::create)),
        endpoint(M::PATCH, MEMBERSHIP, patch(routes::update_role)),
        endpoint(M::DELETE, MEMBERSHIP, delete(routes::delete)),
        endpoint(
            M::PATCH,
            "/v1/organizations/{org}/memberships/{user}/metadata",
            patch(routes::merge_metadata),
        ),
        endpoint(
            M::GET,
            "/v1/organizations",
            get(lookups::list_organizations),
        ),
        endpoint(
            M::GET,
            "/v1/organizations/{org}",
            get(lookups::get_organization),
        ),
        endpoint(M::GET, "/v1/users", get(lookups::list_users)),
        endpoint(M::GET, "/v1/users/count", get(lookups::count_users)),
        endpoint(M::GET, "/v1/users/{user}", get(lookups::get_user)),
        endpoint(M::GET, "/v1/organization_roles", get(lookups::list_roles)),
        endpoint(M::GET, "/v1/role_sets", get(lookups::list_role_sets)),
        endpoint(M::GET, "/v1/role_sets/{key}", get(lookups::get_role_set)),
        endpoint(
            M::GET,
            "/v1/organization_invitations",
            get(invitations::list_instance),
        ),
        endpoint(M::GET, INVITATIONS, get(invitations::list_organization)),
        endpoint(M::POST, INVITATIONS, post(invitations::create)),
        endpoint(
            M::POST,
            "/v1/organizations/{org}/invitations/bulk",
            post(invitations::create_bulk),
        ),
        endpoint(
            M::GET,
            "/v1/organizations/{org}/invitations/pending",
            get(invitations::list_pending),
        ),
        endpoint(
            M::GET,
            "/v1/organizations/{org}/invitations/{invitation}",
            get(invitations::get),
        ),
        endpoint(
            M::POST,
            "/v1/organizations/{org}/invitations/{invitation}/revoke",
            post(invitations::revoke),
        ),
        endpoint(M::POST, "/v1/organizations", post(organizations::create)),
        endpoint(
            M::PATCH,
            "/v1/organizations/{org}",
            patch(organizations::update),
        ),
        endpoint(
            M::PATCH,
            "/v1/organizations/{org}/metadata",
            patch(organizations::merge_metadata),
        ),
        endpoint(
            M::GET,
            "/v1/organization_domains",
            get(domains::list_instance),
        ),
        endpoint(M::GET, DOMAINS, get(domains::list_organization)),
        endpoint(M::POST, DOMAINS, post(domains::create)),
        endpoint(M::PATCH, DOMAIN, patch(domains::update)),
        endpoint(M::DELETE, DOMAIN, delete(domains::delete)),
    ]
}

/// The router of every endpoint of the table (the methods of one path merged).
pub(super) fn router() -> Router<Shared> {
    table()
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            router.route(endpoint.path, endpoint.handler)
        })
        .fallback(routes::unknown)
}

/// Every endpoint of the table, as (method, path).
pub(super) fn list() -> Vec<(String, &'static str)> {
    table()
        .into_iter()
        .map(|endpoint| (endpoint.method.to_string(), endpoint.path))
        .collect()
}
