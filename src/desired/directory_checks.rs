//! Checks `directories:` and the `{directory, group, allow_empty}` form of `groups:` offline
//! (docs/directories.md): a provider's missing and unknown fields, URLs, and a secret written in
//! the file, which is refused with where to put it instead. No message ever repeats a value
//! that may be a secret.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::Origin;
use super::checker::{Checker, describe};
use super::directories::{Directory, DirectoryGroup, Entra, Google, Okta, Provider};
use super::raw::{RawDirectories, RawDirectoryGroup};
use super::yaml::{self, At};

/// The directories a file declares, by name, each with where (`None`: declared, but invalid,
/// and reported already).
pub(super) type Directories = HashMap<String, Option<(Directory, Origin)>>;

/// What one provider's settings are, and where its secret goes.
struct Fields {
    /// Required, then optional.
    required: &'static [&'static str],
    optional: &'static [&'static str],
    /// The settings that name a file holding a credential.
    files: &'static [&'static str],
    /// Where the secret goes instead: `a file named by `token_file`, or the variable …`.
    secret_goes: &'static str,
}

fn fields(provider: &str) -> Option<Fields> {
    match provider {
        "google" => Some(Fields {
            required: &["subject"],
            optional: &["credentials_file", "api_url", "token_url"],
            files: &["credentials_file"],
            secret_goes: "put the service account's JSON key in a file and name it with `credentials_file` (or set GOOGLE_APPLICATION_CREDENTIALS to its path)",
        }),
        "okta" => Some(Fields {
            required: &["url"],
            optional: &["token_file"],
            files: &["token_file"],
            secret_goes: "put the API token in a file named by `token_file`, or in the variable OKTA_API_TOKEN",
        }),
        "entra" => Some(Fields {
            required: &["tenant_id", "client_id"],
            optional: &["client_secret_file", "api_url", "token_url"],
            files: &["client_secret_file"],
            secret_goes: "put the client secret in a file named by `client_secret_file`, or in the variable AZURE_CLIENT_SECRET",
        }),
        _ => None,
    }
}

/// A field name that would hold a credential (`token`, `client_secret`, `private_key`, …).
fn names_a_secret(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    !field.ends_with("_file")
        && !field.ends_with("_url")
        && (field == "key"
            || ["token", "secret", "password", "private_key", "credentials"]
                .iter()
                .any(|word| field.contains(word)))
}

/// A file setting whose value looks like the credential itself rather than a path: JSON, a
/// PEM block, several lines, or one long token-like word.
fn looks_like_a_secret(value: &str) -> bool {
    let value = value.trim();
    let token_like = !value.contains('/')
        && !value.starts_with('~')
        && value.len() >= 30
        && (value.contains('~')
            || (!value.contains('.')
                && value.chars().any(|c| c.is_ascii_digit())
                && value.chars().any(|c| c.is_ascii_alphabetic())));
    value.starts_with("{")
        || value.contains("-----BEGIN")
        || value.contains("private_key")
        || value.contains('\n')
        || token_like
}

/// `http(s)://host…`; plain http only to a loopback host (the credentials would travel in
/// clear), as the directory client requires.
fn url_problem(text: &str) -> Option<String> {
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(error) => return Some(format!("`{text}` is not a URL ({error})")),
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => None,
        "http" if loopback => None,
        "http" => Some(format!(
            "`{text}` is plain http to a host that is not loopback; the credentials would travel in clear: use https"
        )),
        _ => Some(format!("`{text}` is not an http(s) URL")),
    }
}

impl Checker {
    /// Checks `directories:`: each entry's provider and its fields.
    pub(super) fn directories(&mut self, raw: Option<At<RawDirectories>>) -> Directories {
        let mut directories = Directories::new();
        let Some(raw) = raw else {
            return directories;
        };
        for (name, entry) in raw.value.0 {
            let path = format!("directories.{}", name.value);
            if !valid_name(&name.value) {
                self.error(
                    yaml::position(&name),
                    "directories",
                    format!(
                        "`{}` is not a directory name; use letters, digits, `_`, `-` and `.`",
                        name.value
                    ),
                );
                continue;
            }
            let origin = self.origin(yaml::position(&name));
            let directory = self.directory(&path, &name, entry);
            directories.insert(name.value, directory.map(|directory| (directory, origin)));
        }
        directories
    }

    /// One directory: its provider, then each field.
    fn directory(
        &mut self,
        path: &str,
        name: &At<String>,
        entry: At<super::yaml::Entries<At<Value>>>,
    ) -> Option<Directory> {
        let entry_position = yaml::position(&entry);
        let settings: Vec<(At<String>, At<Value>)> = entry.value.0;
        let Some((_, provider)) = settings.iter().find(|(key, _)| key.value == "provider") else {
            self.error(
                yaml::position(name),
                path,
                "missing `provider`; one of google, okta, entra",
            );
            return None;
        };
        let provider_name = provider.value.as_str().unwrap_or_default().to_owned();
        let Some(fields) = fields(&provider_name) else {
            let message = match &provider.value {
                Value::String(text) => {
                    format!("unknown provider `{text}`; one of google, okta, entra")
                }
                other => format!(
                    "`provider` must be google, okta or entra, not {}",
                    describe(other)
                ),
            };
            self.error(
                yaml::position(provider),
                format!("{path}.provider"),
                message,
            );
            return None;
        };
        let mut values: HashMap<&'static str, String> = HashMap::new();
        let mut valid = true;
        for (key, value) in &settings {
            if key.value == "provider" {
                continue;
            }
            match self.setting(path, &provider_name, &fields, key, value) {
                Some((field, text)) => {
                    values.insert(field, text);
                }
                None => valid = false,
            }
        }
        for required in fields.required {
            if !values.contains_key(required) {
                self.error(
                    entry_position,
                    path,
                    format!(
                        "missing `{required}`, which {} {provider_name} directory needs",
                        article(&provider_name)
                    ),
                );
                valid = false;
            }
        }
        valid.then(|| Directory {
            name: name.value.clone(),
            provider: settings_of(&provider_name, &mut values),
        })
    }

    /// One field of a directory: known to its provider, a string, and no secret. Returns the
    /// field (as the provider knows it) and its value.
    fn setting(
        &mut self,
        path: &str,
        provider: &str,
        fields: &Fields,
        key: &At<String>,
        value: &At<Value>,
    ) -> Option<(&'static str, String)> {
        let field_path = format!("{path}.{}", key.value);
        let known = fields
            .required
            .iter()
            .chain(fields.optional)
            .find(|field| **field == key.value);
        let Some(field) = known.copied() else {
            let message = unknown_field(provider, fields, &key.value);
            self.error(yaml::position(key), field_path, message);
            return None;
        };
        let is_file = fields.files.contains(&field);
        let text = match &value.value {
            Value::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
            // A key written inline as YAML is the secret itself: never repeat it.
            Value::Object(_) | Value::Array(_) if is_file => {
                self.error(
                    yaml::position(value),
                    field_path,
                    format!(
                        "`{field}` must be the path of a file, not the credential itself (a secret never goes in this file); {}",
                        fields.secret_goes
                    ),
                );
                return None;
            }
            other => {
                let what = if is_file { "a path" } else { "a text" };
                let found = match other {
                    Value::String(_) => "empty".to_owned(),
                    other => describe(other),
                };
                self.error(
                    yaml::position(value),
                    field_path,
                    format!("`{field}` must be {what}, not {found}"),
                );
                return None;
            }
        };
        let problem = if is_file && looks_like_a_secret(&text) {
            Some(format!(
                "`{field}` holds what looks like the credential itself, not the path of a file (a secret never goes in this file); {}",
                fields.secret_goes
            ))
        } else if field.ends_with("url") {
            url_problem(&text)
        } else if field == "subject" && !text.contains('@') {
            Some(format!(
                "`{text}` is not an email address; `subject` is the admin the service account acts as"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(yaml::position(value), field_path, problem);
            return None;
        }
        Some((field, text))
    }

    /// The `{directory, group, allow_empty}` form of a `groups:` entry: a directory this file
    /// declares, and a group key.
    pub(super) fn directory_group(
        &mut self,
        path: &str,
        raw: RawDirectoryGroup,
        position: (u64, u64),
        directories: &Directories,
    ) -> Option<(DirectoryGroup, bool)> {
        let directory = match raw.directory {
            Some(directory) => match directories.get(directory.value.trim()) {
                Some(Some(_)) => directory,
                // Declared, but invalid: reported already.
                Some(None) => return None,
                None => {
                    self.unknown_directory(path, &directory, directories);
                    return None;
                }
            },
            None => {
                self.error(
                    position,
                    path,
                    "missing `directory`: the name of a directory under `directories:`",
                );
                return None;
            }
        };
        let group = match raw.group {
            Some(group) if !group.value.trim().is_empty() => group.value.trim().to_owned(),
            Some(group) => {
                self.error(
                    yaml::position(&group),
                    format!("{path}.group"),
                    "`group` is empty",
                );
                return None;
            }
            None => {
                self.error(
                    position,
                    path,
                    "missing `group`: Google, the group's email; Okta, its ID or name; Entra ID, its object ID",
                );
                return None;
            }
        };
        Some((
            DirectoryGroup {
                directory: Arc::from(directory.value.trim()),
                group: Arc::from(group),
            },
            raw.allow_empty.unwrap_or(false),
        ))
    }
}

impl Checker {
    /// A group names a directory this file does not declare.
    fn unknown_directory(&mut self, path: &str, directory: &At<String>, directories: &Directories) {
        let mut known: Vec<&str> = directories.keys().map(String::as_str).collect();
        known.sort_unstable();
        let known = if known.is_empty() {
            "this file declares no `directories:`".to_owned()
        } else {
            format!("the directories are {}", known.join(", "))
        };
        self.error(
            yaml::position(directory),
            format!("{path}.directory"),
            format!("unknown directory `{}`; {known}", directory.value),
        );
    }
}

/// Why a field a provider does not know is refused: a secret written in the file, or a
/// mistyped setting.
fn unknown_field(provider: &str, fields: &Fields, key: &str) -> String {
    if names_a_secret(key) {
        return format!(
            "`{key}` would put a secret in the file, where everyone who reads the repository sees it; {}",
            fields.secret_goes
        );
    }
    let mut expected: Vec<&str> = fields
        .required
        .iter()
        .chain(fields.optional)
        .copied()
        .collect();
    expected.insert(0, "provider");
    format!(
        "unknown field `{key}` for {} {provider} directory; expected one of: {}",
        article(provider),
        expected.join(", ")
    )
}

/// `a` or `an` before a provider's name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Letters, digits, `_`, `-` and `.`.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The provider's settings from the checked values (every required one is there).
fn settings_of(name: &str, values: &mut HashMap<&'static str, String>) -> Provider {
    let mut take = |field: &str| values.remove(field);
    match name {
        "google" => Provider::Google(Google {
            credentials_file: take("credentials_file").map(PathBuf::from),
            subject: take("subject").unwrap_or_default(),
            api_url: take("api_url"),
            token_url: take("token_url"),
        }),
        "okta" => Provider::Okta(Okta {
            url: take("url").unwrap_or_default(),
            token_file: take("token_file").map(PathBuf::from),
        }),
        _ => Provider::Entra(Entra {
            tenant_id: take("tenant_id").unwrap_or_default(),
            client_id: take("client_id").unwrap_or_default(),
            client_secret_file: take("client_secret_file").map(PathBuf::from),
            api_url: take("api_url"),
            token_url: take("token_url"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_field_names_are_told_from_settings() {
        for secret in [
            "token",
            "api_token",
            "client_secret",
            "private_key",
            "key",
            "password",
        ] {
            assert!(names_a_secret(secret), "{secret}");
        }
        for setting in ["token_file", "token_url", "client_secret_file", "subject"] {
            assert!(!names_a_secret(setting), "{setting}");
        }
    }

    #[test]
    fn a_credential_in_a_file_setting_is_told_from_a_path() {
        for secret in [
            "{\"type\": \"service_account\"}",
            "-----BEGIN PRIVATE KEY-----",
            "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789ab",
            "Xy78Q~AbCdEf.GhIjKlMnOpQrStUvWxYz0123456",
        ] {
            assert!(looks_like_a_secret(secret), "{secret}");
        }
        for path in [
            "/var/run/secrets/okta/token",
            "token",
            "secrets/entra-client-secret.txt",
            "~/keys/google.json",
            "membersync-entra-client-secret-production",
        ] {
            assert!(!looks_like_a_secret(path), "{path}");
        }
    }

    #[test]
    fn urls_are_https_or_plain_http_to_loopback() {
        assert_eq!(url_problem("https://example.okta.com"), None);
        assert_eq!(url_problem("http://127.0.0.1:8080/okta"), None);
        assert_eq!(url_problem("http://localhost:9"), None);
        assert!(
            url_problem("http://example.okta.com")
                .unwrap()
                .contains("in clear")
        );
        assert!(url_problem("example.okta.com").is_some());
        assert!(url_problem("ftp://example.com").is_some());
    }
}
