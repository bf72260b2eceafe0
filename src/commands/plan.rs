//! `membersync plan` (and `apply --dry-run`): read live state, print the plan, write nothing.
//! With `--out`, also save the plan for `apply --plan`.

use std::path::Path;

use crate::cli::{ApiArgs, OutputFormat, PlanArgs, PlanCommand};
use crate::plan::saved::{FileDigest, Instance, PlanFile};
use crate::plan::{self, Plan, Private, Refusal, Stage};
use crate::sync::Planned;

use super::{CommandError, CommandResult, Finished, prepare};

pub async fn run(command: &PlanCommand) -> CommandResult {
    run_with(&command.api, &command.common).await
}

pub async fn run_with(api: &ApiArgs, args: &PlanArgs) -> CommandResult {
    let desired = prepare::load(&args.files)?;
    let selection = prepare::select(&desired, &args.organizations)?;
    let client = prepare::client(api)?;
    let planned = crate::sync::plan(&client, desired, &selection).await?;
    let counted = client.snapshot();
    tracing::info!(
        requests = counted.sent,
        retries = counted.retries,
        "read live state"
    );
    let refusals = plan::refusals(&planned.plan, args.max_deletes);
    let private = Private::shown_if(args.show_private);
    print_plan(&planned.plan, &refusals, args.output, private);
    crate::telemetry::log_memory("plan printed");
    if let Some(missing) = super::missing_error(&planned.missing) {
        return Err(match &args.out {
            Some(_) => missing.and(CommandError::failure(
                "the plan was not saved, because of the errors above",
            )),
            None => missing,
        });
    }
    if let Some(out) = &args.out {
        save(out, &planned, prepare::instance(&client))?;
    }
    let rejected = (!planned.plan.rejected.is_empty()).then(|| {
        CommandError::failure(format!(
            "{} change(s) cannot be made (marked ! in the plan); fix the roles in the file",
            planned.plan.rejected.len()
        ))
    });
    let finished = if args.detailed_exitcode && !planned.plan.is_empty() {
        Finished::Changes
    } else {
        Finished::Done
    };
    super::finish_with(
        finished,
        [
            super::unsettled_error(&planned.plan),
            rejected,
            super::unavailable_error(&planned),
        ],
    )
}

/// Prints the plan on stdout, with what the safety limits would say (or why a saved plan is
/// refused).
pub fn print_plan(plan: &Plan, refusals: &[Refusal], output: OutputFormat, private: Private) {
    print!(
        "{}",
        plan::render(output.into(), plan, refusals, Stage::Planned, private)
    );
}

/// Saves the plan for `apply --plan`, with the digests of its files and of what it touches.
fn save(out: &Path, planned: &Planned, instance: Instance) -> Result<(), CommandError> {
    let digests = planned
        .files
        .iter()
        .map(|file| FileDigest {
            path: file.path.display().to_string(),
            sha256: file.sha256.clone(),
        })
        .collect();
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut file = PlanFile::new(
        planned.plan.clone(),
        &planned.observed,
        &planned.invitations,
        digests,
        created_at,
    )
    .with_resources(&planned.resource_states);
    file.instance = Some(instance);
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    std::fs::write(out, text + "\n").map_err(|error| {
        CommandError::failure(format!(
            "cannot write the plan to {}: {error}",
            out.display()
        ))
    })?;
    super::report_info(format_args!(
        "Saved the plan to {}; apply exactly it with `membersync apply --plan {}`.",
        out.display(),
        out.display()
    ));
    Ok(())
}
