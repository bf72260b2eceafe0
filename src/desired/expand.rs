//! Directory groups expanded once a run has read them (docs/directories.md): each
//! organization's `group:NAME` keys that name a directory's group become one entry per person,
//! in their place in the precedence (after the organization's own group entries, or after
//! `all_organizations`' for the rule's), with the same rules as a group the file lists. A group
//! that could not be read, or came back empty without `allow_empty`, adds no one and is
//! recorded as unavailable in each organization that uses it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::directories::{GroupEntry, People, Reading, Unavailable, UnavailableGroup};
use super::{DesiredMember, DesiredOrganization, DesiredState, Diagnostic, Source, UserRef};

impl DesiredState {
    /// Every directory group the organizations and `all_organizations` use, each once, sorted.
    pub fn directory_groups_used(&self) -> Vec<super::DirectoryGroup> {
        let mut used: Vec<super::DirectoryGroup> = self
            .organizations
            .iter()
            .flat_map(|o| o.directory_groups.iter())
            .chain(
                self.all_organizations
                    .iter()
                    .flat_map(|r| r.directory_groups.iter()),
            )
            .map(|entry| entry.source.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        used.sort();
        used
    }

    /// The directory groups whose every entry says `allow_empty: true`: an empty reading of
    /// one of them is taken as it is.
    pub fn empty_allowed(&self) -> HashSet<super::DirectoryGroup> {
        let entries = || {
            self.organizations
                .iter()
                .flat_map(|o| o.directory_groups.iter())
                .chain(
                    self.all_organizations
                        .iter()
                        .flat_map(|r| r.directory_groups.iter()),
                )
        };
        let strict: HashSet<&super::DirectoryGroup> = entries()
            .filter(|entry| !entry.allow_empty)
            .map(|entry| &entry.source)
            .collect();
        entries()
            .filter(|entry| !strict.contains(&entry.source))
            .map(|entry| entry.source.clone())
            .collect()
    }

    /// The directory the files declare by this name.
    pub fn directory(&self, name: &str) -> Option<&super::Directory> {
        self.directories.iter().find(|d| d.name == name)
    }

    /// Adds the people of every directory group the organizations use (those
    /// `all_organizations` joined them included) from `people`, as read this run. Two entries
    /// of the same precedence that disagree for one person are invalid input naming both
    /// lines (found only now: the people were not known before); each problem is reported
    /// once. Unavailable groups are recorded in each organization that uses them.
    pub fn expand(&mut self, people: &People) -> Result<(), Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for organization in &mut self.organizations {
            for problem in organization.expand(people) {
                if seen.insert(problem.to_string()) {
                    problems.push(problem);
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The directory groups of `people` that are unavailable this run, sorted: those that could
/// not be read, and those that came back empty unless `empty_allowed` (see
/// [`DesiredState::empty_allowed`]) takes them as they are.
pub fn unavailable_groups(
    people: &People,
    empty_allowed: &HashSet<super::DirectoryGroup>,
) -> Vec<(super::DirectoryGroup, Unavailable)> {
    let mut found: Vec<(super::DirectoryGroup, Unavailable)> = people
        .iter()
        .filter_map(|(group, reading)| match reading {
            Reading::Unreadable(why) => Some((group.clone(), Unavailable::Unreadable(why.clone()))),
            Reading::People(list) if list.is_empty() && !empty_allowed.contains(group) => {
                Some((group.clone(), Unavailable::Empty))
            }
            Reading::People(_) => None,
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// One directory group's people as entries, before they join the organization's members.
struct Added {
    source: Source,
    members: Vec<DesiredMember>,
}

impl DesiredOrganization {
    /// Expands this organization's directory groups; returns the conflicts found.
    fn expand(&mut self, people: &People) -> Vec<Diagnostic> {
        let entries = std::mem::take(&mut self.directory_groups);
        if entries.is_empty() {
            return Vec::new();
        }
        let mut problems = Vec::new();
        let (own, rule) = {
            let existing = self.ranks();
            let mut expansion = Expansion {
                organization: self,
                existing,
                added: HashMap::new(),
                problems: &mut problems,
            };
            let mut own = Vec::new();
            let mut rule = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let Some(added) = expansion.entry(&entries, index, people) else {
                    continue;
                };
                if entry.in_rule {
                    rule.push(added);
                } else {
                    own.push(added);
                }
            }
            (own, rule)
        };
        for (entry, why) in unavailable(&entries, people) {
            let group = UnavailableGroup {
                label: entry.label(),
                source: entry.source.clone(),
                why,
                rank: rank_of(entry),
            };
            if !self.unavailable.contains(&group) {
                self.unavailable.push(group);
            }
        }
        self.splice(own, rule);
        problems
    }

    /// The best precedence of each person listed so far, with where: (rank, index).
    fn ranks(&self) -> HashMap<String, (u8, usize)> {
        let mut ranks = HashMap::with_capacity(self.members.len());
        for (index, member) in self.members.iter().enumerate() {
            let rank = self.source_of(index).rank();
            ranks
                .entry(member.user.as_str().to_owned())
                .or_insert((rank, index));
        }
        ranks
    }

    /// Puts the organization's own directory groups after its own entries (before those of
    /// `all_organizations`), and the rule's at the end.
    fn splice(&mut self, own: Vec<Added>, rule: Vec<Added>) {
        let split = self
            .sources
            .iter()
            .filter(|(_, source)| source.rank() >= 2)
            .map(|(start, _)| *start)
            .min()
            .unwrap_or(self.members.len());
        let tail = self.members.split_off(split);
        let mut sources: Vec<(usize, Source)> = self
            .sources
            .iter()
            .filter(|(start, source)| *start < split || source.rank() < 2)
            .cloned()
            .collect();
        let later: Vec<(usize, Source)> = self
            .sources
            .iter()
            .filter(|(start, source)| *start >= split && source.rank() >= 2)
            .cloned()
            .collect();
        for added in own.into_iter().filter(|added| !added.members.is_empty()) {
            sources.push((self.members.len(), added.source));
            self.members.extend(added.members);
        }
        let shift = self.members.len() - split;
        sources.extend(later.into_iter().map(|(start, s)| (start + shift, s)));
        self.members.extend(tail);
        for added in rule.into_iter().filter(|added| !added.members.is_empty()) {
            sources.push((self.members.len(), added.source));
            self.members.extend(added.members);
        }
        self.sources = sources;
    }
}

/// 1 for an organization's own `group:NAME`, 3 for one of `all_organizations`.
fn rank_of(entry: &GroupEntry) -> u8 {
    if entry.in_rule { 3 } else { 1 }
}

/// The entries whose group is unavailable this run, and why.
fn unavailable<'a>(
    entries: &'a [GroupEntry],
    people: &People,
) -> Vec<(&'a GroupEntry, Unavailable)> {
    entries
        .iter()
        .filter_map(|entry| match people.get(&entry.source) {
            None => Some((entry, Unavailable::Unreadable(Arc::from("it was not read")))),
            Some(Reading::Unreadable(why)) => Some((entry, Unavailable::Unreadable(why.clone()))),
            Some(Reading::People(list)) if list.is_empty() && !entry.allow_empty => {
                Some((entry, Unavailable::Empty))
            }
            Some(Reading::People(_)) => None,
        })
        .collect()
}

/// The work of expanding one organization's directory groups.
struct Expansion<'a> {
    organization: &'a DesiredOrganization,
    /// Who the file lists there already: best rank and index.
    existing: HashMap<String, (u8, usize)>,
    /// Who directory groups added so far: rank and the entry.
    added: HashMap<Arc<str>, (u8, usize)>,
    problems: &'a mut Vec<Diagnostic>,
}

impl Expansion<'_> {
    /// The people one entry adds (none when its group is unavailable): those no entry of
    /// better precedence lists, and no entry of the same precedence lists as they are.
    fn entry(&mut self, entries: &[GroupEntry], index: usize, people: &People) -> Option<Added> {
        let entry = &entries[index];
        let Some(Reading::People(list)) = people.get(&entry.source) else {
            return None;
        };
        let rank = rank_of(entry);
        let mut members = Vec::with_capacity(list.len());
        for email in list.iter() {
            let Ok(user @ UserRef::Email(_)) = UserRef::parse(email) else {
                continue;
            };
            if let Some(&(their_rank, at)) = self.existing.get(user.as_str())
                && their_rank <= rank
            {
                let listed = &self.organization.members[at];
                if their_rank == rank && !super::agree(listed, &entry.template) {
                    let first = self.organization.source_of(at).clone();
                    self.conflict(&user, (listed, &first), entry);
                }
                continue;
            }
            let key: Arc<str> = Arc::from(user.as_str());
            if let Some(&(their_rank, first)) = self.added.get(&key)
                && their_rank <= rank
            {
                let earlier = &entries[first];
                if their_rank == rank && !super::agree(&earlier.template, &entry.template) {
                    let source = Source::Group(Arc::from(name_of(earlier)));
                    self.conflict(&user, (&earlier.template, &source), entry);
                }
                continue;
            }
            self.added.insert(key, (rank, index));
            members.push(DesiredMember {
                user,
                ..entry.template.clone()
            });
        }
        let name: Arc<str> = Arc::from(name_of(entry));
        let source = if entry.in_rule {
            Source::AllOrganizationsGroup(name)
        } else {
            Source::Group(name)
        };
        Some(Added { source, members })
    }

    /// Two entries of the same precedence disagree for one person: invalid input naming both.
    fn conflict(&mut self, user: &UserRef, first: (&DesiredMember, &Source), entry: &GroupEntry) {
        let (first, first_source) = first;
        let first_key = match first_source {
            Source::Group(name) | Source::AllOrganizationsGroup(name) => format!("group:{name}"),
            _ => "a direct entry".to_owned(),
        };
        let path = if entry.in_rule {
            "all_organizations.members".to_owned()
        } else {
            format!("organizations.{}.members", self.organization.key)
        };
        let origin = self.organization.origin.at(entry.template.position);
        let origin = super::Origin {
            file: entry.file.clone(),
            ..origin
        };
        self.problems.push(origin.diagnostic(
            path,
            format!(
                "`{user}` gets {} from `{first_key}` (line {}) and {} from `group:{}` (line {}); give both entries the same role and metadata, or list the person directly",
                first.role,
                first.position.line,
                entry.template.role,
                name_of(entry),
                entry.template.position.line
            ),
        ));
    }
}

/// `support from corp`: the name a directory group's entries are known by in the plan.
fn name_of(entry: &GroupEntry) -> String {
    format!("{} from {}", entry.name, entry.source.directory)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::desired::{DirectoryGroup, load_files};

    fn load(text: &str) -> DesiredState {
        load_files(&[(PathBuf::from("m.yaml"), text.to_owned())]).expect("valid")
    }

    const FILE: &str = "version: 1\ndirectories:\n  corp:\n    provider: okta\n    url: https://example.okta.com\ngroups:\n  staff: {directory: corp, group: Staff}\n  oncall: {directory: corp, group: Oncall, allow_empty: true}\n  local: [carol@example.com]\n";

    fn people(groups: &[(&str, &[&str])]) -> People {
        groups
            .iter()
            .map(|(group, emails)| {
                (
                    DirectoryGroup {
                        directory: Arc::from("corp"),
                        group: Arc::from(*group),
                    },
                    Reading::People(Arc::new(emails.iter().map(|e| e.to_string()).collect())),
                )
            })
            .collect()
    }

    fn roles(organization: &DesiredOrganization) -> Vec<(String, String, Option<String>)> {
        (0..organization.members.len())
            .map(|index| {
                let member = &organization.members[index];
                (
                    member.user.to_string(),
                    member.role.to_string(),
                    organization.source_of(index).label(),
                )
            })
            .collect()
    }

    #[test]
    fn a_directory_group_joins_after_the_organizations_own_groups_and_a_direct_entry_wins() {
        let mut state = load(&format!(
            "{FILE}organizations:\n  acme:\n    members:\n      alice@example.com: admin\n      group:staff: member\n      group:local: member\n"
        ));
        assert_eq!(state.directory_groups_used().len(), 1);
        state
            .expand(&people(&[(
                "Staff",
                &["alice@example.com", "bob@example.com", "carol@example.com"],
            )]))
            .unwrap();
        let acme = &state.organizations[0];
        assert_eq!(
            roles(acme),
            [
                ("alice@example.com".into(), "org:admin".into(), None),
                (
                    "carol@example.com".into(),
                    "org:member".into(),
                    Some("group local".into())
                ),
                (
                    "bob@example.com".into(),
                    "org:member".into(),
                    Some("group staff from corp".into())
                ),
            ]
        );
        assert!(acme.unavailable.is_empty());
    }

    #[test]
    fn two_entries_of_the_same_precedence_that_disagree_are_an_error_naming_both_lines() {
        let mut state = load(&format!(
            "{FILE}organizations:\n  acme:\n    members:\n      group:local: member\n      group:staff: admin\n"
        ));
        let errors = state
            .expand(&people(&[("Staff", &["carol@example.com"])]))
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.starts_with("m.yaml:14:7: organizations.acme.members:"),
            "{text}"
        );
        assert!(
            text.contains("from `group:local` (line 13)")
                && text.contains("from `group:staff from corp` (line 14)"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_or_empty_group_adds_no_one_and_is_recorded_where_it_is_used() {
        let text = format!(
            "{FILE}all_organizations:\n  members:\n    group:staff: member\norganizations:\n  acme:\n    members:\n      group:oncall: admin\n      user_1: admin\n"
        );
        let mut state = load(&text);
        let rule = state.all_organizations.take().unwrap();
        rule.join(&mut state.organizations[0]);
        let mut read = people(&[("Oncall", &[])]);
        read.insert(
            DirectoryGroup {
                directory: Arc::from("corp"),
                group: Arc::from("Staff"),
            },
            Reading::Unreadable(Arc::from("refused")),
        );
        state.expand(&read).unwrap();
        let acme = &state.organizations[0];
        assert_eq!(acme.members.len(), 1, "only user_1");
        let unavailable: Vec<(String, u8)> = acme
            .unavailable
            .iter()
            .map(|group| (group.describe(), group.rank))
            .collect();
        assert_eq!(
            unavailable,
            [("group staff from corp could not be read".to_owned(), 3)],
            "an empty group with allow_empty is taken as it is"
        );
    }

    #[test]
    fn the_rules_directory_group_comes_last_and_the_organizations_own_entries_win() {
        let text = format!(
            "{FILE}all_organizations:\n  members:\n    user_9: member\n    group:staff: {{role: member, public_metadata: {{staff: true}}}}\norganizations:\n  acme:\n    members:\n      group:oncall: admin\n"
        );
        let mut state = load(&text);
        let rule = state.all_organizations.take().unwrap();
        rule.join(&mut state.organizations[0]);
        state
            .expand(&people(&[
                ("Staff", &["a@example.com", "b@example.com"]),
                ("Oncall", &["b@example.com"]),
            ]))
            .unwrap();
        let listed: Vec<(String, String, Option<String>)> = roles(&state.organizations[0]);
        assert_eq!(
            listed,
            [
                (
                    "b@example.com".into(),
                    "org:admin".into(),
                    Some("group oncall from corp".into())
                ),
                (
                    "user_9".into(),
                    "org:member".into(),
                    Some("all organizations".into())
                ),
                (
                    "a@example.com".into(),
                    "org:member".into(),
                    Some("all organizations, group staff from corp".into())
                ),
            ]
        );
    }
}
