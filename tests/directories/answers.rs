//! Answers the fake directories never give, from wiremock: a next page on another host, a
//! malformed page, a token answer without a token, a key file that is no key.

use membersync::directory::{Directory, DirectoryError, Entra, Okta, Provider};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::fixtures::*;

fn okta_at(server: &MockServer, token_file: &std::path::Path) -> Directory {
    Directory {
        name: "okta".into(),
        provider: Provider::Okta(Okta {
            url: server.uri(),
            token_file: Some(token_file.to_path_buf()),
        }),
    }
}

fn entra_at(server: &MockServer, secret_file: &std::path::Path) -> Directory {
    Directory {
        name: "entra".into(),
        provider: Provider::Entra(Entra {
            tenant_id: "tenant".into(),
            client_id: "client".into(),
            client_secret_file: Some(secret_file.to_path_buf()),
            api_url: Some(server.uri()),
            token_url: Some(format!("{}/tenant/oauth2/v2.0/token", server.uri())),
        }),
    }
}

async fn token_endpoint(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path("/tenant/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// Reads `group` from an Okta at `server` and returns the error.
async fn okta_error(server: &MockServer, group: &str) -> DirectoryError {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "00okta-token");
    client(&okta_at(server, &token))
        .read_group(group)
        .await
        .unwrap_err()
}

/// Reads `group` from a Graph at `server` and returns the error.
async fn entra_error(server: &MockServer, group: &str) -> DirectoryError {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", "s3cret");
    client(&entra_at(server, &secret))
        .read_group(group)
        .await
        .unwrap_err()
}

/// An Okta page of `users` whose `Link` header names `next`.
fn okta_page(users: serde_json::Value, next: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(users)
        .insert_header("link", format!("<{next}>; rel=\"next\"").as_str())
}

#[tokio::test]
async fn an_okta_next_page_on_another_host_is_refused_and_not_requested() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/groups/00gx/users"))
        .respond_with(okta_page(
            json!([{"id": "00u1", "status": "ACTIVE", "profile": {"email": "a@example.com"}}]),
            "https://attacker.example/api/v1/groups/00gx/users?after=00u1",
        ))
        .mount(&server)
        .await;
    let error = okta_error(&server, "00gx").await;
    assert!(matches!(error, DirectoryError::Decode { .. }), "{error:?}");
    assert!(error.to_string().contains("attacker.example"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_graph_next_link_on_another_host_is_refused() {
    let server = MockServer::start().await;
    token_endpoint(&server, json!({"access_token": "at", "expires_in": 3599})).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "1", "mail": "a@example.com", "accountEnabled": true}],
            "@odata.nextLink": "https://graph.attacker.example/v1.0/groups/g/transitiveMembers/microsoft.graph.user?$skiptoken=x"
        })))
        .mount(&server)
        .await;
    let error = entra_error(&server, "g").await;
    assert!(matches!(error, DirectoryError::Decode { .. }), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_malformed_page_is_a_clear_error_not_a_panic() {
    let server = MockServer::start().await;
    token_endpoint(&server, json!({"access_token": "at", "expires_in": 3599})).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"value\": [ {\"mail\": 42"))
        .mount(&server)
        .await;
    let error = entra_error(&server, "g").await;
    let text = error.to_string();
    assert!(matches!(error, DirectoryError::Decode { .. }), "{error:?}");
    assert!(
        text.starts_with("directory `entra` (entra): reading group `g`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_token_answer_without_a_token_is_a_clear_error() {
    let server = MockServer::start().await;
    token_endpoint(&server, json!({"token_type": "Bearer"})).await;
    let error = entra_error(&server, "g").await;
    assert!(matches!(error, DirectoryError::Decode { .. }), "{error:?}");
    assert!(error.to_string().contains("access_token"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_file_that_is_no_service_account_key_is_refused_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = membersync::simulator::directories::FakeDirectories::start(Default::default())
        .await
        .unwrap();
    for (name, text) in [
        (
            "truncated.json",
            r#"{"client_email": "x@y", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecretbits"#,
        ),
        (
            "not-a-key.json",
            r#"{"client_email": "x@y", "private_key": "MIIEsecretbits"}"#,
        ),
        (
            "user.json",
            r#"{"type": "authorized_user", "client_email": "x@y", "private_key": "MIIEsecretbits"}"#,
        ),
    ] {
        let key = write(dir.path(), name, text);
        let error = membersync::directory::DirectoryClient::new(&google(&fake, &key)).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, DirectoryError::Credentials { .. }),
            "{error:?}"
        );
        assert!(text.contains(name), "{text}");
        assert!(!text.contains("MIIEsecretbits"), "{text}");
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_next_page_that_names_the_page_just_read_stops_the_read() {
    let server = MockServer::start().await;
    let same = format!("{}/api/v1/groups/00gx/users?limit=200", server.uri());
    Mock::given(path("/api/v1/groups/00gx/users"))
        .respond_with(okta_page(json!([]), &same))
        .mount(&server)
        .await;
    let error = okta_error(&server, "00gx").await;
    assert!(error.to_string().contains("the one just read"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
