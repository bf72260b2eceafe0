//! A `membersync daemon` run by the tests: started against the simulator with the webhook
//! secret, its address read from its first log line, its log lines kept, stopped by SIGTERM.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use membersync::simulator::{LoggedRequest, Simulator};
use membersync::webhook::WebhookSecret;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::{KEY, write_file};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub struct Daemon {
    pub child: tokio::process::Child,
    /// `host:port` of its server.
    pub address: String,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Daemon {
    /// Starts `membersync daemon -f m.yaml --listen 127.0.0.1:0 --log-format json` in `dir`,
    /// with the webhook secret and `args`; returns once it has logged its address.
    pub async fn spawn(simulator: &Simulator, dir: &std::path::Path, args: &[&str]) -> Daemon {
        write_file(dir, "secret", SECRET);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
            .current_dir(dir)
            .args(["daemon", "-f", "m.yaml", "--listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--webhook-secret-file", "secret"])
            .args(args)
            .env("CLERK_API_URL", simulator.api_url())
            .env("CLERK_SECRET_KEY", KEY)
            .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
            .env("RUST_LOG", "membersync=info,warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
                .await
                .expect("the daemon logs its address")
                .unwrap()
                .expect("the daemon runs");
            let parsed: Value = serde_json::from_str(&line).expect(&line);
            if let Some(address) = parsed.get("address").and_then(Value::as_str) {
                break address.to_owned();
            }
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            address,
            lines,
            http: reqwest::Client::new(),
        }
    }

    /// The same, once its first cycle has made it ready.
    pub async fn start(simulator: &Simulator, dir: &std::path::Path, args: &[&str]) -> Daemon {
        let daemon = Daemon::spawn(simulator, dir, args).await;
        eventually("the daemon gets ready", async || {
            daemon.ready().await == 200
        })
        .await;
        daemon
    }

    /// The status of `GET /readyz` (0: no answer).
    pub async fn ready(&self) -> u16 {
        self.http
            .get(format!("http://{}/readyz", self.address))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    pub async fn metrics(&self) -> String {
        let response = self.http.get(format!("http://{}/metrics", self.address));
        response.send().await.unwrap().text().await.unwrap()
    }

    /// Delivers `body` signed with the daemon's secret; the status (0: no answer).
    pub async fn signed(&self, id: &str, body: &str) -> u16 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = WebhookSecret::parse(SECRET)
            .unwrap()
            .sign(id, now, body.as_bytes());
        self.http
            .post(format!("http://{}/webhooks/clerk", self.address))
            .header("svix-id", id)
            .header("svix-timestamp", now.to_string())
            .header("svix-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// The `run finished` lines of `command` (`daemon`: cycles) so far.
    pub fn runs(&self, command: &str) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == "run finished" && line["command"] == command)
            .collect()
    }

    pub fn logged(&self, text: &str) -> bool {
        let lines = self.lines.lock().unwrap();
        lines.iter().any(|line| line.contains(text))
    }

    /// SIGTERM; its exit code.
    pub async fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(25), self.child.wait())
            .await
            .expect("the daemon exits after SIGTERM")
            .unwrap();
        status.code()
    }
}

/// Waits until `check` holds (30 s at most).
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The most requests that arrived at the simulator within any one second.
pub fn peak_per_second(requests: &[&LoggedRequest]) -> usize {
    let mut at: Vec<Duration> = requests.iter().map(|r| r.at).collect();
    at.sort();
    let mut peak = 0;
    let mut first = 0;
    for last in 0..at.len() {
        while at[last] - at[first] >= Duration::from_secs(1) {
            first += 1;
        }
        peak = peak.max(last - first + 1);
    }
    peak
}
