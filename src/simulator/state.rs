//! The simulated instance: organizations, users, memberships, roles, and the lookups over them.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// An organization in the simulated instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimOrganization {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// The role set the organization uses; `None`: the instance's organization roles.
    #[serde(default)]
    pub role_set_key: Option<String>,
    /// The most memberships (plus pending invitations) the organization may have; over it,
    /// invitations answer 403 `organization_membership_quota_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed_memberships: Option<usize>,
    /// Whether an admin may delete the organization; `None`: Clerk's default, `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_delete_enabled: Option<bool>,
    /// The organization's own metadata.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub public_metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub private_metadata: Map<String, Value>,
}

/// A domain of an organization in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimDomain {
    pub id: String,
    pub organization_id: String,
    /// Lower-cased.
    pub name: String,
    /// `manual_invitation`, `automatic_invitation`, `automatic_suggestion` or `enterprise_sso`.
    pub enrollment_mode: String,
    #[serde(default = "verified")]
    pub verified: bool,
    #[serde(default)]
    pub created_at: i64,
}

fn verified() -> bool {
    true
}

/// An organization invitation in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimInvitation {
    pub id: String,
    pub organization_id: String,
    pub email_address: String,
    pub role: String,
    #[serde(default)]
    pub public_metadata: Map<String, Value>,
    #[serde(default)]
    pub private_metadata: Map<String, Value>,
    /// `pending`, `accepted` or `revoked`.
    pub status: String,
    #[serde(default)]
    pub created_at: i64,
    /// As the request gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<i64>,
}

/// A role set: the roles organizations with this key allow, and the roles new members and
/// organization creators get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimRoleSet {
    pub key: String,
    pub roles: Vec<String>,
    /// Its name; `None`: its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The role of new members; `None`: `org:member` when the set has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// The role of an organization's creator; `None`: `org:admin` when the set has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_role: Option<String>,
    /// The role set new organizations get (at most one per instance).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initial: bool,
}

impl SimRoleSet {
    /// The role of new members, if the set has one.
    pub fn default_role(&self) -> Option<&str> {
        self.default_role.as_deref().or_else(|| {
            self.roles
                .iter()
                .find(|r| *r == "org:member")
                .map(|r| r.as_str())
        })
    }

    /// The role of an organization's creator, if the set has one.
    pub fn creator_role(&self) -> Option<&str> {
        self.creator_role.as_deref().or_else(|| {
            self.roles
                .iter()
                .find(|r| *r == "org:admin")
                .map(|r| r.as_str())
        })
    }
}

/// A custom organization permission (the system ones, `org:sys_…`, always exist).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimPermission {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// What a role has besides its key: a name (`None`: made from the key), a description and
/// its permissions (keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimRoleFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

/// A user in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimUser {
    pub id: String,
    #[serde(default)]
    pub emails: Vec<String>,
}

/// A membership in the simulated instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMembership {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: String,
    #[serde(default)]
    pub public_metadata: Map<String, Value>,
    #[serde(default)]
    pub private_metadata: Map<String, Value>,
    #[serde(default)]
    pub created_at: i64,
}

/// The whole simulated instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    #[serde(default)]
    pub organizations: Vec<SimOrganization>,
    #[serde(default)]
    pub users: Vec<SimUser>,
    #[serde(default)]
    pub memberships: Vec<SimMembership>,
    /// The instance's organization roles; empty means Clerk's defaults, `org:admin` and
    /// `org:member`.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub role_sets: Vec<SimRoleSet>,
    /// The instance's custom organization permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<SimPermission>,
    /// The names, descriptions and permissions of the roles that have them, by key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub role_fields: std::collections::BTreeMap<String, SimRoleFields>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invitations: Vec<SimInvitation>,
    /// The organizations' domains (one organization holds a name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<SimDomain>,
    /// When organizations, users, roles (by key) and role sets (by key) were created, and when
    /// anything last changed, by ID. One missing here was created at [`SEEDED_AT`] (a
    /// membership or invitation: at its `created_at`) and has not changed since; the simulator
    /// adds the people it creates and moves `updated_at` on every change.
    #[serde(
        default,
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "sorted"
    )]
    pub times: HashMap<String, Times>,
    /// Lookups by organization ID or slug and by user ID, built on first use. Whoever changes
    /// `organizations` or `users` of a live simulator calls [`SimState::reindex`].
    #[serde(skip)]
    #[doc(hidden)]
    pub index: IndexCache,
}

/// When the organizations, users and roles of a state file were created, unless its `times`
/// say otherwise: 2025-01-01T00:00:00Z, in Unix milliseconds.
pub const SEEDED_AT: i64 = 1_735_689_600_000;

/// When an object was created and when it last changed (Unix milliseconds), as Clerk stamps
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    pub created_at: i64,
    pub updated_at: i64,
}

/// Writes the times in key order, so that a saved state reads the same run after run.
fn sorted<S: Serializer>(times: &HashMap<String, Times>, serializer: S) -> Result<S::Ok, S::Error> {
    let ordered: std::collections::BTreeMap<_, _> = times.iter().collect();
    ordered.serialize(serializer)
}

/// Positions of organizations (by ID and by slug) and users (by ID).
#[derive(Debug, Default)]
struct Index {
    organizations: std::collections::HashMap<String, usize>,
    users: std::collections::HashMap<String, usize>,
}

/// The lookups' cache, and the nested objects written once for the answers that repeat them;
/// opaque.
#[derive(Debug, Default)]
pub struct IndexCache {
    index: std::sync::OnceLock<Index>,
    pub(super) fragments: std::sync::OnceLock<Fragments>,
}

/// The nested objects every membership of an organization or of a person repeats, written
/// once (by position in `organizations` and `users`; `objects` writes them): a page of 500
/// memberships copies them instead of writing two dozen fields each. Forgotten when
/// organizations, users or their times change.
#[derive(Debug)]
pub(super) struct Fragments {
    pub(super) organizations: Vec<Box<serde_json::value::RawValue>>,
    pub(super) people: Vec<Box<serde_json::value::RawValue>>,
}

impl Clone for IndexCache {
    fn clone(&self) -> IndexCache {
        IndexCache::default()
    }
}

impl PartialEq for IndexCache {
    fn eq(&self, _: &IndexCache) -> bool {
        true
    }
}

impl SimState {
    /// The memberships of one organization as (user ID, role), sorted.
    pub fn roles_of(&self, organization_id: &str) -> Vec<(String, String)> {
        let mut roles: Vec<_> = self
            .memberships
            .iter()
            .filter(|m| m.organization_id == organization_id)
            .map(|m| (m.user_id.clone(), m.role.clone()))
            .collect();
        roles.sort();
        roles
    }

    /// The roles an organization allows.
    pub fn allowed_roles(&self, organization: &SimOrganization) -> Vec<String> {
        if let Some(key) = &organization.role_set_key
            && let Some(set) = self.role_sets.iter().find(|s| &s.key == key)
        {
            return set.roles.clone();
        }
        self.instance_roles()
    }

    pub(super) fn instance_roles(&self) -> Vec<String> {
        if self.roles.is_empty() {
            vec!["org:admin".into(), "org:member".into()]
        } else {
            self.roles.clone()
        }
    }

    /// An empty instance whose organizations allow these roles.
    pub fn with_roles(roles: &[&str]) -> SimState {
        SimState {
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            ..SimState::default()
        }
    }

    /// Forgets the lookups (after `organizations` or `users` changed).
    pub fn reindex(&mut self) {
        self.index = IndexCache::default();
    }

    /// Forgets the written nested objects (after an organization's or person's times changed).
    fn forget_fragments(&mut self) {
        self.index.fragments = std::sync::OnceLock::new();
    }

    fn index(&self) -> &Index {
        self.index.index.get_or_init(|| {
            let mut index = Index::default();
            for (position, organization) in self.organizations.iter().enumerate() {
                index
                    .organizations
                    .entry(organization.slug.clone())
                    .or_insert(position);
            }
            // IDs win over slugs.
            for (position, organization) in self.organizations.iter().enumerate() {
                index
                    .organizations
                    .insert(organization.id.clone(), position);
            }
            for (position, user) in self.users.iter().enumerate() {
                index.users.insert(user.id.clone(), position);
            }
            index
        })
    }

    pub(super) fn organization(&self, id_or_slug: &str) -> Option<&SimOrganization> {
        self.organization_at(id_or_slug)
            .map(|(_, organization)| organization)
    }

    /// An organization and its position in `organizations`.
    pub(super) fn organization_at(&self, id_or_slug: &str) -> Option<(usize, &SimOrganization)> {
        let position = *self.index().organizations.get(id_or_slug)?;
        Some((position, self.organizations.get(position)?))
    }

    pub(super) fn user(&self, id: &str) -> Option<&SimUser> {
        self.user_at(id).map(|(_, user)| user)
    }

    /// A user and their position in `users`.
    pub(super) fn user_at(&self, id: &str) -> Option<(usize, &SimUser)> {
        let position = *self.index().users.get(id)?;
        Some((position, self.users.get(position)?))
    }

    /// The user with this email address (compared case-insensitively).
    pub(super) fn user_by_email(&self, email: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|user| user.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
    }

    /// Notes that an object (a user who signs up, …) was created at `now`.
    pub(super) fn created(&mut self, id: &str, now: i64) {
        let times = Times {
            created_at: now,
            updated_at: now,
        };
        self.times.insert(id.to_owned(), times);
        self.forget_fragments();
    }

    /// The times of an organization, user, role or role set: those of [`SimState::times`], or
    /// else [`SEEDED_AT`].
    pub(super) fn times_of(&self, id: &str) -> Times {
        let stamped = (!self.times.is_empty())
            .then(|| self.times.get(id))
            .flatten();
        stamped.copied().unwrap_or(Times {
            created_at: SEEDED_AT,
            updated_at: SEEDED_AT,
        })
    }

    /// When a membership or invitation created at `created_at` last changed.
    pub(super) fn updated_at(&self, id: &str, created_at: i64) -> i64 {
        if self.times.is_empty() {
            return created_at;
        }
        self.times
            .get(id)
            .map_or(created_at, |times| times.updated_at)
    }

    /// Notes that an object created at `created_at` changed at `now`; its `updated_at` moves
    /// forward even when two changes fall in the same millisecond.
    pub(super) fn touch(&mut self, id: &str, created_at: i64, now: i64) {
        let times = self.times.entry(id.to_owned()).or_insert(Times {
            created_at,
            updated_at: created_at,
        });
        times.updated_at = now.max(times.updated_at + 1);
        let index = self.index();
        if index.organizations.contains_key(id) || index.users.contains_key(id) {
            self.forget_fragments();
        }
    }

    /// The pending invitations of one organization, as (email, role), sorted.
    pub fn pending_invitations(&self, organization_id: &str) -> Vec<(String, String)> {
        let mut pending: Vec<_> = self
            .invitations
            .iter()
            .filter(|i| i.organization_id == organization_id && i.status == "pending")
            .map(|i| (i.email_address.clone(), i.role.clone()))
            .collect();
        pending.sort();
        pending
    }
}

/// One request the simulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The endpoint that answered, as [`Simulator::endpoints`](super::Simulator::endpoints)
    /// names it; `None`: no endpoint (404 for a path the simulator does not serve).
    pub route: Option<String>,
    pub status: u16,
    /// When it arrived, since the simulator started.
    pub at: Duration,
}

impl LoggedRequest {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// Builds a state quickly: `organizations` × `members_per_org` with users `user_{n}`.
pub fn generated_state(organizations: usize, members_per_org: usize) -> SimState {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:billing"]);
    let mut created = 0i64;
    let users = members_per_org.max(1) * 2;
    for user in 0..users {
        state.users.push(SimUser {
            id: format!("user_{user}"),
            emails: vec![format!("u{user}@example.com")],
        });
    }
    for org in 0..organizations {
        state.organizations.push(SimOrganization {
            id: format!("org_{org}"),
            slug: format!("team-{org}"),
            name: format!("Team {org}"),
            role_set_key: None,
            max_allowed_memberships: None,
            ..SimOrganization::default()
        });
        for member in 0..members_per_org {
            created += 1;
            state.memberships.push(SimMembership {
                id: format!("orgmem_{org}x{member}"),
                organization_id: format!("org_{org}"),
                user_id: format!("user_{member}"),
                role: if member == 0 {
                    "org:admin".into()
                } else {
                    "org:member".into()
                },
                public_metadata: Map::new(),
                private_metadata: Map::new(),
                created_at: created,
            });
        }
    }
    state
}

/// Now, in Unix milliseconds, as Clerk stamps objects.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or_default()
}
