//! No credential in any error, Debug output or log line, at the most verbose level, with
//! every crate's logs captured (the process's one global subscriber: this file holds the only
//! test that installs it).

use membersync::directory::{Directory, ProviderKind};
use membersync::simulator::directories::{
    DirectoryFault, DirectoryState, FakeDirectories, FakeEndpoint, service_account_key,
};

use super::fixtures::*;

/// Collects every log line of the process (tracing and the `log` records of reqwest).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of the process, at every level, to a buffer.
fn capture_logs() -> Logs {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .expect("the only global subscriber of this test binary");
    logs
}

/// A directory of each provider with the right credentials, and one with wrong ones.
fn directories(
    fake: &FakeDirectories,
    dir: &std::path::Path,
    good_key: &str,
    bad_key: &str,
) -> Vec<(Directory, &'static str)> {
    let state = DirectoryState::default();
    let mut directories = Vec::new();
    for (name, key) in [("good.json", good_key), ("bad.json", bad_key)] {
        let file = write(dir, name, key);
        directories.push((google(fake, &file), "oncall@example.com"));
    }
    for (name, token) in [
        ("token", state.okta_token.as_str()),
        ("bad-token", "00bad-okta-token-secret"),
    ] {
        let file = write(dir, name, token);
        directories.push((okta(fake, Some(&file)), "00goncall00000000000"));
    }
    for (name, secret) in [
        ("secret", state.entra_client_secret.as_str()),
        ("bad-secret", "bad~entra~secret~value"),
    ] {
        let file = write(dir, name, secret);
        directories.push((entra(fake, &file), GRAPH_NESTED));
    }
    directories
}

/// Reads each group (each read meets a 429 first, so the retry path logs too) and returns
/// every Debug and Display text on the way.
async fn read_all(fake: &FakeDirectories, directories: &[(Directory, &str)]) -> Vec<String> {
    let mut texts = Vec::new();
    for (directory, group) in directories {
        let endpoint = match directory.provider.kind() {
            ProviderKind::Google => FakeEndpoint::GoogleMembers,
            ProviderKind::Okta => FakeEndpoint::OktaUsers,
            ProviderKind::Entra => FakeEndpoint::GraphMembers,
        };
        fake.push_fault(DirectoryFault {
            endpoint,
            status: 429,
            retry_after: Some(0),
            times: 1,
        });
        let reader = client(directory);
        texts.push(format!("{directory:?} {reader:?}"));
        match reader.read_group(group).await {
            Ok(members) => texts.push(format!("{members:?}")),
            Err(error) => texts.push(format!("{error} {error:?}")),
        }
    }
    texts
}

/// The sixth line of a key file's private key.
fn pem_line(key: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(key).unwrap();
    let pem = value["private_key"].as_str().unwrap();
    pem.lines().nth(5).unwrap().to_owned()
}

#[tokio::test]
async fn no_secret_appears_in_errors_debug_output_or_trace_logs() {
    let logs = capture_logs();
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good_key = fake.google_key(SERVICE_ACCOUNT);
    let bad_key = service_account_key(SERVICE_ACCOUNT, &fake.google_token_url()).json;
    let directories = directories(&fake, dir.path(), &good_key, &bad_key);
    let texts = read_all(&fake, &directories).await;
    // Three groups read, three refusals.
    assert_eq!(
        texts
            .iter()
            .filter(|text| text.starts_with("Members"))
            .count(),
        3
    );
    assert_eq!(
        texts.iter().filter(|text| text.contains("refused")).count(),
        3
    );

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("directory request"),
        "trace logs were captured"
    );
    assert!(logged.contains("retrying a directory request"), "{logged}");
    let state = DirectoryState::default();
    let secrets = [
        state.okta_token.clone(),
        "00bad-okta-token-secret".to_owned(),
        state.entra_client_secret.clone(),
        "bad~entra~secret~value".to_owned(),
        pem_line(&good_key),
        pem_line(&bad_key),
        // Issued access tokens, and the signed assertion's header.
        "fake-access-token".to_owned(),
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiI".to_owned(),
    ];
    for text in texts.iter().chain([&logged]) {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "`{secret}` leaked into:\n{text}"
            );
        }
    }
}
