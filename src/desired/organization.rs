//! What the file declares about an organization itself, beside its members (README:
//! "Organizations and their domains"): its name, membership limit, `admin_delete_enabled`, role
//! set, its own metadata and its verified domains. Each field is managed when present and left
//! alone when absent. Checked offline: a name that is empty or too long, a negative limit, a
//! role set key that is not `role_set:<key>`, metadata that is not a mapping, a domain that is
//! not a domain name or is listed twice, an unknown enrollment mode, and a slug that cannot be
//! created (when a `name` asks for a creation).

use std::collections::HashMap;
use std::fmt;

use super::checker::Checker;
use super::raw::{ENROLLMENT_MODES, RawDomain, RawOrganization};
use super::yaml::{self, At};
use super::{Diagnostic, Metadata, OrgRef, Origin, Position};

/// Clerk's longest organization name.
const NAME_LIMIT: usize = 256;

/// The organization's own fields the file declares; `None`: not managed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrganizationFields {
    pub name: Option<String>,
    /// 0: no limit.
    pub max_allowed_memberships: Option<u64>,
    pub admin_delete_enabled: Option<bool>,
    /// The role set's key, and where the file names it.
    pub role_set: Option<(String, Position)>,
    pub public_metadata: Option<Metadata>,
    pub private_metadata: Option<Metadata>,
    /// `None`: the organization's domains are not managed; `Some`: exactly these.
    pub domains: Option<Vec<DesiredDomain>>,
}

impl OrganizationFields {
    /// Whether the file manages any field of the organization itself, or its domains.
    pub fn is_empty(&self) -> bool {
        *self == OrganizationFields::default()
    }

    /// Whether it declares any field a listing of organizations shows (everything but domains).
    pub fn declares_fields(&self) -> bool {
        self.name.is_some()
            || self.max_allowed_memberships.is_some()
            || self.admin_delete_enabled.is_some()
            || self.role_set.is_some()
            || self.public_metadata.is_some()
            || self.private_metadata.is_some()
    }
}

/// One declared domain of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDomain {
    /// Lower-cased.
    pub name: String,
    pub enrollment_mode: EnrollmentMode,
    pub position: Position,
}

/// How people with an address at a domain join its organization (Clerk's `enrollment_mode`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentMode {
    /// Only people an admin invites.
    ManualInvitation,
    /// Everyone who signs up with an address at the domain is invited.
    AutomaticInvitation,
    /// Everyone who signs up with an address at the domain may ask to join.
    AutomaticSuggestion,
    /// People sign in through the organization's enterprise SSO connection.
    EnterpriseSso,
}

impl EnrollmentMode {
    /// The mode as Clerk names it; `None` for another word.
    pub fn parse(text: &str) -> Option<EnrollmentMode> {
        Some(match text {
            "manual_invitation" => EnrollmentMode::ManualInvitation,
            "automatic_invitation" => EnrollmentMode::AutomaticInvitation,
            "automatic_suggestion" => EnrollmentMode::AutomaticSuggestion,
            "enterprise_sso" => EnrollmentMode::EnterpriseSso,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentMode::ManualInvitation => "manual_invitation",
            EnrollmentMode::AutomaticInvitation => "automatic_invitation",
            EnrollmentMode::AutomaticSuggestion => "automatic_suggestion",
            EnrollmentMode::EnterpriseSso => "enterprise_sso",
        }
    }

    /// Whether everyone with an address at the domain gets in (invited, or offered to join)
    /// without anyone naming them: a reviewer must see such a change.
    pub fn lets_everyone_in(self) -> bool {
        matches!(
            self,
            EnrollmentMode::AutomaticInvitation | EnrollmentMode::AutomaticSuggestion
        )
    }
}

impl fmt::Display for EnrollmentMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(self.as_str())
    }
}

impl Checker {
    /// The organization's own fields and domains (`None`: it declares none). `key` is its key,
    /// for the check that a slug can be created.
    pub(super) fn organization_fields(
        &mut self,
        path: &str,
        key: &At<String>,
        raw: &mut RawOrganization,
    ) -> Option<Box<OrganizationFields>> {
        let mut fields = OrganizationFields {
            admin_delete_enabled: raw.admin_delete_enabled,
            ..OrganizationFields::default()
        };
        if let Some(name) = raw.name.take() {
            fields.name = self.organization_name(&format!("{path}.name"), name);
            if fields.name.is_some() {
                self.creatable_slug(path, key);
            }
        }
        if let Some(limit) = raw.max_allowed_memberships.take() {
            match u64::try_from(limit.value) {
                Ok(limit) => fields.max_allowed_memberships = Some(limit),
                Err(_) => self.error(
                    yaml::position(&limit),
                    format!("{path}.max_allowed_memberships"),
                    format!("{} is negative; 0 means no limit", limit.value),
                ),
            }
        }
        if let Some(role_set) = raw.role_set.take() {
            fields.role_set = self.role_set(&format!("{path}.role_set"), role_set);
        }
        fields.public_metadata = raw
            .public_metadata
            .take()
            .and_then(|m| self.metadata(&format!("{path}.public_metadata"), m))
            .map(Metadata::from);
        fields.private_metadata = raw
            .private_metadata
            .take()
            .and_then(|m| self.metadata(&format!("{path}.private_metadata"), m))
            .map(Metadata::from);
        if let Some(domains) = raw.domains.take() {
            fields.domains = Some(self.domains(&format!("{path}.domains"), domains.value.0));
        }
        (!fields.is_empty()).then(|| Box::new(fields))
    }

    fn organization_name(&mut self, path: &str, name: At<String>) -> Option<String> {
        let text = name.value.trim();
        let problem = if text.is_empty() {
            Some("an organization's name cannot be empty".to_owned())
        } else if text.chars().count() > NAME_LIMIT {
            Some(format!(
                "the name is {} characters long; Clerk allows {NAME_LIMIT}",
                text.chars().count()
            ))
        } else if text.contains('<') || text.contains('>') || text.contains("://") {
            Some("an organization's name may not contain URLs or HTML".to_owned())
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.error(yaml::position(&name), path, message);
                None
            }
            None => Some(text.to_owned()),
        }
    }

    /// An organization with a `name` is created when no organization has its slug: the key must
    /// be a slug Clerk accepts (lower-case letters, digits and `-`), unless it is an ID.
    fn creatable_slug(&mut self, path: &str, key: &At<String>) {
        let key_text = key.value.trim();
        if matches!(OrgRef::parse(key_text), OrgRef::Id(_)) {
            return;
        }
        let valid = key_text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            self.error(
                yaml::position(key),
                path,
                format!(
                    "`{key_text}` cannot be created: a slug is lower-case letters, digits and `-` (an organization with `name` is created when no organization has its slug)"
                ),
            );
        }
    }

    fn role_set(&mut self, path: &str, key: At<String>) -> Option<(String, Position)> {
        let text = key.value.trim();
        let valid = text.strip_prefix("role_set:").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        });
        let position = yaml::position(&key);
        if !valid {
            self.error(
                position,
                path,
                format!(
                    "`{text}` is not a role set key; a role set key is `role_set:` followed by lower-case letters, digits, `_` and `-`"
                ),
            );
            return None;
        }
        Some((text.to_owned(), at(position)))
    }

    /// `domains:`: each a domain name (compared case-insensitively, listed once) with a known
    /// enrollment mode.
    fn domains(
        &mut self,
        path: &str,
        entries: Vec<(At<String>, At<RawDomain>)>,
    ) -> Vec<DesiredDomain> {
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut domains = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let position = yaml::position(&key);
            let name = key.value.trim().to_lowercase();
            let domain_path = format!("{path}.{}", key.value);
            if !is_domain_name(&name) {
                self.error(
                    position,
                    path,
                    format!(
                        "`{}` is not a domain name (like `acme.com`: letters, digits and `-` between dots)",
                        key.value
                    ),
                );
                continue;
            }
            if let Some(first) = seen.get(&name) {
                self.error(
                    position,
                    path,
                    format!(
                        "the domain `{name}` is listed twice (lines {first} and {})",
                        position.0
                    ),
                );
                continue;
            }
            seen.insert(name.clone(), position.0);
            let Some(enrollment_mode) = self.enrollment_mode(&domain_path, value) else {
                continue;
            };
            domains.push(DesiredDomain {
                name,
                enrollment_mode,
                position: at(position),
            });
        }
        domains
    }

    fn enrollment_mode(&mut self, path: &str, value: At<RawDomain>) -> Option<EnrollmentMode> {
        let value_position = yaml::position(&value);
        let (text, position, path) = match value.value {
            RawDomain::Mode(mode) => (mode, value_position, path.to_owned()),
            RawDomain::Long(long) => match long.enrollment_mode {
                Some(mode) => (
                    mode.value.clone(),
                    yaml::position(&mode),
                    format!("{path}.enrollment_mode"),
                ),
                None => {
                    self.error(value_position, path, "missing `enrollment_mode`");
                    return None;
                }
            },
        };
        let mode = EnrollmentMode::parse(text.trim());
        if mode.is_none() {
            self.error(
                position,
                path,
                format!(
                    "`{text}` is not an enrollment mode; use one of {}",
                    ENROLLMENT_MODES.join(", ")
                ),
            );
        }
        mode
    }
}

fn at(position: (u64, u64)) -> Position {
    Position {
        line: position.0 as u32,
        column: position.1 as u32,
    }
}

/// Whether `name` (lower-cased) is a domain name: labels of letters, digits and `-` (not at
/// either end), 1–63 characters each, at least two, 253 characters at most, and a top-level
/// label of letters.
fn is_domain_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|top| top.len() >= 2 && top.chars().all(|c| c.is_ascii_lowercase()))
}

/// One domain declared by two organizations of the files: an error at the second, naming the
/// first (Clerk lets one organization hold a domain).
pub(super) fn domains_declared_twice(
    organizations: &[super::DesiredOrganization],
) -> Vec<Diagnostic> {
    let mut first: HashMap<&str, (&OrgRef, Origin)> = HashMap::new();
    let mut problems = Vec::new();
    for organization in organizations {
        let domains = organization
            .fields
            .as_ref()
            .and_then(|fields| fields.domains.as_ref());
        for domain in domains.into_iter().flatten() {
            let origin = organization.origin.at(domain.position);
            match first.get(domain.name.as_str()) {
                Some((key, at)) if *key != &organization.key => {
                    problems.push(origin.diagnostic(
                        format!("organizations.{}.domains", organization.key),
                        format!(
                            "the domain `{}` is also declared by `{key}` (at {at}); a domain belongs to one organization",
                            domain.name
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    first.insert(&domain.name, (&organization.key, origin));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_labels_between_dots() {
        for good in ["acme.com", "eu.acme.co.uk", "a-1.io", "x.travel"] {
            assert!(is_domain_name(good), "{good}");
        }
        for bad in [
            "acme",
            "-acme.com",
            "acme-.com",
            "acme..com",
            "acme.c0m",
            "ac me.com",
            "acme.com.",
        ] {
            assert!(!is_domain_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_automatic_modes_let_everyone_in() {
        let everyone: Vec<&str> = ENROLLMENT_MODES
            .iter()
            .filter(|m| EnrollmentMode::parse(m).unwrap().lets_everyone_in())
            .copied()
            .collect();
        assert_eq!(everyone, ["automatic_invitation", "automatic_suggestion"]);
    }
}
