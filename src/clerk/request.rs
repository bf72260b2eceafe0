//! A request to Clerk as an endpoint function describes it: the endpoint's name (for metrics),
//! the method and path, the query and body, and what it does (for errors). The client sends it
//! under the pacer with the retry policy.

use reqwest::Method;
use serde_json::Value;

/// A request to send.
pub(super) struct Request<'a> {
    pub(super) endpoint: &'static str,
    pub(super) method: Method,
    /// The path under the API URL, one segment each (percent-encoded when sent).
    pub(super) segments: &'a [&'a str],
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Option<Value>,
    /// What the request does, as an error about it says (`creating the membership of …`).
    pub(super) context: String,
    /// The endpoint has its own limit at Clerk, besides the instance's (the invitation
    /// endpoints: hourly): its 429 holds only this request, teaches the pacer nothing, and
    /// one that asks for more than [`super::LONGEST_OWN_LIMIT_WAIT`] defers the request.
    pub(super) own_limit: bool,
}

impl<'a> Request<'a> {
    /// `GET` of these path segments, with no query yet.
    pub(super) fn get(endpoint: &'static str, segments: &'a [&'a str], context: String) -> Self {
        Request::new(endpoint, Method::GET, segments, context)
    }

    /// `POST` of `body` to these path segments.
    pub(super) fn post(
        endpoint: &'static str,
        segments: &'a [&'a str],
        body: Value,
        context: String,
    ) -> Self {
        Request::new(endpoint, Method::POST, segments, context).body(body)
    }

    /// `POST` to these path segments with no body (an endpoint that takes none).
    pub(super) fn post_empty(
        endpoint: &'static str,
        segments: &'a [&'a str],
        context: String,
    ) -> Self {
        Request::new(endpoint, Method::POST, segments, context)
    }

    /// `PATCH` of `body` to these path segments.
    pub(super) fn patch(
        endpoint: &'static str,
        segments: &'a [&'a str],
        body: Value,
        context: String,
    ) -> Self {
        Request::new(endpoint, Method::PATCH, segments, context).body(body)
    }

    /// `DELETE` of these path segments.
    pub(super) fn delete(endpoint: &'static str, segments: &'a [&'a str], context: String) -> Self {
        Request::new(endpoint, Method::DELETE, segments, context)
    }

    fn new(
        endpoint: &'static str,
        method: Method,
        segments: &'a [&'a str],
        context: String,
    ) -> Self {
        Request {
            endpoint,
            method,
            segments,
            query: Vec::new(),
            body: None,
            context,
            own_limit: false,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// One more query parameter (a repeated name repeats it).
    pub(super) fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// One query parameter for each value.
    pub(super) fn query_each(mut self, name: &'static str, values: &[&str]) -> Self {
        self.query
            .extend(values.iter().map(|value| (name, (*value).to_owned())));
        self
    }

    /// A page of an offset-paged listing, oldest first: `limit` from `offset`.
    pub(super) fn page(self, offset: u64, limit: u64) -> Self {
        self.query("order_by", "+created_at")
            .query("limit", limit)
            .query("offset", offset)
    }

    /// The endpoint has a limit of its own at Clerk (see [`Request::own_limit`]).
    pub(super) fn own_limit(mut self) -> Self {
        self.own_limit = true;
        self
    }
}
