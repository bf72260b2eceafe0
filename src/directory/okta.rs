//! Okta through its management API, with an API token (`Authorization: SSWS …`).
//!
//! Members come from `GET /api/v1/groups/{groupId}/users?limit=200` (the page size Okta
//! recommends), following the `Link: <…>; rel="next"` headers. A group given by name (not an
//! `00g…` ID) is looked up first with `GET /api/v1/groups?search=profile.name eq "NAME"`; the
//! name must match exactly one group.
//!
//! Which users count: Okta's `ACTIVE`, and the states of an active account that is locked or
//! must reset its password (`LOCKED_OUT`, `PASSWORD_EXPIRED`, `RECOVERY`): those people are
//! still staff, and dropping them for a mistyped password would remove their memberships
//! until they sign in again. `STAGED` and `PROVISIONED` (never activated), `SUSPENDED` and
//! `DEPROVISIONED` do not count. The email is `profile.email` (required in Okta's base
//! profile), or else `profile.login` when it is an email address.
//! <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/>

use std::borrow::Cow;

use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::config::{OKTA_TOKEN_VARIABLE, Okta};
use super::error::DirectoryError;
use super::secret::{Env, Secret, read_value};
use super::transport::{Auth, Call, Endpoint, Reply, Transport, same_origin};
use super::{Collector, Members, join, not_found};

/// The page size Okta recommends for group members and groups.
const PAGE_SIZE: &str = "200";

/// The statuses of an account that is active (see the module's documentation).
const ACTIVE: [&str; 4] = ["ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "RECOVERY"];

#[derive(Deserialize)]
struct User<'a> {
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    profile: Profile<'a>,
}

#[derive(Deserialize, Default)]
struct Profile<'a> {
    #[serde(default, borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    login: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Group {
    id: String,
    #[serde(default)]
    profile: GroupProfile,
}

#[derive(Deserialize, Default)]
struct GroupProfile {
    #[serde(default)]
    name: Option<String>,
}

pub(crate) struct OktaClient {
    base: Url,
    token: Secret,
}

impl OktaClient {
    pub(crate) fn new(
        settings: &Okta,
        transport: &Transport,
        env: Env<'_>,
    ) -> Result<OktaClient, DirectoryError> {
        let base = transport.parse_url("url", &settings.url)?;
        let (token, _) = read_value(
            &transport.directory,
            "Okta API token",
            settings.token_file.as_deref(),
            OKTA_TOKEN_VARIABLE,
            env,
        )?;
        transport.remember(&token);
        Ok(OktaClient { base, token })
    }

    pub(crate) async fn read_group(
        &self,
        transport: &Transport,
        group: &str,
    ) -> Result<Members, DirectoryError> {
        let id = if is_group_id(group) {
            group.to_owned()
        } else {
            self.find_group(transport, group).await?
        };
        let context = format!("reading group `{group}`");
        let mut url = join(&self.base, &["api", "v1", "groups", &id, "users"]);
        url.query_pairs_mut().append_pair("limit", PAGE_SIZE);
        let mut collector = Collector::default();
        loop {
            let reply = self
                .get(transport, &url, &context)
                .await
                .map_err(|error| not_found(error, group))?;
            let users: Vec<User<'_>> = serde_json::from_slice(&reply.body)
                .map_err(|error| decode(transport, &context, &error))?;
            collector.page();
            collector.reserve(users.len());
            for user in &users {
                let active = user
                    .status
                    .as_deref()
                    .is_some_and(|status| ACTIVE.contains(&status));
                collector.user(active, email(&user.profile));
            }
            match self.next(transport, &url, &reply, &context)? {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(collector.finish())
    }

    /// The ID of the one group named exactly `name`.
    async fn find_group(
        &self,
        transport: &Transport,
        name: &str,
    ) -> Result<String, DirectoryError> {
        let context = format!("looking up group `{name}` by name");
        let mut url = join(&self.base, &["api", "v1", "groups"]);
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        url.query_pairs_mut()
            .append_pair("search", &format!("profile.name eq \"{escaped}\""))
            .append_pair("limit", PAGE_SIZE);
        let mut found = Vec::new();
        loop {
            let reply = self.get(transport, &url, &context).await?;
            let groups: Vec<Group> = serde_json::from_slice(&reply.body)
                .map_err(|error| decode(transport, &context, &error))?;
            // `eq` may ignore case: only the exact name counts.
            found.extend(
                groups
                    .into_iter()
                    .filter(|group| group.profile.name.as_deref() == Some(name))
                    .map(|group| group.id),
            );
            match self.next(transport, &url, &reply, &context)? {
                Some(next) => url = next,
                None => break,
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(DirectoryError::GroupNotFound {
                directory: transport.directory.clone(),
                provider: transport.kind,
                group: name.to_owned(),
                detail: "no group has this exact name".to_owned(),
            }),
            count => Err(DirectoryError::AmbiguousGroup {
                directory: transport.directory.clone(),
                group: name.to_owned(),
                count,
                ids: found.join(", "),
            }),
        }
    }

    async fn get(
        &self,
        transport: &Transport,
        url: &Url,
        context: &str,
    ) -> Result<Reply, DirectoryError> {
        transport
            .send(&Call {
                context,
                endpoint: Endpoint::Api,
                method: Method::GET,
                url,
                auth: Auth::Ssws(&self.token),
                form: None,
                headers: &[],
            })
            .await
    }

    /// The next page from the `Link` header: only on the org's own host, where the token
    /// may go.
    fn next(
        &self,
        transport: &Transport,
        current: &Url,
        reply: &Reply,
        context: &str,
    ) -> Result<Option<Url>, DirectoryError> {
        let Some(link) = &reply.next_link else {
            return Ok(None);
        };
        match Url::parse(link) {
            // A link to the page just read would page forever.
            Ok(next) if next == *current => Err(DirectoryError::Decode {
                directory: transport.directory.clone(),
                provider: transport.kind,
                context: context.to_owned(),
                detail: "the next page is the one just read".to_owned(),
            }),
            Ok(next) if same_origin(&self.base, &next) => Ok(Some(next)),
            _ => Err(DirectoryError::Decode {
                directory: transport.directory.clone(),
                provider: transport.kind,
                context: context.to_owned(),
                detail: format!(
                    "the next page `{link}` is not on {}; the token is not sent elsewhere",
                    self.base.origin().ascii_serialization()
                ),
            }),
        }
    }
}

/// Okta group IDs start with `00g` and are alphanumeric; anything else is a name.
fn is_group_id(group: &str) -> bool {
    group.starts_with("00g") && group.chars().all(|c| c.is_ascii_alphanumeric())
}

fn email<'a>(profile: &'a Profile<'_>) -> Option<&'a str> {
    let usable = |value: &&str| value.contains('@');
    profile
        .email
        .as_deref()
        .filter(usable)
        .or_else(|| profile.login.as_deref().filter(usable))
}

fn decode(transport: &Transport, context: &str, error: &serde_json::Error) -> DirectoryError {
    DirectoryError::Decode {
        directory: transport.directory.clone(),
        provider: transport.kind,
        context: context.to_owned(),
        detail: format!("the answer is not the documented JSON: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_told_from_names() {
        assert!(is_group_id("00g1abcd"));
        assert!(is_group_id("00gak46y5hydV6NdM0g4"));
        assert!(!is_group_id("Support"));
        assert!(!is_group_id("00g support"));
    }

    #[test]
    fn the_email_is_the_profile_email_or_else_an_email_shaped_login() {
        let profile = |email: Option<&'static str>, login: Option<&'static str>| Profile {
            email: email.map(Cow::Borrowed),
            login: login.map(Cow::Borrowed),
        };
        assert_eq!(
            email(&profile(Some("a@x.com"), Some("b@x.com"))),
            Some("a@x.com")
        );
        assert_eq!(email(&profile(None, Some("b@x.com"))), Some("b@x.com"));
        assert_eq!(email(&profile(None, Some("jdoe"))), None);
    }
}
