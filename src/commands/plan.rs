//! `membersync plan` (and `apply --dry-run`): read live state, print the plan, write nothing.

use crate::cli::{GlobalArgs, OutputFormat, PlanArgs};
use crate::plan::{self, render_json, render_text};

use super::{Exit, live};

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> Exit {
    let desired = match live::load(&args.files) {
        Ok(desired) => desired,
        Err(exit) => return exit,
    };
    let client = match live::client(global) {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let computed = match live::compute(client, &desired).await {
        Ok(computed) => computed,
        Err(exit) => return exit,
    };
    let stats = &computed.client.stats;
    tracing::info!(
        requests = stats.sent.load(std::sync::atomic::Ordering::Relaxed),
        retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        "read live state"
    );
    let refusals = plan::check(&computed.plan, args.max_deletes);
    match args.output {
        OutputFormat::Json => println!("{}", render_json(&computed.plan, &refusals, None)),
        OutputFormat::Text => {
            print!("{}", render_text(&computed.plan));
            for refusal in &refusals {
                println!(
                    "apply would refuse this plan: {} (--force overrides)",
                    refusal.reason
                );
            }
        }
    }
    for missing in &computed.missing {
        eprintln!(
            "error: organization `{missing}` does not exist in this Clerk instance; nothing is planned for it"
        );
    }
    if !computed.missing.is_empty() {
        Exit::Failure
    } else if args.detailed_exitcode && !computed.plan.is_empty() {
        Exit::Changes
    } else {
        Exit::Success
    }
}
