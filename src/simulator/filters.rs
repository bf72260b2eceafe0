//! The filters and orders of Clerk's listings of people: `email_address`, `user_id` (with
//! Clerk's `+`/`-` to include or exclude), `query` (a case-insensitive part of an email
//! address, user ID or name), and `order_by` over `created_at`, `email_address`, `first_name`,
//! `last_name`, `username` and `phone_number`, `+` ascending, `-` descending. A membership
//! listing applies them to each membership's person.

use std::cmp::Ordering;

use axum::http::StatusCode;
use axum::response::Response;

use super::objects::names;
use super::query::{all, one};
use super::shared::error;
use super::state::{SimMembership, SimState, SimUser};

/// The most values one filter takes, as Clerk documents.
const FILTER_LIMIT: usize = 100;

/// Which people a listing keeps. One field per filter of Clerk's listing.
#[derive(Debug, Default)]
pub(super) struct PeopleFilter {
    /// Email addresses, lower-cased; empty: any.
    emails: Vec<String>,
    /// User IDs to keep (plain or `+`); empty: any.
    user_ids: Vec<String>,
    /// User IDs to leave out (`-`).
    excluded: Vec<String>,
    /// Lower-cased.
    query: Option<String>,
}

fn too_many(name: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
        &format!("{name} accepts up to {FILTER_LIMIT} values."),
    )
}

impl PeopleFilter {
    /// Reads the filters from the query; more than 100 values of one answers 422, as Clerk.
    pub(super) fn from_query(pairs: &[(String, String)]) -> Result<PeopleFilter, Response> {
        let emails = all(pairs, "email_address");
        let ids = all(pairs, "user_id");
        for (name, values) in [("email_address", &emails), ("user_id", &ids)] {
            if values.len() > FILTER_LIMIT {
                return Err(too_many(name));
            }
        }
        let mut filter = PeopleFilter {
            emails: emails.iter().map(|e| e.to_lowercase()).collect(),
            query: one(pairs, "query")
                .filter(|q| !q.is_empty())
                .map(|q| q.to_lowercase()),
            ..PeopleFilter::default()
        };
        for id in ids {
            match id.strip_prefix('-') {
                Some(excluded) => filter.excluded.push(excluded.to_owned()),
                None => filter
                    .user_ids
                    .push(id.strip_prefix('+').unwrap_or(&id).to_owned()),
            }
        }
        Ok(filter)
    }

    /// Whether nothing is filtered.
    pub(super) fn is_empty(&self) -> bool {
        self.emails.is_empty()
            && self.user_ids.is_empty()
            && self.excluded.is_empty()
            && self.query.is_none()
    }

    /// Whether the person with this ID (and user, if the state knows them) is kept.
    pub(super) fn keeps(&self, user_id: &str, user: Option<&SimUser>) -> bool {
        if self.excluded.iter().any(|id| id == user_id)
            || (!self.user_ids.is_empty() && !self.user_ids.iter().any(|id| id == user_id))
        {
            return false;
        }
        let emails = user.map_or(&[][..], |u| u.emails.as_slice());
        if !self.emails.is_empty()
            && !emails.iter().any(|e| {
                self.emails
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(e))
            })
        {
            return false;
        }
        self.query.as_ref().is_none_or(|query| {
            user_id.to_lowercase().contains(query)
                || emails.iter().any(|e| e.to_lowercase().contains(query))
        })
    }

    pub(super) fn keeps_membership(&self, state: &SimState, membership: &SimMembership) -> bool {
        self.is_empty() || self.keeps(&membership.user_id, state.user(&membership.user_id))
    }
}

/// What a listing of people is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OrderKey {
    CreatedAt,
    EmailAddress,
    FirstName,
    LastName,
    /// `username` and `phone_number`: the simulated people have none, so creation decides.
    Unknown,
}

/// `order_by`: a key and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Order {
    pub(super) key: OrderKey,
    pub(super) descending: bool,
}

impl Order {
    /// Clerk's default: the newest first.
    pub(super) const NEWEST_FIRST: Order = Order {
        key: OrderKey::CreatedAt,
        descending: true,
    };

    /// Reads `order_by` (default `-created_at`); a key Clerk does not offer answers 422.
    pub(super) fn from_query(pairs: &[(String, String)]) -> Result<Order, Response> {
        Order::from_query_with(pairs, &[])
    }

    /// [`Order::from_query`], with more keys the simulated people have no value for (the
    /// users listing's `last_sign_in_at`, …): creation decides between them.
    pub(super) fn from_query_with(
        pairs: &[(String, String)],
        unknown: &[&str],
    ) -> Result<Order, Response> {
        let Some(text) = one(pairs, "order_by") else {
            return Ok(Order::NEWEST_FIRST);
        };
        let (name, descending) = super::query::order_of(&text);
        let key = match name {
            "created_at" => OrderKey::CreatedAt,
            "email_address" => OrderKey::EmailAddress,
            "first_name" => OrderKey::FirstName,
            "last_name" => OrderKey::LastName,
            "username" | "phone_number" => OrderKey::Unknown,
            _ if unknown.contains(&name) => OrderKey::Unknown,
            _ => return Err(super::query::unknown_order(&text)),
        };
        Ok(Order { key, descending })
    }

    /// Sorts memberships: by the key, then by creation (and ID), in the direction asked.
    pub(super) fn sort(self, state: &SimState, memberships: &mut [&SimMembership]) {
        self.sort_people(state, memberships, |m| (&m.user_id, m.created_at, &m.id));
    }

    /// Sorts anything that stands for a person: `person` gives its user ID, creation time and
    /// own ID (the last two break ties, oldest first before the direction applies).
    pub(super) fn sort_people<T>(
        self,
        state: &SimState,
        items: &mut [T],
        person: impl Fn(&T) -> (&str, i64, &str),
    ) {
        let email = |item: &T| {
            let user = state.user(person(item).0)?;
            user.emails.first().map(|e| e.to_lowercase())
        };
        let name = |item: &T, last: bool| {
            let email = state.user(person(item).0).and_then(|u| u.emails.first());
            let (first_name, last_name) = names(email.map(String::as_str));
            (if last { last_name } else { first_name }).map(|n| n.to_string())
        };
        items.sort_by(|a, b| {
            let by_key = match self.key {
                OrderKey::CreatedAt | OrderKey::Unknown => Ordering::Equal,
                OrderKey::EmailAddress => email(a).cmp(&email(b)),
                OrderKey::FirstName => name(a, false).cmp(&name(b, false)),
                OrderKey::LastName => name(a, true).cmp(&name(b, true)),
            };
            let (_, a_created, a_id) = person(a);
            let (_, b_created, b_id) = person(b);
            by_key.then_with(|| (a_created, a_id).cmp(&(b_created, b_id)))
        });
        if self.descending {
            items.reverse();
        }
    }
}
