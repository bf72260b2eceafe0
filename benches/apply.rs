//! Apply throughput against the simulator on loopback: the real binary, the real client and
//! limiter, over real HTTP. Prints figures; asserts nothing about time.
//!
//! `cargo bench --bench apply` (add `-- --changes 1000 --latency-ms 25 --rate 200` to vary).

use std::time::{Duration, Instant};

use membersync::simulator::{SimOptions, SimUser, Simulator, generated_state};

const KEY: &str = "sk_test_bench";

struct Workload {
    organizations: usize,
    members: usize,
    /// Changes per organization: 1/5 role updates, 1/5 metadata, 1/5 deletes, 2/5 creates.
    changes_per_organization: usize,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let changes = arg("--changes", 1000) as usize;
    let latency = Duration::from_millis(arg("--latency-ms", 25));
    let rate = arg("--rate", 200);
    let workload = Workload {
        organizations: 40,
        members: 50,
        changes_per_organization: changes.div_ceil(40),
    };
    let per = workload.changes_per_organization / 5;
    let mut state = generated_state(workload.organizations, workload.members);
    for n in 0..per * 2 {
        state.users.push(SimUser {
            id: format!("user_new{n}"),
            emails: vec![],
        });
    }
    let existing = state.memberships.len();
    let options = SimOptions {
        latency,
        rate_limit: Some(format!("{rate}/s").parse().expect("a rate")),
        fail_rate: 0.0,
    };
    let simulator = Simulator::start_with(state, KEY, options)
        .await
        .expect("the simulator starts");

    // The desired file: each organization keeps members 0..(members - per), changes roles of
    // the first `per` non-admins, metadata of the next `per`, deletes the last `per`, and
    // creates `2 * per` new members.
    let mut text = String::from("version: 1\ndefaults:\n  metadata: merge\norganizations:\n");
    for org in 0..workload.organizations {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for member in 1..workload.members - per {
            if member <= per {
                text.push_str(&format!("      user_{member}: billing\n"));
            } else if member <= 2 * per {
                text.push_str(&format!(
                    "      user_{member}:\n        role: member\n        public_metadata: {{seat: {member}}}\n"
                ));
            } else {
                text.push_str(&format!("      user_{member}: member\n"));
            }
        }
        for n in 0..per * 2 {
            text.push_str(&format!("      user_new{n}: member\n"));
        }
    }
    let dir = std::env::temp_dir().join(format!("membersync-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("membersync.yaml");
    std::fs::write(&file, text).expect("the desired file is written");

    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .args(["apply", "-f"])
        .arg(&file)
        .args(["--rate-limit", &format!("{rate}/s"), "--output", "json"])
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", KEY)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    let wall = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let planned = report["changes"].as_array().map_or(0, Vec::len);
    let requests = simulator.requests();
    let writes = requests.iter().filter(|r| r.is_write()).count();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let lower_bound = requests.len() as f64 / rate as f64;

    println!("apply throughput (simulator: {latency:?} latency, {rate}/s limit)");
    println!("  existing memberships     {existing}");
    println!("  changes                  {planned}");
    println!(
        "  requests                 {} ({} reads, {writes} writes, {throttled} answered 429)",
        requests.len(),
        requests.len() - writes
    );
    println!(
        "  writes / changes         {:.2}",
        writes as f64 / planned.max(1) as f64
    );
    println!("  wall time                {:.2} s", wall.as_secs_f64());
    println!("  lower bound (req ÷ rate) {lower_bound:.2} s");
    println!(
        "  efficiency               {:.2}",
        lower_bound / wall.as_secs_f64()
    );
    println!("  peak requests in flight  {}", simulator.peak_in_flight());
}
