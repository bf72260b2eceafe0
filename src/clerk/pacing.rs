//! Pacing shared by every task of a run: one rate limiter, a cap on requests in flight, and a
//! gate that pauses everyone after a 429 until Clerk's `Retry-After`.
//!
//! The rate limit a run is given is a ceiling, not a promise: the instance's budget is shared
//! with the product's own traffic, and users rarely know it. So the pacer learns it: at a 429,
//! the requests Clerk accepted over the preceding window are what it allows, and the pace is
//! set just under that; every quiet couple of seconds it probes upward by a small step
//! (additive increase), never past the ceiling. `Retry-After` is always honoured.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

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

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<RateLimit, String> {
        let bad = || {
            format!("`{text}` is not a rate limit; write N/PERIOD, like 20/s, 1000/10s or 90/1m")
        };
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

/// The slowest the pacer goes after 429s: this fraction of the rate limit.
const FLOOR: f64 = 1.0 / 16.0;
/// After a 429, the pace is set this far under the rate Clerk was found to accept.
const MARGIN: f64 = 0.95;
/// Quiet time (no 429) after which the pace probes upward by one [`PROBE_STEP`].
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How much one probe adds: this fraction of the rate Clerk was last found to accept.
const PROBE_STEP: f64 = 0.01;
/// 429s this close to the last one belong to the same storm and teach nothing new.
const STORM: Duration = Duration::from_secs(1);

/// What the pacer has learnt of the rate Clerk really accepts.
#[derive(Debug)]
struct Learning {
    /// The pace now, in requests per second (never above the rate limit).
    rate: f64,
    /// The rate Clerk accepted before its last 429 (requests per second); `None` before any.
    budget: Option<f64>,
    /// Answers other than 429 within the last window, oldest first.
    accepted: VecDeque<Instant>,
    /// When the pace last changed (a 429, or a probe).
    changed: Instant,
    /// When the last 429 set the pace.
    throttled: Option<Instant>,
}

/// The shared pacer.
pub struct Pacer {
    /// The rate limit the run was given: never exceeded.
    ceiling: RateLimit,
    /// Paces requests at `learning.rate`; replaced when the pace changes.
    limiter: RwLock<Arc<DefaultDirectRateLimiter>>,
    learning: Mutex<Learning>,
    /// The window over which accepted requests are counted: the rate limit's period, at
    /// least a second.
    window: Duration,
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
            ceiling: rate,
            limiter: RwLock::new(limiter(ceiling)),
            learning: Mutex::new(Learning {
                rate: ceiling,
                budget: None,
                accepted: VecDeque::new(),
                changed: Instant::now(),
                throttled: None,
            }),
            window: rate.period.max(Duration::from_secs(1)),
            in_flight: Semaphore::new(concurrency as usize),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits for a slot in flight, the end of any 429 pause, and the rate limiter.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
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
                return permit;
            }
        }
    }

    /// The pace now, in requests per second.
    pub fn rate(&self) -> f64 {
        self.lock_learning().rate
    }

    fn lock_learning(&self) -> std::sync::MutexGuard<'_, Learning> {
        self.learning
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn set_rate(&self, learning: &mut Learning, rate: f64) {
        let ceiling = self.ceiling.per_second();
        learning.rate = rate.clamp(ceiling * FLOOR, ceiling);
        learning.changed = Instant::now();
        *self
            .limiter
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = limiter(learning.rate);
    }

    /// Clerk answered (anything but 429): count it, and after quiet time probe a little
    /// faster, never past the rate limit (additive increase).
    pub fn accepted(&self) {
        let now = Instant::now();
        let mut learning = self.lock_learning();
        learning.accepted.push_back(now);
        while learning
            .accepted
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.window)
        {
            learning.accepted.pop_front();
        }
        let ceiling = self.ceiling.per_second();
        if learning.rate < ceiling && now.duration_since(learning.changed) >= PROBE_EVERY {
            let step = learning.budget.unwrap_or(ceiling).max(ceiling * FLOOR) * PROBE_STEP;
            let rate = learning.rate + step;
            self.set_rate(&mut learning, rate);
        }
    }

    /// Clerk answered 429: the requests it accepted over the last window are what it allows
    /// (the instance's budget, shared with every other client of it). Pace just under that;
    /// 429s of the same storm count once.
    pub fn throttled(&self) {
        let now = Instant::now();
        let mut learning = self.lock_learning();
        if learning
            .throttled
            .is_some_and(|at| now.duration_since(at) < STORM)
        {
            return;
        }
        learning.throttled = Some(now);
        let window = self.window;
        let accepted = learning
            .accepted
            .iter()
            .filter(|at| now.duration_since(**at) <= window)
            .count();
        let budget = accepted as f64 / window.as_secs_f64();
        learning.budget = Some(budget);
        self.set_rate(&mut learning, budget * MARGIN);
        tracing::info!(
            accepted_per_second = budget,
            pace_per_second = learning.rate,
            "Clerk answered 429: pacing just under the rate it accepted"
        );
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

    #[tokio::test(start_paused = true)]
    async fn a_429_sets_the_pace_under_what_was_accepted_and_quiet_time_probes_upward() {
        let pacer = Pacer::new("100/s".parse().unwrap(), 4);
        assert_eq!(pacer.rate(), 100.0);
        // 40 answers within the last second, then a 429.
        for _ in 0..40 {
            pacer.accepted();
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        pacer.throttled();
        assert!(
            (pacer.rate() - 40.0 * MARGIN).abs() < 1e-9,
            "{}",
            pacer.rate()
        );
        pacer.throttled(); // the same storm: learns nothing new
        assert!((pacer.rate() - 40.0 * MARGIN).abs() < 1e-9);
        // Quiet time: one step of 1% of 40 per PROBE_EVERY.
        tokio::time::advance(PROBE_EVERY).await;
        pacer.accepted();
        assert!(
            (pacer.rate() - (40.0 * MARGIN + 0.4)).abs() < 1e-9,
            "{}",
            pacer.rate()
        );
        // Never past the ceiling.
        for _ in 0..1_000 {
            tokio::time::advance(PROBE_EVERY).await;
            pacer.accepted();
        }
        assert_eq!(pacer.rate(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_before_anything_was_accepted_slows_to_the_floor_not_to_zero() {
        let pacer = Pacer::new("100/s".parse().unwrap(), 4);
        pacer.throttled();
        assert_eq!(pacer.rate(), 100.0 * FLOOR);
    }
}
