//! The simulator's HTTP server: start and stop, what a test asks of a running simulator, and
//! the middleware that checks the headers, applies the knobs and faults, and logs each request.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{MatchedPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use super::faults::{Fault, FaultKind, broken_body};
use super::limits::Limiter;
use super::shared::random_fault;
use super::shared::{InFlight, Inner, Shared, SimOptions, error};
use super::state::{LoggedRequest, SimState};
use crate::clerk::API_VERSION;

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    address: SocketAddr,
    /// What the handlers share: a test reads and changes the instance through it too.
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
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
        let shared = Shared {
            key: key.to_owned(),
            inner,
            options: Arc::new(options),
            limiter,
            in_flight: Arc::new(InFlight::default()),
        };
        let app = super::endpoints::router()
            .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Simulator {
            address,
            shared,
            server,
        })
    }

    /// The API base URL to give membersync (`http://127.0.0.1:PORT/v1`).
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn key(&self) -> &str {
        &self.shared.key
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

    /// The requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.now.load(Ordering::SeqCst)
    }

    /// The most requests handled at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.in_flight.peak.load(Ordering::Relaxed)
    }

    /// The address the simulator listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every endpoint the simulator serves, as (method, path), the path in axum's syntax
    /// (`/v1/organizations/{org}/memberships`), as [`LoggedRequest::route`] names them.
    pub fn endpoints() -> Vec<(String, &'static str)> {
        super::endpoints::list()
    }

    /// A person signs up with `email` and accepts their pending invitations: the user is
    /// created if there is none, and each invitation becomes a membership with its role and
    /// metadata. Returns how many invitations were accepted.
    pub fn accept_invitation(&self, email: &str) -> usize {
        super::invitations::accept(&mut self.lock(), email)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }
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
    let at = shared.lock().started.elapsed();
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
        shared.lock().churn(&shared.options.churn);
    }
    let response = match refusal(&shared, request.headers()) {
        Some(refused) => refused,
        None => match shared
            .take_fault(&method, &path)
            .or_else(|| random_fault(&shared.options))
        {
            None => next.run(request).await,
            Some(fault) => with_fault(&shared, fault, request, next).await,
        },
    };
    let status = response.status().as_u16();
    let mut inner = shared.lock();
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
                let mut inner = shared.lock();
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
