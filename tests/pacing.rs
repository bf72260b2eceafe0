//! The pacer against a limit it was not told, under each limiter design a real API may run:
//! the simulator allows 40 requests a second, membersync is told more. The run converges,
//! few requests meet a 429, and the pace the run learnt (the `pace_per_second` field of its
//! `run finished` line) is the real limit's. Counts, not timings: throughput is measured by
//! `cargo bench --bench apply -- pacing`.

mod common;

use std::time::Duration;

use common::*;
use membersync::simulator::{RateLimitModel, SimOptions, Simulator};

const REAL: f64 = 40.0;

/// `changes` creates against `model` at 40/s (10 ms latency), membersync told `told`× that.
async fn told(model: RateLimitModel, told: f64, changes: usize) {
    let (state, text) = common::creates(changes);
    let options = SimOptions {
        latency: Duration::from_millis(10),
        rate_limit: Some("40/s".parse().unwrap()),
        rate_limit_model: model,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    let rate = format!("{}/s", REAL * told);
    let output = run(
        dir.path(),
        &[
            "apply",
            "-f",
            &file,
            "--rate-limit",
            &rate,
            "--log-format",
            "json",
        ],
        &[
            ("CLERK_API_URL", simulator.api_url().as_str()),
            ("CLERK_SECRET_KEY", simulator.key()),
            // What each 429 taught, printed below when the test fails.
            ("RUST_LOG", "info,membersync::clerk::pacing=info"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.state().roles_of("org_0").len(), changes + 1);
    let requests = simulator.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let share = throttled as f64 / requests.len() as f64;
    let pace = run_finished(&output)["pace_per_second"]
        .as_f64()
        .expect("a pace_per_second field");
    let lessons: Vec<String> = stderr(&output)
        .lines()
        .filter(|line| line.contains("Clerk answered 429"))
        .map(str::to_owned)
        .collect();
    println!(
        "{model} told {told}×: {throttled} of {} requests answered 429, learnt {pace}/s\n{}",
        requests.len(),
        lessons.join("\n")
    );
    if told == 1.0 {
        assert!(
            share <= 0.01,
            "{model} told the truth: {share:.3} answered 429"
        );
        assert_eq!(pace, REAL);
    } else {
        assert!(
            share < 0.05,
            "{model} told {told}×: {share:.3} answered 429"
        );
        assert!(
            (0.8 * REAL..=1.05 * REAL).contains(&pace),
            "{model} told {told}×: learnt {pace}/s"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn told_two_and_a_half_times_a_sliding_windows_limit_the_run_learns_it() {
    told(RateLimitModel::Sliding, 2.5, 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn told_two_and_a_half_times_a_fixed_windows_limit_the_run_learns_it() {
    // A fixed window lets up to twice its limit through across its boundary: the run may
    // need a few more 429s to learn it (each slows the pace by 15% at least).
    told(RateLimitModel::Fixed, 2.5, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn told_two_and_a_half_times_a_token_buckets_limit_the_run_learns_it() {
    // A bucket's burst hides a small excess for seconds: the run goes on long enough for
    // the 429 that ends it.
    told(RateLimitModel::Bucket, 2.5, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn told_the_true_limit_of_a_sliding_window_almost_nothing_is_answered_429() {
    told(RateLimitModel::Sliding, 1.0, 200).await;
}

/// Sends `count` requests to the simulator one after another, as fast as they go, and
/// returns the `Retry-After` of every 429.
async fn hammer(simulator: &Simulator, count: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut retry_after = Vec::new();
    for _ in 0..count {
        let response = http
            .get(format!("{}/organizations", simulator.api_url()))
            .bearer_auth(KEY)
            .header("Clerk-API-Version", membersync::clerk::API_VERSION)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            let header = response.headers().get("retry-after").unwrap();
            retry_after.push(header.to_str().unwrap().to_owned());
        }
    }
    retry_after
}

#[tokio::test(flavor = "multi_thread")]
async fn every_limiter_model_answers_over_its_limit_with_retry_after_in_whole_seconds() {
    for model in [
        RateLimitModel::FullBucket,
        RateLimitModel::Sliding,
        RateLimitModel::Fixed,
        RateLimitModel::Bucket,
    ] {
        let options = SimOptions {
            rate_limit: Some("16/s".parse().unwrap()),
            rate_limit_model: model,
            ..SimOptions::default()
        };
        let simulator = Simulator::start_with(common::seed(), KEY, options)
            .await
            .unwrap();
        let retry_after = hammer(&simulator, 60).await;
        assert!(!retry_after.is_empty(), "{model}: nothing was refused");
        for value in &retry_after {
            let seconds: u64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{model}: Retry-After `{value}`"));
            assert!(seconds >= 1, "{model}: Retry-After {seconds}");
        }
        // What each model accepted, by when it arrived.
        let accepted: Vec<Duration> = simulator
            .requests()
            .iter()
            .filter(|r| r.status != 429)
            .map(|r| r.at)
            .collect();
        let most_in_a_second = accepted
            .iter()
            .map(|start| {
                accepted
                    .iter()
                    .filter(|at| **at >= *start && **at - *start < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or_default();
        match model {
            // Never more than 16 in any one-second span.
            RateLimitModel::Sliding => assert!(most_in_a_second <= 16, "{most_in_a_second}"),
            // A burst of 2, then one every 62.5 ms.
            RateLimitModel::Bucket => {
                let span = accepted.last().unwrap().saturating_sub(accepted[0]);
                let most = 2 + (16.0 * span.as_secs_f64()).ceil() as usize;
                assert!(
                    accepted.len() <= most,
                    "bucket: {} accepted",
                    accepted.len()
                );
            }
            // Up to 16 in each aligned second: two windows may meet in one span.
            RateLimitModel::Fixed => assert!(most_in_a_second <= 32, "{most_in_a_second}"),
            RateLimitModel::FullBucket => assert!(accepted.len() >= 16),
        }
    }
}

#[tokio::test]
async fn simulate_refuses_an_unknown_rate_limit_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            "simulate",
            "--state",
            "s.json",
            "--rate-limit-model",
            "leaky",
        ],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("use sliding, fixed, bucket or full-bucket"),
        "{}",
        stderr(&output)
    );
}
