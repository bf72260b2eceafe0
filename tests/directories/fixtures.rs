//! What the directory tests share: the fake directories' seeded people and groups, and a
//! directory of each provider pointed at them.

use std::path::Path;
use std::time::Duration;

use membersync::directory::{
    Directory, DirectoryClient, DirectoryError, DirectoryOptions, Entra, Google, Members, Okta,
    Provider, ProviderKind,
};
use membersync::simulator::directories::{DirectoryState, FakeDirectories, UserStatus};

pub const SERVICE_ACCOUNT: &str = "membersync@corp-project.iam.gserviceaccount.com";
pub const GRAPH_GROUP: &str = "5b6c0e8a-0000-4000-8000-00000000aaaa";
pub const GRAPH_NESTED: &str = "5b6c0e8a-0000-4000-8000-00000000bbbb";

pub fn options(kind: ProviderKind) -> DirectoryOptions {
    DirectoryOptions {
        requests_per_second: std::num::NonZeroU32::new(1000).unwrap(),
        timeout: Duration::from_secs(5),
        max_attempts: 4,
        max_backoff: Duration::from_millis(50),
        ..DirectoryOptions::for_provider(kind)
    }
}

pub fn no_env(_: &str) -> Option<String> {
    None
}

pub fn client(directory: &Directory) -> DirectoryClient {
    DirectoryClient::with_options(directory, options(directory.provider.kind()), &no_env).unwrap()
}

pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn google(fake: &FakeDirectories, key_file: &Path) -> Directory {
    Directory {
        name: "corp".into(),
        provider: Provider::Google(Google {
            credentials_file: Some(key_file.to_path_buf()),
            subject: "admin@example.com".into(),
            api_url: Some(fake.google_api_url()),
            token_url: None,
        }),
    }
}

pub fn okta(fake: &FakeDirectories, token_file: Option<&Path>) -> Directory {
    Directory {
        name: "okta".into(),
        provider: Provider::Okta(Okta {
            url: fake.okta_url(),
            token_file: token_file.map(Path::to_path_buf),
        }),
    }
}

pub fn entra(fake: &FakeDirectories, secret_file: &Path) -> Directory {
    let state = DirectoryState::default();
    Directory {
        name: "entra".into(),
        provider: Provider::Entra(Entra {
            tenant_id: state.entra_tenant_id,
            client_id: state.entra_client_id,
            client_secret_file: Some(secret_file.to_path_buf()),
            api_url: Some(fake.graph_api_url()),
            token_url: Some(fake.entra_token_url()),
        }),
    }
}

/// 450 users `u0..u449@example.com` (every 10th suspended, every 25th deprovisioned, every
/// 40th locked out), in group `support` (Google `support@example.com`, Okta
/// `00gsupport0000000000`); `oncall` (nested in `support`, with 2 users of its own); and
/// Graph groups of the same people.
pub fn seeded() -> DirectoryState {
    let mut state = DirectoryState::default();
    let mut support = Vec::new();
    for n in 0..450 {
        let status = if n % 25 == 0 {
            UserStatus::Deprovisioned
        } else if n % 10 == 0 {
            UserStatus::Suspended
        } else if n % 40 == 0 {
            UserStatus::LockedOut
        } else {
            UserStatus::Active
        };
        state.user(&format!("00u{n}"), &format!("U{n}@Example.com"), status);
        support.push(format!("00u{n}"));
    }
    state
        .user("00uoncall1", "oncall1@example.com", UserStatus::Active)
        .user("00uoncall2", "oncall2@example.com", UserStatus::Suspended);
    let support: Vec<&str> = support.iter().map(String::as_str).collect();
    state
        .group(
            "00gsupport0000000000",
            "Support",
            "support@example.com",
            &support,
            &["00goncall00000000000"],
        )
        .group(
            "00goncall00000000000",
            "Oncall",
            "oncall@example.com",
            &["00uoncall1", "00uoncall2", "00u1"],
            &[],
        )
        .group(GRAPH_GROUP, "Graph support", "", &support, &[GRAPH_NESTED])
        .group(
            GRAPH_NESTED,
            "Graph oncall",
            "",
            &["00uoncall1", "00uoncall2"],
            &[],
        );
    state
}

/// The users of `support` who count, by the seeding rule (`locked` counts locked-out users).
pub fn expected_support(locked: bool) -> Vec<String> {
    let mut emails: Vec<String> = (0..450)
        .filter(|n| n % 25 != 0 && n % 10 != 0 && (locked || n % 40 != 0))
        .map(|n| format!("u{n}@example.com"))
        .collect();
    emails.sort();
    emails
}

pub fn emails(members: &Members) -> Vec<String> {
    members.people.iter().map(|p| p.email.clone()).collect()
}

/// The directory refused the credentials with `status`, and the message says each of `says`.
pub fn assert_refused(error: &DirectoryError, status: u16, says: &[&str]) {
    assert!(
        matches!(error, DirectoryError::Unauthorized { status: s, .. } if *s == status),
        "{error:?}"
    );
    let text = error.to_string();
    for expected in says {
        assert!(text.contains(expected), "`{expected}` missing from: {text}");
    }
}
