//! An organization's own fields and its verified domains (docs/organizations.md: "Onboarding a customer
//! organization in one pull request"): the changes that bring Clerk's organization to what the
//! file declares. Declared fields are managed, absent ones left alone; `domains`, when
//! declared, is exactly these domains. Pure: what was read comes in, changes go out.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::metadata::{apply_patch, expected, parts_patch};
use super::{Resource, ResourceAction, ResourceChange};
use crate::desired::{EnrollmentMode, MetadataMode, OrganizationFields};

/// An organization as Clerk has it, as the diff needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedOrganization {
    pub id: String,
    pub slug: Option<String>,
    pub name: String,
    /// 0: no limit.
    pub max_allowed_memberships: Option<u64>,
    pub admin_delete_enabled: Option<bool>,
    pub role_set_key: Option<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
}

/// One domain of an organization as Clerk has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDomain {
    pub id: String,
    /// Lower-cased.
    pub name: String,
    pub enrollment_mode: String,
}

/// One change to an organization itself or to one of its domains, in the order they run.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationChange {
    /// `POST /organizations` with this body: name, slug, and the declared limit, role set and
    /// metadata.
    Create {
        body: Map<String, Value>,
    },
    /// `PATCH /organizations/{id}` of the fields that differ (`after`), and what they are.
    Update {
        before: Map<String, Value>,
        after: Map<String, Value>,
    },
    /// `PATCH /organizations/{id}/metadata` with this merge patch, and the metadata parts it
    /// touches as they are.
    UpdateMetadata {
        before: Map<String, Value>,
        patch: Map<String, Value>,
    },
    CreateDomain {
        name: String,
        mode: EnrollmentMode,
    },
    UpdateDomain {
        id: String,
        name: String,
        before: String,
        after: EnrollmentMode,
    },
    DeleteDomain {
        id: String,
        name: String,
        mode: String,
    },
}

impl OrganizationChange {
    /// Whether it takes something away: the deletion limit counts it.
    pub fn takes_access(&self) -> bool {
        matches!(self, OrganizationChange::DeleteDomain { .. })
    }
}

/// The changes that bring the organization `observed` (`None`: no organization has the slug
/// `slug` yet, and the file gives a `name`) to what `fields` declares, with its metadata in
/// `mode`; `domains` are its domains today (empty for a new organization).
pub fn organization_changes(
    fields: &OrganizationFields,
    mode: MetadataMode,
    slug: &str,
    observed: Option<&ObservedOrganization>,
    domains: &[ObservedDomain],
) -> Vec<OrganizationChange> {
    let mut changes = Vec::new();
    match observed {
        None => {
            changes.push(OrganizationChange::Create {
                body: create_body(fields, slug),
            });
            // The POST does not take it; Clerk's default is `true`.
            if fields.admin_delete_enabled == Some(false) {
                changes.push(OrganizationChange::Update {
                    before: single("admin_delete_enabled", json!(true)),
                    after: single("admin_delete_enabled", json!(false)),
                });
            }
        }
        Some(observed) => {
            changes.extend(update(fields, observed));
            changes.extend(metadata(fields, mode, observed));
        }
    }
    if let Some(declared) = &fields.domains {
        changes.extend(domain_changes(declared, domains));
    }
    changes
}

fn single(field: &str, value: Value) -> Map<String, Value> {
    Map::from_iter([(field.to_owned(), value)])
}

/// The body of the one POST that creates the organization.
fn create_body(fields: &OrganizationFields, slug: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert(
        "name".into(),
        json!(fields.name.clone().unwrap_or_default()),
    );
    body.insert("slug".into(), json!(slug));
    if let Some(limit) = fields.max_allowed_memberships {
        body.insert("max_allowed_memberships".into(), json!(limit));
    }
    if let Some((key, _)) = &fields.role_set {
        body.insert("role_set_key".into(), json!(key));
    }
    for (part, declared) in [
        ("public_metadata", &fields.public_metadata),
        ("private_metadata", &fields.private_metadata),
    ] {
        if let Some(declared) = declared {
            let metadata = expected(&Map::new(), declared, true);
            body.insert(part.into(), Value::Object(metadata));
        }
    }
    body
}

/// The declared fields `PATCH /organizations/{id}` sets that differ from `observed`.
fn update(
    fields: &OrganizationFields,
    observed: &ObservedOrganization,
) -> Option<OrganizationChange> {
    let declared = [
        (
            "name",
            fields.name.as_ref().map(|n| json!(n)),
            json!(observed.name),
        ),
        (
            "max_allowed_memberships",
            fields.max_allowed_memberships.map(|l| json!(l)),
            json!(observed.max_allowed_memberships),
        ),
        (
            "admin_delete_enabled",
            fields.admin_delete_enabled.map(|e| json!(e)),
            json!(observed.admin_delete_enabled),
        ),
        (
            "role_set_key",
            fields.role_set.as_ref().map(|(key, _)| json!(key)),
            json!(observed.role_set_key),
        ),
    ];
    let (mut before, mut after) = (Map::new(), Map::new());
    for (field, wanted, have) in declared {
        if let Some(wanted) = wanted.filter(|wanted| *wanted != have) {
            before.insert(field.to_owned(), have);
            after.insert(field.to_owned(), wanted);
        }
    }
    (!after.is_empty()).then_some(OrganizationChange::Update { before, after })
}

/// The organization's metadata merge patch, exact or merged as `mode` says.
fn metadata(
    fields: &OrganizationFields,
    mode: MetadataMode,
    observed: &ObservedOrganization,
) -> Option<OrganizationChange> {
    let patch = parts_patch(
        [
            (fields.public_metadata.as_deref(), &observed.public_metadata),
            (
                fields.private_metadata.as_deref(),
                &observed.private_metadata,
            ),
        ],
        mode == MetadataMode::Exact,
    )?;
    let Value::Object(patch) = patch else {
        return None;
    };
    let before = patch
        .keys()
        .map(|part| {
            let have = match part.as_str() {
                "public_metadata" => &observed.public_metadata,
                _ => &observed.private_metadata,
            };
            (part.clone(), Value::Object(have.clone()))
        })
        .collect();
    Some(OrganizationChange::UpdateMetadata { before, patch })
}

/// Exactly the declared domains: the missing ones created, a different mode changed, the
/// others deleted; in that order, each by name.
fn domain_changes(
    declared: &[crate::desired::DesiredDomain],
    observed: &[ObservedDomain],
) -> Vec<OrganizationChange> {
    let have: HashMap<&str, &ObservedDomain> =
        observed.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for domain in declared {
        match have.get(domain.name.as_str()) {
            None => creates.push(OrganizationChange::CreateDomain {
                name: domain.name.clone(),
                mode: domain.enrollment_mode,
            }),
            Some(current) if current.enrollment_mode != domain.enrollment_mode.as_str() => {
                updates.push(OrganizationChange::UpdateDomain {
                    id: current.id.clone(),
                    name: domain.name.clone(),
                    before: current.enrollment_mode.clone(),
                    after: domain.enrollment_mode,
                });
            }
            Some(_) => {}
        }
    }
    let mut deletes: Vec<OrganizationChange> = observed
        .iter()
        .filter(|d| !declared.iter().any(|w| w.name == d.name))
        .map(|d| OrganizationChange::DeleteDomain {
            id: d.id.clone(),
            name: d.name.clone(),
            mode: d.enrollment_mode.clone(),
        })
        .collect();
    let name = |change: &OrganizationChange| match change {
        OrganizationChange::CreateDomain { name, .. }
        | OrganizationChange::UpdateDomain { name, .. }
        | OrganizationChange::DeleteDomain { name, .. } => name.clone(),
        _ => String::new(),
    };
    for group in [&mut creates, &mut updates, &mut deletes] {
        group.sort_by_key(name);
    }
    creates.into_iter().chain(updates).chain(deletes).collect()
}

/// What the plan of one organization's own changes needs besides the file's fields.
#[derive(Debug, Clone, Copy)]
pub struct OrganizationInput<'a> {
    /// Its ID; empty for an organization the plan creates.
    pub id: &'a str,
    /// What the file names it by (its slug or ID).
    pub key: &'a str,
    pub observed: Option<&'a ObservedOrganization>,
    /// Its domains today.
    pub domains: &'a [ObservedDomain],
    /// Its domains kept changing while they were read: none is deleted this run.
    pub domains_unsettled: bool,
}

/// The organization's own changes as the plan carries them (its create, update and metadata
/// change, then its domains'): `before`/`after` hold the fields that change.
pub fn resources(
    fields: &OrganizationFields,
    mode: MetadataMode,
    input: OrganizationInput<'_>,
) -> Vec<ResourceChange> {
    let changes = organization_changes(fields, mode, input.key, input.observed, input.domains);
    changes
        .into_iter()
        .filter(|change| !(input.domains_unsettled && change.takes_access()))
        .map(|change| resource_change(change, &input))
        .collect()
}

fn resource_change(change: OrganizationChange, input: &OrganizationInput<'_>) -> ResourceChange {
    use {Resource as R, ResourceAction as A};
    let organization = |action, before, after| ResourceChange {
        id: (!input.id.is_empty()).then(|| input.id.to_owned()),
        organization_id: Some(input.id.to_owned()),
        before,
        after,
        ..ResourceChange::new(R::Organization, action, input.key)
    };
    let domain = |action, name: &str, id: Option<String>, before, after| ResourceChange {
        id,
        organization_id: Some(input.id.to_owned()),
        before,
        after,
        ..ResourceChange::new(R::Domain, action, name)
    };
    let mode = |mode: &str| Some(single("enrollment_mode", json!(mode)));
    match change {
        OrganizationChange::Create { body } => organization(A::Create, None, Some(body)),
        OrganizationChange::Update { before, after } => {
            organization(A::Update, Some(before), Some(after))
        }
        OrganizationChange::UpdateMetadata { before, patch } => {
            let after = patch
                .iter()
                .map(|(part, patch)| {
                    let mut result = before[part].as_object().cloned().unwrap_or_default();
                    apply_patch(&mut result, patch.as_object().unwrap_or(&Map::new()));
                    (part.clone(), Value::Object(result))
                })
                .collect();
            organization(A::UpdateMetadata, Some(before), Some(after))
        }
        OrganizationChange::CreateDomain { name, mode: wanted } => {
            domain(A::Create, &name, None, None, mode(wanted.as_str()))
        }
        OrganizationChange::UpdateDomain {
            id,
            name,
            before,
            after,
        } => domain(
            A::Update,
            &name,
            Some(id),
            mode(&before),
            mode(after.as_str()),
        ),
        OrganizationChange::DeleteDomain {
            id,
            name,
            mode: had,
        } => domain(A::Delete, &name, Some(id), mode(&had), None),
    }
}

/// The own changes of the organization of `target` (its fields and domains as the file
/// declares them), with a role set change refused when members (`members`: today's; the
/// target's: declared) hold roles the new set lacks.
pub fn target_resources(
    target: &super::Target,
    fields: &OrganizationFields,
    members: &[super::Observed],
    live: &super::Live,
) -> Vec<ResourceChange> {
    let id = target.organization_id.as_str();
    let key = target.label.as_deref().unwrap_or(id);
    let input = OrganizationInput {
        id,
        key,
        observed: live.organizations.get(id),
        domains: live.domains.get(id).map(Vec::as_slice).unwrap_or_default(),
        domains_unsettled: live.unsettled_domains.iter().any(|o| o == id),
    };
    let mut changes = resources(fields, target.metadata_mode, input);
    for change in &mut changes {
        let Some(set) = change.after_field("role_set_key").and_then(Value::as_str) else {
            continue;
        };
        let held = members
            .iter()
            .map(|m| (m.user_id.to_string(), m.role.as_str()))
            .chain(
                target
                    .members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.role.as_str())),
            );
        change.refused = role_set_refusal(key, set, live.role_sets.get(set), held);
    }
    changes
}

/// Why the organization `key` cannot move to the role set `set` (with `roles`; `None`: no such
/// set), naming the members whose roles it lacks; `None` when it can.
fn role_set_refusal<'a>(
    key: &str,
    set: &str,
    roles: Option<&Vec<String>>,
    held: impl Iterator<Item = (String, &'a str)>,
) -> Option<String> {
    let Some(roles) = roles else {
        return Some(format!(
            "{key} cannot move to the role set {set}: no role set of the instance has that key"
        ));
    };
    let mut stranded: Vec<String> = held
        .filter(|(_, role)| !roles.iter().any(|r| r == role))
        .map(|(who, role)| format!("{who} ({role})"))
        .collect();
    stranded.sort();
    stranded.dedup();
    (!stranded.is_empty()).then(|| {
        format!(
            "{key} cannot move to the role set {set}: it lacks the roles of {}; change their roles first",
            stranded.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{DesiredDomain, Metadata, Position};

    fn domain(name: &str, mode: EnrollmentMode) -> DesiredDomain {
        DesiredDomain {
            name: name.into(),
            enrollment_mode: mode,
            position: Position { line: 1, column: 1 },
        }
    }

    fn observed_domain(id: &str, name: &str, mode: &str) -> ObservedDomain {
        ObservedDomain {
            id: id.into(),
            name: name.into(),
            enrollment_mode: mode.into(),
        }
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn acme() -> ObservedOrganization {
        ObservedOrganization {
            id: "org_1".into(),
            slug: Some("acme".into()),
            name: "Acme".into(),
            max_allowed_memberships: Some(0),
            admin_delete_enabled: Some(true),
            role_set_key: Some("role_set:default".into()),
            public_metadata: map(json!({"plan": "free", "region": "eu"})),
            private_metadata: Map::new(),
        }
    }

    #[test]
    fn a_new_organization_is_one_post_with_every_field_it_takes_then_its_domains() {
        let fields = OrganizationFields {
            name: Some("Acme Corp".into()),
            max_allowed_memberships: Some(100),
            admin_delete_enabled: Some(false),
            role_set: Some(("role_set:standard".into(), Position { line: 1, column: 1 })),
            public_metadata: Some(Metadata::from(map(json!({"plan": "enterprise"})))),
            private_metadata: None,
            domains: Some(vec![domain("acme.com", EnrollmentMode::ManualInvitation)]),
        };
        let changes = organization_changes(&fields, MetadataMode::Exact, "acme", None, &[]);
        assert_eq!(
            changes,
            [
                OrganizationChange::Create {
                    body: map(json!({"name": "Acme Corp", "slug": "acme",
                        "max_allowed_memberships": 100, "role_set_key": "role_set:standard",
                        "public_metadata": {"plan": "enterprise"}}))
                },
                OrganizationChange::Update {
                    before: map(json!({"admin_delete_enabled": true})),
                    after: map(json!({"admin_delete_enabled": false})),
                },
                OrganizationChange::CreateDomain {
                    name: "acme.com".into(),
                    mode: EnrollmentMode::ManualInvitation
                },
            ]
        );
    }

    #[test]
    fn only_declared_fields_that_differ_are_patched_and_absent_ones_left_alone() {
        let fields = OrganizationFields {
            name: Some("Acme Corp".into()),
            max_allowed_memberships: Some(0),
            ..OrganizationFields::default()
        };
        let changes =
            organization_changes(&fields, MetadataMode::Exact, "acme", Some(&acme()), &[]);
        assert_eq!(
            changes,
            [OrganizationChange::Update {
                before: map(json!({"name": "Acme"})),
                after: map(json!({"name": "Acme Corp"})),
            }]
        );
        let same = OrganizationFields {
            name: Some("Acme".into()),
            ..OrganizationFields::default()
        };
        assert!(
            organization_changes(&same, MetadataMode::Exact, "acme", Some(&acme()), &[]).is_empty()
        );
    }

    #[test]
    fn organization_metadata_is_the_minimal_merge_patch_exact_or_merged() {
        let fields = OrganizationFields {
            public_metadata: Some(Metadata::from(map(json!({"plan": "enterprise"})))),
            ..OrganizationFields::default()
        };
        let exact = organization_changes(&fields, MetadataMode::Exact, "acme", Some(&acme()), &[]);
        let merge = organization_changes(&fields, MetadataMode::Merge, "acme", Some(&acme()), &[]);
        let patch = |changes: &[OrganizationChange]| match &changes[0] {
            OrganizationChange::UpdateMetadata { patch, .. } => Value::Object(patch.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            patch(&exact),
            json!({"public_metadata": {"plan": "enterprise", "region": null}})
        );
        assert_eq!(
            patch(&merge),
            json!({"public_metadata": {"plan": "enterprise"}})
        );
    }

    #[test]
    fn declared_domains_are_exactly_the_domains() {
        let fields = OrganizationFields {
            domains: Some(vec![
                domain("acme.com", EnrollmentMode::ManualInvitation),
                domain("acme.io", EnrollmentMode::AutomaticSuggestion),
                domain("acme.dev", EnrollmentMode::AutomaticInvitation),
            ]),
            ..OrganizationFields::default()
        };
        let observed = [
            observed_domain("d1", "acme.com", "manual_invitation"),
            observed_domain("d2", "acme.io", "manual_invitation"),
            observed_domain("d3", "old.com", "automatic_invitation"),
        ];
        let changes = organization_changes(
            &fields,
            MetadataMode::Exact,
            "acme",
            Some(&acme()),
            &observed,
        );
        assert_eq!(
            changes,
            [
                OrganizationChange::CreateDomain {
                    name: "acme.dev".into(),
                    mode: EnrollmentMode::AutomaticInvitation
                },
                OrganizationChange::UpdateDomain {
                    id: "d2".into(),
                    name: "acme.io".into(),
                    before: "manual_invitation".into(),
                    after: EnrollmentMode::AutomaticSuggestion
                },
                OrganizationChange::DeleteDomain {
                    id: "d3".into(),
                    name: "old.com".into(),
                    mode: "automatic_invitation".into()
                },
            ]
        );
        assert_eq!(changes.iter().filter(|c| c.takes_access()).count(), 1);
    }

    #[test]
    fn a_role_set_change_that_strands_member_roles_is_refused_naming_them() {
        let roles = vec!["org:admin".to_owned(), "org:member".to_owned()];
        let held = [
            ("user_1".to_owned(), "org:member"),
            ("user_2".to_owned(), "org:billing"),
            ("user_2".to_owned(), "org:billing"),
        ];
        let reason = role_set_refusal("acme", "role_set:s", Some(&roles), held.into_iter());
        assert_eq!(
            reason.as_deref(),
            Some(
                "acme cannot move to the role set role_set:s: it lacks the roles of user_2 (org:billing); change their roles first"
            )
        );
        let fits = [("user_1".to_owned(), "org:member")];
        assert!(
            role_set_refusal("acme", "role_set:s", Some(&roles), fits.clone().into_iter())
                .is_none()
        );
        assert!(role_set_refusal("acme", "role_set:x", None, fits.into_iter()).is_some());
    }
}
