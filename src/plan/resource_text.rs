//! One line of the text and Markdown plans for a change that is not a membership's:
//! `+ permission org:invoices:read "Read invoices"`, `~ role org:billing permissions +A -B`,
//! `~ role_set role_set:standard roles +org:billing`, `- role org:old "Old"`. Every kind is
//! written from its `before` and `after` the same way (a list field as what it gains and
//! loses, another field as `old → new`); a kind that reads better otherwise has its own arm.

use serde_json::{Map, Value};

use super::{RejectedResource, ResourceAction, ResourceChange};

/// The line of one change.
pub(super) fn resource_line(change: &ResourceChange) -> String {
    match change.resource {
        super::Resource::Domain => return super::organization_output::domain_line(change),
        super::Resource::Organization => return organization_line(change),
        _ => {}
    }
    let subject = format!("{} {}", change.resource, change.key);
    match change.action {
        ResourceAction::Create => created(&subject, change.after.as_ref()),
        ResourceAction::Update | ResourceAction::UpdateMetadata => {
            format!("~ {subject} {}", fields_changed(change))
        }
        ResourceAction::Delete => match name(change.before.as_ref()) {
            Some(name) => format!("- {subject} {name}"),
            None => format!("- {subject}"),
        },
        ResourceAction::RemoveRole => removed_role(&subject, change),
    }
}

/// An organization's own change, under its heading: `+ organization acme "Acme Corp"
/// max_allowed_memberships 100`, `~ name "Acme" → "Acme Corp", max_allowed_memberships 0 →
/// 100`, `~ metadata public_metadata {…} → {…}`. (An organization is never deleted.)
fn organization_line(change: &ResourceChange) -> String {
    match change.action {
        ResourceAction::Create => {
            let mut after = change.after.clone().unwrap_or_default();
            // The slug is the key, already on the line.
            after.remove("slug");
            created(&format!("organization {}", change.key), Some(&after))
        }
        ResourceAction::UpdateMetadata => format!("~ metadata {}", fields_changed(change)),
        _ => format!("~ {}", fields_changed(change)),
    }
}

/// `! role org:old: not deleted: …`: an object the plan leaves alone, and why.
pub(super) fn rejected_line(rejected: &RejectedResource) -> String {
    format!(
        "! {} {}: {}",
        rejected.resource, rejected.key, rejected.reason
    )
}

/// `"Name"` of the fields, when they have a name.
fn name(fields: Option<&Map<String, Value>>) -> Option<String> {
    fields.and_then(|f| f.get("name")).map(quoted)
}

/// `+ role org:billing "Billing" permissions [org:a:read, org:a:manage]`.
fn created(subject: &str, after: Option<&Map<String, Value>>) -> String {
    let mut line = format!("+ {subject}");
    if let Some(name) = name(after) {
        line.push(' ');
        line.push_str(&name);
    }
    for (field, value) in after.into_iter().flatten() {
        let empty = value.as_array().is_some_and(Vec::is_empty);
        if field == "name" || value.is_null() || empty {
            continue;
        }
        line.push_str(&format!(" {field} {}", shown(value)));
    }
    line
}

/// `permissions +org:a:manage -org:a:read, name "Old" → "New"`.
fn fields_changed(change: &ResourceChange) -> String {
    let empty = Map::new();
    let before = change.before.as_ref().unwrap_or(&empty);
    let after = change.after.as_ref().unwrap_or(&empty);
    let mut parts = Vec::new();
    for (field, new) in after {
        let old = before.get(field).unwrap_or(&Value::Null);
        match (old, new) {
            (Value::Array(_) | Value::Null, Value::Array(new)) => {
                let old = old.as_array().map(Vec::as_slice).unwrap_or_default();
                let gained = new.iter().filter(|v| !old.contains(v)).map(bare);
                let lost = old.iter().filter(|v| !new.contains(v)).map(bare);
                let mut list: Vec<String> = gained.map(|v| format!("+{v}")).collect();
                list.extend(lost.map(|v| format!("-{v}")));
                parts.push(format!("{field} {}", list.join(" ")));
            }
            _ => parts.push(format!("{field} {} → {}", quoted(old), quoted(new))),
        }
    }
    parts.join(", ")
}

/// `~ role_set role_set:standard roles -org:viewer (holders move to org:member)`.
fn removed_role(subject: &str, change: &ResourceChange) -> String {
    let role = change
        .before_field("role")
        .map(bare)
        .unwrap_or_else(|| "?".to_owned());
    match change.after_field("reassign") {
        Some(target) => format!(
            "~ {subject} roles -{role} (anyone holding it moves to {})",
            bare(target)
        ),
        None => format!("~ {subject} roles -{role} (no `reassign` for it)"),
    }
}

/// A value as the plan shows it in a list or after a field name: strings bare when they hold
/// no space, lists in brackets.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) if text.contains(char::is_whitespace) || text.is_empty() => {
            quoted(value)
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(bare).collect();
            format!("[{}]", items.join(", "))
        }
        other => bare(other),
    }
}

/// A string without quotes; anything else as JSON.
fn bare(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A value as JSON (a string in quotes).
fn quoted(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Resource;
    use serde_json::json;

    fn change(
        resource: Resource,
        action: ResourceAction,
        before: Value,
        after: Value,
    ) -> ResourceChange {
        ResourceChange {
            before: before.as_object().cloned(),
            after: after.as_object().cloned(),
            ..ResourceChange::new(resource, action, "org:billing")
        }
    }

    #[test]
    fn each_action_reads_as_a_line_of_the_plan() {
        let line = resource_line;
        let created = change(
            Resource::Role,
            ResourceAction::Create,
            Value::Null,
            json!({"name": "Billing", "permissions": ["org:invoices:read"]}),
        );
        assert_eq!(
            line(&created),
            "+ role org:billing \"Billing\" permissions [org:invoices:read]"
        );
        let updated = change(
            Resource::Role,
            ResourceAction::Update,
            json!({"name": "Billing", "permissions": ["org:a:read", "org:b:read"]}),
            json!({"name": "Billing team", "permissions": ["org:a:read", "org:c:read"]}),
        );
        assert_eq!(
            line(&updated),
            "~ role org:billing name \"Billing\" → \"Billing team\", permissions +org:c:read -org:b:read"
        );
        let deleted = change(
            Resource::Role,
            ResourceAction::Delete,
            json!({"name": "Billing"}),
            Value::Null,
        );
        assert_eq!(line(&deleted), "- role org:billing \"Billing\"");
        let mut removed = change(
            Resource::RoleSet,
            ResourceAction::RemoveRole,
            json!({"role": "org:viewer"}),
            json!({"reassign": "org:member"}),
        );
        removed.key = "role_set:standard".into();
        assert_eq!(
            line(&removed),
            "~ role_set role_set:standard roles -org:viewer (anyone holding it moves to org:member)"
        );
    }
}
