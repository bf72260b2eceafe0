//! A `membersync daemon` run by the tests: started against the simulator (with the webhook
//! secret, unless told otherwise), its address read from its log, its log lines kept, stopped
//! by SIGTERM.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use membersync::simulator::{LoggedRequest, Simulator};
use membersync::webhook::WebhookSecret;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::{KEY, eventually, write_file};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How a test daemon is started: whether it receives webhooks (with [`SECRET`]), `--listen`,
/// `RUST_LOG`, its secret key, and more arguments (`--interval 1h`, …).
pub struct Setup<'a> {
    pub webhooks: bool,
    pub listen: &'a str,
    pub log: &'a str,
    pub key: &'a str,
    pub args: &'a [&'a str],
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            webhooks: true,
            listen: "127.0.0.1:0",
            log: "membersync=info,warn",
            key: KEY,
            args: &[],
        }
    }
}

pub struct Daemon {
    pub child: tokio::process::Child,
    /// `host:port` of its server.
    pub address: String,
    /// Every line it logged so far, its first ones too.
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Reads its stderr into `lines`; done once the daemon exited and its last line is in.
    reader: tokio::task::JoinHandle<()>,
    pub http: reqwest::Client,
}

impl Daemon {
    /// Starts `membersync daemon -f m.yaml --listen 127.0.0.1:0 --log-format json` in `dir`,
    /// with the webhook secret and `args`; returns once it has logged its address.
    pub async fn spawn(simulator: &Simulator, dir: &std::path::Path, args: &[&str]) -> Daemon {
        let setup = Setup {
            args,
            ..Setup::default()
        };
        Daemon::spawn_with(simulator, dir, setup).await
    }

    /// Starts `membersync daemon -f m.yaml --log-format json` in `dir` as `setup` says;
    /// returns once it has logged its address.
    pub async fn spawn_with(
        simulator: &Simulator,
        dir: &std::path::Path,
        setup: Setup<'_>,
    ) -> Daemon {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"));
        command
            .current_dir(dir)
            .args(["daemon", "-f", "m.yaml", "--listen", setup.listen])
            .args(["--log-format", "json"]);
        if setup.webhooks {
            write_file(dir, "secret", &format!("{SECRET}\n"));
            command.args(["--webhook-secret-file", "secret"]);
        }
        let mut child = command
            .args(setup.args)
            .env("CLERK_API_URL", simulator.api_url())
            .env("CLERK_SECRET_KEY", setup.key)
            .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
            .env("RUST_LOG", setup.log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
                .await
                .expect("the daemon logs its address")
                .unwrap()
                .expect("the daemon runs");
            lines.lock().unwrap().push(line.clone());
            let parsed: Value = serde_json::from_str(&line).expect(&line);
            if let Some(address) = parsed.get("address").and_then(Value::as_str) {
                break address.to_owned();
            }
        };
        let kept = lines.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                // Shown when a test fails.
                eprintln!("daemon: {line}");
                kept.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            address,
            lines,
            reader,
            http: reqwest::Client::new(),
        }
    }

    /// The same, once its first cycle has made it ready.
    pub async fn start(simulator: &Simulator, dir: &std::path::Path, args: &[&str]) -> Daemon {
        let setup = Setup {
            args,
            ..Setup::default()
        };
        Daemon::start_with(simulator, dir, setup).await
    }

    /// [`Daemon::spawn_with`], once its first cycle has made it ready.
    pub async fn start_with(
        simulator: &Simulator,
        dir: &std::path::Path,
        setup: Setup<'_>,
    ) -> Daemon {
        let daemon = Daemon::spawn_with(simulator, dir, setup).await;
        eventually("the daemon gets ready", async || {
            daemon.ready().await == 200
        })
        .await;
        daemon
    }

    /// `GET path`: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.address))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
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
        self.get("/metrics").await.1
    }

    /// Delivers `body` with these Svix headers (no signature: `None`); the status (0: no
    /// answer).
    pub async fn deliver(
        &self,
        id: &str,
        timestamp: i64,
        signature: Option<String>,
        body: &str,
    ) -> u16 {
        let mut request = self
            .http
            .post(format!("http://{}/webhooks/clerk", self.address))
            .header("content-type", "application/json")
            .header("svix-id", id)
            .header("svix-timestamp", timestamp.to_string())
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("svix-signature", signature);
        }
        request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Delivers `body` signed with the daemon's secret; the status (0: no answer).
    pub async fn signed(&self, id: &str, body: &str) -> u16 {
        let now = now();
        let signature = WebhookSecret::parse(SECRET)
            .unwrap()
            .sign(id, now, body.as_bytes());
        self.deliver(id, now, Some(signature), body).await
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
        self.count_logged(text) > 0
    }

    /// How many lines so far contain `text`.
    pub fn count_logged(&self, text: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|line| line.contains(text)).count()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    }

    /// Waits (at most `within`) for the daemon to exit: its exit code, and every line it
    /// logged, read to the end.
    pub async fn exited(mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the daemon exits within {within:?} of SIGTERM"))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.reader)
            .await
            .expect("its last lines are read")
            .unwrap();
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (status.code(), lines)
    }

    /// SIGTERM; its exit code.
    pub async fn stop(self) -> Option<i32> {
        self.terminate();
        self.exited(Duration::from_secs(25)).await.0
    }
}

/// Now, in Unix seconds (a Svix timestamp).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
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
