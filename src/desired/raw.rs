//! Raw serde structs that mirror the YAML file exactly, with the position of every value.
//!
//! Nothing here is validated beyond shape and type; `validate` turns these into domain types.
//! The same types give the file's JSON Schema (`membersync schema`): the doc comments below
//! are its descriptions.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::yaml::{At, Entries};

/// A role: `org:<key>`, or just `<key>`; a key is lower-case letters, digits, `_` and `-`.
const ROLE_PATTERN: &str = "^(org:)?[a-z0-9_-]+$";
/// A member key: a Clerk user ID (`user_…`), an email address, or `group:NAME`.
const MEMBER_KEY_PATTERN: &str = "^(user_[A-Za-z0-9]+|[^@\\s]+@[^@\\s]+|group:[A-Za-z0-9_.-]+)$";
/// A group entry: a Clerk user ID or an email address (a group never names a group).
const GROUP_ENTRY_PATTERN: &str = "^(user_[A-Za-z0-9]+|[^@\\s]+@[^@\\s]+)$";

/// A membersync desired-state file (schema version 1): which people belong to which Clerk
/// organization, with which role.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "membersync desired state")]
pub struct RawFile {
    /// The schema version: 1.
    #[schemars(required, schema_with = "version_schema")]
    pub version: Option<At<serde_json::Value>>,
    /// Settings for every organization, unless an organization overrides them.
    pub defaults: Option<At<RawDefaults>>,
    /// Company directories groups can come from (Google Workspace, Okta, Microsoft Entra ID),
    /// by name. Credentials come from files or environment variables, never from this file.
    #[serde(default)]
    #[schemars(schema_with = "directories_schema")]
    pub directories: Option<At<RawDirectories>>,
    /// Named sets of people (user IDs or emails), or groups of a directory, used as
    /// `group:NAME` member keys in this file.
    #[serde(default)]
    #[schemars(schema_with = "groups_schema")]
    pub groups: Option<At<RawGroups>>,
    /// Members for every organization of the instance (including those created later),
    /// except those in `except`.
    pub all_organizations: Option<At<RawAllOrganizations>>,
    /// The managed organizations, keyed by organization ID (`org_…`) or slug. Organizations
    /// not named here are never read for changes nor written.
    #[schemars(required, schema_with = "organizations_schema")]
    pub organizations: Option<At<Entries<RawOrganization>>>,
    /// The instance's organization permissions, roles and role sets, managed as code (at most
    /// one file declares it).
    pub authorization: Option<At<super::authorization_raw::RawAuthorization>>,
}

fn version_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": 1, "description": "The schema version: 1." })
}

/// `groups:`: each name with its people (user IDs or emails), or a directory's group.
pub type RawGroups = Entries<At<RawGroup>>;

fn groups_schema(generator: &mut SchemaGenerator) -> Schema {
    let from_directory = generator.subschema_for::<RawDirectoryGroup>();
    json_schema!({
        "type": "object",
        "description": "Named sets of people (user IDs or emails), or groups read from a directory, used as `group:NAME` member keys.",
        "propertyNames": { "pattern": "^[A-Za-z0-9_.-]+$" },
        "additionalProperties": {
            "oneOf": [
                {
                    "type": "array",
                    "minItems": 1,
                    "items": { "type": "string", "pattern": GROUP_ENTRY_PATTERN },
                },
                from_directory,
            ],
        },
    })
}

/// `all_organizations:` — members that every organization of the instance gets.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AllOrganizations")]
pub struct RawAllOrganizations {
    /// Organization IDs or slugs left out.
    pub except: Option<Vec<At<String>>>,
    /// The members every organization gets, as an organization's `members` (`group:NAME` too).
    /// In an organization the file does not name, they are only added, never pruned.
    #[serde(default)]
    #[schemars(schema_with = "members_schema")]
    pub members: Option<At<Entries<At<RawMember>>>>,
}

fn organizations_schema(generator: &mut SchemaGenerator) -> Schema {
    let organization = generator.subschema_for::<RawOrganization>();
    json_schema!({
        "type": "object",
        "description": "The managed organizations, keyed by organization ID (`org_…`) or slug.",
        "propertyNames": { "minLength": 1 },
        "additionalProperties": organization,
    })
}

/// `defaults:` — settings for every organization, unless an organization overrides them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// Remove the memberships (and, where invitations are sent, the pending invitations) of a
    /// managed organization that the file does not list. Default true.
    pub prune: Option<bool>,
    /// How declared metadata is applied. Default `exact`.
    pub metadata: Option<RawMetadataMode>,
    /// Whether and how people with no Clerk account yet are invited.
    pub invitations: Option<At<RawInvitations>>,
}

/// `invitations:` (in `defaults` or on an organization; an organization's fields override the
/// defaults' one by one).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Invitations")]
pub struct RawInvitations {
    /// Invite the listed emails that have no Clerk user, with their role and metadata
    /// (default false: they stay pending).
    pub send: Option<bool>,
    /// Where the invitation link leads (an http(s) URL).
    #[serde(default)]
    #[schemars(schema_with = "redirect_url_schema")]
    pub redirect_url: Option<At<String>>,
    /// How many days an invitation lasts, 1 to 365 (Clerk's default: 30).
    #[serde(default)]
    #[schemars(schema_with = "expires_in_days_schema")]
    pub expires_in_days: Option<At<i64>>,
}

fn redirect_url_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^https?://",
        "description": "Where the invitation link leads (an http(s) URL).",
    })
}

fn expires_in_days_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": 1,
        "maximum": 365,
        "description": "How many days an invitation lasts, 1 to 365 (Clerk's default: 30).",
    })
}

/// `metadata: exact | merge`: `exact` makes the declared object the whole metadata (keys not
/// declared are removed); `merge` sets the declared keys (deeply) and keeps the others.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "MetadataMode")]
pub enum RawMetadataMode {
    Exact,
    Merge,
}

/// One managed organization.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Organization")]
pub struct RawOrganization {
    /// Overrides `defaults.prune` for this organization.
    pub prune: Option<bool>,
    /// Overrides `defaults.metadata` for this organization.
    pub metadata: Option<RawMetadataMode>,
    /// Overrides `defaults.invitations`, field by field.
    pub invitations: Option<At<RawInvitations>>,
    /// The members: user ID (`user_…`) or email address → a role, or the long form.
    #[serde(default)]
    #[schemars(schema_with = "members_schema")]
    pub members: Option<At<Entries<At<RawMember>>>>,
    /// User IDs or emails that membersync never creates, changes or deletes here.
    pub ignore: Option<Vec<At<String>>>,
    /// The organization's name. An organization keyed by a slug that no organization has is
    /// created with it; without it, a missing organization is an error.
    #[serde(default)]
    #[schemars(schema_with = "organization_name_schema")]
    pub name: Option<At<String>>,
    /// The most memberships the organization may have (0: no limit).
    #[serde(default)]
    #[schemars(schema_with = "max_allowed_memberships_schema")]
    pub max_allowed_memberships: Option<At<i64>>,
    /// Whether an admin may delete the organization (from the frontend).
    pub admin_delete_enabled: Option<bool>,
    /// The key of the organization's role set (`role_set:<key>`).
    #[serde(default)]
    #[schemars(schema_with = "role_set_schema")]
    pub role_set: Option<At<String>>,
    /// The organization's own public metadata (not its members'), in the `metadata` mode.
    #[serde(default)]
    #[schemars(schema_with = "metadata_schema")]
    pub public_metadata: Option<At<serde_json::Value>>,
    /// The organization's own private metadata (not its members'), in the `metadata` mode.
    #[serde(default)]
    #[schemars(schema_with = "metadata_schema")]
    pub private_metadata: Option<At<serde_json::Value>>,
    /// The organization's verified domains: exactly these (others are deleted), each with its
    /// enrollment mode.
    #[serde(default)]
    #[schemars(schema_with = "domains_schema")]
    pub domains: Option<At<Entries<At<RawDomain>>>>,
}

/// The enrollment modes a domain may have, as Clerk names them.
pub const ENROLLMENT_MODES: [&str; 4] = [
    "manual_invitation",
    "automatic_invitation",
    "automatic_suggestion",
    "enterprise_sso",
];

/// A domain name: lower-case labels of letters, digits and `-`, with at least one dot.
const DOMAIN_PATTERN: &str = "^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\.)+[a-zA-Z]{2,63}$";

fn organization_name_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 256,
        "description": "The organization's name. An organization keyed by a slug that no organization has is created with it.",
    })
}

fn max_allowed_memberships_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": 0,
        "description": "The most memberships the organization may have (0: no limit).",
    })
}

fn role_set_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^role_set:[a-z0-9_-]+$",
        "description": "The key of the organization's role set (`role_set:<key>`).",
    })
}

fn enrollment_mode_schema() -> Schema {
    json_schema!({
        "enum": ENROLLMENT_MODES,
        "description": "How people with an address at the domain join: `manual_invitation` (only when invited), `automatic_invitation` or `automatic_suggestion` (everyone at the domain is invited, or may ask to join), `enterprise_sso`.",
    })
}

fn domains_schema(generator: &mut SchemaGenerator) -> Schema {
    let domain = generator.subschema_for::<RawDomain>();
    json_schema!({
        "type": "object",
        "description": "The organization's verified domains: exactly these (others are deleted), each with its enrollment mode.",
        "propertyNames": { "pattern": DOMAIN_PATTERN },
        "additionalProperties": domain,
    })
}

/// A domain's value: its enrollment mode (`acme.com: manual_invitation`) or the long form
/// (`acme.com: {enrollment_mode: manual_invitation}`).
#[derive(Debug)]
pub enum RawDomain {
    Mode(String),
    Long(RawDomainLong),
}

/// The long form of a domain.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DomainLong")]
pub struct RawDomainLong {
    /// How people with an address at the domain join.
    #[schemars(required, schema_with = "enrollment_mode_long_schema")]
    pub enrollment_mode: Option<At<String>>,
}

fn enrollment_mode_long_schema(_: &mut SchemaGenerator) -> Schema {
    enrollment_mode_schema()
}

/// A domain: its enrollment mode, or the long form.
impl JsonSchema for RawDomain {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Domain".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<RawDomainLong>();
        json_schema!({
            "description": "A domain's enrollment mode (`manual_invitation`, `automatic_invitation`, `automatic_suggestion`, `enterprise_sso`), or the long form with `enrollment_mode`.",
            "oneOf": [enrollment_mode_schema(), long],
        })
    }
}

impl<'de> Deserialize<'de> for RawDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DomainVisitor;

        impl<'de> Visitor<'de> for DomainVisitor {
            type Value = RawDomain;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(
                    "an enrollment mode (like `manual_invitation`) or a mapping with `enrollment_mode`",
                )
            }

            fn visit_str<E: de::Error>(self, mode: &str) -> Result<RawDomain, E> {
                Ok(RawDomain::Mode(mode.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDomain, A::Error> {
                RawDomainLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawDomain::Long)
            }
        }

        deserializer.deserialize_any(DomainVisitor)
    }
}

fn members_schema(generator: &mut SchemaGenerator) -> Schema {
    let member = generator.subschema_for::<RawMember>();
    json_schema!({
        "type": "object",
        "description": "The members: user ID (`user_…`) or email address → a role, or the long form.",
        "propertyNames": { "pattern": MEMBER_KEY_PATTERN },
        "additionalProperties": member,
    })
}

/// A member's value: a bare role (`user_x: admin`, kept shared: a large file repeats a few
/// roles hundreds of thousands of times) or the long form.
#[derive(Debug)]
pub enum RawMember {
    Role(std::sync::Arc<str>),
    Long(Box<RawMemberLong>),
}

/// The long form of a member.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MemberLong")]
pub struct RawMemberLong {
    /// The role: `org:<key>` or `<key>`.
    #[schemars(required, schema_with = "role_schema")]
    pub role: Option<At<String>>,
    /// Metadata visible to the frontend; when declared it is managed (see `metadata`).
    #[serde(default)]
    #[schemars(schema_with = "metadata_schema")]
    pub public_metadata: Option<At<serde_json::Value>>,
    /// Metadata visible to the backend only; when declared it is managed.
    #[serde(default)]
    #[schemars(schema_with = "metadata_schema")]
    pub private_metadata: Option<At<serde_json::Value>>,
    /// Listed through this UTC day (YYYY-MM-DD); from the next day, not listed.
    #[serde(default)]
    #[schemars(schema_with = "expires_schema")]
    pub expires: Option<At<String>>,
}

fn role_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": ROLE_PATTERN,
        "description": "A role: `org:<key>`, or just `<key>` (lower-case letters, digits, `_`, `-`).",
    })
}

fn metadata_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "description": "A metadata object." })
}

fn expires_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        "description": "Listed through this UTC day (YYYY-MM-DD); from the next day, not listed.",
    })
}

/// A member: a bare role, or the long form.
impl JsonSchema for RawMember {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Member".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<RawMemberLong>();
        json_schema!({
            "description": "A member: a bare role (`admin`, `org:billing`), or the long form with `role`, metadata and `expires`.",
            "oneOf": [role_schema(generator), long],
        })
    }
}

impl<'de> Deserialize<'de> for RawMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = RawMember;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a role (like `admin` or `org:admin`) or a mapping with `role`")
            }

            fn visit_str<E: de::Error>(self, role: &str) -> Result<RawMember, E> {
                Ok(RawMember::Role(super::names::intern(role)))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMember, A::Error> {
                RawMemberLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|long| RawMember::Long(Box::new(long)))
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// One `groups:` entry: its people, or a group of a directory.
#[derive(Debug)]
pub enum RawGroup {
    People(Vec<At<String>>),
    Directory(RawDirectoryGroup),
}

impl<'de> Deserialize<'de> for RawGroup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupVisitor;

        impl<'de> Visitor<'de> for GroupVisitor {
            type Value = RawGroup;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(
                    "a list of people (user IDs or emails), or `{directory: NAME, group: KEY}`",
                )
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawGroup, A::Error> {
                let mut people = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(person) = seq.next_element::<At<String>>()? {
                    people.push(person);
                }
                Ok(RawGroup::People(people))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawGroup, A::Error> {
                RawDirectoryGroup::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawGroup::Directory)
            }
        }

        deserializer.deserialize_any(GroupVisitor)
    }
}

/// A group read from a directory at every run: its people are the group's active users.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DirectoryGroup")]
pub struct RawDirectoryGroup {
    /// The directory, by its name under `directories:` in this file.
    #[schemars(required, schema_with = "non_empty_string")]
    pub directory: Option<At<String>>,
    /// The group: Google, its email (or alias or ID); Okta, its ID or exact name; Entra ID,
    /// its object ID.
    #[schemars(required, schema_with = "non_empty_string")]
    pub group: Option<At<String>>,
    /// Take an empty group as it is (default false: a group that comes back empty is
    /// unavailable, and nothing it could decide is removed or demoted that run).
    pub allow_empty: Option<bool>,
}

fn non_empty_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1 })
}

/// `directories:`: each name with its settings, kept as written (each field with its
/// position) so that the checks can name a provider's missing, unknown or secret fields.
pub type RawDirectories = Entries<At<Entries<At<serde_json::Value>>>>;

fn directories_schema(_: &mut SchemaGenerator) -> Schema {
    let url = json_schema!({ "type": "string", "pattern": "^https?://" });
    let path = json_schema!({ "type": "string", "minLength": 1, "description": "The path of a file (mounted from a secret)." });
    let text = json_schema!({ "type": "string", "minLength": 1 });
    json_schema!({
        "type": "object",
        "description": "Company directories groups can come from, by name. Credentials come from files or environment variables, never from this file.",
        "propertyNames": { "pattern": "^[A-Za-z0-9_.-]+$" },
        "additionalProperties": {
            "oneOf": [
                {
                    "type": "object",
                    "description": "Google Workspace (Admin SDK Directory API), as a service account with domain-wide delegation.",
                    "properties": {
                        "provider": { "const": "google" },
                        "credentials_file": path,
                        "subject": { "type": "string", "pattern": "@", "description": "The admin the service account acts as." },
                        "api_url": url,
                        "token_url": url,
                    },
                    "required": ["provider", "subject"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "description": "Okta (management API), with an API token.",
                    "properties": {
                        "provider": { "const": "okta" },
                        "url": url,
                        "token_file": path,
                    },
                    "required": ["provider", "url"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "description": "Microsoft Entra ID (Microsoft Graph), with an app's client credentials.",
                    "properties": {
                        "provider": { "const": "entra" },
                        "tenant_id": text,
                        "client_id": text,
                        "client_secret_file": path,
                        "api_url": url,
                        "token_url": url,
                    },
                    "required": ["provider", "tenant_id", "client_id"],
                    "additionalProperties": false,
                },
            ],
        },
    })
}
