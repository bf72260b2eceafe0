//! Pacing shared by every task of a run: one rate limiter, a cap on requests in flight, and a
//! gate that pauses everyone after a 429 until Clerk's `Retry-After`.
//!
//! A 429 means someone else shares the instance's budget, so after it the pacer also slows
//! down: each 429 (at most one a second counts) halves the rate, down to a sixteenth, and each
//! quiet 30 seconds doubles it back (multiplicative decrease, stepwise recovery).

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Counters of what the pacer did, for reports, metrics and benchmarks.
#[derive(Debug, Default)]
pub struct PacingStats {
    pub waited_on_limiter_micros: AtomicU64,
    pub paused_by_429_micros: AtomicU64,
    pub peak_in_flight: AtomicU64,
}

/// How far the pacer slows down after 429s: level k paces at rate ÷ 2^k.
const MAX_SLOWDOWN: u32 = 4;
/// Quiet time that lifts one level of slowdown.
const RECOVERY: Duration = Duration::from_secs(30);

/// The shared pacer.
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    /// Rate ÷ 2, ÷ 4, ÷ 8, ÷ 16: consulted while slowed down after 429s.
    slowed: Vec<DefaultDirectRateLimiter>,
    /// (level, when it was last raised).
    slowdown: Mutex<(u32, Option<Instant>)>,
    in_flight: Semaphore,
    concurrency: u32,
    paused_until: Mutex<Option<Instant>>,
    pub stats: PacingStats,
}

impl Pacer {
    pub fn new(rate: RateLimit, concurrency: u32) -> Pacer {
        // Evenly spaced, burst of one: never more than N requests in any window of PERIOD,
        // which is how Clerk counts.
        let interval = rate.period / rate.requests.get();
        let quota = |interval: Duration| {
            Quota::with_period(interval.max(Duration::from_nanos(1)))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        };
        Pacer {
            limiter: RateLimiter::direct(quota(interval)),
            slowed: (1..=MAX_SLOWDOWN)
                .map(|level| RateLimiter::direct(quota(interval * (1 << level))))
                .collect(),
            slowdown: Mutex::new((0, None)),
            in_flight: Semaphore::new(concurrency as usize),
            concurrency,
            paused_until: Mutex::new(None),
            stats: PacingStats::default(),
        }
    }

    /// Waits for a slot in flight, the end of any 429 pause, and the rate limiter.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let in_flight = u64::from(self.concurrency) - self.in_flight.available_permits() as u64;
        self.stats
            .peak_in_flight
            .fetch_max(in_flight, Ordering::Relaxed);
        loop {
            self.wait_for_gate().await;
            let started = Instant::now();
            self.limiter.until_ready().await;
            let level = self.slowdown_level();
            if level > 0
                && let Some(slowed) = self.slowed.get(level as usize - 1)
            {
                slowed.until_ready().await;
            }
            let waited = started.elapsed().as_micros() as u64;
            self.stats
                .waited_on_limiter_micros
                .fetch_add(waited, Ordering::Relaxed);
            metrics::histogram!(crate::telemetry::names::LIMITER_WAIT)
                .record(started.elapsed().as_secs_f64());
            // A 429 seen while we waited on the limiter closes the gate again.
            if self.pause_remaining().is_none() {
                return permit;
            }
        }
    }

    /// The current slowdown: requests are paced at rate ÷ 2^level.
    pub fn slowdown_level(&self) -> u32 {
        let slowdown = self
            .slowdown
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match *slowdown {
            (level, Some(raised)) => {
                let quiet = raised.elapsed().as_secs() / RECOVERY.as_secs();
                level.saturating_sub(quiet as u32)
            }
            (_, None) => 0,
        }
    }

    /// A 429 arrived: slow down one more level (429s within a second of the last raise are
    /// the same storm and count once).
    pub fn slow_down(&self) {
        let current = self.slowdown_level();
        let mut slowdown = self
            .slowdown
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let recent = slowdown
            .1
            .is_some_and(|raised| raised.elapsed() < Duration::from_secs(1));
        if !recent {
            *slowdown = ((current + 1).min(MAX_SLOWDOWN), Some(Instant::now()));
            tracing::info!(
                level = slowdown.0,
                "Clerk answered 429: pacing at 1/{} of the rate limit for now",
                1 << slowdown.0
            );
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
            self.stats
                .paused_by_429_micros
                .fetch_add(remaining.as_micros() as u64, Ordering::Relaxed);
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
    async fn each_429_halves_the_rate_and_quiet_time_restores_it() {
        let pacer = Pacer::new("1000/s".parse().unwrap(), 4);
        assert_eq!(pacer.slowdown_level(), 0);
        pacer.slow_down();
        pacer.slow_down(); // the same storm: counts once
        assert_eq!(pacer.slowdown_level(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        pacer.slow_down();
        assert_eq!(pacer.slowdown_level(), 2);
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(2)).await;
            pacer.slow_down();
        }
        assert_eq!(pacer.slowdown_level(), MAX_SLOWDOWN);
        tokio::time::advance(RECOVERY).await;
        assert_eq!(pacer.slowdown_level(), MAX_SLOWDOWN - 1);
        tokio::time::advance(RECOVERY * MAX_SLOWDOWN).await;
        assert_eq!(pacer.slowdown_level(), 0);
    }
}
