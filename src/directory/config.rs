//! One configured directory, as plain data (the desired-state loader builds it from the
//! validated `directories:` entry), the providers' public endpoints, and the client's limits.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

/// The Admin SDK's public host; the documented paths (`/admin/directory/v1/…`) follow it.
pub const GOOGLE_API_URL: &str = "https://admin.googleapis.com";
/// Microsoft Graph's public host; the documented paths (`/v1.0/…`) follow it.
pub const GRAPH_API_URL: &str = "https://graph.microsoft.com";
/// The variable naming Google's service-account key file when `credentials_file` is not set.
pub const GOOGLE_CREDENTIALS_VARIABLE: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The variable holding the Okta API token when `token_file` is not set.
pub const OKTA_TOKEN_VARIABLE: &str = "OKTA_API_TOKEN";
/// The variable holding the Entra client secret when `client_secret_file` is not set.
pub const ENTRA_SECRET_VARIABLE: &str = "AZURE_CLIENT_SECRET";

/// The Microsoft identity platform's token endpoint of a tenant.
pub fn entra_token_url(tenant_id: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token")
}

/// One entry of `directories:`: where groups can come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Its name in the file (`corp`); every message names it.
    pub name: String,
    pub provider: Provider,
}

/// The provider of a directory, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Google(Google),
    Okta(Okta),
    Entra(Entra),
}

/// Google Workspace, read through the Admin SDK Directory API as a service account acting
/// for an admin (domain-wide delegation).
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Okta {
    /// The org's base URL, `https://example.okta.com`.
    pub url: String,
    /// The API token; `None`: the variable `OKTA_API_TOKEN`.
    pub token_file: Option<PathBuf>,
}

/// Microsoft Entra ID, read through Microsoft Graph with an app's client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// How a directory client paces and retries. Each directory has its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Requests per second to this directory (a burst of that many may go at once).
    pub requests_per_second: NonZeroU32,
    /// Per request (per attempt).
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: usize,
    /// The longest wait between attempts when the directory gives no `Retry-After`.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a directory asking for more is unavailable this run.
    pub max_pause: Duration,
    /// Retries after transient failures (5xx, timeouts) this client may spend in a run.
    pub retry_budget: u32,
}

impl DirectoryOptions {
    /// Well under each provider's documented default quota: Google's Admin SDK allows 2,400
    /// queries a minute, Okta's group endpoints 500 to 1,000 a minute by org, Graph's
    /// directory reads thousands per 10 seconds.
    pub fn for_provider(kind: ProviderKind) -> DirectoryOptions {
        let per_second = match kind {
            ProviderKind::Google => 10,
            ProviderKind::Okta => 5,
            ProviderKind::Entra => 20,
        };
        DirectoryOptions {
            requests_per_second: NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
            timeout: Duration::from_secs(30),
            max_attempts: 6,
            max_backoff: Duration::from_secs(20),
            max_pause: Duration::from_secs(120),
            retry_budget: 10,
        }
    }
}
