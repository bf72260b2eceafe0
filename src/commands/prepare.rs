//! What `plan`, `apply` and the daemon prepare before they act: load the files, set up the client,
//! resolve names, read live memberships, and compute the plan.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::clerk::{self, ClerkError, Client, ClientConfig, RateLimit, SecretKey};
use crate::cli::{FileArgs, GlobalArgs};
use crate::desired::{self, DesiredState, OrgRef, UserRef};
use crate::plan::{self, Action, Observed, Plan, ResolveInput};

use super::Exit;

/// A computed plan and what was learnt while computing it.
pub struct Computed {
    /// The desired-state files the plan was computed from (their organizations are consumed
    /// by planning).
    pub files: Vec<desired::SourceFile>,
    pub plan: Plan,
    /// Organizations the file names that do not exist in Clerk.
    pub missing: Vec<OrgRef>,
    /// The live memberships of the managed organizations, by organization ID.
    pub observed: HashMap<String, Vec<Observed>>,
    pub client: Arc<Client>,
}

/// The instance a client talks to, as a saved plan records it: the API URL and the kind of
/// key, never the key.
pub fn instance(client: &Client) -> crate::plan::saved::Instance {
    crate::plan::saved::Instance {
        api_url: client.api_url().to_owned(),
        key: if client.has_live_key() {
            "live"
        } else {
            "test"
        }
        .to_owned(),
    }
}

/// Sets up the client from the global options; prints the problem and says exit 2 if it cannot.
pub fn client(global: &GlobalArgs) -> Result<Arc<Client>, Exit> {
    client_with_shutdown(global, None)
}

/// The same, with a shutdown flag: once it is set, no new request starts.
pub fn client_with_shutdown(
    global: &GlobalArgs,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Arc<Client>, Exit> {
    let key = SecretKey::from_env_or_file(global.secret_key_file.as_deref()).map_err(|error| {
        super::report_error(format_args!("{error}"));
        Exit::Invalid
    })?;
    client_for(global, &global.api_url, key, shutdown)
}

/// Sets up a client for this URL and key, with the global options' rate limit (default: by
/// the key's kind), concurrency and timeout.
pub fn client_for(
    global: &GlobalArgs,
    api_url: &str,
    key: SecretKey,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Arc<Client>, Exit> {
    let rate = global
        .rate_limit
        .unwrap_or_else(|| RateLimit::for_key(key.is_live()));
    let mut config = ClientConfig::new(api_url, rate, global.concurrency);
    config.timeout = global.request_timeout;
    if let Some(shutdown) = shutdown {
        config.shutdown = shutdown;
    }
    Client::new(config, key).map(Arc::new).map_err(|error| {
        super::report_error(format_args!("{error}"));
        Exit::Invalid
    })
}

/// Loads the desired state, printing warnings; prints the errors and says exit 2 if invalid.
pub fn load(files: &FileArgs) -> Result<DesiredState, Exit> {
    let loaded = desired::load(&files.files);
    crate::telemetry::log_memory("memory after loading the desired state");
    let state = loaded.map_err(|error| {
        for diagnostic in &error.0 {
            super::report_error(format_args!("{diagnostic}"));
        }
        super::report_error(format_args!(
            "{} error(s) found; nothing was sent",
            error.0.len()
        ));
        Exit::Invalid
    })?;
    for warning in &state.warnings {
        super::report_warning(format_args!("{warning}"));
    }
    Ok(state)
}

/// Reads live state and computes the plan for `desired`, which planning consumes.
pub async fn compute(client: Arc<Client>, mut desired: DesiredState) -> Result<Computed, Exit> {
    let files = std::mem::take(&mut desired.files);
    match read_and_diff(&client, desired).await {
        Ok(Ok((plan, missing, observed))) => Ok(Computed {
            files,
            plan,
            missing,
            observed,
            client,
        }),
        Ok(Err(errors)) => {
            for error in &errors {
                super::report_error(format_args!("{error}"));
            }
            super::report_error(format_args!(
                "{} error(s) found; nothing was written",
                errors.len()
            ));
            Err(Exit::Invalid)
        }
        Err(error) => {
            super::report_error(format_args!("{error}"));
            Err(Exit::Failure)
        }
    }
}

type Outcome =
    Result<(Plan, Vec<OrgRef>, HashMap<String, Vec<Observed>>), Vec<desired::Diagnostic>>;

async fn read_and_diff(client: &Client, desired: DesiredState) -> Result<Outcome, ClerkError> {
    let refs: Vec<OrgRef> = desired
        .organizations
        .iter()
        .map(|o| o.key.clone())
        .collect();
    let lookup = clerk::resolve_organizations(client, &refs, false).await?;

    let mut emails: Vec<String> = desired
        .organizations
        .iter()
        .flat_map(|o| o.members.iter().map(|m| &m.user).chain(o.ignore.iter()))
        .filter_map(|user| match user {
            UserRef::Email(email) => Some(email.clone()),
            UserRef::Id(_) => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    emails.sort();
    let users = clerk::resolve_emails(client, &emails).await?;

    let mut managed: HashMap<String, Option<u64>> = HashMap::new();
    for reference in &refs {
        match reference {
            OrgRef::Id(id) => {
                managed.entry(id.clone()).or_insert(None);
            }
            OrgRef::Slug(_) => {
                if let Some(org) = lookup.found.get(reference) {
                    managed.insert(org.id.clone(), org.members_count);
                }
            }
        }
    }
    let (mut live, missing_ids) = clerk::read_memberships(client, &managed).await?;
    crate::telemetry::log_memory("memory after reading live state");
    tracing::debug!(strategy = ?live.strategy, instance_total = live.instance_total, "read live memberships");

    drop(managed);

    let mut organizations: HashMap<&OrgRef, (&str, Option<&str>)> =
        HashMap::with_capacity(refs.len());
    for reference in &refs {
        let found = match reference {
            OrgRef::Id(id) if !missing_ids.contains(id) => {
                let label = live.slugs.get(id).map(String::as_str);
                Some((id.as_str(), label))
            }
            OrgRef::Id(_) => None,
            OrgRef::Slug(slug) => lookup
                .found
                .get(reference)
                .map(|org| (org.id.as_str(), Some(slug.as_str()))),
        };
        if let Some(found) = found {
            organizations.insert(reference, found);
        }
    }
    let user_ids: HashMap<String, String> = users
        .into_iter()
        .map(|(email, user)| (email, user.id))
        .collect();
    let planning = crate::telemetry::CpuClock::start();
    let observed = std::mem::take(&mut live.memberships);
    let input = ResolveInput {
        organizations: &organizations,
        users: &user_ids,
        today: time::OffsetDateTime::now_utc().date(),
    };
    let (mut plan, missing) =
        match plan::compute(&input, desired.organizations, &observed, &live.unsettled) {
            Ok(computed) => computed,
            Err(errors) => return Ok(Err(errors)),
        };
    for pending in &plan.pending {
        tracing::warn!(organization = %pending.organization_id, email = %pending.email, "pending: no Clerk user has this email yet");
    }
    let (cpu, wall) = planning.elapsed();
    crate::telemetry::log_memory("memory after planning");
    tracing::debug!(
        cpu_ms = cpu.as_secs_f64() * 1000.0,
        wall_ms = wall.as_secs_f64() * 1000.0,
        memberships = observed.values().map(Vec::len).sum::<usize>(),
        changes = plan.changes().count(),
        "planned (resolve and diff)"
    );
    check_roles(client, &mut plan, &lookup, &observed).await?;
    Ok(Ok((plan, missing, observed)))
}

/// Leaves out the changes that set a role their organization does not allow. Roles are checked
/// only where the plan sets one (creates and role changes).
async fn check_roles(
    client: &Client,
    plan: &mut Plan,
    lookup: &clerk::OrgLookup,
    observed: &HashMap<String, Vec<Observed>>,
) -> Result<(), ClerkError> {
    // Roles are checked only where the plan sets one (creates and role changes).
    let to_check: Vec<String> = plan
        .organizations
        .iter()
        .filter(|o| {
            o.changes
                .iter()
                .any(|c| matches!(c.action, Action::Create | Action::UpdateRole))
        })
        .map(|o| o.organization_id.clone())
        .collect();
    if !to_check.is_empty() {
        let known: HashMap<String, clerk::Organization> = lookup
            .found
            .values()
            .map(|o| (o.id.clone(), o.clone()))
            .collect();
        let allowed = clerk::allowed_roles(client, &to_check, &known).await?;
        plan::reject_disallowed_roles(plan, &allowed, observed);
        for rejected in &plan.rejected {
            tracing::warn!(organization = %rejected.organization_id, user = %rejected.user_id, role = %rejected.role, "role not allowed; the change is left out");
        }
    }
    Ok(())
}

/// Reads the live memberships of these organizations (by ID), for checking a saved plan.
pub async fn read_organizations(
    client: &Client,
    organization_ids: &[String],
) -> Result<HashMap<String, Vec<Observed>>, ClerkError> {
    let managed: HashMap<String, Option<u64>> = organization_ids
        .iter()
        .map(|id| (id.clone(), None))
        .collect();
    let (live, _missing) = clerk::read_memberships(client, &managed).await?;
    Ok(live.memberships)
}
