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
//! - **Otherwise**: the answers to the requests let go in the second before the refused one
//!   are what it allows (counted by when they were let go, so that latency does not stretch
//!   the second; exact for a one-second sliding window, at most the burst over for a bucket);
//!   the pace is set a little under that. When the run had been sending for less than a
//!   second, that second held a pause or the run's start, so the count may be far under the
//!   real rate (a bucket with a small burst answers `429` a few requests in): the pace then
//!   climbs fast (doubling each second) until the next `429`. If that one comes within 2 s of
//!   passing the first estimate, with at most twice as much counted (half again as much once
//!   the climb has sent for a full second), the first estimate was right (a window's own burst
//!   is all the climb found). Otherwise the climb found more, and its count, per second of
//!   sending since the pause, is what the limiter accepted at least (the pace was still
//!   rising through that second): the pace is set to it, with no margin.
//! - Every `429` slows the pace. One after the pace held for 4 s, with nearly all of it
//!   accepted, means the pace was only a little too fast (a bucket's burst hides a small
//!   excess for seconds): the pace slows by 3%. Any other slows it by 5% at least. One soon
//!   (under 2 s) after the pause of the one that set the pace means the pace is still too
//!   fast, and its count says no more (a fixed window lets up to twice its limit through
//!   across its boundary): the pace slows by 15% at least.
//!
//! `429`s for requests sent before the last pause ended belong to the same storm and teach
//! nothing. After a minute without a `429` the pace probes upward gently, faster as it moves
//! away from what the last `429` taught, never past the rate limit it was given; each probe
//! that finds the same limit again doubles that minute, up to ten.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The slowest the pacer goes after 429s: this fraction of the rate limit.
pub(super) const FLOOR: f64 = 1.0 / 16.0;
/// After a 429 measured over the last second, the pace is set this far under it.
pub(super) const MARGIN: f64 = 0.97;
/// A 429 always slows the pace by at least this much ...
const LEAST_SLOWDOWN: f64 = 0.95;
/// ... but by this much only when the pace had held for [`STEADY`] before it, and nearly all
/// of it was accepted.
const STEADY_SLOWDOWN: f64 = 0.97;
const STEADY: Duration = Duration::from_secs(4);
/// "Nearly all of it": this fraction of the pace counted in the second before the 429.
const NEARLY_ALL: f64 = 0.9;
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
/// bucket with a small burst lets a climb run on for seconds ...
const CONFIRMED_WITHIN: f64 = 2.0;
/// ... but when the climb had been sending for a full second, that second's count is no
/// longer diluted by the pause: more than this much over the first estimate is what the
/// limiter accepts (a bucket refilled at twice the rate a count diluted by the run's start
/// suggested), not a window's overshoot.
const CONFIRMED_WITHIN_A_SECOND: f64 = 1.5;
const CONFIRMING_CLIMB: Duration = Duration::from_secs(2);
/// A climb that found more, within a second of the pause, counted over its stretch of
/// sending, but at least over this long.
const SHORTEST_COUNT: Duration = Duration::from_millis(750);
/// A 429 after less than [`REPEAT_WITHIN`] of sending at the pace the last 429 set: the pace
/// is still too fast, and the count of the last second tells no more than that (a fixed
/// window lets up to twice its limit through across its boundary). Slow to this fraction.
const REPEAT_SLOWDOWN: f64 = 0.85;
const REPEAT_WITHIN: Duration = Duration::from_secs(2);
/// Quiet time (no 429) before the pace probes above what the last 429 taught ...
pub(super) const HOLD: Duration = Duration::from_secs(60);
/// ... doubled, up to this, each time a probe finds the same limit again (within
/// [`SAME_LIMIT`]): a limit that holds still is not knocked on every minute.
const LONGEST_HOLD: Duration = Duration::from_secs(600);
const SAME_LIMIT: f64 = 0.1;
/// Once probing, the pace rises every this long ...
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(2);
/// ... by this fraction of what the last 429 taught, plus a tenth of how far it already is
/// above it.
pub(super) const PROBE_STEP: f64 = 0.01;
/// Requests let go this close after a refused one may have reached Clerk before it.
const SAME_MOMENT: Duration = Duration::from_millis(10);
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

/// A 429 being learnt from, with what was known when it came. Answers to requests let go
/// before it that come in during its pause (they were in flight, and may be handled after it)
/// count too, and the lesson is drawn again; it is final when the pause ends.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// When the 429 came, and when its request was let go.
    at: Instant,
    sent: Instant,
    pause: Duration,
    /// The pace it met, and how long that pace had held.
    pace: f64,
    held: Duration,
    /// The stretch of sending it ended.
    stretch: Stretch,
    /// The climb it ended, if any, and whether the pace was the one the 429 before set.
    climb: Option<(f64, Option<Instant>)>,
    set_by_429: bool,
    /// What the 429 before taught, and the quiet time it set.
    previous: Option<f64>,
    hold: Duration,
}

#[derive(Debug)]
pub(super) struct Learning {
    /// The rate limit the run was given (requests per second): never exceeded.
    ceiling: f64,
    /// The pace now.
    rate: f64,
    /// Each answer other than 429 of the last [`MEMORY`]: when it came, and when its request
    /// was let go.
    answers: VecDeque<(Instant, Instant)>,
    stretch: Option<Stretch>,
    /// When the last request was let go.
    last_grant: Option<Instant>,
    /// The 429 being learnt from, until its pause ends.
    pending: Option<Pending>,
    /// What the last 429 taught.
    lesson: Option<Lesson>,
    /// When the last 429 taught something.
    throttled: Option<Instant>,
    /// While climbing fast: where to stop.
    climb_to: Option<f64>,
    /// The climb since the last 429: the estimate it started from, and when the pace passed
    /// it.
    climb: Option<(f64, Option<Instant>)>,
    /// Whether the pace is the one the last 429 set (no climb or probe since).
    set_by_429: bool,
    /// Quiet time before probing.
    hold: Duration,
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
            pending: None,
            lesson: None,
            throttled: None,
            climb_to: None,
            climb: None,
            set_by_429: false,
            hold: HOLD,
            changed: now,
        }
    }

    /// The pace now, in requests per second.
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// What the last 429 taught (so far, while its pause lasts).
    #[cfg(test)]
    fn lesson(&self) -> Option<Lesson> {
        self.lesson
    }

    fn set_rate(&mut self, rate: f64, now: Instant) {
        self.rate = rate.clamp(self.ceiling * FLOOR, self.ceiling);
        self.changed = now;
    }

    /// A request is let go: after a quiet time (no request for twice the pace's interval, and
    /// at least a second), a new stretch of sending starts. Returns the lesson of the 429
    /// whose pause just ended, now final.
    pub(super) fn granted(&mut self, now: Instant) -> Option<Lesson> {
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
        let over = self
            .pending
            .is_some_and(|pending| now >= pending.at + pending.pause);
        if over {
            self.pending = None;
            return self.lesson;
        }
        None
    }

    /// Clerk answered (anything but 429) a request sent at `sent`. Returns whether the pace
    /// changed (a climb, a probe, or a lesson drawn again).
    pub(super) fn accepted(&mut self, now: Instant, sent: Instant) -> bool {
        self.answers.push_back((now, sent));
        while self
            .answers
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > MEMORY)
        {
            self.answers.pop_front();
        }
        if let Some(stretch) = &mut self.stretch
            && sent >= stretch.start
        {
            stretch.accepted += 1;
        } else if let Some(pending) = &mut self.pending
            && sent >= pending.stretch.start
            && sent < pending.at
        {
            // In flight when the 429 came (maybe let go after its request, and counted by
            // Clerk before it): it belongs to what the 429 teaches.
            pending.stretch.accepted += 1;
            self.learn();
            return true;
        }
        if now < self.changed {
            return false;
        }
        let since = now - self.changed;
        if let Some(target) = self.climb_to {
            return self.climb(now, since, target);
        }
        let quiet = self
            .throttled
            .is_some_and(|at| now.saturating_duration_since(at) >= self.hold);
        if quiet && self.rate < self.ceiling && since >= PROBE_EVERY {
            let estimate = self.lesson.map_or(self.rate, |l| l.accepted_per_second);
            let step = estimate * PROBE_STEP + (self.rate - estimate).max(0.0) / 10.0;
            self.set_rate(self.rate + step, now);
            self.set_by_429 = false;
            return true;
        }
        false
    }

    /// One step of a climb toward `target`.
    fn climb(&mut self, now: Instant, since: Duration, target: f64) -> bool {
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
        true
    }

    /// Clerk answered 429 to a request sent at `sent`, and every request pauses for `pause`.
    /// Returns whether it teaches something (a 429 of a storm already learnt from does not).
    pub(super) fn throttled(&mut self, now: Instant, sent: Instant, pause: Duration) -> bool {
        let stretch = self.stretch.unwrap_or(Stretch {
            start: sent,
            accepted: 0,
        });
        if sent < stretch.start {
            return false;
        }
        self.pending = Some(Pending {
            at: now,
            sent,
            pause,
            pace: self.rate,
            held: now.saturating_duration_since(self.changed),
            stretch,
            climb: self.climb,
            set_by_429: self.set_by_429,
            previous: self.lesson.map(|lesson| lesson.accepted_per_second),
            hold: self.hold,
        });
        self.throttled = Some(now);
        self.stretch = Some(Stretch {
            start: now + pause,
            accepted: 0,
        });
        self.learn();
        true
    }

    /// Draws the lesson of the pending 429: the pace, and whether to climb from it.
    fn learn(&mut self) {
        let Some(pending) = self.pending else {
            return;
        };
        let (estimate, rate, climbing) = if pending.pause > SECOND {
            let estimate = self.long_window_rate(pending);
            (estimate, estimate.min(pending.pace * LEAST_SLOWDOWN), false)
        } else {
            self.one_second_lesson(pending)
        };
        self.set_rate(rate, pending.at + pending.pause);
        self.climb_to = climbing.then_some(pending.pace * CLIMB_TO);
        self.climb = climbing.then_some((estimate, None));
        self.set_by_429 = true;
        let same = pending
            .previous
            .is_some_and(|previous| (estimate - previous).abs() <= previous * SAME_LIMIT);
        self.hold = if same {
            (pending.hold * 2).min(LONGEST_HOLD)
        } else {
            HOLD
        };
        self.lesson = Some(Lesson {
            accepted_per_second: estimate,
            pace_per_second: self.rate,
            climbing,
        });
    }

    /// For a limiter that counts over a second: what it accepted in the second before the
    /// 429, the pace, and whether to climb from it.
    fn one_second_lesson(&self, pending: Pending) -> (f64, f64, bool) {
        let sending = pending.at.saturating_duration_since(pending.stretch.start);
        let counted = self.sent_in_the_second_before(pending.sent) as f64;
        let (estimate, margin) = match pending.climb {
            // The climb found no more than the limiter's own burst over the estimate it
            // started from: that estimate was right.
            Some((from, passed))
                if passed.is_none_or(|at| {
                    pending.at.saturating_duration_since(at) < CONFIRMING_CLIMB
                }) && counted <= from * confirmed_within(sending) =>
            {
                (counted.min(from), MARGIN)
            }
            // It found more: the pace was still rising through the second counted, so the
            // count is what the limiter accepted at least, per second of sending (the climb
            // may have met its 429 within a second of the pause). Over twice the first
            // estimate, it cannot be a window's overshoot of it either (a fixed window's
            // first 429 counts its limit at least, and lets through twice that at most), and
            // the pace is set to it with no margin.
            Some((from, _)) => {
                let estimate = counted / per_second_of(sending);
                let margin = if estimate > from * CONFIRMED_WITHIN {
                    1.0
                } else {
                    MARGIN
                };
                (estimate, margin)
            }
            None => (counted, MARGIN),
        };
        let mut rate = estimate * margin;
        if pending.set_by_429 && sending < REPEAT_WITHIN {
            rate = rate.min(pending.pace * REPEAT_SLOWDOWN);
        }
        let climbing =
            sending < SECOND && rate < pending.pace * CLIMB_BELOW && pending.climb.is_none();
        let rate = if pending.held >= STEADY && counted >= pending.pace * NEARLY_ALL {
            // The pace held for seconds and the limiter let it all through until the 429: it
            // was only a little too fast (a bucket's burst hides a small excess for seconds).
            pending.pace * STEADY_SLOWDOWN
        } else {
            rate.min(pending.pace * LEAST_SLOWDOWN)
        };
        (estimate, rate, climbing)
    }

    /// For a limiter with a long memory: the smaller of what it accepted over the stretch and
    /// the pause it asks for, and of what it accepted over the 10 s window that ends with the
    /// pause (`Retry-After` is rounded up: a second of slack).
    fn long_window_rate(&self, pending: Pending) -> f64 {
        let sending = pending.at.saturating_duration_since(pending.stretch.start);
        let cycle = pending.stretch.accepted as f64 / (sending + pending.pause).as_secs_f64();
        if pending.pause >= CLERK_WINDOW {
            return cycle;
        }
        let window_start = (pending.at + pending.pause).checked_sub(CLERK_WINDOW + SECOND);
        let window = self.count_since(window_start, pending.at) as f64 / CLERK_WINDOW.as_secs_f64();
        cycle.min(window)
    }

    /// Answers to requests let go in the second before `sent` (the 429's own request), by
    /// when they were let go: the second the limiter counted, whatever the latency (counted by
    /// when the answers came, a second of answers holds a second and a round trip of sending).
    /// Requests let go within [`SAME_MOMENT`] after it count too: they may have reached Clerk
    /// first.
    fn sent_in_the_second_before(&self, sent: Instant) -> usize {
        let start = sent.checked_sub(SECOND);
        let end = sent + SAME_MOMENT;
        self.answers
            .iter()
            .filter(|(_, let_go)| *let_go <= end && start.is_none_or(|start| *let_go > start))
            .count()
    }

    /// Answers since `start` (all remembered ones if `None`) to requests let go before
    /// `before`.
    fn count_since(&self, start: Option<Instant>, before: Instant) -> usize {
        self.answers
            .iter()
            .rev()
            .take_while(|(at, _)| start.is_none_or(|start| *at > start))
            .filter(|(_, sent)| *sent < before)
            .count()
    }
}

/// The seconds a count over the last second of a stretch of `sending` covers: all of it, or
/// the stretch if shorter (at least [`SHORTEST_COUNT`], where a limiter's burst weighs too
/// much).
fn per_second_of(sending: Duration) -> f64 {
    sending.clamp(SHORTEST_COUNT, SECOND).as_secs_f64()
}

/// How much more than the estimate a climb started from may be counted at its 429 and still
/// confirm that estimate, after `sending` since the pause ended.
fn confirmed_within(sending: Duration) -> f64 {
    if sending < SECOND {
        CONFIRMED_WITHIN
    } else {
        CONFIRMED_WITHIN_A_SECOND
    }
}

#[cfg(test)]
mod tests;
