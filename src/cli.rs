//! The command line: clap derive definitions. Every option of `validate`, `plan`, `apply`,
//! `export` and `daemon` also reads an environment variable; each command lists only the
//! options it uses.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::clerk::RateLimit;
use crate::plan::MaxDeletes;
pub use crate::telemetry::LogFormat;

fn parse_rate_limit(text: &str) -> Result<RateLimit, crate::clerk::RateLimitError> {
    text.parse()
}

fn parse_max_deletes(text: &str) -> Result<MaxDeletes, crate::plan::MaxDeletesError> {
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

#[cfg(feature = "simulator")]
fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability between 0 and 1")),
    }
}

/// A path of a comma-separated list (`MEMBERSYNC_FILE="a.yaml, b.yaml"`): the spaces around it
/// are not part of it.
fn parse_path(text: &str) -> Result<PathBuf, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty path (two commas in a row, or one at the end?)".to_owned());
    }
    Ok(PathBuf::from(text))
}

/// An organization ID or slug, as `--org` takes it.
fn parse_organization(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.contains('/') || text.contains(char::is_whitespace) {
        return Err(format!("`{text}` is not an organization ID or slug"));
    }
    Ok(text.to_owned())
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

impl Cli {
    /// Parses the process's command line (exits with clap's message and code 2 when it is
    /// wrong).
    pub fn parse_command_line() -> Cli {
        Cli::try_parse_command_line_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// The log level when `RUST_LOG` sets none: `warn` for the demo, which tells its own
    /// story on stdout; `info` otherwise.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            #[cfg(feature = "simulator")]
            Command::Demo(_) => "warn",
            _ => "info",
        }
    }

    /// Parses a command line. The Clerk API options may stand before the subcommand
    /// (`membersync --api-url URL plan`) or after it; one given after it wins.
    pub fn try_parse_command_line_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let Some((_, after)) = matches.subcommand() {
            cli.take_leading_options(after);
        }
        Ok(cli)
    }

    /// Moves the API options given before the subcommand into the command that uses them,
    /// unless the same option was given after it.
    fn take_leading_options(&mut self, after: &ArgMatches) {
        let leading = self.global.leading.clone();
        let given_after = |id: &str| after.value_source(id) == Some(ValueSource::CommandLine);
        match &mut self.command {
            Command::Plan(command) => leading.fill(&mut command.api, given_after),
            Command::Apply(args) => leading.fill(&mut args.api, given_after),
            Command::Export(args) => leading.fill(&mut args.api, given_after),
            Command::Daemon(args) => leading.fill(&mut args.api, given_after),
            #[cfg(feature = "simulator")]
            Command::Simulate(args) => {
                if let Some(rate) = leading.rate_limit
                    && !given_after("rate_limit")
                {
                    args.rate_limit = Some(rate);
                }
                if let Some(path) = leading.secret_key_file
                    && !given_after("secret_key_file")
                {
                    args.secret_key_file = Some(path);
                }
            }
            #[cfg(feature = "simulator")]
            Command::Demo(_) => {}
            // These commands call no API: the options are accepted and do nothing.
            Command::Validate(_) | Command::Schema | Command::Completions(_) => {}
        }
    }
}

/// Options every command accepts, before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Log line format on stderr (filter with RUST_LOG); with json, errors are JSON lines too
    #[arg(long, global = true, env = "MEMBERSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The Clerk API options given before the subcommand; each command that calls Clerk
    /// documents them in its own help.
    #[command(flatten)]
    pub leading: LeadingApiArgs,
}

/// [`ApiArgs`] given before the subcommand (`membersync --rate-limit 40/s apply`): hidden from
/// the top-level help, with no environment variable or default of their own (the command's
/// own options read those).
#[derive(Debug, Clone, Default, Args)]
pub struct LeadingApiArgs {
    #[arg(long, hide = true)]
    pub api_url: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "N/PERIOD", value_parser = parse_rate_limit)]
    pub rate_limit: Option<RateLimit>,
    #[arg(long, hide = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: Option<u32>,
    #[arg(long, hide = true, value_name = "DURATION", value_parser = parse_interval)]
    pub request_timeout: Option<std::time::Duration>,
}

impl LeadingApiArgs {
    /// Sets each option of `api` given here, unless it was given after the subcommand.
    fn fill(self, api: &mut ApiArgs, given_after: impl Fn(&str) -> bool) {
        if let Some(url) = self.api_url
            && !given_after("api_url")
        {
            api.api_url = url;
        }
        if let Some(path) = self.secret_key_file
            && !given_after("secret_key_file")
        {
            api.secret_key_file = Some(path);
        }
        if let Some(rate) = self.rate_limit
            && !given_after("rate_limit")
        {
            api.rate_limit = Some(rate);
        }
        if let Some(concurrency) = self.concurrency
            && !given_after("concurrency")
        {
            api.concurrency = concurrency;
        }
        if let Some(timeout) = self.request_timeout
            && !given_after("request_timeout")
        {
            api.request_timeout = timeout;
        }
    }
}

/// Options of the commands that call Clerk's Backend API (`plan`, `apply`, `export`,
/// `daemon`). They may also stand before the subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Clerk API options (also accepted before the subcommand)")]
pub struct ApiArgs {
    /// Clerk Backend API base URL
    #[arg(
        long,
        env = "CLERK_API_URL",
        default_value = "https://api.clerk.com/v1"
    )]
    pub api_url: String,

    /// Read the secret key from this file (a Kubernetes secret mount); overrides CLERK_SECRET_KEY.
    /// Surrounding whitespace and the trailing newline are trimmed
    #[arg(long, env = "CLERK_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,

    /// Requests allowed per period, like 20/s, 1000/10s or 90/1m [default: 1000/10s for an
    /// sk_live_ key, otherwise 100/10s]
    #[arg(
        long,
        env = "MEMBERSYNC_RATE_LIMIT",
        value_name = "N/PERIOD",
        value_parser = parse_rate_limit
    )]
    pub rate_limit: Option<RateLimit>,

    /// Requests in flight at most
    #[arg(long, env = "MEMBERSYNC_CONCURRENCY", default_value_t = 8, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,

    /// How long to wait for each answer from Clerk before retrying, like 30s or 2m
    #[arg(long, env = "MEMBERSYNC_REQUEST_TIMEOUT", value_name = "DURATION",
          default_value = "30s", value_parser = parse_interval)]
    pub request_timeout: std::time::Duration,
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
    #[cfg(feature = "simulator")]
    Simulate(SimulateArgs),
    /// Run the main job end to end against a local simulator: no Clerk account needed
    #[cfg(feature = "simulator")]
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
    #[arg(long, value_name = "N|P%", env = "MEMBERSYNC_MAX_DELETES", default_value = "25%",
          value_parser = parse_max_deletes)]
    pub max_deletes: MaxDeletes,

    /// Serve POST /webhooks/clerk, verified with this Svix signing secret (whsec_…; or
    /// CLERK_WEBHOOK_SECRET), and reconcile an organization seconds after Clerk reports a change
    #[arg(long, value_name = "PATH", env = "CLERK_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<std::path::PathBuf>,

    /// Failed cycles in a row (Clerk unreachable, the key refused, a file unreadable for lack
    /// of resources) after which /readyz answers 503
    #[arg(
        long,
        value_name = "N",
        env = "MEMBERSYNC_UNREADY_AFTER",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub unready_after: u32,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Export only this organization (ID or slug); repeatable, or comma-separated in
    /// MEMBERSYNC_ORG. Default: every organization
    #[arg(long = "org", value_name = "ID_OR_SLUG", env = "MEMBERSYNC_ORG",
          value_delimiter = ',', value_parser = parse_organization)]
    pub organizations: Vec<String>,

    /// Write the file here instead of stdout
    #[arg(
        short = 'o',
        long = "out",
        value_name = "PATH",
        env = "MEMBERSYNC_EXPORT_OUT"
    )]
    pub output: Option<PathBuf>,

    /// Key members by their email address where they have one (default: by user ID, with the
    /// email as a comment)
    #[arg(long, env = "MEMBERSYNC_BY_EMAIL", value_parser = BoolishValueParser::new())]
    pub by_email: bool,

    /// Also export the instance's custom permissions, its roles and its role sets (the
    /// `authorization` block)
    #[arg(long, env = "MEMBERSYNC_EXPORT_AUTHORIZATION", value_parser = BoolishValueParser::new())]
    pub authorization: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options of `simulate`.
#[cfg(feature = "simulator")]
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

    /// The simulated rate limit, like 100/10s: over it, 429 with a Retry-After, as Clerk
    /// answers [default: none]
    #[arg(long, value_name = "N/PERIOD", value_parser = parse_rate_limit)]
    pub rate_limit: Option<RateLimit>,

    /// How the simulated --rate-limit N/PERIOD counts: sliding (never more than N in any
    /// period-long span), fixed (N per period, aligned to the clock), bucket (refilled at N
    /// per period, bursts of N/8) or full-bucket (N per period, all of which may be spent at
    /// once). Retry-After is in whole seconds, rounded up
    #[arg(long, value_name = "MODEL", default_value = "full-bucket")]
    pub rate_limit_model: crate::simulator::RateLimitModel,

    /// Probability (0 to 1) that a request is answered 500 before anything is done
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_rate: f64,

    /// Probability (0 to 1) that a request is done and then answered 500 anyway
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_after_rate: f64,

    /// Probability (0 to 1) that a request is done and its connection then drops before the
    /// answer is complete
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub drop_rate: f64,

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

    /// Accept the secret key in this file (or in CLERK_SECRET_KEY) instead of
    /// sk_test_simulator
    #[arg(long, env = "CLERK_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,

    /// Also serve fake company directories (Google, Okta, Microsoft Graph) with the users and
    /// groups of this JSON file, for files with `directories`
    #[arg(long, value_name = "FILE")]
    pub directories: Option<PathBuf>,

    /// Address the fake directories listen on
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8081",
        requires = "directories"
    )]
    pub directories_listen: std::net::SocketAddr,

    /// Write a Google service-account key the fake Google accepts to this file (its token_uri
    /// is the fake token endpoint)
    #[arg(long, value_name = "PATH", requires = "directories")]
    pub google_key_out: Option<PathBuf>,
}

/// Options of `demo`.
#[cfg(feature = "simulator")]
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

impl From<OutputFormat> for crate::plan::Format {
    fn from(format: OutputFormat) -> crate::plan::Format {
        match format {
            OutputFormat::Text => crate::plan::Format::Text,
            OutputFormat::Json => crate::plan::Format::Json,
            OutputFormat::Markdown => crate::plan::Format::Markdown,
        }
    }
}

/// `plan`: the options it shares with `apply`, and the API options.
#[derive(Debug, Clone, Args)]
pub struct PlanCommand {
    #[command(flatten)]
    pub common: PlanArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options `plan` and `apply` share.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub files: FileArgs,

    /// Plan only this organization, like terraform's -target: its key in the files (ID or
    /// slug, as written there), or an organization all_organizations covers; repeatable, or
    /// comma-separated in MEMBERSYNC_ORG. The others are not read
    #[arg(long = "org", value_name = "ID_OR_SLUG", env = "MEMBERSYNC_ORG",
          value_delimiter = ',', value_parser = parse_organization)]
    pub organizations: Vec<String>,

    /// Print the plan as text, as one JSON document, or as one Markdown document
    #[arg(long, value_enum, env = "MEMBERSYNC_OUTPUT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Show private_metadata values in the text and Markdown plans (hidden as `(private)`
    /// by default; JSON and saved plans always hold them)
    #[arg(long, env = "MEMBERSYNC_SHOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub show_private: bool,

    /// Exit 4 when the plan is not empty (plan, or apply --dry-run)
    #[arg(long, env = "MEMBERSYNC_DETAILED_EXITCODE", value_parser = BoolishValueParser::new())]
    pub detailed_exitcode: bool,

    /// Refuse a plan that deletes more memberships than this: a count (12) or a percentage
    /// of the managed organizations' current memberships (25%)
    #[arg(long, value_name = "N|P%", env = "MEMBERSYNC_MAX_DELETES", default_value = "25%",
          value_parser = parse_max_deletes)]
    pub max_deletes: MaxDeletes,

    /// Also save the plan as versioned JSON with a fingerprint of the live state it was
    /// computed from, for `apply --plan PLANFILE` (plan, or apply --dry-run)
    #[arg(long, value_name = "PLANFILE", env = "MEMBERSYNC_PLAN_OUT")]
    pub out: Option<PathBuf>,
}

/// Options of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: PlanArgs,

    /// Read live state and print the plan; send no write request (the same as `plan`)
    #[arg(long, env = "MEMBERSYNC_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,

    /// Apply even a plan over --max-deletes or one that removes an organization's last admin
    #[arg(long, env = "MEMBERSYNC_FORCE", value_parser = BoolishValueParser::new())]
    pub force: bool,

    /// After the run, push its metrics to this Prometheus Pushgateway (job `membersync`)
    #[arg(long, value_name = "URL", env = "MEMBERSYNC_PUSHGATEWAY")]
    pub pushgateway: Option<String>,

    /// Apply exactly this saved plan (from `plan --out`); the desired files are not read.
    /// Refused if a membership it touches changed since it was made
    #[arg(long = "plan", value_name = "PLANFILE", env = "MEMBERSYNC_PLAN_FILE")]
    pub saved: Option<PathBuf>,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// The desired-state files.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// Desired-state file, or a directory of *.yaml/*.yml files (sorted by name); repeatable.
    /// MEMBERSYNC_FILE takes several paths separated by commas
    #[arg(short = 'f', long = "file", value_name = "PATH", env = "MEMBERSYNC_FILE",
          value_delimiter = ',', default_value = crate::desired::DEFAULT_FILE,
          value_parser = parse_path)]
    pub files: Vec<PathBuf>,
}
