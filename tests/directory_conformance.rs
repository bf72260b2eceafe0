//! Conformance of the directory clients' requests to the providers' published OpenAPI
//! descriptions, as `conformance.rs` does for Clerk: Stoplight Prism mocks the parts kept under
//! `spec/` (Okta's group lookup and group members, Graph's transitive users of a group),
//! validates every request against them, and logs a violation (answering 422 or 401) for any
//! request that breaks them.
//!
//! Google publishes a discovery document, not an OpenAPI description: its requests are checked
//! by the fake directories, whose `members.list` accepts only the discovery document's
//! parameters (tests/directories). Microsoft's token endpoint is not part of Graph's
//! description: the fake directories issue the token here.
//!
//! Run by `.ci/run` (which installs and starts Prism):
//! `OKTA_PRISM_URL=… OKTA_PRISM_LOG=… GRAPH_PRISM_URL=… GRAPH_PRISM_LOG=…
//! cargo test --test directory_conformance -- --ignored`

use std::path::Path;
use std::time::Duration;

use membersync::directory::{
    Directory, DirectoryClient, DirectoryError, DirectoryOptions, Entra, Okta, Provider,
    ProviderKind,
};
use membersync::simulator::directories::{DirectoryState, FakeDirectories};

fn prism(provider: &str) -> (String, String) {
    let url = std::env::var(format!("{provider}_PRISM_URL"))
        .unwrap_or_else(|_| panic!("{provider}_PRISM_URL: the Prism mock's base URL"));
    let log = std::env::var(format!("{provider}_PRISM_LOG"))
        .unwrap_or_else(|_| panic!("{provider}_PRISM_LOG: that Prism's log file"));
    (url, log)
}

/// Prism's log lines that report a request breaking the description.
fn violations(log: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("Violation: request"))
        .map(str::to_owned)
        .collect()
}

/// Lines of Prism's log that say a request was validated (the requests reached it).
fn validated(log: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("[VALIDATOR]"))
        .count()
}

/// Prism saw requests since `before` (violations, validations), and none broke the
/// description.
fn assert_conformed(log: &str, before: (usize, usize)) {
    let found = violations(log);
    assert_eq!(
        found.len(),
        before.0,
        "requests that break the description:\n{}",
        found.join("\n")
    );
    assert!(validated(log) > before.1, "Prism saw the requests");
}

fn client(directory: &Directory) -> DirectoryClient {
    let options = DirectoryOptions {
        max_attempts: 1,
        timeout: Duration::from_secs(10),
        ..DirectoryOptions::for_provider(directory.provider.kind())
    };
    DirectoryClient::with_options(directory, options, &|_: &str| None).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Stoplight Prism; run by .ci/run with OKTA_PRISM_URL and OKTA_PRISM_LOG"]
async fn okta_requests_conform_to_oktas_api_description() {
    let (url, log) = prism("OKTA");
    let before = (violations(&log).len(), validated(&log));
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory {
        name: "okta".into(),
        provider: Provider::Okta(Okta {
            url,
            token_file: Some(write(dir.path(), "token", "00conformance-okta-token")),
        }),
    };
    let okta = client(&directory);

    // By ID, then by name: the description's example groups include `West Coast users`, and
    // its example members are users with emails.
    let by_id = okta.read_group("00g1emaKYZTWRYYRRTSK").await.unwrap();
    assert!(!by_id.people.is_empty(), "{by_id:?}");
    let by_name = okta.read_group("West Coast users").await;
    assert!(
        matches!(&by_name, Ok(members) if !members.people.is_empty()),
        "{by_name:?}"
    );

    assert_conformed(&log, before);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Stoplight Prism; run by .ci/run with GRAPH_PRISM_URL and GRAPH_PRISM_LOG"]
async fn graph_requests_conform_to_microsoft_graphs_api_description() {
    let (url, log) = prism("GRAPH");
    let before = (violations(&log).len(), validated(&log));
    let fake = FakeDirectories::start(DirectoryState::default())
        .await
        .unwrap();
    let state = DirectoryState::default();
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory {
        name: "entra".into(),
        provider: Provider::Entra(Entra {
            tenant_id: state.entra_tenant_id.clone(),
            client_id: state.entra_client_id.clone(),
            client_secret_file: Some(write(dir.path(), "secret", &state.entra_client_secret)),
            api_url: Some(url),
            token_url: Some(fake.entra_token_url()),
        }),
    };
    assert_eq!(directory.provider.kind(), ProviderKind::Entra);

    let outcome = client(&directory)
        .read_group("5b6c0e8a-0000-4000-8000-00000000aaaa")
        .await;
    // Prism's made-up page names its next page `string`, which is no URL on Graph's host:
    // the first page was accepted and read, and the client stops there.
    match &outcome {
        Err(DirectoryError::Decode { detail, .. }) => {
            assert!(detail.contains("next page `string`"), "{detail}")
        }
        other => panic!("expected the made-up next page to be refused: {other:?}"),
    }

    assert_conformed(&log, before);
}
