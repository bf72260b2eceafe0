//! Raw serde structs that mirror the YAML file exactly, with the position of every value.
//!
//! Nothing here is validated beyond shape and type; `validate` turns these into domain types.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::yaml::At;

/// A whole desired-state file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub version: Option<At<serde_json::Value>>,
    pub defaults: Option<At<RawDefaults>>,
    pub organizations: Option<At<Entries<RawOrganization>>>,
}

/// `defaults:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub prune: Option<bool>,
    pub metadata: Option<RawMetadataMode>,
    pub invitations: Option<At<RawInvitations>>,
}

/// `invitations:` (in `defaults` or on an organization; an organization's fields override the
/// defaults' one by one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvitations {
    pub send: Option<bool>,
    pub redirect_url: Option<At<String>>,
    pub expires_in_days: Option<At<i64>>,
}

/// `metadata: exact | merge`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawMetadataMode {
    Exact,
    Merge,
}

/// One entry of `organizations:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganization {
    pub prune: Option<bool>,
    pub metadata: Option<RawMetadataMode>,
    pub invitations: Option<At<RawInvitations>>,
    pub members: Option<At<Entries<At<RawMember>>>>,
    pub ignore: Option<Vec<At<String>>>,
}

/// A member's value: a bare role (`user_x: admin`, kept shared: a large file repeats a few
/// roles hundreds of thousands of times) or the long form.
#[derive(Debug)]
pub enum RawMember {
    Role(std::sync::Arc<str>),
    Long(Box<RawMemberLong>),
}

/// The long form of a member.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMemberLong {
    pub role: Option<At<String>>,
    pub public_metadata: Option<At<serde_json::Value>>,
    pub private_metadata: Option<At<serde_json::Value>>,
    pub expires: Option<At<String>>,
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
                Ok(RawMember::Role(super::intern(role)))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMember, A::Error> {
                RawMemberLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|long| RawMember::Long(Box::new(long)))
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// A YAML mapping kept as an ordered list of entries, each key with its position, so that
/// validation can report duplicates that differ only in case with both line numbers.
#[derive(Debug)]
pub struct Entries<T>(pub Vec<(At<String>, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<At<String>>()? {
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_any(EntriesVisitor(std::marker::PhantomData))
    }
}
