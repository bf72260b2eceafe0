//! Conformance to Clerk's API description: every endpoint function, and the commands end to
//! end, against Stoplight Prism mocking `bapi-2026-05-12.yml`. Prism validates each request
//! against the spec and answers a violation with 422 and an `sl-violations` header.
//!
//! Run by `.ci/run` (which installs and starts Prism):
//! `PRISM_URL=http://127.0.0.1:4010 PRISM_LOG=prism.log cargo test --test conformance -- --ignored`

mod common;

use std::collections::HashMap;

use membersync::clerk::{Client, ClientConfig, SecretKey, read_memberships};
use membersync::plan::saved::PlanFile;
use membersync::plan::{Action, Change, Declared, Observed, OrganizationPlan, Plan};
use serde_json::{Map, json};

const KEY: &str = "sk_test_conformance_0123456789";

fn prism() -> (String, String) {
    let url = std::env::var("PRISM_URL").expect("PRISM_URL: the Prism mock's base URL");
    let log = std::env::var("PRISM_LOG").expect("PRISM_LOG: Prism's log file");
    (url, log)
}

fn client(url: &str) -> Client {
    let config = ClientConfig::new(url, "50/s".parse().unwrap(), 4);
    Client::new(config, SecretKey::new(KEY)).unwrap()
}

fn change(action: Action, user: &str, role: Option<&str>) -> Change {
    Change {
        role: role.map(str::to_owned),
        ..Change::new(action, "string", user)
    }
}

/// An invitation body as membersync sends it, with every optional field.
fn invitation(email: &str) -> serde_json::Value {
    json!({
        "email_address": email,
        "role": "org:member",
        "public_metadata": {"team": "web"},
        "private_metadata": {"level": 2},
        "redirect_url": "https://app.example.com/accept",
        "expires_in_days": 7,
    })
}

/// Prism's log lines that report a request breaking the spec.
fn violations(log: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("Violation: request"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Stoplight Prism; run by .ci/run with PRISM_URL and PRISM_LOG"]
async fn every_request_conforms_to_clerks_api_description() {
    let (url, log) = prism();
    let before = violations(&log).len();
    let clerk = client(&url);
    let metadata = json!({"team": "payments", "nested": {"a": [1, 2]}});
    let metadata = metadata.as_object().unwrap();

    // Every endpoint function, with the parameters membersync sends.
    let outcomes = vec![
        (
            "list_instance_memberships",
            clerk.list_instance_memberships(500, 500).await.map(drop),
        ),
        (
            "list_organization_memberships",
            clerk
                .list_organization_memberships("org_2abc", 0, 500, &["user_1", "user_2"])
                .await
                .map(drop),
        ),
        (
            "list_organization_memberships_with_role",
            clerk
                .list_organization_memberships_with_role("org_2abc", "org:admin", 500)
                .await
                .map(drop),
        ),
        (
            "create_membership",
            clerk
                .create_membership(
                    "org_2abc",
                    "user_1",
                    "org:admin",
                    Some(metadata),
                    Some(metadata),
                )
                .await
                .map(drop),
        ),
        (
            "update_membership_role",
            clerk
                .update_membership_role("org_2abc", "user_1", "org:member")
                .await
                .map(drop),
        ),
        (
            "merge_membership_metadata",
            clerk
                .merge_membership_metadata(
                    "org_2abc",
                    "user_1",
                    &json!({"public_metadata": {"team": null}, "private_metadata": {"x": 1}}),
                )
                .await
                .map(drop),
        ),
        (
            "delete_membership",
            clerk
                .delete_membership("org_2abc", "user_1")
                .await
                .map(drop),
        ),
        (
            "list_users_by_email",
            clerk
                .list_users_by_email(&["a@example.com", "b+tag@example.com"])
                .await
                .map(drop),
        ),
        (
            "list_organizations",
            clerk
                .list_organizations(&["org_1", "org_2"])
                .await
                .map(drop),
        ),
        (
            "list_all_organizations",
            clerk.list_all_organizations(0, 500).await.map(drop),
        ),
        (
            "get_organization",
            clerk.get_organization("acme-inc").await.map(drop),
        ),
        (
            "get_role_set",
            clerk.get_role_set("role_set:default").await.map(drop),
        ),
        (
            "list_organization_roles",
            clerk.list_organization_roles(0, 500).await.map(drop),
        ),
        (
            "list_instance_invitations",
            clerk.list_instance_invitations(500, 500).await.map(drop),
        ),
        (
            "list_organization_invitations",
            clerk
                .list_organization_invitations("org_2abc", 0, 500, Some("a@example.com"))
                .await
                .map(drop),
        ),
        (
            "create_invitation",
            clerk
                .create_invitation("org_2abc", &invitation("a@example.com"))
                .await
                .map(drop),
        ),
        (
            "create_invitations",
            clerk
                .create_invitations(
                    "org_2abc",
                    &[invitation("a@example.com"), invitation("b@example.com")],
                )
                .await
                .map(drop),
        ),
        (
            "revoke_invitation",
            clerk
                .revoke_invitation("org_2abc", "orginv_1")
                .await
                .map(drop),
        ),
        (
            "create_organization",
            clerk
                .create_organization(
                    json!({"name": "Acme Corp", "slug": "acme", "max_allowed_memberships": 100,
                           "role_set_key": "role_set:standard", "public_metadata": metadata,
                           "private_metadata": {"crm_id": 4711}})
                    .as_object()
                    .unwrap(),
                )
                .await
                .map(drop),
        ),
        (
            "update_organization",
            clerk
                .update_organization(
                    "org_2abc",
                    json!({"name": "Acme", "max_allowed_memberships": 0,
                           "admin_delete_enabled": false, "role_set_key": "role_set:standard"})
                    .as_object()
                    .unwrap(),
                )
                .await
                .map(drop),
        ),
        (
            "merge_organization_metadata",
            clerk
                .merge_organization_metadata(
                    "org_2abc",
                    &json!({"public_metadata": {"plan": null}, "private_metadata": {"crm_id": 1}}),
                )
                .await
                .map(drop),
        ),
        (
            "list_instance_domains",
            clerk.list_instance_domains(500, 500).await.map(drop),
        ),
        (
            "list_organization_domains",
            clerk
                .list_organization_domains("org_2abc", 0, 500)
                .await
                .map(drop),
        ),
        (
            "create_domain",
            clerk
                .create_domain("org_2abc", "acme.com", "automatic_suggestion")
                .await
                .map(drop),
        ),
        (
            "update_domain",
            clerk
                .update_domain("org_2abc", "orgdmn_1", "manual_invitation")
                .await
                .map(drop),
        ),
        (
            "delete_domain",
            clerk.delete_domain("org_2abc", "orgdmn_1").await.map(drop),
        ),
    ];
    let mut outcomes = outcomes;
    outcomes.extend(authorization_calls(&clerk).await);
    for (endpoint, outcome) in &outcomes {
        assert!(outcome.is_ok(), "{endpoint}: {outcome:?}");
    }

    // The commands end to end. Prism's examples name the organization and user `string`.
    let dir = tempfile::tempdir().unwrap();
    let env = [("CLERK_API_URL", url.as_str()), ("CLERK_SECRET_KEY", KEY)];
    common::write_file(
        dir.path(),
        "m.yaml",
        "version: 1\norganizations:\n  string:\n    members:\n      user_new: admin\n      someone@example.com: member\n  org_2other:\n    members:\n      user_1: admin\n",
    );
    common::write_file(
        dir.path(),
        "invites.yaml",
        "version: 1\ndefaults:\n  invitations: {send: true, redirect_url: https://app.example.com/accept, expires_in_days: 7}\norganizations:\n  string:\n    members:\n      user_new: admin\n      new1@example.com: member\n      new2@example.com: {role: member, public_metadata: {team: web}}\n  org_2other:\n    members:\n      user_1: admin\n      new3@example.com: member\n",
    );
    common::write_file(
        dir.path(),
        "authorization.yaml",
        "version: 1\nauthorization:\n  prune: true\n  permissions:\n    org:invoices:read: {name: Read invoices, description: Read them}\n  roles:\n    org:accountant:\n      name: Accountant\n      description: Books\n      permissions: [org:invoices:read]\n  role_sets:\n    role_set:books:\n      name: Books\n      initial: true\n      roles: [org:accountant]\n      default_role: org:accountant\n      creator_role: org:accountant\norganizations: {}\n",
    );
    for args in [
        vec!["plan", "-f", "authorization.yaml", "--output", "json"],
        vec!["apply", "-f", "authorization.yaml", "--force"],
        vec!["export", "--authorization"],
        vec!["plan", "-f", "m.yaml"],
        vec!["plan", "-f", "m.yaml", "--output", "json"],
        vec!["export"],
        vec!["export", "--org", "string", "--by-email"],
        vec!["apply", "-f", "m.yaml", "--force"],
        vec!["plan", "-f", "invites.yaml", "--output", "json"],
        vec!["apply", "-f", "invites.yaml", "--force"],
    ] {
        let output = common::run(dir.path(), &args, &env).await;
        let code = output.status.code();
        // Prism's made-up data may make a command fail (exit 1); it must never crash or
        // send a request the spec forbids. The files are valid: never exit 2.
        assert!(
            matches!(code, Some(0 | 1 | 3 | 4)),
            "{args:?}: {code:?}\n{}",
            common::stderr(&output)
        );
    }

    // A saved plan with every kind of change, applied through the binary.
    let managed = HashMap::from([("string".to_owned(), None)]);
    let (live, _) = read_memberships(&clerk, &managed).await.unwrap();
    let observed: HashMap<String, Vec<Observed>> = live.memberships;
    let declared = Declared {
        role: "org:admin".into(),
        public_metadata: Some(metadata.clone()),
        private_metadata: None,
        exact: true,
    };
    let invited = Declared {
        role: "org:member".into(),
        public_metadata: None,
        private_metadata: None,
        exact: true,
    };
    let plan = Plan {
        organizations: vec![OrganizationPlan {
            organization_id: "string".into(),
            label: None,
            resources: Vec::new(),
            changes: vec![
                Change {
                    metadata_patch: Some(json!({"public_metadata": metadata})),
                    declared: Some(declared.clone()),
                    ..change(Action::Create, "user_new", Some("org:admin"))
                },
                Change {
                    previous_role: Some("string".into()),
                    declared: Some(declared.clone()),
                    ..change(Action::UpdateRole, "string", Some("org:admin"))
                },
                Change {
                    metadata_patch: Some(json!({"public_metadata": {"team": "x", "old": null}})),
                    previous_metadata: Some(json!({"public_metadata": Map::new()})),
                    declared: Some(declared),
                    ..change(Action::UpdateMetadata, "string", None)
                },
                change(Action::Delete, "user_gone", Some("org:member")),
                Change {
                    email: Some("gone@example.com".into()),
                    invitation_id: Some("orginv_1".into()),
                    ..change(Action::RevokeInvitation, "", Some("org:member"))
                },
                Change {
                    email: Some("new1@example.com".into()),
                    declared: Some(invited.clone()),
                    ..change(Action::Invite, "", Some("org:member"))
                },
                Change {
                    email: Some("new2@example.com".into()),
                    metadata_patch: Some(json!({"public_metadata": {"team": "web"}})),
                    declared: Some(invited),
                    ..change(Action::Invite, "", Some("org:member"))
                },
            ],
            current_members: 10,
            admins_before: 1,
            admins_after: 2,
            withheld: None,
            invitations: Some(Box::new(membersync::desired::Invitations {
                redirect_url: Some("https://app.example.com/accept".into()),
                expires_in_days: Some(7),
            })),
            current_invitations: 1,
        }],
        ..Plan::default()
    };
    let invitations = membersync::sync::read_invitations(&clerk, &["string".to_owned()])
        .await
        .unwrap();
    let file = PlanFile::new(
        plan,
        &observed,
        &invitations,
        vec![],
        "2026-11-28T00:00:00Z".into(),
    );
    common::write_file(
        dir.path(),
        "plan.json",
        &serde_json::to_string_pretty(&file).unwrap(),
    );
    let applied = common::run(
        dir.path(),
        &["apply", "--plan", "plan.json", "--force"],
        &env,
    )
    .await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}\n{}",
        common::stdout(&applied),
        common::stderr(&applied)
    );

    let found = violations(&log);
    assert_eq!(
        found.len(),
        before,
        "requests that break the spec:\n{}",
        found.join("\n")
    );
}

/// Every permission, role and role set endpoint function, with the parameters membersync
/// sends.
async fn authorization_calls(
    clerk: &Client,
) -> Vec<(&'static str, Result<(), membersync::clerk::ClerkError>)> {
    let role = json!({"key": "org:billing", "name": "Billing", "description": "Pays",
        "permissions": ["perm_1"]});
    let set = json!({"key": "role_set:standard", "name": "Standard", "description": "All",
        "type": "initial", "roles": ["org:admin", "org:member"],
        "default_role_key": "org:member", "creator_role_key": "org:admin"});
    vec![
        (
            "list_organization_permissions",
            clerk.list_organization_permissions(0, 500).await.map(drop),
        ),
        (
            "create_organization_permission",
            clerk
                .create_organization_permission("org:invoices:read", "Read", Some("Read them"))
                .await
                .map(drop),
        ),
        (
            "update_organization_permission",
            clerk
                .update_organization_permission("perm_1", json!({"name": "R", "description": "D"}))
                .await
                .map(drop),
        ),
        (
            "delete_organization_permission",
            clerk
                .delete_organization_permission("perm_1")
                .await
                .map(drop),
        ),
        (
            "list_organization_roles_full",
            clerk.list_organization_roles_full(0, 500).await.map(drop),
        ),
        (
            "create_organization_role",
            clerk.create_organization_role(role).await.map(drop),
        ),
        (
            "update_organization_role",
            clerk
                .update_organization_role("role_1", json!({"name": "B", "permissions": ["perm_1"]}))
                .await
                .map(drop),
        ),
        (
            "delete_organization_role",
            clerk.delete_organization_role("role_1").await.map(drop),
        ),
        (
            "assign_role_permission",
            clerk
                .assign_role_permission("role_1", "perm_1")
                .await
                .map(drop),
        ),
        (
            "remove_role_permission",
            clerk
                .remove_role_permission("role_1", "perm_1")
                .await
                .map(drop),
        ),
        (
            "list_role_sets",
            clerk.list_role_sets(0, 500).await.map(drop),
        ),
        (
            "create_role_set",
            clerk.create_role_set(set).await.map(drop),
        ),
        (
            "update_role_set",
            clerk
                .update_role_set(
                    "role_set:standard",
                    json!({"name": "S", "type": "initial", "default_role_key": "org:member"}),
                )
                .await
                .map(drop),
        ),
        (
            "add_role_set_roles",
            clerk
                .add_role_set_roles("role_set:standard", json!({"role_keys": ["org:billing"]}))
                .await
                .map(drop),
        ),
        (
            "replace_role_set_role",
            clerk
                .replace_role_set_role("role_set:standard", "org:billing", "org:member")
                .await
                .map(drop),
        ),
    ]
}
