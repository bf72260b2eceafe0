//! `membersync validate`: parse and check the desired state, offline.

use crate::cli::FileArgs;
use crate::desired;

use super::Exit;

pub fn run(args: &FileArgs) -> Exit {
    match desired::load(&args.files) {
        Ok(state) => {
            for warning in &state.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "valid: {} {}, {} {}, {} {}",
                state.files.len(),
                plural(state.files.len(), "file", "files"),
                state.organizations.len(),
                plural(state.organizations.len(), "organization", "organizations"),
                state.member_count(),
                plural(state.member_count(), "member", "members"),
            );
            Exit::Success
        }
        Err(error) => {
            eprintln!("{error}");
            let count = error.0.len();
            eprintln!(
                "{count} {} found; nothing was sent",
                plural(count, "error", "errors")
            );
            Exit::Invalid
        }
    }
}

pub(crate) fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}
