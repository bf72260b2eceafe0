//! What the clients of one process share: the pacer, the retry budget, and what keeps the
//! process's own writes out of its instance-wide listings. A one-shot command has one client;
//! the daemon builds one per cycle (the key file is read again, so a rotated key takes effect)
//! from the [`Shared`] of the first, and its webhook reconciles use the latest: together they
//! never exceed `--rate-limit`, whatever the mix of work.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Pacer, RateLimit, RetryBudget};

/// What the clients of one process share, so that together they keep to one rate limit (one
/// [`Pacer`]: rate, requests in flight, 429 pauses) and one retry budget. A one-shot command
/// has one client; the daemon builds one per cycle (the key file is read again) with the
/// `Shared` of the first, and its webhook reconciles use the latest.
#[derive(Clone)]
pub struct Shared {
    pub pacer: Arc<Pacer>,
    pub(super) budget: Arc<RetryBudget>,
    pub(super) own_writes: Arc<OwnWrites>,
    pub slugs: Arc<Slugs>,
}

impl Shared {
    pub fn new(rate: RateLimit, concurrency: u32) -> Shared {
        Shared {
            pacer: Arc::new(Pacer::new(rate, concurrency)),
            budget: Arc::default(),
            own_writes: Arc::default(),
            slugs: Arc::default(),
        }
    }
}

/// How long a membership this process created is remembered: past the clocks' margin with
/// which a listing takes a recent `created_at` for a creation while it was read.
const REMEMBERED: Duration = Duration::from_secs(5);

/// Keeps the process's own writes out of its instance-wide listings. Offset paging shifts when
/// a membership is created or deleted while the pages are read, and a listing that moved is
/// read again organization by organization: in the daemon, every webhook reconcile that wrote
/// during a cycle's listing would make the cycle read every managed organization again. So a
/// write waits while a listing is read, a listing waits for the writes in flight, and the
/// memberships this process created a moment before a listing began do not count as created
/// while it was read.
#[derive(Debug, Default)]
pub struct OwnWrites {
    gate: RwLock<()>,
    created: Mutex<VecDeque<(Instant, String)>>,
}

impl OwnWrites {
    /// Held by each write request while it is sent and answered.
    pub(super) async fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Held while an instance-wide listing is read: no write of this process is in flight.
    pub(super) async fn listing(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, String)>> {
        self.created.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a membership this process created.
    pub(super) fn created(&self, membership_id: &str) {
        let now = Instant::now();
        let mut created = self.lock();
        while created
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > REMEMBERED)
        {
            created.pop_front();
        }
        created.push_back((now, membership_id.to_owned()));
    }

    /// The memberships this process created within the last few seconds.
    pub(super) fn recently_created(&self) -> HashSet<String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= REMEMBERED)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// How long a slug that no organization has is remembered as such.
const UNKNOWN_SLUG: Duration = Duration::from_secs(60);

/// Organization slugs as Clerk last resolved them: the daemon matches a webhook event, which
/// names its organization by ID, to a file entry keyed by slug through them. Every slug lookup
/// of the process is learnt (each cycle's too); `organization.updated` and
/// `organization.deleted` events correct them; a slug no organization has is remembered for a
/// minute.
#[derive(Debug, Default)]
pub struct Slugs {
    by_slug: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl Slugs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.by_slug.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What Clerk said of `slug`: the organization that has it, or `None` (no organization).
    pub fn learn(&self, slug: &str, id: Option<&str>) {
        let mut by_slug = self.lock();
        if let Some(id) = id {
            by_slug.retain(|other, (known, _)| other == slug || known.as_deref() != Some(id));
        }
        by_slug.insert(slug.to_owned(), (id.map(str::to_owned), Instant::now()));
    }

    /// An organization was deleted: no slug leads to it any more.
    pub fn forget(&self, id: &str) {
        self.lock()
            .retain(|_, (known, _)| known.as_deref() != Some(id));
    }

    /// The organization `slug` leads to, if known: `Some(None)` when no organization has it.
    pub fn get(&self, slug: &str) -> Option<Option<String>> {
        let by_slug = self.lock();
        let (id, at) = by_slug.get(slug)?;
        (id.is_some() || at.elapsed() < UNKNOWN_SLUG).then(|| id.clone())
    }
}
