//! `membersync daemon` against the simulator: health, readiness, metrics, drift repaired,
//! a broken file skipped, JSON logs, and SIGTERM.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, Setup};
use common::{KEY, eventually, sample, seed, start, write_file};
use membersync::simulator::Simulator;
use serde_json::Value;

const DESIRED: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      four@example.com: billing\n";

/// The daemon without webhooks, a cycle a second, with debug logs.
async fn daemon(simulator: &Simulator, dir: &std::path::Path) -> Daemon {
    let setup = Setup {
        webhooks: false,
        log: "membersync=debug,warn",
        args: &["--interval", "1s"],
        ..Setup::default()
    };
    Daemon::spawn_with(simulator, dir, setup).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_converges_repairs_drift_skips_a_broken_file_and_stops_on_sigterm() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = daemon(&simulator, dir.path()).await;

    assert_eq!(daemon.get("/healthz").await.0, 200);
    eventually("ready", async || daemon.get("/readyz").await.0 == 200).await;
    let roles = simulator.state().roles_of("org_alpha");
    assert!(
        roles.contains(&("user_4".into(), "org:billing".into())),
        "{roles:?}"
    );

    // /metrics is Prometheus text and counts what the daemon did.
    let (status, metrics) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    for line in metrics.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(series.starts_with("membersync_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert_eq!(
        sample(
            &metrics,
            "membersync_changes_total{resource=\"membership\",action=\"create\",outcome=\"applied\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "membersync_runs_total{command=\"daemon\",result=\"success\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(sample(&metrics, "membersync_ready"), Some(1.0));

    // Drift injected into the instance is repaired by a later cycle.
    simulator.mutate(|state| {
        state
            .memberships
            .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_2"));
    });
    eventually("drift repaired", async || {
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&("user_2".into(), "org:member".into()))
    })
    .await;

    // A broken file skips cycles: no writes, the error logged and counted.
    write_file(
        dir.path(),
        "m.yaml",
        "version: 1\norganizations:\n  alpha:\n    members: [oops\n",
    );
    eventually("a config error", async || {
        let (_, metrics) = daemon.get("/metrics").await;
        sample(&metrics, "membersync_config_errors_total").unwrap_or(0.0) >= 1.0
    })
    .await;
    simulator.clear_requests();
    simulator.mutate(|state| {
        state
            .memberships
            .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_3"));
    });
    let config_errors = async || {
        let (_, metrics) = daemon.get("/metrics").await;
        sample(&metrics, "membersync_config_errors_total").unwrap_or(0.0)
    };
    let skipped = config_errors().await;
    eventually("two more cycles skipped", async || {
        config_errors().await >= skipped + 2.0
    })
    .await;
    assert!(
        simulator.requests().is_empty(),
        "{:#?}",
        simulator.requests()
    );
    assert_eq!(daemon.get("/readyz").await.0, 200);

    // SIGTERM: exit 0, in time.
    daemon.terminate();
    let (code, seen) = daemon.exited(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));

    // JSON logs: one object per line, a run ID on each, never the key.
    assert!(seen.len() > 10);
    let mut writes_logged = 0;
    for line in &seen {
        assert!(!line.contains(KEY), "the key leaked: {line}");
        let parsed: Value = serde_json::from_str(line).expect(line);
        let spans = parsed["spans"].as_array().expect(line);
        assert!(
            spans.iter().any(|s| s.get("run_id").is_some()),
            "no run ID: {line}"
        );
        if parsed["message"] == "change applied" {
            writes_logged += 1;
        }
    }
    assert!(writes_logged >= 2, "one line per write");
    assert!(
        seen.iter()
            .any(|l| l.contains("\"message\":\"clerk request\"") && l.contains("\"attempt\":1"))
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("m.yaml:4:5: organizations.alpha.members")),
        "the parse error is logged with file, line and column"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_is_reported_every_cycle_without_hammering_the_api() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let setup = Setup {
        webhooks: false,
        log: "membersync=info",
        key: "sk_test_revoked_key",
        args: &["--interval", "1s"],
        ..Setup::default()
    };
    let daemon = Daemon::spawn_with(&simulator, dir.path(), setup).await;
    eventually("three cycles refused", async || {
        daemon.count_logged("Clerk refused the secret key") >= 3
    })
    .await;
    daemon.terminate();
    let (code, lines) = daemon.exited(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    let log = lines.join("\n");
    let refusals = log.matches("Clerk refused the secret key").count();
    let requests = simulator.requests().len();
    // Four or five cycles: each reports the refusal and sends one request.
    assert!(refusals >= 3, "{log}");
    assert!(
        requests <= refusals + 1,
        "{requests} requests for {refusals} cycles"
    );
    assert!(!log.contains("sk_test_revoked_key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_apply_pushes_its_metrics_to_a_pushgateway() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let gateway = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/metrics/job/membersync"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&gateway)
        .await;
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let output = common::membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", "m.yaml", "--pushgateway", &gateway.uri()],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let pushed = gateway.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&pushed[0].body);
    assert!(
        body.contains("membersync_runs_total{command=\"apply\",result=\"success\"} 1"),
        "{body}"
    );
    assert!(body.contains(
        "membersync_changes_total{resource=\"membership\",action=\"create\",outcome=\"applied\"} 1"
    ));
    // One structured summary line ends the run.
    let log = common::stderr(&output);
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("run finished") && last.contains("applied=1"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_in_the_middle_of_a_cycle_lets_requests_in_flight_finish_and_starts_no_more() {
    // 40 creates against a slow instance (200 ms a request): SIGTERM lands mid-cycle.
    let (state, text) = common::creates(40);
    let options = membersync::simulator::SimOptions {
        latency: Duration::from_millis(200),
        ..Default::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &text);
    let daemon = daemon(&simulator, dir.path()).await;
    eventually("the first writes", async || {
        simulator.requests().iter().any(|r| r.is_write())
    })
    .await;
    daemon.terminate();
    let signalled = simulator.requests().len();
    let (code, seen) = daemon.exited(Duration::from_secs(25)).await;
    assert_eq!(code, Some(0));
    // Only the requests already in flight (at most 8) were answered after the signal.
    let after = simulator.requests().len() - signalled;
    assert!(after <= 8, "{after} requests after SIGTERM");
    let created = simulator.state().memberships.len() - 1;
    assert!(created < 40, "the cycle was cut short ({created} created)");
    assert!(
        seen.iter()
            .any(|l| l.contains("change skipped") && l.contains("interrupted")),
        "the changes not sent are reported as skipped"
    );
    // The next run finishes the job.
    let output = common::membersync(&simulator, dir.path(), &["apply", "-f", "m.yaml"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    assert_eq!(simulator.state().memberships.len(), 41);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_exits_2_at_start_without_a_key_or_with_an_unreadable_webhook_secret() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = [
        "daemon",
        "-f",
        "m.yaml",
        "--interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
    ];
    let url = simulator.api_url();
    // `common::run` waits for the process to end: a daemon that started would not.
    let no_key = tokio::time::timeout(
        Duration::from_secs(20),
        common::run(dir.path(), &daemon, &[("CLERK_API_URL", url.as_str())]),
    )
    .await
    .expect("the daemon exits at start");
    assert_eq!(no_key.status.code(), Some(2));
    assert!(
        common::stderr(&no_key).contains("no Clerk secret key"),
        "{}",
        common::stderr(&no_key)
    );
    let mut with_secret = daemon.to_vec();
    with_secret.extend(["--webhook-secret-file", "missing-secret"]);
    let unreadable = tokio::time::timeout(
        Duration::from_secs(20),
        common::run(
            dir.path(),
            &with_secret,
            &[("CLERK_API_URL", url.as_str()), ("CLERK_SECRET_KEY", KEY)],
        ),
    )
    .await
    .expect("the daemon exits at start");
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(
        common::stderr(&unreadable).contains("missing-secret"),
        "{}",
        common::stderr(&unreadable)
    );
    assert!(simulator.requests().is_empty(), "no request was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_counter_is_exported_at_0_from_the_start() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let mut daemon = daemon(&simulator, dir.path()).await;
    let (status, metrics) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "membersync_runs_total{command=\"daemon\",result=\"refused\"}",
        "membersync_runs_total{command=\"webhook\",result=\"failure\"}",
        "membersync_changes_total{resource=\"membership\",action=\"delete\",outcome=\"failed\"}",
        "membersync_changes_total{resource=\"role\",action=\"delete\",outcome=\"failed\"}",
        "membersync_changes_total{resource=\"invitation\",action=\"invite\",outcome=\"skipped\"}",
        "membersync_api_throttled_total",
        "membersync_inconsistent_reads_total",
        "membersync_invitations_deferred_total",
        "membersync_config_errors_total",
        "membersync_webhook_events_total",
    ] {
        assert_eq!(sample(&metrics, series), Some(0.0), "{series}:\n{metrics}");
    }
    for counter in metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter(|l| l.ends_with(" counter"))
    {
        let name = counter.trim_end_matches(" counter");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "{name} has no series:\n{metrics}"
        );
    }
    let _ = daemon.child.kill().await;
}
