//! An organization's own fields and domains as code, through the binary against the simulator
//! (docs/organizations.md: "Onboarding a customer organization in one pull request"): one PATCH per update,
//! metadata exact and merged, domains exactly as declared with their deletions under
//! `--max-deletes`, a role set change that would strand member roles refused, a domain held
//! elsewhere failing with Clerk's message, saved-plan drift, and never an organization DELETE.

mod common;

use common::{membersync, setup, stderr, stdout, write_file, writes};
use membersync::simulator::{SimDomain, SimRoleSet, Simulator};
use serde_json::{Value, json};

fn domain(id: &str, organization: &str, name: &str, mode: &str) -> SimDomain {
    SimDomain {
        id: id.into(),
        organization_id: organization.into(),
        name: name.into(),
        enrollment_mode: mode.into(),
        verified: true,
        created_at: 1,
    }
}

/// The writes sent, as `METHOD path`.
fn sent(simulator: &Simulator) -> Vec<String> {
    simulator
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn no_organization_delete(simulator: &Simulator) {
    let deletes: Vec<String> = sent(simulator)
        .into_iter()
        .filter(|w| {
            w.starts_with("DELETE") && !w.contains("/memberships/") && !w.contains("/domains/")
        })
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");
}

fn alpha(simulator: &Simulator) -> membersync::simulator::SimOrganization {
    simulator
        .state()
        .organizations
        .into_iter()
        .find(|o| o.id == "org_alpha")
        .unwrap()
}

fn domains(simulator: &Simulator) -> Vec<(String, String, String)> {
    let mut domains: Vec<_> = simulator
        .state()
        .domains
        .into_iter()
        .map(|d| (d.organization_id, d.name, d.enrollment_mode))
        .collect();
    domains.sort();
    domains
}

#[tokio::test]
async fn declared_fields_that_differ_are_one_patch_and_a_second_apply_sends_nothing() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    name: Alpha Inc\n    max_allowed_memberships: 50\n    admin_delete_enabled: false\n    public_metadata: {plan: enterprise}\n",
    )
    .await;
    simulator.mutate(|s| {
        s.organizations[0].public_metadata = json!({"old": 1}).as_object().cloned().unwrap()
    });
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    let text = stdout(&plan);
    assert!(
        text.contains("  ~ name \"ALPHA\" → \"Alpha Inc\", max_allowed_memberships 0 → 50, admin_delete_enabled true → false"),
        "{text}"
    );
    assert!(
        text.contains("  ~ metadata public_metadata {\"old\":1} → {\"plan\":\"enterprise\"}"),
        "{text}"
    );
    assert_eq!(writes(&simulator), 0);

    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert_eq!(
        sent(&simulator),
        [
            "PATCH /v1/organizations/org_alpha",
            "PATCH /v1/organizations/org_alpha/metadata"
        ]
    );
    let organization = alpha(&simulator);
    assert_eq!(organization.name, "Alpha Inc");
    assert_eq!(organization.max_allowed_memberships, Some(50));
    assert_eq!(organization.admin_delete_enabled, Some(false));
    assert_eq!(
        Value::Object(organization.public_metadata),
        json!({"plan": "enterprise"})
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
    no_organization_delete(&simulator);
}

#[tokio::test]
async fn organization_metadata_in_merge_mode_keeps_undeclared_keys() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    metadata: merge\n    private_metadata: {crm_id: 4711, nested: {a: 1}}\n",
    )
    .await;
    simulator.mutate(|s| {
        s.organizations[0].private_metadata = json!({"keep": true, "nested": {"b": 2}})
            .as_object()
            .cloned()
            .unwrap()
    });
    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let report: Value = serde_json::from_str(&stdout(&apply)).unwrap();
    let change = &report["changes"][0];
    assert_eq!(change["resource"], "organization");
    assert_eq!(change["action"], "update_metadata");
    assert_eq!(change["outcome"], "applied");
    assert_eq!(
        Value::Object(alpha(&simulator).private_metadata),
        json!({"keep": true, "crm_id": 4711, "nested": {"a": 1, "b": 2}})
    );
}

#[tokio::test]
async fn domains_are_exactly_the_declared_ones_and_their_deletions_count_towards_max_deletes() {
    let text = "version: 1\norganizations:\n  alpha:\n    prune: false\n    domains:\n      alpha.com: manual_invitation\n      alpha.io: {enrollment_mode: automatic_suggestion}\n";
    let (simulator, dir, file) = setup(text).await;
    simulator.mutate(|s| {
        for (id, organization, name) in [
            ("dmn_1", "org_alpha", "alpha.io"),
            ("dmn_2", "org_alpha", "old.com"),
            ("dmn_3", "org_alpha", "older.com"),
            ("dmn_4", "org_other", "other.com"),
        ] {
            s.domains
                .push(domain(id, organization, name, "manual_invitation"));
        }
    });
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    let lines = stdout(&plan);
    assert!(
        lines.contains("  + domain alpha.com manual_invitation\n"),
        "{lines}"
    );
    assert!(
        lines.contains("  ~ domain alpha.io manual_invitation → automatic_suggestion  ! everyone with an @alpha.io address can join\n"),
        "{lines}"
    );
    assert!(lines.contains("  - domain old.com\n"), "{lines}");
    let markdown = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "markdown"],
    )
    .await;
    let markdown = stdout(&markdown);
    assert!(
        markdown.contains("**! alpha.io: everyone with an @alpha.io address can join.**"),
        "{markdown}"
    );

    let refused = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "1"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(writes(&simulator), 0);

    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "2"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert_eq!(
        domains(&simulator),
        [
            (
                "org_alpha".into(),
                "alpha.com".into(),
                "manual_invitation".into()
            ),
            (
                "org_alpha".into(),
                "alpha.io".into(),
                "automatic_suggestion".into()
            ),
            (
                "org_other".into(),
                "other.com".into(),
                "manual_invitation".into()
            ),
        ]
    );
    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(writes(&simulator), 0);
    no_organization_delete(&simulator);
}

#[tokio::test]
async fn a_domain_another_organization_holds_fails_with_clerks_message() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    domains:\n      other.com: manual_invitation\n",
    )
    .await;
    simulator.mutate(|s| {
        s.domains.push(domain(
            "dmn_4",
            "org_other",
            "other.com",
            "manual_invitation",
        ))
    });
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(1));
    let out = stdout(&apply) + &stderr(&apply);
    assert!(
        out.contains("already used by another organization"),
        "{out}"
    );
    assert_eq!(domains(&simulator).len(), 1);
}

#[tokio::test]
async fn a_role_set_change_that_strands_member_roles_is_refused_naming_them() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    role_set: role_set:small\n    members:\n      user_4: billing\n",
    )
    .await;
    simulator.mutate(|s| {
        s.role_sets.push(SimRoleSet {
            key: "role_set:small".into(),
            roles: vec!["org:admin".into(), "org:member".into()],
            ..Default::default()
        })
    });
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file, "--force"]).await;
    assert_eq!(apply.status.code(), Some(3), "{}", stderr(&apply));
    let out = stdout(&apply) + &stderr(&apply);
    assert!(
        out.contains("alpha cannot move to the role set role_set:small: it lacks the roles of user_4 (org:billing)"),
        "{out}"
    );
    assert_eq!(writes(&simulator), 0);

    // Without the billing member, every role fits and the change is one PATCH.
    write_file(
        dir.path(),
        &file,
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    role_set: role_set:small\n",
    );
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert_eq!(
        alpha(&simulator).role_set_key.as_deref(),
        Some("role_set:small")
    );
}

#[tokio::test]
async fn a_saved_plan_refuses_when_a_field_or_domain_it_changes_changed_since() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    name: Alpha Inc\n    domains:\n      alpha.com: manual_invitation\n",
    )
    .await;
    let out = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "plan.json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A field the plan does not change moves: the plan still applies.
    simulator.mutate(|s| s.organizations[0].max_allowed_memberships = Some(7));
    let saved = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    std::fs::write(dir.path().join("copy.json"), &saved).unwrap();
    // The name it changes moves: refused, nothing written.
    simulator.mutate(|s| s.organizations[0].name = "Someone else's".into());
    let refused = membersync(&simulator, dir.path(), &["apply", "--plan", "plan.json"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(writes(&simulator), 0);

    simulator.mutate(|s| s.organizations[0].name = "ALPHA".into());
    let applied = membersync(&simulator, dir.path(), &["apply", "--plan", "copy.json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_eq!(alpha(&simulator).name, "Alpha Inc");
    assert_eq!(domains(&simulator).len(), 1);
}

const NEW_CUSTOMER: &str = "version: 1\norganizations:\n  initech:\n    name: Initech\n    max_allowed_memberships: 20\n    admin_delete_enabled: false\n    public_metadata: {plan: enterprise}\n    private_metadata: {crm_id: 4711}\n    domains:\n      initech.com: manual_invitation\n    members:\n      user_1: admin\n      two@example.com: member\n";

#[tokio::test]
async fn a_new_organization_is_created_with_its_fields_then_its_domains_and_members_in_one_run() {
    let (simulator, dir, file) = setup(NEW_CUSTOMER).await;
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    let text = stdout(&plan);
    assert!(
        text.contains("organization initech (to be created)"),
        "{text}"
    );
    assert!(
        text.contains("  + organization initech \"Initech\""),
        "{text}"
    );

    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let state = simulator.state();
    let initech = state
        .organizations
        .iter()
        .find(|o| o.slug == "initech")
        .unwrap();
    let id = initech.id.clone();
    assert_eq!(initech.name, "Initech");
    assert_eq!(initech.max_allowed_memberships, Some(20));
    assert_eq!(initech.admin_delete_enabled, Some(false));
    assert_eq!(
        Value::Object(initech.public_metadata.clone()),
        json!({"plan": "enterprise"})
    );
    assert_eq!(
        Value::Object(initech.private_metadata.clone()),
        json!({"crm_id": 4711})
    );
    let mut members: Vec<(String, String)> = state
        .memberships
        .iter()
        .filter(|m| m.organization_id == id)
        .map(|m| (m.user_id.clone(), m.role.clone()))
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            ("user_1".to_owned(), "org:admin".to_owned()),
            ("user_2".to_owned(), "org:member".to_owned())
        ]
    );
    assert!(domains(&simulator).contains(&(
        id.clone(),
        "initech.com".into(),
        "manual_invitation".into()
    )));
    let writes_sent = sent(&simulator);
    assert_eq!(
        writes_sent[0], "POST /v1/organizations",
        "one POST creates it first: {writes_sent:?}"
    );
    assert_eq!(
        writes_sent
            .iter()
            .filter(|w| *w == "POST /v1/organizations")
            .count(),
        1
    );
    assert_eq!(
        writes_sent.len(),
        5,
        "create, the PATCH of admin_delete_enabled, a domain, two members: {writes_sent:?}"
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0);
    no_organization_delete(&simulator);
}

#[tokio::test]
async fn a_missing_slug_without_a_name_is_an_error_and_nothing_is_created() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  initech:\n    max_allowed_memberships: 20\n    members:\n      user_1: admin\n",
    )
    .await;
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_ne!(apply.status.code(), Some(0));
    assert!(
        stderr(&apply).contains("`initech` does not exist"),
        "{}",
        stderr(&apply)
    );
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test]
async fn a_saved_plan_that_creates_an_organization_refuses_once_its_slug_is_taken() {
    let (simulator, dir, file) = setup(NEW_CUSTOMER).await;
    let out = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "plan.json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    simulator.mutate(|s| {
        s.organizations
            .push(membersync::simulator::SimOrganization {
                id: "org_squatter".into(),
                slug: "initech".into(),
                name: "Not Initech".into(),
                ..Default::default()
            })
    });
    let refused = membersync(&simulator, dir.path(), &["apply", "--plan", "plan.json"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test]
async fn an_export_writes_the_fields_and_domains_plans_empty_and_restores_them_after_drift() {
    let (simulator, dir, _) = setup("version: 1\norganizations: {}\n").await;
    simulator.mutate(|s| {
        let alpha = &mut s.organizations[0];
        alpha.max_allowed_memberships = Some(40);
        alpha.admin_delete_enabled = Some(false);
        alpha.public_metadata = json!({"plan": "enterprise"}).as_object().cloned().unwrap();
        s.domains.push(domain(
            "dmn_1",
            "org_alpha",
            "alpha.com",
            "automatic_suggestion",
        ));
    });
    let export = membersync(&simulator, dir.path(), &["export", "-o", "exported.yaml"]).await;
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let text = std::fs::read_to_string(dir.path().join("exported.yaml")).unwrap();
    assert!(
        text.contains("  org_alpha:  # slug: alpha, name: ALPHA\n    name: \"ALPHA\"\n    max_allowed_memberships: 40  # 0: no limit\n    admin_delete_enabled: false\n    public_metadata: {\"plan\":\"enterprise\"}\n    domains:\n      \"alpha.com\": \"automatic_suggestion\"\n"),
        "{text}"
    );
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", "exported.yaml"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(stdout(&plan).starts_with("No changes"), "{}", stdout(&plan));

    simulator.mutate(|s| {
        s.organizations[0].name = "Renamed".into();
        s.organizations[0]
            .public_metadata
            .insert("extra".into(), json!(1));
        s.domains[0].enrollment_mode = "manual_invitation".into();
        s.domains.push(domain(
            "dmn_2",
            "org_alpha",
            "added.com",
            "manual_invitation",
        ));
    });
    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", "exported.yaml", "--max-deletes", "1"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let organization = alpha(&simulator);
    assert_eq!(organization.name, "ALPHA");
    assert_eq!(
        Value::Object(organization.public_metadata),
        json!({"plan": "enterprise"})
    );
    assert_eq!(
        domains(&simulator),
        [(
            "org_alpha".into(),
            "alpha.com".into(),
            "automatic_suggestion".into()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_reconciles_an_organization_on_its_domain_and_update_events() {
    use common::daemon::Daemon;
    let simulator = common::start(common::seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "m.yaml",
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    name: Alpha Inc\n    domains:\n      alpha.com: manual_invitation\n",
    );
    let daemon = Daemon::start(&simulator, dir.path(), &["--interval", "1h"]).await;
    assert_eq!(
        domains(&simulator).len(),
        1,
        "the first cycle adds the domain"
    );

    // Someone lets everyone at alpha.com in, and renames alpha, in the dashboard.
    simulator.mutate(|s| {
        s.domains[0].enrollment_mode = "automatic_invitation".into();
        s.organizations[0].name = "Renamed".into();
    });
    let event = json!({"type": "organizationDomain.updated", "object": "event",
        "data": {"object": "organization_domain", "organization_id": "org_alpha", "name": "alpha.com"}});
    assert_eq!(daemon.signed("msg_domain", &event.to_string()).await, 200);
    common::eventually("the domain is restored", async || {
        domains(&simulator)[0].2 == "manual_invitation"
    })
    .await;
    assert_eq!(alpha(&simulator).name, "Alpha Inc");

    simulator.mutate(|s| s.organizations[0].name = "Renamed again".into());
    let event = json!({"type": "organization.updated", "object": "event",
        "data": {"object": "organization", "id": "org_alpha", "slug": "alpha"}});
    assert_eq!(daemon.signed("msg_update", &event.to_string()).await, 200);
    common::eventually("the name is restored", async || {
        alpha(&simulator).name == "Alpha Inc"
    })
    .await;
    no_organization_delete(&simulator);
    daemon.terminate();
}

#[tokio::test]
async fn members_of_an_organization_moving_to_another_role_set_are_checked_against_the_new_set() {
    let (simulator, dir, file) = setup(
        "version: 1\norganizations:\n  alpha:\n    prune: false\n    role_set: role_set:big\n    members:\n      user_2: billing\n",
    )
    .await;
    simulator.mutate(|s| {
        for (key, roles) in [
            ("role_set:small", &["org:admin", "org:member"][..]),
            (
                "role_set:big",
                &["org:admin", "org:member", "org:billing"][..],
            ),
        ] {
            s.role_sets.push(SimRoleSet {
                key: key.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                ..Default::default()
            });
        }
        s.organizations[0].role_set_key = Some("role_set:small".into());
    });
    let apply = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "billing is in the set alpha moves to: {}\n{}",
        stdout(&apply),
        stderr(&apply)
    );
    assert_eq!(
        alpha(&simulator).role_set_key.as_deref(),
        Some("role_set:big")
    );
    let state = simulator.state();
    let user_2 = state
        .memberships
        .iter()
        .find(|m| m.organization_id == "org_alpha" && m.user_id == "user_2")
        .unwrap();
    assert_eq!(user_2.role, "org:billing");
}
