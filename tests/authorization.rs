//! Permissions, roles and role sets as code, through the binary against the simulator: define
//! a role and hand it out in one plan, the order of requests across resources, a role leaving
//! a set (refused without `reassign`, moving its holders with it), prune leaving a role in use
//! alone, a second apply sending nothing, the offline errors, and saved-plan drift.

mod common;

use common::{membersync, seed, start, stderr, stdout, write_file, writes};
use membersync::simulator::{SimRoleSet, SimState, Simulator};

/// The seed, with `alpha` on the role set `role_set:standard` (admin, member, billing).
fn state() -> SimState {
    let mut state = seed();
    state.organizations[0].role_set_key = Some("role_set:standard".into());
    state.role_sets.push(SimRoleSet {
        key: "role_set:standard".into(),
        name: Some("Standard".into()),
        roles: vec![
            "org:admin".into(),
            "org:member".into(),
            "org:billing".into(),
        ],
        default_role: Some("org:member".into()),
        creator_role: Some("org:admin".into()),
        ..SimRoleSet::default()
    });
    state
}

const MEMBERS: &str = "organizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n";

const DEFINE: &str = "version: 1\nauthorization:\n  permissions:\n    org:invoices:read: Read invoices\n    org:invoices:manage: {name: Manage invoices, description: Pay them}\n  roles:\n    org:accountant:\n      name: Accountant\n      permissions: [org:invoices:read, org:invoices:manage, org:sys_memberships:read]\n  role_sets:\n    role_set:standard:\n      name: Standard\n      roles: [org:admin, org:member, org:billing, org:accountant]\n      default_role: org:member\n      creator_role: org:admin\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: accountant\n      user_3: accountant\n";

/// The writes sent, as `METHOD route`, in order.
fn sent(simulator: &Simulator) -> Vec<String> {
    simulator
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.route.unwrap_or(r.path)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_is_defined_added_to_a_set_and_handed_out_in_one_clean_apply() {
    let simulator = start(state()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", DEFINE);

    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let out = stdout(&plan);
    assert!(out.starts_with("authorization\n"), "{out}");
    assert!(
        out.contains("+ permission org:invoices:read \"Read invoices\""),
        "{out}"
    );
    assert!(
        out.contains("+ role org:accountant \"Accountant\""),
        "{out}"
    );
    assert!(
        out.contains("~ role_set role_set:standard roles +org:accountant"),
        "{out}"
    );
    assert!(
        !out.contains("not sent"),
        "member roles are checked against the set as the plan leaves it: {out}"
    );

    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&apply),
        stderr(&apply)
    );
    let order = sent(&simulator);
    let position = |what: &str| {
        order
            .iter()
            .position(|w| w == what)
            .unwrap_or_else(|| panic!("{what}: {order:?}"))
    };
    assert!(
        position("POST /v1/organization_permissions") < position("POST /v1/organization_roles")
    );
    assert!(position("POST /v1/organization_roles") < position("POST /v1/role_sets/{key}/roles"));
    assert!(
        position("POST /v1/role_sets/{key}/roles")
            < position("PATCH /v1/organizations/{org}/memberships/{user}")
    );
    let state = simulator.state();
    assert_eq!(state.role_sets[0].roles.len(), 4);
    let fields = &state.role_fields["org:accountant"];
    assert_eq!(fields.permissions.len(), 3);
    assert_eq!(
        state.roles_of("org_alpha"),
        [
            ("user_1".into(), "org:admin".into()),
            ("user_2".into(), "org:accountant".into()),
            ("user_3".into(), "org:accountant".into()),
            ("user_5".into(), "org:admin".into()),
        ]
    );

    let before = writes(&simulator);
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), before, "a second apply sends no write");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_role_leaving_a_set_is_refused_without_reassign_and_moved_with_it() {
    let mut state = state();
    state.memberships[1].role = "org:billing".into();
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let set = "authorization:\n  role_sets:\n    role_set:standard:\n      name: Standard\n      roles: [org:admin, org:member]\n      default_role: org:member\n      creator_role: org:admin\n";
    let refused = write_file(
        dir.path(),
        "refused.yaml",
        &format!("version: 1\n{set}organizations: {{}}\n"),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &refused]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        text.contains("role_set:standard drops org:billing, which 1 member(s) hold"),
        "{text}"
    );
    assert_eq!(writes(&simulator), 0);

    let moved = write_file(
        dir.path(),
        "moved.yaml",
        &format!(
            "version: 1\n{set}      reassign: {{org:billing: org:member}}\norganizations: {{}}\n"
        ),
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &moved]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let state = simulator.state();
    assert_eq!(state.memberships[1].role, "org:member");
    assert_eq!(state.role_sets[0].roles, ["org:admin", "org:member"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_an_unused_role_and_leaves_a_role_in_use_alone() {
    let mut state = state();
    state.roles.push("org:old".into());
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "m.yaml",
        "version: 1\nauthorization:\n  prune: true\n  roles:\n    org:auditor: {name: Auditor}\norganizations: {}\n",
    );
    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let document: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let rejected = &document["rejected"];
    assert!(
        rejected
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "role" && r["key"] == "org:billing"),
        "{rejected}"
    );
    assert_eq!(document["summary"]["resources"]["role"]["delete"], 1);
    assert_eq!(document["summary"]["resources"]["role"]["create"], 1);

    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "1"],
    )
    .await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&apply),
        stderr(&apply)
    );
    let roles = simulator.state().roles;
    assert!(!roles.contains(&"org:old".to_owned()), "{roles:?}");
    assert!(roles.contains(&"org:billing".to_owned()), "{roles:?}");
    assert!(roles.contains(&"org:auditor".to_owned()), "{roles:?}");

    let limited = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "0"],
    )
    .await;
    assert_eq!(
        limited.status.code(),
        Some(0),
        "nothing is left to delete: {}",
        stderr(&limited)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deletions_count_towards_max_deletes() {
    let mut state = state();
    state.roles.push("org:old".into());
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "m.yaml",
        "version: 1\nauthorization:\n  prune: true\n  roles: {}\norganizations: {}\n",
    );
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "0"],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_without_the_block_reads_no_permission_role_or_role_set() {
    let simulator = start(state()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "m.yaml", &format!("version: 1\n{MEMBERS}"));
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let paths: Vec<String> = simulator.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/v1/organization_permissions") || p == "/v1/role_sets"),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reference_the_instance_does_not_know_is_invalid_input_at_its_line() {
    let simulator = start(state()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "m.yaml",
        "version: 1\nauthorization:\n  roles:\n    org:auditor:\n      name: Auditor\n      permissions: [org:ghost:read]\norganizations: {}\n",
    );
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("m.yaml:6:21: authorization: the permission `org:ghost:read` exists neither in the file nor in the instance"),
        "{}",
        stderr(&output)
    );
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_when_a_role_it_changes_changed_since() {
    let simulator = start(state()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "m.yaml",
        "version: 1\nauthorization:\n  roles:\n    org:billing: {name: Billing team}\norganizations: {}\n",
    );
    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "reviewed.json"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    simulator.mutate(|state| {
        state
            .role_fields
            .entry("org:billing".into())
            .or_default()
            .name = Some("Payments".into());
    });
    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "reviewed.json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(3), "{}", stdout(&apply));
    assert!(
        format!("{}{}", stdout(&apply), stderr(&apply))
            .contains("the role org:billing changed since the plan was made"),
        "{}\n{}",
        stdout(&apply),
        stderr(&apply)
    );
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_with_authorization_plans_empty() {
    let mut state = state();
    state
        .permissions
        .push(membersync::simulator::SimPermission {
            key: "org:invoices:read".into(),
            name: "Read invoices".into(),
            description: "Read them, all of them".into(),
        });
    state.role_fields.insert(
        "org:billing".into(),
        membersync::simulator::SimRoleFields {
            name: Some("Billing".into()),
            description: Some("Pays: \"everything\"".into()),
            permissions: vec!["org:invoices:read".into(), "org:sys_billing:read".into()],
        },
    );
    state.role_sets[0].initial = true;
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let export = membersync(
        &simulator,
        dir.path(),
        &["export", "--authorization", "--out", "exported.yaml"],
    )
    .await;
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let text = std::fs::read_to_string(dir.path().join("exported.yaml")).unwrap();
    assert!(text.contains("authorization:\n  prune: false\n"), "{text}");
    let plan = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", "exported.yaml", "--detailed-exitcode"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}\n{text}", stdout(&plan));
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_move_to_and_are_created_with_a_role_set_the_same_file_defines() {
    let simulator = start(state()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\nauthorization:\n  role_sets:\n    role_set:partner:\n      name: Partner\n      roles: [org:admin, org:member, org:billing]\n      default_role: org:member\n      creator_role: org:admin\norganizations:\n  alpha:\n    role_set: role_set:partner\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: billing\n      user_3: member\n  initech:\n    name: Initech\n    role_set: role_set:partner\n    members:\n      user_4: billing\n";
    let file = write_file(dir.path(), "m.yaml", text);

    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "the sets are checked as the plan leaves them: {}\n{}",
        stdout(&apply),
        stderr(&apply)
    );
    let order = sent(&simulator);
    let position = |what: &str| {
        order
            .iter()
            .position(|sent| sent == what)
            .unwrap_or_else(|| panic!("{what} in {order:?}"))
    };
    let created_set = position("POST /v1/role_sets");
    assert!(
        created_set < position("PATCH /v1/organizations/{org}"),
        "{order:?}"
    );
    assert!(
        created_set < position("POST /v1/organizations"),
        "{order:?}"
    );
    let state = simulator.state();
    for slug in ["alpha", "initech"] {
        let organization = state.organizations.iter().find(|o| o.slug == slug).unwrap();
        assert_eq!(
            organization.role_set_key.as_deref(),
            Some("role_set:partner")
        );
    }

    let before = writes(&simulator);
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), before, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_only_a_pending_invitation_holds_leaving_a_set_is_refused_without_reassign() {
    let mut state = state();
    state
        .invitations
        .push(membersync::simulator::SimInvitation {
            id: "orginv_billing".into(),
            organization_id: "org_alpha".into(),
            email_address: "newcomer@example.com".into(),
            role: "org:billing".into(),
            public_metadata: Default::default(),
            private_metadata: Default::default(),
            status: "pending".into(),
            created_at: 1,
            redirect_url: None,
            expires_in_days: None,
        });
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "m.yaml",
        "version: 1\nauthorization:\n  role_sets:\n    role_set:standard:\n      name: Standard\n      roles: [org:admin, org:member]\n      default_role: org:member\n      creator_role: org:admin\norganizations: {}\n",
    );
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        text.contains(
            "role_set:standard drops org:billing, which 0 member(s) and 1 pending invitation(s) hold"
        ),
        "{text}"
    );
    assert_eq!(writes(&simulator), 0);
}
