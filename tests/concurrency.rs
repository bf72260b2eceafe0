//! Writers that overlap: two applies with conflicting files at the same moment never leave an
//! organization without an admin (the executor reads the admins again before it takes one
//! away, and the simulator, as Clerk, refuses to remove the last one); the write-time check
//! costs one read per organization; a write that meets another writer's work says so.

mod common;

use std::time::Duration;

use common::{KEY, membersync, seed, start, stderr, stdout, write_file, writes};
use membersync::simulator::{Fault, FaultKind, SimOptions, Simulator};

/// The admins' reads of the write-time check.
fn admin_reads(simulator: &Simulator) -> usize {
    simulator
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("role=org%3Aadmin"))
        .count()
}

fn admins_of(simulator: &Simulator, organization: &str) -> Vec<String> {
    simulator
        .state()
        .roles_of(organization)
        .into_iter()
        .filter(|(_, role)| role == "org:admin")
        .map(|(user, _)| user)
        .collect()
}

/// `org_alpha` keeps user_2 and user_3 as members; `admin` stays admin, `demoted` becomes a
/// member.
fn keeping(admin: &str, demoted: &str) -> String {
    format!(
        "version: 1\norganizations:\n  alpha:\n    members:\n      {admin}: admin\n      {demoted}: member\n      user_2: member\n      user_3: member\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_applies_with_conflicting_files_at_the_same_moment_never_leave_an_organization_without_an_admin()
 {
    for round in 0..5 {
        // Each answer takes 40 ms: both runs are mid-flight together.
        let options = SimOptions {
            latency: Duration::from_millis(40),
            ..SimOptions::default()
        };
        let simulator = Simulator::start_with(seed(), KEY, options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // org_alpha has two admins, user_1 and user_5; each file demotes the other one.
        write_file(dir.path(), "one.yaml", &keeping("user_1", "user_5"));
        write_file(dir.path(), "five.yaml", &keeping("user_5", "user_1"));
        let (one, five) = tokio::join!(
            membersync(&simulator, dir.path(), &["apply", "-f", "one.yaml"]),
            membersync(&simulator, dir.path(), &["apply", "-f", "five.yaml"]),
        );
        let history = simulator.admin_history();
        assert!(
            history
                .iter()
                .all(|(organization, admins)| organization != "org_alpha" || *admins > 0),
            "round {round}: an organization without an admin: {history:?}"
        );
        assert_eq!(admins_of(&simulator, "org_alpha").len(), 1, "round {round}");
        for output in [&one, &five] {
            let code = output.status.code();
            assert!(
                matches!(code, Some(0 | 1)),
                "round {round}: {}",
                stderr(output)
            );
            if code == Some(1) {
                let out = stdout(output);
                assert!(
                    out.contains("another writer changed the organization's admins; re-plan")
                        || out.contains("organization_minimum_permissions_needed"),
                    "round {round}: {out}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_removed_since_the_plan_stops_the_demotion_before_it_is_sent() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &keeping("user_5", "user_1"));
    // After the plan was made, someone demotes user_5 (the admin the file keeps): just before
    // the admins are read again.
    simulator.inject(
        Fault::new(FaultKind::race(|state| {
            for membership in &mut state.memberships {
                if membership.organization_id == "org_alpha" && membership.user_id == "user_5" {
                    membership.role = "org:member".into();
                }
            }
        }))
        .on("GET", "/organizations/org_alpha/memberships"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", "m.yaml"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("failed")
            && out.contains("another writer changed the organization's admins; re-plan"),
        "{out}"
    );
    assert_eq!(writes(&simulator), 0, "{:?}", simulator.requests());
    assert_eq!(admins_of(&simulator, "org_alpha"), ["user_1"]);
    assert_eq!(admin_reads(&simulator), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admins_are_read_once_per_organization_and_only_where_an_admin_is_taken_away() {
    let mut state = seed();
    // A third and fourth admin in org_alpha, and org_other gets a plan with no admin removal.
    for membership in &mut state.memberships {
        if membership.organization_id == "org_alpha"
            && ["user_2", "user_3"].contains(&membership.user_id.as_str())
        {
            membership.role = "org:admin".into();
        }
    }
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    // org_alpha: two demotions and one admin deleted (user_3), user_5 stays admin;
    // org_other: one member added.
    let text = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: member\n      user_2: member\n      user_5: admin\n  other:\n    members:\n      user_1: member\n      user_3: admin\n      user_4: member\n";
    write_file(dir.path(), "m.yaml", text);
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", "m.yaml", "--max-deletes", "1"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(admins_of(&simulator, "org_alpha"), ["user_5"]);
    assert_eq!(admin_reads(&simulator), 1, "{:?}", simulator.requests());
    assert_eq!(writes(&simulator), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_meets_another_writers_work_says_so() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    // Deletes user_3; someone else deletes it first, just before membersync's DELETE.
    let text = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n";
    write_file(dir.path(), "m.yaml", text);
    simulator.inject(
        Fault::new(FaultKind::race(|state| {
            state
                .memberships
                .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_3"));
        }))
        .on("DELETE", "/memberships/user_3"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", "m.yaml"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("the membership was already gone; another writer may be active"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).contains("another writer may be active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_refuses_to_remove_or_demote_the_last_admin_as_clerk_does() {
    let simulator = start(seed()).await;
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{}{path}", simulator.api_url()))
            .bearer_auth(KEY)
            .header("Clerk-API-Version", membersync::clerk::API_VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    // Two admins: the first demotion goes through, the second is refused.
    let demote = serde_json::json!({"role": "org:member"});
    let first = send(
        reqwest::Method::PATCH,
        "/organizations/org_alpha/memberships/user_1",
        Some(demote.clone()),
    )
    .await
    .unwrap();
    assert_eq!(first.status(), 200);
    for (method, body) in [
        (reqwest::Method::PATCH, Some(demote)),
        (reqwest::Method::DELETE, None),
    ] {
        let refused = send(method, "/organizations/org_alpha/memberships/user_5", body)
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["code"],
            "organization_minimum_permissions_needed"
        );
        assert_eq!(
            body["errors"][0]["long_message"],
            "There has to be at least one organization member with the minimum required permissions"
        );
    }
    assert_eq!(admins_of(&simulator, "org_alpha"), ["user_5"]);
    // The role filter of the organization's listing.
    let page: serde_json::Value = send(
        reqwest::Method::GET,
        "/organizations/org_alpha/memberships?role=org:admin&limit=10",
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(page["total_count"], 1);
    assert_eq!(page["data"][0]["public_user_data"]["user_id"], "user_5");
}
