//! Groups from the company directory (docs/directories.md): the directories a file declares
//! (plain data; the `directory` module reads them), a `groups:` entry that names a group of
//! one, and the people read from it as the pure code receives them. A directory group's
//! people are known only once a run has read it, so the desired state keeps the reference
//! ([`GroupEntry`]) until [`DesiredState::expand`](super::DesiredState::expand) adds them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::DesiredMember;

/// One entry of `directories:`: where groups can come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Directory {
    /// Its name in the file (`corp`); every message names it.
    pub name: String,
    pub provider: Provider,
}

/// The provider of a directory, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Provider {
    Google(Google),
    Okta(Okta),
    Entra(Entra),
}

/// Google Workspace, read through the Admin SDK Directory API as a service account acting
/// for an admin (domain-wide delegation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Google {
    /// The service account's JSON key; `None`: the file `GOOGLE_APPLICATION_CREDENTIALS` names.
    pub credentials_file: Option<PathBuf>,
    /// The admin the service account acts as.
    pub subject: String,
    /// Replaces `https://admin.googleapis.com` (a proxy or a test server).
    pub api_url: Option<String>,
    /// Replaces the key file's `token_uri`.
    pub token_url: Option<String>,
}

/// Okta, read through its management API with an API token (`SSWS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Okta {
    /// The org's base URL, `https://example.okta.com`.
    pub url: String,
    /// The API token; `None`: the variable `OKTA_API_TOKEN`.
    pub token_file: Option<PathBuf>,
}

/// Microsoft Entra ID, read through Microsoft Graph with an app's client credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entra {
    pub tenant_id: String,
    pub client_id: String,
    /// The client secret; `None`: the variable `AZURE_CLIENT_SECRET`.
    pub client_secret_file: Option<PathBuf>,
    /// Replaces `https://graph.microsoft.com`.
    pub api_url: Option<String>,
    /// Replaces `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
}

/// Which provider, without its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Google,
    Okta,
    Entra,
}

impl ProviderKind {
    /// The name the configuration uses: `google`, `okta`, `entra`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Okta => "okta",
            ProviderKind::Entra => "entra",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::Google(_) => ProviderKind::Google,
            Provider::Okta(_) => ProviderKind::Okta,
            Provider::Entra(_) => ProviderKind::Entra,
        }
    }
}

/// A group in a directory: the directory's name in the files and the group's key there
/// (Google: the group's email, alias or ID; Okta: its ID or exact name; Entra: its object ID).
/// Each is read once per run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirectoryGroup {
    pub directory: Arc<str>,
    pub group: Arc<str>,
}

impl std::fmt::Display for DirectoryGroup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "`{}` of directory `{}`",
            self.group, self.directory
        )
    }
}

/// One `group:NAME` member key whose group comes from a directory, kept by reference until
/// the group is read: the value (role, metadata, `expires`) applies to each of its people.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    /// The group's name in its file (`support`).
    pub name: Arc<str>,
    pub source: DirectoryGroup,
    /// An empty group is taken as it is, instead of as unavailable.
    pub allow_empty: bool,
    /// The entry's value, with an empty user ID; its position is the `group:NAME` key's.
    pub template: DesiredMember,
    /// The file the entry is in (the rule's entries are in the rule's file).
    pub file: Arc<PathBuf>,
    /// Listed in `all_organizations` (joined into this organization) rather than in the
    /// organization itself.
    pub in_rule: bool,
}

impl GroupEntry {
    /// What the plan says of a change it makes: `group support from corp`.
    pub fn label(&self) -> String {
        format!("group {} from {}", self.name, self.source.directory)
    }
}

/// What a run read of one directory group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Its people's primary emails, lower-cased, sorted, each once.
    People(Arc<Vec<String>>),
    /// It could not be read: why (the message names the directory, never a credential).
    Unreadable(Arc<str>),
}

/// The people of every directory group a run uses, as read.
pub type People = HashMap<DirectoryGroup, Reading>;

/// Why a directory group is unavailable this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The directory could not read it.
    Unreadable(Arc<str>),
    /// It came back empty, and its entry does not say `allow_empty: true`.
    Empty,
}

/// A directory group an organization uses that is unavailable this run: nothing it could
/// decide is removed or demoted there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailableGroup {
    /// `group support from corp`.
    pub label: String,
    pub source: DirectoryGroup,
    pub why: Unavailable,
    /// The precedence of its entries there (see [`Source::rank`](super::Source::rank)).
    pub rank: u8,
}

impl UnavailableGroup {
    /// `group support from corp could not be read` / `… came back empty (allow_empty is not set)`.
    pub fn describe(&self) -> String {
        match self.why {
            Unavailable::Unreadable(_) => format!("{} could not be read", self.label),
            Unavailable::Empty => format!(
                "{} came back empty (`allow_empty: true` is not set)",
                self.label
            ),
        }
    }
}
