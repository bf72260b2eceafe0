//! Google Workspace through the Admin SDK Directory API.
//!
//! Authentication is the OAuth 2.0 JWT bearer grant (RFC 7523) of a service account with
//! domain-wide delegation: an RS256 assertion signed with the key file's private key, naming
//! the admin to act as (`sub`), exchanged at the token endpoint for an access token.
//! Members come from `members.list` with `includeDerivedMembership=true` (nested groups'
//! members included), 200 a page, following `nextPageToken`. Only members of type `USER` with
//! status `ACTIVE` count; their `email` is the primary email.
//! <https://developers.google.com/identity/protocols/oauth2/service-account>,
//! <https://developers.google.com/admin-sdk/directory/reference/rest/v1/members/list>

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use url::Url;

use super::config::{GOOGLE_API_URL, GOOGLE_CREDENTIALS_VARIABLE, Google};
use super::error::DirectoryError;
use super::secret::{Env, Secret, read_named_file};
use super::token::{AccessToken, TOKEN_CONTEXT, TokenCache, authorized_get, request_token};
use super::transport::Transport;
use super::{Collector, Members, join, not_found};

/// The only scope membersync asks for: reading group members.
pub const MEMBER_READONLY_SCOPE: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
/// The largest page `members.list` serves.
const PAGE_SIZE: &str = "200";
/// The token endpoint when the key file names none.
const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google accepts assertions that live an hour at most.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// The fields of a service-account key file that membersync uses.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// The claims of the JWT bearer assertion.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// One page of `members.list`: only the fields membersync reads, borrowed from the page.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default, borrow)]
    members: Vec<Member<'a>>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Member<'a> {
    #[serde(default, borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
}

pub(crate) struct GoogleClient {
    client_email: String,
    subject: String,
    /// The private key, ready to sign. `EncodingKey` is not printed anywhere.
    key: EncodingKey,
    key_id: Option<String>,
    token_url: Url,
    api: Url,
    tokens: TokenCache,
}

impl GoogleClient {
    pub(crate) fn new(
        settings: &Google,
        transport: &Transport,
        env: Env<'_>,
    ) -> Result<GoogleClient, DirectoryError> {
        let directory = transport.directory.as_str();
        let (text, origin) = read_named_file(
            directory,
            "the service-account key",
            settings.credentials_file.as_deref(),
            GOOGLE_CREDENTIALS_VARIABLE,
            env,
        )?;
        let bad_key = |detail: &str| DirectoryError::Credentials {
            directory: directory.to_owned(),
            detail: format!("{origin} is not a service-account key: {detail}"),
        };
        // serde's message could quote a value of the key: only where it failed is kept.
        let key: KeyFile = serde_json::from_str(text.expose()).map_err(|error| {
            bad_key(&format!(
                "expected JSON with client_email and private_key (line {}, column {})",
                error.line(),
                error.column()
            ))
        })?;
        if key
            .kind
            .as_deref()
            .is_some_and(|kind| kind != "service_account")
        {
            return Err(bad_key("its `type` is not `service_account`"));
        }
        let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|_| bad_key("its private_key is not an RSA private key in PEM"))?;
        transport.remember(&Secret::new(key.private_key));
        let token_url = settings
            .token_url
            .clone()
            .or(key.token_uri)
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned());
        let token_setting = if settings.token_url.is_some() {
            "token_url"
        } else {
            "the key file's token_uri"
        };
        let api = settings.api_url.as_deref().unwrap_or(GOOGLE_API_URL);
        Ok(GoogleClient {
            client_email: key.client_email,
            subject: settings.subject.clone(),
            key: signing,
            key_id: key.private_key_id,
            token_url: transport.parse_url(token_setting, &token_url)?,
            api: transport.parse_url("api_url", api)?,
            tokens: TokenCache::default(),
        })
    }

    /// The signed assertion: RS256, `iss` the service account, `sub` the admin.
    fn assertion(&self) -> Result<Secret, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_owned())?
            .as_secs();
        let claims = Claims {
            iss: &self.client_email,
            sub: &self.subject,
            scope: MEMBER_READONLY_SCOPE,
            aud: self.token_url.as_str(),
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.key_id);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|error| format!("cannot sign the assertion: {error}"))
    }

    /// Exchanges a fresh assertion for an access token.
    async fn exchange(&self, transport: &Transport) -> Result<AccessToken, DirectoryError> {
        let assertion = self.assertion().map_err(|detail| DirectoryError::Decode {
            directory: transport.directory.clone(),
            provider: transport.kind,
            context: TOKEN_CONTEXT.to_owned(),
            detail,
        })?;
        let fields = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose()),
        ];
        request_token(transport, &self.token_url, &fields).await
    }

    pub(crate) async fn read_group(
        &self,
        transport: &Transport,
        group: &str,
    ) -> Result<Members, DirectoryError> {
        let context = format!("reading group `{group}`");
        let base = join(
            &self.api,
            &["admin", "directory", "v1", "groups", group, "members"],
        );
        let mut collector = Collector::default();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = base.clone();
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("includeDerivedMembership", "true")
                    .append_pair("maxResults", PAGE_SIZE);
                if let Some(token) = &page_token {
                    query.append_pair("pageToken", token);
                }
            }
            let exchange = || self.exchange(transport);
            let body = authorized_get(transport, &self.tokens, exchange, &url, &context, &[])
                .await
                .map_err(|error| not_found(error, group))?
                .body;
            let page: Page<'_> =
                serde_json::from_slice(&body).map_err(|error| DirectoryError::Decode {
                    directory: transport.directory.clone(),
                    provider: transport.kind,
                    context: context.clone(),
                    detail: format!("a page of members is not the documented JSON: {error}"),
                })?;
            collector.page();
            collector.reserve(page.members.len());
            for member in &page.members {
                if member.kind.as_deref() != Some("USER") {
                    collector.not_user();
                    continue;
                }
                let active = member.status.as_deref() == Some("ACTIVE");
                collector.user(active, member.email.as_deref());
            }
            match page.next_page_token.filter(|token| !token.is_empty()) {
                // A token that names the page just read would page forever.
                Some(token) if page_token.as_ref() == Some(&token) => {
                    return Err(DirectoryError::Decode {
                        directory: transport.directory.clone(),
                        provider: transport.kind,
                        context,
                        detail: "the next page token is the one just read".to_owned(),
                    });
                }
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        Ok(collector.finish())
    }
}
