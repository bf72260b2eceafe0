//! What every handler of the simulator shares: the knobs ([`SimOptions`]), the simulated
//! instance and its bookkeeping behind one lock ([`Inner`], reached through [`Shared::lock`]),
//! and Clerk's error body.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde_json::{Map, json};

use super::faults::{Fault, FaultKind};
use super::limits::{Limiter, RateLimitModel};
use super::state::{LoggedRequest, SimMembership, SimState, SimUser, now_ms};
use crate::clerk::RateLimit;

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
    /// The probability (0..=1) that a request is done and then answered 500 anyway (the
    /// client cannot know it worked).
    pub fail_after_rate: f64,
    /// The probability (0..=1) that a request is done and its connection then drops before
    /// the answer is complete.
    pub drop_rate: f64,
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

/// The simulated instance and what the simulator records about it, behind one lock.
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
    pub(super) fn churn(&mut self, organizations: &[String]) {
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

/// What each handler is given: the key it accepts, the instance, the knobs, the limiter.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) key: String,
    pub(super) inner: Arc<Mutex<Inner>>,
    pub(super) options: Arc<SimOptions>,
    pub(super) limiter: Option<Arc<Limiter>>,
    pub(super) in_flight: Arc<InFlight>,
}

impl Shared {
    /// The instance, for one handler at a time; a handler that panicked leaves it usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Takes the first scripted fault that matches this request, if any.
    pub(super) fn take_fault(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut inner = self.lock();
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
}

/// Requests being handled now, and the most at once.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    pub(super) now: AtomicUsize,
    pub(super) peak: AtomicUsize,
}

/// Clerk's error body: one error with its code and message, and a trace ID.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errors": [{ "code": code, "message": message, "long_message": message, "meta": {} }],
        "clerk_trace_id": "sim-trace"
    });
    (status, axum::Json(body)).into_response()
}

/// A fault at random, at the rates of `--fail-after-rate` and `--drop-rate` (a bad minute at
/// Clerk): a 500 after the request took effect, or a dropped connection after it did.
pub(super) fn random_fault(options: &SimOptions) -> Option<FaultKind> {
    let after = options.fail_after_rate.clamp(0.0, 1.0);
    let dropped = options.drop_rate.clamp(0.0, 1.0);
    if after + dropped <= 0.0 {
        return None;
    }
    let roll: f64 = rand::rng().random();
    if roll < after {
        Some(FaultKind::After { status: 500 })
    } else if roll < after + dropped {
        Some(FaultKind::Drop { applied: true })
    } else {
        None
    }
}
