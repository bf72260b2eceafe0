//! Directory credentials in a type that never shows itself, and where they are read from: a
//! file named in the configuration, or else the provider's environment variable.

use std::fmt;
use std::path::Path;

use super::error::DirectoryError;

/// A credential (an API token, a client secret, a private key, an access token). Debug and
/// Display print `[redacted]`, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one header or form field that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// Looks up an environment variable; tests pass their own instead of the process's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where a credential came from, for messages: `the file /x` or `OKTA_API_TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub String);

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Reads a credential whose value is in a file (`file`) or else in the variable `variable`,
/// trimmed. `what` names it in errors ("the Okta API token").
pub(crate) fn read_value(
    directory: &str,
    what: &str,
    file: Option<&Path>,
    variable: &str,
    env: Env<'_>,
) -> Result<(Secret, Origin), DirectoryError> {
    let (raw, origin) = match file {
        Some(path) => (read_file(directory, what, path)?, file_origin(path)),
        None => match env(variable) {
            Some(value) => (value, Origin(variable.to_owned())),
            None => return Err(missing(directory, what, variable)),
        },
    };
    let value = raw.trim();
    if value.is_empty() {
        return Err(DirectoryError::Credentials {
            directory: directory.to_owned(),
            detail: format!("{what} from {origin} is empty"),
        });
    }
    Ok((Secret::new(value), origin))
}

/// Reads a credential file whose path is in the configuration or else in the variable
/// `variable` (Google's `GOOGLE_APPLICATION_CREDENTIALS` names a file, not a key).
pub(crate) fn read_named_file(
    directory: &str,
    what: &str,
    file: Option<&Path>,
    variable: &str,
    env: Env<'_>,
) -> Result<(Secret, Origin), DirectoryError> {
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => match env(variable).filter(|value| !value.trim().is_empty()) {
            Some(value) => value.trim().into(),
            None => return Err(missing(directory, what, variable)),
        },
    };
    let text = read_file(directory, what, &path)?;
    Ok((Secret::new(text), file_origin(&path)))
}

fn read_file(directory: &str, what: &str, path: &Path) -> Result<String, DirectoryError> {
    std::fs::read_to_string(path).map_err(|error| DirectoryError::Credentials {
        directory: directory.to_owned(),
        detail: format!(
            "cannot read {what} from the file {}: {error}",
            path.display()
        ),
    })
}

fn file_origin(path: &Path) -> Origin {
    Origin(format!("the file {}", path.display()))
}

fn missing(directory: &str, what: &str, variable: &str) -> DirectoryError {
    DirectoryError::Credentials {
        directory: directory.to_owned(),
        detail: format!(
            "no {what}: name a file in the directory's configuration, or set {variable}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("00abcSSWSsupersecret");
        assert!(!format!("{secret:?}").contains("supersecret"));
        assert!(!format!("{secret}").contains("supersecret"));
        assert!(!format!("{:?}", Some(&secret)).contains("supersecret"));
    }

    #[test]
    fn a_file_wins_over_the_variable_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  from-file\n").unwrap();
        let env = |_: &str| Some("from-env".to_owned());
        let (secret, origin) = read_value("okta", "the token", Some(&path), "X", &env).unwrap();
        assert_eq!(secret.expose(), "from-file");
        assert!(origin.0.contains("token"));
        let (secret, origin) = read_value("okta", "the token", None, "X", &env).unwrap();
        assert_eq!(secret.expose(), "from-env");
        assert_eq!(origin.0, "X");
    }

    #[test]
    fn a_missing_or_empty_credential_is_an_error_naming_the_directory() {
        let none = |_: &str| None;
        let error = read_value("corp", "the token", None, "OKTA_API_TOKEN", &none).unwrap_err();
        assert!(error.to_string().contains("corp"), "{error}");
        assert!(error.to_string().contains("OKTA_API_TOKEN"), "{error}");
        let blank = |_: &str| Some(" \n".to_owned());
        let error = read_value("corp", "the token", None, "OKTA_API_TOKEN", &blank).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
