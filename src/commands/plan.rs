//! `membersync plan` (and `apply --dry-run`): read live state, print the plan, write nothing.
//! With `--out`, also save the plan for `apply --plan`.

use std::path::Path;

use crate::cli::{ApiArgs, OutputFormat, PlanArgs, PlanCommand};
use crate::plan::saved::{FileDigest, PlanFile};
use crate::plan::{self, Plan, Private, Refusal, Stage};

use super::{CommandError, CommandResult, Outcome, prepare};

pub async fn run(command: &PlanCommand) -> CommandResult {
    run_with(&command.api, &command.common).await
}

pub async fn run_with(api: &ApiArgs, args: &PlanArgs) -> CommandResult {
    let desired = prepare::load(&args.files)?;
    let selection = prepare::select(&desired, &args.organizations)?;
    let client = prepare::client(api)?;
    let computed = prepare::compute(client, desired, &selection).await?;
    let counted = computed.client.stats.snapshot();
    tracing::info!(
        requests = counted.sent,
        retries = counted.retries,
        "read live state"
    );
    let refusals = plan::refusals(&computed.plan, args.max_deletes);
    let private = Private::shown_if(args.show_private);
    print_plan(&computed.plan, &refusals, args.output, private);
    crate::telemetry::log_memory("plan printed");
    if let Some(missing) = super::missing_error(&computed.missing) {
        return Err(match &args.out {
            Some(_) => missing.and(CommandError::failure(
                "the plan was not saved, because of the errors above",
            )),
            None => missing,
        });
    }
    if let Some(out) = &args.out {
        save(
            out,
            &computed.files,
            computed.plan.clone(),
            &computed.observed,
            &computed.invitations,
            prepare::instance(&computed.client),
        )?;
    }
    let rejected = (!computed.plan.rejected.is_empty()).then(|| {
        CommandError::failure(format!(
            "{} change(s) cannot be made (marked ! in the plan); fix the roles in the file",
            computed.plan.rejected.len()
        ))
    });
    let outcome = if args.detailed_exitcode && !computed.plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Done
    };
    super::finish_with(outcome, [super::unsettled_error(&computed.plan), rejected])
}

/// Prints the plan on stdout, with what the safety limits would say (or why a saved plan is
/// refused).
pub fn print_plan(plan: &Plan, refusals: &[Refusal], output: OutputFormat, private: Private) {
    print!(
        "{}",
        plan::render(output.into(), plan, refusals, Stage::Planned, private)
    );
}

fn save(
    out: &Path,
    files: &[crate::desired::SourceFile],
    plan: Plan,
    observed: &std::collections::HashMap<String, Vec<plan::Observed>>,
    invitations: &crate::plan::PendingInvitations,
    instance: crate::plan::saved::Instance,
) -> Result<(), CommandError> {
    let digests = files
        .iter()
        .map(|file| FileDigest {
            path: file.path.display().to_string(),
            sha256: file.sha256.clone(),
        })
        .collect();
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut file = PlanFile::new(plan, observed, invitations, digests, created_at);
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
