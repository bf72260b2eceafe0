//! Checks one parsed file and builds the domain types, collecting every error it finds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::Date;
use time::macros::format_description;

use super::raw::{RawFile, RawInvitations, RawMember, RawMetadataMode};
use super::yaml::{self, At};
use super::{
    DesiredMember, DesiredOrganization, Diagnostic, Invitations, MetadataMode, OrgRef, Origin,
    Role, Source, UserRef,
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
    let mut checker = Checker {
        file: Arc::new(path.to_owned()),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (organizations, all_organizations, groups) = checker.file(raw, text);
    if checker.errors.is_empty() {
        Ok(ParsedFile {
            organizations,
            warnings: checker.warnings,
            all_organizations,
            groups,
        })
    } else {
        Err(checker.errors)
    }
}

pub(super) struct Checker {
    file: Arc<std::path::PathBuf>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// What one file declares: its organizations, its `all_organizations`, how many groups.
type Declared = (
    Vec<DesiredOrganization>,
    Option<super::AllOrganizations>,
    usize,
);

impl Checker {
    fn diagnostic(
        &self,
        position: (u64, u64),
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.as_ref().clone(),
            position: Some(position),
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn error(
        &mut self,
        position: (u64, u64),
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let diagnostic = self.diagnostic(position, key, message);
        self.errors.push(diagnostic);
    }

    pub(super) fn origin(&self, position: (u64, u64)) -> Origin {
        Origin {
            file: self.file.clone(),
            line: position.0 as u32,
            column: position.1 as u32,
        }
    }

    fn file(&mut self, raw: RawFile, text: &str) -> Declared {
        if raw.version.is_none()
            && raw.defaults.is_none()
            && raw.organizations.is_none()
            && raw.groups.is_none()
            && raw.all_organizations.is_none()
        {
            let message = if has_content(text) {
                "the file holds no mapping; expected `version: 1` and `organizations:`"
            } else {
                "the file is empty; expected `version: 1` and `organizations:`"
            };
            self.error((1, 1), "", message);
            return (Vec::new(), None, 0);
        }
        match &raw.version {
            None => self.error(
                (1, 1),
                "version",
                "missing `version`; add `version: 1` at the top of the file",
            ),
            Some(version) => match &version.value {
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
            },
        }
        let (default_prune, default_mode) = match &raw.defaults {
            Some(defaults) => (
                defaults.value.prune.unwrap_or(true),
                defaults.value.metadata.map(mode),
            ),
            None => (true, None),
        };
        let default_mode = default_mode.unwrap_or_default();
        let default_invitations = raw
            .defaults
            .as_ref()
            .and_then(|defaults| defaults.value.invitations.as_ref())
            .map(|invitations| self.invitations("defaults.invitations", &invitations.value))
            .unwrap_or_default();
        let groups = self.groups(raw.groups);
        let all_organizations = raw.all_organizations.map(|rule| {
            let invitations = default_invitations.clone().resolved();
            self.all_organizations(rule, &groups, default_mode, invitations)
        });
        let Some(organizations) = raw.organizations else {
            self.error(
                (1, 1),
                "organizations",
                "missing `organizations`; list the organizations to manage (`organizations: {}` for none)",
            );
            return (Vec::new(), all_organizations, groups.len());
        };
        let mut result = Vec::with_capacity(organizations.value.0.len());
        for (key, organization) in organizations.value.0 {
            let org_key = key.value.trim().to_owned();
            let path = format!("organizations.{org_key}");
            if org_key.is_empty() {
                self.error(
                    yaml::position(&key),
                    "organizations",
                    "an organization key is empty",
                );
                continue;
            }
            let (members, sources) = match organization.members {
                Some(members) => self.members(&path, members.value.0, &groups, Source::Group),
                None => (Vec::new(), Vec::new()),
            };
            let ignore = self.ignore(&path, organization.ignore.unwrap_or_default(), &members);
            let invitations = match &organization.invitations {
                Some(own) => self
                    .invitations(&format!("{path}.invitations"), &own.value)
                    .over(&default_invitations),
                None => default_invitations.clone(),
            };
            result.push(DesiredOrganization {
                key: OrgRef::parse(&org_key),
                prune: organization.prune.unwrap_or(default_prune),
                metadata_mode: organization.metadata.map(mode).unwrap_or(default_mode),
                members,
                ignore,
                invitations: invitations.resolved(),
                origin: self.origin(yaml::position(&key)),
                sources,
            });
        }
        (result, all_organizations, groups.len())
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

    /// The members of an organization (or of `all_organizations`): its direct entries, then
    /// those its `group:NAME` keys bring, in precedence order, with where each run comes from.
    pub(super) fn members(
        &mut self,
        org_path: &str,
        entries: Vec<(At<String>, At<RawMember>)>,
        groups: &super::groups::Groups,
        group_source: impl Fn(Arc<str>) -> Source,
    ) -> (Vec<DesiredMember>, Vec<(usize, Source)>) {
        let path = format!("{org_path}.members");
        let mut seen: HashMap<UserRef, (String, u64)> = HashMap::new();
        let mut members = Vec::with_capacity(entries.len());
        let mut grouped: Vec<(Arc<str>, Vec<DesiredMember>)> = Vec::new();
        for (key, value) in entries {
            let position = yaml::position(&key);
            let member_path = format!("{path}.{}", key.value);
            if let Some(name) = key.value.trim().strip_prefix("group:") {
                let entries = self.group_members(&path, name, groups, value, position);
                grouped.push((Arc::from(name), entries));
                continue;
            }
            let user = match UserRef::parse(&key.value) {
                Ok(user) => user,
                Err(message) => {
                    self.error(position, &member_path, message);
                    continue;
                }
            };
            if let Some((first_key, first_line)) = seen.get(&user) {
                let message = format!(
                    "`{}` is listed twice (lines {first_line} and {}){}",
                    key.value,
                    position.0,
                    if *first_key != key.value {
                        format!(", once as `{first_key}`")
                    } else {
                        String::new()
                    },
                );
                self.error(position, &path, message);
                continue;
            }
            seen.insert(user.clone(), (key.value.clone(), position.0));
            if let Some(member) = self.member(&member_path, user, value, position) {
                members.push(member);
            }
        }
        self.with_groups(&path, members, grouped, group_source)
    }

    pub(super) fn member(
        &mut self,
        path: &str,
        user: UserRef,
        value: At<RawMember>,
        position: (u64, u64),
    ) -> Option<DesiredMember> {
        let value_position = yaml::position(&value);
        let (role, public_metadata, private_metadata, expires) = match value.value {
            RawMember::Role(role) => (self.role(path, &role, value_position), None, None, None),
            RawMember::Long(long) => {
                let long = *long;
                let role = match &long.role {
                    Some(role) => {
                        self.role(&format!("{path}.role"), &role.value, yaml::position(role))
                    }
                    None => {
                        self.error(value_position, path, "missing `role`");
                        None
                    }
                };
                let public = long
                    .public_metadata
                    .and_then(|m| self.metadata(&format!("{path}.public_metadata"), m))
                    .map(super::Metadata::from);
                let private = long
                    .private_metadata
                    .and_then(|m| self.metadata(&format!("{path}.private_metadata"), m))
                    .map(super::Metadata::from);
                let expires = long
                    .expires
                    .and_then(|e| self.expires(&format!("{path}.expires"), e));
                (role, public, private, expires)
            }
        };
        let metadata = (public_metadata.is_some() || private_metadata.is_some()).then(|| {
            Box::new(super::DeclaredMetadata {
                public: public_metadata,
                private: private_metadata,
            })
        });
        Some(DesiredMember {
            user,
            role: role?,
            metadata,
            expires,
            position: super::Position {
                line: position.0 as u32,
                column: position.1 as u32,
            },
        })
    }

    fn role(&mut self, path: &str, text: &str, position: (u64, u64)) -> Option<Role> {
        Role::parse(text)
            .map_err(|message| self.error(position, path, message))
            .ok()
    }

    fn metadata(&mut self, path: &str, value: At<Value>) -> Option<Map<String, Value>> {
        let position = yaml::position(&value);
        match value.value {
            Value::Object(map) => Some(map),
            other => {
                let message = format!("metadata must be a mapping, not {}", describe(&other));
                self.error(position, path, message);
                None
            }
        }
    }

    fn expires(&mut self, path: &str, value: At<String>) -> Option<Date> {
        let format = format_description!("[year]-[month]-[day]");
        Date::parse(value.value.trim(), format)
            .map_err(|_| {
                let message = format!(
                    "`{}` is not a date; write it as YYYY-MM-DD, like 2027-03-31",
                    value.value
                );
                self.error(yaml::position(&value), path, message)
            })
            .ok()
    }

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
            match UserRef::parse(&entry.value) {
                Ok(user) => {
                    if let Some(member) = members.iter().find(|member| member.user == user) {
                        let message = format!(
                            "`{}` is both a member (line {}) and ignored; it is ignored",
                            entry.value, member.position.line
                        );
                        let warning = self.diagnostic(position, &path, message);
                        self.warnings.push(warning);
                    }
                    ignore.push(user);
                }
                Err(message) => self.error(position, &path, message),
            }
        }
        ignore
    }
}

fn mode(raw: RawMetadataMode) -> MetadataMode {
    match raw {
        RawMetadataMode::Exact => MetadataMode::Exact,
        RawMetadataMode::Merge => MetadataMode::Merge,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "empty".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// Whether the text holds anything but blank lines, comments and document markers.
fn has_content(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|line| !(line.is_empty() || line.starts_with('#') || line == "---" || line == "..."))
}
