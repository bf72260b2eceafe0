//! `membersync demo`: the main job end to end with no Clerk account. It starts the simulator
//! on a free loopback port, plans, applies over real HTTP through the real client, limiter and
//! retries, and shows that a second plan is empty.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clerk::{ClientConfig, RateLimit, SecretKey};
use crate::cli::{DemoArgs, FileArgs, OutputFormat};
use crate::desired::{DesiredState, Provider};
use crate::plan::{self, Format, MaxDeletes, Stage};
use crate::simulator::directories::{DirectoryState, FakeDirectories, UserStatus};
use crate::simulator::{SimOptions, Simulator};

use super::execute::{ApplyOptions, run_plan};
use super::{CommandError, CommandResult, prepare, simulate};

const STATE: &str = "config/demo/state.json";
const DESIRED: &str = "config/demo/membersync.yaml";
const BUILT_IN_STATE: &str = include_str!("../../config/demo/state.json");
const BUILT_IN_DESIRED: &str = include_str!("../../config/demo/membersync.yaml");

pub async fn run(args: &DemoArgs) -> CommandResult {
    // Outside the repository, the built-in copies of the demo files are written to a
    // temporary directory, so that messages still name a real file.
    let scratch = std::env::temp_dir().join(format!("membersync-demo-{}", std::process::id()));
    let state_path = pick(args.state.as_deref(), STATE, BUILT_IN_STATE, &scratch)?;
    let desired_path = pick(args.file.as_deref(), DESIRED, BUILT_IN_DESIRED, &scratch)?;
    let result = demo(&state_path, &desired_path, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn demo(state_path: &Path, desired_path: &Path, scratch: &Path) -> CommandResult {
    let state = simulate::read_state(state_path).map_err(CommandError::invalid)?;
    let mut desired = prepare::load(&FileArgs {
        files: vec![desired_path.to_path_buf()],
    })?;
    // A throwaway key: the simulator and the client share it; it is never shown.
    let key = format!("sk_test_demo_{:032x}", rand::random::<u128>());
    let counts = (
        state.organizations.len(),
        state.users.len(),
        state.memberships.len(),
    );
    let options = SimOptions {
        latency: Duration::from_millis(20),
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, &key, options)
        .await
        .map_err(|error| CommandError::failure(format!("cannot start the simulator: {error}")))?;
    println!("membersync demo: no Clerk account needed.");
    println!(
        "A Clerk Backend API simulator serves {} ({} organizations, {} users, {} memberships from {}).",
        simulator.api_url(),
        counts.0,
        counts.1,
        counts.2,
        state_path.display()
    );
    println!("membersync talks to it over HTTP with its real client, rate limiter and retries.");
    // Kept alive to the end of the demo.
    let _directory = serve_directories(&mut desired, scratch).await?;
    println!();

    // The client as `apply` sets it up by default for a test key.
    let config = ClientConfig::new(simulator.api_url(), RateLimit::for_key(false), 8);
    let client = prepare::client_for(config, SecretKey::new(key), None)?;
    let file = desired_path.display();
    println!("$ membersync plan -f {file}");
    let planned = crate::sync::plan(&client, desired.clone(), &Default::default()).await?;
    print!("{}", text(&planned.plan));
    for refusal in plan::refusals(&planned.plan, MaxDeletes::default()) {
        println!("apply would refuse this plan: {}", refusal.reason);
    }

    println!("\n$ membersync apply -f {file}");
    let options = ApplyOptions {
        output: OutputFormat::Text,
        max_deletes: MaxDeletes::default(),
        force: false,
        show_plan: false,
        quiet: false,
        private: plan::Private::Hidden,
    };
    let mut totals = super::execute::Totals::default();
    let applied = run_plan(&client, &planned.plan, options, &mut totals).await;

    println!("\n$ membersync plan -f {file}   # again: nothing left to do");
    let again = crate::sync::plan(&client, desired, &Default::default()).await?;
    print!("{}", text(&again.plan));
    let stats = client.snapshot();
    println!(
        "\n{} requests in all ({} writes, {} retries). Organizations the file does not name got only what all_organizations adds.",
        stats.sent, stats.writes, stats.retries
    );
    println!(
        "Next: `membersync export` bootstraps a file from your instance; `membersync simulate --state {}` serves this simulator for your own rehearsals.",
        state_path.display()
    );
    let applied = applied?;
    if again.plan.is_empty() {
        Ok(applied)
    } else {
        Err(CommandError::failure(
            "the second plan is not empty: the demo did not converge",
        ))
    }
}

/// Serves the file's Okta directories from a fake Okta on a loopback port (the support team:
/// two active people, one suspended who left), and points them at it, with its token in a
/// file of `scratch`. `None` when the file declares no directory.
async fn serve_directories(
    desired: &mut DesiredState,
    scratch: &Path,
) -> Result<Option<FakeDirectories>, CommandError> {
    if desired.directories.is_empty() {
        return Ok(None);
    }
    let mut state = DirectoryState::default();
    state
        .user("00usam", "sam@vendor.test", UserStatus::Active)
        .user("00utess", "tess@vendor.test", UserStatus::Active)
        .user("00uvic", "vic@vendor.test", UserStatus::Suspended)
        .group(
            "00gsupport",
            "Support",
            "support@vendor.test",
            &["00usam", "00utess", "00uvic"],
            &[],
        );
    let token_file = scratch.join("okta-token");
    std::fs::create_dir_all(scratch)
        .and_then(|()| std::fs::write(&token_file, &state.okta_token))
        .map_err(|error| {
            CommandError::failure(format!("cannot write {}: {error}", token_file.display()))
        })?;
    let fake = FakeDirectories::start(state).await.map_err(|error| {
        CommandError::failure(format!("cannot start the fake directory: {error}"))
    })?;
    for directory in &mut desired.directories {
        if let Provider::Okta(okta) = &mut directory.provider {
            okta.url = fake.okta_url();
            okta.token_file = Some(token_file.clone());
            println!(
                "A fake Okta at {} serves the directory `{}` (group Support: sam and tess active, vic suspended).",
                okta.url, directory.name
            );
        }
    }
    Ok(Some(fake))
}

/// The path given, else the repository's file, else the built-in copy written to `scratch`.
fn pick(
    given: Option<&Path>,
    default: &str,
    built_in: &str,
    scratch: &Path,
) -> Result<PathBuf, CommandError> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let default = PathBuf::from(default);
    if default.exists() {
        return Ok(default);
    }
    let name = default.file_name().unwrap_or_default();
    let path = scratch.join(name);
    std::fs::create_dir_all(scratch)
        .and_then(|()| std::fs::write(&path, built_in))
        .map_err(|error| {
            CommandError::failure(format!("cannot write {}: {error}", path.display()))
        })?;
    Ok(path)
}

/// The text plan, private values hidden.
fn text(plan: &plan::Plan) -> String {
    plan::render(
        Format::Text,
        plan,
        &[],
        Stage::Planned,
        plan::Private::Hidden,
    )
}
