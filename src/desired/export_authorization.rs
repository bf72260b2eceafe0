//! The `authorization` block of `membersync export --authorization`: the instance's custom
//! permissions, its roles and its role sets, written so that planning the export changes
//! nothing (`prune: false`: an export never deletes).

use std::fmt::Write;

use serde_json::Value;

/// A custom permission as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPermission {
    pub key: String,
    pub name: String,
    pub description: String,
}

/// A role as exported, with its permissions' keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRole {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// A role set as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRoleSet {
    pub key: String,
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub default_role: String,
    pub creator_role: String,
    pub initial: bool,
}

/// The block, keys sorted, every text JSON-quoted (valid YAML 1.2).
pub fn render_authorization(
    permissions: &[ExportPermission],
    roles: &[ExportRole],
    role_sets: &[ExportRoleSet],
) -> String {
    let text = |value: &str| Value::String(value.to_owned()).to_string();
    let mut out = String::from("authorization:\n  prune: false\n");
    let mut permissions: Vec<&ExportPermission> = permissions.iter().collect();
    permissions.sort_by(|a, b| a.key.cmp(&b.key));
    out.push_str(if permissions.is_empty() {
        "  permissions: {}\n"
    } else {
        "  permissions:\n"
    });
    for permission in permissions {
        let _ = match permission.description.as_str() {
            "" => writeln!(out, "    {}: {}", permission.key, text(&permission.name)),
            description => writeln!(
                out,
                "    {}: {{name: {}, description: {}}}",
                permission.key,
                text(&permission.name),
                text(description)
            ),
        };
    }
    let mut roles: Vec<&ExportRole> = roles.iter().collect();
    roles.sort_by(|a, b| a.key.cmp(&b.key));
    out.push_str(if roles.is_empty() {
        "  roles: {}\n"
    } else {
        "  roles:\n"
    });
    for role in roles {
        let _ = writeln!(out, "    {}:\n      name: {}", role.key, text(&role.name));
        if !role.description.is_empty() {
            let _ = writeln!(out, "      description: {}", text(&role.description));
        }
        let mut keys = role.permissions.clone();
        keys.sort();
        let _ = writeln!(out, "      permissions: [{}]", keys.join(", "));
    }
    let mut sets: Vec<&ExportRoleSet> = role_sets.iter().collect();
    sets.sort_by(|a, b| a.key.cmp(&b.key));
    out.push_str(if sets.is_empty() {
        "  role_sets: {}\n"
    } else {
        "  role_sets:\n"
    });
    for set in sets {
        let _ = writeln!(out, "    {}:\n      name: {}", set.key, text(&set.name));
        if !set.description.is_empty() {
            let _ = writeln!(out, "      description: {}", text(&set.description));
        }
        if set.initial {
            out.push_str("      initial: true\n");
        }
        let _ = writeln!(out, "      roles: [{}]", set.roles.join(", "));
        let _ = writeln!(out, "      default_role: {}", set.default_role);
        let _ = writeln!(out, "      creator_role: {}", set.creator_role);
    }
    out
}
