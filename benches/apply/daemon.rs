//! The daemon's benches: drift-to-repaired latency of webhook reconciles one event at a time
//! (`webhooks`), and the daemon under a flood of events (`daemon`): requests per cycle, the
//! peak per second, and the repair latency while cycles and reconciles share one pacer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use membersync::simulator::{
    RateLimitModel, SimMembership, SimOptions, Simulator, generated_state,
};
use membersync::webhook::WebhookSecret;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::{KEY, Scratch};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A daemon running the release binary, ready, with its log lines kept.
struct Daemon {
    child: tokio::process::Child,
    address: String,
    lines: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(simulator: &Simulator, file: &Path, secret: &Path, args: &[&str]) -> Daemon {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
            .args(["daemon", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .arg("-f")
            .arg(file)
            .arg("--webhook-secret-file")
            .arg(secret)
            .env("CLERK_API_URL", simulator.api_url())
            .env("CLERK_SECRET_KEY", KEY)
            .env("RUST_LOG", "membersync=info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the daemon starts");
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = stderr.next_line().await.unwrap().expect("the daemon runs");
            if let Some(address) = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["address"].as_str().map(str::to_owned))
            {
                break address;
            }
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let daemon = Daemon {
            child,
            address,
            lines,
            http: reqwest::Client::new(),
        };
        while daemon
            .http
            .get(format!("http://{}/readyz", daemon.address))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
            != 200
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        daemon
    }

    /// Delivers a signed `organizationMembership.created` event of `org`.
    async fn event(&self, id: &str, org: &str) {
        let body = serde_json::json!({"type": "organizationMembership.created",
            "data": {"organization": {"id": org}, "public_user_data": {"user_id": "user_70"}}})
        .to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signer = WebhookSecret::parse(SECRET).unwrap();
        self.http
            .post(format!("http://{}/webhooks/clerk", self.address))
            .header("svix-id", id)
            .header("svix-timestamp", now.to_string())
            .header("svix-signature", signer.sign(id, now, body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("delivered");
    }

    fn logged(&self, text: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|line| line.contains(text)).count()
    }
}

/// 50 organizations of 40 members, the file that keeps them so, and its secret.
fn fifty_organizations(scratch: &Scratch) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut text = String::from("version: 1\norganizations:\n");
    for org in 0..50 {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for member in 1..40 {
            text.push_str(&format!("      user_{member}: member\n"));
        }
    }
    (
        scratch.write("membersync.yaml", &text),
        scratch.write("secret", SECRET),
    )
}

/// Someone makes a user an admin of `org` in the dashboard: a membership `id`.
fn drift(simulator: &Simulator, org: &str, user: &str, id: &str) {
    let (org, user, id) = (org.to_owned(), user.to_owned(), id.to_owned());
    simulator.mutate(move |state| {
        state.memberships.push(SimMembership {
            id,
            organization_id: org,
            user_id: user,
            role: "org:admin".into(),
            public_metadata: serde_json::Map::new(),
            private_metadata: serde_json::Map::new(),
            created_at: 1,
        })
    });
}

/// The most of these arrival times within any one second.
fn peak_per_second(mut at: Vec<Duration>) -> usize {
    at.sort();
    let (mut peak, mut first) = (0, 0);
    for last in 0..at.len() {
        while at[last] - at[first] >= Duration::from_secs(1) {
            first += 1;
        }
        peak = peak.max(last - first + 1);
    }
    peak
}

fn percentile(sorted: &[Duration], share: f64) -> f64 {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Drift-to-repaired latency of webhook reconciles: 100 times, someone adds an admin in the
/// dashboard (the simulator is changed directly), the signed event is delivered to the
/// daemon (`--interval 1h`), and the time until the membership is gone is measured.
pub async fn webhooks() {
    let simulator = Simulator::start_with(generated_state(50, 40), KEY, SimOptions::default())
        .await
        .expect("the simulator starts");
    let scratch = Scratch::new("webhooks");
    let (file, secret) = fifty_organizations(&scratch);
    let daemon = Daemon::start(
        &simulator,
        &file,
        &secret,
        &["--interval", "1h", "--rate-limit", "100/s"],
    )
    .await;
    let mut latencies = Vec::with_capacity(100);
    simulator.clear_requests();
    for n in 0..100 {
        let org = format!("org_{}", n % 50);
        let id = format!("orgmem_drift{n}");
        drift(&simulator, &org, "user_70", &id);
        let started = Instant::now();
        daemon.event(&format!("msg_bench{n}"), &org).await;
        while simulator.state().memberships.iter().any(|m| m.id == id) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let requests = simulator.requests().len();
    println!("webhooks: 100 events, each a drift in one of 50 organizations of 40 members");
    println!(
        "  drift to repaired             p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  requests per event            {:.1} ({requests} in all)\n",
        requests as f64 / 100.0
    );
    drop(daemon.child);
}

/// The daemon under a flood: 50 organizations of 40, Clerk allowing 100 requests a second
/// (sliding window) and answering in 25 ms, the daemon told `--rate-limit 100/s` and
/// `--interval 5s`. For 30 s, 100 signed events a second arrive for organizations 0–24, and
/// every 2 s someone makes a user admin in one of them (a cycle that reads while it lands sees
/// another writer's churn and reads organization by organization). Organizations 25–49 get no
/// event: a read of one of them is a cycle reading organizations one by one.
pub async fn flood() {
    const SECONDS: u64 = 30;
    let options = SimOptions {
        latency: Duration::from_millis(25),
        rate_limit: Some("100/s".parse().unwrap()),
        rate_limit_model: RateLimitModel::Sliding,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(generated_state(50, 40), KEY, options)
        .await
        .expect("the simulator starts");
    // The simulator's clock (its request log), as near as the bench can tell.
    let simulator_started = Instant::now();
    let scratch = Scratch::new("daemon");
    let (file, secret) = fifty_organizations(&scratch);
    let daemon = Daemon::start(
        &simulator,
        &file,
        &secret,
        &["--interval", "5s", "--rate-limit", "100/s"],
    )
    .await;
    simulator.clear_requests();
    let moved_before = daemon.logged("reading the managed organizations one by one");
    // (membership ID, when it was made, how long until it was gone)
    let drifts: Mutex<Vec<(String, Instant, Option<Duration>)>> = Mutex::default();
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let started = Instant::now();
    let send = async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for n in 0..SECONDS * 100 {
            tick.tick().await;
            let org = format!("org_{}", n % 25);
            if n % 200 == 0 {
                let id = format!("orgmem_flood{n}");
                drift(
                    &simulator,
                    &org,
                    &format!("user_{}", 40 + (n / 200) % 40),
                    &id,
                );
                drifts.lock().unwrap().push((id, Instant::now(), None));
            }
            daemon.event(&format!("msg_flood{n}"), &org).await;
        }
        flooding.store(false, std::sync::atomic::Ordering::SeqCst);
        started.elapsed()
    };
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(SECONDS + 60);
        loop {
            let present: std::collections::HashSet<String> = simulator
                .state()
                .memberships
                .into_iter()
                .map(|m| m.id)
                .collect();
            let done = {
                let mut drifts = drifts.lock().unwrap();
                for (id, at, repaired) in drifts.iter_mut() {
                    if repaired.is_none() && !present.contains(id.as_str()) {
                        *repaired = Some(at.elapsed());
                    }
                }
                drifts.iter().all(|(_, _, repaired)| repaired.is_some())
            };
            if (done && !flooding.load(std::sync::atomic::Ordering::SeqCst))
                || Instant::now() > deadline
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (flood, ()) = tokio::join!(send, watch);
    let drifts = drifts.into_inner().unwrap();
    let drifted_at: Vec<Duration> = drifts
        .iter()
        .map(|(_, at, _)| at.duration_since(simulator_started))
        .collect();
    report_flood(
        &simulator,
        &daemon,
        &drifts,
        &drifted_at,
        flood,
        moved_before,
    );
    drop(daemon.child);
}

fn report_flood(
    simulator: &Simulator,
    daemon: &Daemon,
    drifts: &[(String, Instant, Option<Duration>)],
    drifted_at: &[Duration],
    flood: Duration,
    moved_before: usize,
) {
    let requests = simulator.requests();
    // Listings during which someone else's drift landed: from a first page to the next last.
    let mut windows: Vec<(Duration, Duration)> = Vec::new();
    for request in requests
        .iter()
        .filter(|r| r.path == "/v1/organization_memberships")
    {
        if request.query.contains("offset=0") {
            windows.push((request.at, request.at));
        } else if let Some(window) = windows.last_mut() {
            window.1 = window.1.max(request.at);
        }
    }
    let crossed = windows
        .iter()
        .filter(|(start, end)| drifted_at.iter().any(|at| at >= start && at <= end))
        .count();
    let instance =
        |r: &&membersync::simulator::LoggedRequest| r.path == "/v1/organization_memberships";
    let cycles = requests
        .iter()
        .filter(instance)
        .filter(|r| r.query.contains("offset=0"))
        .count();
    let pages = requests.iter().filter(instance).count();
    let quiet_reads = requests
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path
                    .strip_prefix("/v1/organizations/org_")
                    .and_then(|rest| rest.strip_suffix("/memberships"))
                    .and_then(|org| org.parse::<usize>().ok())
                    .is_some_and(|org| org >= 25)
        })
        .count();
    let peak = peak_per_second(requests.iter().map(|r| r.at).collect());
    let peak_accepted = peak_per_second(
        requests
            .iter()
            .filter(|r| r.status != 429)
            .map(|r| r.at)
            .collect(),
    );
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let writes = requests.iter().filter(|r| r.is_write()).count();
    let mut latencies: Vec<Duration> = drifts.iter().filter_map(|(_, _, r)| *r).collect();
    latencies.sort();
    let moved = daemon.logged("reading the managed organizations one by one") - moved_before;
    println!(
        "daemon: {} s of 100 events/s over 25 of 50 organizations (40 members each), a drift every 2 s; Clerk allows 100/s (sliding), 25 ms; --rate-limit 100/s, --interval 5s",
        flood.as_secs()
    );
    println!(
        "  cycles                        {cycles}: {} held still, {moved} moved ({crossed} listings had another writer's drift land mid-listing); {pages} instance pages in all, {quiet_reads} quiet organizations read one by one",
        cycles - moved.min(cycles)
    );
    println!(
        "  requests                      {} ({writes} writes), {:.1} per event; peak in one second {peak} sent, {peak_accepted} accepted; {throttled} answered 429",
        requests.len(),
        requests.len() as f64 / (flood.as_secs() * 100) as f64
    );
    if latencies.is_empty() {
        println!("  drift to repaired             none repaired\n");
        return;
    }
    println!(
        "  drift to repaired             {} of {}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n",
        latencies.len(),
        drifts.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
}
