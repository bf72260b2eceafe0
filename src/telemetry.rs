//! Logs and metrics. Logs: tracing to stderr (never stdout), as text or JSON, filtered by
//! RUST_LOG. Metrics: the `metrics` facade with a Prometheus recorder, served by the daemon on
//! `/metrics` and pushed by one-shot runs to a Pushgateway. Every series is named
//! `membersync_…`; `describe` documents each one.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` filters; without it, `default` does (`info`,
/// or `warn` for the demo, whose output is the story).
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| AboveProgress(Vec::new()));
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    // A second init (in tests that call the library twice) keeps the first subscriber.
    let _ = result;
}

/// Series names, in one place.
pub(crate) mod names {
    pub const RUNS: &str = "membersync_runs_total";
    pub const CHANGES: &str = "membersync_changes_total";
    pub const DRIFT: &str = "membersync_drift";
    pub const API_REQUESTS: &str = "membersync_api_requests_total";
    pub const API_RETRIES: &str = "membersync_api_retries_total";
    pub const API_THROTTLED: &str = "membersync_api_throttled_total";
    pub const LIMITER_WAIT: &str = "membersync_rate_limiter_wait_seconds";
    pub const PAUSED_BY_429: &str = "membersync_throttle_pause_seconds";
    pub const RUN_DURATION: &str = "membersync_run_duration_seconds";
    pub const LAST_SUCCESS: &str = "membersync_last_success_timestamp_seconds";
    pub const CONFIG_ERRORS: &str = "membersync_config_errors_total";
    pub const READY: &str = "membersync_ready";
    pub const INCONSISTENT_READS: &str = "membersync_inconsistent_reads_total";
    pub const INVITATIONS_DEFERRED: &str = "membersync_invitations_deferred_total";
    pub const WEBHOOK_EVENTS: &str = "membersync_webhook_events_total";
    pub const RESOURCE_ERRORS: &str = "membersync_resource_errors_total";
    pub const DIRECTORY_UNAVAILABLE: &str = "membersync_directory_unavailable_total";
    pub const RETRY_BUDGET_EXHAUSTED: &str = "membersync_retry_budget_exhausted_total";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn metrics() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::RUN_DURATION.to_owned()),
                &[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder (a test harness) may be installed already; keep it.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// The Prometheus text of every series.
pub(crate) fn render() -> String {
    metrics().render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::RUNS,
        "Runs (apply, daemon cycles) by command and result: success, failure, refused, invalid"
    );
    describe_counter!(
        names::CHANGES,
        "Changes by resource (membership, invitation, permission, role, role_set, organization, domain), action (create, update_role, update, delete, …) and outcome (applied, failed, skipped)"
    );
    describe_gauge!(
        names::DRIFT,
        "Changes the last plan found (before apply) or left undone (after apply), by resource and action"
    );
    describe_counter!(
        names::API_REQUESTS,
        "Clerk API responses by endpoint and HTTP status (0: no response)"
    );
    describe_counter!(names::API_RETRIES, "Clerk API requests retried");
    describe_counter!(
        names::INCONSISTENT_READS,
        "Organizations whose memberships kept changing while they were read (no deletion or demotion planned in them that run)"
    );
    describe_counter!(names::API_THROTTLED, "Clerk API responses with status 429");
    describe_counter!(
        names::DIRECTORY_UNAVAILABLE,
        "Directory groups that could not be read, or came back empty without allow_empty, by directory (no one removed or demoted because of them that run)"
    );
    describe_counter!(
        names::WEBHOOK_EVENTS,
        "Clerk webhook deliveries, by event type and result (reconciled, ignored, rejected)"
    );
    describe_counter!(
        names::INVITATIONS_DEFERRED,
        "Invitation changes deferred to the next run by Clerk's own invitation limit"
    );
    describe_counter!(
        names::RETRY_BUDGET_EXHAUSTED,
        "Runs (and daemon cycles) that stopped sending because the retry budget could not pay for another retry"
    );
    describe_histogram!(
        names::LIMITER_WAIT,
        "Seconds each request waited on membersync's own rate limiter (_sum: the total)"
    );
    describe_histogram!(
        names::PAUSED_BY_429,
        "Seconds requests were held by a 429's Retry-After (_sum: the total)"
    );
    describe_histogram!(names::RUN_DURATION, "Duration of runs, in seconds");
    describe_gauge!(names::LAST_SUCCESS, "Unix time of the last successful run");
    describe_counter!(
        names::CONFIG_ERRORS,
        "Runs skipped because the desired-state files are invalid"
    );
    describe_gauge!(
        names::READY,
        "1 when the daemon's last cycle reached Clerk and completed"
    );
    describe_counter!(
        names::RESOURCE_ERRORS,
        "Runs that failed because a file could not be read for lack of resources (file descriptors, memory) or an I/O error"
    );
}

/// Sends every series to a Prometheus Pushgateway (`PUT {url}/metrics/job/membersync`).
pub(crate) async fn push(url: &str) -> Result<(), String> {
    let target = format!("{}/metrics/job/membersync", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .put(&target)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(render())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|error| format!("cannot push metrics to {target}: {error}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the Pushgateway at {target} answered HTTP {}",
            response.status().as_u16()
        ))
    }
}

/// The peak resident memory of this process (Linux: `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// The resident memory of this process now (Linux: `VmRSS`), in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_bytes("VmRSS:")
}

fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time of the calling thread (Linux: from `/proc/thread-self/stat`, in clock ticks of
/// 10 ms) and wall time, from `start` to `elapsed`. Where the thread's CPU time cannot be read,
/// the wall time stands in for it.
pub(crate) struct CpuClock {
    cpu: Option<u64>,
    wall: std::time::Instant,
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock {
            cpu: thread_ticks(),
            wall: std::time::Instant::now(),
        }
    }

    /// (CPU time, wall time) since `start`.
    pub fn elapsed(&self) -> (std::time::Duration, std::time::Duration) {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, thread_ticks()) {
            (Some(before), Some(after)) => {
                std::time::Duration::from_millis(after.saturating_sub(before) * 10)
            }
            _ => wall,
        };
        (cpu, wall)
    }
}

fn thread_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Logs the memory in use and its peak so far at debug level, naming the phase (the scale bench
/// reads these lines).
pub(crate) fn log_memory(phase: &str) {
    tracing::debug!(
        rss_bytes = rss_bytes().unwrap_or_default(),
        peak_rss_bytes = peak_rss_bytes().unwrap_or_default(),
        "{phase}"
    );
}

/// The progress bar on the terminal, if one is drawn: log lines are written above it.
static PROGRESS: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Log lines go above `bar` until [`clear_progress`].
pub(crate) fn set_progress(bar: indicatif::ProgressBar) {
    *PROGRESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
}

/// Removes the progress bar from the terminal, if one is drawn.
pub(crate) fn clear_progress() {
    let bar = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// One log line, written to stderr when complete: above the progress bar when one is drawn
/// (the bar is hidden while the line is written, then drawn again), so that neither
/// overwrites the other.
struct AboveProgress(Vec<u8>);

impl Write for AboveProgress {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for AboveProgress {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let bar = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Registers every counter of these commands at 0, with its labels where they are known, so
/// that `/metrics` (and a Pushgateway push) shows each series from the start rather than
/// only once it moves: `rate()` and alerts see the first increase. The labels that depend on
/// what Clerk answers (an endpoint's status, a webhook's event type) are not known ahead: those
/// counters start as one series without labels.
pub(crate) fn register_counters(commands: &[&'static str]) {
    use metrics::counter;
    for command in commands {
        for result in ["success", "failure", "refused", "invalid"] {
            counter!(names::RUNS, "command" => *command, "result" => result).absolute(0);
        }
    }
    for resource in crate::plan::Resource::ALL {
        for &action in resource.actions() {
            for outcome in ["applied", "failed", "skipped"] {
                counter!(names::CHANGES, "resource" => resource.name(), "action" => action, "outcome" => outcome)
                    .absolute(0);
            }
        }
    }
    for name in [
        names::API_REQUESTS,
        names::API_RETRIES,
        names::API_THROTTLED,
        names::CONFIG_ERRORS,
        names::INCONSISTENT_READS,
        names::INVITATIONS_DEFERRED,
        names::WEBHOOK_EVENTS,
        names::RESOURCE_ERRORS,
        names::DIRECTORY_UNAVAILABLE,
        names::RETRY_BUDGET_EXHAUSTED,
    ] {
        counter!(name).absolute(0);
    }
}
