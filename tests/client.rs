//! The Clerk client against wiremock: headers, encodings, every retry class, Retry-After in
//! both forms, 401 stopping the run, malformed answers, and paging.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use membersync::clerk::{
    self, ClerkError, Client, ClientConfig, ListingStrategy, RateLimit, SecretKey,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_wiremock_secret";

fn client(server: &MockServer) -> Client {
    let mut config = ClientConfig::new(
        format!("{}/v1", server.uri()),
        "1000/s".parse::<RateLimit>().unwrap(),
        4,
    );
    config.max_backoff = Duration::from_millis(300);
    config.timeout = Duration::from_secs(2);
    Client::new(config, SecretKey::new(KEY)).unwrap()
}

fn membership(id: &str, org: &str, user: &str) -> Value {
    json!({"id": id, "object": "organization_membership", "role": "org:member",
           "organization": {"id": org}, "public_user_data": {"user_id": user}, "extra": "ignored"})
}

fn page(data: Vec<Value>, total: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": data, "total_count": total}))
}

fn clerk_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errors": [{"code": code, "message": "short", "long_message": format!("the long message of {code}")}],
        "clerk_trace_id": "trace-1"
    }))
}

/// Fails the test loudly when a request matches no other mock: 418 is a permanent error, never
/// retried, so the call that sent it fails at once.
async fn catch_all(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(418).set_body_string("unexpected request"))
        .with_priority(255)
        .mount(server)
        .await;
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test]
async fn every_request_carries_auth_version_and_user_agent_and_encodes_order_by() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization_memberships"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("clerk-api-version", "2026-05-12"))
        .and(query_param("order_by", "+created_at"))
        .and(query_param("limit", "500"))
        .and(query_param("offset", "0"))
        .respond_with(page(vec![membership("m1", "org_a", "user_1")], 1))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let result = client(&server)
        .list_instance_memberships(0, 500)
        .await
        .unwrap();
    assert_eq!(result.data[0].public_user_data.user_id, "user_1");
    let request = &received(&server).await[0];
    assert!(
        request
            .url
            .query()
            .unwrap()
            .contains("order_by=%2Bcreated_at"),
        "{}",
        request.url
    );
    let agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(agent.starts_with("membersync/"), "{agent}");
}

#[tokio::test]
async fn retries_a_503_then_converges() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(clerk_error(503, "unavailable"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![], 0))
        .mount(&server)
        .await;
    let client = client(&server);
    client.list_instance_memberships(0, 500).await.unwrap();
    assert_eq!(received(&server).await.len(), 3);
    assert_eq!(client.snapshot().retries, 2);
}

#[tokio::test]
async fn retries_a_409_resource_locked_but_not_other_409s() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/organizations/org_a/memberships/user_1"))
        .respond_with(clerk_error(409, "resource_locked"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_a/memberships/user_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(membership("m1", "org_a", "user_1")))
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_b/memberships/user_1"))
        .respond_with(clerk_error(409, "organization_membership_managed_by_scim"))
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .update_membership_role("org_a", "user_1", "org:admin")
        .await
        .unwrap();
    let error = client
        .update_membership_role("org_b", "user_1", "org:admin")
        .await
        .unwrap_err();
    assert!(error.has_code("organization_membership_managed_by_scim"));
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn a_429_pauses_until_retry_after_in_seconds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![], 0))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server)
        .list_instance_memberships(0, 500)
        .await
        .unwrap();
    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "the retry waited for Retry-After"
    );
}

#[tokio::test]
async fn a_429_pauses_until_retry_after_as_an_http_date() {
    let server = MockServer::start().await;
    let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    Mock::given(method("GET"))
        .respond_with(
            clerk_error(429, "too_many_requests").insert_header("retry-after", when.as_str()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![], 0))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server)
        .list_instance_memberships(0, 500)
        .await
        .unwrap();
    // An HTTP date has one-second resolution: at least one full second remains.
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_429_pauses_every_other_request_too() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/organizations/org_a"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "org_x"})))
        .mount(&server)
        .await;
    let client = client(&server);
    let _ = client.get_organization("org_a").await; // closes the gate for a second
    let started = Instant::now();
    client.get_organization("org_b").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "the first call waited out the pause"
    );
    // While one request waits out its 429, another request of the same client waits too.
    let server = MockServer::start().await;
    Mock::given(path("/v1/organizations/org_c"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "org_x"})))
        .mount(&server)
        .await;
    let client = std::sync::Arc::new(self::client(&server));
    let throttled = tokio::spawn({
        let client = client.clone();
        async move { client.get_organization("org_c").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.snapshot().throttled == 0 {
        assert!(Instant::now() < deadline, "the 429 came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    client.get_organization("org_d").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "no request is sent while the gate is closed"
    );
    throttled.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_401_stops_the_run_at_once_without_showing_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(clerk_error(401, "authentication_invalid"))
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client.list_instance_memberships(0, 500).await.unwrap_err();
    assert!(matches!(
        error,
        ClerkError::Unauthorized { status: 401, .. }
    ));
    let message = error.to_string();
    assert!(
        !message.contains(KEY) && message.contains("CLERK_SECRET_KEY"),
        "{message}"
    );
    let next = client.get_organization("org_a").await.unwrap_err();
    assert!(matches!(next, ClerkError::Stopped { .. }));
    assert_eq!(
        received(&server).await.len(),
        1,
        "no retry, nothing after the stop"
    );
    assert!(!format!("{client:?}").contains(KEY));
}

#[tokio::test]
async fn a_422_is_not_retried_and_its_long_message_reaches_the_user() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(clerk_error(422, "form_param_invalid"))
        .mount(&server)
        .await;
    let error = client(&server)
        .create_membership("org_a", "user_1", "org:admin", None, None)
        .await
        .unwrap_err();
    assert_eq!(received(&server).await.len(), 1);
    let message = error.to_string();
    assert!(
        message.contains("the long message of form_param_invalid"),
        "{message}"
    );
    assert!(
        message.contains("creating the membership of user_1 in org_a"),
        "{message}"
    );
    assert!(message.contains("trace-1"), "{message}");
}

#[tokio::test]
async fn malformed_json_and_missing_fields_are_clear_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/organization_memberships"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": [tru"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "no id"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/users"))
        .respond_with(ResponseTemplate::new(418).set_body_string("teapot"))
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client.list_instance_memberships(0, 500).await.unwrap_err();
    assert!(
        matches!(error, ClerkError::Decode { status: 200, .. }),
        "{error}"
    );
    let error = client.get_organization("org_a").await.unwrap_err();
    assert!(error.to_string().contains("missing field `id`"), "{error}");
    let error = client
        .list_users_by_email(&["a@example.com"])
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("HTTP 418") && error.to_string().contains("teapot"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_refused_is_retried_then_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let mut config = ClientConfig::new(url, "1000/s".parse().unwrap(), 1);
    config.max_backoff = Duration::from_millis(50);
    config.max_attempts = 3;
    let client = Client::new(config, SecretKey::new(KEY)).unwrap();
    let error = client.list_instance_memberships(0, 500).await.unwrap_err();
    assert!(matches!(error, ClerkError::Transport { .. }), "{error}");
    assert_eq!(client.snapshot().sent, 3);
}

#[tokio::test]
async fn write_endpoints_send_what_the_spec_describes() {
    let server = MockServer::start().await;
    let ok = ResponseTemplate::new(200).set_body_json(membership("m1", "org a/b", "user_1"));
    Mock::given(method("POST"))
        .and(path("/v1/organizations/org_a/memberships"))
        .and(body_json(
            json!({"user_id": "user_1", "role": "org:admin", "public_metadata": {"team": "x"}}),
        ))
        .respond_with(ok.clone())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/organizations/org%20a%2Fb/memberships/user_1"))
        .and(body_json(json!({"role": "org:member"})))
        .respond_with(ok.clone())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/organizations/org_a/memberships/user_1/metadata"))
        .and(body_json(json!({"private_metadata": {"gone": null}})))
        .respond_with(ok.clone())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/organizations/org_a/memberships/user_1"))
        .respond_with(ok.clone())
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = client(&server);
    let public = json!({"team": "x"}).as_object().cloned().unwrap();
    client
        .create_membership("org_a", "user_1", "org:admin", Some(&public), None)
        .await
        .unwrap();
    client
        .update_membership_role("org a/b", "user_1", "org:member")
        .await
        .unwrap();
    client
        .merge_membership_metadata(
            "org_a",
            "user_1",
            &json!({"private_metadata": {"gone": null}}),
        )
        .await
        .unwrap();
    client.delete_membership("org_a", "user_1").await.unwrap();
}

#[tokio::test]
async fn lookups_batch_their_filters_and_set_the_limit_to_match() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/users"))
        .respond_with(|request: &Request| {
            let emails: Vec<String> = request.url.query_pairs().filter(|(k, _)| k == "email_address").map(|(_, v)| v.into_owned()).collect();
            let limit: usize = request.url.query_pairs().find(|(k, _)| k == "limit").map(|(_, v)| v.parse().unwrap()).unwrap();
            assert!(emails.len() <= 100 && limit == emails.len(), "{} emails, limit {limit}", emails.len());
            let users: Vec<Value> = emails
                .iter()
                .filter(|e| !e.starts_with("unknown"))
                .map(|e| json!({"id": format!("user_{}", e.split('@').next().unwrap()), "email_addresses": [{"id": "e", "email_address": e.to_uppercase()}]}))
                .collect();
            ResponseTemplate::new(200).set_body_json(users)
        })
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = client(&server);
    let mut emails: Vec<String> = (0..250).map(|n| format!("p{n}@example.com")).collect();
    emails.push("unknown@example.com".into());
    let users = clerk::resolve_emails(&client, &emails).await.unwrap();
    assert_eq!(received(&server).await.len(), 3, "⌈251/100⌉ requests");
    assert_eq!(users.len(), 250);
    assert_eq!(
        users["p7@example.com"].id, "user_p7",
        "matched case-insensitively"
    );
    assert!(!users.contains_key("unknown@example.com"));
}

#[tokio::test]
async fn a_listing_that_changes_while_it_is_read_is_read_again_per_organization() {
    let server = MockServer::start().await;
    let first: Vec<Value> = (0..500)
        .map(|n| membership(&format!("m{n}"), "org_a", &format!("user_{n}")))
        .collect();
    let mut second: Vec<Value> = (499..999)
        .map(|n| membership(&format!("m{n}"), "org_a", &format!("user_{n}")))
        .collect();
    second.push(membership("m_other", "org_unmanaged", "user_x"));
    // The instance listing moves: its second page shares a row with the first and reports
    // another total.
    Mock::given(path("/v1/organization_memberships"))
        .and(query_param("offset", "0"))
        .respond_with(page(first.clone(), 1000))
        .mount(&server)
        .await;
    Mock::given(path("/v1/organization_memberships"))
        .and(query_param("offset", "500"))
        .respond_with(page(second, 1001))
        .mount(&server)
        .await;
    // The organization's own listing holds still.
    let own_second: Vec<Value> = (500..999)
        .map(|n| membership(&format!("m{n}"), "org_a", &format!("user_{n}")))
        .collect();
    Mock::given(path("/v1/organizations/org_a/memberships"))
        .and(query_param("offset", "0"))
        .respond_with(page(first, 999))
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_a/memberships"))
        .and(query_param("offset", "500"))
        .respond_with(page(own_second, 999))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = client(&server);
    let managed: HashMap<String, Option<u64>> = [("org_a".to_owned(), None)].into();
    let (live, missing) = clerk::read_memberships(&client, &managed).await.unwrap();
    assert!(missing.is_empty());
    assert_eq!(live.strategy, Some(ListingStrategy::PerOrganization));
    assert!(live.unsettled.is_empty());
    assert_eq!(live.memberships["org_a"].len(), 999);
    assert_eq!(
        received(&server).await.len(),
        4,
        "two instance pages, then the organization's two pages"
    );
}

#[tokio::test]
async fn an_invitation_limit_over_a_minute_defers_at_once_and_holds_no_other_request() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/organizations/org_a/invitations/bulk"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_a/invitations"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/organizations/org_a/invitations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "orginv_1", "email_address": "a@example.com", "role": "org:member"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "org_x"})))
        .mount(&server)
        .await;
    let client = client(&server);
    let body = json!({"email_address": "a@example.com", "role": "org:member"});
    let error = client
        .create_invitations("org_a", &[body.clone(), body.clone()])
        .await
        .unwrap_err();
    assert!(matches!(error, ClerkError::Deferred { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("deferred by Clerk's invitation limit"),
        "{error}"
    );
    let started = Instant::now();
    client.get_organization("org_b").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "an invitation endpoint's limit does not pause the other requests"
    );
    // A short wait on the invitation endpoint is waited out and retried.
    let created = client.create_invitation("org_a", &body).await.unwrap();
    assert_eq!(created.id, "orginv_1");
    let bulk = received(&server)
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/bulk"))
        .count();
    assert_eq!(bulk, 1, "a deferred request is not retried");
}
