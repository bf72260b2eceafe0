//! Errors of the Clerk client, classified so the retry policy and the executor can decide.

use super::models::ErrorBody;

/// Why a request was not sent, as the run's report says it (the executor says the same of the
/// changes it does not start).
pub const NOT_SENT_STOPPED: &str = "not sent: the run stopped after Clerk refused the secret key";
/// Why a change was not sent once a signal (SIGINT, SIGTERM) asked membersync to stop: the
/// report's note on every change that had not started.
pub const NOT_SENT_SHUTTING_DOWN: &str = "interrupted";

/// Why changes are not sent once the retry budget cannot pay for another retry.
pub const NOT_SENT_OUT_OF_RETRIES: &str = "not sent: Clerk kept failing (5xx, timeouts or dropped connections) and the retry budget is spent; the next run will finish the job";

/// Why invitations are not sent once Clerk's own invitation limit is spent for a long time.
pub const NOT_SENT_DEFERRED: &str = "deferred by Clerk's invitation limit; the next run sends it";

/// How long a 429 of an endpoint with its own limit may make a run wait before the changes
/// that need it are deferred to the next run.
pub const LONGEST_OWN_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A request to Clerk that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClerkError {
    /// Clerk refused the key (401, or 403 that is not a quota error): the whole run stops.
    #[error(
        "{context}: Clerk refused the secret key (HTTP {status}: {detail}). Check CLERK_SECRET_KEY \
         or --secret-key-file / CLERK_SECRET_KEY_FILE: is it the {kind} secret key of the instance \
         at {api_url}, and is it still active?"
    )]
    Unauthorized {
        context: String,
        status: u16,
        detail: String,
        kind: &'static str,
        api_url: String,
    },
    /// Clerk answered with an error status and (usually) its error body.
    #[error("{context}: HTTP {status}: {}", body.describe())]
    Api {
        context: String,
        status: u16,
        body: ErrorBody,
    },
    /// The response was not what the API description says (malformed JSON, missing fields).
    #[error("{context}: unexpected response from Clerk (HTTP {status}): {detail}")]
    Decode {
        context: String,
        status: u16,
        detail: String,
    },
    /// No response: connection refused or reset, timeout, DNS.
    #[error("{context}: {detail}")]
    Transport { context: String, detail: String },
    /// Not sent, because an earlier request of this run was refused for authentication.
    #[error("{context}: {NOT_SENT_STOPPED}")]
    Stopped { context: String },
    /// Not sent, because Clerk kept failing and the retry budget is spent.
    #[error("{context}: {NOT_SENT_OUT_OF_RETRIES}")]
    OutOfRetries { context: String },
    /// An invitation endpoint's own (hourly) limit is spent for longer than a run should wait.
    #[error("{context}: {NOT_SENT_DEFERRED} (Clerk says retry in {} s)", retry_after.as_secs())]
    Deferred {
        context: String,
        retry_after: std::time::Duration,
    },
    /// Not sent, because the process is shutting down (SIGINT, SIGTERM).
    #[error("{context}: not sent: {NOT_SENT_SHUTTING_DOWN}")]
    ShuttingDown { context: String },
}

impl ClerkError {
    /// The HTTP status, when Clerk answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClerkError::Unauthorized { status, .. }
            | ClerkError::Api { status, .. }
            | ClerkError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Why the request was never sent, when it was not: the run was interrupted, or stopped
    /// after Clerk refused the key. A change that met this is skipped, not failed.
    pub fn not_sent_reason(&self) -> Option<&'static str> {
        match self {
            ClerkError::ShuttingDown { .. } => Some(NOT_SENT_SHUTTING_DOWN),
            ClerkError::Stopped { .. } => Some(NOT_SENT_STOPPED),
            _ => None,
        }
    }

    /// Whether Clerk's error body carries this code.
    pub fn has_code(&self, code: &str) -> bool {
        matches!(self, ClerkError::Api { body, .. } if body.has_code(code))
    }
}

/// How a failed attempt is treated (smithy-rs style: classify first, then decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// 429: pause everyone until Retry-After, then retry.
    Throttled,
    /// 5xx, timeouts, connection errors, 409 `resource_locked`: retry with backoff.
    Transient,
    /// Everything else: do not retry.
    Permanent,
}

/// Classifies an HTTP status and error body.
pub fn classify(status: u16, body: &ErrorBody) -> RetryClass {
    match status {
        429 => RetryClass::Throttled,
        500..=599 => RetryClass::Transient,
        409 if body.has_code("resource_locked") => RetryClass::Transient,
        _ => RetryClass::Permanent,
    }
}
