//! The simulator's HTTP server: start and stop, the shared state behind the handlers, and the
//! middleware that checks the headers, applies the knobs and faults, and logs each request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Map, json};

use super::faults::{Fault, FaultKind, broken_body, take_fault};
use super::limits::{Limiter, RateLimitModel};
use super::state::{LoggedRequest, SimMembership, SimState, SimUser, now_ms};
use crate::clerk::{API_VERSION, RateLimit};

/// How the simulator behaves beyond the API itself.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Added before every answer.
    pub latency: Duration,
    /// Requests allowed per period, counted as `rate_limit_model` says; over it, 429 with
    /// `Retry-After` in whole seconds.
    pub rate_limit: Option<RateLimit>,
    /// How `rate_limit` counts (default: a full bucket, which may be spent at once).
    pub rate_limit_model: RateLimitModel,
    /// The probability (0..=1) that a request is answered 500 before anything is done.
    pub fail_rate: f64,
    /// Organizations (by ID) busy with other clients: before every membership listing request
    /// (the instance's or an organization's), each loses its oldest membership and gains a new
    /// member, so offsets shift while the total stays the same — a busy live instance.
    pub churn: Vec<String>,
    /// Invitation requests (single or bulk) allowed per hour, as Clerk's own invitation
    /// limits; over it, 429 with `Retry-After` until the hour ends.
    pub invitation_limit: Option<u32>,
    /// Where to send Svix-signed events after each write, as Clerk does.
    pub webhook: Option<super::webhooks::SimWebhook>,
}

pub(super) struct Inner {
    pub(super) state: SimState,
    pub(super) log: Vec<LoggedRequest>,
    pub(super) next_id: u64,
    pub(super) faults: Vec<Fault>,
    /// (organization ID, admins) after every successful write.
    pub(super) admin_history: Vec<(String, usize)>,
    pub(super) started: std::time::Instant,
    /// Whether `state.memberships` is in creation order (the listing's order).
    pub(super) sorted: bool,
    /// Members added by churn so far.
    pub(super) churned: u64,
    /// When each invitation request of the last hour arrived (since `started`).
    pub(super) invitation_requests: Vec<Duration>,
}

impl Inner {
    /// A creation time for a new membership: now (Unix ms), as Clerk stamps it, and after
    /// every existing one.
    pub(super) fn next_created_at(&self) -> i64 {
        let latest = self.state.memberships.last().map_or(0, |m| m.created_at);
        let invited = self.state.invitations.last().map_or(0, |i| i.created_at);
        now_ms().max(latest.max(invited) + 1)
    }

    /// One step of churn in each busy organization: its oldest membership leaves, a new
    /// member joins.
    fn churn(&mut self, organizations: &[String]) {
        for organization in organizations {
            if let Some(oldest) = self
                .state
                .memberships
                .iter()
                .position(|m| &m.organization_id == organization)
            {
                self.state.memberships.remove(oldest);
            }
            self.churned += 1;
            let user_id = format!("user_churn{}", self.churned);
            self.state.users.push(SimUser {
                id: user_id.clone(),
                emails: vec![format!("churn{}@example.com", self.churned)],
            });
            self.state.reindex();
            let created_at = self.next_created_at();
            self.state.created(&user_id, created_at);
            let id = self.next_id;
            self.next_id += 1;
            self.state.memberships.push(SimMembership {
                id: format!("orgmem_sim{id}"),
                organization_id: organization.clone(),
                user_id,
                role: "org:member".into(),
                public_metadata: Map::new(),
                private_metadata: Map::new(),
                created_at,
            });
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    address: SocketAddr,
    key: String,
    inner: Arc<Mutex<Inner>>,
    in_flight: Arc<InFlight>,
    server: tokio::task::JoinHandle<()>,
}

/// Requests being handled now, and the most at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
pub(super) struct Shared {
    pub(super) key: String,
    pub(super) inner: Arc<Mutex<Inner>>,
    pub(super) options: Arc<SimOptions>,
    pub(super) limiter: Option<Arc<Limiter>>,
    in_flight: Arc<InFlight>,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Simulator {
    /// Starts a simulator on a free loopback port, seeded with `state`, accepting `key`.
    pub async fn start(state: SimState, key: &str) -> std::io::Result<Simulator> {
        Self::start_with(state, key, SimOptions::default()).await
    }

    /// Starts a simulator on a free loopback port with these knobs.
    pub async fn start_with(
        state: SimState,
        key: &str,
        options: SimOptions,
    ) -> std::io::Result<Simulator> {
        Self::start_on(
            "127.0.0.1:0".parse().expect("a loopback address"),
            state,
            key,
            options,
        )
        .await
    }

    /// Starts a simulator on `address`.
    pub async fn start_on(
        address: SocketAddr,
        state: SimState,
        key: &str,
        options: SimOptions,
    ) -> std::io::Result<Simulator> {
        let next_id = state.memberships.len() as u64 + 1;
        let inner = Arc::new(Mutex::new(Inner {
            state,
            log: Vec::new(),
            next_id,
            faults: Vec::new(),
            admin_history: Vec::new(),
            started: std::time::Instant::now(),
            sorted: false,
            churned: 0,
            invitation_requests: Vec::new(),
        }));
        let limiter = options
            .rate_limit
            .map(|rate| Arc::new(Limiter::new(rate, options.rate_limit_model)));
        let in_flight = Arc::new(InFlight::default());
        let shared = Shared {
            key: key.to_owned(),
            inner: inner.clone(),
            options: Arc::new(options),
            limiter,
            in_flight: in_flight.clone(),
        };
        let app = super::endpoints::router()
            .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Simulator {
            address,
            key: key.to_owned(),
            inner,
            in_flight,
            server,
        })
    }

    /// The API base URL to give membersync (`http://127.0.0.1:PORT/v1`).
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// A copy of the instance as it is now.
    pub fn state(&self) -> SimState {
        self.lock().state.clone()
    }

    /// Changes the instance directly (drift, races).
    pub fn mutate(&self, change: impl FnOnce(&mut SimState)) {
        let mut inner = self.lock();
        change(&mut inner.state);
        inner.state.reindex();
        inner.sorted = false;
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Forgets the requests answered so far (and the admin history).
    pub fn clear_requests(&self) {
        let mut inner = self.lock();
        inner.log.clear();
        inner.admin_history.clear();
    }

    /// Adds a scripted fault; faults are tried in the order they were added.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every scripted fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// (organization ID, number of `org:admin` members) after every successful write.
    pub fn admin_history(&self) -> Vec<(String, usize)> {
        self.lock().admin_history.clone()
    }

    /// The most requests handled at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.in_flight.peak.load(Ordering::Relaxed)
    }

    /// The address the simulator listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errors": [{ "code": code, "message": message, "long_message": message, "meta": {} }],
        "clerk_trace_id": "sim-trace"
    });
    (status, axum::Json(body)).into_response()
}

/// Counts a request in flight until dropped.
struct Counted(Arc<InFlight>);

impl Counted {
    fn new(in_flight: &Arc<InFlight>) -> Counted {
        let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
        in_flight.peak.fetch_max(now, Ordering::SeqCst);
        Counted(in_flight.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Authentication, API version, the knobs and faults, and the request log.
async fn guard(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _counted = Counted::new(&shared.in_flight);
    let received = std::time::Instant::now();
    let at = shared
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .started
        .elapsed();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    if !shared.options.churn.is_empty() && method == "GET" && path.ends_with("memberships") {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.churn(&shared.options.churn);
    }
    let response = match refusal(&shared, request.headers()) {
        Some(refused) => refused,
        None => match take_fault(&shared, &method, &path) {
            None => next.run(request).await,
            Some(fault) => with_fault(&shared, fault, request, next).await,
        },
    };
    let status = response.status().as_u16();
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    if method != "GET" && response.status().is_success() {
        record_admins(&mut inner, &path);
        if let Some(webhook) = &shared.options.webhook
            && let Some(event) = super::webhooks::event_for(&inner.state, &method, &path)
        {
            inner.next_id += 1;
            super::webhooks::send(webhook, inner.next_id, event);
        }
    }
    // The rehearsal's traffic, one line per request.
    tracing::info!(
        method = %method,
        path = %path,
        query = %query,
        status,
        latency_ms = received.elapsed().as_secs_f64() * 1000.0,
        "served"
    );
    inner.log.push(LoggedRequest {
        method,
        path,
        query,
        route,
        status,
        at,
    });
    response
}

/// The answer to a request refused before it is handled: a wrong key (401), a missing API
/// version (400), over the rate limit (429 with `Retry-After`), or a `--fail-rate` failure.
fn refusal(shared: &Shared, headers: &axum::http::HeaderMap) -> Option<Response> {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", shared.key));
    if !authorized {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "The provided secret key is invalid.",
        ));
    }
    if let Err(refused) = check_version(headers.get("clerk-api-version")) {
        return Some(refused);
    }
    if let Some(limiter) = &shared.limiter
        && let Err(retry_after) = limiter.check()
    {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests, retry later.",
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(retry_after),
        );
        return Some(response);
    }
    let fail_rate = shared.options.fail_rate;
    if fail_rate > 0.0 && rand::rng().random_bool(fail_rate.clamp(0.0, 1.0)) {
        return Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Simulated failure (--fail-rate).",
        ));
    }
    None
}

/// Clerk serves dated API versions: any well-formed date (`YYYY-MM-DD`) up to the version of
/// the shipped API description is answered as that version; a missing, malformed or later
/// version is refused with 400 `api_version_invalid`.
fn check_version(header: Option<&axum::http::HeaderValue>) -> Result<(), Response> {
    let refuse = |message: &str| {
        Err(error(
            StatusCode::BAD_REQUEST,
            "api_version_invalid",
            message,
        ))
    };
    let Some(version) = header.map(|v| v.to_str().unwrap_or_default()) else {
        return refuse("The Clerk-API-Version header is missing.");
    };
    let date = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(asked) = time::Date::parse(version, date) else {
        return refuse(&format!(
            "`{version}` is not an API version; versions are dates such as {API_VERSION}."
        ));
    };
    match time::Date::parse(API_VERSION, date) {
        Ok(newest) if asked <= newest => Ok(()),
        _ => refuse(&format!(
            "API version {version} is not available; the newest is {API_VERSION}."
        )),
    }
}

/// Handles a request as a scripted fault says.
async fn with_fault(
    shared: &Shared,
    fault: FaultKind,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let status_of =
        |status: u16| StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match fault {
        FaultKind::Before { status, code } => error(status_of(status), &code, "Simulated fault."),
        FaultKind::After { status } => {
            let _ = next.run(request).await;
            error(
                status_of(status),
                "internal_clerk_error",
                "Simulated fault after the request took effect.",
            )
        }
        FaultKind::Drop { applied } => {
            if applied {
                let _ = next.run(request).await;
            }
            broken_body()
        }
        FaultKind::Delay(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        FaultKind::Malformed => {
            let _ = next.run(request).await;
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"data\": [",
            )
                .into_response()
        }
        FaultKind::Stall => std::future::pending().await,
        FaultKind::Race(hook) => {
            {
                let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
                (hook.0)(&mut inner.state);
                inner.state.reindex();
                inner.sorted = false;
            }
            next.run(request).await
        }
    }
}

/// Notes the admin count of the organization a write touched.
fn record_admins(inner: &mut Inner, path: &str) {
    let mut segments = path.trim_start_matches("/v1/").split('/');
    if segments.next() != Some("organizations") {
        return;
    }
    let Some(org) = segments.next() else { return };
    let Some(id) = inner.state.organization(org).map(|o| o.id.clone()) else {
        return;
    };
    let admins = inner
        .state
        .memberships
        .iter()
        .filter(|m| m.organization_id == id && m.role == "org:admin")
        .count();
    inner.admin_history.push((id, admins));
}
