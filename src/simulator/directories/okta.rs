//! The fake Okta: `GET /api/v1/groups` (search by `profile.name`, `q`) and
//! `GET /api/v1/groups/{groupId}/users`, with `SSWS` tokens and `Link` paging (`after`).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{DirectoryGroup, Shared, error, query_pairs, query_value};

/// Okta's default page of group members.
const DEFAULT_USERS_LIMIT: usize = 1000;
/// Okta's default page of groups.
const DEFAULT_GROUPS_LIMIT: usize = 10_000;

fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    error(
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oaefake", "errorCauses": []}),
    )
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("SSWS {}", shared.lock().state.okta_token);
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == expected)
}

fn invalid_token() -> Response {
    okta_error(
        StatusCode::UNAUTHORIZED,
        "E0000011",
        "Invalid token provided",
    )
}

/// A page and its `Link` headers: `self`, and `next` (with `after`, the last ID served) when
/// more remain.
fn paged(
    shared: &Shared,
    path: &str,
    query: Vec<(String, String)>,
    items: Vec<serde_json::Value>,
    next_after: Option<String>,
) -> Response {
    let link = |pairs: &[(String, String)], rel: &str| {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("<{}{path}?{encoded}>; rel=\"{rel}\"", shared.base)
    };
    let mut response = (StatusCode::OK, axum::Json(items)).into_response();
    let headers = response.headers_mut();
    let self_pairs: Vec<(String, String)> = query.clone();
    if let Ok(value) = HeaderValue::from_str(&link(&self_pairs, "self")) {
        headers.append("link", value);
    }
    if let Some(after) = next_after {
        let mut pairs: Vec<(String, String)> = query
            .into_iter()
            .filter(|(name, _)| name != "after")
            .collect();
        pairs.insert(0, ("after".to_owned(), after));
        if let Ok(value) = HeaderValue::from_str(&link(&pairs, "next")) {
            headers.append("link", value);
        }
    }
    headers.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
    headers.insert("x-rate-limit-remaining", HeaderValue::from_static("599"));
    response
}

/// Where a page starts: after the item whose ID is `after`.
fn start_after(ids: &[&str], after: Option<&str>) -> usize {
    after
        .and_then(|after| ids.iter().position(|id| *id == after))
        .map_or(0, |position| position + 1)
}

/// Checks the `SSWS` token, then reads the query and its `limit` (at most `default`).
fn accept(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
    default: usize,
) -> Result<(Vec<(String, String)>, usize), Response> {
    if !authorized(shared, headers) {
        return Err(invalid_token());
    }
    let pairs = query_pairs(query);
    let limit = limit(&pairs, default)?;
    Ok((pairs, limit))
}

fn limit(pairs: &[(String, String)], default: usize) -> Result<usize, Response> {
    match query_value(pairs, "limit").map(str::parse::<usize>) {
        None => Ok(default),
        Some(Ok(limit)) if limit >= 1 => Ok(limit.min(default)),
        Some(_) => Err(okta_error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: limit",
        )),
    }
}

/// `GET /api/v1/groups/{groupId}/users?limit=&after=`.
pub(super) async fn users(
    State(shared): State<Shared>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (pairs, limit) = match accept(&shared, &headers, query.as_deref(), DEFAULT_USERS_LIMIT) {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let mut inner = shared.lock();
    let Some(id) = inner
        .state
        .groups
        .iter()
        .find(|found| found.id == group)
        .map(|found| found.id.clone())
    else {
        return okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {group} (UserGroup)"),
        );
    };
    // Okta groups do not nest: only the direct members.
    let members = inner.users_of(&id, false);
    let ids: Vec<&str> = members
        .iter()
        .map(|&index| inner.state.users[index].id.as_str())
        .collect();
    let start = start_after(&ids, query_value(&pairs, "after"));
    let end = (start + limit).min(ids.len());
    let page: Vec<serde_json::Value> = members[start..end]
        .iter()
        .map(|&index| {
            let user = &inner.state.users[index];
            let login = user.email.clone().unwrap_or_else(|| user.id.clone());
            let mut profile = json!({"firstName": "Fake", "lastName": user.id, "login": login});
            if let Some(email) = &user.email {
                profile["email"] = json!(email);
            }
            json!({"id": user.id, "status": user.status.okta(), "created": "2024-01-01T00:00:00.000Z", "type": {"id": "otyfake"}, "profile": profile, "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}}, "_links": {"self": {"href": format!("{}/okta/api/v1/users/{}", shared.base, user.id)}}})
        })
        .collect();
    let next = (end < ids.len()).then(|| ids[end - 1].to_owned());
    drop(inner);
    let path = format!("/okta/api/v1/groups/{group}/users");
    paged(&shared, &path, without_after(pairs), page, next)
}

fn without_after(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter(|(name, _)| name != "after")
        .collect()
}

/// `GET /api/v1/groups?search=profile.name eq "…"` (or `q=` for a prefix), `limit`, `after`.
pub(super) async fn groups(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (pairs, limit) = match accept(&shared, &headers, query.as_deref(), DEFAULT_GROUPS_LIMIT) {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let wanted = |group: &DirectoryGroup| -> Result<bool, Response> {
        if let Some(search) = query_value(&pairs, "search") {
            // Okta's `eq` on a string ignores case.
            let name = parse_name_search(search).ok_or_else(|| {
                okta_error(StatusCode::BAD_REQUEST, "E0000031", "Invalid search.")
            })?;
            return Ok(group.name.to_lowercase() == name.to_lowercase());
        }
        if let Some(prefix) = query_value(&pairs, "q") {
            return Ok(group
                .name
                .to_lowercase()
                .starts_with(&prefix.to_lowercase()));
        }
        Ok(true)
    };
    let inner = shared.lock();
    let mut matching = Vec::new();
    for group in &inner.state.groups {
        match wanted(group) {
            Ok(true) => matching.push(group),
            Ok(false) => {}
            Err(response) => return response,
        }
    }
    let ids: Vec<&str> = matching.iter().map(|group| group.id.as_str()).collect();
    let start = start_after(&ids, query_value(&pairs, "after"));
    let end = (start + limit).min(ids.len());
    let page: Vec<serde_json::Value> = matching[start..end]
        .iter()
        .map(|group| json!({"id": group.id, "created": "2024-01-01T00:00:00.000Z", "type": "OKTA_GROUP", "objectClass": ["okta:user_group"], "profile": {"name": group.name, "description": null}, "_links": {}}))
        .collect();
    let next = (end < ids.len()).then(|| ids[end - 1].to_owned());
    drop(inner);
    paged(
        &shared,
        "/okta/api/v1/groups",
        without_after(pairs),
        page,
        next,
    )
}

/// `profile.name eq "NAME"` (with `\"` and `\\` escapes) → `NAME`.
fn parse_name_search(search: &str) -> Option<String> {
    let quoted = search.trim().strip_prefix("profile.name")?.trim_start();
    let quoted = quoted.strip_prefix("eq")?.trim_start();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut name = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?),
            '"' => return None,
            c => name.push(c),
        }
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_search_is_parsed_with_its_escapes() {
        assert_eq!(
            parse_name_search(r#"profile.name eq "Support \"L2\"""#).as_deref(),
            Some(r#"Support "L2""#)
        );
        assert_eq!(parse_name_search("type eq \"OKTA_GROUP\""), None);
    }
}
