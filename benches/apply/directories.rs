//! `cargo bench --bench apply -- directories`: a 50,000-member Google group (200 a page) and a
//! 20,000-member Graph group (999 a page) read from the fake directories through the real
//! client, limiter and retries. The read runs in a child process (this bench binary again,
//! as `directories` with [`READER`]) so that its memory is measured alone: its peak RSS is reset just before
//! the read (Linux `clear_refs`), and the growth is the peak after it less the RSS before.
//! Prints requests (against the minimum, one token request and ⌈members/page⌉ pages), wall
//! time and peak RSS growth; asserts nothing about time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use membersync::directory::{
    Directory, DirectoryClient, DirectoryOptions, Entra, Google, Provider, ProviderKind,
};
use membersync::simulator::directories::{
    DirectoryState, FakeDirectories, FakeEndpoint, UserStatus,
};
use serde_json::{Value, json};

/// The argument that makes this bench binary the reading child.
pub const READER: &str = "--directory-reader";

const GROUP_EMAIL: &str = "staff@example.com";
const GROUP_ID: &str = "5b6c0e8a-0000-4000-8000-00000000beef";

pub async fn run() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == READER) {
        return reader(&args[at + 1..]).await;
    }
    read(ProviderKind::Google, 50_000, 200).await;
    read(ProviderKind::Entra, 20_000, 999).await;
}

/// `members` users (every 50th suspended), all in one group.
fn state(members: usize) -> DirectoryState {
    let mut state = DirectoryState::default();
    let mut ids = Vec::with_capacity(members);
    for n in 0..members {
        let status = if n % 50 == 49 {
            UserStatus::Suspended
        } else {
            UserStatus::Active
        };
        state.user(
            &format!("u{n}"),
            &format!("person.{n}@staff.example.com"),
            status,
        );
        ids.push(format!("u{n}"));
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    state.group(GROUP_ID, "Staff", GROUP_EMAIL, &ids, &[]);
    state
}

async fn read(kind: ProviderKind, members: usize, page: usize) {
    let fake = FakeDirectories::start(state(members))
        .await
        .expect("the fake directories start");
    let scratch = std::env::temp_dir().join(format!(
        "membersync-bench-directories-{}-{}",
        kind,
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let (credential, api_url, token_url, group) = match kind {
        ProviderKind::Google => (
            fake.google_key("bench@corp.iam.gserviceaccount.com"),
            fake.google_api_url(),
            fake.google_token_url(),
            GROUP_EMAIL,
        ),
        _ => (
            DirectoryState::default().entra_client_secret,
            fake.graph_api_url(),
            fake.entra_token_url(),
            GROUP_ID,
        ),
    };
    let file = scratch.join("credential");
    std::fs::write(&file, credential).expect("the credential file");
    let started = Instant::now();
    let output = tokio::process::Command::new(std::env::current_exe().expect("this bench"))
        .args(["directories", READER])
        .arg(kind.as_str())
        .arg(&api_url)
        .arg(&token_url)
        .arg(&file)
        .arg(group)
        .output()
        .await
        .expect("the reader runs");
    let wall = started.elapsed();
    let _ = std::fs::remove_dir_all(&scratch);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the reader failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Value = serde_json::from_str(stdout.trim()).expect("the reader's figures");
    let pages = [FakeEndpoint::GoogleMembers, FakeEndpoint::GraphMembers]
        .into_iter()
        .map(|endpoint| fake.requests_to(endpoint))
        .sum::<usize>();
    let tokens = [FakeEndpoint::GoogleToken, FakeEndpoint::EntraToken]
        .into_iter()
        .map(|endpoint| fake.requests_to(endpoint))
        .sum::<usize>();
    let mib = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN) / (1024.0 * 1024.0);
    println!("directories: {kind}, a group of {members} ({page} a page)");
    println!(
        "  people                        {} ({} left out as inactive)",
        figures["people"], figures["inactive"]
    );
    println!(
        "  requests                      {} ({tokens} token + {pages} pages; minimum {})",
        tokens + pages,
        1 + members.div_ceil(page)
    );
    println!(
        "  read wall time                {:.0} ms (reader process {:.2} s in all)",
        figures["read_ms"].as_f64().unwrap_or(f64::NAN),
        wall.as_secs_f64()
    );
    // The bench lifts the pace to the fake's speed; a real directory is read at the default.
    let pace = DirectoryOptions::for_provider(kind)
        .requests_per_second
        .get() as usize;
    println!(
        "  {:<30}at least {:.1} s",
        format!("at the default {pace}/s"),
        (tokens + pages).saturating_sub(pace) as f64 / pace as f64
    );
    println!(
        "  peak RSS growth of the read   {:.1} MiB (RSS before {:.1} MiB, peak after {:.1} MiB)\n",
        mib("peak_after") - mib("rss_before"),
        mib("rss_before"),
        mib("peak_after")
    );
}

/// The child: reads one group and prints its figures as one JSON line.
async fn reader(args: &[String]) {
    let [kind, api_url, token_url, file, group] = args else {
        panic!("usage: {READER} google|entra API_URL TOKEN_URL CREDENTIAL_FILE GROUP");
    };
    let file = PathBuf::from(file);
    let provider = match kind.as_str() {
        "google" => Provider::Google(Google {
            credentials_file: Some(file),
            subject: "admin@example.com".into(),
            api_url: Some(api_url.clone()),
            token_url: Some(token_url.clone()),
        }),
        _ => {
            let state = DirectoryState::default();
            Provider::Entra(Entra {
                tenant_id: state.entra_tenant_id,
                client_id: state.entra_client_id,
                client_secret_file: Some(file),
                api_url: Some(api_url.clone()),
                token_url: Some(token_url.clone()),
            })
        }
    };
    let directory = Directory {
        name: "bench".into(),
        provider,
    };
    let options = DirectoryOptions {
        // The fake answers on loopback: pace as fast as it serves.
        requests_per_second: std::num::NonZeroU32::new(100_000).expect("non-zero"),
        timeout: Duration::from_secs(60),
        ..DirectoryOptions::for_provider(directory.provider.kind())
    };
    let client = DirectoryClient::with_options(&directory, options, &|_: &str| None)
        .expect("the client is set up");
    // The peak so far (start-up) must not hide the read's: reset it (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = membersync::telemetry::rss_bytes().unwrap_or_default();
    let started = Instant::now();
    let members = client.read_group(group).await.expect("the group is read");
    let read_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_after = membersync::telemetry::peak_rss_bytes().unwrap_or_default();
    println!(
        "{}",
        json!({
            "people": members.people.len(),
            "inactive": members.inactive,
            "pages": members.pages,
            "requests": client.requests(),
            "read_ms": read_ms,
            "rss_before": rss_before,
            "peak_after": peak_after,
        })
    );
}
