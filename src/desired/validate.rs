//! Checks one parsed file and builds the domain types, collecting every error it finds: the
//! file's shape, version and defaults, and each organization (its members are checked in
//! `groups`, which knows `group:NAME` keys).

use std::path::Path;

use serde_json::Value;

use super::checker::{Checker, describe};
use super::directories::Directory;
use super::groups::{Group, Groups, Listed};
use super::raw::{RawDefaults, RawFile, RawInvitations, RawMetadataMode, RawOrganization};
use super::yaml::{self, At};
use super::{
    DesiredMember, DesiredOrganization, Diagnostic, Invitations, MetadataMode, OrgRef, Origin,
    UserRef,
};

/// The fields of one `invitations:` block, each `None` where it is not set.
#[derive(Debug, Clone, Default)]
struct InvitationFields {
    send: Option<bool>,
    redirect_url: Option<String>,
    expires_in_days: Option<u16>,
}

impl InvitationFields {
    /// These fields, with `defaults` where they are not set.
    fn over(self, defaults: &InvitationFields) -> InvitationFields {
        InvitationFields {
            send: self.send.or(defaults.send),
            redirect_url: self.redirect_url.or_else(|| defaults.redirect_url.clone()),
            expires_in_days: self.expires_in_days.or(defaults.expires_in_days),
        }
    }

    /// The organization's invitation settings, when it sends invitations.
    fn resolved(self) -> Option<Box<Invitations>> {
        self.send.unwrap_or(false).then(|| {
            Box::new(Invitations {
                redirect_url: self.redirect_url,
                expires_in_days: self.expires_in_days,
            })
        })
    }
}

/// What one valid file declares.
#[derive(Debug)]
pub struct ParsedFile {
    pub organizations: Vec<DesiredOrganization>,
    pub warnings: Vec<Diagnostic>,
    pub all_organizations: Option<super::AllOrganizations>,
    /// How many groups it defines.
    pub groups: usize,
    /// The directories it declares (with where), and how many of its groups come from one.
    pub directories: Vec<(Directory, Origin)>,
    pub directory_groups: usize,
    pub authorization: Option<super::Authorization>,
}

/// Parses and validates the text of one desired-state file.
pub fn parse_file(path: &Path, text: &str) -> Result<ParsedFile, Vec<Diagnostic>> {
    let raw: RawFile = yaml::parse(text).map_err(|error| {
        let key = yaml::key_path_at(text, error.line, error.column);
        vec![Diagnostic {
            file: path.to_owned(),
            position: Some((error.line.max(1), error.column.max(1))),
            key,
            message: error.message,
        }]
    })?;
    let mut checker = Checker::new(path);
    let parsed = checker.file(raw, text);
    let warnings = checker.finish()?;
    Ok(ParsedFile { warnings, ..parsed })
}

/// What `defaults:` sets for the organizations of its file.
struct Defaults {
    prune: bool,
    metadata_mode: MetadataMode,
    invitations: InvitationFields,
}

impl Checker {
    /// The whole file, in the order a reader meets it: version, defaults, groups,
    /// `all_organizations`, organizations. The warnings are the checker's.
    fn file(&mut self, raw: RawFile, text: &str) -> ParsedFile {
        let mut parsed = ParsedFile {
            organizations: Vec::new(),
            warnings: Vec::new(),
            all_organizations: None,
            groups: 0,
            directories: Vec::new(),
            directory_groups: 0,
            authorization: None,
        };
        if declares_nothing(&raw) {
            let message = if has_content(text) {
                "the file holds no mapping; expected `version: 1` and `organizations:`"
            } else {
                "the file is empty; expected `version: 1` and `organizations:`"
            };
            self.error((1, 1), "", message);
            return parsed;
        }
        self.version(raw.version.as_ref());
        let defaults = self.defaults(raw.defaults.as_ref());
        parsed.authorization = raw.authorization.map(|block| self.authorization(block));
        let directories = self.directories(raw.directories);
        let groups = self.groups(raw.groups, &directories);
        parsed.groups = groups.len();
        parsed.directory_groups = groups
            .values()
            .filter(|group| matches!(group, Group::Directory { .. }))
            .count();
        let mut declared: Vec<(Directory, Origin)> = directories.into_values().flatten().collect();
        declared.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        parsed.directories = declared;
        parsed.all_organizations = raw.all_organizations.map(|rule| {
            let invitations = defaults.invitations.clone().resolved();
            self.all_organizations(rule, &groups, defaults.metadata_mode, invitations)
        });
        let Some(organizations) = raw.organizations else {
            self.error(
                (1, 1),
                "organizations",
                "missing `organizations`; list the organizations to manage (`organizations: {}` for none)",
            );
            return parsed;
        };
        parsed.organizations = Vec::with_capacity(organizations.value.0.len());
        for (key, organization) in organizations.value.0 {
            if let Some(organization) = self.organization(key, organization, &defaults, &groups) {
                parsed.organizations.push(organization);
            }
        }
        parsed
    }

    /// `version: 1`, present and nothing else.
    fn version(&mut self, version: Option<&At<Value>>) {
        let Some(version) = version else {
            self.error(
                (1, 1),
                "version",
                "missing `version`; add `version: 1` at the top of the file",
            );
            return;
        };
        match &version.value {
            Value::Number(number) if number.as_u64() == Some(1) => {}
            Value::Number(number) => self.error(
                yaml::position(version),
                "version",
                format!("unsupported version {number}; this membersync reads version 1"),
            ),
            other => self.error(
                yaml::position(version),
                "version",
                format!("`version` must be the number 1, not {}", describe(other)),
            ),
        }
    }

    /// `defaults:`, or the defaults of a file without it.
    fn defaults(&mut self, raw: Option<&At<RawDefaults>>) -> Defaults {
        let Some(raw) = raw else {
            return Defaults {
                prune: true,
                metadata_mode: MetadataMode::default(),
                invitations: InvitationFields::default(),
            };
        };
        Defaults {
            prune: raw.value.prune.unwrap_or(true),
            metadata_mode: raw.value.metadata.map(mode).unwrap_or_default(),
            invitations: raw
                .value
                .invitations
                .as_ref()
                .map(|invitations| self.invitations("defaults.invitations", &invitations.value))
                .unwrap_or_default(),
        }
    }

    /// One entry of `organizations:`, with its file's defaults where it sets nothing.
    fn organization(
        &mut self,
        key: At<String>,
        mut organization: RawOrganization,
        defaults: &Defaults,
        groups: &Groups,
    ) -> Option<DesiredOrganization> {
        let org_key = key.value.trim().to_owned();
        let path = format!("organizations.{org_key}");
        if org_key.is_empty() {
            self.error(
                yaml::position(&key),
                "organizations",
                "an organization key is empty",
            );
            return None;
        }
        let fields = self.organization_fields(&path, &key, &mut organization);
        let members = match organization.members {
            Some(members) => self.members(&path, members.value.0, groups, false),
            None => Listed::default(),
        };
        let (members, sources, directory_groups) =
            (members.members, members.sources, members.directory_groups);
        let ignore = self.ignore(&path, organization.ignore.unwrap_or_default(), &members);
        let invitations = match &organization.invitations {
            Some(own) => self
                .invitations(&format!("{path}.invitations"), &own.value)
                .over(&defaults.invitations),
            None => defaults.invitations.clone(),
        };
        Some(DesiredOrganization {
            key: OrgRef::parse(&org_key),
            prune: organization.prune.unwrap_or(defaults.prune),
            metadata_mode: organization
                .metadata
                .map(mode)
                .unwrap_or(defaults.metadata_mode),
            members,
            ignore,
            invitations: invitations.resolved(),
            origin: self.origin(yaml::position(&key)),
            sources,
            directory_groups,
            unavailable: Vec::new(),
            fields,
        })
    }

    /// Checks an `invitations:` block; each field is kept only where it is set.
    fn invitations(&mut self, path: &str, raw: &RawInvitations) -> InvitationFields {
        let mut fields = InvitationFields {
            send: raw.send,
            ..InvitationFields::default()
        };
        if let Some(url) = &raw.redirect_url {
            let text = url.value.trim();
            if text.starts_with("https://") || text.starts_with("http://") {
                fields.redirect_url = Some(text.to_owned());
            } else {
                self.error(
                    yaml::position(url),
                    format!("{path}.redirect_url"),
                    format!("`{text}` is not an http(s) URL"),
                );
            }
        }
        if let Some(days) = &raw.expires_in_days {
            match u16::try_from(days.value) {
                Ok(value @ 1..=365) => fields.expires_in_days = Some(value),
                _ => self.error(
                    yaml::position(days),
                    format!("{path}.expires_in_days"),
                    format!(
                        "{} is out of range; an invitation lasts 1 to 365 days",
                        days.value
                    ),
                ),
            }
        }
        fields
    }

    /// `ignore:`: users never touched; one that is also a member is ignored, with a warning.
    fn ignore(
        &mut self,
        org_path: &str,
        entries: Vec<At<String>>,
        members: &[DesiredMember],
    ) -> Vec<UserRef> {
        let path = format!("{org_path}.ignore");
        let mut ignore = Vec::with_capacity(entries.len());
        for entry in entries {
            let position = yaml::position(&entry);
            let Some(user) = self.user(&path, &entry.value, position) else {
                continue;
            };
            if let Some(member) = members.iter().find(|member| member.user == user) {
                let message = format!(
                    "`{}` is both a member (line {}) and ignored; it is ignored",
                    entry.value, member.position.line
                );
                self.warning(position, &path, message);
            }
            ignore.push(user);
        }
        ignore
    }
}

/// Whether the file sets none of the top-level keys (it is empty, or not a mapping).
fn declares_nothing(raw: &RawFile) -> bool {
    raw.version.is_none()
        && raw.defaults.is_none()
        && raw.organizations.is_none()
        && raw.groups.is_none()
        && raw.directories.is_none()
        && raw.all_organizations.is_none()
        && raw.authorization.is_none()
}

fn mode(raw: RawMetadataMode) -> MetadataMode {
    match raw {
        RawMetadataMode::Exact => MetadataMode::Exact,
        RawMetadataMode::Merge => MetadataMode::Merge,
    }
}

/// Whether the text holds anything but blank lines, comments and document markers.
fn has_content(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|line| !(line.is_empty() || line.starts_with('#') || line == "---" || line == "..."))
}
