//! Typed, lenient models of the Clerk Backend API objects membersync reads.
//!
//! Unknown fields are ignored; fields the spec does not require are optional, so a response
//! that adds or omits optional fields still parses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An organization membership (`OrganizationMembership` in the spec).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Membership {
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub private_metadata: Option<Map<String, Value>>,
    pub organization: OrganizationRef,
    pub public_user_data: PublicUserData,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// The organization embedded in a membership; only its ID is needed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct OrganizationRef {
    pub id: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The member's public data embedded in a membership.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PublicUserData {
    pub user_id: String,
    /// Usually the primary email address.
    #[serde(default)]
    pub identifier: Option<String>,
}

/// A page of a listing (`OrganizationMemberships`, `Organizations`, `Roles`): the items and the
/// total the listing holds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(deserialize_with = "count")]
    pub total_count: u64,
    /// When Clerk served the page (its `Date` header, Unix milliseconds in whole seconds),
    /// where it said; the membership listings use it to notice memberships created meanwhile.
    #[serde(skip)]
    pub served_at: Option<i64>,
}

/// An organization invitation (`OrganizationInvitation`); only what the diff needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Invitation {
    pub id: String,
    pub email_address: String,
    pub role: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The instance-wide listing also embeds the organization.
    #[serde(default)]
    pub public_organization_data: Option<OrganizationRef>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub private_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

impl Invitation {
    /// The organization the invitation is to: its `organization_id`, else the embedded
    /// organization's ID.
    pub fn organization(&self) -> Option<&str> {
        self.organization_id.as_deref().or(self
            .public_organization_data
            .as_ref()
            .map(|o| o.id.as_str()))
    }
}

/// A page of invitations.
pub type InvitationPage = Page<Invitation>;
/// A page of memberships.
pub type MembershipPage = Page<Membership>;
/// A page of organizations.
pub type OrganizationPage = Page<Organization>;
/// A page of roles.
pub type RolePage = Page<RoleKey>;

/// A `total_count`: the spec gives it no lower bound; a negative one (which only a mock
/// sends) counts as zero, and paging then relies on the data itself.
fn count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    Ok(value.max(0) as u64)
}

/// An organization (`Organization`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub members_count: Option<u64>,
    #[serde(default)]
    pub role_set_key: Option<String>,
    /// 0: no limit.
    #[serde(default)]
    pub max_allowed_memberships: Option<u64>,
    #[serde(default)]
    pub admin_delete_enabled: Option<bool>,
    /// The organization's own metadata (read only where the files manage it).
    #[serde(default)]
    pub public_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub private_metadata: Option<Map<String, Value>>,
}

/// A verified domain of an organization (`OrganizationDomain`); only what the diff needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Domain {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub enrollment_mode: String,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// A page of domains.
pub type DomainPage = Page<Domain>;

/// One role of a role set (`RoleSetItem`) or of the instance (`Role`); only the key is used.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoleKey {
    pub key: String,
}

/// A role set (`RoleSet`): the roles an organization with this `role_set_key` allows.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoleSet {
    pub key: String,
    pub roles: Vec<RoleKey>,
}

/// A user (`User`); only the ID and email addresses are used.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub primary_email_address_id: Option<String>,
    #[serde(default)]
    pub email_addresses: Vec<EmailAddress>,
}

impl User {
    /// The primary email address, or the first one.
    pub fn primary_email(&self) -> Option<&str> {
        let primary = self
            .email_addresses
            .iter()
            .find(|email| Some(&email.id) == self.primary_email_address_id.as_ref());
        primary
            .or(self.email_addresses.first())
            .map(|email| email.email_address.as_str())
    }
}

/// One of a user's email addresses (`EmailAddress`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub id: String,
    pub email_address: String,
}

/// Clerk's error body (`ClerkErrors`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    #[serde(default)]
    pub clerk_trace_id: Option<String>,
}

/// One entry of Clerk's error body (`ClerkError`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub long_message: Option<String>,
    #[serde(default)]
    pub meta: Option<Value>,
}

impl ErrorBody {
    /// Whether any entry has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|error| error.code == code)
    }

    /// The most helpful text: the first `long_message`, else the first `message`.
    pub fn describe(&self) -> String {
        let text = self.errors.first().map(|error| {
            let message = error
                .long_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or(&error.message);
            if error.code.is_empty() {
                message.to_owned()
            } else {
                format!("{} ({})", message, error.code)
            }
        });
        let mut text = text.unwrap_or_else(|| "no error details".to_owned());
        if let Some(trace) = &self.clerk_trace_id {
            text.push_str(&format!(" [clerk_trace_id {trace}]"));
        }
        text
    }
}
