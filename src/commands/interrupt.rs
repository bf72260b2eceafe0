//! A clean interrupt for the one-shot commands that write or export (`apply`, `apply --plan`,
//! `export`). Kubernetes sends SIGTERM to a CronJob's pod on every node drain and job deletion,
//! and people press Ctrl-C: the first SIGINT or SIGTERM sets the client's shutdown flag (the
//! one the daemon uses), so no new request starts, the requests in flight finish, and the run
//! ends with its report — every change not started `skipped` with the note "interrupted" —
//! and exit 1. A second signal ends the process at once with exit 130.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Instrument;

use crate::clerk::Client;

/// The exit status of a process ended by a second interrupt (128 + SIGINT, as shells report).
pub const EXIT_AT_ONCE: i32 = 130;

/// SIGINT and SIGTERM, taken over for one run.
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    signals: Option<Signals>,
}

impl Interrupt {
    /// Takes over SIGINT and SIGTERM: from now on they no longer end the process at once. A
    /// signal that arrives before [`Interrupt::watch`] is handled once it runs.
    pub fn install() -> Interrupt {
        Interrupt {
            flag: Arc::new(AtomicBool::new(false)),
            signals: Signals::new(),
        }
    }

    /// The shutdown flag to give the client.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Whether a first signal arrived.
    pub fn fired(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Handles the signals from now on; `client` (set up with [`Interrupt::flag`]) says how
    /// many requests are in flight.
    pub fn watch(&mut self, client: &Arc<Client>) {
        let Some(mut signals) = self.signals.take() else {
            return;
        };
        let flag = self.flag.clone();
        let client = Arc::downgrade(client);
        tokio::spawn(async move {
            signals.next().await;
            let in_flight = client
                .upgrade()
                .map(|client| client.snapshot().in_flight)
                .unwrap_or_default();
            tracing::warn!(
                in_flight,
                "interrupt received, finishing the {in_flight} requests in flight; nothing new starts (interrupt again to exit at once)"
            );
            flag.store(true, Ordering::SeqCst);
            signals.next().await;
            crate::telemetry::clear_progress();
            tracing::error!(
                "second interrupt: exiting at once, without a report; the next run finishes the job"
            );
            std::process::exit(EXIT_AT_ONCE);
        }.in_current_span());
    }
}

/// Both signals as one stream.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok()?;
        let terminate = signal(SignalKind::terminate()).ok()?;
        Some(Signals {
            interrupt,
            terminate,
        })
    }

    #[cfg(not(unix))]
    fn new() -> Option<Signals> {
        Some(Signals {})
    }

    /// The next SIGINT or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
