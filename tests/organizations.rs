//! Organizations and their verified domains through the client's endpoints, against the
//! simulator: what each write leaves in the instance, Clerk's errors for a taken slug and a
//! domain another organization holds, and reading the domains with the fewest requests.

use membersync::clerk::{Client, ClientConfig, SecretKey, read_domains};
use membersync::simulator::{SimDomain, SimState, Simulator};
use serde_json::{Value, json};

const KEY: &str = "sk_test_organizations_0123456789";

async fn start() -> (Simulator, Client) {
    let state: SimState = serde_json::from_str(include_str!("sdk/state.json")).unwrap();
    let simulator = Simulator::start(state, KEY).await.unwrap();
    let config = ClientConfig::new(simulator.api_url(), "100/s".parse().unwrap(), 4);
    let client = Client::new(config, SecretKey::new(KEY)).unwrap();
    (simulator, client)
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn domain(id: &str, organization: &str, name: &str) -> SimDomain {
    SimDomain {
        id: id.into(),
        organization_id: organization.into(),
        name: name.into(),
        enrollment_mode: "manual_invitation".into(),
        verified: true,
        created_at: 1_767_744_000_000,
    }
}

#[tokio::test]
async fn a_created_organization_carries_every_field_of_its_one_post() {
    let (simulator, client) = start().await;
    let created = client
        .create_organization(&object(json!({
            "name": "Initech", "slug": "initech", "max_allowed_memberships": 50,
            "role_set_key": "role_set:finance",
            "public_metadata": {"plan": "enterprise"}, "private_metadata": {"crm_id": 4711}
        })))
        .await
        .unwrap();
    assert_eq!(created.slug.as_deref(), Some("initech"));
    assert_eq!(created.max_allowed_memberships, Some(50));
    let state = simulator.state();
    let initech = state
        .organizations
        .iter()
        .find(|o| o.slug == "initech")
        .unwrap();
    assert_eq!(initech.name, "Initech");
    assert_eq!(initech.role_set_key.as_deref(), Some("role_set:finance"));
    assert_eq!(
        initech.public_metadata,
        object(json!({"plan": "enterprise"}))
    );
    assert_eq!(initech.private_metadata, object(json!({"crm_id": 4711})));
    let posts = simulator.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn a_slug_another_organization_has_is_refused_with_clerks_error() {
    let (simulator, client) = start().await;
    let error = client
        .create_organization(&object(json!({"name": "Acme again", "slug": "acme"})))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(422));
    assert!(error.has_code("form_identifier_exists"), "{error}");
    assert!(error.to_string().contains("That slug is taken"), "{error}");
    assert_eq!(simulator.state().organizations.len(), 2);
}

#[tokio::test]
async fn an_update_changes_only_the_fields_it_sends_and_metadata_merges_deeply() {
    let (simulator, client) = start().await;
    client
        .update_organization(
            "org_2sdkAcme",
            &object(json!({"name": "Acme Corporation", "admin_delete_enabled": false})),
        )
        .await
        .unwrap();
    client
        .merge_organization_metadata(
            "org_2sdkAcme",
            &json!({"public_metadata": {"plan": "pro", "tier": {"a": 1}}}),
        )
        .await
        .unwrap();
    client
        .merge_organization_metadata(
            "org_2sdkAcme",
            &json!({"public_metadata": {"plan": null, "tier": {"b": 2}}}),
        )
        .await
        .unwrap();
    let state = simulator.state();
    let acme = state
        .organizations
        .iter()
        .find(|o| o.id == "org_2sdkAcme")
        .unwrap();
    assert_eq!(acme.name, "Acme Corporation");
    assert_eq!(acme.slug, "acme");
    assert_eq!(acme.admin_delete_enabled, Some(false));
    assert_eq!(
        acme.public_metadata,
        object(json!({"tier": {"a": 1, "b": 2}}))
    );
}

#[tokio::test]
async fn a_domain_is_added_changed_and_removed_and_one_held_elsewhere_fails_with_clerks_message() {
    let (simulator, client) = start().await;
    let added = client
        .create_domain("org_2sdkAcme", "acme.io", "automatic_suggestion")
        .await
        .unwrap();
    assert_eq!(added.enrollment_mode, "automatic_suggestion");
    client
        .update_domain("org_2sdkAcme", &added.id, "manual_invitation")
        .await
        .unwrap();
    client
        .delete_domain("org_2sdkAcme", "orgdmn_2sdkAcme")
        .await
        .unwrap();
    let names: Vec<(String, String)> = simulator
        .state()
        .domains
        .iter()
        .map(|d| (d.name.clone(), d.enrollment_mode.clone()))
        .collect();
    assert_eq!(
        names,
        [("acme.io".to_owned(), "manual_invitation".to_owned())]
    );

    let error = client
        .create_domain("org_2sdkGlobex", "acme.io", "manual_invitation")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(422));
    assert!(error.has_code("organization_domain_already_exists"));
    assert!(
        error
            .to_string()
            .contains("already used by another organization"),
        "{error}"
    );
}

#[tokio::test]
async fn domains_of_several_organizations_are_read_through_the_instance_listing_and_of_one_through_its_own()
 {
    let (simulator, client) = start().await;
    simulator.mutate(|state| {
        state
            .domains
            .push(domain("orgdmn_globex", "org_2sdkGlobex", "globex.test"))
    });
    let both = ["org_2sdkAcme".to_owned(), "org_2sdkGlobex".to_owned()];
    let read = read_domains(&client, &both).await.unwrap();
    assert_eq!(read.by_organization["org_2sdkAcme"][0].name, "acme.test");
    assert_eq!(
        read.by_organization["org_2sdkGlobex"][0].name,
        "globex.test"
    );
    let routes: Vec<String> = simulator
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(routes, ["/v1/organization_domains"]);

    simulator.clear_requests();
    let one = read_domains(&client, &both[1..]).await.unwrap();
    assert_eq!(one.by_organization.len(), 1);
    let routes: Vec<String> = simulator
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(routes, ["/v1/organizations/org_2sdkGlobex/domains"]);

    simulator.clear_requests();
    let none = read_domains(&client, &[]).await.unwrap();
    assert!(none.by_organization.is_empty());
    assert!(simulator.requests().is_empty());
}
