//! Helpers shared by the integration tests: a seeded simulator and a way to run the binary
//! against it.

#![allow(dead_code)]

pub mod daemon;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use membersync::simulator::{SimMembership, SimOrganization, SimState, SimUser, Simulator};
use serde_json::{Map, Value, json};

pub const KEY: &str = "sk_test_membersync_secret_0123456789";

/// A small instance: `org_alpha` (slug alpha) is managed by the tests' files, `org_other` is not.
pub fn seed() -> SimState {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:billing"]);
    for (id, email) in [
        ("user_1", "one@example.com"),
        ("user_2", "two@example.com"),
        ("user_3", "three@example.com"),
        ("user_4", "four@example.com"),
        ("user_5", "five@example.com"),
        ("user_6", "Six@Example.com"),
    ] {
        state.users.push(SimUser {
            id: id.into(),
            emails: vec![email.into()],
        });
    }
    for (id, slug) in [("org_alpha", "alpha"), ("org_other", "other")] {
        state.organizations.push(SimOrganization {
            id: id.into(),
            slug: slug.into(),
            name: slug.to_uppercase(),
            role_set_key: None,
            max_allowed_memberships: None,
            ..SimOrganization::default()
        });
    }
    let mut add = |org: &str, user: &str, role: &str, public: Value| {
        let n = state.memberships.len() + 1;
        state.memberships.push(SimMembership {
            id: format!("orgmem_{n}"),
            organization_id: org.into(),
            user_id: user.into(),
            role: role.into(),
            public_metadata: public.as_object().cloned().unwrap_or_default(),
            private_metadata: Map::new(),
            created_at: n as i64,
        });
    };
    add("org_alpha", "user_1", "org:admin", json!({}));
    add(
        "org_alpha",
        "user_2",
        "org:member",
        json!({"team": "old", "stale": true}),
    );
    add("org_alpha", "user_3", "org:member", json!({}));
    add("org_alpha", "user_5", "org:admin", json!({}));
    add("org_other", "user_1", "org:member", json!({}));
    add("org_other", "user_3", "org:admin", json!({}));
    state
}

pub async fn start(state: SimState) -> Simulator {
    Simulator::start(state, KEY)
        .await
        .expect("the simulator starts")
}

/// Runs the real binary with the simulator's URL and key.
pub async fn membersync(simulator: &Simulator, dir: &Path, args: &[&str]) -> Output {
    run(
        dir,
        args,
        &[
            ("CLERK_API_URL", simulator.api_url().as_str()),
            ("CLERK_SECRET_KEY", simulator.key()),
        ],
    )
    .await
}

/// Runs the real binary with these environment variables (and no inherited membersync ones).
pub async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"));
    command.current_dir(dir).args(args);
    for name in [
        "CLERK_API_URL",
        "CLERK_SECRET_KEY",
        "CLERK_SECRET_KEY_FILE",
        "MEMBERSYNC_FILE",
        "MEMBERSYNC_RATE_LIMIT",
        "MEMBERSYNC_CONCURRENCY",
        "MEMBERSYNC_LOG_FORMAT",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command.env("MEMBERSYNC_RATE_LIMIT", "1000/s");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("the binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a desired-state file into `dir` and returns its name.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

/// A simulator seeded with `seed()`, a temporary directory, and `text` written there as
/// `membersync.yaml` (its name returned).
pub async fn setup(text: &str) -> (Simulator, tempfile::TempDir, String) {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", text);
    (simulator, dir, file)
}

/// The messy seed brought to order: a role and metadata to fix, a member to delete, two to
/// create (one by email, one with metadata), one ignored admin.
pub const DESIRED: &str = r#"version: 1
organizations:
  alpha:
    members:
      user_1: admin
      two@example.com:
        role: billing
        public_metadata: {team: payments}
      user_4: member
      six@example.com:
        role: admin
        private_metadata: {level: 3}
    ignore: [user_5]
"#;

/// (user, role, public metadata, private metadata) of memberships, sorted by user.
pub type Members = Vec<(String, String, Value, Value)>;

/// The memberships of one organization, sorted by user.
pub fn members(simulator: &Simulator, organization: &str) -> Members {
    let mut members: Vec<_> = simulator
        .state()
        .memberships
        .into_iter()
        .filter(|m| m.organization_id == organization)
        .map(|m| {
            (
                m.user_id,
                m.role,
                Value::Object(m.public_metadata),
                Value::Object(m.private_metadata),
            )
        })
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    members
}

pub fn member(
    user: &str,
    role: &str,
    public: Value,
    private: Value,
) -> (String, String, Value, Value) {
    (user.into(), role.into(), public, private)
}

/// `org_alpha` of `seed()` once `DESIRED` is applied.
pub fn desired_alpha() -> Members {
    vec![
        member("user_1", "org:admin", json!({}), json!({})),
        member(
            "user_2",
            "org:billing",
            json!({"team": "payments"}),
            json!({}),
        ),
        member("user_4", "org:member", json!({}), json!({})),
        member("user_5", "org:admin", json!({}), json!({})),
        member("user_6", "org:admin", json!({}), json!({"level": 3})),
    ]
}

pub fn writes(simulator: &Simulator) -> usize {
    simulator.requests().iter().filter(|r| r.is_write()).count()
}

/// An instance with one organization (`org_0`, its admin `user_0`) and `count` more users
/// (`user_x0`…), and the desired file that adds them all: `count` creates.
pub fn creates(count: usize) -> (SimState, String) {
    let mut state = membersync::simulator::generated_state(1, 1);
    let mut text =
        String::from("version: 1\norganizations:\n  org_0:\n    members:\n      user_0: admin\n");
    for n in 0..count {
        state.users.push(SimUser {
            id: format!("user_x{n}"),
            emails: vec![],
        });
        text.push_str(&format!("      user_x{n}: member\n"));
    }
    (state, text)
}

/// The value of one series in Prometheus text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Waits until `check` holds (30 s at most).
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `run finished` line of a run logged with `--log-format json`: its structured fields.
pub fn run_finished(output: &Output) -> Value {
    stderr(output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "run finished")
        .unwrap_or_else(|| panic!("no `run finished` line:\n{}", stderr(output)))
}
