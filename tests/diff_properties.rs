//! Properties of the diff over random live and desired states.

use std::collections::HashMap;

use membersync::desired::{MetadataMode, Role};
use membersync::plan::metadata::{apply_patch, expected};
use membersync::plan::{Action, Observed, Plan, Target, TargetMember, diff};
use proptest::prelude::*;
use serde_json::{Map, Value};

const ROLES: [&str; 3] = ["org:admin", "org:member", "org:billing"];

fn metadata() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        "[a-c]",
        prop_oneof![
            Just(Value::from(1)),
            Just(Value::from("x")),
            Just(Value::Bool(true))
        ],
        0..3,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn observed() -> impl Strategy<Value = Vec<Observed>> {
    prop::collection::btree_map(0u8..12, (0usize..3, metadata(), metadata()), 0..10).prop_map(
        |members| {
            members
                .into_iter()
                .map(|(user, (role, public, private))| Observed {
                    user_id: format!("user_{user}").into(),
                    email: None,
                    role: Role::observed(ROLES[role]),
                    public_metadata: public.into(),
                    private_metadata: private.into(),
                })
                .collect()
        },
    )
}

fn target() -> impl Strategy<Value = Target> {
    let member = (
        0usize..3,
        prop::option::of(metadata()),
        prop::option::of(metadata()),
    );
    (
        prop::collection::btree_map(0u8..12, member, 0..10),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(0u8..12, 0..2),
    )
        .prop_map(|(members, prune, exact, ignore)| Target {
            organization_id: "org_p".into(),
            label: None,
            prune,
            metadata_mode: if exact {
                MetadataMode::Exact
            } else {
                MetadataMode::Merge
            },
            members: members
                .into_iter()
                .map(|(user, (role, public, private))| TargetMember {
                    user_id: format!("user_{user}"),
                    email: None,
                    role: Role::parse(ROLES[role]).unwrap(),
                    public_metadata: public.map(Into::into),
                    private_metadata: private.map(Into::into),
                    source: None,
                })
                .collect(),
            ignore: ignore.into_iter().map(|u| format!("user_{u}")).collect(),
            pending: Vec::new(),
            ignore_emails: Vec::new(),
            invitations: None,
            invitees: Vec::new(),
            unavailable: None,
            fields: None,
        })
}

type State = HashMap<String, (String, Map<String, Value>, Map<String, Value>)>;

fn state_of(live: &[Observed]) -> State {
    live.iter()
        .map(|m| {
            (
                m.user_id.to_string(),
                (
                    m.role.to_string(),
                    m.public_metadata.to_map(),
                    m.private_metadata.to_map(),
                ),
            )
        })
        .collect()
}

/// Applies one change as Clerk would.
fn apply_change(state: &mut State, change: &membersync::plan::Change) {
    let part = |name: &str| {
        change
            .metadata_patch
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(Value::as_object)
            .cloned()
    };
    match change.action {
        Action::Create => {
            let role = change.role.clone().unwrap();
            state.insert(
                change.user_id.clone(),
                (
                    role,
                    part("public_metadata").unwrap_or_default(),
                    part("private_metadata").unwrap_or_default(),
                ),
            );
        }
        Action::UpdateRole => {
            state.get_mut(&change.user_id).unwrap().0 = change.role.clone().unwrap()
        }
        Action::UpdateMetadata => {
            let entry = state.get_mut(&change.user_id).unwrap();
            if let Some(patch) = part("public_metadata") {
                apply_patch(&mut entry.1, &patch);
            }
            if let Some(patch) = part("private_metadata") {
                apply_patch(&mut entry.2, &patch);
            }
        }
        Action::Delete => {
            state.remove(&change.user_id);
        }
        Action::Invite | Action::RevokeInvitation => {
            panic!("a target without invitations planned {change:?}")
        }
    }
}

fn admins(state: &State) -> usize {
    state
        .values()
        .filter(|(role, ..)| role == "org:admin")
        .count()
}

fn run(target: &Target, live: &[Observed]) -> Plan {
    diff(
        std::slice::from_ref(target),
        &HashMap::from([(target.organization_id.clone(), live.to_vec())]),
    )
}

proptest! {
    #[test]
    fn a_converged_state_plans_nothing(live in observed()) {
        let target = Target {
            organization_id: "org_p".into(), label: None, prune: true, metadata_mode: MetadataMode::Exact,
            members: live.iter().map(|m| TargetMember {
                user_id: m.user_id.to_string(), email: None, role: Role::parse(m.role.as_str()).unwrap(),
                public_metadata: Some(m.public_metadata.clone()), private_metadata: Some(m.private_metadata.clone()),
                source: None,
            }).collect(),
            ignore: vec![], pending: vec![],
            ignore_emails: vec![], invitations: None, invitees: vec![], unavailable: None, fields: None,
        };
        prop_assert!(run(&target, &live).is_empty());
    }

    #[test]
    fn applying_the_plan_yields_the_desired_state(target in target(), live in observed()) {
        let plan = run(&target, &live);
        let mut state = state_of(&live);
        for change in plan.changes() {
            apply_change(&mut state, change);
        }
        let before = state_of(&live);
        for member in target.members.iter().filter(|m| !target.ignore.contains(&m.user_id)) {
            let (role, public, private) = &state[&member.user_id];
            prop_assert_eq!(role, member.role.as_str());
            let old = before.get(&member.user_id);
            let exact = target.metadata_mode == MetadataMode::Exact;
            if let Some(declared) = &member.public_metadata {
                let current = old.map(|o| o.1.clone()).unwrap_or_default();
                let want = if old.is_some() { expected(&current, declared, exact) } else { expected(&Map::new(), declared, true) };
                prop_assert_eq!(public, &want);
            }
            if let Some(declared) = &member.private_metadata {
                let current = old.map(|o| o.2.clone()).unwrap_or_default();
                let want = if old.is_some() { expected(&current, declared, exact) } else { expected(&Map::new(), declared, true) };
                prop_assert_eq!(private, &want);
            }
        }
        for user in state.keys() {
            let listed = target.members.iter().any(|m| &m.user_id == user);
            let ignored = target.ignore.contains(user);
            if target.prune && !listed && !ignored {
                prop_assert!(false, "{} should have been deleted", user);
            }
        }
        // A second plan from the result is empty.
        let after: Vec<Observed> = state.iter().map(|(user, (role, public, private))| Observed {
            user_id: user.as_str().into(), email: None, role: Role::observed(role), public_metadata: public.clone().into(), private_metadata: private.clone().into(),
        }).collect();
        prop_assert!(run(&target, &after).is_empty());
    }

    #[test]
    fn no_prefix_of_the_changes_leaves_the_organization_without_an_admin(target in target(), live in observed()) {
        let plan = run(&target, &live);
        let mut state = state_of(&live);
        let initial = admins(&state);
        let final_admins = plan.organizations[0].admins_after;
        for change in plan.changes() {
            apply_change(&mut state, change);
            if initial > 0 && final_admins > 0 {
                prop_assert!(admins(&state) > 0, "no admin after {:?}", change);
            }
        }
        prop_assert_eq!(admins(&state), final_admins);
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order(target in target(), live in observed()) {
        let mut reversed_target = target.clone();
        reversed_target.members.reverse();
        let mut reversed_live = live.clone();
        reversed_live.reverse();
        prop_assert_eq!(run(&target, &live), run(&reversed_target, &reversed_live));
    }
}
