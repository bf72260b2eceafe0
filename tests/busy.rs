//! A busy live instance: other clients create and delete memberships while membersync pages
//! the listings. No declared prune may be missed, and an organization whose own listing keeps
//! moving gets no deletion at all.

mod common;

use common::*;
use membersync::simulator::{SimOptions, SimState, Simulator, generated_state};

/// `organizations` × `members` memberships; `busy` organizations churn on every listing request.
async fn busy(organizations: usize, members: usize, busy: &[&str]) -> Simulator {
    let options = SimOptions {
        churn: busy.iter().map(|id| (*id).to_owned()).collect(),
        ..SimOptions::default()
    };
    Simulator::start_with(generated_state(organizations, members), KEY, options)
        .await
        .expect("the simulator starts")
}

/// Declares `organizations` with members `user_0` (admin) to `user_{keep-1}`: the rest of
/// each organization's members are declared prunes.
fn declared(organizations: &[usize], keep: usize) -> String {
    let mut text = String::from("version: 1\norganizations:\n");
    for org in organizations {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for member in 1..keep {
            text.push_str(&format!("      user_{member}: member\n"));
        }
    }
    text
}

fn deletes_in(simulator: &Simulator, organization: &str) -> usize {
    let path = format!("/v1/organizations/{organization}/memberships/");
    simulator
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with(&path))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_declared_prune_is_made_while_other_organizations_churn() {
    // org_0 and org_1 are the oldest: each listing request deletes one of their memberships
    // and creates another, so every later row shifts while the total stays the same.
    let simulator = busy(8, 300, &["org_0", "org_1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let managed: Vec<usize> = (2..8).collect();
    let file = write_file(dir.path(), "m.yaml", &declared(&managed, 296));
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let state = simulator.state();
    for org in &managed {
        let roles = state.roles_of(&format!("org_{org}"));
        assert_eq!(roles.len(), 296, "org_{org}: {} members", roles.len());
        assert_eq!(deletes_in(&simulator, &format!("org_{org}")), 4);
    }

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_that_keeps_changing_gets_no_deletion_and_fails_the_run() {
    // org_3 is managed and busy itself: its own listing (two pages) moves on every request.
    let simulator = busy(4, 600, &["org_0", "org_3"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &declared(&[1, 2, 3], 590));

    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(1), "{}", stderr(&plan));
    let document: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let notes = document["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["organization_id"], "org_3");
    assert!(
        document["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["organization_id"] != "org_3" || c["action"] != "delete")
    );

    simulator.clear_requests();
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("kept changing while they were read (org_3)"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("warning: its memberships kept changing"),
        "{}",
        stdout(&output)
    );
    assert_eq!(deletes_in(&simulator, "org_3"), 0);
    let state: SimState = simulator.state();
    for org in ["org_1", "org_2"] {
        assert_eq!(deletes_in(&simulator, org), 10, "{org}");
        assert_eq!(state.roles_of(org).len(), 590, "{org}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_instance_is_read_once() {
    // Nothing churns: the instance listing is read once, with no per-organization re-read.
    let simulator = busy(8, 300, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &declared(&[2, 3, 4, 5, 6, 7], 300));
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("No changes"),
        "{}",
        stdout(&output)
    );
    let requests = simulator.requests();
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/v1/organization_memberships")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_right_after_an_apply_reads_the_instance_again_not_each_organization() {
    // 30 organizations × 30 members: two instance pages. The apply creates one member in
    // each; the plan that follows at once sees memberships created a moment ago.
    let simulator = busy(30, 30, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = declared(&(0..30).collect::<Vec<_>>(), 30);
    text = text.replace(
        "      user_0: admin\n",
        "      user_0: admin\n      user_59: member\n",
    );
    let file = write_file(dir.path(), "m.yaml", &text);
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    simulator.clear_requests();
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(stdout(&plan).starts_with("No changes"), "{}", stdout(&plan));
    let per_organization = simulator
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/organizations/") && r.path.ends_with("/memberships"))
        .count();
    assert_eq!(per_organization, 0, "{:?}", simulator.requests());
}
