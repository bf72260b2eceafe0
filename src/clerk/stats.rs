//! What a client counts beyond [`RequestStats`]'s counters: a snapshot of them (a run that
//! shares its client counts its own requests as the difference of two), and the requests in
//! flight (an interrupt says how many it waits for).

use std::sync::atomic::{AtomicU64, Ordering};

use super::RequestStats;

/// The counters of [`RequestStats`] at one moment. A run that shares its client with others
/// (the daemon's cycles and webhook reconciles) counts its own requests as the difference of
/// two snapshots, taken at its start and end ([`StatsSnapshot::since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsSnapshot {
    pub sent: u64,
    pub writes: u64,
    pub retries: u64,
    pub throttled: u64,
    /// Requests sent whose answer was not in yet.
    pub in_flight: u64,
    /// The pace the client had learned, in requests per second.
    pub pace_per_second: f64,
}

impl StatsSnapshot {
    /// What was counted between `earlier` and this snapshot (the requests in flight and the
    /// pace are this snapshot's).
    pub fn since(self, earlier: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.saturating_sub(earlier.sent),
            writes: self.writes.saturating_sub(earlier.writes),
            retries: self.retries.saturating_sub(earlier.retries),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            ..self
        }
    }
}

/// Counts a request in flight until its answer is in (or it failed).
pub(super) struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    pub(super) fn start(counter: &'a AtomicU64) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RequestStats {
    /// The counters now.
    pub(super) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            ..StatsSnapshot::default()
        }
    }

    /// Requests sent whose answer is not in yet.
    pub(super) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }
}
