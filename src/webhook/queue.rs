//! The per-organization work queue of webhook reconciles: one run per organization at a
//! time; an event for an organization that is queued changes nothing (a queued organization
//! waits until its events pause for [`SETTLE`], at most [`LONGEST_WAIT`], so that a burst is
//! read once), and one for an organization being reconciled sets one "again" flag, so a burst
//! of events makes at most two runs. Past [`LIMIT`] waiting organizations the queue gives up on
//! them and asks for one full cycle instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The most organizations waiting before the queue falls back to a full cycle.
pub const LIMIT: usize = 300;
/// How long an organization's events must pause before its reconcile starts.
pub const SETTLE: Duration = Duration::from_millis(150);
/// The longest a queued organization waits for its events to pause.
pub const LONGEST_WAIT: Duration = Duration::from_millis(800);

/// What a worker is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Reconcile this organization (ID, and slug where the event gave it).
    Organization { id: String, slug: Option<String> },
    /// Too much is waiting: run one full cycle.
    Everything,
}

#[derive(Debug, Default)]
struct State {
    waiting: VecDeque<(String, Option<String>)>,
    /// When each queued organization may start: (first event + LONGEST_WAIT, last + SETTLE).
    due: HashMap<String, (Instant, Instant)>,
    queued: HashSet<String>,
    running: HashSet<String>,
    again: HashSet<String>,
    everything: bool,
}

/// The queue, shared by the webhook handler and the workers.
#[derive(Debug, Default)]
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Asks for a reconcile of organization `id`.
    pub fn push(&self, id: &str, slug: Option<String>) {
        let mut state = self.lock();
        if state.everything {
            return;
        }
        let now = Instant::now();
        if state.queued.contains(id) {
            if let Some((_, settle)) = state.due.get_mut(id) {
                *settle = now + SETTLE;
            }
            return;
        }
        if state.running.contains(id) {
            state.again.insert(id.to_owned());
            return;
        }
        if state.waiting.len() >= LIMIT {
            tracing::warn!(
                waiting = state.waiting.len(),
                "too many organizations wait for a webhook reconcile; running one full cycle instead"
            );
            state.waiting.clear();
            state.queued.clear();
            state.everything = true;
        } else {
            state.queued.insert(id.to_owned());
            state
                .due
                .insert(id.to_owned(), (now + LONGEST_WAIT, now + SETTLE));
            state.waiting.push_back((id.to_owned(), slug));
        }
        drop(state);
        self.notify.notify_one();
    }

    /// The next work, waiting for one; marks an organization as running.
    pub async fn next(&self) -> Work {
        loop {
            let notified = self.notify.notified();
            let wake = {
                let mut state = self.lock();
                if state.everything {
                    state.everything = false;
                    return Work::Everything;
                }
                let now = Instant::now();
                let start = |(longest, settle): (Instant, Instant)| longest.min(settle);
                let ready = state
                    .waiting
                    .iter()
                    .position(|(id, _)| state.due.get(id).is_none_or(|due| start(*due) <= now));
                if let Some(position) = ready
                    && let Some((id, slug)) = state.waiting.remove(position)
                {
                    state.queued.remove(&id);
                    state.due.remove(&id);
                    state.running.insert(id.clone());
                    if !state.waiting.is_empty() {
                        self.notify.notify_one();
                    }
                    return Work::Organization { id, slug };
                }
                state.due.values().map(|due| start(*due)).min()
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks work as done; an organization with events during its run is queued once more.
    pub fn done(&self, work: &Work) {
        let Work::Organization { id, slug } = work else {
            return;
        };
        let again = {
            let mut state = self.lock();
            state.running.remove(id);
            state.again.remove(id)
        };
        if again {
            self.push(id, slug.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> Work {
        Work::Organization {
            id: id.into(),
            slug: None,
        }
    }

    #[tokio::test]
    async fn a_burst_makes_at_most_two_runs_per_organization() {
        let queue = Queue::default();
        for _ in 0..30 {
            queue.push("org_1", None);
        }
        let first = queue.next().await;
        assert_eq!(first, org("org_1"));
        for _ in 0..30 {
            queue.push("org_1", None);
        }
        queue.push("org_2", None);
        assert_eq!(queue.next().await, org("org_2"));
        queue.done(&org("org_2"));
        queue.done(&first);
        assert_eq!(queue.next().await, org("org_1"), "once more");
        queue.done(&org("org_1"));
        let nothing =
            tokio::time::timeout(std::time::Duration::from_millis(50), queue.next()).await;
        assert!(nothing.is_err(), "nothing else queued");
    }

    #[tokio::test]
    async fn too_many_waiting_organizations_become_one_full_cycle() {
        let queue = Queue::default();
        for n in 0..=LIMIT {
            queue.push(&format!("org_{n}"), None);
        }
        assert_eq!(queue.next().await, Work::Everything);
    }
}
