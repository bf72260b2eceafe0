//! Company directories: the people of a group, read from Google Workspace (Admin SDK Directory
//! API), Okta (management API) or Microsoft Entra ID (Microsoft Graph).
//!
//! An IO module beside `clerk/`: the desired state and the planner never import it. Each configured
//! [`Directory`](crate::directory::Directory) gets a
//! [`DirectoryClient`](crate::directory::DirectoryClient) with its own rate limiter, retry budget
//! and cached access token; [`read_group`](crate::directory::DirectoryClient::read_group) pages
//! through a group with the provider's documented paging and returns its active users by primary
//! email ([`Members`](crate::directory::Members)). Credentials come from files or environment
//! variables only and never appear in errors, logs or Debug output. See `docs/directories.md` for
//! what each provider needs.

mod config;
mod entra;
mod error;
mod google;
mod okta;
mod run;
mod secret;
mod token;
mod transport;

use std::sync::atomic::Ordering;

pub use config::{
    Directory, DirectoryOptions, Entra, Google, Okta, Provider, ProviderKind, entra_token_url,
};
pub use error::DirectoryError;
#[cfg(feature = "simulator")]
pub(crate) use google::MEMBER_READONLY_SCOPE as GOOGLE_SCOPE;
pub use run::{last_or_read, read_groups};
use secret::process_env;
pub use secret::{Env, Secret};
pub use transport::DirectoryStats;

use transport::Transport;

/// One person of a group: an active user, by primary email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person {
    /// The primary email, lower-cased.
    pub email: String,
}

/// The people of a group, and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Active users, sorted by email, each once (nested groups included where the provider
    /// has them).
    pub people: Vec<Person>,
    /// Users left out because their account is not active (suspended, deprovisioned,
    /// disabled, staged).
    pub inactive: usize,
    /// Active users left out because the directory gives no usable email for them.
    pub without_email: usize,
    /// Members that are not users (nested groups themselves, customers, devices, contacts).
    pub not_users: usize,
    /// Pages of members read (the requests that succeeded, token and lookup not counted).
    pub pages: u32,
}

/// Gathers a group's members page by page, keeping only the emails.
#[derive(Default)]
pub(crate) struct Collector {
    emails: Vec<String>,
    inactive: usize,
    without_email: usize,
    not_users: usize,
    pages: u32,
}

impl Collector {
    /// Whether no page was read yet.
    pub(crate) fn first_page(&self) -> bool {
        self.pages == 0
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.emails.reserve(additional);
    }

    pub(crate) fn page(&mut self) {
        self.pages += 1;
    }

    /// A user: counted when active and with an email.
    pub(crate) fn user(&mut self, active: bool, email: Option<&str>) {
        let email = email.map(str::trim).filter(|email| !email.is_empty());
        match (active, email) {
            (false, _) => self.inactive += 1,
            (true, None) => self.without_email += 1,
            (true, Some(email)) => self.emails.push(email.to_lowercase()),
        }
    }

    pub(crate) fn not_user(&mut self) {
        self.not_users += 1;
    }

    pub(crate) fn finish(mut self) -> Members {
        self.emails.sort_unstable();
        self.emails.dedup();
        self.emails.shrink_to_fit();
        Members {
            people: self
                .emails
                .into_iter()
                .map(|email| Person { email })
                .collect(),
            inactive: self.inactive,
            without_email: self.without_email,
            not_users: self.not_users,
            pages: self.pages,
        }
    }
}

enum Backend {
    Google(google::GoogleClient),
    Okta(okta::OktaClient),
    Entra(entra::EntraClient),
}

/// A client for one directory, for one run: its credentials (read when it is made), its
/// limiter and retry budget, and its access token (asked for once, kept for its lifetime).
pub struct DirectoryClient {
    transport: Transport,
    backend: Backend,
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DirectoryClient")
            .field("directory", &self.transport.directory)
            .field("provider", &self.transport.kind)
            .finish_non_exhaustive()
    }
}

impl DirectoryClient {
    /// A client with the provider's default pacing, reading credentials from the files the
    /// directory names or else from the process's environment.
    pub fn new(directory: &Directory) -> Result<DirectoryClient, DirectoryError> {
        let options = DirectoryOptions::for_provider(directory.provider.kind());
        DirectoryClient::with_options(directory, options, &process_env)
    }

    /// The same, with given pacing and environment.
    pub fn with_options(
        directory: &Directory,
        options: DirectoryOptions,
        env: Env<'_>,
    ) -> Result<DirectoryClient, DirectoryError> {
        let transport = Transport::new(&directory.name, directory.provider.kind(), options)?;
        let backend = match &directory.provider {
            Provider::Google(settings) => {
                Backend::Google(google::GoogleClient::new(settings, &transport, env)?)
            }
            Provider::Okta(settings) => {
                Backend::Okta(okta::OktaClient::new(settings, &transport, env)?)
            }
            Provider::Entra(settings) => {
                Backend::Entra(entra::EntraClient::new(settings, &transport, env)?)
            }
        };
        Ok(DirectoryClient { transport, backend })
    }

    /// The directory's name in the configuration.
    pub fn name(&self) -> &str {
        &self.transport.directory
    }

    pub fn provider(&self) -> ProviderKind {
        self.transport.kind
    }

    /// Requests sent so far.
    pub fn stats(&self) -> &DirectoryStats {
        &self.transport.stats
    }

    /// Every request sent so far, token requests and retries included.
    pub fn requests(&self) -> u64 {
        self.transport.stats.requests.load(Ordering::Relaxed)
    }

    /// The active users of `group` (Google: the group's email, alias or ID; Okta: the
    /// group's ID or exact name; Entra: the group's object ID).
    pub async fn read_group(&self, group: &str) -> Result<Members, DirectoryError> {
        let started = std::time::Instant::now();
        let members = match &self.backend {
            Backend::Google(client) => client.read_group(&self.transport, group).await,
            Backend::Okta(client) => client.read_group(&self.transport, group).await,
            Backend::Entra(client) => client.read_group(&self.transport, group).await,
        }?;
        tracing::info!(
            directory = %self.transport.directory,
            provider = self.transport.kind.as_str(),
            group,
            people = members.people.len(),
            inactive = members.inactive,
            without_email = members.without_email,
            not_users = members.not_users,
            pages = members.pages,
            wall_ms = started.elapsed().as_millis() as u64,
            "directory group read"
        );
        if members.without_email > 0 {
            tracing::warn!(
                directory = %self.transport.directory,
                group,
                users = members.without_email,
                "active users without a usable email are left out of the group"
            );
        }
        Ok(members)
    }
}

/// Reads one group with a client made for the occasion (default pacing, the process's
/// environment). To read several groups of a directory, make one [`DirectoryClient`] and
/// call [`DirectoryClient::read_group`] for each: the token is then asked for once.
pub async fn read_group(directory: &Directory, group: &str) -> Result<Members, DirectoryError> {
    DirectoryClient::new(directory)?.read_group(group).await
}

/// Maps a 404 of a member listing to [`DirectoryError::GroupNotFound`].
pub(crate) fn not_found(error: DirectoryError, group: &str) -> DirectoryError {
    match error {
        DirectoryError::Api {
            directory,
            provider,
            status: 404,
            detail,
            ..
        } => DirectoryError::GroupNotFound {
            directory,
            provider,
            group: group.to_owned(),
            detail,
        },
        other => other,
    }
}

/// Joins the documented path to a base URL that may carry a path of its own (a proxy).
pub(crate) fn join(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    url.set_query(None);
    if let Ok(mut path) = url.path_segments_mut() {
        // Each segment is percent-encoded by `url`.
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_keeps_active_users_once_by_lower_cased_email() {
        let mut collector = Collector::default();
        collector.page();
        collector.user(true, Some("Bob@Example.com"));
        collector.user(true, Some("alice@example.com"));
        collector.user(true, Some("bob@example.com"));
        collector.user(false, Some("gone@example.com"));
        collector.user(true, Some("  "));
        collector.not_user();
        let members = collector.finish();
        let emails: Vec<&str> = members.people.iter().map(|p| p.email.as_str()).collect();
        assert_eq!(emails, ["alice@example.com", "bob@example.com"]);
        assert_eq!(
            (members.inactive, members.without_email, members.not_users),
            (1, 1, 1)
        );
        assert_eq!(members.pages, 1);
    }

    #[test]
    fn documented_paths_follow_a_base_with_or_without_a_path() {
        let base = url::Url::parse("https://admin.googleapis.com").unwrap();
        let url = join(&base, &["admin", "directory", "v1", "groups", "a b@x.com"]);
        assert_eq!(
            url.as_str(),
            "https://admin.googleapis.com/admin/directory/v1/groups/a%20b@x.com"
        );
        let proxy = url::Url::parse("http://127.0.0.1:9/google/").unwrap();
        let url = join(&proxy, &["admin", "directory", "v1", "groups", "g/1"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/google/admin/directory/v1/groups/g%2F1"
        );
    }
}
