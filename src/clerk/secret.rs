//! The Clerk secret key, in a type that never shows itself.

use std::fmt;
use std::path::Path;

/// A Clerk secret key. Debug and Display print `sk_…[redacted]`, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

/// Why no usable key was found.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    /// Neither `CLERK_SECRET_KEY` nor a key file was given.
    #[error(
        "no Clerk secret key: set CLERK_SECRET_KEY, or --secret-key-file / CLERK_SECRET_KEY_FILE"
    )]
    Missing,
    /// The key file could not be read.
    #[error("cannot read the secret key file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The key (from the variable or the file) is empty after trimming.
    #[error("the Clerk secret key from {origin} is empty")]
    Empty { origin: String },
}

impl SecretKey {
    pub fn new(key: impl Into<String>) -> SecretKey {
        SecretKey(key.into())
    }

    /// The key file (when given) wins over the variable; both are trimmed.
    pub fn from_env_or_file(file: Option<&Path>) -> Result<SecretKey, SecretKeyError> {
        let (raw, origin) = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SecretKeyError::Unreadable {
                        path: path.display().to_string(),
                        source,
                    })?;
                (text, format!("the file {}", path.display()))
            }
            None => match std::env::var("CLERK_SECRET_KEY") {
                Ok(value) => (value, "CLERK_SECRET_KEY".to_owned()),
                Err(_) => return Err(SecretKeyError::Missing),
            },
        };
        let key = raw.trim();
        if key.is_empty() {
            return Err(SecretKeyError::Empty { origin });
        }
        Ok(SecretKey(key.to_owned()))
    }

    /// The key itself, for the Authorization header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Live keys (`sk_live_…`) get Clerk's production rate limit.
    pub fn is_live(&self) -> bool {
        self.0.starts_with("sk_live_")
    }

    /// `live` or `test`, for messages that must not show the key.
    pub fn kind(&self) -> &'static str {
        if self.is_live() {
            "live (sk_live_…)"
        } else {
            "test (sk_test_…)"
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretKey([redacted])")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let key = SecretKey::new("sk_test_supersecret123");
        assert!(!format!("{key:?}").contains("supersecret"));
        assert!(!format!("{key}").contains("supersecret"));
        assert!(!format!("{:?}", Some(&key)).contains("supersecret"));
    }

    #[test]
    fn a_key_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  sk_live_abc\n").unwrap();
        let key = SecretKey::from_env_or_file(Some(&path)).unwrap();
        assert_eq!(key.expose(), "sk_live_abc");
        assert!(key.is_live());
    }

    #[test]
    fn an_empty_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            SecretKey::from_env_or_file(Some(&path)),
            Err(SecretKeyError::Empty { .. })
        ));
    }
}
