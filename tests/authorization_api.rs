//! The client's permission, role and role set endpoints against the simulator: what they
//! change, and what Clerk refuses (a role in use deleted, a system permission changed, more
//! than 10 roles in a set, a default or creator role outside the set).

mod common;

use common::{KEY, seed, start};
use membersync::clerk::{
    ClerkError, Client, ClientConfig, RateLimit, SecretKey, read_authorization,
};
use membersync::simulator::{SimRoleSet, Simulator};
use serde_json::json;

fn client(simulator: &Simulator) -> Client {
    let config = ClientConfig::new(
        simulator.api_url(),
        "1000/s".parse::<RateLimit>().unwrap(),
        4,
    );
    Client::new(config, SecretKey::new(KEY)).unwrap()
}

fn status(error: ClerkError) -> String {
    error.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_and_a_role_are_created_updated_and_read_back() {
    let simulator = start(seed()).await;
    let client = client(&simulator);
    let read = client
        .create_organization_permission("org:invoices:read", "Read invoices", None)
        .await
        .unwrap();
    let manage = client
        .create_organization_permission("org:invoices:manage", "Manage", Some("Pay them"))
        .await
        .unwrap();
    let role = client
        .create_organization_role(json!({"key": "org:accountant", "name": "Accountant",
            "permissions": [read.id]}))
        .await
        .unwrap();
    client
        .update_organization_role(&role.id, json!({"permissions": [read.id, manage.id]}))
        .await
        .unwrap();
    client
        .remove_role_permission(&role.id, &read.id)
        .await
        .unwrap();
    client
        .update_organization_permission(&manage.id, json!({"name": "Manage invoices"}))
        .await
        .unwrap();
    let authorization = read_authorization(&client).await.unwrap();
    let role = authorization
        .roles
        .iter()
        .find(|r| r.key == "org:accountant")
        .unwrap();
    let keys: Vec<&str> = role.permissions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["org:invoices:manage"]);
    assert_eq!(role.permissions[0].name, "Manage invoices");
    assert!(authorization.permissions.iter().any(|p| p.is_system()));
    assert_eq!(
        authorization
            .permissions
            .iter()
            .filter(|p| !p.is_system())
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clerks_refusals_are_served() {
    let mut state = seed();
    state.memberships[1].role = "org:billing".into();
    let simulator = start(state).await;
    let client = client(&simulator);
    let in_use = client
        .delete_organization_role("role_org_billing")
        .await
        .unwrap_err();
    let in_use = status(in_use);
    assert!(
        in_use.contains("422") && in_use.contains("assigned to members"),
        "{in_use}"
    );
    let outside = client
        .create_role_set(json!({"key": "role_set:small", "name": "Small",
            "roles": ["org:member"], "default_role_key": "org:member",
            "creator_role_key": "org:admin"}))
        .await
        .unwrap_err();
    assert!(status(outside).contains("422"));
    for n in 0..10 {
        client
            .create_organization_role(json!({"key": format!("org:r{n}"), "name": format!("R{n}")}))
            .await
            .unwrap();
    }
    let roles: Vec<String> = (0..10)
        .map(|n| format!("org:r{n}"))
        .chain(["org:admin".into()])
        .collect();
    let too_many = client
        .create_role_set(json!({"key": "role_set:big", "name": "Big", "roles": roles,
            "default_role_key": "org:r0", "creator_role_key": "org:admin"}))
        .await
        .unwrap_err();
    assert!(status(too_many).contains("422"));
    assert!(simulator.state().role_sets.is_empty());
    // Last: Clerk answers 403, which stops the client for the run.
    let system = client
        .update_organization_permission("perm_org_sys_memberships_read", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert!(status(system).contains("403"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_replaced_in_a_set_moves_its_holders_in_the_sets_organizations_only() {
    let mut state = seed();
    state.organizations[0].role_set_key = Some("role_set:standard".into());
    state.role_sets.push(SimRoleSet {
        key: "role_set:standard".into(),
        roles: vec![
            "org:admin".into(),
            "org:member".into(),
            "org:billing".into(),
        ],
        ..SimRoleSet::default()
    });
    state.memberships[1].role = "org:billing".into();
    state.memberships[4].role = "org:billing".into();
    let simulator = start(state).await;
    let client = client(&simulator);
    let set = client
        .replace_role_set_role("role_set:standard", "org:billing", "org:member")
        .await
        .unwrap();
    let keys: Vec<&str> = set.roles.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["org:admin", "org:member"]);
    let state = simulator.state();
    assert_eq!(state.memberships[1].role, "org:member");
    assert_eq!(
        state.memberships[4].role, "org:billing",
        "org_other has no role set"
    );
    let added = client
        .add_role_set_roles("role_set:standard", json!({"role_keys": ["org:billing"]}))
        .await
        .unwrap();
    assert_eq!(added.roles.len(), 3);
    let updated = client
        .update_role_set(
            "role_set:standard",
            json!({"default_role_key": "org:billing", "type": "initial"}),
        )
        .await
        .unwrap();
    assert_eq!(updated.default_role.as_ref().unwrap().key, "org:billing");
    assert!(updated.is_initial());
}
