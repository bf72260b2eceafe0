//! Pacing shared by every task of a run: one rate limiter, a cap on requests in flight, and a
//! gate that pauses everyone after a 429 until Clerk's `Retry-After`.
//!
//! The rate limit a run is given is a ceiling, not a promise: the instance's budget is shared
//! with the product's own traffic, and users rarely know it. So the pacer learns it from the
//! 429s (see [`super::learning`]) and paces there. `Retry-After` is always honoured.
//!
//! One request at a time waits on the limiter, and only while the gate is open: when the pace
//! changes the limiter is replaced, and requests that kept waiting on the old one while new
//! ones drew on the new one went out at twice the pace for a moment (a 429 every two seconds
//! against a strict sliding window).

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::learning::Learning;

/// `N/PERIOD`: `20/s`, `1000/10s`, `90/1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    /// Clerk's documented limits: 1000 requests per 10 s for live keys, 100 per 10 s otherwise.
    pub fn for_key(live: bool) -> RateLimit {
        let requests = if live { 1000 } else { 100 };
        RateLimit {
            requests: NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN),
            period: Duration::from_secs(10),
        }
    }

    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests.get()) / self.period.as_secs_f64()
    }
}

/// A text that is not `N/PERIOD` (or gives no requests or no time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a rate limit; write N/PERIOD, like 20/s, 1000/10s or 90/1m")]
pub struct RateLimitError(String);

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<RateLimit, RateLimitError> {
        let bad = || RateLimitError(text.to_owned());
        let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = count.trim().parse().map_err(|_| bad())?;
        let requests = NonZeroU32::new(requests).ok_or_else(bad)?;
        let period = period.trim();
        let unit_at = period.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (amount, unit) = period.split_at(unit_at);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| bad())?
        };
        let seconds = match unit {
            "ms" => return positive(Duration::from_millis(amount), requests).ok_or_else(bad),
            "s" => amount,
            "m" => amount * 60,
            "h" => amount * 3600,
            _ => return Err(bad()),
        };
        positive(Duration::from_secs(seconds), requests).ok_or_else(bad)
    }
}

fn positive(period: Duration, requests: NonZeroU32) -> Option<RateLimit> {
    (!period.is_zero()).then_some(RateLimit { requests, period })
}

/// The shared pacer.
pub struct Pacer {
    /// Paces requests at `learning.rate()`; replaced when the pace changes.
    limiter: RwLock<Arc<DefaultDirectRateLimiter>>,
    learning: Mutex<Learning>,
    /// Held by the one request that waits on the gate and the limiter.
    turn: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    paused_until: Mutex<Option<Instant>>,
}

/// An evenly spaced limiter at `per_second`, with a burst of 20 ms worth of requests (at least
/// one): the timer wakes a requester up to a millisecond late, and without that small slack
/// every late wake-up would be lost for good (3–4% of the rate at 200/s). In any window the
/// rate is exceeded by that burst at most.
fn limiter(per_second: f64) -> Arc<DefaultDirectRateLimiter> {
    let interval = Duration::from_secs_f64(1.0 / per_second.max(1e-6));
    let burst = NonZeroU32::new((per_second / 50.0) as u32).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    Arc::new(RateLimiter::direct(quota))
}

impl Pacer {
    pub fn new(rate: RateLimit, concurrency: u32) -> Pacer {
        let ceiling = rate.per_second();
        Pacer {
            limiter: RwLock::new(limiter(ceiling)),
            learning: Mutex::new(Learning::new(ceiling, Instant::now())),
            turn: tokio::sync::Mutex::new(()),
            in_flight: Semaphore::new(concurrency as usize),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits for a slot in flight, then for its turn, the end of any 429 pause, and the rate
    /// limiter.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let _turn = self.turn.lock().await;
        loop {
            self.wait_for_gate().await;
            let started = Instant::now();
            let limiter = self
                .limiter
                .read()
                .unwrap_or_else(|poison| poison.into_inner())
                .clone();
            limiter.until_ready().await;
            metrics::histogram!(crate::telemetry::names::LIMITER_WAIT)
                .record(started.elapsed().as_secs_f64());
            // A 429 seen while we waited on the limiter closes the gate again.
            if self.pause_remaining().is_none() {
                let lesson = self.lock_learning().granted(Instant::now());
                if let Some(lesson) = lesson {
                    tracing::info!(
                        accepted_per_second = lesson.accepted_per_second,
                        pace_per_second = lesson.pace_per_second,
                        climbing = lesson.climbing,
                        "Clerk answered 429: pacing just under the rate it accepted"
                    );
                }
                return permit;
            }
        }
    }

    /// The pace now, in requests per second.
    pub fn rate(&self) -> f64 {
        self.lock_learning().rate()
    }

    fn lock_learning(&self) -> std::sync::MutexGuard<'_, Learning> {
        self.learning
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Paces at the rate learnt, from the next request on.
    fn follow(&self, learning: &Learning) {
        *self
            .limiter
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = limiter(learning.rate());
    }

    /// Clerk answered (anything but 429) a request let go at `sent`.
    pub fn accepted(&self, sent: Instant) {
        let mut learning = self.lock_learning();
        if learning.accepted(Instant::now(), sent) {
            self.follow(&learning);
        }
    }

    /// Clerk answered 429 to a request let go at `sent`: every request pauses for `pause`,
    /// and the pace is set from what the 429 taught (logged when the pause ends, with the
    /// answers that were in flight).
    pub fn throttled(&self, sent: Instant, pause: Duration) {
        let now = Instant::now();
        self.pause_until(now + pause);
        let mut learning = self.lock_learning();
        if learning.throttled(now, sent, pause) {
            self.follow(&learning);
        }
    }

    /// Pauses every request until `until` (extends, never shortens, a pause).
    pub fn pause_until(&self, until: Instant) {
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    fn pause_remaining(&self) -> Option<Duration> {
        let paused = self
            .paused_until
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        paused
            .and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    async fn wait_for_gate(&self) {
        while let Some(remaining) = self.pause_remaining() {
            metrics::histogram!(crate::telemetry::names::PAUSED_BY_429)
                .record(remaining.as_secs_f64());
            tokio::time::sleep(remaining).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_in_every_documented_form() {
        let parse = |text: &str| {
            text.parse::<RateLimit>()
                .map(|r| (r.requests.get(), r.period))
        };
        assert_eq!(parse("20/s"), Ok((20, Duration::from_secs(1))));
        assert_eq!(parse("1000/10s"), Ok((1000, Duration::from_secs(10))));
        assert_eq!(parse("90/1m"), Ok((90, Duration::from_secs(60))));
        assert_eq!(parse("5/500ms"), Ok((5, Duration::from_millis(500))));
        for bad in [
            "",
            "20",
            "0/s",
            "20/",
            "20/0s",
            "x/s",
            "20/fortnight",
            "-1/s",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_depends_on_the_key_kind() {
        assert_eq!(RateLimit::for_key(true).per_second(), 100.0);
        assert_eq!(RateLimit::for_key(false).per_second(), 10.0);
    }

    #[tokio::test]
    async fn a_pause_holds_every_request_until_it_ends() {
        let pacer = Pacer::new("1000/s".parse().unwrap(), 4);
        let until = Instant::now() + Duration::from_millis(200);
        pacer.pause_until(until);
        pacer.pause_until(Instant::now()); // never shortens
        drop(pacer.acquire().await);
        assert!(Instant::now() >= until);
    }

    #[tokio::test]
    async fn no_request_is_let_go_while_paused_and_those_that_waited_go_one_at_a_time() {
        let pacer = std::sync::Arc::new(Pacer::new("400/s".parse().unwrap(), 8));
        // Eight requests want to go; a 429 pauses everyone just as they start.
        let sent = Instant::now();
        let pause = Duration::from_millis(300);
        pacer.throttled(sent, pause);
        let granted = std::sync::Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pacer, granted) = (pacer.clone(), granted.clone());
                tokio::spawn(async move {
                    let _permit = pacer.acquire().await;
                    granted.lock().unwrap().push(Instant::now());
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let granted = granted.lock().unwrap().clone();
        assert!(granted.iter().all(|at| *at >= sent + pause));
        // After the pause: one at a time, spaced at the pace learnt (the floor here: 25/s),
        // not a burst of all that waited (the margin is for the tasks' own wake-ups).
        let pace = pacer.rate();
        assert_eq!(pace, 25.0);
        for pair in granted.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap.as_secs_f64() >= 0.5 / pace, "{gap:?} apart at {pace}/s");
        }
    }

    #[tokio::test]
    async fn a_slower_pace_holds_from_the_next_request_on() {
        // Four requests keep wanting to go at 40/s; then a 429 that taught nothing (nothing
        // was answered) slows the pace to the floor, 2.5/s. Requests that were already waiting
        // on the old limiter must not keep drawing from it.
        let pacer = std::sync::Arc::new(Pacer::new("40/s".parse().unwrap(), 4));
        let granted = std::sync::Arc::new(Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (pacer, granted, stop) = (pacer.clone(), granted.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(pacer.acquire().await);
                        granted.lock().unwrap().push(Instant::now());
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let changed = Instant::now();
        pacer.throttled(changed, Duration::ZERO);
        assert_eq!(pacer.rate(), 2.5);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let after = granted
            .lock()
            .unwrap()
            .iter()
            .filter(|at| **at > changed && **at <= changed + Duration::from_millis(500))
            .count();
        // The one waiting on the old limiter, the new limiter's first, and one 400 ms later.
        assert!(
            after <= 3,
            "{after} requests went in the 500 ms after the change"
        );
        for task in tasks {
            task.abort();
        }
    }
}
