//! `membersync plan` and `apply --dry-run` through the real binary against the simulator:
//! the plan printed, the exit codes, and never a write request.

mod common;

use common::*;

const DESIRED: &str = r#"version: 1
organizations:
  alpha:
    members:
      user_1: admin
      two@example.com:
        role: member
        public_metadata: {team: payments}
      user_4:
        role: admin
        public_metadata: {team: core}
      SIX@example.com: org:billing
      nobody@example.com: member
    ignore: [user_5]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn plan_prints_the_changes_and_sends_no_write() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    insta::assert_snapshot!(stdout(&output), @r#"
    organization org_alpha (alpha)
      + user_4 org:admin with public_metadata {"team":"core"}
      + user_6 (six@example.com) org:billing
      ~ user_2 (two@example.com) public_metadata {"team":"old","stale":true} → {"team":"payments"}
      - user_3 (three@example.com) org:member
      ? nobody@example.com org:member (pending: no Clerk user has this email yet)

    Plan: 2 to create, 0 role change(s), 1 metadata change(s), 1 to delete, 1 pending.
    "#);
    let requests = simulator.requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| !r.path.contains("org_other") && !r.query.contains("org_other"))
    );
    assert!(
        stderr(&output).contains("nobody@example.com"),
        "pending is warned about"
    );
    assert_eq!(simulator.state(), seed(), "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_dry_run_is_the_same_as_plan() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
    )
    .await;
    let dry_run = membersync(
        &simulator,
        dir.path(),
        &["apply", "--dry-run", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(dry_run.status.code(), Some(0), "{}", stderr(&dry_run));
    assert_eq!(stdout(&plan), stdout(&dry_run));
    assert!(simulator.requests().iter().all(|r| !r.is_write()));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_one_document_with_every_change() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
    )
    .await;
    let document: serde_json::Value =
        serde_json::from_str(&stdout(&output)).expect("stdout is one JSON document");
    insta::assert_json_snapshot!(document);
}

#[tokio::test(flavor = "multi_thread")]
async fn detailed_exitcode_is_4_with_changes_and_0_without() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "changes.yaml", DESIRED);
    let output = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--detailed-exitcode"],
    )
    .await;
    assert_eq!(output.status.code(), Some(4));
    let in_sync = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n      user_2: {role: member, public_metadata: {team: old, stale: true}}\n      user_3: member\n      user_5: admin\n";
    let file = write_file(dir.path(), "same.yaml", in_sync);
    let output = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--detailed-exitcode"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        "No changes: the 1 managed organization(s) match the desired state.\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_organization_is_reported_and_the_others_are_planned() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    prune: false\n    members:\n      user_4: member\n  org_ghost:\n    members:\n      user_1: admin\n  ghost-slug:\n    members:\n      user_1: admin\n";
    let (simulator, dir, file) = setup(text).await;
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("+ user_4 org:member"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("organization `org_ghost` does not exist"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("organization `ghost-slug` does not exist"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_user_by_id_and_by_email_is_invalid_input() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n      ONE@example.com: member\n";
    let (simulator, dir, file) = setup(text).await;
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("membersync.yaml:6:7: organizations.org_alpha.members: `one@example.com` and `user_1` (line 5) are the same user (user_1)"),
        "{}",
        stderr(&output)
    );
    assert!(simulator.requests().iter().all(|r| !r.is_write()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_stops_at_once_without_showing_the_key() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let wrong = "sk_live_wrong_key_do_not_print_me";
    let output = run(
        dir.path(),
        &["plan", "-f", &file],
        &[
            ("CLERK_API_URL", &simulator.api_url()),
            ("CLERK_SECRET_KEY", wrong),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let all_output = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all_output.contains(wrong), "{all_output}");
    assert!(
        all_output.contains("Check CLERK_SECRET_KEY"),
        "{all_output}"
    );
    assert!(all_output.contains("live (sk_live_…)"), "{all_output}");
    assert!(
        simulator.requests().len() <= 3,
        "no retry storm: {:?}",
        simulator.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_key_is_invalid_input_and_sends_nothing() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = run(
        dir.path(),
        &["plan", "-f", &file],
        &[("CLERK_API_URL", &simulator.api_url())],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no Clerk secret key"));
    assert!(simulator.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_file_wins_over_the_variable_and_is_trimmed() {
    let (simulator, dir, file) = setup(DESIRED).await;
    std::fs::write(dir.path().join("key"), format!("  {KEY}\n")).unwrap();
    let output = run(
        dir.path(),
        &["plan", "-f", &file, "--secret-key-file", "key"],
        &[
            ("CLERK_API_URL", &simulator.api_url()),
            ("CLERK_SECRET_KEY", "sk_test_wrong"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn global_flags_go_after_the_subcommand() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &[
            "plan",
            "-f",
            &file,
            "--rate-limit",
            "40/s",
            "--concurrency",
            "2",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bad = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--rate-limit", "fast"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_entry_counts_as_not_listed() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2:\n        role: member\n        expires: 2020-01-01\n      user_3:\n        role: member\n        expires: 2999-12-31\n";
    let (simulator, dir, file) = setup(text).await;
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("- user_2 (two@example.com) org:member"),
        "{out}"
    );
    assert!(!out.contains("user_3"), "{out}");
}
