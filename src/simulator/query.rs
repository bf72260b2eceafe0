//! Reading a query string as Clerk's endpoints do: repeated keys kept, `limit` and `offset`
//! checked.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::shared::error;

/// Query pairs, repeated keys kept.
pub(super) fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn one(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub(super) fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `limit` (1..=500, default 10) and `offset`; out-of-range values get a 422 like Clerk's.
pub(super) fn paging(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
    let limit = one(pairs, "limit")
        .map(|v| v.parse::<usize>())
        .unwrap_or(Ok(10));
    let offset = one(pairs, "offset")
        .map(|v| v.parse::<usize>())
        .unwrap_or(Ok(0));
    match (limit, offset) {
        (Ok(limit), Ok(offset)) if (1..=500).contains(&limit) => Ok((limit, offset)),
        _ => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "limit must be 1..=500",
        )),
    }
}

/// An `order_by` value: the key it sorts by and whether descending (`-key`; `+key` and `key`
/// ascend).
pub(super) fn order_of(order_by: &str) -> (&str, bool) {
    match order_by.strip_prefix('-') {
        Some(key) => (key, true),
        None => (order_by.strip_prefix('+').unwrap_or(order_by), false),
    }
}

/// Clerk's answer to an `order_by` the listing does not sort by.
pub(super) fn unknown_order(order_by: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
        &format!("order_by cannot be `{order_by}`."),
    )
}

/// `{"data": [...], "total_count": N}`, Clerk's page.
#[derive(Serialize)]
pub(super) struct PageOut<T: Serialize> {
    pub(super) data: Vec<T>,
    pub(super) total_count: usize,
}

/// The page of `limit` items after `offset` of everything a listing keeps, each written by
/// `out`, with the count of them all.
pub(super) fn page_of<I, T: Serialize>(
    items: Vec<I>,
    limit: usize,
    offset: usize,
    out: impl FnMut(I) -> T,
) -> Response {
    let total_count = items.len();
    let data = items
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(out)
        .collect();
    axum::response::IntoResponse::into_response(axum::Json(PageOut { data, total_count }))
}
