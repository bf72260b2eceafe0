//! The Clerk Backend API client: the only module that speaks HTTP.
//!
//! Every request goes through one [`Pacer`](crate::clerk::Pacer) (rate limit, requests in flight,
//! 429 gate) and one retry policy, carries `Authorization: Bearer`, `Clerk-API-Version` and a
//! `membersync/<version>` User-Agent, and percent-encodes its path segments.

mod authorization;
mod budget;
mod domains;
mod endpoints;
mod error;
mod invitations;
mod learning;
pub mod models;
mod organizations;
mod pacing;
mod read;
mod request;
mod secret;
mod shared;
mod stats;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

pub(crate) use authorization::invited_by_role_set;
pub use authorization::{
    Authorization, Permission, Role, RoleSetDetails, RoleSetRole, read_authorization,
};
pub(crate) use budget::RetryBudget;
pub use domains::{OrganizationDomains, read_domains};
pub use error::{
    ClerkError, LONGEST_OWN_LIMIT_WAIT, NOT_SENT_DEFERRED, NOT_SENT_OUT_OF_RETRIES,
    NOT_SENT_SHUTTING_DOWN, NOT_SENT_STOPPED, RetryClass, classify,
};
pub(crate) use invitations::{pending_invitations, read_invitations};
pub use models::{
    Domain, DomainPage, ErrorBody, ErrorItem, Invitation, InvitationPage, Membership,
    MembershipPage, Organization, OrganizationPage, RolePage, RoleSet, User,
};
pub(crate) use organizations::{allowed_roles, list_every_organization, organization_id};
pub use pacing::{Pacer, RateLimit, RateLimitError};
pub use read::{ListingStrategy, LiveState, read_memberships, resolve_emails};
pub(crate) use read::{OrgLookup, read_own_listings, resolve_organizations};
use request::Request;
pub use secret::{SecretKey, SecretKeyError};
pub(crate) use shared::Shared;
use stats::InFlight;
pub use stats::StatsSnapshot;
pub(crate) use transport::Cause;
use transport::error_chain;

/// The Backend API version membersync is written against (the shipped spec).
pub const API_VERSION: &str = "2026-05-12";
/// The largest page Clerk serves.
pub(crate) const PAGE_LIMIT: u64 = 500;
/// The most values one filter parameter accepts (`email_address`, `organization_id`).
pub(crate) const FILTER_LIMIT: usize = 100;

/// How the client is set up.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_url: String,
    pub rate_limit: RateLimit,
    pub concurrency: u32,
    /// Per request (per attempt).
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: usize,
    /// The longest single wait between attempts (Retry-After is honoured up to `max_pause`).
    pub max_backoff: Duration,
    pub max_pause: Duration,
    /// Once set (the daemon's SIGTERM), no new request starts; those in flight finish.
    pub shutdown: Arc<AtomicBool>,
}

impl ClientConfig {
    pub fn new(
        api_url: impl Into<String>,
        rate_limit: RateLimit,
        concurrency: u32,
    ) -> ClientConfig {
        ClientConfig {
            api_url: api_url.into(),
            rate_limit,
            concurrency,
            timeout: Duration::from_secs(30),
            // The retry budget bounds the retries of a run; this, one request's.
            max_attempts: 8,
            max_backoff: Duration::from_secs(20),
            max_pause: Duration::from_secs(120),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The API URL does not parse.
    #[error("--api-url `{0}` is not a URL")]
    BadUrl(String),
    /// Plain http to a host that is not loopback: the key would travel in clear.
    #[error(
        "--api-url `{0}` uses plain http to a host that is not loopback; the secret key would travel in clear (use https)"
    )]
    Insecure(String),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// Counters of requests sent, for reports, tests and benchmarks ([`Client::snapshot`]).
#[derive(Debug, Default)]
pub(crate) struct RequestStats {
    pub sent: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    /// Retries after transient failures (5xx, timeouts, dropped connections): what the retry
    /// budget pays for.
    pub transient_retries: AtomicU64,
    /// Requests sent whose answer is not in yet.
    pub in_flight: AtomicU64,
}

impl RequestStats {
    fn record(&self, endpoint: &'static str, status: u16) {
        metrics::counter!(
            crate::telemetry::names::API_REQUESTS,
            "endpoint" => endpoint,
            "status" => status.to_string()
        )
        .increment(1);
    }
}

/// An answer from Clerk, read whole.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    /// Its `Date` header, in Unix milliseconds.
    served_at: Option<i64>,
    bytes: bytes::Bytes,
}

/// One failed attempt, with what the retry policy needs to know.
struct Failure {
    error: ClerkError,
    class: RetryClass,
    retry_after: Option<Duration>,
}

/// Why a client sends nothing more ([`Client::halted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// Clerk refused the secret key (401/403).
    Stopped,
    /// An interrupt or shutdown was asked for.
    ShuttingDown,
    /// The retry budget could not pay for a retry.
    OutOfRetries,
}

/// The Clerk Backend API client, shared by every task of a run.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: SecretKey,
    config: ClientConfig,
    pacer: Arc<Pacer>,
    shared: Shared,
    stats: RequestStats,
    stopped: AtomicBool,
    /// Set once the retry budget could not pay for a retry of this run.
    out_of_retries: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key", &self.key)
            .finish()
    }
}

impl Client {
    /// A client with its own pacer and retry budget.
    pub fn new(config: ClientConfig, key: SecretKey) -> Result<Client, ConfigError> {
        let shared = Shared::new(config.rate_limit, config.concurrency);
        Client::sharing(config, key, shared)
    }

    /// A client that paces and spends retries with the other clients of `shared`; its own
    /// key, counters, and stop flags (a refused key, a spent budget stop this client's run).
    pub fn sharing(
        config: ClientConfig,
        key: SecretKey,
        shared: Shared,
    ) -> Result<Client, ConfigError> {
        let base = Url::parse(config.api_url.trim_end_matches('/'))
            .map_err(|_| ConfigError::BadUrl(config.api_url.clone()))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => return Err(ConfigError::Insecure(config.api_url.clone())),
            _ => return Err(ConfigError::BadUrl(config.api_url.clone())),
        }
        if base.cannot_be_a_base() {
            return Err(ConfigError::BadUrl(config.api_url.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("membersync/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(config.concurrency as usize)
            .build()
            .map_err(|error| ConfigError::Http(error.to_string()))?;
        Ok(Client {
            http,
            base,
            key,
            pacer: shared.pacer.clone(),
            shared,
            config,
            stats: RequestStats::default(),
            stopped: AtomicBool::new(false),
            out_of_retries: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What this client shares with the other clients of the process.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The API URL this client talks to, without a trailing slash.
    pub fn api_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Whether the key is a live (production) key.
    pub fn has_live_key(&self) -> bool {
        self.key.is_live()
    }

    /// Whether a 401/403 stopped the run.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// The retry budget this client spends (see [`RetryBudget`]), shared with the other
    /// clients of its [`Shared`].
    pub(crate) fn retry_budget(&self) -> &RetryBudget {
        &self.shared.budget
    }

    /// Whether this run could not pay for a retry: no new request starts.
    pub fn is_out_of_retries(&self) -> bool {
        self.out_of_retries.load(Ordering::SeqCst)
    }

    /// Pays for a retry after a transient failure (twice as much when no answer came); `false`
    /// (and the run stops sending) once the budget cannot pay.
    fn take_retry(&self, failure: &Failure) -> bool {
        let cost = match failure.error {
            ClerkError::Transport { .. } => budget::NO_ANSWER_RETRY_COST,
            _ => budget::RETRY_COST,
        };
        if self.retry_budget().take(cost) {
            self.stats.transient_retries.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if !self.out_of_retries.swap(true, Ordering::SeqCst) {
            metrics::counter!(crate::telemetry::names::RETRY_BUDGET_EXHAUSTED).increment(1);
            tracing::error!(
                retries = self.stats.transient_retries.load(Ordering::Relaxed),
                retry_tokens = self.retry_budget().tokens(),
                "Clerk kept failing: the retry budget is spent; the remaining requests are not sent"
            );
        }
        false
    }

    /// Whether shutdown was asked for: no new request starts.
    pub fn is_closing(&self) -> bool {
        self.config.shutdown.load(Ordering::SeqCst)
    }

    /// Why nothing more may start, if so: the key was refused, membersync is shutting down,
    /// or the retry budget is spent. The one check before a change starts and before each
    /// request goes out.
    pub fn halted(&self) -> Option<Halt> {
        if self.is_stopped() {
            Some(Halt::Stopped)
        } else if self.is_closing() {
            Some(Halt::ShuttingDown)
        } else if self.is_out_of_retries() {
            Some(Halt::OutOfRetries)
        } else {
            None
        }
    }

    /// The client's counters now, the requests in flight and the pace it has learned.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            in_flight: self.stats.in_flight(),
            pace_per_second: self.pacer.rate(),
            ..self.stats.snapshot()
        }
    }

    fn url(&self, segments: &[&str], query: &[(&'static str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Each segment is percent-encoded by `url`.
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// Sends a request under the pacer with the retry policy, and decodes the answer.
    async fn send<T: DeserializeOwned>(&self, request: Request<'_>) -> Result<T, ClerkError> {
        self.send_dated(request).await.map(|(value, _)| value)
    }

    /// The same, with when Clerk answered: its `Date` header, in Unix milliseconds (whole
    /// seconds), if it sent one.
    async fn send_dated<T: DeserializeOwned>(
        &self,
        request: Request<'_>,
    ) -> Result<(T, Option<i64>), ClerkError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.max_attempts.saturating_sub(1));
        let max_pause = self.config.max_pause;
        let attempts = AtomicU32::new(0);
        let attempt = || {
            let number = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            self.attempt::<T>(&request, number)
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|failure: &Failure| match failure.class {
                RetryClass::Permanent => false,
                _ if self.is_stopped() || self.is_closing() => false,
                RetryClass::Throttled => true,
                // The budget pays only for a retry that will be made.
                RetryClass::Transient => {
                    (attempts.load(Ordering::Relaxed) as usize) < self.config.max_attempts
                        && self.take_retry(failure)
                }
            })
            .adjust(|failure: &Failure, delay: Option<Duration>| {
                // `None` means the attempts are used up.
                let delay = delay?;
                Some(match failure.retry_after {
                    Some(retry_after) => retry_after.min(max_pause),
                    // Full jitter: a random wait between zero and the exponential delay.
                    None => Duration::from_micros(
                        rand::rng().random_range(0..=delay.as_micros() as u64),
                    ),
                })
            })
            .notify(|failure: &Failure, delay: Duration| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::telemetry::names::API_RETRIES).increment(1);
                tracing::debug!(error = %failure.error, ?delay, "retrying");
            })
            .await
            .map_err(|failure| failure.error)
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        number: u32,
    ) -> Result<(T, Option<i64>), Failure> {
        let permanent = |error| Failure {
            error,
            class: RetryClass::Permanent,
            retry_after: None,
        };
        if self.is_stopped() {
            return Err(permanent(ClerkError::Stopped {
                context: request.context.clone(),
            }));
        }
        let url = self.url(request.segments, &request.query);
        // A write waits while this process reads an instance-wide listing (see `OwnWrites`).
        let _writing = match request.method {
            Method::GET => None,
            _ => Some(self.shared.own_writes.writing().await),
        };
        let permit = self.pacer.acquire().await;
        let sent = tokio::time::Instant::now();
        if let Some(error) = self.not_to_send(request) {
            return Err(permanent(error));
        }
        let started = std::time::Instant::now();
        let Answer {
            status,
            retry_after,
            served_at,
            bytes,
        } = self.exchange(request, &url, number).await?;
        // The answer is in: the slot in flight is free while it is decoded.
        drop(permit);
        self.stats.record(request.endpoint, status);
        if status != 429 {
            self.pacer.accepted(sent);
        }
        tracing::debug!(
            method = %request.method,
            path = url.path(),
            status,
            attempt = number,
            latency_ms = started.elapsed().as_millis() as u64,
            "clerk request"
        );
        if (200..300).contains(&status) {
            self.retry_budget().succeeded();
            return serde_json::from_slice(&bytes)
                .map(|value| (value, served_at))
                .map_err(|error| {
                    permanent(ClerkError::Decode {
                        context: request.context.clone(),
                        status,
                        detail: error.to_string(),
                    })
                });
        }
        Err(self.refused(request, status, retry_after, sent, &bytes))
    }

    /// Classifies an error answer: a refused key stops the run; a 429 pauses every request
    /// until `Retry-After` and teaches the pacer; the rest is retried or not by its class.
    fn refused(
        &self,
        request: &Request<'_>,
        status: u16,
        retry_after: Option<Duration>,
        sent: tokio::time::Instant,
        bytes: &[u8],
    ) -> Failure {
        let permanent = |error| Failure {
            error,
            class: RetryClass::Permanent,
            retry_after: None,
        };
        let body: ErrorBody = serde_json::from_slice(bytes).unwrap_or_else(|_| ErrorBody {
            errors: vec![ErrorItem {
                code: String::new(),
                message: format!(
                    "non-JSON error body: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
                ..ErrorItem::default()
            }],
            clerk_trace_id: None,
        });
        let quota = body.errors.iter().any(|e| e.code.contains("quota"));
        if status == 401 || (status == 403 && !quota) {
            self.stopped.store(true, Ordering::SeqCst);
            let detail = body.describe();
            return permanent(ClerkError::Unauthorized {
                context: request.context.clone(),
                status,
                detail,
                kind: self.key.kind(),
                api_url: self.base.to_string(),
            });
        }
        let class = classify(status, &body);
        if class == RetryClass::Throttled && request.own_limit {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::telemetry::names::API_THROTTLED).increment(1);
            let wait = retry_after.unwrap_or(Duration::from_secs(1));
            if wait > LONGEST_OWN_LIMIT_WAIT {
                return permanent(ClerkError::Deferred {
                    context: request.context.clone(),
                    retry_after: wait,
                });
            }
            return Failure {
                error: ClerkError::Api {
                    context: request.context.clone(),
                    status,
                    body,
                },
                class,
                retry_after: Some(wait),
            };
        }
        if class == RetryClass::Throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::telemetry::names::API_THROTTLED).increment(1);
            let pause = retry_after
                .unwrap_or(Duration::from_secs(1))
                .min(self.config.max_pause);
            self.pacer.throttled(sent, pause);
        }
        Failure {
            error: ClerkError::Api {
                context: request.context.clone(),
                status,
                body,
            },
            class,
            // The pause gate already holds every request; the retry itself may go right after.
            retry_after: (class == RetryClass::Throttled).then_some(Duration::ZERO),
        }
    }

    /// Why a request that has its turn must not go out after all (see [`Client::halted`]).
    fn not_to_send(&self, request: &Request<'_>) -> Option<ClerkError> {
        let context = request.context.clone();
        self.halted().map(|halt| match halt {
            Halt::Stopped => ClerkError::Stopped { context },
            Halt::ShuttingDown => ClerkError::ShuttingDown { context },
            Halt::OutOfRetries => ClerkError::OutOfRetries { context },
        })
    }

    /// Sends one request and reads the whole answer; no answer is a transient failure.
    async fn exchange(
        &self,
        request: &Request<'_>,
        url: &Url,
        number: u32,
    ) -> Result<Answer, Failure> {
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .bearer_auth(self.key.expose())
            .header("Clerk-API-Version", API_VERSION)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        if request.method != Method::GET {
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
        }
        let _in_flight = InFlight::start(&self.stats.in_flight);
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => {
                self.stats.record(request.endpoint, 0);
                tracing::debug!(method = %request.method, path = url.path(), attempt = number, error = %error_chain(&error), "request failed");
                return Err(self.transport_failure(request, &error));
            }
        };
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
        };
        let served_at = header(reqwest::header::DATE)
            .and_then(|value| httpdate::parse_http_date(value).ok())
            .and_then(|when| when.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|since| since.as_millis() as i64);
        let retry_after = header(reqwest::header::RETRY_AFTER).and_then(parse_retry_after);
        match response.bytes().await {
            Ok(bytes) => Ok(Answer {
                status,
                retry_after,
                served_at,
                bytes,
            }),
            Err(error) => {
                self.stats.record(request.endpoint, 0);
                Err(self.transport_failure(request, &error))
            }
        }
    }

    /// No answer: the cause (read from the error's sources) and the host make the message;
    /// a certificate the machine does not trust is not retried, the rest is.
    fn transport_failure(&self, request: &Request<'_>, error: &reqwest::Error) -> Failure {
        let cause = Cause::of(error);
        let url = error.url().unwrap_or(&self.base);
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => url.as_str().to_owned(),
        };
        Failure {
            error: ClerkError::Transport {
                context: request.context.clone(),
                detail: cause.describe(&host, self.config.timeout),
            },
            class: if cause.is_retryable() {
                RetryClass::Transient
            } else {
                RetryClass::Permanent
            },
            retry_after: None,
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(parsed > Duration::from_secs(25) && parsed <= Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let config = |url: &str| ClientConfig::new(url, RateLimit::for_key(false), 1);
        let key = || SecretKey::new("sk_test_x");
        assert!(Client::new(config("http://127.0.0.1:8080/v1"), key()).is_ok());
        assert!(Client::new(config("http://localhost/v1"), key()).is_ok());
        assert!(Client::new(config("https://api.clerk.com/v1"), key()).is_ok());
        assert!(matches!(
            Client::new(config("http://api.clerk.com/v1"), key()),
            Err(ConfigError::Insecure(_))
        ));
        assert!(matches!(
            Client::new(config("not a url"), key()),
            Err(ConfigError::BadUrl(_))
        ));
    }

    #[test]
    fn path_segments_and_query_values_are_percent_encoded() {
        let client = Client::new(
            ClientConfig::new("https://api.clerk.com/v1/", RateLimit::for_key(false), 1),
            SecretKey::new("k"),
        )
        .unwrap();
        let url = client.url(
            &["organizations", "a/b c", "memberships"],
            &[("order_by", "+created_at".to_owned())],
        );
        assert_eq!(
            url.as_str(),
            "https://api.clerk.com/v1/organizations/a%2Fb%20c/memberships?order_by=%2Bcreated_at"
        );
    }
}
