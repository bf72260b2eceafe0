//! The providers' public endpoints and variables, and the client's limits. A configured
//! directory itself is plain data of the desired state ([`Directory`]), re-exported here.

use std::num::NonZeroU32;
use std::time::Duration;

pub use crate::desired::{Directory, Entra, Google, Okta, Provider, ProviderKind};

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
