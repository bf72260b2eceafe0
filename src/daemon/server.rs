//! The daemon's HTTP server: its own accept loop over hyper's HTTP/1 connections, so that no
//! client can hold the port (`axum::serve` has no timeouts and no cap):
//!
//! - a request's head must arrive within [`Limits::header_read`] of the connection waiting for
//!   it (hyper's header timer: half a header, sent slowly or not at all, is closed);
//! - a connection that sends nothing and has no request in flight for [`Limits::idle`] is
//!   closed (an idle keep-alive connection);
//! - a webhook body must arrive within [`Limits::body_read`] (408 otherwise; see `daemon.rs`);
//! - at most [`Limits::max_connections`] are open. At the cap, the oldest connection with no
//!   request in flight is closed for the new one, so that probes and scrapes are answered while
//!   a client misbehaves; when every connection has a request in flight, the new one is closed.
//!
//! On [`Server::stop`], no connection is accepted any more, idle ones close, and the requests
//! in flight are answered (for a few seconds at most).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

/// How long the requests in flight may take to be answered once the server stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a client may take of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From waiting for a request to having its whole head (10 s).
    pub header_read: Duration,
    /// No byte received and no request in flight for this long closes a connection (5 s).
    pub idle: Duration,
    /// A webhook's body must arrive within this (10 s).
    pub body_read: Duration,
    /// Connections open at once: 512, or half the process's file-descriptor limit when that
    /// is lower (the other half is the Clerk client's and the files').
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(5),
            body_read: Duration::from_secs(10),
            max_connections: 512.min(descriptor_limit() / 2).max(8),
        }
    }
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
#[cfg(unix)]
fn descriptor_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    }
}

#[cfg(not(unix))]
fn descriptor_limit() -> usize {
    usize::MAX
}

/// A running server.
pub struct Server {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `app` on `listener` within `limits`.
    pub fn start(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<Server> {
        let address = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(accept(listener, app, limits, stopping).in_current_span());
        Ok(Server {
            address,
            stop,
            task,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Accepts no more connections, closes the idle ones, and lets the requests in flight be
    /// answered.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let open = Arc::new(Open::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: the connection waits in the backlog.
                tracing::warn!(%error, "cannot accept a connection to the health and metrics port");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match open.admit().await {
            Some(slot) => {
                let served = connection(stream, app.clone(), limits, slot, stopping.clone());
                connections.spawn(served.in_current_span());
            }
            None => tracing::debug!("at the connection cap with every connection busy; closed"),
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
        connections.abort_all();
    }
}

/// Serves one connection until it ends, is closed for another (at the cap), idles out, or
/// the server stops.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    slot: Slot,
    mut stopping: watch::Receiver<bool>,
) {
    let state = slot.state.clone();
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::new(&state);
            let mut app = app.clone();
            async move {
                let response = tower_service::Service::call(&mut app, request).await;
                drop(busy);
                response.map_err(|never: Infallible| match never {})
            }
        })
    };
    let io = TokioIo::new(Watched {
        stream,
        state: state.clone(),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let served = http.serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection closed");
            }
        }
        () = state.close.notified() => tracing::debug!("connection closed for a new one (at the cap)"),
        () = idle_out(&state, limits.idle) => tracing::debug!("idle connection closed"),
        // Stopping: a connection waiting for a request closes now; one with a request in
        // flight is answered first.
        _ = stopping.changed() => if state.in_flight.load(Ordering::SeqCst) > 0 {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
    drop(slot);
}

/// Resolves once the connection has had no request in flight and sent no byte for `idle`.
async fn idle_out(state: &State, idle: Duration) {
    loop {
        let since = *state.lock_since();
        let quiet = state.in_flight.load(Ordering::SeqCst) == 0;
        if quiet && since.elapsed() >= idle {
            return;
        }
        let wake = if quiet {
            since + idle
        } else {
            Instant::now() + idle
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// What the server knows of one connection.
struct State {
    /// Requests being handled.
    in_flight: AtomicUsize,
    /// When it last received a byte or finished a request (or opened).
    quiet_since: Mutex<Instant>,
    /// Set when it is chosen to make room for a new connection.
    closing: AtomicBool,
    close: Notify,
}

impl State {
    fn lock_since(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.quiet_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stir(&self) {
        *self.lock_since() = Instant::now();
    }
}

/// A request in flight on a connection, until dropped.
struct Busy(Arc<State>);

impl Busy {
    fn new(state: &Arc<State>) -> Busy {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.stir();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections, oldest first, and the cap.
struct Open {
    slots: Arc<Semaphore>,
    by_age: Mutex<BTreeMap<u64, Arc<State>>>,
    next: std::sync::atomic::AtomicU64,
}

/// One connection's place among the open ones, given back when dropped.
struct Slot {
    state: Arc<State>,
    id: u64,
    open: Arc<Open>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

impl Open {
    fn new(max: usize) -> Open {
        Open {
            slots: Arc::new(Semaphore::new(max.max(1))),
            by_age: Mutex::default(),
            next: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<State>>> {
        self.by_age.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection: at the cap, the oldest connection with no request in
    /// flight is closed to make room. `None` when every open connection is busy.
    async fn admit(self: &Arc<Self>) -> Option<Slot> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !self.close_oldest_quiet() {
                    return None;
                }
                let waiting = self.slots.clone().acquire_owned();
                tokio::time::timeout(Duration::from_secs(1), waiting)
                    .await
                    .ok()?
                    .ok()?
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(State {
            in_flight: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.lock().insert(id, state.clone());
        Some(Slot {
            state,
            id,
            open: self.clone(),
            _permit: permit,
        })
    }

    fn close_oldest_quiet(&self) -> bool {
        let open = self.lock();
        let oldest = open.values().find(|state| {
            state.in_flight.load(Ordering::SeqCst) == 0 && !state.closing.load(Ordering::SeqCst)
        });
        match oldest {
            Some(state) => {
                state.closing.store(true, Ordering::SeqCst);
                state.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The connection's stream, noting when bytes arrive (a connection that sends is not idle).
struct Watched {
    stream: TcpStream,
    state: Arc<State>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(context, buffer);
        if buffer.filled().len() > before {
            self.state.stir();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
