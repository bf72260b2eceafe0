//! What a run reads, decided from the files and from what Clerk has said so far (pure; the
//! sync flow reads between these steps): the organizations to read with their member counts,
//! where each organization the files name points, and which of them send invitations.

use std::collections::HashMap;

use crate::desired::{DesiredOrganization, OrgRef};

/// An organization the files name, as Clerk has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub id: &'a str,
    pub slug: Option<&'a str>,
    /// How many members it has, when Clerk said.
    pub members_count: Option<u64>,
}

/// The organizations to read, by ID, with their member counts where known (the listing's cost
/// model uses them): those the files name (a slug where it was found) and those
/// `all_organizations` added (`added`, with their counts).
pub fn managed(
    references: &[OrgRef],
    found: &HashMap<&OrgRef, Found<'_>>,
    added: impl IntoIterator<Item = (String, u64)>,
) -> HashMap<String, Option<u64>> {
    let mut managed: HashMap<String, Option<u64>> = added
        .into_iter()
        .map(|(id, count)| (id, Some(count)))
        .collect();
    for reference in references {
        match reference {
            OrgRef::Id(id) => {
                managed.entry(id.clone()).or_insert(None);
            }
            OrgRef::Slug(_) => {
                if let Some(organization) = found.get(reference) {
                    managed.insert(organization.id.to_owned(), organization.members_count);
                }
            }
        }
    }
    managed
}

/// Where each organization the files name points, as resolution needs it: its ID and a label
/// (its slug, from the listing or the lookup). An ID that turned out not to exist
/// (`missing`), or a slug not found, is left out.
pub fn located<'a>(
    references: &'a [OrgRef],
    found: &HashMap<&OrgRef, Found<'a>>,
    listed_slugs: &'a HashMap<String, String>,
    missing: &[String],
) -> HashMap<&'a OrgRef, (&'a str, Option<&'a str>)> {
    let mut located = HashMap::with_capacity(references.len());
    for reference in references {
        let place = match reference {
            OrgRef::Id(id) if !missing.contains(id) => {
                let label = listed_slugs
                    .get(id)
                    .map(String::as_str)
                    .or_else(|| found.get(reference).and_then(|o| o.slug));
                Some((id.as_str(), label))
            }
            OrgRef::Id(_) => None,
            OrgRef::Slug(slug) => found
                .get(reference)
                .map(|organization| (organization.id, Some(slug.as_str()))),
        };
        if let Some(place) = place {
            located.insert(reference, place);
        }
    }
    located
}

/// The organizations that send invitations (by ID), among those located.
pub fn inviting(
    organizations: &[DesiredOrganization],
    located: &HashMap<&OrgRef, (&str, Option<&str>)>,
) -> Vec<String> {
    organizations
        .iter()
        .filter(|o| o.invitations.is_some())
        .filter_map(|o| located.get(&o.key).map(|(id, _)| (*id).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &'static str, slug: &'static str, count: Option<u64>) -> Found<'static> {
        Found {
            id,
            slug: Some(slug),
            members_count: count,
        }
    }

    #[test]
    fn a_slug_is_read_by_the_id_it_was_found_under_and_an_id_as_it_is() {
        let references = [
            OrgRef::Slug("acme".into()),
            OrgRef::Id("org_2".into()),
            OrgRef::Slug("gone".into()),
        ];
        let acme = OrgRef::Slug("acme".into());
        let found = HashMap::from([(&acme, found("org_1", "acme", Some(3)))]);
        let read = managed(&references, &found, [("org_9".to_owned(), 1)]);
        assert_eq!(
            read,
            HashMap::from([
                ("org_1".to_owned(), Some(3)),
                ("org_2".to_owned(), None),
                ("org_9".to_owned(), Some(1)),
            ])
        );
    }

    #[test]
    fn a_missing_id_and_a_slug_not_found_point_nowhere() {
        let references = [
            OrgRef::Slug("acme".into()),
            OrgRef::Id("org_2".into()),
            OrgRef::Id("org_3".into()),
            OrgRef::Slug("gone".into()),
        ];
        let acme = OrgRef::Slug("acme".into());
        let found = HashMap::from([(&acme, found("org_1", "acme", None))]);
        let slugs = HashMap::from([("org_2".to_owned(), "beta".to_owned())]);
        let located = located(&references, &found, &slugs, &["org_3".to_owned()]);
        assert_eq!(located.len(), 2);
        assert_eq!(located[&references[0]], ("org_1", Some("acme")));
        assert_eq!(located[&references[1]], ("org_2", Some("beta")));
    }
}
