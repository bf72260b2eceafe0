//! Invitations (docs/invitations.md: "Onboarding people who have no account yet") through the real binary
//! against the simulator: bulk sends, revocations, a role change as revoke + re-invite,
//! idempotence, acceptance, the safety limit, Clerk's quota and its own invitation limit, saved
//! plans, and a file that sends none.

mod common;

use common::*;
use membersync::simulator::{SimInvitation, SimOptions, SimState, Simulator};
use serde_json::{Map, Value, json};

fn invitation(id: &str, org: &str, email: &str, role: &str) -> SimInvitation {
    SimInvitation {
        id: id.into(),
        organization_id: org.into(),
        email_address: email.into(),
        role: role.into(),
        public_metadata: Map::new(),
        private_metadata: Map::new(),
        status: "pending".into(),
        created_at: 1,
        redirect_url: None,
        expires_in_days: None,
    }
}

/// `alpha` as the seed has it (so memberships do not change), inviting `emails` as members.
fn inviting(emails: &[&str], extra: &str) -> String {
    let mut text = String::from(
        "version: 1\norganizations:\n  alpha:\n    invitations:\n      send: true\n      redirect_url: https://app.example.com/accept\n      expires_in_days: 7\n",
    );
    text.push_str(extra);
    text.push_str("    members:\n      user_1: admin\n      user_2: member\n      user_3: member\n      user_5: admin\n");
    for email in emails {
        text.push_str(&format!("      {email}: member\n"));
    }
    text
}

fn invitation_requests(simulator: &Simulator) -> Vec<String> {
    simulator
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("invitations"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn with_state(state: SimState, text: &str) -> (Simulator, tempfile::TempDir, String) {
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", text);
    (simulator, dir, file)
}

#[tokio::test]
async fn many_invitations_go_out_in_bulk_and_a_second_run_sends_nothing() {
    let emails: Vec<String> = (0..12).map(|n| format!("new{n}@example.com")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (simulator, dir, file) = setup(&inviting(&refs, "")).await;

    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("  + invite new0@example.com org:member\n"),
        "{}",
        stdout(&plan)
    );
    assert!(
        stdout(&plan).contains("12 to invite, 0 invitation(s) to revoke"),
        "{}",
        stdout(&plan)
    );
    assert_eq!(writes(&simulator), 0, "plan never writes");

    simulator.clear_requests();
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}{}",
        stdout(&apply),
        stderr(&apply)
    );
    let posts: Vec<String> = invitation_requests(&simulator)
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(
        posts,
        [
            "POST /v1/organizations/org_alpha/invitations/bulk",
            "POST /v1/organizations/org_alpha/invitations/bulk"
        ],
        "12 invitations: a bulk request of 10 and one of 2"
    );
    let pending = simulator.state().pending_invitations("org_alpha");
    assert_eq!(pending.len(), 12);
    assert!(pending.iter().all(|(_, role)| role == "org:member"));
    assert!(
        simulator
            .requests()
            .iter()
            .filter(|r| r.is_write())
            .all(|r| r.path.starts_with("/v1/organizations/org_alpha/")),
        "no write to another organization"
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0, "invitations as declared are in sync");
    assert!(stdout(&again).contains("No changes"), "{}", stdout(&again));
}

#[tokio::test]
async fn one_invitation_uses_the_single_endpoint_with_role_and_metadata() {
    let text = inviting(&[], "").replace(
        "      user_5: admin\n",
        "      user_5: admin\n      new@example.com:\n        role: billing\n        public_metadata: {team: web}\n",
    );
    let (simulator, dir, file) = setup(&text).await;
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert_eq!(
        invitation_requests(&simulator)
            .into_iter()
            .filter(|r| r.starts_with("POST"))
            .collect::<Vec<_>>(),
        ["POST /v1/organizations/org_alpha/invitations"]
    );
    let state = simulator.state();
    let sent = &state.invitations[0];
    assert_eq!(sent.role, "org:billing");
    assert_eq!(
        Value::Object(sent.public_metadata.clone()),
        json!({"team": "web"})
    );
    assert_eq!(
        sent.redirect_url.as_deref(),
        Some("https://app.example.com/accept")
    );
    assert_eq!(sent.expires_in_days, Some(7));
}

#[tokio::test]
async fn another_role_is_a_revocation_and_a_new_invitation() {
    let mut state = seed();
    state.invitations.push(invitation(
        "orginv_old",
        "org_alpha",
        "new@example.com",
        "org:admin",
    ));
    let (simulator, dir, file) = with_state(state, &inviting(&["new@example.com"], "")).await;

    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    let text = stdout(&plan);
    let revoke = text
        .find("  - revoke invitation new@example.com org:admin")
        .expect(&text);
    let invite = text
        .find("  + invite new@example.com org:member")
        .expect(&text);
    assert!(revoke < invite, "revoked before it is sent again:\n{text}");

    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let state = simulator.state();
    assert_eq!(
        state.pending_invitations("org_alpha"),
        [("new@example.com".to_owned(), "org:member".to_owned())]
    );
    let old = state
        .invitations
        .iter()
        .find(|i| i.id == "orginv_old")
        .unwrap();
    assert_eq!(old.status, "revoked");

    simulator.clear_requests();
    membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test]
async fn prune_revokes_unlisted_invitations_except_ignored_ones_and_counts_them_as_deletions() {
    let mut state = seed();
    for (id, email) in [
        ("orginv_1", "gone1@example.com"),
        ("orginv_2", "gone2@example.com"),
        ("orginv_3", "gone3@example.com"),
        ("orginv_4", "breakglass@example.com"),
    ] {
        state
            .invitations
            .push(invitation(id, "org_alpha", email, "org:member"));
    }
    state.invitations.push(invitation(
        "orginv_5",
        "org_other",
        "other@example.com",
        "org:member",
    ));
    let text = inviting(&[], "    ignore: [breakglass@example.com]\n");
    let (simulator, dir, file) = with_state(state, &text).await;

    // 3 revocations over 4 memberships + 4 pending invitations: over 2, refused.
    let refused = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "2"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", stdout(&refused));
    assert!(
        stdout(&refused).contains("deletes or revokes 3 of 8"),
        "{}",
        stdout(&refused)
    );
    assert_eq!(writes(&simulator), 0);

    let apply = membersync(
        &simulator,
        dir.path(),
        &[
            "apply",
            "-f",
            &file,
            "--max-deletes",
            "3",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let report: Value = serde_json::from_str(&stdout(&apply)).unwrap();
    assert_eq!(report["summary"]["revoke_invitation"], 3);
    assert_eq!(report["summary"]["invite"], 0);
    let first = &report["changes"][0];
    assert_eq!(first["action"], "revoke_invitation");
    assert_eq!(first["email"], "gone1@example.com");
    assert_eq!(first["role"], "org:member");
    assert_eq!(first["user_id"], Value::Null);
    assert_eq!(first["outcome"], "applied");
    let state = simulator.state();
    assert_eq!(
        state.pending_invitations("org_alpha"),
        [("breakglass@example.com".to_owned(), "org:member".to_owned())]
    );
    assert_eq!(
        state.pending_invitations("org_other").len(),
        1,
        "another organization"
    );
}

#[tokio::test]
async fn an_accepted_invitation_converges_with_no_write() {
    let text = inviting(&[], "").replace(
        "      user_5: admin\n",
        "      user_5: admin\n      new@example.com:\n        role: billing\n        public_metadata: {team: web}\n        private_metadata: {level: 2}\n",
    );
    let (simulator, dir, file) = setup(&text).await;
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert_eq!(simulator.accept_invitation("new@example.com"), 1);

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0, "{}", stdout(&again));
    assert!(stdout(&again).contains("No changes"), "{}", stdout(&again));
}

#[tokio::test]
async fn a_file_without_invitations_sends_no_invitation_request() {
    let mut state = seed();
    state.invitations.push(invitation(
        "orginv_1",
        "org_alpha",
        "someone@example.com",
        "org:member",
    ));
    let (simulator, dir, file) = with_state(state, DESIRED).await;
    let text = DESIRED.replace(
        "      user_4: member\n",
        "      user_4: member\n      new@example.com: member\n",
    );
    write_file(dir.path(), &file, &text);
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert!(
        invitation_requests(&simulator).is_empty(),
        "{:?}",
        invitation_requests(&simulator)
    );
    assert!(
        stdout(&apply).contains("? new@example.com org:member (pending"),
        "{}",
        stdout(&apply)
    );
    assert_eq!(simulator.state().pending_invitations("org_alpha").len(), 1);
}

#[tokio::test]
async fn a_refused_bulk_request_is_sent_one_by_one_and_a_quota_fails_only_its_change() {
    let mut state = seed();
    // alpha has 4 members and room for 5: the bulk of 3 is refused, the first single fits.
    state.organizations[0].max_allowed_memberships = Some(5);
    let text = inviting(&["a@example.com", "b@example.com", "c@example.com"], "")
        .replace("      user_3: member\n", "      user_3: billing\n");
    let (simulator, dir, file) = with_state(state, &text).await;
    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    let report: Value = serde_json::from_str(&stdout(&apply)).unwrap();
    let outcomes: Vec<(String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("update_role".to_owned(), "applied".to_owned()),
            ("invite".to_owned(), "applied".to_owned()),
            ("invite".to_owned(), "failed".to_owned()),
            ("invite".to_owned(), "failed".to_owned()),
        ]
    );
    assert!(
        report["changes"][2]["error"]
            .as_str()
            .unwrap()
            .contains("organization_membership_quota_exceeded"),
        "{report}"
    );
    assert!(
        !stderr(&apply).contains("refused the secret key"),
        "a quota is not authentication"
    );
    assert_eq!(simulator.state().pending_invitations("org_alpha").len(), 1);
}

#[tokio::test]
async fn clerks_invitation_limit_defers_the_rest_to_the_next_run_with_exit_0() {
    let options = SimOptions {
        invitation_limit: Some(1),
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(seed(), KEY, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = inviting(&["a@example.com"], "").replace(
        "  alpha:\n",
        "  other:\n    invitations: {send: true}\n    members:\n      user_1: member\n      user_3: admin\n      b@example.com: member\n  alpha:\n",
    );
    let file = write_file(dir.path(), "membersync.yaml", &text);
    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let report: Value = serde_json::from_str(&stdout(&apply)).unwrap();
    let outcomes: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "applied").count(),
        1,
        "{report}"
    );
    let deferred: Vec<&Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "skipped")
        .collect();
    assert_eq!(deferred.len(), 1, "{report}");
    assert!(
        deferred[0]["error"]
            .as_str()
            .unwrap()
            .contains("deferred by Clerk's invitation limit")
    );
    assert!(
        stderr(&apply).contains("deferred by Clerk's invitation limit"),
        "{}",
        stderr(&apply)
    );
}

#[tokio::test]
async fn reads_take_the_fewest_requests() {
    let mut state = seed();
    state.invitations.push(invitation(
        "orginv_1",
        "org_other",
        "x@example.com",
        "org:member",
    ));
    // One organization inviting: its own listing.
    let (simulator, dir, file) = with_state(state, &inviting(&[], "")).await;
    membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(
        invitation_requests(&simulator),
        ["GET /v1/organizations/org_alpha/invitations"]
    );
    // Two: the instance listing (one page) instead of one request each.
    let text = inviting(&[], "").replace(
        "  alpha:\n",
        "  other:\n    invitations: {send: true}\n    members:\n      user_1: member\n      user_3: admin\n      x@example.com: member\n  alpha:\n",
    );
    write_file(dir.path(), &file, &text);
    simulator.clear_requests();
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert!(stdout(&plan).contains("No changes"), "{}", stdout(&plan));
    assert_eq!(
        invitation_requests(&simulator),
        ["GET /v1/organization_invitations"]
    );
}

#[tokio::test]
async fn a_saved_plan_refuses_when_the_invitations_it_touches_moved() {
    let (simulator, dir, file) = setup(&inviting(&["new@example.com"], "")).await;
    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "plan.json"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));

    // Someone invites the same person with another role meanwhile.
    simulator.mutate(|state| {
        state.invitations.push(invitation(
            "orginv_x",
            "org_alpha",
            "new@example.com",
            "org:admin",
        ))
    });
    simulator.clear_requests();
    let refused = membersync(&simulator, dir.path(), &["apply", "--plan", "plan.json"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("the pending invitations of new@example.com"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(writes(&simulator), 0);

    simulator.mutate(|state| state.invitations.clear());
    let applied = membersync(&simulator, dir.path(), &["apply", "--plan", "plan.json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_eq!(
        simulator.state().pending_invitations("org_alpha"),
        [("new@example.com".to_owned(), "org:member".to_owned())]
    );
}

#[tokio::test]
async fn an_invitation_to_a_role_the_organization_lacks_is_rejected_and_replaces_nothing() {
    let mut state = seed();
    state.invitations.push(invitation(
        "orginv_old",
        "org_alpha",
        "new@example.com",
        "org:member",
    ));
    let text = inviting(&[], "").replace(
        "      user_5: admin\n",
        "      user_5: admin\n      new@example.com: auditor\n",
    );
    let (simulator, dir, file) = with_state(state, &text).await;
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    assert!(
        stdout(&apply).contains("! invite new@example.com org:auditor: not sent"),
        "{}",
        stdout(&apply)
    );
    assert_eq!(writes(&simulator), 0, "the old invitation is not revoked");
    assert_eq!(simulator.state().pending_invitations("org_alpha").len(), 1);
}

#[tokio::test]
async fn an_export_lists_pending_invitations_and_plans_empty() {
    let mut state = seed();
    let mut invited = invitation("orginv_1", "org_alpha", "New@Example.com", "org:billing");
    invited.public_metadata = json!({"team": "web"}).as_object().cloned().unwrap();
    state.invitations.push(invited);
    let (simulator, dir, _) = with_state(state, "").await;
    let export = membersync(&simulator, dir.path(), &["export", "-o", "exported.yaml"]).await;
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let text = std::fs::read_to_string(dir.path().join("exported.yaml")).unwrap();
    assert!(text.contains("    invitations: {send: true}"), "{text}");
    assert!(
        text.contains("      \"new@example.com\":  # invited; no Clerk account yet\n        role: org:billing\n        public_metadata: {\"team\":\"web\"}\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("invitations: {send: true}").count(),
        1,
        "only alpha invites:\n{text}"
    );

    simulator.clear_requests();
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", "exported.yaml"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(stdout(&plan).starts_with("No changes"), "{}", stdout(&plan));
}
