//! Webhooks (docs/kubernetes.md: "Webhooks: drift repaired in seconds") through the real daemon against the
//! simulator: a signed event repairs drift within seconds with `--interval 1h`; bad deliveries
//! answer 401 and change nothing; an unmanaged organization costs no request; replays are processed
//! once; a burst is coalesced; SIGTERM exits 0.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Daemon, SECRET, Setup, now};
use common::{KEY, eventually, seed, start, write_file};
use membersync::simulator::{SimMembership, Simulator};
use membersync::webhook::WebhookSecret;
use serde_json::{Map, json};
const DESIRED: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n";

/// The daemon with webhooks and `--interval 1h`, once its first cycle converged the instance.
async fn daemon(simulator: &Simulator, dir: &std::path::Path) -> Daemon {
    Daemon::start(simulator, dir, &["--interval", "1h"]).await
}

/// `membersync_webhook_events_total{type,result}` (0 before the first).
async fn events(daemon: &Daemon, kind: &str, result: &str) -> u64 {
    let series = format!("membersync_webhook_events_total{{type=\"{kind}\",result=\"{result}\"}} ");
    daemon
        .metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
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
    let daemon = daemon(&simulator, dir.path()).await;

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
    // Refused before anything is queued: counted as the answer went out, and nothing sent.
    assert_eq!(events(&daemon, "unknown", "rejected").await, 4);
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
    eventually("the event is ignored", async || {
        events(&daemon, "organizationMembership.created", "ignored").await == 1
    })
    .await;
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
    eventually("the reconcile finishes", async || {
        !daemon.runs("webhook").is_empty()
    })
    .await;
    let reads = alpha_reads(&simulator);
    assert_eq!(reads, 1, "{:?}", simulator.requests());
    assert_eq!(daemon.signed("msg_1", &body).await, 200);
    // A replay is dropped as it arrives (counted as ignored): no reconcile can follow it.
    assert_eq!(
        events(&daemon, "organizationMembership.created", "ignored").await,
        2
    );
    assert_eq!(
        alpha_reads(&simulator),
        reads,
        "a replay is not processed again"
    );
    let metrics = daemon.metrics().await;
    assert!(metrics.contains("membersync_webhook_events_total{type=\"organizationMembership.created\",result=\"reconciled\"} 1"), "{metrics}");
    assert!(metrics.contains("result=\"rejected\"} 4"), "{metrics}");

    daemon.terminate();
    let (code, lines) = daemon.exited(Duration::from_secs(25)).await;
    assert_eq!(code, Some(0), "SIGTERM exits 0");
    assert!(
        lines.iter().all(|line| !line.contains(SECRET)),
        "the secret is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_events_is_coalesced() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = daemon(&simulator, dir.path()).await;
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
    eventually("every event is taken", async || {
        events(&daemon, "organizationMembership.created", "reconciled").await == 30
    })
    .await;
    eventually("the drift is repaired", async || !has_drift(&simulator)).await;
    // Each reconcile reads alpha once: none is running when each read has its finished run.
    eventually("the reconciles finish", async || {
        daemon.runs("webhook").len() == alpha_reads(&simulator)
    })
    .await;
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
    let listen = format!("127.0.0.1:{port}");
    let setup = Setup {
        listen: &listen,
        args: &["--interval", "1h"],
        ..Setup::default()
    };
    let daemon = Daemon::start_with(&simulator, dir.path(), setup).await;

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
    let writes = simulator.requests().iter().filter(|r| r.is_write()).count();
    eventually("the reconcile of its own write", async || {
        daemon.runs("webhook").iter().any(|run| run["planned"] == 0)
    })
    .await;
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
    let daemon = daemon(&simulator, dir.path()).await;
    for round in 1..=3 {
        drift(&simulator);
        simulator.clear_requests();
        let body = membership_event("org_alpha", "alpha");
        assert_eq!(daemon.signed(&format!("msg_{round}"), &body).await, 200);
        eventually("the reconcile finishes", async || {
            daemon.runs("webhook").len() >= round
        })
        .await;
        let last = daemon.runs("webhook").pop().unwrap();
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
    let daemon = daemon(&simulator, dir.path()).await;
    simulator.clear_requests();

    // org_other (unmanaged) with the slug of a managed organization, as a late redelivery
    // after a rename would carry: matched by ID, it is not managed. The slug was resolved by
    // the cycle: not even a read.
    let mismatched = membership_event("org_other", "alpha");
    assert_eq!(daemon.signed("msg_mismatch", &mismatched).await, 200);
    eventually("the event is ignored", async || {
        events(&daemon, "organizationMembership.created", "ignored").await == 1
    })
    .await;
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
    eventually("both events are taken", async || {
        events(&daemon, "organization.updated", "ignored").await == 1
            && events(&daemon, "organizationMembership.created", "ignored").await == 2
    })
    .await;
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
