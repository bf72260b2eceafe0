//! A clean interrupt of `apply`, `apply --plan` and `export`, through the real binary against
//! a slow simulator: the first SIGINT or SIGTERM lets the requests in flight finish, starts
//! nothing new, and ends with the report (every change once; those not started `skipped`,
//! "interrupted") and exit 1; the next apply finishes the job without sending any change
//! twice; a second signal exits at once with 130.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{KEY, eventually, membersync, stderr, stdout, write_file};
use membersync::simulator::{
    Fault, FaultKind, SimMembership, SimOptions, SimState, SimUser, Simulator,
};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;

const CHANGES: usize = 40;

/// `org_0` with its admin and 40 members; the file makes each of them `org:billing`: 40 role
/// changes, each one PATCH to its own path.
fn instance() -> (SimState, String) {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:billing"]);
    let mut text =
        String::from("version: 1\norganizations:\n  org_0:\n    members:\n      user_0: admin\n");
    state
        .organizations
        .push(membersync::simulator::SimOrganization {
            id: "org_0".into(),
            slug: "zero".into(),
            name: "Zero".into(),
            role_set_key: None,
            max_allowed_memberships: None,
            ..membersync::simulator::SimOrganization::default()
        });
    for n in 0..=CHANGES {
        let user = if n == 0 {
            "user_0".to_owned()
        } else {
            format!("user_m{n}")
        };
        state.users.push(SimUser {
            id: user.clone(),
            emails: vec![],
        });
        state.memberships.push(SimMembership {
            id: format!("orgmem_{n}"),
            organization_id: "org_0".into(),
            user_id: user.clone(),
            role: if n == 0 { "org:admin" } else { "org:member" }.into(),
            public_metadata: Map::new(),
            private_metadata: Map::new(),
            created_at: n as i64,
        });
        if n > 0 {
            text.push_str(&format!("      {user}: billing\n"));
        }
    }
    (state, text)
}

async fn slow(state: SimState) -> Simulator {
    let options = SimOptions {
        latency: Duration::from_millis(150),
        ..Default::default()
    };
    Simulator::start_with(state, KEY, options).await.unwrap()
}

fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

fn spawn(simulator: &Simulator, dir: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir)
        .args(args)
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", KEY)
        .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
        .env("MEMBERSYNC_CONCURRENCY", "4")
        .env_remove("MEMBERSYNC_FILE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn writes(simulator: &Simulator) -> usize {
    simulator.requests().iter().filter(|r| r.is_write()).count()
}

/// The slow simulator seeded with [`instance`], and a directory holding its file `m.yaml`.
async fn setup() -> (Simulator, tempfile::TempDir) {
    let (state, text) = instance();
    let simulator = slow(state).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &text);
    (simulator, dir)
}

/// Runs membersync with `args`, sends `name` (INT, TERM) once `started` holds, and waits (with
/// a deadline) for the run to end: its output, and the requests answered at the signal.
async fn interrupt_once(
    simulator: &Simulator,
    dir: &std::path::Path,
    args: &[&str],
    name: &str,
    started: impl Fn() -> bool,
) -> (std::process::Output, usize) {
    let child = spawn(simulator, dir, args);
    eventually("the run to get going", async || started()).await;
    signal(&child, name);
    let signalled = simulator.requests().len();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the run ends soon after the signal")
        .unwrap();
    (output, signalled)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_reports_every_change_once_and_the_next_apply_finishes_the_job() {
    let (simulator, dir) = setup().await;
    let args = ["apply", "-f", "m.yaml", "--output", "json"];
    let (output, signalled) = interrupt_once(&simulator, dir.path(), &args, "INT", || {
        writes(&simulator) > 0
    })
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("interrupt received, finishing the") && err.contains("requests in flight"),
        "{err}"
    );
    assert!(err.contains("error: interrupted:"), "{err}");
    // Only the requests in flight (at most --concurrency) were answered after the signal.
    let after = simulator.requests().len() - signalled;
    assert!(after <= 4, "{after} requests after the interrupt");

    // The report lists every change exactly once: applied, or skipped as interrupted.
    let report: Value = serde_json::from_str(&stdout(&output)).expect("one JSON document");
    let changes = report["changes"].as_array().unwrap();
    let mut users: Vec<&str> = changes
        .iter()
        .map(|c| c["user_id"].as_str().unwrap())
        .collect();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), CHANGES);
    assert_eq!(changes.len(), CHANGES);
    let outcome = |name: &str| changes.iter().filter(|c| c["outcome"] == name).count();
    let (applied, skipped) = (outcome("applied"), outcome("skipped"));
    assert_eq!(applied + skipped, CHANGES, "{report}");
    assert!(applied >= 1 && skipped >= 1, "{report}");
    assert!(
        changes
            .iter()
            .filter(|c| c["outcome"] == "skipped")
            .all(|c| c["error"] == "interrupted"),
        "{report}"
    );
    assert_eq!(report["summary"]["skipped"], skipped);
    let billing = |simulator: &Simulator| {
        simulator
            .state()
            .memberships
            .iter()
            .filter(|m| m.role == "org:billing")
            .count()
    };
    assert_eq!(billing(&simulator), applied);

    // The next apply finishes the job, and no change was sent twice over both runs.
    let next = membersync(&simulator, dir.path(), &["apply", "-f", "m.yaml"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert_eq!(billing(&simulator), CHANGES);
    let mut paths: Vec<String> = simulator
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(paths.len(), CHANGES, "{paths:#?}");
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), CHANGES, "a change was sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_an_apply_prints_the_text_report_with_the_changes_not_sent() {
    let (simulator, dir) = setup().await;
    let args = ["apply", "-f", "m.yaml"];
    let (output, _) = interrupt_once(&simulator, dir.path(), &args, "TERM", || {
        writes(&simulator) > 0
    })
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("Apply incomplete:"), "{out}");
    assert!(out.contains("  skipped  ~ user_m"), "{out}");
    assert!(out.contains("           interrupted\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_interrupt_exits_at_once_with_130() {
    let (state, text) = instance();
    let options = SimOptions {
        latency: Duration::from_millis(1000),
        ..Default::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    // After the first write, every write hangs: the first interrupt finds requests in flight
    // that cannot finish before the second one, however slow this machine is.
    simulator.inject(
        Fault::new(FaultKind::Stall)
            .on("WRITE", "")
            .skip(1)
            .always(),
    );
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &text);
    let mut child = spawn(&simulator, dir.path(), &["apply", "-f", "m.yaml"]);
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The reads are done and writes are in flight.
    eventually("the first write", async || writes(&simulator) > 0).await;
    signal(&child, "INT");
    let deadline = Duration::from_secs(20);
    loop {
        let line = tokio::time::timeout(deadline, lines.next_line())
            .await
            .expect("the interrupt is logged")
            .unwrap()
            .expect("the run is still going");
        if line.contains("interrupt received") {
            break;
        }
    }
    signal(&child, "INT");
    let status = tokio::time::timeout(deadline, child.wait())
        .await
        .expect("a second interrupt ends the run")
        .unwrap();
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_of_a_saved_plan_is_finished_by_the_next_apply() {
    let (simulator, dir) = setup().await;
    let planned = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", "m.yaml", "--out", "plan.json"],
    )
    .await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    let args = ["apply", "--plan", "plan.json"];
    let (output, _) = interrupt_once(&simulator, dir.path(), &args, "TERM", || {
        writes(&simulator) > 0
    })
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    let summary = out.lines().last().unwrap();
    assert!(summary.starts_with("Apply incomplete:"), "{out}");
    assert!(out.contains("interrupted"), "{out}");
    let next = membersync(&simulator, dir.path(), &["apply", "-f", "m.yaml"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert_eq!(writes(&simulator), CHANGES, "no change was sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_export_writes_no_file() {
    let (simulator, dir) = setup().await;
    let args = ["export", "-o", "out.yaml"];
    let (output, _) = interrupt_once(&simulator, dir.path(), &args, "TERM", || {
        !simulator.requests().is_empty()
    })
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted: nothing was exported"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("out.yaml").exists());
}
