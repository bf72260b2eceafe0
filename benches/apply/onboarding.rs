//! `cargo bench --bench apply -- onboarding`: 1,000 new customer organizations, each created
//! with its fields, one domain and 5 members (7,000 writes) at a 200/s limit, 25 ms latency,
//! `--concurrency 8`. Each organization's members follow its own creation, so the run stays
//! at the limit instead of creating every organization before any member. Prints requests
//! against the minimum (one slug lookup per organization, one write per change), wall time
//! and efficiency (the minimum at the limit ÷ wall time); asserts nothing about time.

use std::time::Duration;

use membersync::simulator::{SimOptions, SimState, SimUser, Simulator};
use serde_json::Value;

use super::{KEY, Scratch, membersync};

const ORGANIZATIONS: usize = 1_000;
const MEMBERS: usize = 5;

pub async fn run() {
    let rate = 200;
    let mut state = SimState::with_roles(&["org:admin", "org:member"]);
    for user in 0..ORGANIZATIONS * MEMBERS {
        state.users.push(SimUser {
            id: format!("user_{user}"),
            emails: vec![],
        });
    }
    let options = SimOptions {
        latency: Duration::from_millis(25),
        rate_limit: Some(format!("{rate}/s").parse().expect("a rate")),
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options)
        .await
        .expect("the simulator starts");
    let mut text = String::from("version: 1\norganizations:\n");
    for org in 0..ORGANIZATIONS {
        text.push_str(&format!(
            "  customer-{org}:\n    name: Customer {org}\n    max_allowed_memberships: 50\n    private_metadata: {{crm_id: {org}}}\n    domains:\n      customer{org}.example: manual_invitation\n    members:\n"
        ));
        for member in 0..MEMBERS {
            let role = if member == 0 { "admin" } else { "member" };
            text.push_str(&format!("      user_{}: {role}\n", org * MEMBERS + member));
        }
    }
    let scratch = Scratch::new("onboarding");
    let file = scratch.write("membersync.yaml", &text);
    let rate_flag = format!("{rate}/s");
    let args = [
        "apply",
        "--output",
        "json",
        "--rate-limit",
        &rate_flag,
        "--concurrency",
        "8",
    ];
    let output = membersync(&simulator, &args, &file, &[("RUST_LOG", "warn")]).await;
    figures(&simulator, &output.stdout, output.wall, rate);
    simulator.clear_requests();
    let again = membersync(
        &simulator,
        &["apply", "--rate-limit", &rate_flag],
        &file,
        &[],
    )
    .await;
    let writes = simulator.requests().iter().filter(|r| r.is_write()).count();
    println!(
        "  second apply                  {writes} writes, {:.2} s\n",
        again.wall.as_secs_f64()
    );
}

/// Prints the first apply's figures: changes, requests against the minimum, wall time,
/// efficiency.
fn figures(simulator: &Simulator, report: &str, wall: Duration, rate: usize) {
    let report: Value = serde_json::from_str(report).expect("a JSON report");
    let changes = report["changes"].as_array().map_or(0, Vec::len);
    let applied = report["changes"].as_array().map_or(0, |c| {
        c.iter().filter(|c| c["outcome"] == "applied").count()
    });
    let requests = simulator.requests();
    let writes = requests.iter().filter(|r| r.is_write()).count();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    // One lookup of each slug (it is free: the organization is created) and one write per
    // change.
    let minimum = ORGANIZATIONS + changes;
    let lower_bound = minimum as f64 / rate as f64;
    println!(
        "onboarding: {ORGANIZATIONS} new organizations × ({MEMBERS} members + 1 domain), 25 ms latency, {rate}/s limit, --concurrency 8"
    );
    println!("  changes                       {changes} ({applied} applied)");
    println!(
        "  requests                      {} ({} reads, {writes} writes, {throttled} answered 429)",
        requests.len(),
        requests.len() - writes
    );
    println!("  minimum requests              {minimum}");
    println!(
        "  wall time                     {:.2} s",
        wall.as_secs_f64()
    );
    println!("  lower bound (minimum ÷ rate)  {lower_bound:.2} s");
    println!(
        "  efficiency                    {:.2}",
        lower_bound / wall.as_secs_f64()
    );
}
