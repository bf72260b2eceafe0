//! The pacer against a limit it was not told: the simulator allows fewer requests than
//! `--rate-limit` says. The run converges, and few requests meet a 429 (counts, not timings:
//! throughput is measured by `cargo bench --bench apply -- pacing`).

mod common;

use std::time::Duration;

use common::*;
use membersync::simulator::{RateLimitModel, SimOptions, Simulator};

async fn told(ratio: u32) {
    const REAL: u32 = 40;
    let (state, text) = common::creates(200);
    let options = SimOptions {
        latency: Duration::from_millis(10),
        rate_limit: Some(format!("{REAL}/s").parse().unwrap()),
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    let rate = format!("{}/s", REAL * ratio);
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--rate-limit", &rate],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.state().roles_of("org_0").len(), 201);
    let requests = simulator.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    // One storm of at most `--concurrency` 429s while the pacer learns, and few after.
    // The pace it learnt: just under what the simulator accepted (its bucket of 40 plus 40 a
    // second), whatever it was told.
    let log = stderr(&output);
    let pace: f64 = log
        .lines()
        .filter(|line| line.contains("pacing just under the rate it accepted"))
        .filter_map(|line| line.split("pace_per_second=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("told {ratio}×: no 429 taught the pacer anything:\n{log}"));
    assert!(
        pace <= f64::from(2 * REAL),
        "told {ratio}×: paced at {pace}/s"
    );
    assert!(
        throttled <= 8 + requests.len() / 20,
        "told {ratio}×: {throttled} of {} requests answered 429",
        requests.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn told_twice_the_real_limit_the_run_converges_with_few_429s() {
    told(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn told_ten_times_the_real_limit_the_run_converges_with_few_429s() {
    told(10).await;
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
