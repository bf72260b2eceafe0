//! HTTP to one directory: its own rate limiter, a gate that holds every request of the
//! directory after a 429 until its `Retry-After` (or Okta's `X-Rate-Limit-Reset`), and retries
//! with full-jitter exponential backoff under a per-run retry budget. Failures are classified
//! first (throttled, transient, permanent), then decided (smithy-rs style, as the Clerk client).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::Instant;
use url::Url;

use super::config::{DirectoryOptions, ProviderKind};
use super::error::{DirectoryError, describe_body};
use super::secret::Secret;

/// Which kind of endpoint a request goes to: a token endpoint refuses credentials with any
/// 4xx, an API with 401 or 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Token,
    Api,
}

/// How a request authenticates.
pub(crate) enum Auth<'a> {
    None,
    Bearer(&'a Secret),
    Ssws(&'a Secret),
}

/// One request to send, rebuilt for every attempt.
pub(crate) struct Call<'a> {
    /// What it is for, in messages: "reading group support@example.com".
    pub context: &'a str,
    pub endpoint: Endpoint,
    pub method: Method,
    pub url: &'a Url,
    pub auth: Auth<'a>,
    /// A form body (`application/x-www-form-urlencoded`), already encoded.
    pub form: Option<&'a str>,
    pub headers: &'a [(&'static str, &'static str)],
}

/// A successful answer, read whole.
pub(crate) struct Reply {
    pub body: bytes::Bytes,
    /// The `rel="next"` target of the `Link` headers (Okta's paging).
    pub next_link: Option<String>,
}

/// Requests sent to one directory, for logs, tests and benchmarks.
#[derive(Debug, Default)]
pub struct DirectoryStats {
    /// Every attempt sent, token requests and retries included.
    pub requests: AtomicU64,
    /// Attempts sent to a token endpoint.
    pub token_requests: AtomicU64,
    /// Attempts that were retries.
    pub retries: AtomicU64,
    /// 429 answers.
    pub throttled: AtomicU64,
    /// Retries after transient failures: what the retry budget counts.
    pub transient_retries: AtomicU32,
}

/// One failed attempt, with what the retry policy needs.
struct Failure {
    error: DirectoryError,
    class: Class,
    /// How long to wait before the next attempt; `None`: the backoff decides.
    wait: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Throttled,
    Transient,
    Permanent,
}

pub(crate) struct Transport {
    pub(crate) directory: String,
    pub(crate) kind: ProviderKind,
    http: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    options: DirectoryOptions,
    pub(crate) stats: DirectoryStats,
    /// Credentials in use (static ones and issued access tokens): scrubbed from error texts.
    secrets: Mutex<Vec<Secret>>,
}

impl Transport {
    pub(crate) fn new(
        directory: &str,
        kind: ProviderKind,
        options: DirectoryOptions,
    ) -> Result<Transport, DirectoryError> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("membersync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| DirectoryError::Config {
                directory: directory.to_owned(),
                detail: format!("cannot set up the HTTP client: {error}"),
            })?;
        Ok(Transport {
            directory: directory.to_owned(),
            kind,
            http,
            limiter: RateLimiter::direct(Quota::per_second(options.requests_per_second)),
            paused_until: Mutex::new(None),
            options,
            stats: DirectoryStats::default(),
            secrets: Mutex::new(Vec::new()),
        })
    }

    /// Adds a credential to those scrubbed from error texts.
    pub(crate) fn remember(&self, secret: &Secret) {
        self.lock_secrets().push(secret.clone());
    }

    fn lock_secrets(&self) -> std::sync::MutexGuard<'_, Vec<Secret>> {
        self.secrets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Parses a configured URL: https, or plain http to a loopback host only (the credentials
    /// would travel in clear).
    pub(crate) fn parse_url(&self, setting: &str, value: &str) -> Result<Url, DirectoryError> {
        parse_url(&self.directory, setting, value)
    }

    /// Sends a request under the limiter with the retry policy.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Reply, DirectoryError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(self.options.max_backoff)
            .with_max_times(self.options.max_attempts.saturating_sub(1));
        let attempts = AtomicU32::new(0);
        let attempt = || {
            let number = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            self.attempt(call, number)
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|failure: &Failure| match failure.class {
                Class::Permanent => false,
                Class::Throttled => true,
                Class::Transient => self.take_retry(),
            })
            .adjust(|failure: &Failure, delay: Option<Duration>| {
                // `None`: the attempts are used up.
                let delay = delay?;
                Some(failure.wait.unwrap_or_else(|| {
                    // Full jitter: a random wait between zero and the exponential delay.
                    Duration::from_micros(rand::rng().random_range(0..=delay.as_micros() as u64))
                }))
            })
            .notify(|failure: &Failure, delay: Duration| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(directory = %self.directory, error = %failure.error, ?delay, "retrying a directory request");
            })
            .await
            .map_err(|failure| failure.error)
    }

    /// Takes one retry from the budget; `false` once it is spent.
    fn take_retry(&self) -> bool {
        let used = self.stats.transient_retries.fetch_add(1, Ordering::SeqCst) + 1;
        used <= self.options.retry_budget
    }

    fn out_of_retries(&self) -> bool {
        self.stats.transient_retries.load(Ordering::SeqCst) > self.options.retry_budget
    }

    async fn attempt(&self, call: &Call<'_>, number: u32) -> Result<Reply, Failure> {
        if self.out_of_retries() {
            return Err(self.permanent(DirectoryError::OutOfRetries {
                directory: self.directory.clone(),
                provider: self.kind,
                context: call.context.to_owned(),
                budget: self.options.retry_budget,
            }));
        }
        self.wait_turn().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if call.endpoint == Endpoint::Token {
            self.stats.token_requests.fetch_add(1, Ordering::Relaxed);
        }
        let started = std::time::Instant::now();
        let response = match self.request(call).send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport_failure(call, &error)),
        };
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let next_link = next_link(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Err(self.transport_failure(call, &error)),
        };
        tracing::debug!(
            directory = %self.directory,
            provider = self.kind.as_str(),
            method = %call.method,
            path = call.url.path(),
            status,
            attempt = number,
            latency_ms = started.elapsed().as_millis() as u64,
            "directory request"
        );
        if (200..300).contains(&status) {
            return Ok(Reply { body, next_link });
        }
        Err(self.refused(call, status, wait, &body))
    }

    fn request(&self, call: &Call<'_>) -> reqwest::RequestBuilder {
        let mut builder = self
            .http
            .request(call.method.clone(), call.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        builder = match call.auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.bearer_auth(token.expose()),
            Auth::Ssws(token) => {
                let mut value = HeaderValue::from_str(&format!("SSWS {}", token.expose()))
                    .unwrap_or_else(|_| HeaderValue::from_static("SSWS"));
                value.set_sensitive(true);
                builder.header(reqwest::header::AUTHORIZATION, value)
            }
        };
        for (name, value) in call.headers {
            builder = builder.header(*name, *value);
        }
        if let Some(form) = call.form {
            builder = builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.to_owned());
        }
        builder
    }

    /// Waits for the end of any 429 pause of this directory, then for the limiter.
    async fn wait_turn(&self) {
        loop {
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    fn pause_until(&self, until: Instant) {
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    fn permanent(&self, error: DirectoryError) -> Failure {
        Failure {
            error,
            class: Class::Permanent,
            wait: None,
        }
    }

    /// Classifies an error answer.
    fn refused(
        &self,
        call: &Call<'_>,
        status: u16,
        wait: Option<Duration>,
        body: &[u8],
    ) -> Failure {
        let detail = {
            let secrets = self.lock_secrets();
            let exposed: Vec<&str> = secrets.iter().map(Secret::expose).collect();
            describe_body(body, &exposed)
        };
        let directory = self.directory.clone();
        let provider = self.kind;
        let context = call.context.to_owned();
        let refused = match call.endpoint {
            Endpoint::Token => (400..500).contains(&status) && status != 429,
            Endpoint::Api => status == 401 || status == 403,
        };
        if refused {
            return self.permanent(DirectoryError::Unauthorized {
                what: refuser(call),
                hint: hint(self.kind, call.endpoint),
                directory,
                provider,
                context,
                status,
                detail,
            });
        }
        let error = DirectoryError::Api {
            directory: directory.clone(),
            provider,
            context: context.clone(),
            status,
            detail,
        };
        match status {
            429 => self.throttled(error, wait, directory, context),
            408 | 500..=599 => Failure {
                error,
                class: Class::Transient,
                wait: None,
            },
            _ => self.permanent(error),
        }
    }

    /// A 429: every request of this directory waits for `Retry-After`; a wait longer than a
    /// run allows makes the request fail now.
    fn throttled(
        &self,
        error: DirectoryError,
        wait: Option<Duration>,
        directory: String,
        context: String,
    ) -> Failure {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        match wait {
            Some(wait) if wait > self.options.max_pause => {
                self.permanent(DirectoryError::Throttled {
                    directory,
                    provider: self.kind,
                    context,
                    wait,
                    longest: self.options.max_pause,
                })
            }
            Some(wait) => {
                self.pause_until(Instant::now() + wait);
                Failure {
                    error,
                    class: Class::Throttled,
                    wait: Some(wait),
                }
            }
            None => Failure {
                error,
                class: Class::Throttled,
                wait: None,
            },
        }
    }

    fn transport_failure(&self, call: &Call<'_>, error: &reqwest::Error) -> Failure {
        let detail = if error.is_timeout() {
            format!("no answer within {:?}", self.options.timeout)
        } else if error.is_connect() {
            format!(
                "cannot connect to {} (connection refused or network unreachable)",
                call.url.host_str().unwrap_or("the directory")
            )
        } else {
            "the connection broke before the answer was read".to_owned()
        };
        // reqwest's own message may carry the URL but never the headers; keep ours short.
        Failure {
            error: DirectoryError::Transport {
                directory: self.directory.clone(),
                provider: self.kind,
                context: call.context.to_owned(),
                detail,
            },
            class: Class::Transient,
            wait: None,
        }
    }
}

/// Who refused, for the message: the token endpoint (by URL, without its query) or the API.
fn refuser(call: &Call<'_>) -> String {
    match call.endpoint {
        Endpoint::Token => {
            let mut url = call.url.clone();
            url.set_query(None);
            format!("the token endpoint {url}")
        }
        Endpoint::Api => "the API".to_owned(),
    }
}

/// What to check after a refusal, by provider and endpoint: settings are named, never shown.
fn hint(kind: ProviderKind, endpoint: Endpoint) -> &'static str {
    match (kind, endpoint) {
        (ProviderKind::Google, Endpoint::Token) => {
            "Check the service-account key (credentials_file or GOOGLE_APPLICATION_CREDENTIALS): is the key still active, is domain-wide delegation granted to its client ID for the scope https://www.googleapis.com/auth/admin.directory.group.member.readonly, and is `subject` a Workspace admin?"
        }
        (ProviderKind::Google, Endpoint::Api) => {
            "Check that `subject` is an admin who may read the group's members, and that the domain-wide delegation covers the scope https://www.googleapis.com/auth/admin.directory.group.member.readonly."
        }
        (ProviderKind::Okta, _) => {
            "Check the API token (token_file or OKTA_API_TOKEN): is it active (Okta revokes tokens unused for 30 days), was it created in the org at `url`, and may its admin read groups (a read-only admin suffices)?"
        }
        (ProviderKind::Entra, Endpoint::Token) => {
            "Check tenant_id, client_id and the client secret (client_secret_file or AZURE_CLIENT_SECRET): is it the secret's value (not its ID), and has it not expired?"
        }
        (ProviderKind::Entra, Endpoint::Api) => {
            "Check that the app registration has the Microsoft Graph application permission GroupMember.Read.All, with admin consent granted in the tenant."
        }
    }
}

/// `Retry-After` (seconds or an HTTP date), or else Okta's `X-Rate-Limit-Reset` (the Unix
/// time at which the limit resets, measured against the answer's `Date` when it has one).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(wait) = text("retry-after").and_then(crate::clerk::parse_retry_after) {
        return Some(wait);
    }
    let reset: u64 = text("x-rate-limit-reset")?.trim().parse().ok()?;
    let now = text("date")
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or_else(std::time::SystemTime::now)
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// The target of the `rel="next"` link among every `Link` header (one per link, or several
/// joined by commas).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(links)
        .find(|(_, rel)| rel.split_whitespace().any(|rel| rel == "next"))
        .map(|(target, _)| target.to_owned())
}

/// `<target>; rel="next", <target>; rel="self"` → (target, rel) pairs.
fn links(value: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(length) = rest[start..].find('>') else {
            break;
        };
        let target = &rest[start + 1..start + length];
        let after = &rest[start + length + 1..];
        let parameters = after.split(['<']).next().unwrap_or_default();
        let rel = parameters
            .split(';')
            .filter_map(|parameter| parameter.trim().strip_prefix("rel="))
            .map(|rel| rel.trim_end_matches(',').trim().trim_matches('"'))
            .next()
            .unwrap_or_default();
        found.push((target, rel));
        rest = after;
    }
    found
}

/// Parses a configured URL: https, or plain http to a loopback host only.
pub(crate) fn parse_url(
    directory: &str,
    setting: &str,
    value: &str,
) -> Result<Url, DirectoryError> {
    let bad = |detail: String| DirectoryError::Config {
        directory: directory.to_owned(),
        detail,
    };
    let url =
        Url::parse(value.trim()).map_err(|_| bad(format!("{setting} `{value}` is not a URL")))?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(bad(format!(
            "{setting} `{value}` uses plain http to a host that is not loopback; credentials would travel in clear (use https)"
        ))),
        _ => Err(bad(format!("{setting} `{value}` is not an http(s) URL"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `next` (a next page the directory gave) is on the same scheme, host and port as
/// `base`: the credentials go nowhere else.
pub(crate) fn same_origin(base: &Url, next: &Url) -> bool {
    base.origin() == next.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_separate_and_joined_link_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            "link",
            HeaderValue::from_static(
                r#"<https://x.okta.com/api/v1/groups/00g1/users?limit=200>; rel="self""#,
            ),
        );
        headers.append(
            "link",
            HeaderValue::from_static(
                r#"<https://x.okta.com/api/v1/groups/00g1/users?after=00u9&limit=200>; rel="next""#,
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x.okta.com/api/v1/groups/00g1/users?after=00u9&limit=200")
        );
        let mut joined = HeaderMap::new();
        joined.insert(
            "link",
            HeaderValue::from_static(r#"<https://a/1>; rel="self", <https://a/2>; rel="next""#),
        );
        assert_eq!(next_link(&joined).as_deref(), Some("https://a/2"));
        let mut last = HeaderMap::new();
        last.insert(
            "link",
            HeaderValue::from_static(r#"<https://a/1>; rel="self""#),
        );
        assert_eq!(next_link(&last), None);
    }

    #[test]
    fn oktas_rate_limit_reset_is_read_against_the_answers_date() {
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("1700000030"));
        let date =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        headers.insert("date", HeaderValue::from_str(&date).unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(parse_url("d", "url", "http://127.0.0.1:9/okta").is_ok());
        assert!(parse_url("d", "url", "https://example.okta.com").is_ok());
        let error = parse_url("d", "url", "http://example.okta.com").unwrap_err();
        assert!(error.to_string().contains("in clear"), "{error}");
        assert!(parse_url("d", "url", "not a url").is_err());
        assert!(parse_url("d", "url", "ftp://example.com").is_err());
    }
}
