//! What the pacer learns of the rate Clerk really accepts, from its answers alone: pure state
//! with explicit times, so that every rule is tested without a clock.
//!
//! A limiter in front of an API may be a sliding window, a fixed window aligned to the clock,
//! or a token bucket with a small burst, and its `Retry-After` is whole seconds, rounded up, so
//! it says little. What a `429` teaches depends on how long the limiter's memory is:
//!
//! - **`Retry-After` over a second**: the limiter counts over a long window (Clerk documents
//!   10 s). What it accepted since the last pause ended, over that time plus the pause it asks
//!   for, is what one of its windows allows; so is what it accepted over the 10 s window that
//!   ends with the pause. The pace is the smaller, with no margin: both are rates it already
//!   granted.
//! - **Otherwise**: the answers of the last second are what it allows (exact for a one-second
//!   sliding window, at most the burst over for a bucket); the pace is set a little under
//!   that. When the run had been sending for less than a second, that second held a pause or
//!   the run's start, so the count may be far under the real rate (a bucket with a small burst
//!   answers `429` a few requests in): the pace then climbs fast (doubling each second) until
//!   the next `429`. If that one comes within 2 s of passing the first estimate, with at most
//!   twice as much counted, the first estimate was right (a window's own burst is all the
//!   climb found); otherwise the new count, over a second of sending, is the estimate.
//! - A `429` soon (under 2 s) after the pause of the one that set the pace means the pace is
//!   still too fast, and its count says no more (a fixed window lets up to twice its limit
//!   through across its boundary): the pace slows by 15% at least.
//!
//! `429`s for requests sent before the last pause ended belong to the same storm and teach
//! nothing. After a long quiet time the pace probes upward gently, faster as it moves away
//! from what the last `429` taught, never past the rate limit it was given.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The slowest the pacer goes after 429s: this fraction of the rate limit.
pub(super) const FLOOR: f64 = 1.0 / 16.0;
/// After a 429 measured over the last second, the pace is set this far under it.
pub(super) const MARGIN: f64 = 0.97;
/// A 429 always slows the pace by at least this much.
const LEAST_SLOWDOWN: f64 = 0.97;
/// The window of the last answers a one-second limiter counts.
const SECOND: Duration = Duration::from_secs(1);
/// The window Clerk documents for its limits: what a long `Retry-After` is measured against.
const CLERK_WINDOW: Duration = Duration::from_secs(10);
/// The climb after a 429 that taught too little: this factor per second.
const CLIMB_PER_SECOND: f64 = 2.0;
/// How often the climb raises the pace.
const CLIMB_EVERY: Duration = Duration::from_millis(100);
/// The climb stops at this fraction of the pace that met the 429.
const CLIMB_TO: f64 = 0.9;
/// A 429 measured over a count diluted by a pause starts a climb if it would slow the pace
/// under this fraction of what it was.
const CLIMB_BELOW: f64 = 0.9;
/// A climb that met its 429 within [`CONFIRMING_CLIMB`] of passing the estimate it started
/// from, with no more than this much of it counted in the last second, confirms that
/// estimate: a fixed window lets up to twice its limit through across its boundary, and a
/// bucket with a small burst lets a climb run on for seconds.
const CONFIRMED_WITHIN: f64 = 2.0;
const CONFIRMING_CLIMB: Duration = Duration::from_secs(2);
/// A 429 after less than [`REPEAT_WITHIN`] of sending at the pace the last 429 set: the pace
/// is still too fast, and the count of the last second tells no more than that (a fixed
/// window lets up to twice its limit through across its boundary). Slow to this fraction.
const REPEAT_SLOWDOWN: f64 = 0.85;
const REPEAT_WITHIN: Duration = Duration::from_secs(2);
/// Quiet time (no 429) before the pace probes above what the last 429 taught.
pub(super) const HOLD: Duration = Duration::from_secs(30);
/// Once probing, the pace rises every this long ...
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(2);
/// ... by this fraction of what the last 429 taught, plus a tenth of how far it already is
/// above it.
pub(super) const PROBE_STEP: f64 = 0.01;
/// Answers older than this are forgotten.
const MEMORY: Duration = Duration::from_secs(12);

/// What a 429 taught, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Lesson {
    /// The rate Clerk was found to accept, in requests per second.
    pub accepted_per_second: f64,
    /// The pace now.
    pub pace_per_second: f64,
    /// Whether the pace climbs fast from here (the count was diluted by a pause).
    pub climbing: bool,
}

/// A time of sending without a pause: since the last pause ended, or since the run started
/// sending after a quiet time.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    start: Instant,
    /// Answers other than 429 to requests sent within it.
    accepted: u64,
}

#[derive(Debug)]
pub(super) struct Learning {
    /// The rate limit the run was given (requests per second): never exceeded.
    ceiling: f64,
    /// The pace now.
    rate: f64,
    /// When each answer other than 429 of the last [`MEMORY`] came.
    answers: VecDeque<Instant>,
    stretch: Option<Stretch>,
    /// When the last request was let go.
    last_grant: Option<Instant>,
    /// The rate the last 429 taught.
    estimate: Option<f64>,
    /// When the last 429 taught something.
    throttled: Option<Instant>,
    /// While climbing fast: where to stop.
    climb_to: Option<f64>,
    /// The climb since the last 429: the estimate it started from, and when the pace passed
    /// it.
    climb: Option<(f64, Option<Instant>)>,
    /// Whether the pace is the one the last 429 set (no climb or probe since).
    set_by_429: bool,
    /// When the pace last changed (or the pause of the last 429 ends).
    changed: Instant,
}

impl Learning {
    pub(super) fn new(ceiling: f64, now: Instant) -> Learning {
        Learning {
            ceiling,
            rate: ceiling,
            answers: VecDeque::new(),
            stretch: None,
            last_grant: None,
            estimate: None,
            throttled: None,
            climb_to: None,
            climb: None,
            set_by_429: false,
            changed: now,
        }
    }

    /// The pace now, in requests per second.
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    fn set_rate(&mut self, rate: f64, now: Instant) {
        self.rate = rate.clamp(self.ceiling * FLOOR, self.ceiling);
        self.changed = now;
    }

    /// A request is let go: after a quiet time (no request for twice the pace's interval, and
    /// at least a second), a new stretch of sending starts.
    pub(super) fn granted(&mut self, now: Instant) {
        let quiet = Duration::from_secs_f64(2.0 / self.rate).max(SECOND);
        let idle = self
            .last_grant
            .is_none_or(|last| now.saturating_duration_since(last) > quiet);
        let paused = self.stretch.is_some_and(|s| s.start > now);
        if idle && !paused {
            self.stretch = Some(Stretch {
                start: now,
                accepted: 0,
            });
        }
        self.last_grant = Some(now);
    }

    /// Clerk answered (anything but 429) a request sent at `sent`. Returns whether the pace
    /// changed (a climb, or a probe).
    pub(super) fn accepted(&mut self, now: Instant, sent: Instant) -> bool {
        self.answers.push_back(now);
        while self
            .answers
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > MEMORY)
        {
            self.answers.pop_front();
        }
        if let Some(stretch) = &mut self.stretch
            && sent >= stretch.start
        {
            stretch.accepted += 1;
        }
        if now < self.changed {
            return false;
        }
        let since = now - self.changed;
        if let Some(target) = self.climb_to {
            if self.rate >= target {
                self.climb_to = None;
                return false;
            }
            if since < CLIMB_EVERY {
                return false;
            }
            let rate = (self.rate * CLIMB_PER_SECOND.powf(since.as_secs_f64())).min(target);
            self.set_rate(rate, now);
            if let Some((from, passed @ None)) = &mut self.climb
                && self.rate > *from
            {
                *passed = Some(now);
            }
            self.set_by_429 = false;
            return true;
        }
        let quiet = self
            .throttled
            .is_some_and(|at| now.saturating_duration_since(at) >= HOLD);
        if quiet && self.rate < self.ceiling && since >= PROBE_EVERY {
            let estimate = self.estimate.unwrap_or(self.rate);
            let step = estimate * PROBE_STEP + (self.rate - estimate).max(0.0) / 10.0;
            self.set_rate(self.rate + step, now);
            self.set_by_429 = false;
            return true;
        }
        false
    }

    /// Clerk answered 429 to a request sent at `sent`, and every request pauses for `pause`.
    /// Returns what it taught, or `None` for a 429 of a storm already learnt from.
    pub(super) fn throttled(
        &mut self,
        now: Instant,
        sent: Instant,
        pause: Duration,
    ) -> Option<Lesson> {
        let stretch = self.stretch.unwrap_or(Stretch {
            start: sent,
            accepted: 0,
        });
        if sent < stretch.start {
            return None;
        }
        let sending = now.saturating_duration_since(stretch.start);
        let pace = self.rate;
        let (estimate, rate, climbing) = if pause > SECOND {
            let estimate = self.long_window_rate(now, stretch, pause);
            (estimate, estimate, false)
        } else {
            let counted = self.count_since(now.checked_sub(SECOND)) as f64;
            let estimate = match self.climb {
                // The climb found no more than the limiter's own burst over the estimate it
                // started from: that estimate was right.
                Some((from, passed))
                    if passed
                        .is_none_or(|at| now.saturating_duration_since(at) < CONFIRMING_CLIMB)
                        && counted <= from * CONFIRMED_WITHIN =>
                {
                    counted.min(from)
                }
                _ => counted,
            };
            let mut rate = estimate * MARGIN;
            if self.set_by_429 && sending < REPEAT_WITHIN {
                rate = rate.min(pace * REPEAT_SLOWDOWN);
            }
            let climbing = sending < SECOND && rate < pace * CLIMB_BELOW && self.climb.is_none();
            (estimate, rate, climbing)
        };
        let resumes = now + pause;
        self.set_rate(rate.min(pace * LEAST_SLOWDOWN), resumes);
        self.climb_to = climbing.then_some(pace * CLIMB_TO);
        self.climb = climbing.then_some((estimate, None));
        self.set_by_429 = true;
        self.estimate = Some(estimate);
        self.throttled = Some(now);
        self.stretch = Some(Stretch {
            start: resumes,
            accepted: 0,
        });
        Some(Lesson {
            accepted_per_second: estimate,
            pace_per_second: self.rate,
            climbing,
        })
    }

    /// For a limiter with a long memory: the smaller of what it accepted over this stretch
    /// and the pause it asks for, and of what it accepted over the 10 s window (or the rate
    /// limit's period, if longer) that ends with the pause (`Retry-After` is rounded up: a
    /// second of slack).
    fn long_window_rate(&self, now: Instant, stretch: Stretch, pause: Duration) -> f64 {
        let sending = now.saturating_duration_since(stretch.start);
        let cycle = stretch.accepted as f64 / (sending + pause).as_secs_f64();
        if pause >= CLERK_WINDOW {
            return cycle;
        }
        let window_start = (now + pause).checked_sub(CLERK_WINDOW + SECOND);
        let window = self.count_since(window_start) as f64 / CLERK_WINDOW.as_secs_f64();
        cycle.min(window)
    }

    /// Answers since `start` (all remembered ones if `None`).
    fn count_since(&self, start: Option<Instant>) -> usize {
        match start {
            Some(start) => self
                .answers
                .iter()
                .rev()
                .take_while(|at| **at > start)
                .count(),
            None => self.answers.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `count` answers, evenly spread from `from` over `over`; each request sent 10 ms before.
    fn answer(learning: &mut Learning, from: Instant, over: Duration, count: u32) -> Instant {
        let step = over / count;
        for n in 1..=count {
            let at = from + step * n;
            learning.granted(at - ms(10));
            learning.accepted(at, at - ms(10));
        }
        from + over
    }

    #[test]
    fn a_429_after_a_full_second_of_sending_paces_just_under_the_last_seconds_answers() {
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(2_000), 90);
        let lesson = learning.throttled(now, now - ms(10), SECOND).unwrap();
        assert_eq!(lesson.accepted_per_second, 45.0);
        assert!((learning.rate() - 45.0 * MARGIN).abs() < 1e-9);
        assert!(!lesson.climbing);
    }

    #[test]
    fn a_429_soon_after_the_run_started_climbs_fast_from_a_count_diluted_by_the_start() {
        // A bucket of 5 refilled at 40/s, told 100/s: the 429 comes 8 requests in.
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(80), 8);
        let lesson = learning.throttled(now, now - ms(10), SECOND).unwrap();
        assert!(lesson.climbing);
        assert!((learning.rate() - 8.0 * MARGIN).abs() < 1e-9);
        // Nothing changes during the pause; then the pace doubles each second, by steps.
        let resumed = now + SECOND;
        assert!(!learning.accepted(resumed - ms(1), now));
        let later = answer(&mut learning, resumed, ms(2_000), 40);
        assert!(learning.rate() > 8.0 * MARGIN * 3.5, "{}", learning.rate());
        assert!(learning.rate() <= 8.0 * MARGIN * 4.0 + 1e-9);
        // It stops at 90% of the pace that met the 429.
        answer(&mut learning, later, ms(5_000), 300);
        assert!((learning.rate() - 90.0).abs() < 1e-9, "{}", learning.rate());
    }

    #[test]
    fn a_429_of_the_same_storm_teaches_nothing() {
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(2_000), 80);
        learning.throttled(now, now - ms(10), SECOND).unwrap();
        let pace = learning.rate();
        // Sent before the pause ended: the same storm.
        assert_eq!(learning.throttled(now + ms(5), now - ms(5), SECOND), None);
        assert_eq!(learning.rate(), pace);
        // Sent after it: a new lesson.
        let resumed = now + SECOND + ms(1);
        learning.granted(resumed);
        assert!(
            learning
                .throttled(resumed + ms(20), resumed, SECOND)
                .is_some()
        );
        assert!(learning.rate() < pace);
    }

    #[test]
    fn a_long_retry_after_is_measured_over_the_window_it_closes() {
        // A fixed window of 400 per 10 s, told 100/s: 400 accepted in 4 s, then "retry in
        // 6 s".
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(4_000), 400);
        let lesson = learning
            .throttled(now, now - ms(10), Duration::from_secs(6))
            .unwrap();
        assert!((lesson.accepted_per_second - 40.0).abs() < 1e-9);
        assert!((learning.rate() - 40.0).abs() < 1e-9);
        assert!(!lesson.climbing);
    }

    #[test]
    fn a_long_retry_after_counts_only_the_window_it_closes_and_a_second_of_slack() {
        // The run started 2 s before a fixed window ended: 200 then, and 400 in the next 4 s.
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(6_000), 600);
        learning
            .throttled(now, now - ms(10), Duration::from_secs(6))
            .unwrap();
        // The 10 s window ending with the pause holds 400, and the second of slack 100 more.
        assert!((learning.rate() - 50.0).abs() < 1e-9, "{}", learning.rate());
    }

    #[test]
    fn quiet_time_holds_the_pace_then_probes_upward_never_past_the_ceiling() {
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(2_000), 80);
        learning.throttled(now, now - ms(10), SECOND).unwrap();
        let learnt = learning.rate();
        let resumed = now + SECOND;
        let held = answer(&mut learning, resumed, HOLD - SECOND - ms(100), 1_000);
        assert_eq!(learning.rate(), learnt);
        let probed = answer(&mut learning, held, PROBE_EVERY, 100);
        assert!((learning.rate() - (learnt + 40.0 * PROBE_STEP)).abs() < 1e-9);
        let mut at = probed;
        for _ in 0..1_000 {
            at = answer(&mut learning, at, PROBE_EVERY, 10);
        }
        assert_eq!(learning.rate(), 100.0);
    }

    #[test]
    fn a_429_before_anything_was_accepted_slows_to_the_floor_not_to_zero() {
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        learning.granted(start);
        learning.throttled(start + ms(20), start, SECOND).unwrap();
        assert_eq!(learning.rate(), 100.0 * FLOOR);
    }

    #[test]
    fn a_climb_that_only_meets_a_windows_burst_confirms_the_estimate_it_started_from() {
        // A one-second window of 40, told 100/s: 40 in 0.4 s, a 429, a climb, and a 429 as
        // soon as the climb passes 40, with 46 counted across the window's boundary.
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(400), 40);
        assert!(
            learning
                .throttled(now, now - ms(10), SECOND)
                .unwrap()
                .climbing
        );
        let resumed = now + SECOND;
        let later = answer(&mut learning, resumed, ms(900), 46);
        let lesson = learning.throttled(later, later - ms(10), SECOND).unwrap();
        assert_eq!(lesson.accepted_per_second, 40.0);
        assert!(!lesson.climbing);
        assert!((learning.rate() - 40.0 * MARGIN).abs() < 1e-9);
    }

    #[test]
    fn a_429_soon_after_the_pace_was_set_slows_it_by_more_than_the_margin() {
        let start = Instant::now();
        let mut learning = Learning::new(100.0, start);
        let now = answer(&mut learning, start, ms(2_000), 120);
        learning.throttled(now, now - ms(10), SECOND).unwrap();
        let pace = learning.rate();
        assert!((pace - 60.0 * MARGIN).abs() < 1e-9);
        // A second later, at that pace, Clerk refuses again, having counted about as many.
        let resumed = now + SECOND;
        let later = answer(&mut learning, resumed, ms(1_000), 58);
        learning.throttled(later, later - ms(10), SECOND).unwrap();
        assert!((learning.rate() - pace * REPEAT_SLOWDOWN).abs() < 1e-9);
    }
}
