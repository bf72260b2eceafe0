//! The simulator answers as Clerk does: dated API versions, complete objects, the listings'
//! filters and orders, `updated_at` that moves, the documented errors, and a request log in
//! `membersync simulate`. (Every answer is also validated against Clerk's API description by
//! `tests/simulator_spec.rs`, and driven by Clerk's own SDKs from `tests/sdk/`, both in `.ci/run`.)

use std::time::{Duration, Instant};

use membersync::simulator::{SEEDED_AT, SimState, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "sk_test_simulator_0123456789";

async fn start() -> Simulator {
    let state: SimState = serde_json::from_str(include_str!("sdk/state.json")).unwrap();
    Simulator::start(state, KEY).await.unwrap()
}

/// Sends a request with this API version; the status and the JSON answer.
async fn send(
    simulator: &Simulator,
    method: Method,
    target: &str,
    version: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{target}", simulator.api_url()))
        .bearer_auth(KEY);
    if let Some(version) = version {
        request = request.header("Clerk-API-Version", version);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(simulator: &Simulator, target: &str) -> (u16, Value) {
    send(simulator, Method::GET, target, Some("2026-05-12"), None).await
}

fn ids(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn any_dated_api_version_up_to_the_specs_is_served_and_others_are_refused() {
    let simulator = start().await;
    for version in ["2026-05-12", "2025-11-10", "2024-10-01"] {
        let (status, _) = send(&simulator, Method::GET, "/users", Some(version), None).await;
        assert_eq!(status, 200, "{version}");
    }
    for version in [
        Some("2026-05-13"),
        Some("2026-5-12"),
        Some("2026-02-30"),
        Some("v1"),
        None,
    ] {
        let (status, body) = send(&simulator, Method::GET, "/users", version, None).await;
        assert_eq!(status, 400, "{version:?}");
        assert_eq!(
            body["errors"][0]["code"], "api_version_invalid",
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn memberships_carry_their_organization_and_person_in_full() {
    let simulator = start().await;
    let (_, page) = get(
        &simulator,
        "/organization_memberships?order_by=%2Bcreated_at&limit=1",
    )
    .await;
    let membership = &page["data"][0];
    assert_eq!(membership["role_name"], "Admin");
    let organization = &membership["organization"];
    for field in [
        "has_image",
        "max_allowed_memberships",
        "admin_delete_enabled",
        "public_metadata",
    ] {
        assert!(!organization[field].is_null(), "organization.{field}");
    }
    assert_eq!(organization["created_at"], SEEDED_AT);
    assert!(organization.get("members_count").is_none(), "not asked for");
    let person = &membership["public_user_data"];
    assert_eq!(person["first_name"], "Ada");
    assert_eq!(person["last_name"], "Lovelace");
    assert_eq!(person["identifier"], "ada.lovelace@acme.test");
    assert!(
        person["image_url"]
            .as_str()
            .unwrap()
            .starts_with("https://img.clerk.com/")
    );
    assert_eq!(person["has_image"], false);
}

#[tokio::test]
async fn members_count_is_there_only_when_asked_for() {
    let simulator = start().await;
    let (_, page) = get(
        &simulator,
        "/organizations?include_members_count=true&order_by=%2Bname",
    )
    .await;
    let counts: Vec<(&str, i64)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["slug"].as_str().unwrap(),
                o["members_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("acme", 4), ("globex", 2)]);
    let (_, page) = get(&simulator, "/organizations").await;
    assert!(page["data"][0].get("members_count").is_none());
    let (_, one) = get(&simulator, "/organizations/acme?include_members_count=true").await;
    assert_eq!(
        (one["id"].as_str(), one["members_count"].as_i64()),
        (Some("org_2sdkAcme"), Some(4))
    );
}

#[tokio::test]
async fn listings_are_newest_first_unless_ordered_and_filter_by_email_user_and_query() {
    let simulator = start().await;
    let (_, newest) = get(&simulator, "/organization_memberships?limit=2").await;
    assert_eq!(ids(&newest), ["orgmem_2sdk6", "orgmem_2sdk5"]);
    let (_, oldest) = get(
        &simulator,
        "/organization_memberships?order_by=%2Bcreated_at&limit=2&offset=1",
    )
    .await;
    assert_eq!(ids(&oldest), ["orgmem_2sdk2", "orgmem_2sdk3"]);
    assert_eq!(oldest["total_count"], 6);
    let members = "/organizations/acme/memberships";
    let (_, by_email) = get(&simulator, &format!("{members}?order_by=%2Bemail_address")).await;
    assert_eq!(
        ids(&by_email),
        [
            "orgmem_2sdk1",
            "orgmem_2sdk3",
            "orgmem_2sdk4",
            "orgmem_2sdk2"
        ]
    );
    let (_, filtered) = get(
        &simulator,
        &format!("{members}?email_address=DEV%40personal.test"),
    )
    .await;
    assert_eq!(ids(&filtered), ["orgmem_2sdk2"]);
    let (_, filtered) = get(
        &simulator,
        &format!("{members}?user_id=-user_2sdkAda&order_by=%2Bcreated_at"),
    )
    .await;
    assert_eq!(
        ids(&filtered),
        ["orgmem_2sdk2", "orgmem_2sdk3", "orgmem_2sdk4"]
    );
    let (_, filtered) = get(&simulator, &format!("{members}?query=LOVELACE")).await;
    assert_eq!(
        (ids(&filtered), filtered["total_count"].as_i64()),
        (vec!["orgmem_2sdk1"], Some(1))
    );
    let (status, body) = get(&simulator, &format!("{members}?order_by=shoe_size")).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (422, Some("form_param_value_invalid"))
    );
}

#[tokio::test]
async fn a_change_moves_updated_at_and_the_saved_state_keeps_it() {
    let simulator = start().await;
    let path = "/organizations/acme/memberships/user_2sdkChloe";
    let body = json!({"role": "org:billing"});
    let (status, first) = send(
        &simulator,
        Method::PATCH,
        path,
        Some("2026-05-12"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let created = first["created_at"].as_i64().unwrap();
    let updated = first["updated_at"].as_i64().unwrap();
    assert!(updated > created, "{first}");
    let metadata = json!({"public_metadata": {"seen": true}});
    let (_, second) = send(
        &simulator,
        Method::PATCH,
        &format!("{path}/metadata"),
        Some("2026-05-12"),
        Some(metadata),
    )
    .await;
    assert!(second["updated_at"].as_i64().unwrap() > updated, "{second}");
    assert_eq!(second["created_at"], created);
    let saved = serde_json::to_value(simulator.state()).unwrap();
    assert_eq!(
        saved["times"]["orgmem_2sdk4"]["updated_at"],
        second["updated_at"]
    );
}

#[tokio::test]
async fn users_are_complete_and_counted_with_the_same_filters() {
    let simulator = start().await;
    let (_, users) = get(
        &simulator,
        "/users?email_address=dev%40personal.test&email_address=nobody%40x.test",
    )
    .await;
    let dev = &users[0];
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(
        (dev["first_name"].as_str(), dev["last_name"].as_str()),
        (Some("Dev"), Some("Patel"))
    );
    assert_eq!(
        dev["primary_email_address_id"],
        dev["email_addresses"][0]["id"]
    );
    let address = &dev["email_addresses"][1];
    assert_eq!(address["email_address"], "dev@personal.test");
    assert_eq!(address["verification"]["status"], "verified");
    assert_eq!(address["linked_to"], json!([]));
    for field in [
        "phone_numbers",
        "web3_wallets",
        "passkeys",
        "external_accounts",
        "saml_accounts",
        "enterprise_accounts",
    ] {
        assert_eq!(dev[field], json!([]), "{field}");
    }
    let (_, count) = get(&simulator, "/users/count?query=acme.test").await;
    assert_eq!(count, json!({"object": "total_count", "total_count": 5}));
    let (_, everyone) = get(&simulator, "/users?query=acme.test&limit=100").await;
    assert_eq!(everyone.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn invitations_of_an_organization_carry_no_organization_data_and_can_be_read_one_by_one() {
    let simulator = start().await;
    let invitations = "/organizations/acme/invitations";
    let body = json!({"email_address": "new@acme.test", "role": "org:member"});
    let (_, created) = send(
        &simulator,
        Method::POST,
        invitations,
        Some("2026-05-12"),
        Some(body),
    )
    .await;
    assert!(
        created.get("public_organization_data").is_none(),
        "{created}"
    );
    let id = created["id"].as_str().unwrap();
    let (status, one) = get(&simulator, &format!("{invitations}/{id}")).await;
    assert_eq!((status, &one), (200, &created));
    let (_, pending) = get(&simulator, &format!("{invitations}/pending")).await;
    assert_eq!(ids(&pending), [id, "orginv_2sdkOld"], "newest first");
    let (_, instance) = get(&simulator, "/organization_invitations?status=pending").await;
    assert_eq!(
        instance["data"][0]["public_organization_data"]["slug"],
        "acme"
    );
    let (status, _) = get(&simulator, &format!("{invitations}/orginv_nothing")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_member_of_a_full_organization_is_refused_with_clerks_quota_error() {
    let simulator = start().await;
    let body = json!({"user_id": "user_2sdkFarid", "role": "org:member"});
    let (status, answer) = send(
        &simulator,
        Method::POST,
        "/organizations/globex/memberships",
        Some("2026-05-12"),
        Some(body),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        answer["errors"][0]["code"],
        "organization_membership_quota_exceeded"
    );
    assert_eq!(simulator.state().roles_of("org_2sdkGlobex").len(), 2);
}

#[tokio::test]
async fn every_listed_endpoint_is_routed() {
    let simulator = start().await;
    for (method, path) in Simulator::endpoints() {
        let concrete = path
            .trim_start_matches("/v1")
            .replace("{org}", "acme")
            .replace("{user}", "user_2sdkAda")
            .replace("{invitation}", "orginv_2sdkOld")
            .replace("{key}", "role_set:finance");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        send(
            &simulator,
            method,
            &concrete,
            Some("2026-05-12"),
            Some(json!({})),
        )
        .await;
    }
    let requests = simulator.requests();
    let routed: Vec<Option<String>> = requests.iter().map(|r| r.route.clone()).collect();
    let listed: Vec<Option<String>> = Simulator::endpoints()
        .into_iter()
        .map(|(_, path)| Some(path.to_owned()))
        .collect();
    assert_eq!(routed, listed);
}

#[tokio::test]
async fn simulate_logs_each_request_with_its_method_path_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, include_str!("sdk/state.json")).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .args(["simulate", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .env("CLERK_SECRET_KEY", KEY)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let url = stdout
        .find_map(|line| Some(line.ok()?.split_once("serving ")?.1.to_owned()))
        .unwrap();
    reqwest::Client::new()
        .delete(format!(
            "{url}/organizations/acme/memberships/user_2sdkFarid"
        ))
        .bearer_auth(KEY)
        .header("Clerk-API-Version", "2025-11-10")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains("served")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no request logged:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    for part in [
        "INFO",
        "method=DELETE",
        "path=/v1/organizations/acme/memberships/user_2sdkFarid",
        "status=404",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}
