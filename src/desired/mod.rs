//! The desired state: what the YAML file(s) declare, parsed and validated (no IO beyond
//! reading the files, no network).
//!
//! `raw` mirrors the file; `validate` checks it and builds the domain types below, collecting
//! every error with its file, line, column and key; `load` finds and reads the files.

mod authorization;
mod authorization_raw;
mod checker;
mod directories;
mod directory_checks;
mod expand;
pub(crate) mod export;
pub(crate) mod export_authorization;
mod groups;
mod load;
mod names;
mod organization;
mod raw;
mod select;
mod validate;
mod yaml;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::Date;

#[cfg(feature = "simulator")]
pub(crate) use authorization::key_format;
pub use authorization::{
    Authorization, DesiredPermission, DesiredRole, DesiredRoleSet, MAX_ROLES, Named,
};
pub use directories::{
    Directory, DirectoryGroup, Entra, Google, GroupEntry, Okta, People, Provider, ProviderKind,
    Reading, Unavailable, UnavailableGroup,
};
pub use expand::unavailable_groups;
pub(crate) use groups::agree;
pub use groups::{AllOrganizations, Source};
pub(crate) use load::{DEFAULT_FILE, hex, is_resource_error, sha256_hex};
pub use load::{ReadError, load, load_files};
pub use names::{OrgRef, Role, RoleError, UserRef, UserRefError};
pub use organization::{DesiredDomain, EnrollmentMode, OrganizationFields};
pub(crate) use select::Selection;

/// The JSON Schema (draft 2020-12) of the desired-state file, generated from the types the
/// loader reads it into; `schema/membersync.schema.json` holds the same text.
pub(crate) fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// One desired-state file as it was read: its path and the SHA-256 of its bytes (saved plans
/// record it, so the digest is of exactly what was planned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// Every organization and member declared across the desired-state files.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredState {
    /// The files read, in the order they were read.
    pub files: Vec<SourceFile>,
    pub organizations: Vec<DesiredOrganization>,
    /// Things worth telling the user that do not make the file invalid.
    pub warnings: Vec<Diagnostic>,
    /// The members every organization of the instance gets, if a file says so (README:
    /// "Groups, and staff in every organization").
    pub all_organizations: Option<AllOrganizations>,
    /// How many groups the files define.
    pub groups: usize,
    /// The directories the files declare (a name declared in two files with the same
    /// settings is one directory), sorted by name.
    pub directories: Vec<Directory>,
    /// How many of the groups are read from a directory.
    pub directory_groups: usize,
    /// The instance's permissions, roles and role sets, if a file declares them.
    pub authorization: Option<Authorization>,
}

impl DesiredState {
    /// The number of member entries across all organizations.
    pub fn member_count(&self) -> usize {
        self.organizations.iter().map(|org| org.members.len()).sum()
    }

    /// Every email the organizations list (as members or ignored), once each and sorted: the
    /// emails to resolve to Clerk users.
    pub(crate) fn emails(&self) -> Vec<String> {
        let mut emails: Vec<String> = self
            .organizations
            .iter()
            .flat_map(|o| o.members.iter().map(|m| &m.user).chain(o.ignore.iter()))
            .filter_map(|user| match user {
                UserRef::Email(email) => Some(email.clone()),
                UserRef::Id(_) => None,
            })
            .collect::<std::collections::HashSet<_>>()
            .into_iter()
            .collect();
        emails.sort();
        emails
    }

    /// Whether, and how, the files manage the organization with this ID (and slug, when
    /// known): a file names it, or `all_organizations` covers it. `None`: left alone.
    pub(crate) fn manages(&self, id: &str, slug: Option<&str>) -> Option<Managed> {
        let covered = self
            .all_organizations
            .as_ref()
            .is_some_and(|rule| !rule.excepts(id, slug));
        match self
            .organizations
            .iter()
            .position(|o| o.key.names(id, slug))
        {
            Some(index) => Some(Managed::Named {
                index,
                joined: covered,
            }),
            None if covered => Some(Managed::Rule),
            None => None,
        }
    }

    /// Whether an organization the files manage so sends invitations: its entry says so, or
    /// for one no file names, `all_organizations` does.
    pub(crate) fn sends_invitations(&self, managed: Managed) -> bool {
        match managed {
            Managed::Named { index, .. } => self.organizations[index].invitations.is_some(),
            Managed::Rule => self
                .all_organizations
                .as_ref()
                .is_some_and(|rule| rule.invitations.is_some()),
        }
    }
}

/// How the files manage one organization of the instance ([`DesiredState::manages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Managed {
    /// A file names it: `organizations[index]`, which `all_organizations` joins when
    /// `joined`.
    Named { index: usize, joined: bool },
    /// No file names it; `all_organizations` covers it.
    Rule,
}

/// One managed organization.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredOrganization {
    pub key: OrgRef,
    pub prune: bool,
    pub metadata_mode: MetadataMode,
    pub members: Vec<DesiredMember>,
    /// Users membership of whom membersync never creates, changes or deletes.
    pub ignore: Vec<UserRef>,
    /// Whether and how people with no Clerk account yet are invited (docs/invitations.md: "Onboarding
    /// people who have no account yet"); `None`: they stay pending, and the organization's
    /// invitations are never read.
    pub invitations: Option<Box<Invitations>>,
    pub origin: Origin,
    /// Where runs of `members` come from, in order of precedence: `(first index, source)`;
    /// members before the first run are direct entries. A person listed by two runs keeps
    /// the first (a direct entry beats a group entry, both beat `all_organizations`).
    pub sources: Vec<(usize, Source)>,
    /// Its `group:NAME` keys that name a directory's group (and those `all_organizations`
    /// joined), until [`DesiredState::expand`] adds their people to `members`.
    pub directory_groups: Vec<GroupEntry>,
    /// The directory groups it uses that are unavailable this run (set by
    /// [`DesiredState::expand`]): nothing they could decide is removed or demoted in it.
    pub unavailable: Vec<UnavailableGroup>,
    /// The organization's own fields and domains the file manages (docs/organizations.md: "Organizations and
    /// their domains"); `None`: it declares none (most organizations), and nothing but its
    /// members is read or written.
    pub fields: Option<Box<OrganizationFields>>,
}

impl DesiredOrganization {
    /// Where the member at `index` comes from.
    pub fn source_of(&self, index: usize) -> &Source {
        self.sources
            .iter()
            .rev()
            .find(|(start, _)| *start <= index)
            .map(|(_, source)| source)
            .unwrap_or(&Source::Direct)
    }
}

/// How an organization invites the emails it lists that have no Clerk user (`send: true`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Invitations {
    /// Where the invitation link leads (Clerk's `redirect_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// 1–365; Clerk's default is 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u16>,
}

/// How declared metadata is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataMode {
    /// The declared object becomes the whole metadata; undeclared keys are removed.
    #[default]
    Exact,
    /// Declared keys are set (deeply); other keys are kept.
    Merge,
}

/// A metadata object, stored compactly: most memberships have none, and a boxed map keeps
/// the empty case at 8 bytes instead of 72 (this matters at a million memberships). Reads
/// as a `Map` through `Deref`.
#[derive(Clone, Default, PartialEq)]
pub struct Metadata(Option<Box<Map<String, Value>>>);

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Metadata {
    /// A copy as a plain map.
    pub fn to_map(&self) -> Map<String, Value> {
        (**self).clone()
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0.map(|map| *map).unwrap_or_default()
    }
}

impl std::ops::Deref for Metadata {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Metadata {
        Metadata((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, formatter)
    }
}

/// One member entry of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredMember {
    pub user: UserRef,
    pub role: Role,
    /// The metadata the member declares (`None`: none; most members declare none, and a
    /// large file has hundreds of thousands of members, so it is boxed).
    pub metadata: Option<Box<DeclaredMetadata>>,
    /// Listed through this UTC day; from the next day on, treated as not listed.
    pub expires: Option<Date>,
    /// Where the entry is, in its organization's file (see [`Origin::at`]).
    pub position: Position,
}

/// A line and column (1-based) in a file known from context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// A member's declared metadata; a part that is `None` is not managed for that member.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeclaredMetadata {
    pub public: Option<Metadata>,
    pub private: Option<Metadata>,
}

impl DesiredMember {
    /// The declared public metadata; `None`: not managed for this member.
    pub fn public_metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref().and_then(|m| m.public.as_ref())
    }

    /// The declared private metadata; `None`: not managed for this member.
    pub fn private_metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref().and_then(|m| m.private.as_ref())
    }

    /// Whether the entry still counts on `today` (UTC).
    pub fn is_listed_on(&self, today: Date) -> bool {
        self.expires.is_none_or(|expires| today <= expires)
    }
}

/// Where something was declared: file, line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub column: u32,
}

impl Origin {
    /// Another place in the same file.
    pub fn at(&self, position: Position) -> Origin {
        Origin {
            file: self.file.clone(),
            line: position.line,
            column: position.column,
        }
    }

    /// A problem at this place.
    pub fn diagnostic(&self, key: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.as_ref().clone(),
            position: Some((u64::from(self.line), u64::from(self.column))),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        )
    }
}

/// One problem found in the desired state: where, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// Line and column (1-based), when the problem has a place in the file.
    pub position: Option<(u64, u64)>,
    /// The dotted key path, such as `organizations.org_2abc.members.alice@example.com`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(formatter, ":{line}:{column}")?;
        }
        if self.key.is_empty() {
            write!(formatter, ": {}", self.message)
        } else {
            write!(formatter, ": {}: {}", self.key, self.message)
        }
    }
}

/// The desired state could not be loaded; every problem found is listed.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_diagnostics(.0))]
pub struct LoadError(pub Vec<Diagnostic>);

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(|d| format!("error: {d}")).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_date_is_inclusive() {
        let member = DesiredMember {
            user: UserRef::Id("user_1".into()),
            role: Role::parse("member").unwrap(),
            metadata: None,
            expires: Some(time::macros::date!(2027 - 03 - 31)),
            position: Position { line: 1, column: 1 },
        };
        assert!(member.is_listed_on(time::macros::date!(2027 - 03 - 31)));
        assert!(!member.is_listed_on(time::macros::date!(2027 - 04 - 01)));
    }

    fn state(text: &str) -> DesiredState {
        load_files(&[(PathBuf::from("m.yaml"), text.to_owned())]).expect("valid")
    }

    #[test]
    fn the_emails_to_resolve_are_members_and_ignored_ones_once_each_sorted() {
        let desired = state(
            "version: 1\norganizations:\n  acme:\n    members: {Bob@example.com: admin, user_1: member}\n    ignore: [alice@example.com]\n  beta:\n    members: {bob@example.com: member}\n",
        );
        assert_eq!(desired.emails(), ["alice@example.com", "bob@example.com"]);
    }

    #[test]
    fn an_organization_is_managed_by_its_name_or_by_the_rule_unless_excepted() {
        let text = "version: 1\nall_organizations:\n  except: [sandbox]\n  members: {user_9: member}\norganizations:\n  acme:\n    members: {user_1: admin}\n";
        let desired = state(text);
        assert_eq!(
            desired.manages("org_1", Some("acme")),
            Some(Managed::Named {
                index: 0,
                joined: true
            })
        );
        assert_eq!(desired.manages("org_2", None), Some(Managed::Rule));
        assert_eq!(desired.manages("org_3", Some("sandbox")), None);
        let alone = state("version: 1\norganizations:\n  acme:\n    members: {user_1: admin}\n");
        assert_eq!(alone.manages("org_2", None), None);
        assert_eq!(
            alone.manages("org_1", Some("acme")),
            Some(Managed::Named {
                index: 0,
                joined: false
            })
        );
    }
}
