//! `membersync apply` end to end: the real binary against the stateful simulator.

mod common;

use std::time::Duration;

use common::{
    DESIRED, KEY, desired_alpha, member, members, membersync, run, seed, setup, start, stderr,
    stdout, write_file, writes,
};
use membersync::simulator::{Fault, FaultKind, SimMembership, SimState};
use serde_json::{Map, Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn converges_a_messy_organization_and_leaves_the_others_alone() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let other_before = members(&simulator, "org_other");
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
    assert_eq!(members(&simulator, "org_other"), other_before);
    assert!(
        simulator
            .requests()
            .iter()
            .all(|r| !r.path.contains("org_other") && !r.query.contains("org_other")),
        "{:#?}",
        simulator.requests()
    );
    // One write per change: 2 creates, 1 role, 1 metadata, 1 delete.
    assert_eq!(writes(&simulator), 5);
    let out = stdout(&output);
    assert!(
        out.contains("Apply complete: 5 applied, 0 failed, 0 skipped."),
        "{out}"
    );
    assert!(
        out.contains("applied  - user_3 (three@example.com) org:member"),
        "{out}"
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0);
    assert!(stdout(&again).contains("No changes"), "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn converges_an_empty_organization_from_scratch() {
    let mut state = seed();
    state
        .memberships
        .retain(|m| m.organization_id != "org_alpha");
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\norganizations:\n  org_alpha:\n    metadata: merge\n    members:\n      user_1: admin\n      user_2:\n        role: member\n        public_metadata: {team: a, tags: [x, y]}\n        private_metadata: {cost: 42}\n      three@example.com: member\n";
    let file = write_file(dir.path(), "m.yaml", text);
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        members(&simulator, "org_alpha"),
        vec![
            member("user_1", "org:admin", json!({}), json!({})),
            member(
                "user_2",
                "org:member",
                json!({"team": "a", "tags": ["x", "y"]}),
                json!({"cost": 42})
            ),
            member("user_3", "org:member", json!({}), json!({})),
        ]
    );
    // A create carries its role and metadata in its one POST.
    assert_eq!(writes(&simulator), 3);

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_fills_in_every_outcome() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5);
    assert!(
        changes.iter().all(|c| c["outcome"] == "applied"),
        "{report}"
    );
    assert_eq!(
        report["summary"],
        json!({"create": 2, "update_role": 1, "update_metadata": 1, "delete": 1, "failed": 0, "skipped": 0})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_first_attempt_took_effect_converges_on_already_a_member() {
    let (simulator, dir, file) = setup(DESIRED).await;
    // The POST for user_6 is applied, then answered 500: the retry meets
    // already_a_member_in_organization.
    simulator.inject(
        Fault::new(FaultKind::After { status: 500 })
            .on("POST", "/organizations/org_alpha/memberships"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
    let statuses: Vec<u16> = simulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.contains(&500) && statuses.contains(&400),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_finds_the_user_already_a_member_converges_role_and_metadata() {
    let (simulator, dir, file) = setup(DESIRED).await;
    // Someone adds user_6 with another role and metadata between the read and the create.
    simulator.inject(
        Fault::new(FaultKind::race(|state: &mut SimState| {
            state.memberships.push(SimMembership {
                id: "orgmem_race".into(),
                organization_id: "org_alpha".into(),
                user_id: "user_6".into(),
                role: "org:member".into(),
                public_metadata: Map::new(),
                private_metadata: json!({"level": 1, "extra": true})
                    .as_object()
                    .cloned()
                    .unwrap(),
                created_at: 99,
            });
        }))
        .on("POST", "/organizations/org_alpha/memberships"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
    assert!(
        stdout(&output).contains("already a member"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_first_attempt_took_effect_is_done() {
    let (simulator, dir, file) = setup(DESIRED).await;
    simulator.inject(Fault::new(FaultKind::After { status: 502 }).on("DELETE", "user_3"));
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
    let deletes: Vec<u16> = simulator
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.status)
        .collect();
    assert_eq!(deletes, vec![502, 404]);
    assert!(
        stdout(&output).contains("already gone"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_of_a_membership_removed_meanwhile_creates_it_as_declared() {
    let (simulator, dir, file) = setup(DESIRED).await;
    // user_2 leaves between the read and the role change.
    simulator.inject(
        Fault::new(FaultKind::race(|state: &mut SimState| {
            state
                .memberships
                .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_2"));
        }))
        .on("PATCH", "/memberships/user_2"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
    assert!(
        simulator
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.status == 404),
        "{:#?}",
        simulator.requests()
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn clerk_refusals_fail_their_change_with_clerks_message_and_the_rest_proceeds() {
    for (status, code, expected) in [
        (
            409,
            "organization_membership_managed_by_scim",
            "list the user under `ignore`",
        ),
        (
            400,
            "organization_minimum_permissions_needed",
            "organization_minimum_permissions_needed",
        ),
        (
            403,
            "organization_quota_exceeded",
            "organization_quota_exceeded",
        ),
        (422, "form_param_value_invalid", "form_param_value_invalid"),
    ] {
        let (simulator, dir, file) = setup(DESIRED).await;
        simulator.inject(
            Fault::new(FaultKind::Before {
                status,
                code: code.into(),
            })
            .on("DELETE", "user_3")
            .always(),
        );
        let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
        assert_eq!(output.status.code(), Some(1), "{code}: {}", stderr(&output));
        let out = stdout(&output);
        assert!(
            out.contains("Apply incomplete: 4 applied, 1 failed, 0 skipped."),
            "{out}"
        );
        assert!(out.contains(expected), "{code}: {out}");
        assert!(
            out.contains("Simulated fault."),
            "Clerk's long_message: {out}"
        );
        let mut expected_state = desired_alpha();
        expected_state.push(member("user_3", "org:member", json!({}), json!({})));
        expected_state.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(members(&simulator, "org_alpha"), expected_state, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanently_failing_organization_does_not_stop_the_others() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      user_4: member\n  org_other:\n    members:\n      user_3: admin\n      user_1: member\n      user_2: member\n";
    let (simulator, dir, file) = setup(text).await;
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 422,
            code: "form_param_value_invalid".into(),
        })
        .on("WRITE", "/organizations/org_other/")
        .always(),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        members(&simulator, "org_alpha")
            .iter()
            .any(|m| m.0 == "user_4")
    );
    assert!(
        !members(&simulator, "org_other")
            .iter()
            .any(|m| m.0 == "user_2")
    );
    assert!(
        stdout(&output).contains("Not applied:"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_swap_never_leaves_the_organization_without_an_admin() {
    let mut state = seed();
    // org_alpha has a single admin, user_1; the file makes user_2 the admin instead and
    // removes user_1.
    state
        .memberships
        .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_5"));
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_2: admin\n      user_3: member\n      user_4: admin\n";
    let file = write_file(dir.path(), "m.yaml", text);
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "1"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let history = simulator.admin_history();
    assert!(!history.is_empty());
    assert!(history.iter().all(|(_, admins)| *admins > 0), "{history:?}");
    assert_eq!(
        simulator.state().roles_of("org_alpha"),
        vec![
            ("user_2".into(), "org:admin".into()),
            ("user_3".into(), "org:member".into()),
            ("user_4".into(), "org:admin".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_promotion_keeps_the_old_admin() {
    let mut state = seed();
    state
        .memberships
        .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_5"));
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: member\n      user_2: admin\n      user_3: member\n";
    let file = write_file(dir.path(), "m.yaml", text);
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 422,
            code: "form_param_value_invalid".into(),
        })
        .on("PATCH", "/memberships/user_2")
        .always(),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("skipped"), "{out}");
    assert!(out.contains("without an org:admin"), "{out}");
    assert!(
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&("user_1".into(), "org:admin".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_limits_refuse_with_exit_3_and_no_write_and_force_overrides() {
    // Deletes 3 of 4 memberships: over the default 25%.
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n";
    let (simulator, dir, file) = setup(text).await;
    let refused = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stdout(&refused).contains("Refused: the plan deletes 3 of 4"));
    assert_eq!(writes(&simulator), 0);

    let counted = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "2"],
    )
    .await;
    assert_eq!(counted.status.code(), Some(3));
    assert_eq!(writes(&simulator), 0);

    let allowed = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "3"],
    )
    .await;
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert_eq!(
        simulator.state().roles_of("org_alpha"),
        vec![("user_1".into(), "org:admin".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_last_admin_is_refused_unless_forced_and_clerk_refuses_it_even_then() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: member\n      user_2: member\n      user_3: member\n      user_5: member\n";
    let (simulator, dir, file) = setup(text).await;
    let refused = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(refused.status.code(), Some(3));
    assert!(stdout(&refused).contains("without an org:admin"));
    assert_eq!(writes(&simulator), 0);

    // --force overrides membersync's limit, not Clerk's: the second demotion is refused.
    let forced = membersync(&simulator, dir.path(), &["apply", "-f", &file, "--force"]).await;
    assert_eq!(forced.status.code(), Some(1), "{}", stderr(&forced));
    assert!(
        stdout(&forced).contains("organization_minimum_permissions_needed"),
        "{}",
        stdout(&forced)
    );
    let admins = simulator
        .state()
        .roles_of("org_alpha")
        .into_iter()
        .filter(|(_, role)| role == "org:admin")
        .count();
    assert_eq!(admins, 1);
    assert_eq!(writes(&simulator), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_midway_is_finished_by_the_next_one() {
    // 40 members to create in an empty organization; the binary is killed after 10 writes.
    let (state, text) = common::creates(40);
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &text);
    simulator.inject(
        Fault::new(FaultKind::Stall)
            .on("WRITE", "")
            .skip(10)
            .always(),
    );

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir.path())
        .args(["apply", "-f", &file])
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", KEY)
        .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while writes(&simulator) < 10 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    simulator.clear_faults();
    let half_done = simulator.state().memberships.len();
    assert!(half_done > 1 && half_done < 41, "{half_done}");

    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.state().memberships.len(), 41);
    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_when_what_it_touches_changed_and_applied_when_not() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let planned = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "reviewed.json"],
    )
    .await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert!(dir.path().join("reviewed.json").exists());

    // A touched membership changes: user_2's metadata.
    simulator.mutate(|state| {
        let m = state
            .memberships
            .iter_mut()
            .find(|m| m.organization_id == "org_alpha" && m.user_id == "user_2")
            .unwrap();
        m.public_metadata.insert("team".into(), json!("moved"));
    });
    simulator.clear_requests();
    let refused = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "reviewed.json"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("user_2 in org_alpha changed since the plan was made"));
    assert_eq!(writes(&simulator), 0);

    // Re-plan; then a change elsewhere (an unmanaged organization) does not block it, and the
    // desired file is not read again (removing it changes nothing).
    let planned = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "reviewed.json"],
    )
    .await;
    assert_eq!(planned.status.code(), Some(0));
    simulator.mutate(|state| {
        state
            .memberships
            .retain(|m| !(m.organization_id == "org_other" && m.user_id == "user_1"));
    });
    std::fs::remove_file(dir.path().join(&file)).unwrap();
    let applied = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "reviewed.json"],
    )
    .await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());

    // Applying the same plan again: what it touches has changed (it applied), so it is refused.
    let twice = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "reviewed.json"],
    )
    .await;
    assert_eq!(twice.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_plan_file_is_invalid_input() {
    let (simulator, dir, _file) = setup(DESIRED).await;
    write_file(dir.path(), "plan.json", "{\"format\": \"something else\"}");
    let output = membersync(&simulator, dir.path(), &["apply", "--plan", "plan.json"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a membersync plan file"));
    assert!(simulator.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_stops_the_run_at_once() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = run(
        dir.path(),
        &["apply", "-f", &file],
        &[
            ("CLERK_API_URL", &simulator.api_url()),
            ("CLERK_SECRET_KEY", "sk_test_revoked"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        simulator.requests().len() <= 3,
        "{:#?}",
        simulator.requests()
    );
    assert_eq!(writes(&simulator), 0);
    assert!(!stderr(&output).contains("sk_test_revoked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_the_organization_does_not_allow_is_an_error_before_any_write() {
    let mut state = seed();
    state.organizations[0].role_set_key = Some("role_set:engineering".into());
    state.role_sets.push(membersync::simulator::SimRoleSet {
        key: "role_set:engineering".into(),
        roles: vec!["org:admin".into(), "org:member".into()],
        ..Default::default()
    });
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    // org:billing exists in the instance, but not in alpha's role set.
    let text = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: billing\n      user_3: member\n      user_4: member\n";
    let file = write_file(dir.path(), "m.yaml", text);

    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(plan.status.code(), Some(1), "{}", stderr(&plan));
    let out = stdout(&plan);
    assert!(
        out.contains("! user_2 (two@example.com) org:billing: not sent: the role `org:billing` does not exist in this organization (its roles: org:admin, org:member)"),
        "{out}"
    );
    assert!(
        simulator
            .requests()
            .iter()
            .any(|r| r.path == "/v1/role_sets/role_set:engineering")
    );

    simulator.clear_requests();
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    // The other change (user_4's create) went through; user_2's role was never sent.
    let writes: Vec<String> = simulator
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, vec!["POST /v1/organizations/org_alpha/memberships"]);
    assert!(
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&("user_2".into(), "org:member".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_by_another_instance() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let planned = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "reviewed.json"],
    )
    .await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    let saved = std::fs::read_to_string(dir.path().join("reviewed.json")).unwrap();
    assert!(saved.contains("\"key\": \"test\"") && !saved.contains(KEY));

    // Another instance (a second simulator with the same data), or a live key.
    let other = start(seed()).await;
    let elsewhere = membersync(&other, dir.path(), &["apply", "--plan", "reviewed.json"]).await;
    assert_eq!(elsewhere.status.code(), Some(3), "{}", stderr(&elsewhere));
    assert!(stderr(&elsewhere).contains("it was made against"));
    assert!(other.requests().is_empty());
    simulator.clear_requests();
    let live = run(
        dir.path(),
        &["apply", "--plan", "reviewed.json"],
        &[
            ("CLERK_API_URL", &simulator.api_url()),
            ("CLERK_SECRET_KEY", "sk_live_other"),
        ],
    )
    .await;
    assert_eq!(live.status.code(), Some(3));
    assert!(simulator.requests().is_empty());
}
