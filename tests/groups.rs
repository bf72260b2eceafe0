//! Groups and rules for every organization (docs/groups.md: "Groups, and staff in every organization")
//! through the real binary against the simulator: the rule in every organization but the excepted,
//! direct entries beating group entries, prune over the union, no deletion where the file names
//! nothing, an organization created later, invalid files, and a second run with no write.

mod common;

use common::*;
use membersync::simulator::{SimMembership, SimOrganization, SimState, Simulator};
use serde_json::{Map, Value};

/// The seed plus `org_c` (slug c), which no file names, with user_1 (admin) and user_3.
fn instance() -> SimState {
    let mut state = seed();
    state.organizations.push(organization("org_c", "c"));
    for (user, role) in [("user_1", "org:admin"), ("user_3", "org:member")] {
        add(&mut state, "org_c", user, role);
    }
    state
}

fn organization(id: &str, slug: &str) -> SimOrganization {
    SimOrganization {
        id: id.into(),
        slug: slug.into(),
        name: slug.to_uppercase(),
        role_set_key: None,
        max_allowed_memberships: None,
        ..SimOrganization::default()
    }
}

fn add(state: &mut SimState, org: &str, user: &str, role: &str) {
    let n = state.memberships.len() + 100;
    state.memberships.push(SimMembership {
        id: format!("orgmem_{n}"),
        organization_id: org.into(),
        user_id: user.into(),
        role: role.into(),
        public_metadata: Map::new(),
        private_metadata: Map::new(),
        created_at: n as i64,
    });
}

const RULES: &str = r#"version: 1
groups:
  support: [two@example.com, user_4]
all_organizations:
  except: [other]
  members:
    user_6: billing
organizations:
  alpha:
    members:
      user_1: admin
      user_5: admin
      group:support: member
      two@example.com: billing
"#;

async fn with(state: SimState, text: &str) -> (Simulator, tempfile::TempDir, String) {
    let simulator = start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", text);
    (simulator, dir, file)
}

fn roles(simulator: &Simulator, org: &str) -> Vec<(String, String)> {
    simulator.state().roles_of(org)
}

fn pair(user: &str, role: &str) -> (String, String) {
    (user.to_owned(), role.to_owned())
}

#[tokio::test]
async fn the_rule_reaches_every_organization_but_the_excepted_and_only_adds_where_unnamed() {
    let (simulator, dir, file) = with(instance(), RULES).await;
    let other_before = roles(&simulator, "org_other");

    let plan = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("  + user_6 (Six@Example.com) org:billing (all organizations)")
            || text.contains("  + user_6 org:billing (all organizations)"),
        "{text}"
    );
    assert!(
        text.contains("  + user_4 org:member (group support)"),
        "{text}"
    );

    let apply = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "100%"],
    )
    .await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}{}",
        stdout(&apply),
        stderr(&apply)
    );
    // alpha (named, prune): its own entries and the rule; user_3 is pruned; the direct entry
    // for two@example.com beats the group's.
    assert_eq!(
        roles(&simulator, "org_alpha"),
        [
            pair("user_1", "org:admin"),
            pair("user_2", "org:billing"),
            pair("user_4", "org:member"),
            pair("user_5", "org:admin"),
            pair("user_6", "org:billing"),
        ]
    );
    // org_c (not named): the rule adds, nothing is deleted.
    assert_eq!(
        roles(&simulator, "org_c"),
        [
            pair("user_1", "org:admin"),
            pair("user_3", "org:member"),
            pair("user_6", "org:billing")
        ]
    );
    // other (excepted): untouched, and never written to.
    assert_eq!(roles(&simulator, "org_other"), other_before);
    assert!(
        simulator
            .requests()
            .iter()
            .filter(|r| r.is_write())
            .all(|r| !r.path.contains("org_other")),
        "no write to an excepted organization"
    );

    simulator.clear_requests();
    let again = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(writes(&simulator), 0, "{}", stdout(&again));
}

#[tokio::test]
async fn an_organization_created_after_the_file_is_covered_on_the_next_run() {
    let (simulator, dir, file) = with(instance(), RULES).await;
    let first = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--max-deletes", "100%"],
    )
    .await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));

    simulator.mutate(|state| {
        state.organizations.push(organization("org_new", "new"));
        add(state, "org_new", "user_2", "org:admin");
    });
    simulator.clear_requests();
    let next = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "json"],
    )
    .await;
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert_eq!(
        roles(&simulator, "org_new"),
        [pair("user_2", "org:admin"), pair("user_6", "org:billing")]
    );
    assert_eq!(writes(&simulator), 1, "only the new organization's member");
    let report: Value = serde_json::from_str(&stdout(&next)).unwrap();
    assert_eq!(report["changes"][0]["source"], "all organizations");
    assert_eq!(report["changes"][0]["organization_id"], "org_new");
}

#[tokio::test]
async fn a_file_without_rules_reads_no_organization_listing() {
    let (simulator, dir, file) = with(instance(), DESIRED).await;
    membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert!(
        simulator
            .requests()
            .iter()
            .all(|r| !(r.path == "/v1/organizations" && r.query.contains("offset"))),
        "{:?}",
        simulator.requests()
    );
}

#[tokio::test]
async fn invalid_groups_are_refused_with_their_lines_and_no_request() {
    let cases = [
        (
            "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      group:nope: member\n",
            "membersync.yaml:6:7: organizations.alpha.members: unknown group `nope`",
        ),
        (
            "version: 1\ngroups:\n  a: [user_1]\n  b: [user_2, group:a]\norganizations: {}\n",
            "groups.b: `group:a`: a group cannot name another group",
        ),
        (
            "version: 1\ngroups:\n  a: [user_4]\n  b: [user_4]\nall_organizations:\n  members:\n    group:a: member\n    group:b: billing\norganizations: {}\n",
            "membersync.yaml:8:5: all_organizations.members: `user_4` gets org:member from `group:a` (line 7) and org:billing from `group:b` (line 8)",
        ),
    ];
    for (text, expected) in cases {
        let (simulator, dir, file) = with(instance(), text).await;
        let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert!(
            simulator.requests().is_empty(),
            "no request for invalid input"
        );
        let validate = membersync(&simulator, dir.path(), &["validate", "-f", &file]).await;
        assert_eq!(validate.status.code(), Some(2));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", RULES);
    let valid = run(dir.path(), &["validate", "-f", &file], &[]).await;
    assert_eq!(
        stdout(&valid),
        "valid: 1 file, 1 organization, 4 members, 1 group, 1 all_organizations member\n"
    );
}
