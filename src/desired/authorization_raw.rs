//! The `authorization` block as the file has it (docs/authorization.md: "Roles and permissions as code"),
//! with the position of every value; `authorization` checks it. The doc comments are the JSON
//! Schema's descriptions.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::yaml::At;
use super::yaml::Entries;

/// A permission key: `org:<feature>:<action>`.
pub(super) const PERMISSION_PATTERN: &str = "^org:[a-z0-9_]+:[a-z0-9_]+$";
/// A role key: `org:<key>`.
pub(super) const ROLE_KEY_PATTERN: &str = "^org:[a-z0-9_]+$";
/// A role set key: `role_set:<key>`.
pub(super) const ROLE_SET_PATTERN: &str = "^role_set:[a-z0-9_]+$";

/// `authorization:` — the instance's organization permissions, roles and role sets. Only the
/// sections it has are managed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Authorization")]
pub struct RawAuthorization {
    /// Delete the custom permissions and roles the file does not list (in the sections it
    /// has), unless something still uses them. Default false.
    pub prune: Option<bool>,
    /// Custom permissions: key → name, or the long form.
    #[serde(default)]
    #[schemars(schema_with = "permissions_schema")]
    pub permissions: Option<At<Entries<At<RawPermission>>>>,
    /// Roles: key → name, description and the exact set of permissions.
    #[serde(default)]
    #[schemars(schema_with = "roles_schema")]
    pub roles: Option<At<Entries<At<RawRole>>>>,
    /// Role sets: key → the roles organizations with this set may hand out.
    #[serde(default)]
    #[schemars(schema_with = "role_sets_schema")]
    pub role_sets: Option<At<Entries<At<RawRoleSet>>>>,
}

/// A permission: its name alone, or the long form.
#[derive(Debug)]
pub enum RawPermission {
    Name(String),
    Long(RawPermissionLong),
}

/// The long form of a permission.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PermissionLong")]
pub struct RawPermissionLong {
    /// The permission's name.
    #[schemars(required)]
    pub name: Option<String>,
    /// What it allows.
    pub description: Option<String>,
}

/// A role.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RoleDefinition")]
pub struct RawRole {
    /// The role's name.
    #[schemars(required)]
    pub name: Option<String>,
    /// What the role is for.
    pub description: Option<String>,
    /// The exact set of its permissions (custom ones, and system ones `org:sys_…`).
    #[serde(default)]
    #[schemars(schema_with = "permission_list_schema")]
    pub permissions: Option<Vec<At<String>>>,
}

/// A role set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RoleSet")]
pub struct RawRoleSet {
    /// The role set's name.
    #[schemars(required)]
    pub name: Option<String>,
    /// What the role set is for.
    pub description: Option<String>,
    /// The role set new organizations get (at most one role set in the file).
    pub initial: Option<bool>,
    /// Its roles, 1 to 10.
    #[serde(default)]
    #[schemars(required, schema_with = "role_list_schema")]
    pub roles: Option<At<Vec<At<String>>>>,
    /// The role of new members; one of `roles`.
    #[serde(default)]
    #[schemars(required, schema_with = "role_key_schema")]
    pub default_role: Option<At<String>>,
    /// The role of an organization's creator; one of `roles`.
    #[serde(default)]
    #[schemars(required, schema_with = "role_key_schema")]
    pub creator_role: Option<At<String>>,
    /// Where members go when a role leaves this set: role → one of `roles`.
    #[serde(default)]
    #[schemars(schema_with = "reassign_schema")]
    pub reassign: Option<At<Entries<At<String>>>>,
}

fn permissions_schema(generator: &mut SchemaGenerator) -> Schema {
    let long = generator.subschema_for::<RawPermissionLong>();
    json_schema!({
        "type": "object",
        "description": "Custom permissions: key (`org:<feature>:<action>`) → name, or {name, description}.",
        "propertyNames": { "pattern": PERMISSION_PATTERN, "not": { "pattern": "^org:sys_" } },
        "additionalProperties": { "oneOf": [{ "type": "string" }, long] },
    })
}

fn roles_schema(generator: &mut SchemaGenerator) -> Schema {
    let role = generator.subschema_for::<RawRole>();
    json_schema!({
        "type": "object",
        "description": "Roles: key (`org:<key>`) → name, description and permissions.",
        "propertyNames": { "pattern": ROLE_KEY_PATTERN },
        "additionalProperties": role,
    })
}

fn role_sets_schema(generator: &mut SchemaGenerator) -> Schema {
    let set = generator.subschema_for::<RawRoleSet>();
    json_schema!({
        "type": "object",
        "description": "Role sets: key (`role_set:<key>`) → its roles, default and creator role.",
        "propertyNames": { "pattern": ROLE_SET_PATTERN },
        "additionalProperties": set,
    })
}

fn permission_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "description": "The exact set of the role's permissions.",
        "items": { "type": "string", "pattern": PERMISSION_PATTERN },
    })
}

fn role_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "description": "The role set's roles, 1 to 10.",
        "minItems": 1,
        "maxItems": 10,
        "items": { "type": "string", "pattern": ROLE_KEY_PATTERN },
    })
}

fn role_key_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": ROLE_KEY_PATTERN, "description": "A role key, one of `roles`." })
}

fn reassign_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Where members go when a role leaves this set: role → one of `roles`.",
        "propertyNames": { "pattern": ROLE_KEY_PATTERN },
        "additionalProperties": { "type": "string", "pattern": ROLE_KEY_PATTERN },
    })
}

impl JsonSchema for RawPermission {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Permission".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<RawPermissionLong>();
        json_schema!({ "oneOf": [{ "type": "string" }, long] })
    }
}

impl<'de> Deserialize<'de> for RawPermission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PermissionVisitor;

        impl<'de> Visitor<'de> for PermissionVisitor {
            type Value = RawPermission;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a name, or a mapping with `name` and `description`")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawPermission, E> {
                Ok(RawPermission::Name(name.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPermission, A::Error> {
                RawPermissionLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawPermission::Long)
            }
        }

        deserializer.deserialize_any(PermissionVisitor)
    }
}
