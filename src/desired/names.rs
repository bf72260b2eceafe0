//! How the files name things: organizations (an ID or a slug), users (an ID or an email) and
//! roles (`org:<key>`, each key stored once), with why a name is not one.

use std::fmt;
use std::sync::Arc;

/// How an organization is named in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgRef {
    /// A Clerk organization ID (`org_…`).
    Id(String),
    /// An organization slug, resolved to an ID against the live instance.
    Slug(String),
}

impl OrgRef {
    /// `org_…` keys are IDs; anything else is a slug.
    pub fn parse(key: &str) -> OrgRef {
        if key.starts_with("org_") {
            OrgRef::Id(key.to_owned())
        } else {
            OrgRef::Slug(key.to_owned())
        }
    }

    /// Whether this reference names the organization with this ID (and slug, when known).
    pub fn names(&self, id: &str, slug: Option<&str>) -> bool {
        match self {
            OrgRef::Id(key) => key == id,
            OrgRef::Slug(key) => Some(key.as_str()) == slug,
        }
    }

    /// The text as written in the file.
    pub fn as_str(&self) -> &str {
        match self {
            OrgRef::Id(text) | OrgRef::Slug(text) => text,
        }
    }
}

impl fmt::Display for OrgRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How a user is named in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserRef {
    /// A Clerk user ID (`user_…`).
    Id(String),
    /// An email address, lower-cased; resolved to a user ID through Clerk's users listing.
    Email(String),
}

impl UserRef {
    /// A key containing `@` is an email address (compared case-insensitively); otherwise it
    /// must look like a Clerk user ID.
    pub fn parse(key: &str) -> Result<UserRef, UserRefError> {
        let key = key.trim();
        if key.contains('@') {
            let (local, domain) = key.rsplit_once('@').unwrap_or_default();
            if local.is_empty() || domain.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(UserRefError::Email(key.to_owned()));
            }
            Ok(UserRef::Email(key.to_lowercase()))
        } else if is_clerk_id(key, "user_") {
            Ok(UserRef::Id(key.to_owned()))
        } else {
            Err(UserRefError::Neither(key.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            UserRef::Id(text) | UserRef::Email(text) => text,
        }
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a user key is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRefError {
    /// It has an `@` but is not an email address (no local part or domain, or a space).
    #[error("`{0}` is not a valid email address")]
    Email(String),
    /// It has no `@` and is not a Clerk user ID either.
    #[error("`{0}` is neither an email address nor a Clerk user ID (user_…)")]
    Neither(String),
}

fn is_clerk_id(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// An organization role key, always in Clerk's `org:<key>` form. Each distinct key is stored
/// once and shared: a large instance has a million memberships and a handful of roles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(Arc<str>);

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The shared copy of a role key (or of a role as the file spells it).
pub(super) fn intern(key: &str) -> Arc<str> {
    static KEYS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<Arc<str>>>> =
        std::sync::OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some(key) = keys.get(key) {
        return key.clone();
    }
    let shared: Arc<str> = Arc::from(key);
    keys.insert(shared.clone());
    shared
}

impl Role {
    /// The role every organization has; the safety checks protect it.
    pub const ADMIN: &'static str = "org:admin";
    /// The role Clerk gives a plain member.
    pub const MEMBER: &'static str = "org:member";

    /// Normalizes `admin` to `org:admin`; refuses empty keys and illegal characters.
    /// Clerk role keys are lower-case letters, digits, `_` and `-` after `org:`.
    pub fn parse(text: &str) -> Result<Role, RoleError> {
        let text = text.trim();
        let key = text.strip_prefix("org:").unwrap_or(text);
        if key.is_empty() {
            return Err(RoleError::Empty);
        }
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
        {
            return Err(RoleError::Character {
                role: text.to_owned(),
                character: bad,
            });
        }
        Ok(Role(intern(&format!("org:{key}"))))
    }

    /// A role as Clerk reports it on a live membership, taken as it is.
    pub fn observed(key: &str) -> Role {
        Role(intern(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_admin(&self) -> bool {
        &*self.0 == Self::ADMIN
    }
}

impl PartialEq<str> for Role {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Role {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Why a role is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// Nothing after `org:`, or nothing at all.
    #[error("the role is empty")]
    Empty,
    /// A character a role key may not hold (upper case, a space, punctuation).
    #[error(
        "the role `{role}` contains {}; a role is `org:` followed by lower-case letters, digits, `_` or `-`",
        describe_character(*.character)
    )]
    Character { role: String, character: char },
}

/// A character as an error message names it.
fn describe_character(character: char) -> String {
    match character {
        ' ' | '\t' => "a space".to_owned(),
        c if c.is_ascii_uppercase() => format!("an upper-case `{c}` (role keys are lower-case)"),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_role_gets_the_org_prefix() {
        assert_eq!(Role::parse("admin").unwrap().as_str(), "org:admin");
        assert_eq!(
            Role::parse("org:billing_manager").unwrap().as_str(),
            "org:billing_manager"
        );
        assert_eq!(Role::parse(" member ").unwrap().as_str(), "org:member");
    }

    #[test]
    fn empty_and_malformed_roles_are_refused() {
        assert_eq!(
            Role::parse("").unwrap_err().to_string(),
            "the role is empty"
        );
        assert_eq!(
            Role::parse("org:").unwrap_err().to_string(),
            "the role is empty"
        );
        assert!(
            Role::parse("super admin")
                .unwrap_err()
                .to_string()
                .contains("a space")
        );
        assert!(
            Role::parse("Admin")
                .unwrap_err()
                .to_string()
                .contains("lower-case")
        );
        assert!(
            Role::parse("org:adm!n")
                .unwrap_err()
                .to_string()
                .contains("`!`")
        );
        assert!(
            Role::parse("org:org:admin")
                .unwrap_err()
                .to_string()
                .contains("`:`")
        );
    }

    #[test]
    fn emails_are_recognized_by_the_at_sign_and_lower_cased() {
        assert_eq!(
            UserRef::parse("Alice@Example.COM").unwrap(),
            UserRef::Email("alice@example.com".into())
        );
        assert_eq!(
            UserRef::parse("user_2xyz").unwrap(),
            UserRef::Id("user_2xyz".into())
        );
        assert!(UserRef::parse("@example.com").is_err());
        assert!(UserRef::parse("alice@").is_err());
        assert!(
            UserRef::parse("alice")
                .unwrap_err()
                .to_string()
                .contains("neither an email")
        );
        assert!(UserRef::parse("user_").is_err());
    }

    #[test]
    fn organization_keys_starting_with_org_are_ids() {
        assert_eq!(OrgRef::parse("org_2abc"), OrgRef::Id("org_2abc".into()));
        assert_eq!(OrgRef::parse("acme-inc"), OrgRef::Slug("acme-inc".into()));
    }
}
