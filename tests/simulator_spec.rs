//! Every answer of the simulator validates against Clerk's API description: Stoplight Prism in
//! proxy mode (`prism proxy spec/bapi-2026-05-12.yml http://SIMULATOR/v1 --errors`) stands in
//! front of the simulator, checks each request and each answer against the spec, and answers
//! 500 with an `sl-violations` header for one that breaks it (an answer with a status the spec
//! does not declare comes through with the header as a warning). Every endpoint the simulator
//! serves is called, with its success and the errors the spec documents for it, and the test
//! fails on an endpoint of [`Simulator::endpoints`] it did not exercise, so endpoints added
//! later must be added here.
//!
//! Run by `.ci/run` (which installs Prism and starts it in proxy mode):
//! `PRISM_PROXY_URL=http://127.0.0.1:4013 SIMULATOR_LISTEN=127.0.0.1:4023 cargo test --test simulator_spec -- --ignored`

use std::collections::BTreeSet;

use membersync::simulator::{SimState, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "sk_test_simulator_spec_0123456789";
const ACME: &str = "org_2sdkAcme";

/// One call: method, path and query (under the spec's server), body, API version, key, and
/// the status the simulator answers.
struct Call {
    method: Method,
    target: String,
    body: Option<Value>,
    version: &'static str,
    key: &'static str,
    status: u16,
}

fn call(method: Method, target: &str, status: u16) -> Call {
    Call {
        method,
        target: target.to_owned(),
        body: None,
        version: "2026-05-12",
        key: KEY,
        status,
    }
}

impl Call {
    fn body(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    fn version(mut self, version: &'static str) -> Call {
        self.version = version;
        self
    }

    fn key(mut self, key: &'static str) -> Call {
        self.key = key;
        self
    }
}

fn invitation(email: &str) -> Value {
    json!({"email_address": email, "role": "org:member", "public_metadata": {"team": "web"},
           "redirect_url": "https://app.example.com/accept", "expires_in_days": 7})
}

/// The membership endpoints, in an order that leaves each call's precondition in place.
fn membership_calls() -> Vec<Call> {
    use Method as M;
    let members = format!("/organizations/{ACME}/memberships");
    vec![
        call(
            M::GET,
            "/organization_memberships?order_by=%2Bcreated_at&limit=2",
            200,
        ),
        call(M::GET, "/organization_memberships", 200).version("2025-11-10"),
        call(
            M::GET,
            "/organization_memberships?order_by=-email_address&offset=1",
            200,
        ),
        call(M::GET, "/organization_memberships?order_by=shoe_size", 422),
        call(M::GET, "/organization_memberships", 401).key("sk_test_wrong"),
        call(
            M::GET,
            &format!("{members}?email_address=ada.lovelace%40acme.test&user_id=user_2sdkAda&query=ada&order_by=%2Bcreated_at"),
            200,
        ),
        call(M::GET, &format!("{members}?user_id=-user_2sdkAda&order_by=first_name"), 200),
        call(M::GET, &format!("{members}?order_by=nope"), 422),
        call(M::POST, &members, 200).body(json!({"user_id": "user_2sdkEmma", "role": "org:member",
            "public_metadata": {"team": {"name": "web", "oncall": true}}, "private_metadata": {"level": 1}})),
        call(M::POST, &members, 400).body(json!({"user_id": "user_2sdkEmma", "role": "org:member"})),
        call(M::POST, &members, 404).body(json!({"user_id": "user_nobody", "role": "org:member"})),
        call(M::POST, &members, 422).body(json!({"user_id": "user_2sdkFarid", "role": "org:wizard"})),
        call(M::POST, "/organizations/org_2sdkGlobex/memberships", 403)
            .body(json!({"user_id": "user_2sdkFarid", "role": "org:member"})),
        call(M::PATCH, &format!("{members}/user_2sdkEmma"), 200).body(json!({"role": "org:billing"})),
        call(M::PATCH, &format!("{members}/user_2sdkEmma"), 422).body(json!({"role": "org:wizard"})),
        call(M::PATCH, &format!("{members}/user_2sdkFarid"), 404).body(json!({"role": "org:member"})),
        call(M::PATCH, &format!("{members}/user_2sdkEmma/metadata"), 200)
            .body(json!({"public_metadata": {"team": {"oncall": null}}, "private_metadata": {"level": null}})),
        call(M::PATCH, &format!("{members}/user_2sdkFarid/metadata"), 404)
            .body(json!({"public_metadata": {"team": "x"}})),
        call(M::DELETE, &format!("{members}/user_2sdkEmma"), 200),
        call(M::DELETE, &format!("{members}/user_2sdkEmma"), 404),
        call(M::DELETE, &format!("{members}/user_2sdkChloe"), 401).key("sk_test_wrong"),
    ]
}

/// Organizations, users, roles and role sets.
fn directory_calls() -> Vec<Call> {
    use Method as M;
    let many: String = (0..101)
        .map(|n| format!("email_address=p{n}%40acme.test&"))
        .collect();
    vec![
        call(
            M::GET,
            "/organizations?include_members_count=true&order_by=%2Bcreated_at",
            200,
        ),
        call(
            M::GET,
            "/organizations?query=acm&order_by=-name&limit=1",
            200,
        ),
        call(
            M::GET,
            "/organizations?organization_id=org_2sdkGlobex&order_by=members_count",
            200,
        ),
        call(M::GET, "/organizations?order_by=shoe_size", 422),
        call(M::GET, "/organizations", 400).version("2026-13-45"),
        call(M::GET, "/organizations", 400).version("2030-01-01"),
        call(
            M::GET,
            &format!("/organizations/{ACME}?include_members_count=true"),
            200,
        ),
        call(M::GET, "/organizations/globex", 200),
        call(M::GET, "/organizations/org_nobody", 404),
        call(
            M::GET,
            "/users?email_address=dev%40personal.test&email_address=farid%40contractor.test",
            200,
        ),
        call(
            M::GET,
            "/users?query=acme&order_by=-created_at&limit=3",
            200,
        ),
        call(M::GET, "/users", 401).key("sk_test_wrong"),
        call(M::GET, &format!("/users?{many}"), 422),
        call(
            M::GET,
            "/users/count?email_address=dev%40personal.test",
            200,
        ),
        call(M::GET, &format!("/users/count?{many}"), 422),
        call(M::GET, "/users/user_2sdkDev", 200),
        call(M::GET, "/users/user_nobody", 404),
        call(M::GET, "/organization_roles?limit=2&offset=1", 200),
        call(M::GET, "/organization_roles", 401).key("sk_test_wrong"),
        call(M::GET, "/role_sets?query=fin&limit=5", 200),
        call(M::GET, "/role_sets", 401).key("sk_test_wrong"),
        call(M::GET, "/role_sets/role_set:finance", 200),
        call(M::GET, "/role_sets/role_set:nothing", 404),
    ]
}

/// The invitation endpoints.
fn invitation_calls() -> Vec<Call> {
    use Method as M;
    let invitations = format!("/organizations/{ACME}/invitations");
    vec![
        call(M::POST, &invitations, 200).body(invitation("new.hire@acme.test")),
        call(M::POST, &invitations, 400).body(invitation("new.hire@acme.test")),
        call(M::POST, &invitations, 422)
            .body(json!({"email_address": "x@acme.test", "role": "org:wizard"})),
        call(M::POST, "/organizations/org_nobody/invitations", 404).body(invitation("y@acme.test")),
        call(M::POST, &format!("{invitations}/bulk"), 200).body(json!([
            invitation("bulk1@acme.test"),
            invitation("bulk2@acme.test")
        ])),
        call(M::POST, &format!("{invitations}/bulk"), 400).body(json!([
            invitation("bulk3@acme.test"),
            invitation("ada.lovelace@acme.test")
        ])),
        call(
            M::GET,
            &format!("{invitations}?status=pending&order_by=%2Bcreated_at&limit=2"),
            200,
        ),
        call(
            M::GET,
            &format!("{invitations}?email_address=bulk1%40acme.test"),
            200,
        ),
        call(M::GET, "/organizations/org_nobody/invitations", 404),
        call(
            M::GET,
            "/organization_invitations?status=pending&order_by=%2Bcreated_at",
            200,
        ),
        call(M::GET, "/organization_invitations", 200),
        call(M::GET, &format!("{invitations}/pending?limit=2"), 200),
        call(M::GET, "/organizations/org_nobody/invitations/pending", 404),
        call(M::GET, &format!("{invitations}/orginv_2sdkOld"), 200),
        call(M::GET, &format!("{invitations}/orginv_nothing"), 404),
        call(
            M::POST,
            &format!("{invitations}/orginv_2sdkOld/revoke"),
            200,
        ),
        call(
            M::POST,
            &format!("{invitations}/orginv_2sdkOld/revoke"),
            400,
        ),
        call(
            M::POST,
            &format!("{invitations}/orginv_nothing/revoke"),
            404,
        ),
    ]
}

/// Organizations' own fields and metadata, and their domains.
fn organization_calls() -> Vec<Call> {
    use Method as M;
    let domains = format!("/organizations/{ACME}/domains");
    vec![
        call(M::POST, "/organizations", 200).body(json!({"name": "Initech", "slug": "initech",
            "max_allowed_memberships": 50, "role_set_key": "role_set:finance",
            "public_metadata": {"plan": "enterprise"}, "private_metadata": {"crm_id": 4711}})),
        call(M::POST, "/organizations", 422).body(json!({"name": "Acme again", "slug": "acme"})),
        call(M::PATCH, &format!("/organizations/{ACME}"), 200)
            .body(json!({"name": "Acme Corporation", "max_allowed_memberships": 0, "admin_delete_enabled": false})),
        call(M::PATCH, &format!("/organizations/{ACME}"), 422).body(json!({"slug": "globex"})),
        call(M::PATCH, "/organizations/org_nobody", 404).body(json!({"name": "Nobody"})),
        call(M::PATCH, &format!("/organizations/{ACME}/metadata"), 200)
            .body(json!({"public_metadata": {"plan": "pro", "old": null}, "private_metadata": {"crm_id": 1}})),
        call(M::PATCH, "/organizations/org_nobody/metadata", 404)
            .body(json!({"public_metadata": {"plan": "pro"}})),
        call(M::GET, "/organization_domains?order_by=%2Bcreated_at&limit=2", 200),
        call(M::GET, "/organization_domains?enrollment_mode=-enterprise_sso&query=acme&domains=acme.test&verified=true", 200),
        call(M::GET, "/organization_domains?order_by=shoe_size", 422),
        call(M::GET, &format!("{domains}?limit=1&offset=0"), 200),
        call(M::GET, "/organization_domains", 401).key("sk_test_wrong"),
        call(M::POST, &domains, 200)
            .body(json!({"name": "acme.io", "enrollment_mode": "automatic_suggestion", "verified": true})),
        call(M::POST, "/organizations/org_2sdkGlobex/domains", 422)
            .body(json!({"name": "acme.test", "enrollment_mode": "manual_invitation"})),
        call(M::POST, "/organizations/org_nobody/domains", 404)
            .body(json!({"name": "nobody.test", "enrollment_mode": "manual_invitation"})),
        call(M::PATCH, &format!("{domains}/orgdmn_2sdkAcme"), 200)
            .body(json!({"enrollment_mode": "automatic_invitation"})),
        call(M::PATCH, &format!("{domains}/orgdmn_nothing"), 404)
            .body(json!({"enrollment_mode": "automatic_invitation"})),
        call(M::DELETE, &format!("{domains}/orgdmn_2sdkAcme"), 200),
        call(M::DELETE, &format!("{domains}/orgdmn_2sdkAcme"), 404),
    ]
}

/// Permissions, roles and role sets written (the state has `role_set:finance` and the roles
/// org:admin, org:member, org:billing).
fn authorization_calls() -> Vec<Call> {
    use Method as M;
    let permission = "/organization_permissions/perm_org_invoices_read";
    let role = "/organization_roles/role_org_accountant";
    vec![
        call(M::GET, "/organization_permissions?order_by=%2Bcreated_at&limit=2", 200),
        call(M::POST, "/organization_permissions", 200)
            .body(json!({"key": "org:invoices:read", "name": "Read invoices", "description": "Read them"})),
        call(M::POST, "/organization_permissions", 422).body(json!({"key": "org:sys_x:y", "name": "X"})),
        call(M::GET, permission, 200),
        call(M::GET, "/organization_permissions/perm_nothing", 404),
        call(M::PATCH, permission, 200).body(json!({"name": "Read all invoices"})),
        call(M::PATCH, "/organization_permissions/perm_nothing", 404).body(json!({"name": "X"})),
        call(M::POST, "/organization_roles", 200).body(json!({"key": "org:accountant",
            "name": "Accountant", "description": "Books", "permissions": ["perm_org_invoices_read"]})),
        call(M::POST, "/organization_roles", 422).body(json!({"key": "accountant", "name": "A"})),
        call(M::GET, role, 200),
        call(M::GET, "/organization_roles/role_nothing", 404),
        call(M::PATCH, role, 200).body(json!({"name": "Accountants", "permissions": []})),
        call(M::PATCH, "/organization_roles/role_nothing", 404).body(json!({"name": "X"})),
        call(M::POST, &format!("{role}/permissions/perm_org_invoices_read"), 200),
        call(M::POST, &format!("{role}/permissions/perm_nothing"), 404),
        call(M::DELETE, &format!("{role}/permissions/perm_org_invoices_read"), 200),
        call(M::DELETE, &format!("{role}/permissions/perm_nothing"), 404),
        call(M::GET, "/role_sets?order_by=%2Bcreated_at", 200),
        call(M::POST, "/role_sets", 200).body(json!({"key": "role_set:books", "name": "Books",
            "roles": ["org:admin", "org:member"], "default_role_key": "org:member",
            "creator_role_key": "org:admin", "type": "custom"})),
        call(M::POST, "/role_sets", 422).body(json!({"key": "role_set:bad", "name": "Bad",
            "roles": ["org:member"], "default_role_key": "org:member", "creator_role_key": "org:admin"})),
        call(M::PATCH, "/role_sets/role_set:books", 200).body(json!({"name": "Bookkeeping", "type": "initial"})),
        call(M::PATCH, "/role_sets/role_set:books", 422).body(json!({"default_role_key": "org:billing"})),
        call(M::PATCH, "/role_sets/role_set:nothing", 404).body(json!({"name": "X"})),
        call(M::POST, "/role_sets/role_set:books/roles", 200)
            .body(json!({"role_keys": ["org:accountant"], "default_role_key": "org:accountant"})),
        call(M::POST, "/role_sets/role_set:books/roles", 422).body(json!({"role_keys": ["org:accountant"]})),
        call(M::POST, "/role_sets/role_set:nothing/roles", 404).body(json!({"role_keys": ["org:member"]})),
        call(M::PATCH, "/role_sets/role_set:books", 200).body(json!({"default_role_key": "org:member"})),
        call(M::POST, "/role_sets/role_set:books/roles/replace", 200)
            .body(json!({"role_key": "org:accountant", "to_role_key": "org:member"})),
        call(M::POST, "/role_sets/role_set:books/roles/replace", 422)
            .body(json!({"role_key": "org:accountant", "to_role_key": "org:member"})),
        call(M::POST, "/role_sets/role_set:nothing/roles/replace", 404)
            .body(json!({"role_key": "org:member", "to_role_key": "org:admin"})),
        call(M::DELETE, "/organization_roles/role_org_member", 422),
        call(M::DELETE, role, 200),
        call(M::DELETE, role, 404),
        call(M::DELETE, permission, 200),
        call(M::DELETE, permission, 404),
        call(M::DELETE, "/organization_permissions/perm_org_sys_profile_manage", 403),
    ]
}

/// Sends one call through Prism; the problems with its answer, if any.
async fn problems(http: &reqwest::Client, base: &str, call: &Call) -> Option<String> {
    let mut request = http
        .request(call.method.clone(), format!("{base}{}", call.target))
        .bearer_auth(call.key)
        .header("Clerk-API-Version", call.version);
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let what = format!("{} {}", call.method, call.target);
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Some(format!("{what}: {error}")),
    };
    let status = response.status().as_u16();
    let violations = response
        .headers()
        .get("sl-violations")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = response.text().await.unwrap_or_default();
    match violations {
        Some(violations) => Some(format!("{what}: {status}, breaks the spec: {violations}")),
        None if status != call.status => Some(format!(
            "{what}: {status}, expected {}: {}",
            call.status,
            body.chars().take(300).collect::<String>()
        )),
        None => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Stoplight Prism in proxy mode; run by .ci/run with PRISM_PROXY_URL and SIMULATOR_LISTEN"]
async fn every_answer_of_every_endpoint_validates_against_clerks_api_description() {
    let base = std::env::var("PRISM_PROXY_URL").expect("PRISM_PROXY_URL: Prism's proxy");
    let listen = std::env::var("SIMULATOR_LISTEN")
        .expect("SIMULATOR_LISTEN: the address Prism forwards to")
        .parse()
        .expect("SIMULATOR_LISTEN is an address");
    let state: SimState = serde_json::from_str(include_str!("sdk/state.json")).unwrap();
    let simulator = Simulator::start_on(listen, state, KEY, Default::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let calls: Vec<Call> = membership_calls()
        .into_iter()
        .chain(directory_calls())
        .chain(invitation_calls())
        .chain(organization_calls())
        .chain(authorization_calls())
        .collect();
    let mut found = Vec::new();
    for call in &calls {
        found.extend(problems(&http, &base, call).await);
    }
    assert!(found.is_empty(), "{}", found.join("\n"));

    let exercised: BTreeSet<(String, String)> = simulator
        .requests()
        .into_iter()
        .filter_map(|r| Some((r.method, r.route?)))
        .collect();
    let missing: Vec<String> = Simulator::endpoints()
        .into_iter()
        .filter(|(method, path)| !exercised.contains(&(method.clone(), (*path).to_owned())))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "endpoints the simulator serves that this test does not check against the spec:\n{}",
        missing.join("\n")
    );
    let statuses: BTreeSet<u16> = simulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([200, 400, 401, 403, 404, 422]),
        "every status the calls expect reached the simulator"
    );
}
