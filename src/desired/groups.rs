//! Groups and rules for every organization (docs/groups.md: "Groups, and staff in every organization"):
//! `groups:`, `group:NAME` member keys, and `all_organizations` with `except`. Checked offline: an
//! unknown group, a group naming a group, an empty group, a bad entry, and two entries of the same
//! precedence that disagree are invalid input with file, line and column. The rule is applied to
//! the organizations of the instance at run time ([`AllOrganizations::apply`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::checker::Checker;
use super::directories::{DirectoryGroup, GroupEntry};
use super::directory_checks::{Directories, valid_name};
use super::raw::{RawAllOrganizations, RawGroup, RawGroups, RawMember};
use super::yaml::{self, At};
use super::{
    DesiredMember, DesiredOrganization, Invitations, MetadataMode, OrgRef, Origin, UserRef,
};

/// Where an organization's member entry comes from; the order is the precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Listed in the organization.
    Direct,
    /// `group:NAME` in the organization (a directory's group is named `NAME from DIRECTORY`).
    Group(Arc<str>),
    /// Listed in `all_organizations`.
    AllOrganizations,
    /// `group:NAME` in `all_organizations` (named as in [`Source::Group`]).
    AllOrganizationsGroup(Arc<str>),
}

impl Source {
    /// The precedence: lower wins.
    pub fn rank(&self) -> u8 {
        match self {
            Source::Direct => 0,
            Source::Group(_) => 1,
            Source::AllOrganizations => 2,
            Source::AllOrganizationsGroup(_) => 3,
        }
    }

    /// What the plan says of a change made because of this entry (`None`: a direct entry).
    pub fn label(&self) -> Option<String> {
        match self {
            Source::Direct => None,
            Source::Group(name) => Some(format!("group {name}")),
            Source::AllOrganizations => Some("all organizations".to_owned()),
            Source::AllOrganizationsGroup(name) => Some(format!("all organizations, group {name}")),
        }
    }
}

/// `all_organizations`: members every organization of the instance gets, except those in
/// `except`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllOrganizations {
    pub except: Vec<OrgRef>,
    pub members: Vec<DesiredMember>,
    /// As [`DesiredOrganization::sources`]; the first run starts at 0.
    pub sources: Vec<(usize, Source)>,
    /// Its `group:NAME` keys that name a directory's group (each `in_rule`).
    pub directory_groups: Vec<GroupEntry>,
    /// The defaults of its file, for the organizations the file does not name.
    pub metadata_mode: MetadataMode,
    pub invitations: Option<Box<Invitations>>,
    pub origin: Origin,
}

impl AllOrganizations {
    /// Whether the organization (ID and slug) is left out.
    pub fn excepts(&self, id: &str, slug: Option<&str>) -> bool {
        self.except.iter().any(|except| match except {
            OrgRef::Id(except) => except == id,
            OrgRef::Slug(except) => Some(except.as_str()) == slug,
        })
    }

    /// Adds the rule's members to `organization` (one the files name), after its own: its own
    /// entries win, and its `prune` and `ignore` apply to the union.
    pub fn join(&self, organization: &mut DesiredOrganization) {
        let offset = organization.members.len();
        organization.members.extend(self.members.iter().cloned());
        organization.sources.extend(
            self.sources
                .iter()
                .map(|(start, source)| (start + offset, source.clone())),
        );
        organization
            .directory_groups
            .extend(self.directory_groups.iter().cloned());
    }

    /// The organization `id` (one the files do not name) as the rule makes it: only its
    /// members, added and never pruned.
    pub fn organization(&self, id: &str) -> DesiredOrganization {
        DesiredOrganization {
            key: OrgRef::Id(id.to_owned()),
            prune: false,
            metadata_mode: self.metadata_mode,
            members: self.members.clone(),
            ignore: Vec::new(),
            invitations: self.invitations.clone(),
            origin: self.origin.clone(),
            sources: self.sources.clone(),
            directory_groups: self.directory_groups.clone(),
            unavailable: Vec::new(),
            fields: None,
        }
    }
}

/// What applying `all_organizations` to the organizations of the instance did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RuleApplied {
    /// How many organizations the files name were found among them.
    pub(crate) named: usize,
    /// The organizations it added (positions in the organizations it was given), each with
    /// only the rule's members.
    pub(crate) added: Vec<usize>,
}

impl AllOrganizations {
    /// Applies the rule to the organizations of the instance it reaches (`reached`: ID and
    /// slug each): its members join each organization the files name that it does not except
    /// (`found` gives the ID a slug key resolved to), and every other organization it does not
    /// except is added with only them (never pruned).
    pub(crate) fn apply(
        &self,
        organizations: &mut Vec<DesiredOrganization>,
        reached: &[(&str, Option<&str>)],
        found: impl Fn(&OrgRef) -> Option<String>,
    ) -> RuleApplied {
        let slugs: HashMap<&str, Option<&str>> = reached.iter().copied().collect();
        let mut named: HashSet<String> = HashSet::new();
        for organization in organizations.iter_mut() {
            let (id, slug) = match &organization.key {
                OrgRef::Id(id) => (Some(id.clone()), slugs.get(id.as_str()).copied().flatten()),
                OrgRef::Slug(slug) => (found(&organization.key), Some(slug.as_str())),
            };
            let Some(id) = id else { continue };
            if !self.excepts(&id, slug) {
                self.join(organization);
            }
            named.insert(id);
        }
        let mut added = Vec::new();
        for (position, (id, slug)) in reached.iter().enumerate() {
            if named.contains(*id) || self.excepts(id, *slug) {
                continue;
            }
            organizations.push(self.organization(id));
            added.push(position);
        }
        RuleApplied {
            named: named.len(),
            added,
        }
    }
}

/// A group as the file defines it: its people, each with its line, or a directory's group.
pub(super) enum Group {
    People(Vec<(UserRef, u32)>),
    Directory {
        source: DirectoryGroup,
        allow_empty: bool,
    },
    /// A directory's group whose entry is invalid (reported where it is defined).
    Invalid,
}

/// The groups of one file, by name.
pub(super) type Groups = HashMap<String, Group>;

/// What one `group:NAME` key brings: the people of a group the file lists, or the key of a
/// directory's group (`None` when its value is invalid).
pub(super) enum GroupMembers {
    People(Vec<DesiredMember>),
    Directory(Option<GroupEntry>),
}

/// The members of an organization (or of `all_organizations`) as its file lists them.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) members: Vec<DesiredMember>,
    /// Where runs of `members` come from (see [`DesiredOrganization::sources`]).
    pub(super) sources: Vec<(usize, Source)>,
    /// The `group:NAME` keys that name a directory's group.
    pub(super) directory_groups: Vec<GroupEntry>,
}

/// Whether two entries for one person say the same (role, metadata, expiry).
pub(crate) fn agree(a: &DesiredMember, b: &DesiredMember) -> bool {
    a.role == b.role && a.metadata == b.metadata && a.expires == b.expires
}

impl Checker {
    /// Checks `groups:`: every entry a user ID or email, none naming a group, none empty; or a
    /// group of a directory this file declares.
    pub(super) fn groups(
        &mut self,
        raw: Option<At<RawGroups>>,
        directories: &Directories,
    ) -> Groups {
        let mut groups = Groups::new();
        let Some(raw) = raw else {
            return groups;
        };
        for (name, entries) in raw.value.0 {
            let path = format!("groups.{}", name.value);
            if !valid_name(&name.value) {
                self.error(
                    yaml::position(&name),
                    "groups",
                    format!(
                        "`{}` is not a group name; use letters, digits, `_`, `-` and `.`",
                        name.value
                    ),
                );
                continue;
            }
            let position = yaml::position(&entries);
            let group = match entries.value {
                RawGroup::People(people) => Group::People(self.people(&path, people, position)),
                RawGroup::Directory(raw) => {
                    match self.directory_group(&path, raw, position, directories) {
                        Some((source, allow_empty)) => Group::Directory {
                            source,
                            allow_empty,
                        },
                        // Reported already; its uses are not reported again.
                        None => Group::Invalid,
                    }
                }
            };
            groups.insert(name.value, group);
        }
        groups
    }

    /// The people a group lists: user IDs or emails, each once, none naming a group.
    fn people(
        &mut self,
        path: &str,
        entries: Vec<At<String>>,
        position: (u64, u64),
    ) -> Vec<(UserRef, u32)> {
        if entries.is_empty() {
            self.error(
                position,
                path,
                "the group is empty; list its people, or remove it",
            );
        }
        let mut people: Vec<(UserRef, u32)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let position = yaml::position(&entry);
            if entry.value.trim().starts_with("group:") {
                self.error(
                    position,
                    path,
                    format!(
                        "`{}`: a group cannot name another group; list its people",
                        entry.value
                    ),
                );
                continue;
            }
            let Some(user) = self.user(path, &entry.value, position) else {
                continue;
            };
            if let Some((_, line)) = people.iter().find(|(u, _)| *u == user) {
                self.error(
                    position,
                    path,
                    format!(
                        "`{}` is listed twice (lines {line} and {})",
                        entry.value, position.0
                    ),
                );
                continue;
            }
            people.push((user, position.0 as u32));
        }
        people
    }

    /// The members of an organization (or of `all_organizations`, `in_rule`): its direct
    /// entries, then those its `group:NAME` keys bring, in precedence order, with where each
    /// run comes from; and the keys that name a directory's group, kept until it is read.
    pub(super) fn members(
        &mut self,
        org_path: &str,
        entries: Vec<(At<String>, At<RawMember>)>,
        groups: &Groups,
        in_rule: bool,
    ) -> Listed {
        let path = format!("{org_path}.members");
        let mut seen: HashMap<UserRef, (String, u64)> = HashMap::new();
        let mut members = Vec::with_capacity(entries.len());
        let mut grouped: Vec<(Arc<str>, Vec<DesiredMember>)> = Vec::new();
        let mut directory_groups = Vec::new();
        for (key, value) in entries {
            let position = yaml::position(&key);
            let member_path = format!("{path}.{}", key.value);
            if let Some(name) = key.value.trim().strip_prefix("group:") {
                match self.group_members(&path, name, groups, value, position) {
                    GroupMembers::People(entries) => grouped.push((Arc::from(name), entries)),
                    GroupMembers::Directory(Some(mut entry)) => {
                        entry.in_rule = in_rule;
                        directory_groups.push(entry);
                    }
                    GroupMembers::Directory(None) => {}
                }
                continue;
            }
            let Some(user) = self.user(&member_path, &key.value, position) else {
                continue;
            };
            if let Some((first_key, first_line)) = seen.get(&user) {
                let message = format!(
                    "`{}` is listed twice (lines {first_line} and {}){}",
                    key.value,
                    position.0,
                    if *first_key != key.value {
                        format!(", once as `{first_key}`")
                    } else {
                        String::new()
                    },
                );
                self.error(position, &path, message);
                continue;
            }
            seen.insert(user.clone(), (key.value.clone(), position.0));
            if let Some(member) = self.member(&member_path, user, value, position) {
                members.push(member);
            }
        }
        let (members, sources) = self.with_groups(&path, members, grouped, in_rule);
        Listed {
            members,
            sources,
            directory_groups,
        }
    }

    /// The entries of one `group:NAME` key: the value (role, metadata, expiry) for each person
    /// of the group, at the key's position; for a directory's group, the key itself.
    pub(super) fn group_members(
        &mut self,
        path: &str,
        name: &str,
        groups: &Groups,
        value: At<RawMember>,
        position: (u64, u64),
    ) -> GroupMembers {
        let Some(group) = groups.get(name) else {
            let mut known: Vec<&str> = groups.keys().map(String::as_str).collect();
            known.sort();
            let known = if known.is_empty() {
                "no group is defined in this file".to_owned()
            } else {
                format!("the groups are {}", known.join(", "))
            };
            self.error(position, path, format!("unknown group `{name}`; {known}"));
            return GroupMembers::People(Vec::new());
        };
        let template = self.member(path, UserRef::Id(String::new()), value, position);
        match group {
            Group::People(people) => GroupMembers::People(match template {
                Some(template) => people
                    .iter()
                    .map(|(user, _)| DesiredMember {
                        user: user.clone(),
                        ..template.clone()
                    })
                    .collect(),
                None => Vec::new(),
            }),
            Group::Invalid => GroupMembers::People(Vec::new()),
            Group::Directory {
                source,
                allow_empty,
            } => GroupMembers::Directory(template.map(|template| GroupEntry {
                name: Arc::from(name),
                source: source.clone(),
                allow_empty: *allow_empty,
                template,
                file: self.origin(position).file,
                in_rule: false,
            })),
        }
    }

    /// Joins an organization's (or the rule's) direct entries and its group entries in
    /// precedence order: a direct entry beats a group entry for the same person; two group
    /// entries that agree are one, and two that disagree are an error naming both lines.
    pub(super) fn with_groups(
        &mut self,
        path: &str,
        mut members: Vec<DesiredMember>,
        grouped: Vec<(Arc<str>, Vec<DesiredMember>)>,
        in_rule: bool,
    ) -> (Vec<DesiredMember>, Vec<(usize, Source)>) {
        let mut sources = Vec::new();
        let direct: HashMap<UserRef, usize> = members
            .iter()
            .enumerate()
            .map(|(index, member)| (member.user.clone(), index))
            .collect();
        let mut from_groups: HashMap<UserRef, (usize, Arc<str>)> = HashMap::new();
        for (name, entries) in grouped {
            let start = members.len();
            for member in entries {
                if direct.contains_key(&member.user) {
                    continue;
                }
                if let Some((index, first_group)) = from_groups.get(&member.user) {
                    let first = &members[*index];
                    if !agree(first, &member) {
                        let position = (
                            u64::from(member.position.line),
                            u64::from(member.position.column),
                        );
                        self.error(
                            position,
                            path,
                            format!(
                                "`{}` gets {} from `group:{first_group}` (line {}) and {} from `group:{name}` (line {}); give both entries the same role and metadata, or list the person directly",
                                member.user,
                                first.role,
                                first.position.line,
                                member.role,
                                member.position.line
                            ),
                        );
                    }
                    continue;
                }
                from_groups.insert(member.user.clone(), (members.len(), name.clone()));
                members.push(member);
            }
            if members.len() > start {
                let source = if in_rule {
                    Source::AllOrganizationsGroup(name)
                } else {
                    Source::Group(name)
                };
                sources.push((start, source));
            }
        }
        (members, sources)
    }

    /// Checks `all_organizations`.
    pub(super) fn all_organizations(
        &mut self,
        raw: At<RawAllOrganizations>,
        groups: &Groups,
        metadata_mode: MetadataMode,
        invitations: Option<Box<Invitations>>,
    ) -> AllOrganizations {
        let origin = self.origin(yaml::position(&raw));
        let raw = raw.value;
        let mut except = Vec::new();
        for entry in raw.except.unwrap_or_default() {
            let text = entry.value.trim();
            if text.is_empty() || text.contains(char::is_whitespace) {
                self.error(
                    yaml::position(&entry),
                    "all_organizations.except",
                    format!("`{}` is not an organization ID or slug", entry.value),
                );
                continue;
            }
            except.push(OrgRef::parse(text));
        }
        let mut listed = match raw.members {
            Some(members) => self.members("all_organizations", members.value.0, groups, true),
            None => Listed::default(),
        };
        // Its direct entries are `AllOrganizations` too.
        listed.sources.insert(0, (0, Source::AllOrganizations));
        AllOrganizations {
            except,
            members: listed.members,
            sources: listed.sources,
            directory_groups: listed.directory_groups,
            metadata_mode,
            invitations,
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::desired::{Source, load_files};
    use std::path::PathBuf;

    fn load(text: &str) -> Result<crate::desired::DesiredState, Vec<String>> {
        load_files(&[(PathBuf::from("m.yaml"), text.to_owned())])
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    const GROUPS: &str = "version: 1\ngroups:\n  support: [alice@example.com, user_2bob]\n  oncall: [user_2bob, carol@example.com]\n";

    #[test]
    fn a_group_key_lists_each_person_and_a_direct_entry_wins() {
        let text = format!(
            "{GROUPS}organizations:\n  acme:\n    members:\n      group:support: member\n      alice@example.com: admin\n"
        );
        let state = load(&text).unwrap();
        let acme = &state.organizations[0];
        let people: Vec<(String, &str)> = acme
            .members
            .iter()
            .map(|m| (m.user.to_string(), m.role.as_str()))
            .collect();
        assert_eq!(
            people,
            [
                ("alice@example.com".to_owned(), "org:admin"),
                ("user_2bob".to_owned(), "org:member")
            ]
        );
        assert_eq!(acme.source_of(0), &Source::Direct);
        assert_eq!(acme.source_of(1), &Source::Group("support".into()));
        assert_eq!(state.groups, 2);
    }

    #[test]
    fn two_groups_that_disagree_are_invalid_naming_both_lines() {
        let text = format!(
            "{GROUPS}organizations:\n  acme:\n    members:\n      group:support: member\n      group:oncall: admin\n"
        );
        let errors = load(&text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("m.yaml:9:7"), "{errors:?}");
        assert!(
            errors[0].contains("`group:support` (line 8)")
                && errors[0].contains("`group:oncall` (line 9)"),
            "{errors:?}"
        );
        // Agreeing entries are one.
        let agreeing = text.replace("group:oncall: admin", "group:oncall: member");
        assert_eq!(load(&agreeing).unwrap().organizations[0].members.len(), 3);
    }

    #[test]
    fn unknown_nested_empty_and_bad_groups_are_invalid() {
        let unknown =
            "version: 1\norganizations:\n  acme:\n    members:\n      group:nope: member\n";
        assert!(
            load(unknown).unwrap_err()[0]
                .contains("m.yaml:5:7: organizations.acme.members: unknown group `nope`")
        );
        let nested = "version: 1\ngroups:\n  a: [user_1]\n  b: [group:a]\norganizations: {}\n";
        assert!(
            load(nested).unwrap_err()[0]
                .contains("m.yaml:4:7: groups.b: `group:a`: a group cannot name another group")
        );
        let empty = "version: 1\ngroups:\n  a: []\norganizations: {}\n";
        assert!(load(empty).unwrap_err()[0].contains("groups.a: the group is empty"));
        let bad = "version: 1\ngroups:\n  a: [alice]\norganizations: {}\n";
        assert!(load(bad).unwrap_err()[0].contains("m.yaml:3:7: groups.a: `alice` is neither"));
    }

    #[test]
    fn all_organizations_reads_except_members_and_groups() {
        let text = format!(
            "{GROUPS}all_organizations:\n  except: [org_2internal, sandbox]\n  members:\n    group:support: org:support\n    user_2auditor: {{role: viewer, public_metadata: {{staff: true}}}}\norganizations: {{}}\n"
        );
        let state = load(&text).unwrap();
        let rule = state.all_organizations.unwrap();
        assert!(rule.excepts("org_2internal", None) && rule.excepts("org_x", Some("sandbox")));
        assert!(!rule.excepts("org_y", Some("acme")));
        let people: Vec<String> = rule.members.iter().map(|m| m.user.to_string()).collect();
        assert_eq!(people, ["user_2auditor", "alice@example.com", "user_2bob"]);
        let organization = rule.organization("org_y");
        assert!(!organization.prune);
        assert_eq!(organization.source_of(0), &Source::AllOrganizations);
        assert_eq!(
            organization.source_of(2),
            &Source::AllOrganizationsGroup("support".into())
        );
    }

    #[test]
    fn the_rule_joins_named_organizations_and_adds_the_others_it_does_not_except() {
        let text = "version: 1\nall_organizations:\n  except: [sandbox]\n  members: {user_9: member}\norganizations:\n  acme:\n    members: {user_1: admin}\n  org_2:\n    members: {user_2: admin}\n";
        let mut state = load(text).unwrap();
        let rule = state.all_organizations.take().unwrap();
        let reached = [
            ("org_1", Some("acme")),
            ("org_2", Some("beta")),
            ("org_3", Some("sandbox")),
            ("org_4", None),
        ];
        let applied = rule.apply(&mut state.organizations, &reached, |key| {
            (key.as_str() == "acme").then(|| "org_1".to_owned())
        });
        assert_eq!(applied.named, 2);
        assert_eq!(applied.added, [3], "org_4 only: sandbox is excepted");
        let keys: Vec<&str> = state.organizations.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["acme", "org_2", "org_4"]);
        assert_eq!(state.organizations[0].members.len(), 2, "joined");
        assert!(
            !state.organizations[2].prune,
            "an added organization is never pruned"
        );
    }
}
