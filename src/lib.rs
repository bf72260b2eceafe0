//! membersync: keeps Clerk organization memberships in sync with a declarative YAML file.

/// The command line definitions (clap).
pub mod cli;
/// One function per command, and the process exit status.
pub mod commands;
/// The desired state: loading, parsing and validating the YAML files (no network).
pub mod desired;
/// Logging setup (tracing to stderr).
pub mod telemetry;
