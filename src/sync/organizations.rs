//! Reading what the organizations' own fields and domains are compared with (README:
//! "Onboarding a customer organization in one pull request"), only for the organizations
//! whose file declares them: a file that declares none sends no request here.
//!
//! - Their fields come from the lookup the run makes anyway (a slug's
//!   `GET /organizations/{slug}`); an organization the file names by ID is looked up with the
//!   other IDs, 100 per request.
//! - Their domains come from [`clerk::read_domains`]: the instance listing or each
//!   organization's own, whichever needs fewer requests.
//! - The role sets they move to are read (`GET /role_sets/{key}`) for the check that no member
//!   holds a role the new set lacks.

use std::collections::{HashMap, HashSet};

use crate::clerk::{self, ClerkError, Client};
use crate::desired::{AllOrganizations, DesiredOrganization, OrgRef};
use crate::plan::organizations::{ObservedDomain, ObservedOrganization};
use crate::plan::saved::{ResourceRef, ResourceStates};
use crate::plan::{self, Live, Plan, Resource};

/// Adds to `lookup` the organizations named by ID that declare their own fields or domains,
/// so that their fields are known and their existence checked.
pub(super) async fn look_up_declaring(
    client: &Client,
    organizations: &[DesiredOrganization],
    lookup: &mut clerk::OrgLookup,
) -> Result<(), ClerkError> {
    let ids: Vec<OrgRef> = organizations
        .iter()
        .filter(|o| o.fields.is_some() && matches!(o.key, OrgRef::Id(_)))
        .filter(|o| !lookup.found.contains_key(&o.key))
        .map(|o| o.key.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found = clerk::resolve_organizations(client, &ids, true).await?;
    lookup.found.extend(found.found);
    Ok(())
}

/// `all_organizations` covers the organizations the plan creates (a slug no organization has,
/// with a `name`) in the same run, unless it excepts their slug: they exist once the run
/// creates them.
pub(super) fn join_created(
    rule: &AllOrganizations,
    organizations: &mut [DesiredOrganization],
    lookup: &clerk::OrgLookup,
) {
    for organization in organizations {
        let OrgRef::Slug(slug) = &organization.key else {
            continue;
        };
        let named = organization
            .fields
            .as_ref()
            .is_some_and(|fields| fields.name.is_some());
        if named && !lookup.found.contains_key(&organization.key) && !rule.excepts("", Some(slug)) {
            rule.join(organization);
        }
    }
}

/// Reads what the declaring organizations that exist (`located`: reference → ID) are compared
/// with into `live`.
pub(super) async fn read_declared(
    client: &Client,
    organizations: &[DesiredOrganization],
    lookup: &clerk::OrgLookup,
    located: &HashMap<&OrgRef, (&str, Option<&str>)>,
    live: &mut Live,
) -> Result<(), ClerkError> {
    let mut with_domains = Vec::new();
    let mut role_sets = HashSet::new();
    for organization in organizations {
        let Some(fields) = &organization.fields else {
            continue;
        };
        let Some((id, _)) = located.get(&organization.key) else {
            // An organization the plan creates: the role set it is created with is checked.
            if let Some((key, _)) = &fields.role_set {
                role_sets.insert(key.clone());
            }
            continue;
        };
        if fields.domains.is_some() {
            with_domains.push((*id).to_owned());
        }
        let Some(found) = lookup.found.get(&organization.key) else {
            continue;
        };
        let observed = observed(found);
        if let Some((key, _)) = &fields.role_set
            && observed.role_set_key.as_ref() != Some(key)
        {
            role_sets.insert(key.clone());
        }
        live.organizations.insert(observed.id.clone(), observed);
    }
    let domains = clerk::read_domains(client, &with_domains).await?;
    for (id, list) in domains.by_organization {
        let list = list.into_iter().map(observed_domain).collect();
        live.domains.insert(id, list);
    }
    live.unsettled_domains = domains.unsettled;
    for key in role_sets {
        match client.get_role_set(&key).await {
            Ok(set) => {
                let roles = set.roles.into_iter().map(|r| r.key).collect();
                live.role_sets.insert(key, roles);
            }
            Err(error) if error.status() == Some(404) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// An organization as the plan compares it.
fn observed(organization: &clerk::Organization) -> ObservedOrganization {
    ObservedOrganization {
        id: organization.id.clone(),
        slug: organization.slug.clone(),
        name: organization.name.clone().unwrap_or_default(),
        max_allowed_memberships: organization.max_allowed_memberships,
        admin_delete_enabled: organization.admin_delete_enabled,
        role_set_key: organization.role_set_key.clone(),
        public_metadata: organization.public_metadata.clone().unwrap_or_default(),
        private_metadata: organization.private_metadata.clone().unwrap_or_default(),
    }
}

fn observed_domain(domain: clerk::Domain) -> ObservedDomain {
    ObservedDomain {
        id: domain.id,
        name: domain.name.to_lowercase(),
        enrollment_mode: domain.enrollment_mode,
    }
}

/// The states of the organizations and domains a saved plan changes, read again (see
/// [`plan::organization_output::organization_states`]): the organizations by ID, 100 per request, an
/// organization the plan creates by its slug, and the domains of those whose domains change.
pub(super) async fn read_states(
    client: &Client,
    plan: &Plan,
    objects: &[ResourceRef],
) -> Result<ResourceStates, ClerkError> {
    let mut ids: Vec<OrgRef> = Vec::new();
    let mut slugs: Vec<OrgRef> = Vec::new();
    let mut with_domains: Vec<String> = Vec::new();
    for object in objects {
        match (object.resource, object.organization_id.as_deref()) {
            (Resource::Organization, Some(id)) => ids.push(OrgRef::Id(id.to_owned())),
            (Resource::Organization, None) => slugs.push(OrgRef::parse(&object.key)),
            (Resource::Domain, Some(id)) => with_domains.push(id.to_owned()),
            _ => {}
        }
    }
    with_domains.sort();
    with_domains.dedup();
    let mut organizations: HashMap<String, ObservedOrganization> = HashMap::new();
    let mut taken: HashMap<String, ObservedOrganization> = HashMap::new();
    if !ids.is_empty() || !slugs.is_empty() {
        ids.extend(slugs);
        let found = clerk::resolve_organizations(client, &ids, true).await?;
        for (reference, organization) in found.found {
            match reference {
                OrgRef::Id(id) => organizations.insert(id, observed(&organization)),
                OrgRef::Slug(slug) => taken.insert(slug, observed(&organization)),
            };
        }
    }
    let mut domains = HashMap::new();
    for (id, list) in clerk::read_domains(client, &with_domains)
        .await?
        .by_organization
    {
        domains.insert(id, list.into_iter().map(observed_domain).collect());
    }
    let mut states = plan::organization_output::organization_states(plan, &organizations, &domains);
    // An organization the plan creates: its slug was free; taken since, it is not `absent`.
    for object in objects {
        if object.resource == Resource::Organization
            && object.organization_id.is_none()
            && let Some(organization) = taken.get(&object.key)
        {
            states.insert(
                object.clone(),
                plan::saved::digest(&serde_json::json!({"id": organization.id})),
            );
        }
    }
    Ok(states)
}
