//! The daemon under load, through the binary: under a flood of webhook events its cycles and
//! reconciles together keep to `--rate-limit` (one pacer for its lifetime); its own writes do
//! not make its cycles' listings look busy (a cycle costs its instance pages, whatever the
//! reconciles wrote); a file it cannot read for lack of resources fails the cycle (exit 1 for a
//! one-shot command), turns `/readyz` 503 after `--unready-after` cycles and is counted.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, peak_per_second};
use common::eventually;
use common::{KEY, seed, start, write_file};
use membersync::simulator::{
    LoggedRequest, RateLimitModel, SimMembership, SimOptions, SimState, Simulator, generated_state,
};
use serde_json::{Map, json};

/// These tests measure pacing and request counts: one runs at a time, so that they do not
/// load the machine for each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A signed `organizationMembership.created` event of `org`.
async fn event(daemon: &Daemon, id: &str, org: &str) -> u16 {
    let body = json!({
        "type": "organizationMembership.created",
        "data": {"organization": {"id": org}, "public_user_data": {"user_id": "user_1"}}
    });
    daemon.signed(id, &body.to_string()).await
}

/// The file that manages every organization of `state` as it is.
fn in_sync(state: &SimState) -> String {
    let mut text = String::from("version: 1\norganizations:\n");
    for organization in &state.organizations {
        text.push_str(&format!("  {}:\n    members:\n", organization.id));
        for (user, role) in state.roles_of(&organization.id) {
            text.push_str(&format!("      {user}: {role}\n"));
        }
    }
    text
}

/// Someone makes `user` an admin of `org` behind membersync's back.
fn extra_admin(simulator: &Simulator, org: &str, user: &str) {
    let (org, user) = (org.to_owned(), user.to_owned());
    simulator.mutate(move |state| {
        if state
            .memberships
            .iter()
            .any(|m| m.organization_id == org && m.user_id == user)
        {
            return;
        }
        state.memberships.push(SimMembership {
            id: format!("orgmem_drift_{org}_{user}"),
            organization_id: org,
            user_id: user,
            role: "org:admin".into(),
            public_metadata: Map::new(),
            private_metadata: Map::new(),
            created_at: 1,
        })
    });
}

/// Someone removes `user` from `org` behind membersync's back.
fn removed(simulator: &Simulator, org: &str, user: &str) {
    let (org, user) = (org.to_owned(), user.to_owned());
    simulator.mutate(move |state| {
        state
            .memberships
            .retain(|m| !(m.organization_id == org && m.user_id == user))
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_flood_of_events_the_daemon_never_exceeds_its_rate_limit() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let state = generated_state(20, 10);
    let options = SimOptions {
        rate_limit: Some("10/s".parse().unwrap()),
        rate_limit_model: RateLimitModel::Sliding,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state.clone(), KEY, options)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &in_sync(&state));
    let daemon = Daemon::start(
        &simulator,
        dir.path(),
        &["--interval", "2s", "--rate-limit", "10/s"],
    )
    .await;
    simulator.clear_requests();

    // 40 events a second for 8 seconds over the 20 organizations; every fifth is a real drift.
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    for n in 0..320 {
        tick.tick().await;
        let org = format!("org_{}", n % 20);
        if n % 5 == 0 {
            extra_admin(&simulator, &org, &format!("user_{}", 10 + n % 10));
        }
        assert_eq!(event(&daemon, &format!("msg_flood_{n}"), &org).await, 200);
    }
    // Every drift is repaired (the pacer holds the pace, not the work).
    eventually("every drift is repaired", async || {
        simulator
            .state()
            .memberships
            .iter()
            .all(|m| !m.id.starts_with("orgmem_drift"))
    })
    .await;

    let requests = simulator.requests();
    let accepted: Vec<&LoggedRequest> = requests.iter().filter(|r| r.status != 429).collect();
    let every: Vec<&LoggedRequest> = requests.iter().collect();
    let throttled = requests.len() - accepted.len();
    let peak = peak_per_second(&accepted);
    assert!(peak <= 10, "{peak} requests accepted within one second");
    // Sent: what the pacer let out, as the simulator saw it arrive (one request may arrive a
    // few milliseconds early or late on a busy machine).
    let sent = peak_per_second(&every);
    assert!(sent <= 11, "{sent} requests sent within one second");
    // Paced at exactly the limit, a request a few milliseconds late at the start of a second
    // and one on time at its end make 11 in one sliding second: a 429 now and then (the
    // pacer then settles just under the limit), at most 5% of the requests, as any run
    // against a sliding window. Two pacers (one per cycle's client, as before) sent up to
    // twice the limit: a 429 storm.
    assert!(
        throttled <= 2.max(requests.len() / 20),
        "{throttled} answered 429 of {}",
        requests.len()
    );
    // It did pace a flood (10 s at most 10 a second, less the pauses of its 429s).
    assert!(
        requests.len() > 40,
        "the flood kept it busy: {}",
        requests.len()
    );
    assert_eq!(daemon.stop().await, Some(0));
}

/// Waits until the simulator has served the last page (offset 1500) of one more instance
/// listing than `seen`; returns how many it has served.
async fn listing_ended(simulator: &Simulator, seen: usize) -> usize {
    let mut served = seen;
    eventually("a cycle reads the instance", async || {
        served = simulator
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/organization_memberships" && r.query.contains("offset=1500"))
            .count();
        served > seen
    })
    .await;
    served
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cycle_after_a_burst_of_webhook_writes_costs_the_minimum_requests() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // 50 organizations of 40: the instance listing is 4 pages.
    let state = generated_state(50, 40);
    let simulator = start(state.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &in_sync(&state));
    // 30 requests a second: the reconciles' writes go on while the next cycle reads.
    let daemon = Daemon::start(
        &simulator,
        dir.path(),
        &["--interval", "1s", "--rate-limit", "30/s"],
    )
    .await;
    simulator.clear_requests();
    let before = daemon.runs("daemon").len();
    let mut listings = 0;
    for round in 0..3 {
        // Right after a cycle's listing, someone removes 4 members of each of organizations
        // 0–9; their events make the daemon create the 40 memberships again, and the next
        // cycles read the instance while and soon after it does.
        listings = listing_ended(&simulator, listings).await;
        for org in 0..10 {
            for member in 1..5 {
                removed(
                    &simulator,
                    &format!("org_{org}"),
                    &format!("user_{}", member + 4 * round),
                );
            }
        }
        for org in 0..10 {
            let id = format!("msg_burst_{round}_{org}");
            assert_eq!(event(&daemon, &id, &format!("org_{org}")).await, 200);
        }
        eventually("the burst is repaired", async || {
            in_sync(&simulator.state()) == in_sync(&state)
        })
        .await;
    }
    // Two more cycles after the last burst.
    listings = listing_ended(&simulator, listings).await;
    listing_ended(&simulator, listings).await;
    let requests = simulator.requests();
    let instance_pages = requests
        .iter()
        .filter(|r| r.path == "/v1/organization_memberships")
        .count();
    let offsets_0 = requests
        .iter()
        .filter(|r| r.path == "/v1/organization_memberships" && r.query.contains("offset=0"))
        .count();
    let quiet_organizations_read = requests
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path
                    .strip_prefix("/v1/organizations/org_")
                    .and_then(|rest| rest.strip_suffix("/memberships"))
                    .and_then(|org| org.parse::<usize>().ok())
                    .is_some_and(|org| org >= 10)
        })
        .count();
    let cycles = daemon.runs("daemon").len() - before;
    // Each cycle read the instance once (4 pages): never a second time after a doubt, never
    // the organizations one by one. The reconciles' writes were not taken for someone else's.
    assert!(offsets_0 >= 5, "{offsets_0} listings");
    assert!(
        instance_pages <= 4 * (cycles + 1),
        "{instance_pages} instance pages in {cycles} cycles"
    );
    assert_eq!(
        quiet_organizations_read, 0,
        "organizations re-read one by one"
    );
    assert!(!daemon.logged("changed while they were read"));
    assert_eq!(daemon.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_cannot_be_read_for_lack_of_resources_is_an_operational_failure() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Reading /proc/self/mem from its start fails with EIO: the system's error, not the file's.
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::os::unix::fs::symlink("/proc/self/mem", &broken).unwrap();
    for command in ["validate", "plan"] {
        let output =
            common::membersync(&simulator, dir.path(), &[command, "-f", "broken.yaml"]).await;
        assert_eq!(output.status.code(), Some(1), "{command}");
        let stderr = common::stderr(&output);
        assert!(
            stderr.contains("cannot read") && stderr.contains("resources"),
            "{stderr}"
        );
    }
    assert!(simulator.requests().is_empty());

    // The daemon: ready, then the file becomes unreadable.
    write_file(
        dir.path(),
        "m.yaml",
        "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n",
    );
    let daemon = Daemon::start(
        &simulator,
        dir.path(),
        &["--interval", "1s", "--unready-after", "3"],
    )
    .await;
    std::fs::remove_file(dir.path().join("m.yaml")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", dir.path().join("m.yaml")).unwrap();
    eventually("a cycle fails", async || {
        daemon.logged("/readyz stays ready until 3 cycles in a row fail")
    })
    .await;
    assert_eq!(daemon.ready().await, 200, "one failed cycle of three");
    eventually("/readyz turns 503", async || daemon.ready().await == 503).await;
    let metrics = daemon.metrics().await;
    let value = |series: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
    };
    assert!(
        value("membersync_resource_errors_total").is_some_and(|v| v >= 3.0),
        "{metrics}"
    );
    assert!(
        value("membersync_runs_total{command=\"daemon\",result=\"failure\"}")
            .is_some_and(|v| v >= 3.0),
        "{metrics}"
    );
    assert!(
        value("membersync_config_errors_total").is_none_or(|v| v == 0.0),
        "{metrics}"
    );
    // Readable again: ready again.
    std::fs::remove_file(dir.path().join("m.yaml")).unwrap();
    write_file(
        dir.path(),
        "m.yaml",
        "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n",
    );
    eventually("ready again", async || daemon.ready().await == 200).await;
    assert_eq!(daemon.stop().await, Some(0));
}
