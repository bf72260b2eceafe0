//! The daemon's machinery: the interval loop with jitter, the health, metrics and webhook server
//! (its limits: `server`), and graceful shutdown. What one cycle does is given by the caller
//! (`commands::daemon`).
//!
//! On SIGTERM or SIGINT the shutdown flag is set: the client starts no new request, the requests in
//! flight finish, the cycle ends (within `GRACE`), and the loop returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use tokio::sync::mpsc;

mod server;
pub use server::{Limits, Server};

use crate::webhook::{self, Event, Headers, Replays, WebhookSecret};
use rand::Rng;
use tokio::sync::watch;
use tracing::Instrument;

/// How long a cycle may take to wind down after a shutdown signal.
pub(crate) const GRACE: Duration = Duration::from_secs(20);

/// What the health endpoints report.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::names::READY).set(if ready { 1.0 } else { 0.0 });
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Receives Clerk's webhooks: verifies them, drops replays, and hands each event on.
pub struct Intake {
    pub secret: WebhookSecret,
    pub replays: std::sync::Mutex<Replays>,
    pub events: mpsc::UnboundedSender<Event>,
}

#[derive(Clone)]
struct Served {
    health: Arc<Health>,
    intake: Option<Arc<Intake>>,
    body_read: Duration,
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listen`, and `POST /webhooks/clerk` when
/// given an intake, within `limits` (see `daemon::server`).
pub async fn serve(
    listen: SocketAddr,
    health: Arc<Health>,
    intake: Option<Arc<Intake>>,
    limits: Limits,
) -> std::io::Result<Server> {
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    if intake.is_some() {
        app = app.route("/webhooks/clerk", post(receive));
    }
    let app = app.with_state(Served {
        health,
        intake,
        body_read: limits.body_read,
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    Server::start(listener, app, limits)
}

async fn readyz(State(served): State<Served>) -> impl IntoResponse {
    if served.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no cycle has reached Clerk and completed yet, or the last one could not\n",
        )
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render(),
    )
}

/// Reads a request body of at most `limit` bytes: 413 over it, 400 when the connection breaks.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, StatusCode> {
    let mut chunks = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        if read.len() + chunk.len() > limit {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
}

/// `POST /webhooks/clerk`: 413 over 1 MiB, 408 when the body does not arrive within the
/// body-read timeout, 401 (empty) unless the Svix signature verifies; then 200 at once, and
/// the event is processed after (once per `svix-id`).
async fn receive(State(served): State<Served>, headers: HeaderMap, body: Body) -> Response {
    let Some(intake) = served.intake else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > webhook::MAX_BODY as u64) {
        return close(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let body =
        match tokio::time::timeout(served.body_read, read_body(body, webhook::MAX_BODY)).await {
            Ok(Ok(body)) => body,
            Ok(Err(status)) => return close(status),
            Err(_) => {
                tracing::debug!("a webhook body did not arrive in time");
                return close(StatusCode::REQUEST_TIMEOUT);
            }
        };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let svix = Headers {
        id: header("svix-id"),
        timestamp: header("svix-timestamp"),
        signature: header("svix-signature"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if let Err(reason) = intake.secret.verify(&svix, &body, now) {
        tracing::debug!(%reason, "webhook refused");
        count_event("unknown", "rejected");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(event) = Event::parse(&body) else {
        tracing::debug!("a verified webhook is not a Clerk event; ignored");
        count_event("unknown", "ignored");
        return StatusCode::OK.into_response();
    };
    let first = intake
        .replays
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .first_time(svix.id.unwrap_or_default());
    if !first {
        tracing::debug!(kind = %event.kind, "webhook delivered again; already processed");
        count_event(&event.kind, "ignored");
        return StatusCode::OK.into_response();
    }
    let _ = intake.events.send(event);
    StatusCode::OK.into_response()
}

/// An answer after which the connection is closed (its body was not read whole).
fn close(status: StatusCode) -> Response {
    (status, [(header::CONNECTION, "close")]).into_response()
}

/// `membersync_webhook_events_total{type,result}`.
pub(crate) fn count_event(kind: &str, result: &'static str) {
    metrics::counter!(
        crate::telemetry::names::WEBHOOK_EVENTS,
        "type" => kind.to_owned(),
        "result" => result
    )
    .increment(1);
}

/// A shutdown flag set by SIGTERM/SIGINT, and a receiver that wakes when it is.
pub(crate) fn shutdown_on_signal() -> (Arc<AtomicBool>, watch::Receiver<bool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = watch::channel(false);
    let set = flag.clone();
    tokio::spawn(
        async move {
            shutdown_signal().await;
            tracing::info!(
                "shutdown asked: finishing the requests in flight, starting no new ones"
            );
            set.store(true, Ordering::SeqCst);
            let _ = sender.send(true);
        }
        .in_current_span(),
    );
    (flag, receiver)
}

/// Runs `cycle` every `interval` (jittered by up to ±10%) until shutdown.
pub(crate) async fn run_loop<F, Fut>(
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut cycle: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if *shutdown.borrow() {
            return;
        }
        let running = cycle();
        tokio::pin!(running);
        tokio::select! {
            () = &mut running => {}
            _ = shutdown.changed() => {
                if tokio::time::timeout(GRACE, running).await.is_err() {
                    tracing::warn!("the cycle did not wind down within {GRACE:?}; exiting anyway");
                }
                return;
            }
        }
        let wait = interval.mul_f64(rand::rng().random_range(0.9..=1.1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
