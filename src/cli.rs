//! The command line: clap derive definitions. Every flag also reads an environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clerk::RateLimit;
use crate::plan::MaxDeletes;
pub use crate::telemetry::LogFormat;

fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    text.parse()
}

fn parse_max_deletes(text: &str) -> Result<MaxDeletes, String> {
    text.parse()
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration >= std::time::Duration::from_secs(1) => Ok(duration),
        Ok(_) => Err(format!("`{text}` is shorter than one second")),
        Err(error) => Err(format!(
            "`{text}` is not a duration like 30s, 5m or 1h: {error}"
        )),
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability between 0 and 1")),
    }
}

/// Keeps Clerk organization memberships in sync with a declarative YAML file.
#[derive(Debug, Parser)]
#[command(name = "membersync", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Clerk Backend API base URL
    #[arg(
        long,
        global = true,
        env = "CLERK_API_URL",
        default_value = "https://api.clerk.com/v1"
    )]
    pub api_url: String,

    /// Read the secret key from this file (a Kubernetes secret mount); overrides CLERK_SECRET_KEY.
    /// Surrounding whitespace and the trailing newline are trimmed
    #[arg(
        long,
        global = true,
        env = "CLERK_SECRET_KEY_FILE",
        value_name = "PATH"
    )]
    pub secret_key_file: Option<PathBuf>,

    /// Requests allowed per period, like 20/s, 1000/10s or 90/1m [default: 1000/10s for an
    /// sk_live_ key, otherwise 100/10s]
    #[arg(
        long,
        global = true,
        env = "MEMBERSYNC_RATE_LIMIT",
        value_name = "N/PERIOD",
        value_parser = parse_rate_limit
    )]
    pub rate_limit: Option<RateLimit>,

    /// Requests in flight at most
    #[arg(long, global = true, env = "MEMBERSYNC_CONCURRENCY", default_value_t = 8, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,

    /// How long to wait for each answer from Clerk before retrying, like 30s or 2m
    #[arg(long, global = true, env = "MEMBERSYNC_REQUEST_TIMEOUT", value_name = "DURATION",
          default_value = "30s", value_parser = parse_interval)]
    pub request_timeout: std::time::Duration,

    /// Log line format on stderr (filter with RUST_LOG)
    #[arg(long, global = true, env = "MEMBERSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the desired state offline; no network, no secret key needed
    Validate(FileArgs),
    /// Read live state and print what apply would change; sends no write request, ever
    Plan(PlanCommand),
    /// Make the Clerk instance match the desired state (with --dry-run: the same as plan)
    Apply(ApplyArgs),
    /// Write the current state as a desired-state file (schema v1) that plans empty
    Export(ExportArgs),
    /// Serve a local Clerk Backend API simulator seeded from a JSON state file
    Simulate(SimulateArgs),
    /// Run the main job end to end against a local simulator: no Clerk account needed
    Demo(DemoArgs),
    /// Apply every interval, re-reading the files each cycle; serve /healthz, /readyz, /metrics
    Daemon(DaemonArgs),
    /// Print the JSON Schema (draft 2020-12) of the desired-state file, for editors and CI
    Schema,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
}

/// Options of `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `daemon`.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub files: FileArgs,

    /// Time between cycles, like 30s, 5m or 1h (each wait is jittered by up to ±10%)
    #[arg(long, value_name = "DURATION", env = "MEMBERSYNC_INTERVAL", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Address of the health and metrics server
    #[arg(
        long,
        value_name = "ADDR",
        env = "MEMBERSYNC_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub listen: std::net::SocketAddr,

    /// The deletion limit each cycle's plan is checked against (a refused cycle is reported,
    /// never forced): a count (12) or a percentage (25%)
    #[arg(long, value_name = "N|P%", default_value = "25%", value_parser = parse_max_deletes)]
    pub max_deletes: MaxDeletes,

    /// Serve POST /webhooks/clerk, verified with this Svix signing secret (whsec_…; or
    /// CLERK_WEBHOOK_SECRET), and reconcile an organization seconds after Clerk reports a change
    #[arg(long, value_name = "PATH", env = "CLERK_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<std::path::PathBuf>,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Export only this organization (ID or slug); repeatable. Default: every organization
    #[arg(long = "org", value_name = "ID_OR_SLUG")]
    pub organizations: Vec<String>,

    /// Write the file here instead of stdout
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Key members by their email address where they have one (default: by user ID, with the
    /// email as a comment)
    #[arg(long)]
    pub by_email: bool,
}

/// Options of `simulate`. The simulated rate limit is the global `--rate-limit` (default: none).
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The instance to serve: JSON with organizations, users, memberships (and optionally
    /// roles and role_sets); see config/demo/state.json
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,

    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// Added to every answer, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,

    /// Probability (0 to 1) that a request is answered 500 before anything is done
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_rate: f64,

    /// On shutdown (Ctrl-C, SIGTERM), write the final state here
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// A busy organization (by ID; repeatable): before every membership listing request it
    /// loses its oldest member and gains a new one, as on a busy live instance
    #[arg(long, value_name = "ORG_ID")]
    pub churn: Vec<String>,

    /// Invitation requests allowed per hour (Clerk has its own hourly invitation limits);
    /// over it, 429 with a Retry-After until the hour ends
    #[arg(long, value_name = "N")]
    pub invitation_limit: Option<u32>,

    /// Send Svix-signed organizationMembership.* and organizationInvitation.* events to this
    /// URL after each write, as Clerk does (with --webhook-secret-file)
    #[arg(long, value_name = "URL", requires = "webhook_secret_file")]
    pub webhook_url: Option<String>,

    /// The Svix signing secret (whsec_…) the events are signed with
    #[arg(long, value_name = "PATH")]
    pub webhook_secret_file: Option<std::path::PathBuf>,
}

/// Options of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The simulated instance [default: config/demo/state.json, or the built-in copy]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// The desired state [default: config/demo/membersync.yaml, or the built-in copy]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// How the plan and report are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    /// One Markdown document, for a pull-request comment or a CI job summary
    Markdown,
}

/// `plan`: the options it shares with `apply`, and `--out`.
#[derive(Debug, Clone, Args)]
pub struct PlanCommand {
    #[command(flatten)]
    pub common: PlanArgs,

    /// Also save the plan as versioned JSON with a fingerprint of the live state it was
    /// computed from, for `apply --plan PLANFILE`
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
}

/// Options `plan` and `apply` share.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub files: FileArgs,

    /// Print the plan as text or as one JSON document
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Exit 4 when the plan is not empty (plan, or apply --dry-run)
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Refuse a plan that deletes more memberships than this: a count (12) or a percentage
    /// of the managed organizations' current memberships (25%)
    #[arg(long, value_name = "N|P%", default_value = "25%", value_parser = parse_max_deletes)]
    pub max_deletes: MaxDeletes,
}

/// Options of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: PlanArgs,

    /// Read live state and print the plan; send no write request (the same as `plan`)
    #[arg(long)]
    pub dry_run: bool,

    /// Apply even a plan over --max-deletes or one that removes an organization's last admin
    #[arg(long)]
    pub force: bool,

    /// After the run, push its metrics to this Prometheus Pushgateway (job `membersync`)
    #[arg(long, value_name = "URL", env = "MEMBERSYNC_PUSHGATEWAY")]
    pub pushgateway: Option<String>,

    /// Apply exactly this saved plan (from `plan --out`); the desired files are not read.
    /// Refused if a membership it touches changed since it was made
    #[arg(long = "plan", value_name = "PLANFILE")]
    pub saved: Option<PathBuf>,
}

/// The desired-state files.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// Desired-state file, or a directory of *.yaml/*.yml files (sorted by name); repeatable.
    /// MEMBERSYNC_FILE takes several paths separated by commas
    #[arg(short = 'f', long = "file", value_name = "PATH", env = "MEMBERSYNC_FILE",
          value_delimiter = ',', default_value = crate::desired::DEFAULT_FILE)]
    pub files: Vec<PathBuf>,
}
