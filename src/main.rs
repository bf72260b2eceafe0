//! The `membersync` binary: parse the command line, set up logging, run, map to an exit code.

use membersync::cli::Cli;
use membersync::{commands, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse_command_line();
    telemetry::init(cli.global.log_format, cli.default_log_level());
    telemetry::metrics();
    let exit = commands::run(cli).await;
    std::process::ExitCode::from(exit as u8)
}
