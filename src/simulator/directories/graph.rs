//! The fake Microsoft identity platform and Graph: the client-credentials token endpoint, and
//! `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` with `$select`, `$top` (at
//! most 999), `$count` and `$skiptoken` paging. The cast to users is an advanced query:
//! without `ConsistencyLevel: eventual` and `$count=true` Graph answers 400, and so does this.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{FakeEndpoint, Shared, error, query_pairs, query_value};

/// The largest page `transitiveMembers` serves.
const MAX_TOP: usize = 999;
/// Graph's default page.
const DEFAULT_TOP: usize = 100;

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    error(
        status,
        json!({"error": code, "error_description": description, "error_codes": [], "trace_id": "fake", "correlation_id": "fake"}),
    )
}

/// `POST /entra/{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`,
/// `client_id`, `client_secret` and `scope=https://graph.microsoft.com/.default`.
pub(super) async fn token(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    body: String,
) -> Response {
    let form = query_pairs(Some(&body));
    let mut inner = shared.lock();
    let state = &inner.state;
    if tenant != state.entra_tenant_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if query_value(&form, "grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client_id = query_value(&form, "client_id").unwrap_or_default();
    if client_id != state.entra_client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            ),
        );
    }
    if query_value(&form, "client_secret") != Some(state.entra_client_secret.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    if query_value(&form, "scope") != Some("https://graph.microsoft.com/.default") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let lifetime = state.token_lifetime.as_secs();
    let token = inner.issue(FakeEndpoint::GraphMembers, "eyJ0eXAiOiJKV1Qi.");
    error(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
    )
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    error(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {"request-id": "fake"}}}),
    )
}

/// What a page request asks for.
struct Listing {
    top: usize,
    skip: usize,
    select: Vec<String>,
}

/// Reads the request as Graph would: the cast to users needs `ConsistencyLevel: eventual`
/// and `$count=true`; `$top` is 1 to 999; a skip token must be one this server gave.
fn listing(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Listing, Response> {
    let bad = |message: &str| graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", message);
    let eventual = headers
        .get("consistencylevel")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("eventual"));
    if !eventual || query_value(pairs, "$count") != Some("true") {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "The specified OData cast is an advanced query: it needs the ConsistencyLevel header set to 'eventual' and $count=true.",
        ));
    }
    let top = match query_value(pairs, "$top").map(str::parse::<usize>) {
        None => DEFAULT_TOP,
        Some(Ok(top)) if (1..=MAX_TOP).contains(&top) => top,
        Some(_) => {
            return Err(bad(
                "Invalid page size specified. Must be between 1 and 999 inclusive.",
            ));
        }
    };
    let skip = match query_value(pairs, "$skiptoken").map(|token| {
        token
            .strip_prefix("X'")
            .and_then(|rest| rest.strip_suffix('\''))
            .map(str::parse::<usize>)
    }) {
        None => 0,
        Some(Some(Ok(skip))) => skip,
        Some(_) => return Err(bad("Invalid skip token.")),
    };
    let select = query_value(pairs, "$select")
        .unwrap_or("id,mail,userPrincipalName,displayName")
        .split(',')
        .map(|name| name.trim().to_owned())
        .collect();
    Ok(Listing { top, skip, select })
}

/// `GET /graph/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user`.
pub(super) async fn members(
    State(shared): State<Shared>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let mut inner = shared.lock();
    if !inner.bearer_ok(&headers, FakeEndpoint::GraphMembers) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        );
    }
    let listing = match listing(&pairs, &headers) {
        Ok(listing) => listing,
        Err(response) => return response,
    };
    if !inner.state.groups.iter().any(|found| found.id == group) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{group}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    }
    let users = inner.users_of(&group, true);
    let end = (listing.skip + listing.top).min(users.len());
    let value: Vec<Value> = users[listing.skip.min(end)..end]
        .iter()
        .map(|&index| user_json(&inner.state.users[index], &listing.select))
        .collect();
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#users({})", listing.select.join(",")),
        "@odata.count": users.len(),
        "value": value,
    });
    if end < users.len() {
        let mut next = url::Url::parse(&format!(
            "{}/graph/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user",
            shared.base
        ))
        .expect("the fake's own URL");
        next.query_pairs_mut()
            .extend_pairs(pairs.iter().filter(|(name, _)| name != "$skiptoken"))
            .append_pair("$skiptoken", &format!("X'{end}'"));
        body["@odata.nextLink"] = json!(next.as_str());
    }
    error(StatusCode::OK, body)
}

/// A user with the selected properties (`id` always).
fn user_json(user: &super::DirectoryUser, select: &[String]) -> Value {
    let mut object = Map::new();
    object.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    object.insert("id".into(), json!(user.id));
    let principal = user
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@fake.onmicrosoft.com", user.id));
    for name in select {
        let value = match name.as_str() {
            "mail" => json!(user.email),
            "userPrincipalName" => json!(principal),
            "accountEnabled" => json!(user.status.enabled()),
            "displayName" => json!(format!("Fake {}", user.id)),
            _ => continue,
        };
        object.insert(name.clone(), value);
    }
    Value::Object(object)
}
