//! Errors of the directory clients. Every message names the directory; none carries a
//! credential (server error texts are cut short and scrubbed of the secrets in use).

use super::config::ProviderKind;

/// Reading a group from a directory did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The directory's configuration cannot be used (a URL that does not parse, plain http to
    /// a host that is not loopback).
    #[error("directory `{directory}`: {detail}")]
    Config { directory: String, detail: String },
    /// The credentials could not be read: no file and no variable, an unreadable or empty
    /// file, a key file that is not a service account key.
    #[error("directory `{directory}`: {detail}")]
    Credentials { directory: String, detail: String },
    /// The directory refused the credentials (401 or 403, or any refusal of the token
    /// endpoint). Permanent: retrying cannot help.
    #[error(
        "directory `{directory}` ({provider}): {context}: {what} refused (HTTP {status}: {detail}). {hint}"
    )]
    Unauthorized {
        directory: String,
        provider: ProviderKind,
        context: String,
        /// "the token endpoint https://… refused the credentials" and the like.
        what: String,
        status: u16,
        detail: String,
        /// What to check, naming the settings (never their values).
        hint: &'static str,
    },
    /// The group does not exist (or the credentials may not see it).
    #[error("directory `{directory}` ({provider}): group `{group}` not found ({detail})")]
    GroupNotFound {
        directory: String,
        provider: ProviderKind,
        group: String,
        detail: String,
    },
    /// An Okta group given by name matches several groups.
    #[error(
        "directory `{directory}` (okta): {count} groups are named `{group}` ({ids}); give the group's ID instead"
    )]
    AmbiguousGroup {
        directory: String,
        group: String,
        count: usize,
        ids: String,
    },
    /// The directory answered with an error status that is not retried, or kept answering
    /// one that is (429, 5xx) until the attempts were used up.
    #[error("directory `{directory}` ({provider}): {context}: HTTP {status}: {detail}")]
    Api {
        directory: String,
        provider: ProviderKind,
        context: String,
        status: u16,
        detail: String,
    },
    /// The directory asked to wait (`Retry-After`) longer than a run waits.
    #[error(
        "directory `{directory}` ({provider}): {context}: rate limited; the directory asks to wait {} s, longer than the {} s a run waits",
        wait.as_secs(),
        longest.as_secs()
    )]
    Throttled {
        directory: String,
        provider: ProviderKind,
        context: String,
        wait: std::time::Duration,
        longest: std::time::Duration,
    },
    /// The answer was not what the provider documents (malformed JSON, missing fields, a next
    /// page on another host).
    #[error("directory `{directory}` ({provider}): {context}: unexpected answer: {detail}")]
    Decode {
        directory: String,
        provider: ProviderKind,
        context: String,
        detail: String,
    },
    /// No answer: connection refused or reset, timeout, DNS.
    #[error("directory `{directory}` ({provider}): {context}: {detail}")]
    Transport {
        directory: String,
        provider: ProviderKind,
        context: String,
        detail: String,
    },
    /// The directory kept failing (5xx, timeouts) and its retry budget for this run is spent.
    #[error(
        "directory `{directory}` ({provider}): {context}: not sent: the directory kept failing and its {budget} retries for this run are spent"
    )]
    OutOfRetries {
        directory: String,
        provider: ProviderKind,
        context: String,
        budget: u32,
    },
}

impl DirectoryError {
    /// The name of the directory, as the configuration gives it.
    pub fn directory(&self) -> &str {
        match self {
            DirectoryError::Config { directory, .. }
            | DirectoryError::Credentials { directory, .. }
            | DirectoryError::Unauthorized { directory, .. }
            | DirectoryError::GroupNotFound { directory, .. }
            | DirectoryError::AmbiguousGroup { directory, .. }
            | DirectoryError::Api { directory, .. }
            | DirectoryError::Throttled { directory, .. }
            | DirectoryError::Decode { directory, .. }
            | DirectoryError::Transport { directory, .. }
            | DirectoryError::OutOfRetries { directory, .. } => directory,
        }
    }

    /// The HTTP status, when the directory answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DirectoryError::Unauthorized { status, .. } | DirectoryError::Api { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// The longest server error text kept in a message.
const DETAIL_LIMIT: usize = 300;

/// A short description of a provider's error body: OAuth 2.0 (`error`, `error_description`),
/// Google and Graph (`error.code`/`status`, `error.message`), Okta (`errorCode`,
/// `errorSummary`), or the start of the text. Each secret in `secrets` is replaced.
pub(crate) fn describe_body(body: &[u8], secrets: &[&str]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            describe_json(&value).unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned())
        }
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let mut text = if text.is_empty() {
        "no error body".to_owned()
    } else {
        text
    };
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    if text.len() > DETAIL_LIMIT {
        let mut end = DETAIL_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn describe_json(value: &serde_json::Value) -> Option<String> {
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    if let Some(code) = value.get("error").and_then(text) {
        let description = value.get("error_description").and_then(text);
        return Some(match description {
            Some(description) => format!("{code}: {description}"),
            None => code,
        });
    }
    if let Some(error) = value.get("error").filter(|error| error.is_object()) {
        let code = error
            .get("status")
            .and_then(text)
            .or_else(|| error.get("code").and_then(text));
        let message = error.get("message").and_then(text).unwrap_or_default();
        return Some(match code {
            Some(code) => format!("{code}: {message}"),
            None => message,
        });
    }
    let code = value.get("errorCode").and_then(text)?;
    let summary = value.get("errorSummary").and_then(text).unwrap_or_default();
    Some(format!("{code}: {summary}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_providers_error_body_is_described_shortly() {
        let oauth = br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
        assert_eq!(
            describe_body(oauth, &[]),
            "invalid_grant: Invalid JWT Signature."
        );
        let google = br#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(
            describe_body(google, &[]),
            "PERMISSION_DENIED: Not Authorized to access this resource/api"
        );
        let graph = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#;
        assert_eq!(
            describe_body(graph, &[]),
            "Authorization_RequestDenied: Insufficient privileges"
        );
        let okta = br#"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#;
        assert_eq!(describe_body(okta, &[]), "E0000011: Invalid token provided");
        assert_eq!(describe_body(b"", &[]), "no error body");
        assert!(describe_body(&[b'x'; 1000], &[]).chars().count() <= DETAIL_LIMIT + 1);
    }

    #[test]
    fn a_secret_echoed_by_the_server_is_scrubbed() {
        let body =
            br#"{"error":"invalid_client","error_description":"secret s3cr3t-value is wrong"}"#;
        let text = describe_body(body, &["s3cr3t-value"]);
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
