//! Every rule of the pacer's learning, with explicit times.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A 429 that teaches something, and what it taught (so far).
fn throttle(learning: &mut Learning, now: Instant, sent: Instant, pause: Duration) -> Lesson {
    assert!(learning.throttled(now, sent, pause));
    learning.lesson().unwrap()
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
    let lesson = throttle(&mut learning, now, now - ms(10), SECOND);
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
    let lesson = throttle(&mut learning, now, now - ms(10), SECOND);
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
    throttle(&mut learning, now, now - ms(10), SECOND);
    let pace = learning.rate();
    // Sent before the pause ended: the same storm.
    assert!(!learning.throttled(now + ms(5), now - ms(5), SECOND));
    assert_eq!(learning.rate(), pace);
    // Sent after it: a new lesson.
    let resumed = now + SECOND + ms(1);
    learning.granted(resumed);
    assert!(learning.throttled(resumed + ms(20), resumed, SECOND));
    assert!(learning.rate() < pace);
}

#[test]
fn a_long_retry_after_is_measured_over_the_window_it_closes() {
    // A fixed window of 400 per 10 s, told 100/s: 400 accepted in 4 s, then "retry in
    // 6 s".
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(4_000), 400);
    let lesson = throttle(&mut learning, now, now - ms(10), Duration::from_secs(6));
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
    throttle(&mut learning, now, now - ms(10), Duration::from_secs(6));
    // The 10 s window ending with the pause holds 400, and the second of slack 100 more.
    assert!((learning.rate() - 50.0).abs() < 1e-9, "{}", learning.rate());
}

#[test]
fn quiet_time_holds_the_pace_then_probes_upward_never_past_the_ceiling() {
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(2_000), 80);
    throttle(&mut learning, now, now - ms(10), SECOND);
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
    throttle(&mut learning, start + ms(20), start, SECOND);
    assert_eq!(learning.rate(), 100.0 * FLOOR);
}

#[test]
fn a_climb_that_only_meets_a_windows_burst_confirms_the_estimate_it_started_from() {
    // A one-second window of 40, told 100/s: 40 in 0.4 s, a 429, a climb, and a 429 as
    // soon as the climb passes 40, with 46 counted across the window's boundary.
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(400), 40);
    assert!(throttle(&mut learning, now, now - ms(10), SECOND).climbing);
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(900), 46);
    let lesson = throttle(&mut learning, later, later - ms(10), SECOND);
    assert_eq!(lesson.accepted_per_second, 40.0);
    assert!(!lesson.climbing);
    assert!((learning.rate() - 40.0 * MARGIN).abs() < 1e-9);
}

#[test]
fn a_climb_that_counts_far_more_over_a_full_second_of_sending_takes_the_new_count() {
    // A bucket of 5 refilled at 40/s, told 60/s, 100 ms latency: 23 answered in the
    // 0.9 s before the first 429 (the run's start dilutes the count), a climb, and after
    // 1.2 s of sending a 429 with 45 counted in the last second (the refill and the
    // burst). That is what the bucket accepts, not a window's overshoot.
    let start = Instant::now();
    let mut learning = Learning::new(60.0, start);
    let now = answer(&mut learning, start, ms(900), 23);
    assert!(throttle(&mut learning, now, now - ms(10), SECOND).climbing);
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(1_200), 53);
    let lesson = throttle(&mut learning, later, later - ms(10), SECOND);
    assert_eq!(lesson.accepted_per_second, 45.0);
    assert!(!lesson.climbing);
    // Within twice the first estimate, it might still be a window's overshoot: the pace
    // is set under it by the margin.
    assert!((learning.rate() - 45.0 * MARGIN).abs() < 1e-9);
}

#[test]
fn a_climb_that_finds_more_within_a_second_of_the_pause_counts_per_second_of_sending() {
    // A bucket of 5 refilled at 40/s, told 400/s: 7 answered before the first 429, a
    // climb, and a 429 0.9 s after the pause with 36 sent since.
    let start = Instant::now();
    let mut learning = Learning::new(400.0, start);
    let now = answer(&mut learning, start, ms(20), 7);
    assert!(throttle(&mut learning, now, now - ms(10), SECOND).climbing);
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(900), 36);
    let lesson = throttle(&mut learning, later, later - ms(5), SECOND);
    // Sending started with the first request after the pause, 885 ms before the 429.
    assert!((lesson.accepted_per_second - 36.0 / 0.885).abs() < 1e-9);
    // Far over twice the first estimate: no window's overshoot, and the pace was rising
    // through that second, so no margin under it.
    assert_eq!(learning.rate(), lesson.accepted_per_second);
}

#[test]
fn the_second_counted_is_the_second_of_sending_whatever_the_latency() {
    // 40 a second for two seconds, each answered 100 ms after it was let go: the second
    // of answers before the 429 holds 44 answers, but only 40 requests let go in a second.
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    // Those let go after the refused one (more than a moment after) are not counted.
    let sent = start + ms(2_010);
    for n in 1..=84 {
        let let_go = start + ms(25 * n);
        learning.granted(let_go);
        learning.accepted(let_go + ms(100), let_go);
    }
    let lesson = throttle(&mut learning, sent + ms(100), sent, SECOND);
    assert_eq!(lesson.accepted_per_second, 40.0);
}

#[test]
fn a_429_after_seconds_at_a_steady_pace_slows_it_by_a_little() {
    // Paced at 41/s for 6 s after a lesson, all of it accepted: a bucket's burst hid the
    // excess until it ran out. The pace slows by 3%, not to the count's margin.
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(2_000), 84);
    throttle(&mut learning, now, now - ms(10), SECOND);
    let pace = learning.rate();
    assert!((pace - 42.0 * MARGIN).abs() < 1e-9);
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(6_000), 244);
    throttle(&mut learning, later, later - ms(10), SECOND);
    assert!((learning.rate() - pace * STEADY_SLOWDOWN).abs() < 1e-9);
    // Far fewer accepted than the pace (the limit fell): the count rules.
    let resumed = later + SECOND;
    let last = answer(&mut learning, resumed, ms(6_000), 120);
    throttle(&mut learning, last, last - ms(10), SECOND);
    assert!((learning.rate() - 20.0 * MARGIN).abs() < 1e-9);
}

#[test]
fn a_429_soon_after_the_pace_was_set_slows_it_by_more_than_the_margin() {
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(2_000), 120);
    throttle(&mut learning, now, now - ms(10), SECOND);
    let pace = learning.rate();
    assert!((pace - 60.0 * MARGIN).abs() < 1e-9);
    // A second later, at that pace, Clerk refuses again, having counted about as many.
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(1_000), 58);
    throttle(&mut learning, later, later - ms(10), SECOND);
    assert!((learning.rate() - pace * REPEAT_SLOWDOWN).abs() < 1e-9);
}

#[test]
fn answers_in_flight_when_the_429_came_are_counted_in_its_lesson() {
    // 38 answers in the last second, then the 429; two more requests let go before its
    // own are answered during the pause (handled after it, as concurrent answers may be).
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let now = answer(&mut learning, start, ms(2_000), 76);
    let sent = now - ms(10);
    assert_eq!(
        throttle(&mut learning, now, sent, SECOND).accepted_per_second,
        38.0
    );
    assert!(learning.accepted(now + ms(2), sent - ms(1)));
    assert!(learning.accepted(now + ms(3), sent - ms(2)));
    assert_eq!(learning.lesson().unwrap().accepted_per_second, 40.0);
    assert!((learning.rate() - 40.0 * MARGIN).abs() < 1e-9);
    // So is one let go just after the 429's own request: it may have reached Clerk first.
    assert!(learning.accepted(now + ms(4), sent + ms(1)));
    assert_eq!(learning.lesson().unwrap().accepted_per_second, 41.0);
    // The pause ends: the lesson is final, once.
    assert_eq!(learning.granted(now + SECOND), learning.lesson());
    assert_eq!(learning.granted(now + SECOND + ms(30)), None);
}

#[test]
fn a_probe_that_finds_the_same_limit_again_waits_twice_as_long_before_the_next() {
    let start = Instant::now();
    let mut learning = Learning::new(100.0, start);
    let mut now = answer(&mut learning, start, ms(2_000), 80);
    throttle(&mut learning, now, now - ms(10), SECOND);
    for hold in [HOLD * 2, HOLD * 4, HOLD * 8, LONGEST_HOLD, LONGEST_HOLD] {
        // Quiet until the probe passes 40 again, and Clerk refuses at 40 a second.
        let resumed = now + SECOND;
        now = answer(&mut learning, resumed, ms(1_000), 39);
        while learning.rate() <= 40.0 {
            now = answer(&mut learning, now, PROBE_EVERY, 80);
        }
        let probed = answer(&mut learning, now, ms(1_000), 40);
        throttle(&mut learning, probed, probed - ms(10), SECOND);
        assert_eq!(learning.hold, hold);
        now = probed;
    }
    // Another limit: back to a minute.
    let resumed = now + SECOND;
    let later = answer(&mut learning, resumed, ms(3_000), 90);
    throttle(&mut learning, later, later - ms(10), SECOND);
    assert_eq!(learning.hold, HOLD);
}
