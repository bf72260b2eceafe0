//! An organization's own fields and its verified domains (README: "Onboarding a customer
//! organization in one pull request"): the changes that bring Clerk's organization to what the
//! file declares. Declared fields are managed, absent ones left alone; `domains`, when
//! declared, is exactly these domains. Pure: what was read comes in, changes go out.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::metadata::{expected, parts_patch};
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
    /// A domain change after which everyone with an address at the domain gets in (invited,
    /// or offered to join): the plan marks it.
    pub fn lets_everyone_in(&self) -> bool {
        match self {
            OrganizationChange::CreateDomain { mode, .. } => mode.lets_everyone_in(),
            OrganizationChange::UpdateDomain { after, .. } => after.lets_everyone_in(),
            _ => false,
        }
    }

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

/// The roles (of current and declared members) that a role set with `set_roles` lacks, each
/// once, in order: a role set change that strands any is refused.
pub fn stranded_roles<'a>(
    set_roles: &[String],
    held: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let stranded: BTreeSet<&str> = held
        .into_iter()
        .filter(|role| !set_roles.iter().any(|r| r == role))
        .collect();
    stranded.into_iter().map(str::to_owned).collect()
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
    fn declared_domains_are_exactly_the_domains_and_automatic_modes_are_marked() {
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
        let marked: Vec<bool> = changes
            .iter()
            .map(OrganizationChange::lets_everyone_in)
            .collect();
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
        assert_eq!(marked, [true, true, false]);
        assert_eq!(changes.iter().filter(|c| c.takes_access()).count(), 1);
    }

    #[test]
    fn roles_a_role_set_lacks_are_named_once_each() {
        let set = vec!["org:admin".to_owned(), "org:member".to_owned()];
        let held = ["org:member", "org:billing", "org:admin", "org:billing"];
        assert_eq!(stranded_roles(&set, held), ["org:billing"]);
    }
}
