//! A stateful Clerk Backend API simulator on a real HTTP server (127.0.0.1).
//!
//! It serves the endpoints membersync uses, with Clerk's status codes and error bodies
//! (400 `already_a_member_in_organization`, 404 `resource_not_found`, 401), checks the
//! `Authorization` and `Clerk-API-Version` headers, and records every request so tests can
//! assert what was sent. Knobs make it behave like a real, imperfect service: latency, a rate
//! limit answered with 429 and `Retry-After`, random 5xx, and scripted [`Fault`]s (an error
//! before or after a write takes effect, a dropped connection, a slow or malformed answer, a
//! request that never gets an answer). It records the admin count of an organization after
//! every write, so tests can check that no moment left an organization without an admin.
//! The tests use it, and so do `membersync simulate` and `membersync demo`.

// Handler helpers return the error response to send as their `Err`; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clerk::{API_VERSION, RateLimit};
use crate::plan::metadata::apply_patch;

/// An organization in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOrganization {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// The role set the organization uses; `None`: the instance's organization roles.
    #[serde(default)]
    pub role_set_key: Option<String>,
}

/// A role set: the roles organizations with this key allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimRoleSet {
    pub key: String,
    pub roles: Vec<String>,
}

/// A user in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimUser {
    pub id: String,
    #[serde(default)]
    pub emails: Vec<String>,
}

/// A membership in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMembership {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: String,
    #[serde(default)]
    pub public_metadata: Map<String, Value>,
    #[serde(default)]
    pub private_metadata: Map<String, Value>,
    #[serde(default)]
    pub created_at: i64,
}

/// The whole simulated instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    #[serde(default)]
    pub organizations: Vec<SimOrganization>,
    #[serde(default)]
    pub users: Vec<SimUser>,
    #[serde(default)]
    pub memberships: Vec<SimMembership>,
    /// The instance's organization roles; empty means Clerk's defaults, `org:admin` and
    /// `org:member`.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub role_sets: Vec<SimRoleSet>,
    /// Lookups by organization ID or slug and by user ID, built on first use. Whoever changes
    /// `organizations` or `users` of a live simulator calls [`SimState::reindex`].
    #[serde(skip)]
    #[doc(hidden)]
    pub index: IndexCache,
}

/// Positions of organizations (by ID and by slug) and users (by ID).
#[derive(Debug, Default)]
struct Index {
    organizations: std::collections::HashMap<String, usize>,
    users: std::collections::HashMap<String, usize>,
}

/// The lookups' cache; opaque.
#[derive(Debug, Default)]
pub struct IndexCache(std::sync::OnceLock<Index>);

impl Clone for IndexCache {
    fn clone(&self) -> IndexCache {
        IndexCache::default()
    }
}

impl PartialEq for IndexCache {
    fn eq(&self, _: &IndexCache) -> bool {
        true
    }
}

impl SimState {
    /// The memberships of one organization as (user ID, role), sorted.
    pub fn roles_of(&self, organization_id: &str) -> Vec<(String, String)> {
        let mut roles: Vec<_> = self
            .memberships
            .iter()
            .filter(|m| m.organization_id == organization_id)
            .map(|m| (m.user_id.clone(), m.role.clone()))
            .collect();
        roles.sort();
        roles
    }

    /// The roles an organization allows.
    pub fn allowed_roles(&self, organization: &SimOrganization) -> Vec<String> {
        if let Some(key) = &organization.role_set_key
            && let Some(set) = self.role_sets.iter().find(|s| &s.key == key)
        {
            return set.roles.clone();
        }
        self.instance_roles()
    }

    fn instance_roles(&self) -> Vec<String> {
        if self.roles.is_empty() {
            vec!["org:admin".into(), "org:member".into()]
        } else {
            self.roles.clone()
        }
    }

    /// An empty instance whose organizations allow these roles.
    pub fn with_roles(roles: &[&str]) -> SimState {
        SimState {
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            ..SimState::default()
        }
    }

    /// Forgets the lookups (after `organizations` or `users` changed).
    pub fn reindex(&mut self) {
        self.index = IndexCache::default();
    }

    fn index(&self) -> &Index {
        self.index.0.get_or_init(|| {
            let mut index = Index::default();
            for (position, organization) in self.organizations.iter().enumerate() {
                index
                    .organizations
                    .entry(organization.slug.clone())
                    .or_insert(position);
            }
            // IDs win over slugs.
            for (position, organization) in self.organizations.iter().enumerate() {
                index
                    .organizations
                    .insert(organization.id.clone(), position);
            }
            for (position, user) in self.users.iter().enumerate() {
                index.users.insert(user.id.clone(), position);
            }
            index
        })
    }

    fn organization(&self, id_or_slug: &str) -> Option<&SimOrganization> {
        let position = *self.index().organizations.get(id_or_slug)?;
        self.organizations.get(position)
    }

    fn user(&self, id: &str) -> Option<&SimUser> {
        let position = *self.index().users.get(id)?;
        self.users.get(position)
    }
}

/// One request the simulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// When it arrived, since the simulator started.
    pub at: Duration,
}

impl LoggedRequest {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// How the simulator behaves beyond the API itself.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Added before every answer.
    pub latency: Duration,
    /// Requests allowed per period (a full bucket may be spent at once, as Clerk's window
    /// allows); over it, 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
    /// The probability (0..=1) that a request is answered 500 before anything is done.
    pub fail_rate: f64,
    /// Organizations (by ID) busy with other clients: before every membership listing request
    /// (the instance's or an organization's), each loses its oldest membership and gains a new
    /// member, so offsets shift while the total stays the same — a busy live instance.
    pub churn: Vec<String>,
}

/// A change to the instance made by a fault, as if another client raced membersync.
#[derive(Clone)]
pub struct StateHook(pub Arc<dyn Fn(&mut SimState) + Send + Sync>);

impl std::fmt::Debug for StateHook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("StateHook")
    }
}

/// What a scripted fault does to the request it matches.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status and Clerk error code; nothing is done.
    Before { status: u16, code: String },
    /// Do the request, then answer this status anyway (the client cannot know it worked).
    After { status: u16 },
    /// Close the connection before the answer is complete; with `applied`, after doing it.
    Drop { applied: bool },
    /// Wait this long before handling the request.
    Delay(Duration),
    /// Do the request and answer 200 with a body that is not valid JSON.
    Malformed,
    /// Never answer.
    Stall,
    /// Change the instance first (another client racing), then handle the request normally.
    Race(StateHook),
}

impl FaultKind {
    /// A race: `change` is applied to the instance just before the matched request.
    pub fn race(change: impl Fn(&mut SimState) + Send + Sync + 'static) -> FaultKind {
        FaultKind::Race(StateHook(Arc::new(change)))
    }
}

/// A scripted fault: which requests it matches, how many it lets through first, how many it
/// hits, and what it does.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `GET`, `POST`, … (`None`: any method; `"WRITE"`: any method but GET).
    pub method: Option<String>,
    /// A substring of the path (`None`: any path).
    pub path_contains: Option<String>,
    /// Matching requests let through before the fault starts.
    pub skip: usize,
    /// Matching requests the fault hits (`usize::MAX`: every one).
    pub times: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault hitting every request, once.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            method: None,
            path_contains: None,
            skip: 0,
            times: 1,
            kind,
        }
    }

    /// Only requests with this method (`"WRITE"`: POST, PATCH and DELETE) whose path contains
    /// `path` (empty: any path).
    pub fn on(mut self, method: &str, path: &str) -> Fault {
        self.method = Some(method.to_owned());
        self.path_contains = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    pub fn skip(mut self, skip: usize) -> Fault {
        self.skip = skip;
        self
    }

    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    pub fn always(self) -> Fault {
        self.times(usize::MAX)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_matches = match self.method.as_deref() {
            None => true,
            Some("WRITE") => method != "GET",
            Some(wanted) => wanted.eq_ignore_ascii_case(method),
        };
        method_matches
            && self
                .path_contains
                .as_deref()
                .is_none_or(|part| path.contains(part))
    }
}

struct Inner {
    state: SimState,
    log: Vec<LoggedRequest>,
    next_id: u64,
    faults: Vec<Fault>,
    /// (organization ID, admins) after every successful write.
    admin_history: Vec<(String, usize)>,
    started: std::time::Instant,
    /// Whether `state.memberships` is in creation order (the listing's order).
    sorted: bool,
    /// Members added by churn so far.
    churned: u64,
}

impl Inner {
    /// A creation time for a new membership: now (Unix ms), as Clerk stamps it, and after
    /// every existing one.
    fn next_created_at(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_millis() as i64)
            .unwrap_or_default();
        let latest = self.state.memberships.last().map_or(0, |m| m.created_at);
        now.max(latest + 1)
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
struct Shared {
    key: String,
    inner: Arc<Mutex<Inner>>,
    options: Arc<SimOptions>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    in_flight: Arc<InFlight>,
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
        }));
        let limiter = options.rate_limit.map(|rate| {
            let interval = (rate.period / rate.requests.get()).max(Duration::from_nanos(1));
            let quota = Quota::with_period(interval)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(rate.requests);
            Arc::new(RateLimiter::direct(quota))
        });
        let in_flight = Arc::new(InFlight::default());
        let shared = Shared {
            key: key.to_owned(),
            inner: inner.clone(),
            options: Arc::new(options),
            limiter,
            in_flight: in_flight.clone(),
        };
        let app = Router::new()
            .route("/v1/organization_memberships", get(list_instance))
            .route("/v1/organizations", get(list_organizations))
            .route("/v1/organizations/{org}", get(get_organization))
            .route(
                "/v1/organizations/{org}/memberships",
                get(list_organization).post(create),
            )
            .route(
                "/v1/organizations/{org}/memberships/{user}",
                patch(update_role).delete(delete),
            )
            .route(
                "/v1/organizations/{org}/memberships/{user}/metadata",
                patch(merge_metadata),
            )
            .route("/v1/users", get(list_users))
            .route("/v1/role_sets/{key}", get(get_role_set))
            .route("/v1/organization_roles", get(list_roles))
            .fallback(unknown)
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errors": [{ "code": code, "message": message, "long_message": message, "meta": {} }],
        "clerk_trace_id": "sim-trace"
    });
    (status, axum::Json(body)).into_response()
}

/// Takes the first scripted fault that matches this request, if any.
fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<FaultKind> {
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let fault = inner
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.matches(method, path))?;
    if fault.skip > 0 {
        fault.skip -= 1;
        return None;
    }
    fault.times = fault.times.saturating_sub(1);
    Some(fault.kind.clone())
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
    let at = shared
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .started
        .elapsed();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    let headers = request.headers();
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", shared.key));
    let versioned = headers
        .get("clerk-api-version")
        .and_then(|v| v.to_str().ok())
        == Some(API_VERSION);
    let throttled = shared
        .limiter
        .as_ref()
        .and_then(|limiter| limiter.check().err())
        .map(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            wait.as_secs() + 1
        });
    if !shared.options.churn.is_empty() && method == "GET" && path.ends_with("memberships") {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.churn(&shared.options.churn);
    }
    let random_failure = shared.options.fail_rate > 0.0
        && rand::rng().random_bool(shared.options.fail_rate.clamp(0.0, 1.0));
    let response = if !authorized {
        error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "The provided secret key is invalid.",
        )
    } else if !versioned {
        error(
            StatusCode::BAD_REQUEST,
            "api_version_invalid",
            "Missing or unsupported Clerk-API-Version header.",
        )
    } else if let Some(seconds) = throttled {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests, retry later.",
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds),
        );
        response
    } else if random_failure {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Simulated failure (--fail-rate).",
        )
    } else {
        match take_fault(&shared, &method, &path) {
            None => next.run(request).await,
            Some(FaultKind::Before { status, code }) => error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &code,
                "Simulated fault.",
            ),
            Some(FaultKind::After { status }) => {
                let _ = next.run(request).await;
                error(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "internal_clerk_error",
                    "Simulated fault after the request took effect.",
                )
            }
            Some(FaultKind::Drop { applied }) => {
                if applied {
                    let _ = next.run(request).await;
                }
                broken_body()
            }
            Some(FaultKind::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }
            Some(FaultKind::Malformed) => {
                let _ = next.run(request).await;
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    "{\"data\": [",
                )
                    .into_response()
            }
            Some(FaultKind::Stall) => std::future::pending().await,
            Some(FaultKind::Race(hook)) => {
                {
                    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
                    (hook.0)(&mut inner.state);
                    inner.state.reindex();
                    inner.sorted = false;
                }
                next.run(request).await
            }
        }
    };
    let status = response.status().as_u16();
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    if method != "GET" && response.status().is_success() {
        record_admins(&mut inner, &path);
    }
    inner.log.push(LoggedRequest {
        method,
        path,
        query,
        status,
        at,
    });
    response
}

/// A 200 whose body breaks off: the client sees the connection drop mid-answer.
fn broken_body() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
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

async fn unknown(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        &format!("{method} {uri} is not simulated"),
    )
}

/// Query pairs, repeated keys kept.
fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn one(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `limit` (1..=500, default 10) and `offset`; out-of-range values get a 422 like Clerk's.
fn paging(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
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

/// A membership as Clerk serializes it (`OrganizationMembership`), borrowed from the state so
/// that a page of 500 is written without building a JSON tree first.
#[derive(Serialize)]
struct MembershipOut<'a> {
    object: &'static str,
    id: &'a str,
    role: &'a str,
    permissions: [&'a str; 0],
    public_metadata: &'a Map<String, Value>,
    private_metadata: &'a Map<String, Value>,
    organization: OrganizationOut<'a>,
    public_user_data: UserOut<'a>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct OrganizationOut<'a> {
    object: &'static str,
    id: &'a str,
    slug: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct UserOut<'a> {
    user_id: &'a str,
    identifier: Option<&'a str>,
}

fn membership_out<'a>(state: &'a SimState, membership: &'a SimMembership) -> MembershipOut<'a> {
    let organization = state.organization(&membership.organization_id);
    let identifier = state
        .user(&membership.user_id)
        .and_then(|u| u.emails.first().map(String::as_str));
    MembershipOut {
        object: "organization_membership",
        id: &membership.id,
        role: &membership.role,
        permissions: [],
        public_metadata: &membership.public_metadata,
        private_metadata: &membership.private_metadata,
        organization: OrganizationOut {
            object: "organization",
            id: &membership.organization_id,
            slug: organization.map(|o| o.slug.as_str()),
            name: organization.map(|o| o.name.as_str()),
        },
        public_user_data: UserOut {
            user_id: &membership.user_id,
            identifier,
        },
        created_at: membership.created_at,
        updated_at: membership.created_at,
    }
}

fn membership_json(state: &SimState, membership: &SimMembership) -> Value {
    serde_json::to_value(membership_out(state, membership)).unwrap_or(Value::Null)
}

/// A page of memberships, written straight from the state.
#[derive(Serialize)]
struct PageOut<'a> {
    data: Vec<MembershipOut<'a>>,
    total_count: usize,
}

fn organization_json(organization: &SimOrganization, count: usize) -> Value {
    json!({
        "object": "organization",
        "id": organization.id,
        "slug": organization.slug,
        "name": organization.name,
        "members_count": count,
        "role_set_key": organization.role_set_key,
    })
}

fn page(
    state: &SimState,
    memberships: Vec<&SimMembership>,
    limit: usize,
    offset: usize,
) -> Response {
    let total_count = memberships.len();
    let data = memberships
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|m| membership_out(state, m))
        .collect();
    axum::Json(PageOut { data, total_count }).into_response()
}

fn sorted_by_creation(
    mut memberships: Vec<&SimMembership>,
    order_by: Option<String>,
) -> Vec<&SimMembership> {
    memberships.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if order_by.as_deref() == Some("-created_at") {
        memberships.reverse();
    }
    memberships
}

async fn list_instance(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let ascending = one(&pairs, "order_by").as_deref() != Some("-created_at");
    if ascending && !inner.sorted {
        // Sorted once, then kept in order: a page costs its 500 entries, not the instance.
        inner
            .state
            .memberships
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        inner.sorted = true;
    }
    let state = &inner.state;
    if ascending {
        // The usual case, without copying a million references per page.
        let data = state
            .memberships
            .iter()
            .skip(offset)
            .take(limit)
            .map(|m| membership_out(state, m))
            .collect();
        let total_count = state.memberships.len();
        return axum::Json(PageOut { data, total_count }).into_response();
    }
    let memberships =
        sorted_by_creation(state.memberships.iter().collect(), one(&pairs, "order_by"));
    page(state, memberships, limit, offset)
}

async fn list_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let users = all(&pairs, "user_id");
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(organization) = inner.state.organization(&org) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    let memberships = inner
        .state
        .memberships
        .iter()
        .filter(|m| {
            m.organization_id == organization.id && (users.is_empty() || users.contains(&m.user_id))
        })
        .collect();
    let memberships = sorted_by_creation(memberships, one(&pairs, "order_by"));
    page(&inner.state, memberships, limit, offset)
}

#[derive(Deserialize)]
struct CreateBody {
    user_id: String,
    role: String,
    #[serde(default)]
    public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<Map<String, Value>>,
}

async fn create(State(shared): State<Shared>, Path(org): Path<String>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<CreateBody>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "user_id and role are required",
        );
    };
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(organization) = inner.state.organization(&org).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        );
    };
    if let Err(response) = check_role(&inner.state, &organization, &body.role) {
        return response;
    }
    let organization_id = organization.id;
    if inner.state.user(&body.user_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "User not found",
        );
    }
    if inner
        .state
        .memberships
        .iter()
        .any(|m| m.organization_id == organization_id && m.user_id == body.user_id)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "already_a_member_in_organization",
            "The user is already a member of this organization.",
        );
    }
    let id = inner.next_id;
    inner.next_id += 1;
    let membership = SimMembership {
        id: format!("orgmem_sim{id}"),
        organization_id,
        user_id: body.user_id,
        role: body.role,
        public_metadata: body.public_metadata.unwrap_or_default(),
        private_metadata: body.private_metadata.unwrap_or_default(),
        created_at: inner.next_created_at(),
    };
    let response = membership_json(&inner.state, &membership);
    if inner
        .state
        .memberships
        .last()
        .is_some_and(|last| (last.created_at, &last.id) > (membership.created_at, &membership.id))
    {
        inner.sorted = false;
    }
    inner.state.memberships.push(membership);
    axum::Json(response).into_response()
}

/// Refuses a role the organization does not allow, as Clerk does.
fn check_role(
    state: &SimState,
    organization: &SimOrganization,
    role: &str,
) -> Result<(), Response> {
    if state.allowed_roles(organization).iter().any(|r| r == role) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            &format!("The role `{role}` does not exist in this organization."),
        ))
    }
}

/// Finds a membership by organization (ID or slug) and user, or answers 404.
fn find(state: &SimState, org: &str, user: &str) -> Result<usize, Response> {
    let organization_id = state
        .organization(org)
        .map(|o| o.id.clone())
        .unwrap_or_default();
    state
        .memberships
        .iter()
        .position(|m| m.organization_id == organization_id && m.user_id == user)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "Organization membership not found",
            )
        })
}

async fn update_role(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(role) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("role")?.as_str().map(str::to_owned))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "role is required",
        );
    };
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            if let Some(organization) = inner.state.organization(&org).cloned()
                && let Err(response) = check_role(&inner.state, &organization, &role)
            {
                return response;
            }
            inner.state.memberships[index].role = role;
            let response = membership_json(&inner.state, &inner.state.memberships[index]);
            axum::Json(response).into_response()
        }
        Err(response) => response,
    }
}

async fn delete(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            let membership = inner.state.memberships.remove(index);
            axum::Json(membership_json(&inner.state, &membership)).into_response()
        }
        Err(response) => response,
    }
}

async fn merge_metadata(
    State(shared): State<Shared>,
    Path((org, user)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_invalid",
            "a JSON object is required",
        );
    };
    if patch
        .keys()
        .any(|k| k != "public_metadata" && k != "private_metadata")
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_unknown",
            "only public_metadata and private_metadata",
        );
    }
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match find(&inner.state, &org, &user) {
        Ok(index) => {
            let membership = &mut inner.state.memberships[index];
            if let Some(Value::Object(part)) = patch.get("public_metadata") {
                apply_patch(&mut membership.public_metadata, part);
            }
            if let Some(Value::Object(part)) = patch.get("private_metadata") {
                apply_patch(&mut membership.private_metadata, part);
            }
            let response = membership_json(&inner.state, &inner.state.memberships[index]);
            axum::Json(response).into_response()
        }
        Err(response) => response,
    }
}

async fn list_users(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let emails: Vec<String> = all(&pairs, "email_address")
        .iter()
        .map(|e| e.to_lowercase())
        .collect();
    if emails.len() > 100 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "at most 100 email addresses",
        );
    }
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let users: Vec<Value> = inner
        .state
        .users
        .iter()
        .filter(|u| emails.is_empty() || u.emails.iter().any(|e| emails.contains(&e.to_lowercase())))
        .skip(offset)
        .take(limit)
        .map(|u| {
            let addresses: Vec<Value> = u
                .emails
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"object": "email_address", "id": format!("idn_{}_{i}", u.id), "email_address": e}))
                .collect();
            json!({"object": "user", "id": u.id, "primary_email_address_id": format!("idn_{}_0", u.id), "email_addresses": addresses})
        })
        .collect();
    axum::Json(Value::Array(users)).into_response()
}

async fn list_organizations(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let ids = all(&pairs, "organization_id");
    if ids.len() > 100 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "at most 100 organization IDs",
        );
    }
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let matching: Vec<&SimOrganization> = inner
        .state
        .organizations
        .iter()
        .filter(|o| wanted.is_empty() || wanted.contains(o.id.as_str()))
        .skip(offset)
        .take(limit)
        .collect();
    let total = if wanted.is_empty() {
        inner.state.organizations.len()
    } else {
        inner
            .state
            .organizations
            .iter()
            .filter(|o| wanted.contains(o.id.as_str()))
            .count()
    };
    // One pass over the memberships counts the members of every organization of the page.
    let mut counts: std::collections::HashMap<&str, usize> =
        matching.iter().map(|o| (o.id.as_str(), 0)).collect();
    for membership in &inner.state.memberships {
        if let Some(count) = counts.get_mut(membership.organization_id.as_str()) {
            *count += 1;
        }
    }
    let data: Vec<Value> = matching
        .iter()
        .map(|o| organization_json(o, counts[o.id.as_str()]))
        .collect();
    axum::Json(json!({"data": data, "total_count": total})).into_response()
}

async fn get_role_set(State(shared): State<Shared>, Path(key): Path<String>) -> Response {
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match inner.state.role_sets.iter().find(|s| s.key == key) {
        Some(set) => {
            let roles: Vec<Value> = set
                .roles
                .iter()
                .map(|r| json!({"object": "role_set_item", "id": format!("role_{r}"), "name": r, "key": r}))
                .collect();
            axum::Json(json!({
                "object": "role_set", "id": format!("rs_{}", set.key), "name": set.key, "key": set.key,
                "description": null, "roles": roles, "type": "custom", "created_at": 0, "updated_at": 0
            }))
            .into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Role set not found",
        ),
    }
}

async fn list_roles(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(&query);
    let (limit, offset) = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let roles = inner.state.instance_roles();
    let data: Vec<Value> = roles
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| json!({"object": "role", "id": format!("role_{r}"), "name": r, "key": r, "description": null,
                        "is_creator_eligible": r == "org:admin", "permissions": [], "created_at": 0, "updated_at": 0}))
        .collect();
    axum::Json(json!({"data": data, "total_count": roles.len()})).into_response()
}

async fn get_organization(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    _headers: HeaderMap,
) -> Response {
    let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    match inner.state.organization(&org) {
        Some(organization) => {
            let count = inner
                .state
                .memberships
                .iter()
                .filter(|m| m.organization_id == organization.id)
                .count();
            axum::Json(organization_json(organization, count)).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Organization not found",
        ),
    }
}

/// Builds a state quickly: `organizations` × `members_per_org` with users `user_{n}`.
pub fn generated_state(organizations: usize, members_per_org: usize) -> SimState {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:billing"]);
    let mut created = 0i64;
    let users = members_per_org.max(1) * 2;
    for user in 0..users {
        state.users.push(SimUser {
            id: format!("user_{user}"),
            emails: vec![format!("u{user}@example.com")],
        });
    }
    for org in 0..organizations {
        state.organizations.push(SimOrganization {
            id: format!("org_{org}"),
            slug: format!("team-{org}"),
            name: format!("Team {org}"),
            role_set_key: None,
        });
        for member in 0..members_per_org {
            created += 1;
            state.memberships.push(SimMembership {
                id: format!("orgmem_{org}x{member}"),
                organization_id: format!("org_{org}"),
                user_id: format!("user_{member}"),
                role: if member == 0 {
                    "org:admin".into()
                } else {
                    "org:member".into()
                },
                public_metadata: Map::new(),
                private_metadata: Map::new(),
                created_at: created,
            });
        }
    }
    state
}
