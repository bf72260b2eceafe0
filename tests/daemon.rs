//! `membersync daemon` against the simulator: health, readiness, metrics, drift repaired,
//! a broken file skipped, JSON logs, and SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{KEY, seed, start, write_file};
use membersync::simulator::Simulator;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

const DESIRED: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      four@example.com: billing\n";

struct Daemon {
    child: tokio::process::Child,
    base: String,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    async fn start(simulator: &Simulator, dir: &std::path::Path) -> Daemon {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
            .current_dir(dir)
            .args([
                "daemon",
                "-f",
                "m.yaml",
                "--interval",
                "1s",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .env("CLERK_API_URL", simulator.api_url())
            .env("CLERK_SECRET_KEY", KEY)
            .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
            .env("RUST_LOG", "membersync=debug,warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, mut lines) = mpsc::unbounded_channel();
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let _ = sender.send(line);
            }
        });
        let mut seen = Vec::new();
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
                .await
                .expect("the daemon logs its address")
                .expect("the daemon is running");
            seen.push(line.clone());
            let parsed: Value = serde_json::from_str(&line).expect(&line);
            if let Some(address) = parsed.get("address").and_then(Value::as_str) {
                break address.to_owned();
            }
        };
        Daemon {
            child,
            base: format!("http://{address}"),
            lines,
            seen,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one series in Prometheus text.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_converges_repairs_drift_skips_a_broken_file_and_stops_on_sigterm() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let mut daemon = Daemon::start(&simulator, dir.path()).await;

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
            "membersync_changes_total{action=\"create\",outcome=\"applied\"}"
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
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        simulator.requests().is_empty(),
        "{:#?}",
        simulator.requests()
    );
    assert_eq!(daemon.get("/readyz").await.0, 200);

    // SIGTERM: exit 0, in time.
    let pid = daemon.child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.child.wait())
        .await
        .expect("the daemon exits within 10 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // JSON logs: one object per line, a run ID on each, never the key.
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.drain();
    assert!(daemon.seen.len() > 10);
    let mut writes_logged = 0;
    for line in &daemon.seen {
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
        daemon
            .seen
            .iter()
            .any(|l| l.contains("\"message\":\"clerk request\"") && l.contains("\"attempt\":1"))
    );
    assert!(
        daemon
            .seen
            .iter()
            .any(|l| l.contains("m.yaml:4:5: organizations.alpha.members")),
        "the parse error is logged with file, line and column"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_is_reported_every_cycle_without_hammering_the_api() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir.path())
        .args([
            "daemon",
            "-f",
            "m.yaml",
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", "sk_test_revoked_key")
        .env("RUST_LOG", "membersync=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let log = String::from_utf8_lossy(&output.stderr);
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
    assert!(body.contains("membersync_changes_total{action=\"create\",outcome=\"applied\"} 1"));
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
    let mut daemon = Daemon::start(&simulator, dir.path()).await;
    eventually("the first writes", async || {
        simulator.requests().iter().any(|r| r.is_write())
    })
    .await;
    let pid = daemon.child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let signalled = simulator.requests().len();
    let status = tokio::time::timeout(Duration::from_secs(25), daemon.child.wait())
        .await
        .expect("the daemon exits within its grace period")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // Only the requests already in flight (at most 8) were answered after the signal.
    let after = simulator.requests().len() - signalled;
    assert!(after <= 8, "{after} requests after SIGTERM");
    let created = simulator.state().memberships.len() - 1;
    assert!(created < 40, "the cycle was cut short ({created} created)");
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.drain();
    assert!(
        daemon
            .seen
            .iter()
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
    let mut daemon = Daemon::start(&simulator, dir.path()).await;
    let (status, metrics) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "membersync_runs_total{command=\"daemon\",result=\"refused\"}",
        "membersync_runs_total{command=\"webhook\",result=\"failure\"}",
        "membersync_changes_total{action=\"delete\",outcome=\"failed\"}",
        "membersync_changes_total{action=\"invite\",outcome=\"skipped\"}",
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
    daemon.drain();
}
