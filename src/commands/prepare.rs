//! What `plan`, `apply` and the daemon prepare before they plan: load the files, check
//! `--org`, and set up the client.

use std::sync::Arc;

use crate::clerk::{Client, ClientConfig, RateLimit, SecretKey, SecretKeyError, Shared};
use crate::cli::{ApiArgs, FileArgs};
use crate::desired::{self, DesiredState, Selection};

use super::CommandError;

/// The instance a client talks to, as a saved plan records it: the API URL and the kind of
/// key, never the key.
pub fn instance(client: &Client) -> crate::plan::saved::Instance {
    crate::plan::saved::Instance {
        api_url: client.api_url().to_owned(),
        key: if client.has_live_key() {
            "live"
        } else {
            "test"
        }
        .to_owned(),
    }
}

/// Sets up the client from the API options (exit 2 if it cannot).
pub fn client(api: &ApiArgs) -> Result<Arc<Client>, CommandError> {
    client_with_shutdown(api, None)
}

/// The same, with a shutdown flag: once it is set, no new request starts.
pub fn client_with_shutdown(
    api: &ApiArgs,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Arc<Client>, CommandError> {
    client_sharing(api, shutdown, None)
}

/// A daemon's next client: the key is read again (a rotated key takes effect), and the pacer
/// and retry budget of `previous` are kept, so that every client of the daemon's lifetime
/// paces as one (unless the rate limit changed with the kind of key).
pub fn client_after(
    api: &ApiArgs,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
    previous: Option<&Client>,
) -> Result<Arc<Client>, CommandError> {
    client_sharing(api, Some(shutdown), previous)
}

/// No usable key: invalid input (exit 2), unless the key file could not be read for lack of
/// resources — an operational failure (exit 1).
fn no_key(error: SecretKeyError) -> CommandError {
    match &error {
        SecretKeyError::Unreadable { source, .. } if desired::is_resource_error(source) => {
            metrics::counter!(crate::telemetry::names::RESOURCE_ERRORS).increment(1);
            CommandError::failure(error.to_string())
        }
        _ => CommandError::invalid(error.to_string()),
    }
}

fn client_sharing(
    api: &ApiArgs,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
    previous: Option<&Client>,
) -> Result<Arc<Client>, CommandError> {
    let key = SecretKey::from_env_or_file(api.secret_key_file.as_deref()).map_err(no_key)?;
    let rate = api
        .rate_limit
        .unwrap_or_else(|| RateLimit::for_key(key.is_live()));
    let mut config = ClientConfig::new(&api.api_url, rate, api.concurrency);
    config.timeout = api.request_timeout;
    let shared = previous
        .filter(|previous| previous.config().rate_limit == rate)
        .map(|previous| previous.shared().clone())
        .unwrap_or_else(|| Shared::new(rate, api.concurrency));
    paced_by(config, key, shutdown, shared)
}

/// Sets up a client with this configuration and key (the demo's, against its simulator).
#[cfg(feature = "simulator")]
pub fn client_for(
    config: ClientConfig,
    key: SecretKey,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Arc<Client>, CommandError> {
    let shared = Shared::new(config.rate_limit, config.concurrency);
    paced_by(config, key, shutdown, shared)
}

/// A client with this configuration and key that paces with `shared`.
fn paced_by(
    mut config: ClientConfig,
    key: SecretKey,
    shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
    shared: Shared,
) -> Result<Arc<Client>, CommandError> {
    if let Some(shutdown) = shutdown {
        config.shutdown = shutdown;
    }
    Client::sharing(config, key, shared)
        .map(Arc::new)
        .map_err(|error| CommandError::invalid(error.to_string()))
}

/// Loads the desired state, printing warnings (exit 2 if it is invalid).
pub fn load(files: &FileArgs) -> Result<DesiredState, CommandError> {
    let loaded = desired::load(&files.files);
    crate::telemetry::log_memory("memory after loading the desired state");
    let state = loaded.map_err(unloaded)?;
    for warning in &state.warnings {
        super::report_warning(format_args!("{warning}"));
    }
    Ok(state)
}

/// Why the files gave no desired state: invalid input (exit 2), or a read that failed for lack
/// of resources — an operational failure (exit 1) that `membersync_resource_errors_total`
/// counts.
pub fn unloaded(error: desired::ReadError) -> CommandError {
    match error {
        desired::ReadError::Invalid(error) => CommandError::diagnostics(&error.0, "sent"),
        unavailable @ desired::ReadError::Unavailable { .. } => {
            metrics::counter!(crate::telemetry::names::RESOURCE_ERRORS).increment(1);
            CommandError::failure(format!("{unavailable}; nothing was sent"))
        }
    }
}

/// Checks `--org` against the files, offline (exit 2, no request, when one names an
/// organization they do not manage).
pub fn select(desired: &DesiredState, organizations: &[String]) -> Result<Selection, CommandError> {
    desired.select(organizations).map_err(CommandError::invalid)
}
