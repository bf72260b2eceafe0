//! Every endpoint the simulator serves, in one table: the router is built from it, and
//! `Simulator::endpoints` lists it, so that the checks against Clerk's API description
//! (`tests/simulator_spec.rs`) fail on an endpoint they do not exercise.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use super::shared::Shared;
use super::{domains, invitations, lookups, organizations, permissions, role_sets, roles, routes};

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
        endpoint(M::GET, "/v1/role_sets", get(role_sets::list)),
        endpoint(M::GET, "/v1/role_sets/{key}", get(role_sets::get)),
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
    ]
    .into_iter()
    .chain(organizations())
    .chain(authorization())
    .collect()
}

/// Organizations written, and their domains.
fn organizations() -> Vec<Endpoint> {
    use Method as M;
    const DOMAINS: &str = "/v1/organizations/{org}/domains";
    const DOMAIN: &str = "/v1/organizations/{org}/domains/{domain}";
    vec![
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

/// The permissions, roles and role sets written.
fn authorization() -> Vec<Endpoint> {
    use Method as M;
    const PERMISSION: &str = "/v1/organization_permissions/{permission}";
    const ROLE: &str = "/v1/organization_roles/{role}";
    const ROLE_PERMISSION: &str = "/v1/organization_roles/{role}/permissions/{permission}";
    vec![
        endpoint(
            M::GET,
            "/v1/organization_permissions",
            get(permissions::list),
        ),
        endpoint(
            M::POST,
            "/v1/organization_permissions",
            post(permissions::create),
        ),
        endpoint(M::GET, PERMISSION, get(permissions::get)),
        endpoint(M::PATCH, PERMISSION, patch(permissions::update)),
        endpoint(M::DELETE, PERMISSION, delete(permissions::delete)),
        endpoint(M::POST, "/v1/organization_roles", post(roles::create)),
        endpoint(M::GET, ROLE, get(roles::get)),
        endpoint(M::PATCH, ROLE, patch(roles::update)),
        endpoint(M::DELETE, ROLE, delete(roles::delete)),
        endpoint(M::POST, ROLE_PERMISSION, post(roles::assign_permission)),
        endpoint(M::DELETE, ROLE_PERMISSION, delete(roles::remove_permission)),
        endpoint(M::POST, "/v1/role_sets", post(role_sets::create)),
        endpoint(M::PATCH, "/v1/role_sets/{key}", patch(role_sets::update)),
        endpoint(
            M::POST,
            "/v1/role_sets/{key}/roles",
            post(role_sets::add_roles),
        ),
        endpoint(
            M::POST,
            "/v1/role_sets/{key}/roles/replace",
            post(role_sets::replace_role),
        ),
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
