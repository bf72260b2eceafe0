//! The fake directories' contents as a JSON file, for `membersync simulate --directories FILE`
//! (see docs/simulator.md, "Rehearsing against the simulator"):
//!
//! ```json
//! {"users": [{"id": "00usam", "email": "sam@vendor.test"},
//!            {"id": "00uvic", "email": "vic@vendor.test", "status": "suspended"}],
//!  "groups": [{"id": "00gsupport", "name": "Support", "email": "support@vendor.test",
//!              "users": ["00usam", "00uvic"], "groups": []}]}
//! ```
//!
//! Optional: `google_admins` (the subjects a service account may act as), `okta_token`,
//! `entra_tenant_id`, `entra_client_id`, `entra_client_secret`; the defaults are the fake
//! credentials of [`DirectoryState::default`].

use std::collections::HashSet;

use serde::Deserialize;

use super::{DirectoryGroup, DirectoryState, DirectoryUser, UserStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    groups: Vec<Group>,
    google_admins: Option<Vec<String>>,
    okta_token: Option<String>,
    entra_tenant_id: Option<String>,
    entra_client_id: Option<String>,
    entra_client_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Status {
    #[default]
    Active,
    LockedOut,
    Staged,
    Suspended,
    Deprovisioned,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl From<Status> for UserStatus {
    fn from(status: Status) -> UserStatus {
        match status {
            Status::Active => UserStatus::Active,
            Status::LockedOut => UserStatus::LockedOut,
            Status::Staged => UserStatus::Staged,
            Status::Suspended => UserStatus::Suspended,
            Status::Deprovisioned => UserStatus::Deprovisioned,
        }
    }
}

impl DirectoryState {
    /// The state a directories file describes; a mistake is named with its line and column,
    /// and a group naming a user or group the file does not have is refused.
    pub fn from_json(text: &str) -> Result<DirectoryState, String> {
        let file: File = serde_json::from_str(text).map_err(|error| {
            format!(
                "line {} column {}: not a directories file: {error}",
                error.line(),
                error.column()
            )
        })?;
        let users: HashSet<&str> = file.users.iter().map(|user| user.id.as_str()).collect();
        let groups: HashSet<&str> = file.groups.iter().map(|group| group.id.as_str()).collect();
        for group in &file.groups {
            if let Some(user) = group.users.iter().find(|id| !users.contains(id.as_str())) {
                return Err(format!("group {} names the unknown user {user}", group.id));
            }
            if let Some(nested) = group.groups.iter().find(|id| !groups.contains(id.as_str())) {
                return Err(format!(
                    "group {} names the unknown group {nested}",
                    group.id
                ));
            }
        }
        let defaults = DirectoryState::default();
        let users = file.users.into_iter().map(|user| DirectoryUser {
            id: user.id,
            email: user.email,
            status: user.status.into(),
        });
        let groups = file.groups.into_iter().map(|group| DirectoryGroup {
            id: group.id,
            name: group.name,
            email: group.email,
            users: group.users,
            groups: group.groups,
        });
        let state = DirectoryState {
            users: users.collect(),
            groups: groups.collect(),
            google_admins: file.google_admins.unwrap_or(defaults.google_admins),
            okta_token: file.okta_token.unwrap_or(defaults.okta_token),
            entra_tenant_id: file.entra_tenant_id.unwrap_or(defaults.entra_tenant_id),
            entra_client_id: file.entra_client_id.unwrap_or(defaults.entra_client_id),
            entra_client_secret: file
                .entra_client_secret
                .unwrap_or(defaults.entra_client_secret),
            ..defaults
        };
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_users_with_their_status_and_groups() {
        let text = r#"{"users": [{"id": "u1", "email": "a@x.test"},
            {"id": "u2", "email": "b@x.test", "status": "suspended"}],
            "groups": [{"id": "g1", "name": "Support", "users": ["u1", "u2"]}],
            "okta_token": "00other"}"#;
        let state = DirectoryState::from_json(text).unwrap();
        assert_eq!(state.users[1].status, UserStatus::Suspended);
        assert_eq!(state.users[0].status, UserStatus::Active);
        assert_eq!(state.groups[0].users, ["u1", "u2"]);
        assert_eq!(state.okta_token, "00other");
        assert_eq!(state.google_admins, DirectoryState::default().google_admins);
    }

    #[test]
    fn a_mistake_is_named_with_its_line_or_the_unknown_member() {
        let error = DirectoryState::from_json("{\"users\": [{\"id\": 1}]}").unwrap_err();
        assert!(error.starts_with("line 1 column"), "{error}");
        let error = DirectoryState::from_json(r#"{"groups": [{"id": "g", "users": ["nobody"]}]}"#)
            .unwrap_err();
        assert_eq!(error, "group g names the unknown user nobody");
    }
}
