//! Faults survived, nothing lost: each scenario ends with the managed organization exactly as
//! desired, the unmanaged one untouched, no duplicate membership, the right exit code, and a
//! second apply that sends no write.

mod common;

use std::time::Duration;

use common::{
    DESIRED, KEY, desired_alpha, eventually, members, membersync, run, run_finished, seed, setup,
    start, stderr, stdout, write_file, writes,
};
use membersync::simulator::{
    Fault, FaultKind, SimMembership, SimOptions, SimState, Simulator, generated_state,
};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;

/// The end state every scenario must reach, and a second apply with nothing to write.
async fn assert_converged(simulator: &Simulator, dir: &std::path::Path, file: &str) {
    assert_eq!(members(simulator, "org_alpha"), desired_alpha());
    assert_eq!(
        simulator.state().roles_of("org_other"),
        seed().roles_of("org_other")
    );
    let state = simulator.state();
    let mut pairs: Vec<(&str, &str)> = state
        .memberships
        .iter()
        .map(|m| (m.organization_id.as_str(), m.user_id.as_str()))
        .collect();
    let count = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), count, "a duplicate membership");
    simulator.clear_faults();
    simulator.clear_requests();
    let again = membersync(simulator, dir, &["apply", "-f", file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(simulator), 0, "{:#?}", simulator.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_before_a_write_is_applied_is_retried() {
    let (simulator, dir, file) = setup(DESIRED).await;
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 503,
            code: "service_unavailable".into(),
        })
        .on("WRITE", "")
        .times(5),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        simulator
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count(),
        5
    );
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_after_a_write_is_applied_converges_without_a_duplicate() {
    let (simulator, dir, file) = setup(DESIRED).await;
    // The first answer to each of the five writes is a 500, though the write took effect:
    // the retries meet already_a_member_in_organization and resource_not_found.
    for (method, times) in [("POST", 2), ("PATCH", 2), ("DELETE", 1)] {
        simulator.inject(
            Fault::new(FaultKind::After { status: 500 })
                .on(method, "")
                .times(times),
        );
    }
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let statuses: Vec<u16> = simulator.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&400) && statuses.contains(&404),
        "{statuses:?}"
    );
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_are_retried() {
    let (simulator, dir, file) = setup(DESIRED).await;
    simulator.inject(
        Fault::new(FaultKind::Drop { applied: false })
            .on("GET", "")
            .times(2),
    );
    simulator.inject(
        Fault::new(FaultKind::Drop { applied: false })
            .on("WRITE", "")
            .times(2),
    );
    simulator.inject(
        Fault::new(FaultKind::Drop { applied: true })
            .on("WRITE", "")
            .times(3),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_pauses_every_request_until_retry_after() {
    // 40 members to create; the instance allows 10 requests per second and answers 429 with
    // Retry-After beyond that, while membersync is told it may send 1,000 per second.
    let (state, text) = common::creates(40);
    let options = SimOptions {
        rate_limit: Some("10/s".parse().unwrap()),
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.state().memberships.len(), 41);

    let requests = simulator.requests();
    let throttled: Vec<Duration> = requests
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at)
        .collect();
    assert!(!throttled.is_empty(), "the storm happened");
    println!(
        "429 storm: {} of {} requests answered 429 over {:?}",
        throttled.len(),
        requests.len(),
        requests.last().unwrap().at
    );
    // Every 429 says Retry-After: 1. Requests already in flight may still arrive just after
    // it; then nothing may arrive until the pause ends.
    for at in &throttled {
        let early: Vec<Duration> = requests
            .iter()
            .map(|r| r.at)
            .filter(|t| {
                *t > *at + Duration::from_millis(300) && *t < *at + Duration::from_millis(950)
            })
            .collect();
        assert!(
            early.is_empty(),
            "requests during the pause after {at:?}: {early:?}"
        );
    }
    // Few 429s: at most the requests in flight (8) per one-second window of the storm.
    let windows = requests.last().unwrap().at.as_secs() + 1;
    assert!(
        throttled.len() as u64 <= 8 * windows,
        "{} 429s over {windows} s",
        throttled.len()
    );
    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_slower_than_the_timeout_are_retried() {
    let (simulator, dir, file) = setup(DESIRED).await;
    simulator.inject(
        Fault::new(FaultKind::Delay(Duration::from_secs(3)))
            .on("POST", "")
            .times(1),
    );
    simulator.inject(
        Fault::new(FaultKind::Delay(Duration::from_secs(3)))
            .on("GET", "/organization_memberships")
            .times(1),
    );
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--request-timeout", "1s"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The slow POST takes effect after membersync gave up on it: wait until it has landed.
    eventually("the slow POST lands", async || simulator.in_flight() == 0).await;
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_listing_is_a_clear_error_and_nothing_is_written() {
    let (simulator, dir, file) = setup(DESIRED).await;
    simulator.inject(
        Fault::new(FaultKind::Malformed)
            .on("GET", "/organization_memberships")
            .always(),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("unexpected response from Clerk (HTTP 200)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(writes(&simulator), 0);
    simulator.clear_faults();
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_malformed_answer_to_a_write_is_finished_by_the_next_run() {
    let (simulator, dir, file) = setup(DESIRED).await;
    // The POST is applied, but its answer is not JSON: that change fails (exit 1), clearly.
    simulator.inject(Fault::new(FaultKind::Malformed).on("POST", "").times(1));
    // A truncated listing page is retried.
    simulator.inject(
        Fault::new(FaultKind::Drop { applied: true })
            .on("GET", "/organization_memberships")
            .times(1),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("unexpected response from Clerk"), "{out}");
    assert!(!stderr(&output).contains("panicked"));
    // The next run finds the create done and has nothing left to write.
    assert_converged(&simulator, dir.path(), &file).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memberships_added_and_removed_while_pages_are_read_are_not_lost() {
    // 4 organizations of 400: the instance listing has 4 pages; all 4 are managed.
    let state = generated_state(4, 400);
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("version: 1\norganizations:\n");
    for org in 0..4 {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for member in 1..400 {
            text.push_str(&format!("      user_{member}: member\n"));
        }
    }
    let file = write_file(dir.path(), "m.yaml", &text);
    // After the first page: three members join org_0 and two leave org_1 (the offsets of
    // every later page shift).
    simulator.inject(
        Fault::new(FaultKind::race(|state: &mut SimState| {
            for n in 0..3 {
                state.memberships.push(SimMembership {
                    id: format!("orgmem_late{n}"),
                    organization_id: "org_0".into(),
                    user_id: format!("user_{}", 400 + n),
                    role: "org:member".into(),
                    public_metadata: Map::new(),
                    private_metadata: Map::new(),
                    created_at: 10_000 + n,
                });
            }
            state.memberships.retain(|m| {
                !(m.organization_id == "org_1" && (m.user_id == "user_7" || m.user_id == "user_8"))
            });
        }))
        .on("GET", "/organization_memberships")
        .skip(1)
        .times(1),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let state = simulator.state();
    for org in 0..4 {
        let roles = state.roles_of(&format!("org_{org}"));
        assert_eq!(roles.len(), 400, "org_{org}");
        assert!(
            roles.iter().all(|(user, _)| {
                user.trim_start_matches("user_").parse::<u32>().unwrap() < 400
            })
        );
    }
    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_in_the_middle_of_a_run_stops_it_at_once() {
    let (state, text) = common::creates(40);
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    // The key is revoked after the second write.
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 401,
            code: "authentication_invalid".into(),
        })
        .skip(2)
        .always()
        .on("WRITE", ""),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let requests = simulator.requests();
    let first = requests.iter().find(|r| r.status == 401).unwrap().at;
    let after = requests.iter().filter(|r| r.at > first).count();
    assert!(
        after <= 8,
        "{after} requests after the 401 (only those in flight may land)"
    );
    let out = stdout(&output);
    assert!(
        out.contains("not sent: the run stopped after Clerk refused the secret key"),
        "{out}"
    );
    assert!(stderr(&output).contains("Check CLERK_SECRET_KEY"));
    assert!(!stderr(&output).contains(KEY) && !out.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_never_appears_in_output_logs_or_files() {
    let (simulator, dir, file) = setup(DESIRED).await;
    write_file(dir.path(), "key", &format!("{KEY}\n"));
    let url = simulator.api_url();
    let with_key = [
        ("CLERK_API_URL", url.as_str()),
        ("CLERK_SECRET_KEY", KEY),
        ("RUST_LOG", "trace"),
    ];
    let json_logs = [
        ("CLERK_API_URL", url.as_str()),
        ("CLERK_SECRET_KEY_FILE", "key"),
        ("MEMBERSYNC_LOG_FORMAT", "json"),
        ("RUST_LOG", "trace"),
    ];
    let broken_url = [
        ("CLERK_API_URL", "http://127.0.0.1:9/v1"),
        ("CLERK_SECRET_KEY", KEY),
        ("RUST_LOG", "trace"),
    ];
    let insecure = [
        ("CLERK_API_URL", "http://clerk.example.com/v1"),
        ("CLERK_SECRET_KEY", KEY),
    ];
    type Env<'a> = &'a [(&'a str, &'a str)];
    let runs: Vec<(Vec<&str>, Env)> = vec![
        (vec!["validate", "-f", &file], &with_key),
        (vec!["plan", "-f", &file, "--out", "p.json"], &with_key),
        (vec!["plan", "-f", &file, "--output", "json"], &json_logs),
        (vec!["apply", "-f", &file, "--dry-run"], &json_logs),
        (vec!["export"], &json_logs),
        (vec!["apply", "--plan", "p.json"], &json_logs),
        (vec!["apply", "-f", &file], &with_key),
        (
            vec!["plan", "-f", &file, "--request-timeout", "1s"],
            &broken_url,
        ),
        (vec!["plan", "-f", &file], &insecure),
        (vec!["plan", "-f", "missing.yaml"], &with_key),
        (
            vec!["plan", "-f", &file, "--rate-limit", "nonsense"],
            &with_key,
        ),
    ];
    for (args, env) in runs {
        let output = run(dir.path(), &args, env).await;
        let text = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!text.contains(KEY), "{args:?} printed the key:\n{text}");
        assert!(!text.contains("panicked"), "{args:?}:\n{text}");
        if env == &json_logs[..] {
            for line in stderr(&output).lines() {
                let parsed: Result<Value, _> = serde_json::from_str(line);
                assert!(parsed.is_ok(), "{args:?}: not a JSON log line: {line}");
            }
        }
    }
    // `simulate` accepts the key from the environment and never prints it.
    write_file(
        dir.path(),
        "state.json",
        &serde_json::to_string(&seed()).unwrap(),
    );
    let mut simulate = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "--state",
            "state.json",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CLERK_SECRET_KEY", KEY)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its stdout, read until it says which key it accepts: it is serving then.
    let mut lines = tokio::io::BufReader::new(simulate.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while !printed.contains("accepts") {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("simulate says what it accepts")
            .unwrap()
            .expect("simulate runs");
        printed.push_str(&line);
        printed.push('\n');
    }
    let pid = simulate.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push_str(&line);
        printed.push('\n');
    }
    let output = simulate.wait_with_output().await.unwrap();
    let text = format!("{printed}{}", stderr(&output));
    assert!(
        text.contains("accepts the secret key from CLERK_SECRET_KEY"),
        "{text}"
    );
    assert!(!text.contains(KEY), "simulate printed the key:\n{text}");

    let plan_file = std::fs::read_to_string(dir.path().join("p.json")).unwrap();
    assert!(!plan_file.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_minute_of_transient_failures_converges_in_one_run() {
    // 120 creates. Of all requests, 15% are answered 500 before anything is done, 5% are done
    // and answered 500 anyway, and 3% are done and their connection dropped: about 23% fail.
    let (state, text) = common::creates(120);
    let options = SimOptions {
        fail_rate: 0.15,
        fail_after_rate: 0.05,
        drop_rate: 0.03,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--log-format", "json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let state = simulator.state();
    assert_eq!(state.roles_of("org_0").len(), 121);
    assert_eq!(state.memberships.len(), 121, "no duplicate membership");
    let failed = simulator
        .requests()
        .iter()
        .filter(|r| r.status == 500)
        .count();
    let finished = run_finished(&output);
    let retries = finished["retries"].as_u64().unwrap();
    let tokens = finished["retry_tokens"].as_u64().unwrap();
    println!("bad minute: {failed} answered 500, {retries} retries, {tokens} tokens left");
    assert!(
        failed >= 10,
        "the bad minute happened: {failed} answered 500"
    );
    assert!(retries >= failed as u64);
    assert!((1..500).contains(&tokens), "{tokens} retry tokens left");
    // The next run finds nothing to do.
    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_against_an_api_failing_every_write_stops_within_its_retry_budget() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // 120 creates; every write is answered 503. Retried each to its own limit, that would be
    // 960 writes; the retry budget (500 tokens, 5 a retry) pays for 100 retries. (32 in
    // flight spend them in parallel, so the backoff waits do not make the test long.)
    let (state, text) = common::creates(120);
    let simulator = start(state).await;
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 503,
            code: "service_unavailable".into(),
        })
        .on("WRITE", "")
        .always(),
    );
    let gateway = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/metrics/job/membersync"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&gateway)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    let output = membersync(
        &simulator,
        dir.path(),
        &[
            "apply",
            "-f",
            &file,
            "--output",
            "json",
            "--log-format",
            "json",
            "--pushgateway",
            &gateway.uri(),
            "--concurrency",
            "32",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // The first attempts of the changes sent before the budget ran dry, and 100 retries.
    let writes = writes(&simulator);
    let finished = run_finished(&output);
    let retries = finished["retries"].as_u64().unwrap();
    assert!(retries <= 100, "{retries} retries");
    assert!(writes <= 120 + 100, "{writes} writes");
    assert!(finished["retry_tokens"].as_u64().unwrap() < 5);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 120);
    assert!(changes.iter().all(|c| c["outcome"] == "failed"));
    let not_sent = changes
        .iter()
        .filter(|c| {
            c["error"]
                .as_str()
                .is_some_and(|e| e.contains("not sent: Clerk kept failing"))
        })
        .count();
    assert!(not_sent > 0, "{report}");
    assert!(
        stderr(&output).contains("Clerk kept failing: the retry budget is spent"),
        "{}",
        stderr(&output)
    );
    let pushed = gateway.received_requests().await.unwrap();
    let metrics = String::from_utf8_lossy(&pushed[0].body);
    assert!(
        metrics.contains("membersync_retry_budget_exhausted_total 1"),
        "{metrics}"
    );
}
