//! The pacer against a limit it was not told: the simulator allows fewer requests than
//! `--rate-limit` says. The run converges, and few requests meet a 429 (counts, not timings:
//! throughput is measured by `cargo bench --bench apply -- pacing`).

mod common;

use common::*;
use membersync::simulator::{SimOptions, Simulator};

async fn told(ratio: u32) {
    const REAL: u32 = 40;
    let (state, text) = common::creates(200);
    let options = SimOptions {
        latency: std::time::Duration::from_millis(10),
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
