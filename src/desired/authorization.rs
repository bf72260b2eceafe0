//! The `authorization` block checked offline (docs/authorization.md: "Roles and permissions as code"): key
//! formats, no system permission declared, role sets of 1 to 10 roles whose default and
//! creator role are among them, at most one initial role set, `reassign` targets in the set.
//! Whether a named permission or role exists is known only once the instance is read.

use super::Origin;
use super::authorization_raw::{RawAuthorization, RawPermission, RawRole, RawRoleSet};
use super::checker::Checker;
use super::yaml::Entries;
use super::yaml::{self, At};

/// The most roles a role set holds.
pub const MAX_ROLES: usize = 10;

/// What `authorization` declares. A section the file does not have is `None`: not managed.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// Delete the custom permissions and roles the file does not list.
    pub prune: bool,
    pub permissions: Option<Vec<DesiredPermission>>,
    pub roles: Option<Vec<DesiredRole>>,
    pub role_sets: Option<Vec<DesiredRoleSet>>,
    pub origin: Origin,
}

/// A custom permission.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPermission {
    pub key: String,
    pub name: String,
    /// `None`: left as it is.
    pub description: Option<String>,
    pub origin: Origin,
}

/// A key the file names, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub key: String,
    pub origin: Origin,
}

/// A role and the exact set of its permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<Named>,
    pub origin: Origin,
}

/// A role set.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRoleSet {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub initial: bool,
    pub roles: Vec<Named>,
    pub default_role: String,
    pub creator_role: String,
    /// Role leaving the set → the role its holders get.
    pub reassign: Vec<(String, String)>,
    pub origin: Origin,
}

/// Whether `key` is `prefix` followed by `segments` non-empty parts of lowercase letters,
/// digits and `_`, separated by `:`.
pub(crate) fn key_format(key: &str, prefix: &str, segments: usize) -> bool {
    let Some(rest) = key.strip_prefix(prefix) else {
        return false;
    };
    let parts: Vec<&str> = rest.split(':').collect();
    parts.len() == segments
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

const PERMISSION_FORMAT: &str =
    "a permission key is `org:<feature>:<action>` (lowercase letters, digits and `_`)";
const ROLE_FORMAT: &str = "a role key is `org:<key>` (lowercase letters, digits and `_`)";

impl Checker {
    /// The whole block.
    pub(super) fn authorization(&mut self, raw: At<RawAuthorization>) -> Authorization {
        let origin = self.origin(yaml::position(&raw));
        let raw = raw.value;
        let permissions = raw.permissions.map(|p| self.permissions(p.value));
        let roles = raw.roles.map(|r| self.roles(r.value));
        let role_sets = raw.role_sets.map(|s| self.role_sets(s.value));
        Authorization {
            prune: raw.prune.unwrap_or(false),
            permissions,
            roles,
            role_sets,
            origin,
        }
    }

    fn key(&mut self, key: &At<String>, path: &str, valid: bool, format: &str) -> bool {
        if !valid {
            let message = format!("`{}`: {format}", key.value);
            self.error(yaml::position(key), path, message);
        }
        valid
    }

    fn permissions(&mut self, raw: Entries<At<RawPermission>>) -> Vec<DesiredPermission> {
        let mut permissions = Vec::new();
        for (key, value) in raw.0 {
            let path = format!("authorization.permissions.{}", key.value);
            let position = yaml::position(&key);
            if key.value.starts_with("org:sys_") {
                let message = "system permissions (`org:sys_…`) are Clerk's: name them in a role's `permissions`, do not declare them";
                self.error(position, &path, message);
                continue;
            }
            if !self.key(
                &key,
                &path,
                key_format(&key.value, "org:", 2),
                PERMISSION_FORMAT,
            ) {
                continue;
            }
            let value_position = yaml::position(&value);
            let (name, description) = match value.value {
                RawPermission::Name(name) => (Some(name), None),
                RawPermission::Long(long) => (long.name, long.description),
            };
            let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                self.error(value_position, &path, "missing `name`");
                continue;
            };
            permissions.push(DesiredPermission {
                key: key.value,
                name,
                description,
                origin: self.origin(position),
            });
        }
        permissions
    }

    fn roles(&mut self, raw: Entries<At<RawRole>>) -> Vec<DesiredRole> {
        let mut roles = Vec::new();
        for (key, value) in raw.0 {
            let path = format!("authorization.roles.{}", key.value);
            let position = yaml::position(&key);
            if !self.key(&key, &path, key_format(&key.value, "org:", 1), ROLE_FORMAT) {
                continue;
            }
            let value_position = yaml::position(&value);
            let RawRole {
                name,
                description,
                permissions,
            } = value.value;
            let mut named = Vec::new();
            for permission in permissions.unwrap_or_default() {
                let path = format!("{path}.permissions");
                if self.key(
                    &permission,
                    &path,
                    key_format(&permission.value, "org:", 2),
                    PERMISSION_FORMAT,
                ) {
                    named.push(self.named(permission));
                }
            }
            let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                self.error(value_position, &path, "missing `name`");
                continue;
            };
            roles.push(DesiredRole {
                key: key.value,
                name,
                description,
                permissions: named,
                origin: self.origin(position),
            });
        }
        roles
    }

    fn named(&self, key: At<String>) -> Named {
        Named {
            origin: self.origin(yaml::position(&key)),
            key: key.value,
        }
    }

    fn role_sets(&mut self, raw: Entries<At<RawRoleSet>>) -> Vec<DesiredRoleSet> {
        let mut sets: Vec<DesiredRoleSet> = Vec::new();
        for (key, value) in raw.0 {
            let path = format!("authorization.role_sets.{}", key.value);
            if !self.key(
                &key,
                &path,
                key_format(&key.value, "role_set:", 1),
                "a role set key is `role_set:<key>` (lowercase letters, digits and `_`)",
            ) {
                continue;
            }
            let origin = self.origin(yaml::position(&key));
            if let Some(set) = self.declared_role_set(key.value, value, &path, origin) {
                if set.initial
                    && let Some(first) = sets.iter().find(|s| s.initial)
                {
                    let message = format!(
                        "`initial: true` is already set on {} at {}",
                        first.key, first.origin
                    );
                    self.error(
                        (u64::from(set.origin.line), u64::from(set.origin.column)),
                        &path,
                        message,
                    );
                }
                sets.push(set);
            }
        }
        sets
    }

    fn declared_role_set(
        &mut self,
        key: String,
        value: At<RawRoleSet>,
        path: &str,
        origin: Origin,
    ) -> Option<DesiredRoleSet> {
        let position = yaml::position(&value);
        let raw = value.value;
        let roles = self.set_roles(raw.roles, path, position);
        let mut member_of = |what: &str, role: Option<At<String>>| -> Option<String> {
            let Some(role) = role else {
                self.error(
                    position,
                    path,
                    format!("missing `{what}`; name one of `roles`"),
                );
                return None;
            };
            if !roles.iter().any(|r| r.key == role.value) {
                let message = format!("`{}` is not in the role set's `roles`", role.value);
                self.error(yaml::position(&role), format!("{path}.{what}"), message);
                return None;
            }
            Some(role.value)
        };
        let default_role = member_of("default_role", raw.default_role);
        let creator_role = member_of("creator_role", raw.creator_role);
        let reassign = self.reassign(raw.reassign, &roles, path);
        let name = raw.name.filter(|n| !n.trim().is_empty());
        if name.is_none() {
            self.error(position, path, "missing `name`");
        }
        Some(DesiredRoleSet {
            key,
            name: name?,
            description: raw.description,
            initial: raw.initial.unwrap_or(false),
            roles,
            default_role: default_role?,
            creator_role: creator_role?,
            reassign,
            origin,
        })
    }

    /// A role set's `roles`: 1 to 10 role keys, each once.
    fn set_roles(
        &mut self,
        raw: Option<At<Vec<At<String>>>>,
        path: &str,
        position: (u64, u64),
    ) -> Vec<Named> {
        let Some(raw) = raw else {
            self.error(
                position,
                path,
                "missing `roles`; a role set holds 1 to 10 roles",
            );
            return Vec::new();
        };
        let list_position = yaml::position(&raw);
        let count = raw.value.len();
        if count == 0 || count > MAX_ROLES {
            let message = format!("a role set holds 1 to {MAX_ROLES} roles, not {count}");
            self.error(list_position, format!("{path}.roles"), message);
        }
        let mut roles: Vec<Named> = Vec::new();
        for role in raw.value {
            let roles_path = format!("{path}.roles");
            if !self.key(
                &role,
                &roles_path,
                key_format(&role.value, "org:", 1),
                ROLE_FORMAT,
            ) {
                continue;
            }
            if roles.iter().any(|r| r.key == role.value) {
                let message = format!("`{}` is listed twice", role.value);
                self.error(yaml::position(&role), roles_path, message);
                continue;
            }
            roles.push(self.named(role));
        }
        roles
    }

    /// `reassign`: each role leaving the set → a role of the set.
    fn reassign(
        &mut self,
        raw: Option<At<Entries<At<String>>>>,
        roles: &[Named],
        path: &str,
    ) -> Vec<(String, String)> {
        let mut reassign = Vec::new();
        for (from, to) in raw.map(|r| r.value.0).unwrap_or_default() {
            let entry = format!("{path}.reassign.{}", from.value);
            if !self.key(
                &from,
                &entry,
                key_format(&from.value, "org:", 1),
                ROLE_FORMAT,
            ) {
                continue;
            }
            if !roles.iter().any(|r| r.key == to.value) {
                let message = format!(
                    "the target `{}` is not in the role set's `roles`; members holding {} must move to a role the set keeps",
                    to.value, from.value
                );
                self.error(yaml::position(&to), entry, message);
                continue;
            }
            reassign.push((from.value, to.value));
        }
        reassign
    }
}
