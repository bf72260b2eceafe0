//! `--org`: the organizations one run plans, like terraform's `-target`. An `--org` names an
//! organization the files manage: by its key as the files write it (ID or slug), or — when a
//! file has `all_organizations` — by the ID or slug of an organization the rule covers. Anything
//! else is a mistake on the command line, found here without a request.

use super::{DesiredState, OrgRef};

/// What `--org` selects, as far as the files alone tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Selection {
    /// The values as given, for the plan to show and a saved plan to record.
    pub(crate) given: Vec<String>,
    /// The values that are keys of the files' organizations.
    pub(crate) named: Vec<OrgRef>,
    /// The other values: organizations `all_organizations` may cover, to be found in Clerk by
    /// ID or slug (one of them may turn out to be a named organization under its other name).
    pub(crate) covered: Vec<OrgRef>,
}

impl DesiredState {
    /// Checks `--org` against the files. Every value must be the key of an organization the
    /// files name, or, when they have `all_organizations`, an organization it does not except.
    pub(crate) fn select(&self, given: &[String]) -> Result<Selection, String> {
        let mut selection = Selection {
            given: given.to_vec(),
            ..Selection::default()
        };
        let mut unknown = Vec::new();
        for text in given {
            let reference = OrgRef::parse(text);
            if selection.named.contains(&reference) || selection.covered.contains(&reference) {
                continue;
            }
            if self.organizations.iter().any(|o| o.key == reference) {
                selection.named.push(reference);
                continue;
            }
            match &self.all_organizations {
                Some(rule) if !rule.except.contains(&reference) => {
                    selection.covered.push(reference)
                }
                Some(_) => unknown.push(format!(
                    "--org `{text}`: all_organizations excepts it and no file names it, so the files do not manage it"
                )),
                None => unknown.push(format!("--org `{text}`")),
            }
        }
        if unknown.is_empty() {
            return Ok(selection);
        }
        let keys: Vec<&str> = self.organizations.iter().map(|o| o.key.as_str()).collect();
        Err(format!(
            "{} names no organization the files manage; write it as the files key the organization (they name: {}); nothing was sent",
            unknown.join(", "),
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> DesiredState {
        crate::desired::load_files(&[("m.yaml".into(), text.to_owned())]).expect("valid")
    }

    const TWO: &str = "version: 1\norganizations:\n  alpha:\n    members: {user_1: admin}\n  org_beta:\n    members: {user_2: admin}\n";

    #[test]
    fn an_org_the_files_key_is_selected_as_written() {
        let state = files(TWO);
        let selection = state.select(&["alpha".into(), "org_beta".into()]).unwrap();
        assert_eq!(
            selection.named,
            vec![OrgRef::Slug("alpha".into()), OrgRef::Id("org_beta".into())]
        );
        assert!(selection.covered.is_empty());
    }

    #[test]
    fn an_org_the_files_do_not_name_is_refused_with_the_names_they_use() {
        let error = files(TWO).select(&["org_alpha".into()]).unwrap_err();
        assert!(error.contains("--org `org_alpha`"), "{error}");
        assert!(error.contains("they name: alpha, org_beta"), "{error}");
    }

    #[test]
    fn with_all_organizations_any_org_it_does_not_except_is_covered() {
        let text = "version: 1\nall_organizations:\n  except: [internal]\n  members: {user_9: member}\norganizations:\n  alpha:\n    members: {user_1: admin}\n";
        let state = files(text);
        let selection = state.select(&["org_new".into(), "alpha".into()]).unwrap();
        assert_eq!(selection.covered, vec![OrgRef::Id("org_new".into())]);
        assert_eq!(selection.named, vec![OrgRef::Slug("alpha".into())]);
        let error = state.select(&["internal".into()]).unwrap_err();
        assert!(error.contains("excepts it"), "{error}");
    }
}
