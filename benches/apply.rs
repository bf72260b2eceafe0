//! Benchmarks against the simulator on loopback: the real binary (release), the real client and
//! limiter, over real HTTP. Prints figures; asserts nothing about time.
//!
//! ```text
//! cargo bench --bench apply                       # throughput, sequential, scale
//! cargo bench --bench apply -- throughput         # 25 ms latency, 200/s, 1,500 changes over 20,000
//! cargo bench --bench apply -- sequential         # the same, one request at a time
//! cargo bench --bench apply -- scale              # 1,000,000 memberships, 50,000 organizations
//! cargo bench --bench apply -- pacing             # limiter model × told 1×–10× × latency
//! cargo bench --bench apply -- pacing-bucket      # one model (sliding, fixed, bucket, full-bucket)
//! cargo bench --bench apply -- rules              # all_organizations over 50,000 organizations
//! cargo bench --bench apply -- webhooks           # drift-to-repaired latency of webhook reconciles
//! cargo bench --bench apply -- directories        # 50,000-member Google and 20,000-member Graph groups
//! cargo bench --bench apply -- directory-plan     # plan of 1,000 organizations × 3 directory groups vs inline
//! cargo bench --bench apply -- daemon             # the daemon under a flood of webhook events
//! cargo bench --bench apply -- onboarding         # 1,000 new organizations, each with a domain and 5 members
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use membersync::simulator::{
    RateLimitModel, SimOptions, SimState, SimUser, Simulator, generated_state,
};
use serde_json::Value;

#[path = "apply/pacing.rs"]
mod pacing;

const KEY: &str = "sk_test_bench";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = wanted.is_empty();
    let run = |name: &str| all || wanted.iter().any(|w| w == name);
    runtime.block_on(async {
        let mut concurrent = None;
        if run("throughput") || run("sequential") {
            concurrent = Some(throughput(8).await);
        }
        if run("sequential") {
            let sequential = throughput(1).await;
            if let Some(concurrent) = concurrent {
                println!(
                    "speed-up over a sequential client: {:.1}× ({:.2} s → {:.2} s)\n",
                    sequential.as_secs_f64() / concurrent.as_secs_f64(),
                    sequential.as_secs_f64(),
                    concurrent.as_secs_f64()
                );
            }
        }
        let models = [
            ("sliding", RateLimitModel::Sliding),
            ("fixed", RateLimitModel::Fixed),
            ("bucket", RateLimitModel::Bucket),
            ("full-bucket", RateLimitModel::FullBucket),
        ];
        // `pacing` runs the three designs a real API may run; the simulator's default, the
        // kindest, only when named.
        let paced: Vec<RateLimitModel> = models
            .iter()
            .filter(|(name, model)| {
                (run("pacing") && *model != RateLimitModel::FullBucket)
                    || run(&format!("pacing-{name}"))
            })
            .map(|(_, model)| *model)
            .collect();
        if !paced.is_empty() {
            pacing::pacing(&paced).await;
        }
        if run("scale") {
            scale().await;
        }
        if run("webhooks") {
            daemon::webhooks().await;
        }
        if run("daemon") {
            daemon::flood().await;
        }
        if run("rules") {
            rules(50_000, false).await;
            rules(5_000, true).await;
        }
        if run("directories") {
            directories::run().await;
        }
        if run("directory-plan") {
            directory_plan::run().await;
        }
        if run("onboarding") {
            onboarding::run().await;
        }
    });
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("membersync-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("a bench file is written");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Output {
    wall: Duration,
    stdout: String,
    stderr: String,
}

async fn membersync(
    simulator: &Simulator,
    args: &[&str],
    file: &Path,
    env: &[(&str, &str)],
) -> Output {
    let started = Instant::now();
    // GNU time, where present, adds the process's CPU time as the last line of stderr.
    let timed = Path::new("/usr/bin/time").exists();
    let mut command = if timed {
        let mut command = tokio::process::Command::new("/usr/bin/time");
        command
            .args(["-f", "cpu %U %S"])
            .arg(env!("CARGO_BIN_EXE_membersync"));
        command
    } else {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
    };
    command
        .args(args)
        .arg("-f")
        .arg(file)
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", KEY)
        .env_remove("MEMBERSYNC_RATE_LIMIT");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("the binary runs");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "membersync {args:?} failed:\n{}",
        stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    Output {
        wall,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    }
}

/// 50 organizations × 400 members; per organization 6 role changes, 6 metadata changes,
/// 6 deletions and 12 creates: 1,500 changes over 20,000 memberships.
async fn throughput(concurrency: u32) -> Duration {
    const ORGANIZATIONS: usize = 50;
    const MEMBERS: usize = 400;
    let rate = 200;
    let state = generated_state(ORGANIZATIONS, MEMBERS);
    let existing = state.memberships.len();
    let options = SimOptions {
        latency: Duration::from_millis(25),
        rate_limit: Some(format!("{rate}/s").parse().expect("a rate")),
        fail_rate: 0.0,
        churn: Vec::new(),
        invitation_limit: None,
        webhook: None,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options)
        .await
        .expect("the simulator starts");
    let mut text = String::from("version: 1\ndefaults:\n  metadata: merge\norganizations:\n");
    for org in 0..ORGANIZATIONS {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for member in 1..MEMBERS - 6 {
            match member {
                1..=6 => text.push_str(&format!("      user_{member}: billing\n")),
                7..=12 => text.push_str(&format!(
                    "      user_{member}:\n        role: member\n        public_metadata: {{seat: {member}}}\n"
                )),
                _ => text.push_str(&format!("      user_{member}: member\n")),
            }
        }
        for new in MEMBERS..MEMBERS + 12 {
            text.push_str(&format!("      user_{new}: member\n"));
        }
    }
    let scratch = Scratch::new("throughput");
    let file = scratch.write("membersync.yaml", &text);
    let rate_flag = format!("{rate}/s");
    let concurrency_flag = concurrency.to_string();
    let output = membersync(
        &simulator,
        &[
            "apply",
            "--output",
            "json",
            "--rate-limit",
            &rate_flag,
            "--concurrency",
            &concurrency_flag,
        ],
        &file,
        &[("RUST_LOG", "warn")],
    )
    .await;
    let report: Value = serde_json::from_str(&output.stdout).expect("a JSON report");
    let changes = report["changes"].as_array().map_or(0, Vec::len);
    let applied = report["changes"].as_array().map_or(0, |c| {
        c.iter().filter(|c| c["outcome"] == "applied").count()
    });
    let requests = simulator.requests();
    let writes = requests.iter().filter(|r| r.is_write()).count();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    // The fewest requests that can do it: the instance listing (20,000 ÷ 500 pages), one
    // batched organization read and one role listing for the role checks, one write per
    // change.
    let minimum = existing.div_ceil(500) + 2 + changes;
    let lower_bound = minimum as f64 / rate as f64;
    let name = if concurrency == 1 {
        "sequential client (--concurrency 1: one request at a time, pages in order)"
    } else {
        "throughput"
    };
    println!("{name}: 25 ms latency, {rate}/s limit, --concurrency {concurrency}");
    println!("  existing memberships          {existing}");
    println!("  changes                       {changes} ({applied} applied)");
    println!(
        "  requests                      {} ({} reads, {writes} writes, {throttled} answered 429)",
        requests.len(),
        requests.len() - writes
    );
    println!("  minimum requests              {minimum}");
    println!(
        "  requests ÷ minimum            {:.2}",
        requests.len() as f64 / minimum as f64
    );
    println!(
        "  writes ÷ changes              {:.2}",
        writes as f64 / changes.max(1) as f64
    );
    println!(
        "  wall time                     {:.2} s",
        output.wall.as_secs_f64()
    );
    if let (Some(first), Some(last)) = (requests.first(), requests.last()) {
        let reads_done = requests
            .iter()
            .filter(|r| !r.is_write())
            .map(|r| r.at)
            .max()
            .unwrap_or_default();
        println!(
            "  first request, last read, last request at  {:.2} s, {:.2} s, {:.2} s",
            first.at.as_secs_f64(),
            reads_done.as_secs_f64(),
            last.at.as_secs_f64()
        );
    }
    println!("  lower bound (minimum ÷ rate)  {lower_bound:.2} s");
    println!(
        "  efficiency                    {:.2}",
        lower_bound / output.wall.as_secs_f64()
    );
    println!(
        "  peak requests in flight       {}\n",
        simulator.peak_in_flight()
    );
    output.wall
}

/// 1,000,000 memberships over 50,000 organizations (20 each, from a pool of 1,000 users);
/// the file manages half the organizations, with 1% drift among their memberships.
async fn scale() {
    const ORGANIZATIONS: usize = 50_000;
    const MEMBERS: usize = 20;
    let started = Instant::now();
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:billing"]);
    for user in 0..1_000 {
        state.users.push(SimUser {
            id: format!("user_{user}"),
            emails: vec![format!("u{user}@example.com")],
        });
    }
    let mut created = 0;
    for org in 0..ORGANIZATIONS {
        state
            .organizations
            .push(membersync::simulator::SimOrganization {
                id: format!("org_{org}"),
                slug: format!("team-{org}"),
                name: format!("Team {org}"),
                role_set_key: None,
                max_allowed_memberships: None,
                ..membersync::simulator::SimOrganization::default()
            });
        for member in 0..MEMBERS {
            created += 1;
            state
                .memberships
                .push(membersync::simulator::SimMembership {
                    id: format!("orgmem_{created}"),
                    organization_id: format!("org_{org}"),
                    user_id: format!("user_{}", (org * 7 + member * 13) % 1_000),
                    role: if member == 0 {
                        "org:admin"
                    } else {
                        "org:member"
                    }
                    .into(),
                    public_metadata: serde_json::Map::new(),
                    private_metadata: serde_json::Map::new(),
                    created_at: created as i64,
                });
        }
    }
    // Distinct users per organization: (org*7 + member*13) % 1000 repeats only after 1000/13
    // members, so 20 are distinct.
    let total = state.memberships.len();
    let simulator = Simulator::start_with(state, KEY, SimOptions::default())
        .await
        .expect("the simulator starts");

    // Half the organizations; 1% of their memberships drift: every 100th member changes role.
    let mut text = String::with_capacity(16 << 20);
    text.push_str("version: 1\norganizations:\n");
    let mut managed = 0;
    let mut drift = 0;
    for org in (0..ORGANIZATIONS).step_by(2) {
        text.push_str(&format!("  org_{org}:\n    members:\n"));
        for member in 0..MEMBERS {
            let user = (org * 7 + member * 13) % 1_000;
            managed += 1;
            let role = if member == 0 {
                "admin"
            } else if managed % 100 == 0 {
                drift += 1;
                "billing"
            } else {
                "member"
            };
            text.push_str(&format!("      user_{user}: {role}\n"));
        }
    }
    let scratch = Scratch::new("scale");
    let file = scratch.write("membersync.yaml", &text);
    let setup = started.elapsed();

    let output = membersync(
        &simulator,
        &["plan", "--rate-limit", "100000/s", "--concurrency", "16"],
        &file,
        &[
            ("RUST_LOG", "membersync=debug"),
            ("MEMBERSYNC_LOG_FORMAT", "json"),
        ],
    )
    .await;
    let field = |message: &str, name: &str| -> Option<f64> {
        output
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == message)
            .and_then(|v| v[name].as_f64())
    };
    let diff_cpu = field("planned (resolve and diff)", "cpu_ms").unwrap_or(f64::NAN);
    let diff_wall = field("planned (resolve and diff)", "wall_ms").unwrap_or(f64::NAN);
    let peak = field("plan printed", "peak_rss_bytes").unwrap_or(f64::NAN);
    for phase in [
        "memory after loading the desired state",
        "memory after reading live state",
        "memory after planning",
    ] {
        let mib = |name| field(phase, name).unwrap_or(f64::NAN) / (1024.0 * 1024.0);
        println!(
            "  {phase:<46} RSS {:.0} MiB, peak {:.0} MiB",
            mib("rss_bytes"),
            mib("peak_rss_bytes")
        );
    }
    let requests = simulator.requests().len();
    let summary = output.stdout.lines().last().unwrap_or_default().to_owned();
    let cpu = output
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse::<f64>().ok())
                .sum::<f64>()
        });
    println!("scale: {total} memberships over {ORGANIZATIONS} organizations");
    println!(
        "  managed                       {} organizations, {managed} memberships",
        ORGANIZATIONS / 2
    );
    println!("  drift                         {drift} role changes; plan: {summary}");
    println!(
        "  desired file                  {:.1} MiB",
        text.len() as f64 / (1024.0 * 1024.0)
    );
    println!("  requests                      {requests}");
    println!(
        "  plan wall time                {:.2} s (setup {:.1} s not counted)",
        output.wall.as_secs_f64(),
        setup.as_secs_f64()
    );
    if let Some(cpu) = cpu {
        println!("  membersync CPU time           {cpu:.2} s (user + system, whole run)");
    }
    println!("  resolve + diff                {diff_cpu:.0} ms CPU ({diff_wall:.0} ms wall)");
    println!(
        "  peak RSS                      {:.1} MiB",
        peak / (1024.0 * 1024.0)
    );
    println!(
        "  bytes per managed membership  {:.0}",
        peak / managed as f64
    );
}

/// `all_organizations` with 3 staff members over `organizations` organizations that have one
/// admin each (the file names none of them): every organization is read, and 3 creates are
/// planned in each. `apply` too when asked (the simulator's writes scan its memberships, so
/// this stays at a size it serves quickly).
async fn rules(organizations: usize, apply: bool) {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:support"]);
    for user in 0..1_003 {
        state.users.push(SimUser {
            id: format!("user_{user}"),
            emails: vec![format!("u{user}@example.com")],
        });
    }
    for org in 0..organizations {
        state
            .organizations
            .push(membersync::simulator::SimOrganization {
                id: format!("org_{org}"),
                slug: format!("customer-{org}"),
                name: format!("Customer {org}"),
                role_set_key: None,
                max_allowed_memberships: None,
                ..membersync::simulator::SimOrganization::default()
            });
        state
            .memberships
            .push(membersync::simulator::SimMembership {
                id: format!("orgmem_{org}"),
                organization_id: format!("org_{org}"),
                user_id: format!("user_{}", org % 1_000),
                role: "org:admin".into(),
                public_metadata: serde_json::Map::new(),
                private_metadata: serde_json::Map::new(),
                created_at: org as i64,
            });
    }
    let simulator = Simulator::start_with(state, KEY, SimOptions::default())
        .await
        .expect("the simulator starts");
    let scratch = Scratch::new("rules");
    let file = scratch.write(
        "membersync.yaml",
        "version: 1\ngroups:\n  support: [user_1000, user_1001]\nall_organizations:\n  members:\n    group:support: support\n    user_1002: {role: member, public_metadata: {staff: true}}\norganizations: {}\n",
    );
    let env = [
        ("RUST_LOG", "membersync=debug"),
        ("MEMBERSYNC_LOG_FORMAT", "json"),
    ];
    let peak_of = |output: &Output| -> f64 {
        output
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                v["peak_rss_mib"]
                    .as_f64()
                    .or(v["peak_rss_bytes"].as_f64().map(|b| b / 1048576.0))
            })
            .fold(f64::NAN, f64::max)
    };
    let plan = membersync(
        &simulator,
        &["plan", "--rate-limit", "100000/s", "--concurrency", "16"],
        &file,
        &env,
    )
    .await;
    let requests = simulator.requests().len();
    println!("rules: all_organizations with 3 members over {organizations} organizations");
    println!(
        "  plan                          {}",
        plan.stdout.lines().last().unwrap_or_default()
    );
    println!("  plan requests                 {requests}");
    println!(
        "  plan wall time                {:.2} s, peak RSS {:.0} MiB",
        plan.wall.as_secs_f64(),
        peak_of(&plan)
    );
    if !apply {
        println!();
        return;
    }
    simulator.clear_requests();
    let rate = "2000/s";
    let applied = membersync(
        &simulator,
        &["apply", "--rate-limit", rate, "--concurrency", "16"],
        &file,
        &env,
    )
    .await;
    let writes = simulator.requests().iter().filter(|r| r.is_write()).count();
    println!(
        "  apply at {rate}                {writes} writes in {:.1} s ({:.0}/s), {} requests; peak RSS {:.0} MiB",
        applied.wall.as_secs_f64(),
        writes as f64 / applied.wall.as_secs_f64(),
        simulator.requests().len(),
        peak_of(&applied)
    );
    simulator.clear_requests();
    let again = membersync(&simulator, &["apply", "--rate-limit", rate], &file, &env).await;
    let writes = simulator.requests().iter().filter(|r| r.is_write()).count();
    println!(
        "  second apply                  {writes} writes, {:.2} s\n",
        again.wall.as_secs_f64()
    );
}

#[path = "apply/daemon.rs"]
mod daemon;
#[path = "apply/directories.rs"]
mod directories;
#[path = "apply/directory_plan.rs"]
mod directory_plan;
#[path = "apply/onboarding.rs"]
mod onboarding;
