//! Webhooks (README: "Webhooks: drift repaired in seconds") through the real daemon against the
//! simulator: a signed event repairs drift within seconds with `--interval 1h`; bad deliveries
//! answer 401 and change nothing; an unmanaged organization costs no request; replays are processed
//! once; a burst is coalesced; SIGTERM exits 0.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{KEY, seed, start, write_file};
use membersync::simulator::{SimMembership, Simulator};
use membersync::webhook::WebhookSecret;
use serde_json::{Map, json};
use tokio::io::AsyncBufReadExt;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const DESIRED: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n";

struct Daemon {
    child: tokio::process::Child,
    base: String,
    /// Its log lines after the address, as they come.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    async fn start(simulator: &Simulator, dir: &std::path::Path) -> Daemon {
        Daemon::start_on(simulator, dir, "127.0.0.1:0").await
    }

    async fn start_on(simulator: &Simulator, dir: &std::path::Path, listen: &str) -> Daemon {
        write_file(dir, "secret", &format!("{SECRET}\n"));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
            .current_dir(dir)
            .args([
                "daemon",
                "-f",
                "m.yaml",
                "--interval",
                "1h",
                "--listen",
                listen,
                "--log-format",
                "json",
                "--webhook-secret-file",
                "secret",
            ])
            .env("CLERK_API_URL", simulator.api_url())
            .env("CLERK_SECRET_KEY", KEY)
            .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
            .env("RUST_LOG", "membersync=info,warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the daemon logs its address")
                .unwrap()
                .expect("the daemon is running");
            assert!(!line.contains(SECRET), "the secret is never logged");
            let parsed: serde_json::Value = serde_json::from_str(&line).expect(&line);
            if let Some(address) = parsed.get("address").and_then(|a| a.as_str()) {
                break address.to_owned();
            }
        };
        // Kept for the tests, and shown when a test fails.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("daemon: {line}");
                kept.lock().unwrap().push(line);
            }
        });
        let daemon = Daemon {
            child,
            base: format!("http://{address}"),
            log,
        };
        // The first cycle converges the instance.
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/readyz", daemon.base))
            .await
            .unwrap()
            .status()
            != 200
        {
            assert!(Instant::now() < deadline, "the daemon gets ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        daemon
    }

    async fn deliver(
        &self,
        id: &str,
        timestamp: i64,
        signature: Option<String>,
        body: &str,
    ) -> u16 {
        let mut request = reqwest::Client::new()
            .post(format!("{}/webhooks/clerk", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        request = request
            .header("svix-id", id)
            .header("svix-timestamp", timestamp.to_string());
        if let Some(signature) = signature {
            request = request.header("svix-signature", signature);
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn signed(&self, id: &str, body: &str) -> u16 {
        let now = now();
        let signature = WebhookSecret::parse(SECRET)
            .unwrap()
            .sign(id, now, body.as_bytes());
        self.deliver(id, now, Some(signature), body).await
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(25), self.child.wait())
            .await
            .expect("the daemon exits after SIGTERM")
            .unwrap();
        status.code()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn membership_event(org: &str, slug: &str) -> String {
    json!({
        "type": "organizationMembership.created",
        "object": "event",
        "data": {
            "organization": {"id": org, "slug": slug},
            "public_user_data": {"user_id": "user_4"},
            "role": "org:admin"
        }
    })
    .to_string()
}

/// Someone makes user_4 an admin of alpha in the dashboard.
fn drift(simulator: &Simulator) {
    simulator.mutate(|state| {
        state.memberships.push(SimMembership {
            id: "orgmem_drift".into(),
            organization_id: "org_alpha".into(),
            user_id: "user_4".into(),
            role: "org:admin".into(),
            public_metadata: Map::new(),
            private_metadata: Map::new(),
            created_at: 1,
        })
    });
}

fn has_drift(simulator: &Simulator) -> bool {
    simulator
        .state()
        .memberships
        .iter()
        .any(|m| m.id == "orgmem_drift")
}

/// Reads of alpha's own listing (not the admins' read before an admin is removed).
fn alpha_reads(simulator: &Simulator) -> usize {
    simulator
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == "/v1/organizations/org_alpha/memberships"
                && !r.query.contains("role=")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_event_repairs_drift_within_seconds_and_bad_deliveries_change_nothing() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start(&simulator, dir.path()).await;

    drift(&simulator);
    simulator.clear_requests();
    let body = membership_event("org_alpha", "alpha");
    // Refused: no signature, a wrong one, another secret, a stale timestamp.
    let stale = now() - 600;
    let other = WebhookSecret::parse("whsec_c2VjcmV0LXR3bw==").unwrap();
    assert_eq!(daemon.deliver("msg_a", now(), None, &body).await, 401);
    assert_eq!(
        daemon
            .deliver("msg_b", now(), Some("v1,AAAA".into()), &body)
            .await,
        401
    );
    assert_eq!(
        daemon
            .deliver(
                "msg_c",
                now(),
                Some(other.sign("msg_c", now(), body.as_bytes())),
                &body
            )
            .await,
        401
    );
    let signer = WebhookSecret::parse(SECRET).unwrap();
    assert_eq!(
        daemon
            .deliver(
                "msg_d",
                stale,
                Some(signer.sign("msg_d", stale, body.as_bytes())),
                &body
            )
            .await,
        401
    );
    let big = "x".repeat(1024 * 1024 + 10);
    assert_eq!(daemon.signed("msg_big", &big).await, 413);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        simulator.requests().is_empty(),
        "{:?}",
        simulator.requests()
    );
    assert!(has_drift(&simulator));

    // An event of an organization the file does not manage: acknowledged, no request.
    assert_eq!(
        daemon
            .signed("msg_other", &membership_event("org_other", "other"))
            .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        simulator.requests().is_empty(),
        "{:?}",
        simulator.requests()
    );

    // A signed event: repaired within 3 s, with --interval 1h.
    let sent = Instant::now();
    assert_eq!(daemon.signed("msg_1", &body).await, 200);
    while has_drift(&simulator) {
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "repaired within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Delivered again: acknowledged, processed once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reads = alpha_reads(&simulator);
    assert_eq!(reads, 1, "{:?}", simulator.requests());
    assert_eq!(daemon.signed("msg_1", &body).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        alpha_reads(&simulator),
        reads,
        "a replay is not processed again"
    );
    let metrics = daemon.metrics().await;
    assert!(metrics.contains("membersync_webhook_events_total{type=\"organizationMembership.created\",result=\"reconciled\"} 1"), "{metrics}");
    assert!(metrics.contains("result=\"rejected\"} 4"), "{metrics}");

    assert_eq!(daemon.stop().await, Some(0), "SIGTERM exits 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_events_is_coalesced() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start(&simulator, dir.path()).await;
    drift(&simulator);
    simulator.clear_requests();
    let body = membership_event("org_alpha", "alpha");
    let deliveries = (0..30).map(|n| {
        let daemon = &daemon;
        let body = &body;
        async move { daemon.signed(&format!("msg_burst_{n}"), body).await }
    });
    let statuses = futures::future::join_all(deliveries).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!has_drift(&simulator));
    let reads = alpha_reads(&simulator);
    assert!((1..=4).contains(&reads), "30 events, {reads} reads");
    assert_eq!(daemon.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_own_events_bring_the_daemon_back_and_it_does_not_loop_on_its_writes() {
    // A free port for the daemon, known before the simulator starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = membersync::simulator::SimOptions {
        webhook: Some(membersync::simulator::SimWebhook {
            url: format!("http://127.0.0.1:{port}/webhooks/clerk"),
            secret: WebhookSecret::parse(SECRET).unwrap(),
        }),
        ..Default::default()
    };
    let simulator = Simulator::start_with(seed(), KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start_on(&simulator, dir.path(), &format!("127.0.0.1:{port}")).await;

    // Someone else's apply makes user_4 an admin of alpha: Clerk (here the simulator) sends
    // the event, and the daemon takes the access away again.
    let other = DESIRED.replace(
        "      user_3: member\n",
        "      user_3: member\n      user_4: admin\n",
    );
    write_file(dir.path(), "other.yaml", &other);
    let apply = common::membersync(&simulator, dir.path(), &["apply", "-f", "other.yaml"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", common::stderr(&apply));
    let sent = Instant::now();
    while simulator
        .state()
        .roles_of("org_alpha")
        .iter()
        .any(|(user, _)| user == "user_4")
    {
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "repaired after the simulator's event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its own delete makes an event too; the reconcile of it finds nothing to do.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = simulator.requests().iter().filter(|r| r.is_write()).count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        simulator.requests().iter().filter(|r| r.is_write()).count(),
        writes,
        "no loop on its own writes"
    );
    assert_eq!(daemon.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_reconcile_reports_its_own_requests_not_the_clients_running_total() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start(&simulator, dir.path()).await;
    let finished = |command: &str| -> Vec<serde_json::Value> {
        daemon
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line["message"] == "run finished" && line["command"] == command)
            .collect()
    };
    for round in 1..=3 {
        drift(&simulator);
        simulator.clear_requests();
        let body = membership_event("org_alpha", "alpha");
        assert_eq!(daemon.signed(&format!("msg_{round}"), &body).await, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        while finished("webhook").len() < round {
            assert!(Instant::now() < deadline, "the reconcile finishes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = finished("webhook").pop().unwrap();
        let sent = simulator.requests().len() as u64;
        // The reconcile's own requests (its listing and the repair), not the running total
        // of the client it shares with the cycles.
        assert_eq!(last["requests"], sent, "round {round}: {last}");
        assert!(sent <= 4, "{sent}");
    }
    assert_eq!(daemon.stop().await, Some(0));
}

fn organization_updated(org: &str, slug: &str) -> String {
    json!({
        "type": "organization.updated",
        "object": "event",
        "data": {"id": org, "slug": slug, "object": "organization"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_whose_organization_id_and_slug_disagree_sends_no_write() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    // The file names alpha by its slug.
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start(&simulator, dir.path()).await;
    simulator.clear_requests();

    // org_other (unmanaged) with the slug of a managed organization, as a late redelivery
    // after a rename would carry: matched by ID, it is not managed. The slug was resolved by
    // the cycle: not even a read.
    let mismatched = membership_event("org_other", "alpha");
    assert_eq!(daemon.signed("msg_mismatch", &mismatched).await, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        simulator.requests().is_empty(),
        "{:?}",
        simulator.requests()
    );

    // alpha is renamed: the event corrects what the daemon knows, and a late event for
    // org_alpha still carrying the old slug is not taken for the file's `alpha`.
    simulator.mutate(|state| {
        for organization in &mut state.organizations {
            if organization.id == "org_alpha" {
                organization.slug = "alpha-renamed".into();
            }
        }
    });
    drift(&simulator);
    assert_eq!(
        daemon
            .signed(
                "msg_renamed",
                &organization_updated("org_alpha", "alpha-renamed")
            )
            .await,
        200
    );
    let late = membership_event("org_alpha", "alpha");
    assert_eq!(daemon.signed("msg_late", &late).await, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let requests = simulator.requests();
    assert!(
        requests.iter().all(|r| !r.is_write()),
        "no write: {requests:?}"
    );
    // At most the lookup of the slug the file names (no organization has it now).
    assert!(
        requests.iter().all(|r| r.path == "/v1/organizations/alpha"),
        "{requests:?}"
    );
    assert!(
        has_drift(&simulator),
        "left for the file's `alpha`, which no organization is"
    );
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains(
            "membersync_webhook_events_total{type=\"organizationMembership.created\",result=\"ignored\"} 2"
        ),
        "{metrics}"
    );
    assert_eq!(daemon.stop().await, Some(0));
}
