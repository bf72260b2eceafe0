//! The simulator's rate limit, in the designs a real API may run in front of it: a bucket that
//! may be spent at once (the default), a strict sliding window, a fixed window aligned to the
//! clock, and a token bucket with a small burst. Over the limit the answer is 429 with a
//! `Retry-After` in whole seconds, rounded up, as HTTP's delta-seconds require.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::clerk::RateLimit;

/// How the simulated rate limit (`N/PERIOD`) counts requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateLimitModel {
    /// N per period, refilled evenly; all N may be spent at once. The kindest model.
    #[default]
    FullBucket,
    /// Never more than N accepted in any period-long span.
    Sliding,
    /// N per period, the periods aligned to the clock (a 10 s period starts at every
    /// multiple of 10 s of Unix time).
    Fixed,
    /// Refilled at N per period, with a burst of N/8 (at least 1).
    Bucket,
}

impl RateLimitModel {
    const NAMES: [(&'static str, RateLimitModel); 4] = [
        ("full-bucket", RateLimitModel::FullBucket),
        ("sliding", RateLimitModel::Sliding),
        ("fixed", RateLimitModel::Fixed),
        ("bucket", RateLimitModel::Bucket),
    ];
}

impl FromStr for RateLimitModel {
    type Err = String;

    fn from_str(text: &str) -> Result<RateLimitModel, String> {
        RateLimitModel::NAMES
            .iter()
            .find(|(name, _)| *name == text.trim())
            .map(|(_, model)| *model)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a rate limit model; use sliding, fixed, bucket or full-bucket"
                )
            })
    }
}

impl fmt::Display for RateLimitModel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = RateLimitModel::NAMES
            .iter()
            .find(|(_, model)| model == self)
            .map_or("full-bucket", |(name, _)| name);
        formatter.write_str(name)
    }
}

/// A rate limit as one of the models counts it.
pub(super) struct Limiter {
    rate: RateLimit,
    counter: Counter,
}

enum Counter {
    /// The bucket models, on governor's GCRA.
    Bucket(DefaultDirectRateLimiter),
    /// When each request of the last period was accepted, oldest first.
    Sliding(Mutex<VecDeque<Instant>>),
    /// The current window (its index since the Unix epoch) and the requests it accepted.
    Fixed(Mutex<(u128, u32)>),
}

impl Limiter {
    pub(super) fn new(rate: RateLimit, model: RateLimitModel) -> Limiter {
        let counter = match model {
            RateLimitModel::FullBucket => Counter::Bucket(bucket(rate, rate.requests)),
            RateLimitModel::Bucket => {
                let burst = NonZeroU32::new(rate.requests.get() / 8).unwrap_or(NonZeroU32::MIN);
                Counter::Bucket(bucket(rate, burst))
            }
            RateLimitModel::Sliding => Counter::Sliding(Mutex::new(VecDeque::new())),
            RateLimitModel::Fixed => Counter::Fixed(Mutex::new((0, 0))),
        };
        Limiter { rate, counter }
    }

    /// Counts a request: `Ok` if it is within the limit, otherwise the whole seconds to put
    /// in `Retry-After`.
    pub(super) fn check(&self) -> Result<(), u64> {
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.check_at(Instant::now(), since_epoch)
            .map_err(retry_after_seconds)
    }

    /// The same at a given moment (`now`, and the same moment as Unix time): `Err` holds how
    /// long until a request would be accepted.
    fn check_at(&self, now: Instant, since_epoch: Duration) -> Result<(), Duration> {
        let limit = self.rate.requests.get();
        let period = self.rate.period;
        match &self.counter {
            Counter::Bucket(limiter) => limiter.check().map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
            Counter::Sliding(accepted) => {
                let mut accepted = accepted.lock().unwrap_or_else(|p| p.into_inner());
                while accepted
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= period)
                {
                    accepted.pop_front();
                }
                if accepted.len() < limit as usize {
                    accepted.push_back(now);
                    return Ok(());
                }
                let oldest = accepted.front().copied().unwrap_or(now);
                Err((oldest + period).saturating_duration_since(now))
            }
            Counter::Fixed(window) => {
                let mut window = window.lock().unwrap_or_else(|p| p.into_inner());
                let period_nanos = period.as_nanos().max(1);
                let index = since_epoch.as_nanos() / period_nanos;
                if window.0 != index {
                    *window = (index, 0);
                }
                if window.1 < limit {
                    window.1 += 1;
                    return Ok(());
                }
                let ends = (index + 1) * period_nanos;
                let left = ends.saturating_sub(since_epoch.as_nanos());
                Err(Duration::from_nanos(left.min(u128::from(u64::MAX)) as u64))
            }
        }
    }
}

/// A GCRA bucket refilled evenly at `rate`, holding at most `burst`.
fn bucket(rate: RateLimit, burst: NonZeroU32) -> DefaultDirectRateLimiter {
    let interval = (rate.period / rate.requests.get()).max(Duration::from_nanos(1));
    let quota = Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least one.
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: &str, model: RateLimitModel) -> Limiter {
        Limiter::new(rate.parse().unwrap(), model)
    }

    #[test]
    fn the_models_parse_by_name_and_print_back() {
        for name in ["full-bucket", "sliding", "fixed", "bucket"] {
            let model: RateLimitModel = name.parse().unwrap();
            assert_eq!(model.to_string(), name);
        }
        assert_eq!(RateLimitModel::default(), RateLimitModel::FullBucket);
        assert!("leaky".parse::<RateLimitModel>().is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(25)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(5_999)), 6);
    }

    #[test]
    fn a_sliding_window_never_accepts_more_than_n_in_any_period_long_span() {
        let sliding = limiter("4/s", RateLimitModel::Sliding);
        let start = Instant::now();
        let epoch = Duration::ZERO;
        let at = |ms: u64| start + Duration::from_millis(ms);
        for ms in [0, 100, 200, 900] {
            assert_eq!(sliding.check_at(at(ms), epoch), Ok(()), "{ms} ms");
        }
        // Four in (0, 999]: the fifth waits until the first leaves the span.
        assert_eq!(
            sliding.check_at(at(950), epoch),
            Err(Duration::from_millis(50))
        );
        assert_eq!(sliding.check_at(at(1_000), epoch), Ok(()));
        assert_eq!(
            sliding.check_at(at(1_050), epoch),
            Err(Duration::from_millis(50))
        );
        // A refusal is not counted: the span frees up on time.
        assert_eq!(sliding.check_at(at(1_100), epoch), Ok(()));
    }

    #[test]
    fn a_fixed_window_accepts_n_per_period_aligned_to_the_clock() {
        let fixed = limiter("3/10s", RateLimitModel::Fixed);
        let now = Instant::now();
        let at = |ms: u64| Duration::from_millis(ms);
        // Unix time 7 s: the window [0 s, 10 s).
        for _ in 0..3 {
            assert_eq!(fixed.check_at(now, at(7_000)), Ok(()));
        }
        assert_eq!(fixed.check_at(now, at(7_250)), Err(at(2_750)));
        assert_eq!(
            retry_after_seconds(fixed.check_at(now, at(7_250)).unwrap_err()),
            3
        );
        // The next window starts at 10 s, whatever happened in the last.
        assert_eq!(fixed.check_at(now, at(10_000)), Ok(()));
    }

    #[test]
    fn a_bucket_allows_a_burst_of_an_eighth_and_the_full_bucket_all_at_once() {
        // 80 per 100 s: one request refills every 1.25 s, far longer than these checks take.
        let bucket = limiter("80/100s", RateLimitModel::Bucket);
        let epoch = Duration::ZERO;
        let accepted = (0..20)
            .filter(|_| bucket.check_at(Instant::now(), epoch).is_ok())
            .count();
        assert_eq!(accepted, 10);
        let wait = bucket.check_at(Instant::now(), epoch).unwrap_err();
        assert!(wait <= Duration::from_millis(1_250), "{wait:?}");

        let full = limiter("80/100s", RateLimitModel::FullBucket);
        let accepted = (0..100)
            .filter(|_| full.check_at(Instant::now(), epoch).is_ok())
            .count();
        assert_eq!(accepted, 80);
    }
}
