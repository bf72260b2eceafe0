//! What the plan shows and keeps of an organization's own changes (docs/organizations.md: "Onboarding a
//! customer organization in one pull request"): the text line of a domain change and its mark
//! when it lets everyone at the domain in, and the state of each organization and domain a
//! saved plan checks again before it applies. Pure.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::organizations::{ObservedDomain, ObservedOrganization};
use super::private::{HIDDEN, Private};
use super::saved::{ResourceRef, ResourceStates, digest};
use super::{Resource, ResourceAction, ResourceChange};
use crate::desired::EnrollmentMode;

/// The state of each organization and domain the plan changes, as a saved plan keeps it: of
/// an organization, the fields its changes touch (so a change elsewhere does not block it);
/// of a domain, its enrollment mode; `absent` for what does not exist (an organization the plan
/// creates while its slug is free, a domain it adds). `organizations` and `domains` are by
/// organization ID.
pub fn organization_states(
    plan: &super::Plan,
    organizations: &HashMap<String, ObservedOrganization>,
    domains: &HashMap<String, Vec<ObservedDomain>>,
) -> ResourceStates {
    let mut touched: HashMap<ResourceRef, Vec<String>> = HashMap::new();
    for change in plan.resource_changes() {
        if !matches!(change.resource, Resource::Organization | Resource::Domain) {
            continue;
        }
        let object = ResourceRef {
            resource: change.resource,
            organization_id: change.organization_id.clone().filter(|id| !id.is_empty()),
            key: change.key.clone(),
        };
        let fields = touched.entry(object).or_default();
        for side in [&change.before, &change.after].into_iter().flatten() {
            fields.extend(side.keys().cloned());
        }
    }
    let mut states = ResourceStates::new();
    for (object, fields) in touched {
        let id = object.organization_id.as_deref().unwrap_or_default();
        let state = match object.resource {
            Resource::Domain => domains
                .get(id)
                .and_then(|list| list.iter().find(|d| d.name == object.key))
                .map(|d| json!({"enrollment_mode": d.enrollment_mode})),
            _ => organizations
                .get(id)
                .map(|organization| organization_state(organization, &fields)),
        };
        if let Some(state) = state {
            states.insert(object, digest(&state));
        }
    }
    states
}

/// The values of these fields of an organization (the create body's `slug` names it).
fn organization_state(organization: &ObservedOrganization, fields: &[String]) -> Value {
    let value = |field: &str| match field {
        "name" => json!(organization.name),
        "slug" => json!(organization.slug),
        "max_allowed_memberships" => json!(organization.max_allowed_memberships),
        "admin_delete_enabled" => json!(organization.admin_delete_enabled),
        "role_set_key" => json!(organization.role_set_key),
        "public_metadata" => json!(organization.public_metadata),
        "private_metadata" => json!(organization.private_metadata),
        _ => Value::Null,
    };
    fields
        .iter()
        .map(|field| (field.clone(), value(field)))
        .collect::<Map<String, Value>>()
        .into()
}

/// The change as a plan shows it: with `Private::Hidden`, each value of an organization's
/// private metadata is `(private)` (its keys stay), as members' private metadata is.
pub fn shown(change: &ResourceChange, private: Private) -> Cow<'_, ResourceChange> {
    let has_private = [&change.before, &change.after]
        .into_iter()
        .flatten()
        .any(|side| side.contains_key("private_metadata"));
    if private == Private::Shown || !has_private {
        return Cow::Borrowed(change);
    }
    let mut shown = change.clone();
    for side in [&mut shown.before, &mut shown.after].into_iter().flatten() {
        if let Some(Value::Object(metadata)) = side.get_mut("private_metadata") {
            for value in metadata.values_mut() {
                *value = json!(HIDDEN);
            }
        }
    }
    Cow::Owned(shown)
}

/// The text plan's line of a domain change: `+ domain acme.com manual_invitation`,
/// `~ domain acme.io manual_invitation → automatic_suggestion`, `- domain old.com`; one that
/// lets everyone at the domain in ends with `! everyone with an @acme.io address can join`
/// (a `!` that ends the line, never the one that starts a rejected change's).
pub fn domain_line(change: &ResourceChange) -> String {
    let mode = |field: Option<&Value>| field.and_then(Value::as_str).unwrap_or_default().to_owned();
    let after = mode(change.after_field("enrollment_mode"));
    let line = match change.action {
        ResourceAction::Create => format!("+ domain {} {after}", change.key),
        ResourceAction::Delete => format!("- domain {}", change.key),
        _ => format!(
            "~ domain {} {} → {after}",
            change.key,
            mode(change.before_field("enrollment_mode"))
        ),
    };
    match everyone_note(change) {
        Some(note) => format!("{line}  ! {note}"),
        None => line,
    }
}

/// `everyone with an @acme.io address can join` for a change that lets everyone in.
pub fn everyone_note(change: &ResourceChange) -> Option<String> {
    lets_everyone_in(change).then(|| format!("everyone with an @{} address can join", change.key))
}

/// Whether a domain change lets everyone with an address at the domain in (its enrollment
/// mode after the change is automatic): the plan marks it.
pub fn lets_everyone_in(change: &ResourceChange) -> bool {
    change.resource == Resource::Domain
        && change
            .after_field("enrollment_mode")
            .and_then(Value::as_str)
            .and_then(EnrollmentMode::parse)
            .is_some_and(EnrollmentMode::lets_everyone_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain_change(
        action: ResourceAction,
        before: Option<&str>,
        after: Option<&str>,
    ) -> ResourceChange {
        let mode =
            |m: Option<&str>| m.map(|m| Map::from_iter([("enrollment_mode".to_owned(), json!(m))]));
        ResourceChange {
            before: mode(before),
            after: mode(after),
            ..ResourceChange::new(Resource::Domain, action, "acme.io")
        }
    }

    #[test]
    fn a_domain_change_that_lets_everyone_in_ends_with_a_mark() {
        let created = domain_change(ResourceAction::Create, None, Some("automatic_invitation"));
        assert_eq!(
            domain_line(&created),
            "+ domain acme.io automatic_invitation  ! everyone with an @acme.io address can join"
        );
        let manual = domain_change(
            ResourceAction::Update,
            Some("automatic_suggestion"),
            Some("manual_invitation"),
        );
        assert_eq!(
            domain_line(&manual),
            "~ domain acme.io automatic_suggestion → manual_invitation"
        );
        let deleted = domain_change(ResourceAction::Delete, Some("automatic_suggestion"), None);
        assert_eq!(domain_line(&deleted), "- domain acme.io");
    }

    #[test]
    fn an_organizations_private_metadata_values_are_hidden_unless_shown() {
        let change = ResourceChange {
            after: Some(Map::from_iter([(
                "private_metadata".to_owned(),
                json!({"crm_id": 4711}),
            )])),
            ..ResourceChange::new(Resource::Organization, ResourceAction::Create, "acme")
        };
        let hidden = shown(&change, Private::Hidden);
        assert_eq!(
            hidden.after_field("private_metadata"),
            Some(&json!({"crm_id": "(private)"}))
        );
        let visible = shown(&change, Private::Shown);
        assert_eq!(
            visible.after_field("private_metadata"),
            Some(&json!({"crm_id": 4711}))
        );
    }
}
