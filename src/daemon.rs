//! The daemon's machinery: the interval loop with jitter, the health and metrics server, and
//! graceful shutdown. What one cycle does is given by the caller (`commands::daemon`).
//!
//! On SIGTERM or SIGINT the shutdown flag is set: the client starts no new request, the
//! requests in flight finish, the cycle ends (within [`GRACE`]), and the loop returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rand::Rng;
use tokio::sync::watch;
use tracing::Instrument;

/// How long a cycle may take to wind down after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(20);

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

/// Serves `/healthz`, `/readyz` and `/metrics` on `listen`; returns the bound address.
pub async fn serve(listen: SocketAddr, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tokio::spawn(
        async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the health and metrics server stopped");
            }
        }
        .in_current_span(),
    );
    Ok(address)
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    if health.is_ready() {
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

/// A shutdown flag set by SIGTERM/SIGINT, and a receiver that wakes when it is.
pub fn shutdown_on_signal() -> (Arc<AtomicBool>, watch::Receiver<bool>) {
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
pub async fn run_loop<F, Fut>(interval: Duration, mut shutdown: watch::Receiver<bool>, mut cycle: F)
where
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
pub async fn shutdown_signal() {
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
