//! The `membersync` binary: parse the command line, set up logging, run, map to an exit code.

use membersync::cli::{Cli, Command};
use membersync::{commands, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse_command_line();
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    telemetry::init(cli.global.log_format, default_level);
    telemetry::metrics();
    let exit = commands::run(cli).await;
    std::process::ExitCode::from(exit as u8)
}
