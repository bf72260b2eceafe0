//! The sync flow as a library call (`membersync::sync`), without the binary: read, plan,
//! guard, apply — and the same call again converges with no write.

mod common;

use common::*;
use membersync::apply::Outcome;
use membersync::clerk::{Client, ClientConfig, SecretKey};
use membersync::plan::MaxDeletes;
use membersync::simulator::{SimOptions, Simulator, generated_state};
use membersync::sync::{Applied, Limits, sync};

fn client(simulator: &Simulator) -> Client {
    let config = ClientConfig::new(simulator.api_url(), "200/s".parse().unwrap(), 8);
    Client::new(config, SecretKey::new(KEY)).unwrap()
}

fn desired(dir: &std::path::Path) -> membersync::desired::DesiredState {
    // org_0 keeps user_0 (admin), promotes user_1 and gains user_5; user_2..user_3 are pruned.
    let text = "version: 1\norganizations:\n  org_0:\n    members:\n      user_0: admin\n      user_1: admin\n      user_5: member\n";
    let path = dir.join("membersync.yaml");
    std::fs::write(&path, text).unwrap();
    membersync::desired::load(&[path]).expect("the file is valid")
}

#[tokio::test]
async fn one_call_reads_plans_guards_and_applies_then_converges() {
    let simulator = Simulator::start_with(generated_state(2, 4), KEY, SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&simulator);
    let limits = Limits {
        max_deletes: MaxDeletes::Count(2),
        force: false,
    };

    let (planned, applied) = sync(&client, desired(dir.path()), limits).await.unwrap();
    assert_eq!(planned.plan.changes().count(), 4, "{:?}", planned.plan);
    let Applied::Ran { overridden, report } = applied else {
        panic!("the plan is within the limits: {applied:?}");
    };
    assert!(overridden.is_empty());
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Applied { .. }))
    );
    let members: Vec<(String, String)> = simulator
        .state()
        .memberships
        .into_iter()
        .filter(|m| m.organization_id == "org_0")
        .map(|m| (m.user_id, m.role))
        .collect();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.contains(&("user_1".into(), "org:admin".into())));
    assert!(members.contains(&("user_5".into(), "org:member".into())));

    let before = writes(&simulator);
    let (again, applied) = sync(&client, desired(dir.path()), limits).await.unwrap();
    assert!(again.plan.is_empty(), "{:?}", again.plan);
    assert!(matches!(applied, Applied::Ran { .. }));
    assert_eq!(
        writes(&simulator),
        before,
        "a converged instance gets no write"
    );
}

#[tokio::test]
async fn a_plan_over_the_limit_is_refused_without_a_write() {
    let simulator = Simulator::start_with(generated_state(1, 6), KEY, SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_deletes: MaxDeletes::Count(1),
        force: false,
    };
    let (planned, applied) = sync(&client(&simulator), desired(dir.path()), limits)
        .await
        .unwrap();
    assert_eq!(planned.plan.count(membersync::plan::Action::Delete), 3);
    assert!(
        matches!(applied, Applied::Refused(ref refusals) if refusals.len() == 1),
        "{applied:?}"
    );
    assert_eq!(writes(&simulator), 0);
}
