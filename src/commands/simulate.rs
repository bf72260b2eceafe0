//! `membersync simulate`: serve the Clerk Backend API simulator on a local address, seeded from
//! a JSON state file, until Ctrl-C or SIGTERM.

use crate::clerk::SecretKey;
use crate::cli::SimulateArgs;
use crate::simulator::directories::{DirectoryState, FakeDirectories};
use crate::simulator::{SimOptions, SimState, Simulator};

use super::{CommandError, CommandResult, Finished};

/// The key the simulator accepts when no key is configured (it guards nothing real).
pub const SIMULATOR_KEY: &str = "sk_test_simulator";

pub async fn run(args: &SimulateArgs) -> CommandResult {
    let state = read_state(&args.state).map_err(CommandError::invalid)?;
    // Accept the key membersync itself would send, so that the same environment works for
    // both; never print it. Without one, accept a fixed, public test key.
    let (key, announce) = match SecretKey::from_env_or_file(args.secret_key_file.as_deref()) {
        Ok(key) => (
            key.expose().to_owned(),
            "the secret key from CLERK_SECRET_KEY / --secret-key-file".to_owned(),
        ),
        Err(_) => (
            SIMULATOR_KEY.to_owned(),
            format!("CLERK_SECRET_KEY={SIMULATOR_KEY}"),
        ),
    };
    let webhook = match (&args.webhook_url, &args.webhook_secret_file) {
        (Some(url), Some(path)) => {
            let secret = crate::webhook::WebhookSecret::from_env_or_file(Some(path))
                .map_err(|error| CommandError::invalid(error.to_string()))?
                .ok_or_else(|| CommandError::invalid("the webhook secret file is empty"))?;
            Some(crate::simulator::SimWebhook {
                url: url.clone(),
                secret,
            })
        }
        _ => None,
    };
    let options = SimOptions {
        latency: std::time::Duration::from_millis(args.latency),
        rate_limit: args.rate_limit,
        rate_limit_model: args.rate_limit_model,
        fail_rate: args.fail_rate,
        fail_after_rate: args.fail_after_rate,
        drop_rate: args.drop_rate,
        churn: args.churn.clone(),
        invitation_limit: args.invitation_limit,
        webhook,
    };
    let counts = (
        state.organizations.len(),
        state.users.len(),
        state.memberships.len(),
    );
    let simulator = Simulator::start_on(args.listen, state, &key, options)
        .await
        .map_err(|error| {
            CommandError::failure(format!("cannot listen on {}: {error}", args.listen))
        })?;
    println!("Clerk simulator serving {}", simulator.api_url());
    println!(
        "  {} organizations, {} users, {} memberships from {}",
        counts.0,
        counts.1,
        counts.2,
        args.state.display()
    );
    println!("  accepts {announce}");
    println!(
        "  try: CLERK_API_URL={} membersync plan -f membersync.yaml",
        simulator.api_url()
    );
    let _directories = match &args.directories {
        Some(path) => Some(serve_directories(path, args).await?),
        None => None,
    };
    crate::daemon::shutdown_signal().await;
    if let Some(path) = &args.save {
        let text = serde_json::to_string_pretty(&simulator.state()).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|error| {
            CommandError::failure(format!("cannot write {}: {error}", path.display()))
        })?;
        super::report_info(format_args!("Saved the final state to {}.", path.display()));
    }
    Ok(Finished::Done)
}

/// Serves fake directories with the users and groups of the file at `path`, and says where
/// and with which credentials (fake ones, for rehearsals) a file's `directories` reach them.
async fn serve_directories(
    path: &std::path::Path,
    args: &SimulateArgs,
) -> Result<FakeDirectories, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CommandError::invalid(format!("cannot read {}: {error}", path.display()))
    })?;
    let state = DirectoryState::from_json(&text)
        .map_err(|error| CommandError::invalid(format!("{}: {error}", path.display())))?;
    let (users, groups) = (state.users.len(), state.groups.len());
    let subject = state.google_admins.first().cloned().unwrap_or_default();
    let fake = FakeDirectories::start_on(args.directories_listen, state)
        .await
        .map_err(|error| {
            let address = args.directories_listen;
            CommandError::failure(format!("cannot listen on {address}: {error}"))
        })?;
    println!(
        "Fake directories serving {}\n  {users} users, {groups} groups from {}",
        fake.base_url(),
        path.display()
    );
    println!(
        "  okta: url {} (token: the file's okta_token)",
        fake.okta_url()
    );
    println!(
        "  entra: api_url {}, token_url {} (client: the file's entra_client_id and entra_client_secret)",
        fake.graph_api_url(),
        fake.entra_token_url()
    );
    println!("  google: api_url {}", fake.google_api_url());
    if let Some(out) = &args.google_key_out {
        let key = fake.google_key("membersync@rehearsal.iam.gserviceaccount.com");
        write_private(out, &key)?;
        println!(
            "  google: service-account key in {} (subject {subject})",
            out.display()
        );
    }
    Ok(fake)
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), CommandError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|error| CommandError::failure(format!("cannot write {}: {error}", path.display())))
}

/// Reads a simulator state file.
pub fn read_state(path: &std::path::Path) -> Result<SimState, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse_state(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// Parses a simulator state (JSON), with the line and column of a mistake.
pub fn parse_state(text: &str) -> Result<SimState, String> {
    serde_json::from_str(text).map_err(|error| {
        format!(
            "line {} column {}: not a simulator state: {error}",
            error.line(),
            error.column()
        )
    })
}
