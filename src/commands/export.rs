//! `membersync export`: the current state as a desired-state file that plans empty. An
//! interrupt (SIGINT, SIGTERM) lets the reads in flight finish and writes nothing: a partial
//! export, applied, would remove the members it missed.

use std::collections::HashMap;

use crate::clerk::{self, ClerkError, Client, Organization};
use crate::cli::ExportArgs;
use crate::desired::OrgRef;
use crate::desired::export::{ExportFields, ExportMember, ExportOrganization, render};
use crate::desired::export_authorization::{
    ExportPermission, ExportRole, ExportRoleSet, render_authorization,
};

use super::interrupt::Interrupt;
use super::{CommandError, CommandResult, Finished, prepare};

pub async fn run(args: &ExportArgs) -> CommandResult {
    // `--org` values are checked (trimmed, not empty, no `/`) as the command line is parsed.
    let references: Vec<OrgRef> = args
        .organizations
        .iter()
        .map(|text| OrgRef::parse(text))
        .collect();
    let mut interrupt = Interrupt::install();
    let client = prepare::client_with_shutdown(&args.api, Some(interrupt.flag()))?;
    interrupt.watch(&client);
    let read = read(&client, &references).await;
    if interrupt.fired() {
        return Err(CommandError::failure(
            "interrupted: nothing was exported (a partial export would remove, once applied, the members it missed); run export again",
        ));
    }
    let (organizations, missing) = read?;
    if let Some(missing) = super::missing_error(&missing) {
        return Err(missing.and(CommandError::failure("nothing was exported")));
    }
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let header = format!(
        "Exported by membersync {} at {created_at}.\nEvery organization below is managed with the defaults (prune: true, metadata: exact):\nmembers not listed are removed, and declared metadata is the whole metadata.",
        env!("CARGO_PKG_VERSION")
    );
    let header = if organizations.iter().any(|o| !o.invited.is_empty()) {
        header
            + "\nAn organization with pending invitations sends invitations: its invited emails are members below."
    } else {
        header
    };
    let mut text = render(&organizations, args.by_email, &header);
    if args.authorization {
        let block = read_authorization(&client).await?;
        text = text.replacen("version: 1\n", &format!("version: 1\n{block}"), 1);
    }
    let members: usize = organizations.iter().map(|o| o.members.len()).sum();
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|error| {
                CommandError::failure(format!("cannot write {}: {error}", path.display()))
            })?;
            super::report_info(format_args!(
                "Exported {} organization(s) and {members} membership(s) to {}.",
                organizations.len(),
                path.display()
            ));
        }
        None => print!("{text}"),
    }
    Ok(Finished::Done)
}

/// Reads the named organizations (every one when none is named) and their memberships.
async fn read(
    client: &Client,
    references: &[OrgRef],
) -> Result<(Vec<ExportOrganization>, Vec<OrgRef>), ClerkError> {
    let (organizations, missing): (Vec<Organization>, Vec<OrgRef>) = if references.is_empty() {
        (clerk::list_every_organization(client).await?, Vec::new())
    } else {
        let lookup = clerk::resolve_organizations(client, references, true).await?;
        let mut found: Vec<Organization> = lookup.found.into_values().collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        (found, lookup.missing)
    };
    if !missing.is_empty() {
        return Ok((Vec::new(), missing));
    }
    let managed: HashMap<String, Option<u64>> = organizations
        .iter()
        .map(|o| (o.id.clone(), o.members_count))
        .collect();
    let (mut live, _) = clerk::read_memberships(client, &managed).await?;
    let ids: Vec<String> = organizations.iter().map(|o| o.id.clone()).collect();
    let mut invitations = clerk::read_invitations(client, &ids).await?.by_organization;
    let mut domains = clerk::read_domains(client, &ids).await?.by_organization;
    let exported = organizations
        .into_iter()
        .map(|organization| {
            let members = live
                .memberships
                .remove(&organization.id)
                .unwrap_or_default()
                .into_iter()
                .map(|m| ExportMember {
                    email: m.email.map(String::from),
                    user_id: m.user_id.into(),
                    role: m.role.to_string(),
                    public_metadata: m.public_metadata.into_map(),
                    private_metadata: m.private_metadata.into_map(),
                })
                .collect();
            let invited = invitations
                .remove(&organization.id)
                .unwrap_or_default()
                .into_iter()
                .map(|invitation| ExportMember {
                    email: Some(invitation.email_address),
                    user_id: String::new(),
                    role: invitation.role,
                    public_metadata: invitation.public_metadata.unwrap_or_default(),
                    private_metadata: invitation.private_metadata.unwrap_or_default(),
                })
                .collect();
            let domains = domains.remove(&organization.id).unwrap_or_default();
            ExportOrganization {
                fields: Some(fields(&organization, domains)),
                invited,
                id: organization.id,
                slug: organization.slug,
                name: organization.name,
                members,
            }
        })
        .collect();
    Ok((exported, Vec::new()))
}

/// The organization's own fields and domains, as the export writes them.
fn fields(organization: &Organization, domains: Vec<clerk::Domain>) -> ExportFields {
    ExportFields {
        name: organization.name.clone(),
        max_allowed_memberships: organization.max_allowed_memberships,
        admin_delete_enabled: organization.admin_delete_enabled,
        role_set_key: organization.role_set_key.clone(),
        public_metadata: organization.public_metadata.clone().unwrap_or_default(),
        private_metadata: organization.private_metadata.clone().unwrap_or_default(),
        domains: domains
            .into_iter()
            .map(|d| (d.name.to_lowercase(), d.enrollment_mode))
            .collect(),
    }
}

/// The `authorization` block of the instance: its custom permissions, its roles and its role
/// sets (a set without a default or creator role is left out: the file requires them).
async fn read_authorization(client: &Client) -> Result<String, CommandError> {
    let live = clerk::read_authorization(client)
        .await
        .map_err(|error| CommandError::failure(error.to_string()))?;
    let permissions: Vec<ExportPermission> = live
        .permissions
        .into_iter()
        .filter(|p| !p.is_system())
        .map(|p| ExportPermission {
            key: p.key,
            name: p.name,
            description: p.description.unwrap_or_default(),
        })
        .collect();
    let roles: Vec<ExportRole> = live
        .roles
        .into_iter()
        .map(|r| ExportRole {
            key: r.key,
            name: r.name,
            description: r.description.unwrap_or_default(),
            permissions: r.permissions.into_iter().map(|p| p.key).collect(),
        })
        .collect();
    let role_sets: Vec<ExportRoleSet> = live
        .role_sets
        .into_iter()
        .filter_map(|s| {
            Some(ExportRoleSet {
                initial: s.is_initial(),
                default_role: s.default_role?.key,
                creator_role: s.creator_role?.key,
                key: s.key,
                name: s.name,
                description: s.description.unwrap_or_default(),
                roles: s.roles.into_iter().map(|r| r.key).collect(),
            })
        })
        .collect();
    Ok(render_authorization(&permissions, &roles, &role_sets))
}
