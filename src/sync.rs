//! The sync flow as library calls: read live state and plan (`plan`, `plan_organization`),
//! check the safety limits and apply (`guard_and_apply`), or all of it at once
//! ([`sync()`](crate::sync::sync)). The commands print around these steps; tests call `sync`
//! directly.

mod authorization;
mod organizations;

use std::collections::HashMap;

use crate::apply::{OnDone, Report, execute};
use crate::clerk::{self, ClerkError, Client};
use crate::desired::{self, DesiredState, Managed, OrgRef, Selection, SourceFile};
use crate::plan::found::Found;
use crate::plan::saved::{ResourceStates, resource_refs};
use crate::plan::{
    self, Action, Live, MaxDeletes, Observed, ObservedInvitations, Plan, Refusal, ResolveInput,
};

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The files are valid on their own but not against this instance (a role it does not
    /// know, one person listed twice through an email and an ID, …). Nothing was written.
    #[error("{} error(s) in the desired state", .0.len())]
    Invalid(Vec<desired::Diagnostic>),
    /// Clerk could not be read.
    #[error(transparent)]
    Clerk(#[from] ClerkError),
    /// An `--org` turned out, once found in Clerk, to be an organization the files do not
    /// manage (`all_organizations` excepts it under its other name). Nothing was written.
    #[error("{0}")]
    NotManaged(String),
}

/// Which organizations a plan covers.
enum Scope<'a> {
    /// Every organization the files manage (with `all_organizations`: every organization of
    /// the instance, listed).
    Everything,
    /// One organization, read with its own listing (a webhook reconcile).
    Own(&'a str),
    /// `--org`: the named organizations the files keep, and these organizations that
    /// `all_organizations` covers.
    Selected(Vec<clerk::Organization>),
}

/// A computed plan and what was learnt while computing it.
#[derive(Debug)]
pub struct Planned {
    /// The plan; its `missing` names the organizations of `missing`.
    pub plan: Plan,
    /// The desired-state files the plan was computed from.
    pub files: Vec<SourceFile>,
    /// Organizations the files name that do not exist in Clerk.
    pub missing: Vec<OrgRef>,
    /// The live memberships of the managed organizations, by organization ID.
    pub observed: HashMap<String, Vec<Observed>>,
    /// The pending invitations of the organizations that send invitations.
    pub invitations: ObservedInvitations,
    /// The state of every other object the plan changes (a permission, role, role set,
    /// organization or domain), as read: a saved plan keeps it.
    pub resource_states: ResourceStates,
    /// The directory groups that were unavailable this run (docs/directories.md), and why.
    pub unavailable_groups: Vec<(desired::DirectoryGroup, desired::Unavailable)>,
}

/// The safety limits a run applies (docs/plan-and-apply.md: "Safety limits").
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_deletes: MaxDeletes,
    /// Override the limits (`--force`); the refusals are still reported.
    pub force: bool,
}

/// What checking the limits and applying did.
#[derive(Debug)]
pub enum Applied {
    /// A safety limit refused the plan: nothing was sent.
    Refused(Vec<Refusal>),
    /// The plan ran (the refusals, if any, were overridden with `--force`).
    Ran {
        overridden: Vec<Refusal>,
        report: Report,
    },
}

/// The roles of each role set the file manages, as the plan leaves them, and the roles the
/// plan creates.
type RoleSetsAfter = (
    HashMap<String, std::collections::HashSet<String>>,
    Vec<String>,
);

/// Reads live state and computes the plan for `desired`, which planning consumes: of every
/// organization the files manage, or only of those `--org` selected (`selection`, checked
/// against the files offline; one that selects nothing selects everything). Changes that set
/// a role its organization does not allow are left out (in `plan.rejected`).
pub(crate) async fn plan(
    client: &Client,
    desired: DesiredState,
    selection: &Selection,
) -> Result<Planned, SyncError> {
    if selection.given.is_empty() {
        plan_with(client, desired, Scope::Everything).await
    } else {
        plan_selected(client, desired, selection).await
    }
}

/// Plans only the organizations `--org` selected: those the files name, and those
/// `all_organizations` covers, found in Clerk by ID or slug. No other organization is read. An
/// `--org` that does not exist is `missing`.
async fn plan_selected(
    client: &Client,
    mut desired: DesiredState,
    selection: &Selection,
) -> Result<Planned, SyncError> {
    let mut keep = selection.named.clone();
    let mut covered: Vec<clerk::Organization> = Vec::new();
    let mut missing = Vec::new();
    if desired.all_organizations.is_some() && !selection.covered.is_empty() {
        let lookup = clerk::resolve_organizations(client, &selection.covered, true).await?;
        missing = lookup.missing;
        for (reference, organization) in lookup.found {
            let (id, slug) = (organization.id.as_str(), organization.slug.as_deref());
            match desired.manages(id, slug) {
                // The files name it, under its other name: that entry (joined by the rule) it is.
                Some(Managed::Named { index, .. }) => {
                    keep.push(desired.organizations[index].key.clone())
                }
                Some(Managed::Rule) => {
                    if !covered.iter().any(|o| o.id == organization.id) {
                        covered.push(organization);
                    }
                }
                None => {
                    return Err(SyncError::NotManaged(format!(
                        "--org `{reference}` is {id} ({}), which all_organizations excepts and no file names; the files do not manage it, and nothing was written",
                        slug.unwrap_or("no slug")
                    )));
                }
            }
        }
    }
    desired.organizations.retain(|o| keep.contains(&o.key));
    let mut planned = plan_with(client, desired, Scope::Selected(covered)).await?;
    planned
        .plan
        .missing
        .extend(missing.iter().map(ToString::to_string));
    planned.missing.extend(missing);
    planned.plan.selected = selection.given.clone();
    Ok(planned)
}

/// Plans one organization alone, read with its own listing (a webhook reconcile): the files'
/// entry for it (by ID, or by slug when `slug` is known), joined by `all_organizations`, or the
/// rule alone for an organization the files do not name. `None` (and no request) when the
/// files do not manage it.
pub(crate) async fn plan_organization(
    client: &Client,
    mut desired: DesiredState,
    id: &str,
    slug: Option<&str>,
) -> Result<Option<Planned>, SyncError> {
    let managed = desired.manages(id, slug);
    let rule = desired.all_organizations.take();
    let organization = match (managed, &rule) {
        (Some(Managed::Named { index, joined }), _) => {
            let mut organization = desired.organizations.swap_remove(index);
            if let Some(rule) = rule.as_ref().filter(|_| joined) {
                rule.join(&mut organization);
            }
            organization
        }
        (Some(Managed::Rule), Some(rule)) => rule.organization(id),
        (Some(Managed::Rule) | None, _) => return Ok(None),
    };
    desired.organizations = vec![organization];
    plan_with(client, desired, Scope::Own(id)).await.map(Some)
}

/// Reads live state and plans the organizations of `scope`: the reads, in order, with what
/// decides each read between them ([`plan::found`]).
async fn plan_with(
    client: &Client,
    mut desired: DesiredState,
    scope: Scope<'_>,
) -> Result<Planned, SyncError> {
    let (own, selected) = match scope {
        Scope::Everything => (None, None),
        Scope::Own(id) => (Some(id), None),
        Scope::Selected(covered) => (None, Some(covered)),
    };
    // A webhook reconcile plans with what the daemon's last cycle read.
    let reuse = own.is_some();
    let (people, empty_allowed) = (read_directories(&desired, reuse), desired.empty_allowed());
    let authorization = match (desired.authorization.take(), own) {
        (Some(block), None) => Some(authorization::plan_authorization(client, &block).await?),
        _ => None,
    };
    let (mut lookup, added) = look_up_organizations(client, &mut desired, selected).await?;
    let people = people.await;
    let unavailable_groups = expand_groups(&mut desired, &people, &empty_allowed)?;
    drop(people);
    organizations::look_up_declaring(client, &desired.organizations, &mut lookup).await?;
    let users = clerk::resolve_emails(client, &desired.emails()).await?;
    let references: Vec<OrgRef> = desired
        .organizations
        .iter()
        .map(|o| o.key.clone())
        .collect();
    let found = found_all(&references, &lookup);
    let managed = plan::found::managed(&references, &found, added);
    let (mut live, missing_ids) = read_live(client, &managed, own).await?;
    crate::telemetry::log_memory("memory after reading live state");
    tracing::debug!(strategy = ?live.strategy, instance_total = live.instance_total, "read live memberships");
    drop(managed);
    let organizations = plan::found::located(&references, &found, &live.slugs, &missing_ids);
    let defined_sets = authorization.as_ref().map(|(plan, _)| &plan.role_sets);
    let memberships = Live {
        memberships: std::mem::take(&mut live.memberships),
        unsettled: std::mem::take(&mut live.unsettled),
        ..Live::default()
    };
    let read = read_compared(
        client,
        &desired,
        &lookup,
        &organizations,
        memberships,
        defined_sets,
    )
    .await?;
    let users: HashMap<String, String> = users
        .into_iter()
        .map(|(email, user)| (email, user.id))
        .collect();
    let input = ResolveInput {
        organizations: &organizations,
        users: &users,
        today: time::OffsetDateTime::now_utc().date(),
    };
    // The role sets the organizations move to, as read (and as the file leaves them).
    let moved_to = read.role_sets.clone();
    let mut planned = compute(&input, desired, read)?;
    planned.unavailable_groups = unavailable_groups;
    let sets = authorization
        .map(|(plan, states)| authorization::attach_authorization(&mut planned, plan, states));
    let observed = &planned.observed;
    check_roles(
        client,
        &mut planned.plan,
        &lookup,
        observed,
        sets,
        &moved_to,
    )
    .await?;
    Ok(planned)
}

/// What the located organizations are compared with: their memberships (in `read`), their
/// pending invitations, own fields and domains, and the role sets they would move to (one the
/// file defines as its plan leaves it: those changes run before the organizations').
async fn read_compared(
    client: &Client,
    desired: &DesiredState,
    lookup: &clerk::OrgLookup,
    organizations: &HashMap<&OrgRef, (&str, Option<&str>)>,
    mut read: Live,
    defined_sets: Option<&HashMap<String, std::collections::HashSet<String>>>,
) -> Result<Live, ClerkError> {
    let inviting = plan::found::inviting(&desired.organizations, organizations);
    let invitations = clerk::read_invitations(client, &inviting).await?;
    read.invitations = invitations
        .by_organization
        .into_iter()
        .map(|(id, list)| (id, list.into_iter().map(Into::into).collect()))
        .collect();
    read.unsettled_invitations = invitations.unsettled;
    organizations::read_declared(
        client,
        &desired.organizations,
        lookup,
        organizations,
        &mut read,
    )
    .await?;
    for (key, roles) in defined_sets.into_iter().flatten() {
        let roles = roles.iter().cloned().collect();
        read.role_sets.insert(key.clone(), roles);
    }
    Ok(read)
}

/// Reads the directory groups the files use (none, and no request, without `directories`) in
/// a task of its own, started now, so that it runs beside the reads of Clerk; with `reuse`,
/// the process's last reading of each group instead, where it has one.
fn read_directories(
    desired: &DesiredState,
    reuse: bool,
) -> impl std::future::Future<Output = desired::People> + use<> {
    let wanted = desired.directory_groups_used();
    let task = (!wanted.is_empty()).then(|| {
        let directories = desired.directories.clone();
        let wanted = wanted.clone();
        tokio::spawn(async move {
            if reuse {
                crate::directory::last_or_read(&directories, &wanted).await
            } else {
                crate::directory::read_groups(&directories, &wanted).await
            }
        })
    });
    async move {
        let Some(task) = task else {
            return desired::People::new();
        };
        match task.await {
            Ok(people) => people,
            // Never expected; then no group was read, and each is unavailable.
            Err(error) => {
                let why: std::sync::Arc<str> = format!("the read stopped: {error}").into();
                wanted
                    .into_iter()
                    .map(|group| (group, desired::Reading::Unreadable(why.clone())))
                    .collect()
            }
        }
    }
}

/// Adds the people read to the organizations that use their groups, and counts the groups
/// unavailable this run (`membersync_directory_unavailable_total`).
fn expand_groups(
    desired: &mut DesiredState,
    people: &desired::People,
    empty_allowed: &std::collections::HashSet<desired::DirectoryGroup>,
) -> Result<Vec<(desired::DirectoryGroup, desired::Unavailable)>, SyncError> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    desired.expand(people).map_err(SyncError::Invalid)?;
    let unavailable = desired::unavailable_groups(people, empty_allowed);
    for (group, why) in &unavailable {
        metrics::counter!(
            crate::telemetry::names::DIRECTORY_UNAVAILABLE,
            "directory" => group.directory.to_string()
        )
        .increment(1);
        tracing::warn!(directory = %group.directory, group = %group.group, why = ?why, "directory group unavailable: it removes and demotes no one this run");
    }
    Ok(unavailable)
}

/// What planning needs of each referenced organization Clerk returned.
fn found_all<'a>(
    references: &'a [OrgRef],
    lookup: &'a clerk::OrgLookup,
) -> HashMap<&'a OrgRef, Found<'a>> {
    references
        .iter()
        .filter_map(|reference| Some((reference, found(lookup.found.get(reference)?))))
        .collect()
}

/// What planning needs of an organization Clerk returned.
fn found(organization: &clerk::Organization) -> Found<'_> {
    Found {
        id: &organization.id,
        slug: organization.slug.as_deref(),
        members_count: organization.members_count,
    }
}

/// Resolves and diffs `desired` against what was read (pure), and logs what it found.
fn compute(
    input: &ResolveInput<'_>,
    desired: DesiredState,
    read: Live,
) -> Result<Planned, SyncError> {
    let planning = crate::telemetry::CpuClock::start();
    let (mut plan, missing) =
        plan::compute(input, desired.organizations, &read).map_err(SyncError::Invalid)?;
    plan.missing = missing.iter().map(ToString::to_string).collect();
    for pending in &plan.pending {
        tracing::warn!(organization = %pending.organization_id, email = %pending.email, "pending: no Clerk user has this email yet");
    }
    let (cpu, wall) = planning.elapsed();
    crate::telemetry::log_memory("memory after planning");
    tracing::debug!(
        cpu_ms = cpu.as_secs_f64() * 1000.0,
        wall_ms = wall.as_secs_f64() * 1000.0,
        memberships = read.memberships.values().map(Vec::len).sum::<usize>(),
        changes = plan.all_changes().count(),
        "planned (resolve and diff)"
    );
    Ok(Planned {
        files: desired.files,
        missing,
        observed: read.memberships,
        invitations: read.invitations,
        resource_states: plan::organization_output::organization_states(
            &plan,
            &read.organizations,
            &read.domains,
        ),
        unavailable_groups: Vec::new(),
        plan,
    })
}

/// Looks up the files' organizations (slugs; IDs too when `--org` selected some under a rule)
/// and applies `all_organizations` to the organizations it reaches: every organization of the
/// instance, listed, or with `--org` the `selected` ones it covers. Returns the lookup (with
/// every organization the rule reached) and the member counts of those the rule adds.
async fn look_up_organizations(
    client: &Client,
    desired: &mut DesiredState,
    selected: Option<Vec<clerk::Organization>>,
) -> Result<(clerk::OrgLookup, Vec<(String, u64)>), ClerkError> {
    let named: Vec<OrgRef> = desired
        .organizations
        .iter()
        .map(|o| o.key.clone())
        .collect();
    // With `--org` and a rule, the selected organizations' slugs are needed to tell whether
    // the rule excepts them (the instance's organizations are not listed then).
    let ids_too = selected.is_some() && desired.all_organizations.is_some();
    let mut lookup = clerk::resolve_organizations(client, &named, ids_too).await?;
    drop(named);
    let Some(rule) = desired.all_organizations.take() else {
        return Ok((lookup, Vec::new()));
    };
    let every = match selected {
        Some(mut covered) => {
            covered.extend(lookup.found.values().cloned());
            covered
        }
        None => clerk::list_every_organization(client).await?,
    };
    let reached: Vec<(&str, Option<&str>)> = every
        .iter()
        .map(|o| (o.id.as_str(), o.slug.as_deref()))
        .collect();
    let applied = rule.apply(&mut desired.organizations, &reached, |key| {
        lookup.found.get(key).map(|o| o.id.clone())
    });
    organizations::join_created(&rule, &mut desired.organizations, &lookup);
    tracing::info!(
        organizations = every.len(),
        named = applied.named,
        added = applied.added.len(),
        "all_organizations applies to the instance's organizations"
    );
    // Listed just now, so each exists; a count Clerk did not give is taken as one member.
    let added = applied
        .added
        .iter()
        .map(|&position| {
            let organization = &every[position];
            (
                organization.id.clone(),
                organization.members_count.unwrap_or(1),
            )
        })
        .collect();
    for organization in every {
        lookup
            .found
            .entry(OrgRef::Id(organization.id.clone()))
            .or_insert(organization);
    }
    Ok((lookup, added))
}

/// Reads the live memberships of the `managed` organizations; for a webhook reconcile (`own`:
/// the event's organization ID), each with its own listing, by the ID the file's key resolves
/// to now (for a slug, the lookup): never the listing of another ID an event carried.
async fn read_live(
    client: &Client,
    managed: &HashMap<String, Option<u64>>,
    own: Option<&str>,
) -> Result<(clerk::LiveState, Vec<String>), ClerkError> {
    let Some(event_id) = own else {
        return clerk::read_memberships(client, managed).await;
    };
    let ids: Vec<String> = managed.keys().cloned().collect();
    if ids.iter().any(|id| id != event_id) {
        tracing::info!(event_organization = event_id, organizations = ?ids, "the event's organization is not the one the file names by this slug; reading the file's");
    }
    clerk::read_own_listings(client, &ids).await
}

/// Leaves out the changes that set a role their organization does not allow. Roles are checked
/// only where the plan sets one (creates, role changes and invitations).
async fn check_roles(
    client: &Client,
    plan: &mut Plan,
    lookup: &clerk::OrgLookup,
    observed: &HashMap<String, Vec<Observed>>,
    authorization: Option<RoleSetsAfter>,
    moved_to: &HashMap<String, Vec<String>>,
) -> Result<(), ClerkError> {
    let to_check: Vec<String> = plan
        .organizations
        .iter()
        // An organization the plan creates is checked by Clerk when its members are added.
        .filter(|o| !o.organization_id.is_empty())
        .filter(|o| {
            o.changes.iter().any(|c| {
                matches!(
                    c.action,
                    Action::Create | Action::UpdateRole | Action::Invite
                )
            })
        })
        .map(|o| o.organization_id.clone())
        .collect();
    if to_check.is_empty() {
        return Ok(());
    }
    let known: HashMap<String, clerk::Organization> = lookup
        .found
        .values()
        .map(|o| (o.id.clone(), o.clone()))
        .collect();
    let mut allowed = clerk::allowed_roles(client, &to_check, &known).await?;
    let (sets, created) = authorization.unwrap_or_default();
    // The roles as this plan leaves them: a role set the file manages has its declared
    // roles, and organizations without a role set also get the roles it creates.
    for (id, roles) in allowed.iter_mut() {
        match known.get(id).and_then(|o| o.role_set_key.as_ref()) {
            Some(key) => {
                if let Some(after) = sets.get(key) {
                    *roles = after.clone();
                }
            }
            None => roles.extend(created.iter().cloned()),
        }
    }
    authorization::moved_role_sets(plan, moved_to, &mut allowed);
    plan::reject_disallowed_roles(plan, &allowed, observed);
    for rejected in &plan.rejected {
        tracing::warn!(organization = %rejected.organization_id, user = %rejected.user_id, role = %rejected.role, "role not allowed; the change is left out");
    }
    Ok(())
}

/// Reads the live memberships of these organizations (by ID), for checking a saved plan.
pub(crate) async fn read_organizations(
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

/// Reads the pending invitations of these organizations (by ID), for checking a saved plan.
pub async fn read_invitations(
    client: &Client,
    organization_ids: &[String],
) -> Result<ObservedInvitations, ClerkError> {
    let read = clerk::read_invitations(client, organization_ids).await?;
    Ok(read
        .by_organization
        .into_iter()
        .map(|(id, list)| (id, list.into_iter().map(Into::into).collect()))
        .collect())
}

/// Reads the state of every object other than a membership that a saved plan changes, each by
/// its kind's reading code, for checking that none changed since the plan was made. An
/// object this build cannot read is left out (it counts as `absent`, and the saved plan is
/// refused if it was not).
pub(crate) async fn read_resource_states(
    client: &Client,
    plan: &Plan,
) -> Result<ResourceStates, ClerkError> {
    let objects = resource_refs(plan);
    let mut states = ResourceStates::new();
    // Each kind adds the states of its objects (instance-wide: permissions, roles, role sets;
    // per organization: organizations, domains).
    if objects.iter().any(|o| o.resource.is_instance_wide()) {
        let live = clerk::read_authorization(client).await?.into_live();
        states.extend(plan::authorization::authorization_states(&live));
    }
    states.extend(organizations::read_states(client, plan, &objects).await?);
    Ok(states)
}

/// Checks the safety limits; unless they refuse, calls `before` (which may show the plan) and
/// runs every change, reporting each to `on_done` as it ends.
pub(crate) async fn guard_and_apply(
    client: &Client,
    plan: &Plan,
    limits: Limits,
    before: impl FnOnce(&[Refusal]),
    on_done: OnDone<'_>,
) -> Applied {
    let refusals = plan::refusals(plan, limits.max_deletes);
    let binding = refusals.iter().any(|r| !r.limit.overridable());
    if !refusals.is_empty() && (!limits.force || binding) {
        for refusal in &refusals {
            tracing::error!(limit = ?refusal.limit, reason = %refusal.reason, "plan refused by a safety limit; nothing was written");
        }
        return Applied::Refused(refusals);
    }
    for refusal in &refusals {
        tracing::warn!(limit = ?refusal.limit, reason = %refusal.reason, "safety limit overridden by --force");
    }
    before(&refusals);
    let report = execute(client, plan, on_done).await;
    Applied::Ran {
        overridden: refusals,
        report,
    }
}

/// The whole flow in one call: read, plan, check the limits, apply.
pub async fn sync(
    client: &Client,
    desired: DesiredState,
    limits: Limits,
) -> Result<(Planned, Applied), SyncError> {
    let planned = plan(client, desired, &Selection::default()).await?;
    let applied = guard_and_apply(client, &planned.plan, limits, |_| {}, &|_, _| {}).await;
    Ok((planned, applied))
}
