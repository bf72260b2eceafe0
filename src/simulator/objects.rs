//! Clerk's objects as the Backend API serializes them (`Organization`, `OrganizationMembership`,
//! `User`, `EmailAddress`, `OrganizationInvitation`, `Role`, `RoleSet`), with every field the
//! API description requires, made from the simulated state: names from email addresses, image
//! URLs, the times of [`SimState::times`]. They borrow from the state and are written straight
//! to the answer, so a page of 500 memberships builds no JSON tree and allocates no string per
//! field.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::state::{
    Fragments, SimInvitation, SimMembership, SimOrganization, SimState, SimUser, Times,
};

/// Where Clerk serves images; the simulator's are its default, generated images.
const IMAGE_HOST: &str = "https://img.clerk.com";

/// `{}`: the metadata the state does not keep (an organization's, a user's).
pub(super) struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

/// The default image of an organization or user, as `https://img.clerk.com/…`.
pub(super) struct ImageUrl<'a>(pub(super) &'a str);

impl fmt::Display for ImageUrl<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{IMAGE_HOST}/default/{}.png", self.0)
    }
}

impl Serialize for ImageUrl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A word as a name: its first letter upper-cased (`ada` is `Ada`).
#[derive(Clone, Copy)]
pub(super) struct Name<'a>(&'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut letters = self.0.chars();
        if let Some(first) = letters.next() {
            write!(formatter, "{}{}", first.to_uppercase(), letters.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Name<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A person's first and last names, made from their email address as people write them:
/// `ada.lovelace@…` is Ada Lovelace, `chloe@…` is Chloe without a last name.
pub(super) fn names(email: Option<&str>) -> (Option<Name<'_>>, Option<Name<'_>>) {
    let Some(local) = email.and_then(|e| e.split('@').next()) else {
        return (None, None);
    };
    let mut words = local
        .split(['.', '_', '-', '+'])
        .filter(|w| w.chars().next().is_some_and(char::is_alphabetic));
    (words.next().map(Name), words.next().map(Name))
}

/// A role's name from its key: `org:billing_manager` is "Billing manager".
pub(super) struct RoleName<'a>(pub(super) &'a str);

impl fmt::Display for RoleName<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = self.0.rsplit(':').next().unwrap_or(self.0);
        let mut letters = bare.chars();
        if let Some(first) = letters.next() {
            write!(formatter, "{}", first.to_uppercase())?;
        }
        for letter in letters {
            write!(formatter, "{}", if letter == '_' { ' ' } else { letter })?;
        }
        Ok(())
    }
}

impl Serialize for RoleName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `Organization`. `members_count` only when asked for (`include_members_count`).
#[derive(Serialize)]
pub(super) struct OrganizationOut<'a> {
    object: &'static str,
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    image_url: ImageUrl<'a>,
    has_image: bool,
    /// Clerk's `0`: no limit.
    max_allowed_memberships: usize,
    admin_delete_enabled: bool,
    public_metadata: &'a Map<String, Value>,
    private_metadata: &'a Map<String, Value>,
    role_set_key: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    members_count: Option<usize>,
}

pub(super) fn organization_out<'a>(
    state: &'a SimState,
    organization: &'a SimOrganization,
    members_count: Option<usize>,
) -> OrganizationOut<'a> {
    let Times {
        created_at,
        updated_at,
    } = state.times_of(&organization.id);
    OrganizationOut {
        object: "organization",
        id: &organization.id,
        name: &organization.name,
        slug: &organization.slug,
        image_url: ImageUrl(&organization.id),
        has_image: false,
        max_allowed_memberships: organization.max_allowed_memberships.unwrap_or(0),
        admin_delete_enabled: organization.admin_delete_enabled.unwrap_or(true),
        public_metadata: &organization.public_metadata,
        private_metadata: &organization.private_metadata,
        role_set_key: organization.role_set_key.as_deref(),
        created_at,
        updated_at,
        members_count,
    }
}

/// `OrganizationMembershipPublicUserData`.
#[derive(Serialize)]
pub(super) struct PublicUserDataOut<'a> {
    user_id: &'a str,
    first_name: Option<Name<'a>>,
    last_name: Option<Name<'a>>,
    profile_image_url: ImageUrl<'a>,
    image_url: ImageUrl<'a>,
    has_image: bool,
    identifier: Option<&'a str>,
    username: Option<&'a str>,
    banned: bool,
}

fn person_out<'a>(user_id: &'a str, user: Option<&'a SimUser>) -> PublicUserDataOut<'a> {
    let identifier = user.and_then(|u| u.emails.first().map(String::as_str));
    let (first_name, last_name) = names(identifier);
    PublicUserDataOut {
        user_id,
        first_name,
        last_name,
        profile_image_url: ImageUrl(user_id),
        image_url: ImageUrl(user_id),
        has_image: false,
        identifier,
        username: None,
        banned: false,
    }
}

/// The nested objects of the organizations and people of `state`, written once (and again
/// once [`SimState`] forgot them).
fn fragments(state: &SimState) -> &Fragments {
    state.index.fragments.get_or_init(|| Fragments {
        organizations: state
            .organizations
            .iter()
            .map(|o| written(&organization_out(state, o, None)))
            .collect(),
        people: state
            .users
            .iter()
            .map(|u| written(&person_out(&u.id, Some(u))))
            .collect(),
    })
}

/// An object written once. Writing these structures cannot fail; `null` if it ever did.
fn written(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// A nested object: written once ([`Fragments`]), or now.
pub(super) enum Nested<'a, T> {
    Written(&'a RawValue),
    Now(T),
}

impl<T: Serialize> Serialize for Nested<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Nested::Written(raw) => raw.serialize(serializer),
            Nested::Now(value) => value.serialize(serializer),
        }
    }
}

/// `OrganizationMembership`, its organization and its person in full.
#[derive(Serialize)]
pub(super) struct MembershipOut<'a> {
    object: &'static str,
    id: &'a str,
    role: &'a str,
    role_name: RoleName<'a>,
    permissions: [&'a str; 0],
    public_metadata: &'a Map<String, Value>,
    private_metadata: &'a Map<String, Value>,
    organization: Nested<'a, OrganizationOut<'a>>,
    public_user_data: Nested<'a, PublicUserDataOut<'a>>,
    created_at: i64,
    updated_at: i64,
}

/// The organization a membership points at, or a placeholder with its ID if the state lost it.
static NO_ORGANIZATION: std::sync::LazyLock<SimOrganization> =
    std::sync::LazyLock::new(SimOrganization::default);

pub(super) fn membership_out<'a>(
    state: &'a SimState,
    membership: &'a SimMembership,
) -> MembershipOut<'a> {
    let fragments = fragments(state);
    let organization = state
        .organization_at(&membership.organization_id)
        .and_then(|(position, _)| fragments.organizations.get(position))
        .map_or_else(
            || {
                let organization = state.organization(&membership.organization_id);
                let mut now =
                    organization_out(state, organization.unwrap_or(&NO_ORGANIZATION), None);
                now.id = &membership.organization_id;
                Nested::Now(now)
            },
            |written| Nested::Written(written),
        );
    let public_user_data = state
        .user_at(&membership.user_id)
        .and_then(|(position, _)| fragments.people.get(position))
        .map_or_else(
            || {
                Nested::Now(person_out(
                    &membership.user_id,
                    state.user(&membership.user_id),
                ))
            },
            |written| Nested::Written(written),
        );
    MembershipOut {
        object: "organization_membership",
        id: &membership.id,
        role: &membership.role,
        role_name: RoleName(&membership.role),
        permissions: [],
        public_metadata: &membership.public_metadata,
        private_metadata: &membership.private_metadata,
        organization,
        public_user_data,
        created_at: membership.created_at,
        updated_at: state.updated_at(&membership.id, membership.created_at),
    }
}

/// `EmailAddress`, verified by an administrator (how the Backend API creates them).
#[derive(Serialize)]
struct EmailAddressOut<'a> {
    id: EmailId<'a>,
    object: &'static str,
    email_address: &'a str,
    reserved: bool,
    verification: VerificationOut,
    linked_to: [&'a str; 0],
    matches_sso_connection: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct VerificationOut {
    object: &'static str,
    status: &'static str,
    strategy: &'static str,
    attempts: Option<u32>,
    expire_at: Option<i64>,
}

/// The ID of a user's `index`th email address: `idn_{user}_{index}`.
pub(super) struct EmailId<'a>(pub(super) &'a str, pub(super) usize);

impl fmt::Display for EmailId<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "idn_{}_{}", self.0, self.1)
    }
}

impl Serialize for EmailId<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `User`, with every field Clerk's API description requires; what the state does not know
/// (phone numbers, passwords, sign-ins) is empty, `false` or `null`, as for a user created
/// through the Backend API who never signed in.
#[derive(Serialize)]
pub(super) struct UserOut<'a> {
    id: &'a str,
    object: &'static str,
    external_id: Option<&'a str>,
    primary_email_address_id: Option<EmailId<'a>>,
    primary_phone_number_id: Option<&'a str>,
    primary_web3_wallet_id: Option<&'a str>,
    username: Option<&'a str>,
    first_name: Option<Name<'a>>,
    last_name: Option<Name<'a>>,
    locale: Option<&'a str>,
    profile_image_url: ImageUrl<'a>,
    image_url: ImageUrl<'a>,
    has_image: bool,
    public_metadata: Empty,
    private_metadata: Empty,
    unsafe_metadata: Empty,
    email_addresses: Vec<EmailAddressOut<'a>>,
    phone_numbers: [&'a str; 0],
    web3_wallets: [&'a str; 0],
    passkeys: [&'a str; 0],
    password_enabled: bool,
    two_factor_enabled: bool,
    totp_enabled: bool,
    backup_code_enabled: bool,
    mfa_enabled_at: Option<i64>,
    mfa_disabled_at: Option<i64>,
    password_last_updated_at: Option<i64>,
    external_accounts: [&'a str; 0],
    saml_accounts: [&'a str; 0],
    enterprise_accounts: [&'a str; 0],
    last_sign_in_at: Option<i64>,
    banned: bool,
    locked: bool,
    deprovisioned: bool,
    lockout_expires_in_seconds: Option<i64>,
    verification_attempts_remaining: Option<i64>,
    created_at: i64,
    updated_at: i64,
    delete_self_enabled: bool,
    create_organization_enabled: bool,
    create_organizations_limit: Option<i64>,
    last_active_at: Option<i64>,
    legal_accepted_at: Option<i64>,
}

pub(super) fn user_out<'a>(state: &'a SimState, user: &'a SimUser) -> UserOut<'a> {
    let times = state.times_of(&user.id);
    let (first_name, last_name) = names(user.emails.first().map(String::as_str));
    let email_addresses = user
        .emails
        .iter()
        .enumerate()
        .map(|(index, email)| EmailAddressOut {
            id: EmailId(&user.id, index),
            object: "email_address",
            email_address: email,
            reserved: false,
            verification: VerificationOut {
                object: "verification_admin",
                status: "verified",
                strategy: "admin",
                attempts: None,
                expire_at: None,
            },
            linked_to: [],
            matches_sso_connection: false,
            created_at: times.created_at,
            updated_at: times.created_at,
        })
        .collect();
    UserOut {
        id: &user.id,
        object: "user",
        external_id: None,
        primary_email_address_id: (!user.emails.is_empty()).then_some(EmailId(&user.id, 0)),
        primary_phone_number_id: None,
        primary_web3_wallet_id: None,
        username: None,
        first_name,
        last_name,
        locale: None,
        profile_image_url: ImageUrl(&user.id),
        image_url: ImageUrl(&user.id),
        has_image: false,
        public_metadata: Empty,
        private_metadata: Empty,
        unsafe_metadata: Empty,
        email_addresses,
        phone_numbers: [],
        web3_wallets: [],
        passkeys: [],
        password_enabled: false,
        two_factor_enabled: false,
        totp_enabled: false,
        backup_code_enabled: false,
        mfa_enabled_at: None,
        mfa_disabled_at: None,
        password_last_updated_at: None,
        external_accounts: [],
        saml_accounts: [],
        enterprise_accounts: [],
        last_sign_in_at: None,
        banned: false,
        locked: false,
        deprovisioned: false,
        lockout_expires_in_seconds: None,
        verification_attempts_remaining: Some(100),
        created_at: times.created_at,
        updated_at: times.updated_at,
        delete_self_enabled: true,
        create_organization_enabled: true,
        create_organizations_limit: None,
        last_active_at: None,
        legal_accepted_at: None,
    }
}

/// `OrganizationInvitation`; with `public_organization_data` only in the instance's listing
/// (`OrganizationInvitationWithPublicOrganizationData`): the organization's own answers do not
/// allow it.
#[derive(Serialize)]
pub(super) struct InvitationOut<'a> {
    object: &'static str,
    id: &'a str,
    email_address: &'a str,
    role: &'a str,
    role_name: RoleName<'a>,
    organization_id: &'a str,
    inviter_id: Option<&'a str>,
    public_inviter_data: Option<&'a str>,
    status: &'a str,
    public_metadata: &'a Map<String, Value>,
    private_metadata: &'a Map<String, Value>,
    url: Option<&'a str>,
    expires_at: i64,
    created_at: i64,
    updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_organization_data: Option<PublicOrganizationDataOut<'a>>,
}

#[derive(Serialize)]
pub(super) struct PublicOrganizationDataOut<'a> {
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    image_url: ImageUrl<'a>,
    has_image: bool,
}

/// Clerk's default: an invitation expires after 30 days.
const INVITATION_DAYS: i64 = 30;

pub(super) fn invitation_out<'a>(
    state: &'a SimState,
    invitation: &'a SimInvitation,
    with_organization: bool,
) -> InvitationOut<'a> {
    let days = invitation.expires_in_days.unwrap_or(INVITATION_DAYS);
    let public_organization_data = with_organization
        .then(|| state.organization(&invitation.organization_id))
        .flatten()
        .map(|o| PublicOrganizationDataOut {
            id: &o.id,
            name: &o.name,
            slug: &o.slug,
            image_url: ImageUrl(&o.id),
            has_image: false,
        });
    InvitationOut {
        object: "organization_invitation",
        id: &invitation.id,
        email_address: &invitation.email_address,
        role: &invitation.role,
        role_name: RoleName(&invitation.role),
        organization_id: &invitation.organization_id,
        inviter_id: None,
        public_inviter_data: None,
        status: &invitation.status,
        public_metadata: &invitation.public_metadata,
        private_metadata: &invitation.private_metadata,
        url: None,
        expires_at: invitation.created_at + days * 86_400_000,
        created_at: invitation.created_at,
        updated_at: state.updated_at(&invitation.id, invitation.created_at),
        public_organization_data,
    }
}

/// `Role` (the instance's organization roles).
#[derive(Serialize)]
pub(super) struct RoleOut<'a> {
    object: &'static str,
    id: RoleId<'a>,
    name: RoleLabel<'a>,
    key: &'a str,
    description: Option<&'a str>,
    is_creator_eligible: bool,
    permissions: Vec<super::permissions::PermissionOut<'a>>,
    created_at: i64,
    updated_at: i64,
}

/// `RoleSetItem`: a role in a role set.
#[derive(Serialize)]
pub(super) struct RoleSetItemOut<'a> {
    object: &'static str,
    id: RoleId<'a>,
    name: RoleLabel<'a>,
    key: &'a str,
    description: Option<&'a str>,
    /// How many members of the set's organizations hold it (in a role set's `roles`).
    #[serde(skip_serializing_if = "Option::is_none")]
    members_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_members: Option<bool>,
    created_at: i64,
    updated_at: i64,
}

/// A role's ID, made from its key.
pub(super) struct RoleId<'a>(pub(super) &'a str);

impl Serialize for RoleId<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("role_{}", self.0.replace(':', "_")))
    }
}

/// A role's name: the one it was given, or else made from its key.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum RoleLabel<'a> {
    Given(&'a str),
    FromKey(RoleName<'a>),
}

fn role_label<'a>(state: &'a SimState, key: &'a str) -> RoleLabel<'a> {
    match state.role_fields.get(key).and_then(|f| f.name.as_deref()) {
        Some(name) => RoleLabel::Given(name),
        None => RoleLabel::FromKey(RoleName(key)),
    }
}

pub(super) fn role_out<'a>(state: &'a SimState, key: &'a str) -> RoleOut<'a> {
    let times = state.times_of(key);
    let fields = state.role_fields.get(key);
    RoleOut {
        object: "role",
        id: RoleId(key),
        name: role_label(state, key),
        key,
        description: fields.and_then(|f| f.description.as_deref()),
        is_creator_eligible: key == "org:admin",
        permissions: fields
            .iter()
            .flat_map(|f| &f.permissions)
            .filter_map(|p| super::permissions::permission_out(state, p))
            .collect(),
        created_at: times.created_at,
        updated_at: times.updated_at,
    }
}

pub(super) fn role_set_item_out<'a>(
    state: &'a SimState,
    key: &'a str,
    members_count: Option<u64>,
) -> RoleSetItemOut<'a> {
    let times = state.times_of(key);
    RoleSetItemOut {
        object: "role_set_item",
        id: RoleId(key),
        name: role_label(state, key),
        key,
        description: state
            .role_fields
            .get(key)
            .and_then(|f| f.description.as_deref()),
        members_count,
        has_members: members_count.map(|count| count > 0),
        created_at: times.created_at,
        updated_at: times.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(value: impl Serialize) -> String {
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn names_come_from_the_email_address_as_people_write_them() {
        let (first, last) = names(Some("ada.lovelace@acme.test"));
        assert_eq!(
            (shown(first), shown(last)),
            ("\"Ada\"".into(), "\"Lovelace\"".into())
        );
        let (first, last) = names(Some("chloe@acme.test"));
        assert_eq!(
            (shown(first), shown(last)),
            ("\"Chloe\"".into(), "null".into())
        );
        let (first, last) = names(None);
        assert_eq!((shown(first), shown(last)), ("null".into(), "null".into()));
    }

    #[test]
    fn role_names_read_as_words() {
        assert_eq!(
            shown(RoleName("org:billing_manager")),
            "\"Billing manager\""
        );
        assert_eq!(shown(RoleName("org:admin")), "\"Admin\"");
    }
}
