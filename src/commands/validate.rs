//! `membersync validate`: parse and check the desired state, offline.

use crate::cli::FileArgs;
use crate::desired;

use super::{CommandResult, Finished};

pub fn run(args: &FileArgs) -> CommandResult {
    match desired::load(&args.files) {
        Ok(state) => {
            for warning in &state.warnings {
                super::report_warning(format_args!("{warning}"));
            }
            let rule = state
                .all_organizations
                .as_ref()
                .map(|rule| rule.members.len());
            let extra = if state.groups > 0 || rule.is_some() {
                let rule = rule.unwrap_or_default();
                format!(
                    ", {} {}, {} all_organizations {}",
                    state.groups,
                    plural(state.groups, "group", "groups"),
                    rule,
                    plural(rule, "member", "members"),
                )
            } else {
                String::new()
            };
            // Their people are read at run time: `validate` sends no request.
            let extra = if state.directory_groups > 0 {
                format!(
                    "{extra} ({} read from {} {} at run time)",
                    state.directory_groups,
                    state.directories.len(),
                    plural(state.directories.len(), "directory", "directories"),
                )
            } else {
                extra
            };
            println!(
                "valid: {} {}, {} {}, {} {}{extra}",
                state.files.len(),
                plural(state.files.len(), "file", "files"),
                state.organizations.len(),
                plural(state.organizations.len(), "organization", "organizations"),
                state.member_count(),
                plural(state.member_count(), "member", "members"),
            );
            Ok(Finished::Done)
        }
        Err(error) => Err(super::prepare::unloaded(error)),
    }
}

pub(crate) fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}
