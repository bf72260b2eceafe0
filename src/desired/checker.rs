//! The checker of one file: it collects every problem it finds (file, line, column and key)
//! instead of stopping at the first, and checks the values of one member entry (role,
//! metadata, expiry). `validate` walks the file with it; `groups` checks groups and
//! `all_organizations` with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use time::Date;
use time::macros::format_description;

use super::raw::RawMember;
use super::yaml::{self, At};
use super::{
    DeclaredMetadata, DesiredMember, Diagnostic, Metadata, Origin, Position, Role, UserRef,
};

/// The problems found in one file so far: errors (the file is invalid) and warnings.
pub(super) struct Checker {
    file: Arc<PathBuf>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Checker {
    pub(super) fn new(path: &Path) -> Checker {
        Checker {
            file: Arc::new(path.to_owned()),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The warnings when no error was found, or else the errors.
    pub(super) fn finish(self) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(self.errors)
        }
    }

    fn diagnostic(
        &self,
        position: (u64, u64),
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.as_ref().clone(),
            position: Some(position),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Something that makes the file invalid.
    pub(super) fn error(
        &mut self,
        position: (u64, u64),
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let diagnostic = self.diagnostic(position, key, message);
        self.errors.push(diagnostic);
    }

    /// Something worth telling that does not make the file invalid.
    pub(super) fn warning(
        &mut self,
        position: (u64, u64),
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let diagnostic = self.diagnostic(position, key, message);
        self.warnings.push(diagnostic);
    }

    /// This place in the file.
    pub(super) fn origin(&self, position: (u64, u64)) -> Origin {
        Origin {
            file: self.file.clone(),
            line: position.0 as u32,
            column: position.1 as u32,
        }
    }

    /// A user key (an email or a user ID), or an error at `position`.
    pub(super) fn user(&mut self, path: &str, key: &str, position: (u64, u64)) -> Option<UserRef> {
        UserRef::parse(key)
            .map_err(|error| self.error(position, path, error.to_string()))
            .ok()
    }

    /// One member entry: a role alone, or a mapping with the role, metadata and expiry.
    pub(super) fn member(
        &mut self,
        path: &str,
        user: UserRef,
        value: At<RawMember>,
        position: (u64, u64),
    ) -> Option<DesiredMember> {
        let value_position = yaml::position(&value);
        let (role, public_metadata, private_metadata, expires) = match value.value {
            RawMember::Role(role) => (self.role(path, &role, value_position), None, None, None),
            RawMember::Long(long) => {
                let long = *long;
                let role = match &long.role {
                    Some(role) => {
                        self.role(&format!("{path}.role"), &role.value, yaml::position(role))
                    }
                    None => {
                        self.error(value_position, path, "missing `role`");
                        None
                    }
                };
                let public = long
                    .public_metadata
                    .and_then(|m| self.metadata(&format!("{path}.public_metadata"), m))
                    .map(Metadata::from);
                let private = long
                    .private_metadata
                    .and_then(|m| self.metadata(&format!("{path}.private_metadata"), m))
                    .map(Metadata::from);
                let expires = long
                    .expires
                    .and_then(|e| self.expires(&format!("{path}.expires"), e));
                (role, public, private, expires)
            }
        };
        let metadata = (public_metadata.is_some() || private_metadata.is_some()).then(|| {
            Box::new(DeclaredMetadata {
                public: public_metadata,
                private: private_metadata,
            })
        });
        Some(DesiredMember {
            user,
            role: role?,
            metadata,
            expires,
            position: Position {
                line: position.0 as u32,
                column: position.1 as u32,
            },
        })
    }

    fn role(&mut self, path: &str, text: &str, position: (u64, u64)) -> Option<Role> {
        Role::parse(text)
            .map_err(|error| self.error(position, path, error.to_string()))
            .ok()
    }

    pub(super) fn metadata(&mut self, path: &str, value: At<Value>) -> Option<Map<String, Value>> {
        let position = yaml::position(&value);
        match value.value {
            Value::Object(map) => Some(map),
            other => {
                let message = format!("metadata must be a mapping, not {}", describe(&other));
                self.error(position, path, message);
                None
            }
        }
    }

    fn expires(&mut self, path: &str, value: At<String>) -> Option<Date> {
        let format = format_description!("[year]-[month]-[day]");
        Date::parse(value.value.trim(), format)
            .map_err(|_| {
                let message = format!(
                    "`{}` is not a date; write it as YYYY-MM-DD, like 2027-03-31",
                    value.value
                );
                self.error(yaml::position(&value), path, message)
            })
            .ok()
    }
}

/// A YAML value as an error message names it: `the number 2`, `a list`, …
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "empty".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}
