//! Running a change of the instance's permissions, roles and role sets. Permissions are named
//! by key in the plan; the IDs Clerk wants for a role's permissions are looked up when the role
//! is written (a permission the same run created has one only then). A delete that finds the
//! object gone is done; a create that finds it there is reported as failed with Clerk's answer
//! (the next plan updates it).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::Outcome;
use super::outcome::Done;
use crate::clerk::{ClerkError, Client, PAGE_LIMIT};
use crate::plan::{Resource, ResourceAction, ResourceChange};

/// Sends the requests of one permission, role or role set change.
pub(super) async fn run(client: &Client, change: &ResourceChange) -> Done {
    let result = match (change.resource, change.action) {
        (Resource::Permission, ResourceAction::Create) => create_permission(client, change).await,
        (Resource::Role, ResourceAction::Create) => create_role(client, change).await,
        (Resource::RoleSet, ResourceAction::Create) => create_role_set(client, change).await,
        (Resource::Permission, ResourceAction::Update) => {
            let id = change.id.as_deref().unwrap_or_default();
            let after = Value::Object(change.after.clone().unwrap_or_default());
            client
                .update_organization_permission(id, after)
                .await
                .map(drop)
        }
        (Resource::Role, ResourceAction::Update) => update_role(client, change).await,
        (Resource::RoleSet, ResourceAction::Update) => update_role_set(client, change).await,
        (Resource::RoleSet, ResourceAction::RemoveRole) => {
            let role = field(change.before.as_ref(), "role");
            let to = field(change.after.as_ref(), "reassign");
            client
                .replace_role_set_role(&change.key, &role, &to)
                .await
                .map(drop)
        }
        (Resource::Permission | Resource::Role, ResourceAction::Delete) => {
            return delete(client, change).await;
        }
        _ => {
            return Outcome::Skipped {
                reason: format!(
                    "not sent: membersync does not {} a {}",
                    change.action.name(),
                    change.resource
                ),
            }
            .into();
        }
    };
    match result {
        Ok(()) => Outcome::applied().into(),
        Err(error) => Outcome::failed(error).into(),
    }
}

/// A string field of `before` or `after`.
fn field(fields: Option<&Map<String, Value>>, name: &str) -> String {
    fields
        .and_then(|f| f.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn delete(client: &Client, change: &ResourceChange) -> Done {
    let id = change.id.as_deref().unwrap_or_default();
    let result = match change.resource {
        Resource::Permission => client.delete_organization_permission(id).await,
        _ => client.delete_organization_role(id).await,
    };
    match result {
        Ok(_) => Outcome::applied().into(),
        Err(error) if error.status() == Some(404) => {
            Outcome::applied_meeting_another_writer("already gone").into()
        }
        Err(error) => Outcome::failed(error).into(),
    }
}

async fn create_permission(client: &Client, change: &ResourceChange) -> Result<(), ClerkError> {
    let after = change.after.as_ref();
    let description = after
        .and_then(|a| a.get("description"))
        .and_then(Value::as_str);
    client
        .create_organization_permission(&change.key, &field(after, "name"), description)
        .await
        .map(drop)
}

/// The IDs of every permission, by key, as the instance has them now.
async fn permission_ids(client: &Client) -> Result<HashMap<String, String>, ClerkError> {
    let mut ids = HashMap::new();
    loop {
        let page = client
            .list_organization_permissions(ids.len() as u64, PAGE_LIMIT)
            .await?;
        let count = page.data.len();
        ids.extend(page.data.into_iter().map(|p| (p.key, p.id)));
        if count == 0 || ids.len() as u64 >= page.total_count {
            return Ok(ids);
        }
    }
}

/// `after` with its `permissions` (keys) turned into the IDs Clerk wants.
async fn with_permission_ids(
    client: &Client,
    after: &Map<String, Value>,
) -> Result<Map<String, Value>, ClerkError> {
    let mut body = after.clone();
    if let Some(Value::Array(keys)) = after.get("permissions") {
        let ids = permission_ids(client).await?;
        let named: Vec<Value> = keys
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|key| ids.get(key))
            .map(|id| json!(id))
            .collect();
        body.insert("permissions".into(), Value::Array(named));
    }
    Ok(body)
}

async fn create_role(client: &Client, change: &ResourceChange) -> Result<(), ClerkError> {
    let mut body = with_permission_ids(client, &change.after.clone().unwrap_or_default()).await?;
    body.insert("key".into(), json!(change.key));
    client
        .create_organization_role(Value::Object(body))
        .await
        .map(drop)
}

async fn update_role(client: &Client, change: &ResourceChange) -> Result<(), ClerkError> {
    let id = change.id.as_deref().unwrap_or_default();
    let body = with_permission_ids(client, &change.after.clone().unwrap_or_default()).await?;
    client
        .update_organization_role(id, Value::Object(body))
        .await
        .map(drop)
}

/// A role set's fields as Clerk's bodies name them.
fn role_set_body(after: &Map<String, Value>) -> Map<String, Value> {
    let mut body = Map::new();
    for (field, value) in after {
        match field.as_str() {
            "default_role" => body.insert("default_role_key".into(), value.clone()),
            "creator_role" => body.insert("creator_role_key".into(), value.clone()),
            "initial" if value == &json!(true) => body.insert("type".into(), json!("initial")),
            "name" | "description" => body.insert(field.clone(), value.clone()),
            _ => None,
        };
    }
    body
}

async fn create_role_set(client: &Client, change: &ResourceChange) -> Result<(), ClerkError> {
    let after = change.after.clone().unwrap_or_default();
    let mut body = role_set_body(&after);
    body.insert("key".into(), json!(change.key));
    body.insert(
        "roles".into(),
        after.get("roles").cloned().unwrap_or(json!([])),
    );
    if !body.contains_key("type") {
        body.insert("type".into(), json!("custom"));
    }
    client.create_role_set(Value::Object(body)).await.map(drop)
}

/// Roles added first (so that a new default or creator role is in the set), then the other
/// fields.
async fn update_role_set(client: &Client, change: &ResourceChange) -> Result<(), ClerkError> {
    let after = change.after.clone().unwrap_or_default();
    let before_roles = change
        .before
        .as_ref()
        .and_then(|b| b.get("roles"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(roles)) = after.get("roles") {
        let added: Vec<&Value> = roles.iter().filter(|r| !before_roles.contains(r)).collect();
        if !added.is_empty() {
            client
                .add_role_set_roles(&change.key, json!({ "role_keys": added }))
                .await?;
        }
    }
    let body = role_set_body(&after);
    if !body.is_empty() {
        client
            .update_role_set(&change.key, Value::Object(body))
            .await?;
    }
    Ok(())
}
