//! membersync: keeps Clerk organization memberships in sync with a declarative YAML file.

/// The executor: runs a plan against Clerk with idempotent outcomes (the only module that writes).
pub mod apply;
/// The Clerk Backend API client: the only module that speaks HTTP to Clerk (`telemetry` also
/// pushes metrics to a Pushgateway).
pub mod clerk;
/// The command line definitions (clap).
pub mod cli;
/// One function per command, and the process exit status.
pub mod commands;
/// The daemon's interval loop, health and metrics server, and graceful shutdown.
pub mod daemon;
/// The desired state: loading, parsing and validating the YAML files (no network).
pub mod desired;
/// Company directories (Google Workspace, Okta, Entra ID): the people of a group, read over HTTP.
pub mod directory;
/// The planner: diff, ordering, safety checks and rendering (pure, no IO).
pub mod plan;
/// A stateful Clerk Backend API simulator on 127.0.0.1, for tests, benchmarks and rehearsals
/// (the `simulator` feature, on by default).
#[cfg(feature = "simulator")]
pub mod simulator;
/// The sync flow as library calls: read and plan, check the safety limits, apply.
pub mod sync;
/// Logging (tracing to stderr), metrics (Prometheus), and the Pushgateway push.
pub mod telemetry;
/// Clerk webhooks: Svix verification, events, replays, and the per-organization work queue.
pub mod webhook;
