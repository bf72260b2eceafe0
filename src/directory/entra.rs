//! Microsoft Entra ID through Microsoft Graph, with an app's client credentials.
//!
//! The token comes from the OAuth 2.0 client-credentials grant at the identity platform's
//! token endpoint, for the scope `https://graph.microsoft.com/.default` (a plain form POST:
//! one request, through the same limiter and retries as every other). Members come from
//! `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` (nested groups' users
//! included, users only) with `$select=id,mail,userPrincipalName,accountEnabled` and
//! `$top=999`, following `@odata.nextLink`. The cast to users is an advanced query: Graph
//! requires `ConsistencyLevel: eventual` and `$count=true` for it, on every page.
//!
//! Which users count: `accountEnabled` true (disabled accounts are left out). The email is
//! `mail`, or else `userPrincipalName` unless it is a guest's `…#EXT#@…` name, which is no
//! mailbox.
//! <https://learn.microsoft.com/graph/api/group-list-transitivemembers>,
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>

use std::borrow::Cow;

use serde::Deserialize;
use url::Url;

use super::config::{ENTRA_SECRET_VARIABLE, Entra, GRAPH_API_URL, entra_token_url};
use super::error::DirectoryError;
use super::secret::{Env, Secret, read_value};
use super::token::{AccessToken, TokenCache, authorized_get, request_token};
use super::transport::{Transport, same_origin};
use super::{Collector, Members, join, not_found};

/// The scope of an app-only token for Microsoft Graph.
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The largest page `transitiveMembers` serves.
const PAGE_SIZE: &str = "999";
/// What membersync reads of a user.
const SELECT: &str = "id,mail,userPrincipalName,accountEnabled";
/// Required by the cast to users (an advanced query), with `$count=true`.
const CONSISTENCY: [(&str, &str); 1] = [("ConsistencyLevel", "eventual")];
/// The largest count taken on trust to reserve room for the emails.
const RESERVE_LIMIT: u64 = 1_000_000;

/// One page of users: only the fields membersync reads, borrowed from the page.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default, borrow)]
    value: Vec<User<'a>>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(default, borrow)]
    mail: Option<Cow<'a, str>>,
    #[serde(rename = "userPrincipalName", default, borrow)]
    user_principal_name: Option<Cow<'a, str>>,
    #[serde(rename = "accountEnabled", default)]
    account_enabled: Option<bool>,
}

pub(crate) struct EntraClient {
    client_id: String,
    secret: Secret,
    token_url: Url,
    api: Url,
    tokens: TokenCache,
}

impl EntraClient {
    pub(crate) fn new(
        settings: &Entra,
        transport: &Transport,
        env: Env<'_>,
    ) -> Result<EntraClient, DirectoryError> {
        let (secret, _) = read_value(
            &transport.directory,
            "Entra client secret",
            settings.client_secret_file.as_deref(),
            ENTRA_SECRET_VARIABLE,
            env,
        )?;
        transport.remember(&secret);
        let token_url = settings
            .token_url
            .clone()
            .unwrap_or_else(|| entra_token_url(&settings.tenant_id));
        let api = settings.api_url.as_deref().unwrap_or(GRAPH_API_URL);
        Ok(EntraClient {
            client_id: settings.client_id.clone(),
            secret,
            token_url: transport.parse_url("token_url", &token_url)?,
            api: transport.parse_url("api_url", api)?,
            tokens: TokenCache::default(),
        })
    }

    /// The client-credentials grant.
    async fn exchange(&self, transport: &Transport) -> Result<AccessToken, DirectoryError> {
        let fields = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", GRAPH_SCOPE),
        ];
        request_token(transport, &self.token_url, &fields).await
    }

    pub(crate) async fn read_group(
        &self,
        transport: &Transport,
        group: &str,
    ) -> Result<Members, DirectoryError> {
        let context = format!("reading group `{group}`");
        let decode = |detail: String| DirectoryError::Decode {
            directory: transport.directory.clone(),
            provider: transport.kind,
            context: context.clone(),
            detail,
        };
        let mut url = join(
            &self.api,
            &[
                "v1.0",
                "groups",
                group,
                "transitiveMembers",
                "microsoft.graph.user",
            ],
        );
        url.query_pairs_mut()
            .append_pair("$select", SELECT)
            .append_pair("$top", PAGE_SIZE)
            .append_pair("$count", "true");
        let mut collector = Collector::default();
        let mut unknown_state = 0usize;
        loop {
            let exchange = || self.exchange(transport);
            let reply = authorized_get(
                transport,
                &self.tokens,
                exchange,
                &url,
                &context,
                &CONSISTENCY,
            )
            .await
            .map_err(|error| not_found(error, group))?;
            let page: Page<'_> = serde_json::from_slice(&reply.body).map_err(|error| {
                decode(format!(
                    "a page of users is not the documented JSON: {error}"
                ))
            })?;
            if let Some(count) = page.count.filter(|_| collector.first_page()) {
                collector.reserve(count.min(RESERVE_LIMIT) as usize);
            }
            collector.page();
            for user in &page.value {
                unknown_state += usize::from(user.account_enabled.is_none());
                let active = user.account_enabled == Some(true);
                collector.user(active, email(user));
            }
            let Some(next) = page.next_link else { break };
            url = match Url::parse(&next) {
                // A link to the page just read would page forever.
                Ok(next) if next == url => {
                    return Err(decode("the next page is the one just read".to_owned()));
                }
                Ok(next) if same_origin(&self.api, &next) => next,
                _ => {
                    return Err(decode(format!(
                        "the next page `{next}` is not on {}; the token is not sent elsewhere",
                        self.api.origin().ascii_serialization()
                    )));
                }
            };
        }
        if unknown_state > 0 {
            // Graph returns members it may not fully read with limited information.
            tracing::warn!(
                directory = %transport.directory,
                group,
                users = unknown_state,
                "Graph gave no accountEnabled for these users; they are left out (does the app have User.Read.All?)"
            );
        }
        Ok(collector.finish())
    }
}

fn email<'a>(user: &'a User<'_>) -> Option<&'a str> {
    let mail = user.mail.as_deref().filter(|mail| !mail.trim().is_empty());
    mail.or_else(|| {
        user.user_principal_name
            .as_deref()
            .filter(|name| name.contains('@') && !name.contains("#EXT#"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_is_mail_or_else_a_members_principal_name() {
        let user = |mail: Option<&'static str>, upn: Option<&'static str>| User {
            mail: mail.map(Cow::Borrowed),
            user_principal_name: upn.map(Cow::Borrowed),
            account_enabled: Some(true),
        };
        assert_eq!(
            email(&user(Some("a@x.com"), Some("b@x.com"))),
            Some("a@x.com")
        );
        assert_eq!(email(&user(None, Some("b@x.com"))), Some("b@x.com"));
        assert_eq!(email(&user(Some(""), Some("b@x.com"))), Some("b@x.com"));
        assert_eq!(
            email(&user(
                None,
                Some("guest_gmail.com#EXT#@corp.onmicrosoft.com")
            )),
            None
        );
    }
}
