//! Metadata patches: the minimal JSON merge patch (RFC 7396) that turns what Clerk has into
//! what the file declares, for the metadata merge endpoint (a deep merge where `null` removes);
//! and the metadata a member's declaration sends (the patch of a membership or an invitation
//! that differs, the metadata of a create or an invitation).

use serde_json::{Map, Value};

use super::{Declared, Metadata};

/// The patch that makes `current` exactly `target`: undeclared keys are removed with `null`.
/// `None` when nothing differs.
fn exact_patch(
    current: &Map<String, Value>,
    target: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut patch = Map::new();
    for key in current.keys() {
        if !target.contains_key(key) || target[key].is_null() {
            patch.insert(key.clone(), Value::Null);
        }
    }
    for (key, wanted) in target {
        if wanted.is_null() {
            continue;
        }
        match (current.get(key), wanted) {
            (Some(Value::Object(have)), Value::Object(want)) => {
                if let Some(nested) = exact_patch(have, want) {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            (Some(have), want) if have == want => {}
            (_, want) => {
                patch.insert(key.clone(), without_nulls(want));
            }
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// The patch that sets the declared keys (deeply) and keeps every other key. A declared
/// `null` removes that key. `None` when nothing differs.
fn merge_patch(
    current: &Map<String, Value>,
    declared: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut patch = Map::new();
    for (key, wanted) in declared {
        match (current.get(key), wanted) {
            (None, Value::Null) => {}
            (Some(_), Value::Null) => {
                patch.insert(key.clone(), Value::Null);
            }
            (Some(Value::Object(have)), Value::Object(want)) => {
                if let Some(nested) = merge_patch(have, want) {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            (Some(have), want) if have == want => {}
            (_, want) => {
                patch.insert(key.clone(), without_nulls(want));
            }
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// Applies a merge patch as Clerk does (RFC 7396): objects merge deeply, `null` removes.
pub fn apply_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(nested) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(inner) = slot {
                    apply_patch(inner, nested);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// A value with null object members dropped (a merge patch cannot set a key to null).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The metadata a member ends up with under a declared object: for `exact`, the declared
/// object without nulls; for `merge`, `current` with the declared keys merged in.
pub fn expected(
    current: &Map<String, Value>,
    declared: &Map<String, Value>,
    exact: bool,
) -> Map<String, Value> {
    if exact {
        match without_nulls(&Value::Object(declared.clone())) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    } else {
        let mut result = current.clone();
        apply_patch(&mut result, declared);
        result
    }
}

/// The declared metadata a create (or an invitation) carries in its POST.
pub(crate) fn declared_metadata(declared: &Declared) -> Option<Value> {
    let mut parts = Map::new();
    if let Some(public) = &declared.public_metadata {
        parts.insert(
            "public_metadata".into(),
            Value::Object(expected(&Map::new(), public, true)),
        );
    }
    if let Some(private) = &declared.private_metadata {
        parts.insert(
            "private_metadata".into(),
            Value::Object(expected(&Map::new(), private, true)),
        );
    }
    (!parts.is_empty()).then_some(Value::Object(parts))
}

/// The merge patch that brings this metadata to the declared one, or `None` when nothing
/// differs.
pub(crate) fn metadata_patch(
    declared: &Declared,
    public: &Metadata,
    private: &Metadata,
) -> Option<Value> {
    parts_patch(
        [
            (declared.public_metadata.as_ref(), &**public),
            (declared.private_metadata.as_ref(), &**private),
        ],
        declared.exact,
    )
}

/// One metadata part: as declared (`None`: not managed), and as it is.
pub(crate) type Part<'a> = (Option<&'a Map<String, Value>>, &'a Map<String, Value>);

/// The `{"public_metadata": …, "private_metadata": …}` merge patch that brings each part
/// (declared, current) to the declared one, `exact` or merged; `None` when nothing differs. A
/// part not declared is left out.
pub(crate) fn parts_patch(parts: [Part<'_>; 2], exact: bool) -> Option<Value> {
    let mut patch = Map::new();
    for (name, (wanted, have)) in ["public_metadata", "private_metadata"]
        .into_iter()
        .zip(parts)
    {
        let Some(wanted) = wanted else { continue };
        let part = if exact {
            exact_patch(have, wanted)
        } else {
            merge_patch(have, wanted)
        };
        if let Some(part) = part {
            patch.insert(name.into(), Value::Object(part));
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn exact_removes_undeclared_keys_with_null() {
        let patch = exact_patch(
            &map(json!({"team": "core", "old": 1})),
            &map(json!({"team": "payments"})),
        );
        assert_eq!(
            Value::Object(patch.unwrap()),
            json!({"team": "payments", "old": null})
        );
    }

    #[test]
    fn exact_recurses_into_objects_and_sends_only_differences() {
        let current = map(json!({"a": {"x": 1, "y": 2}, "b": [1, 2]}));
        let target = map(json!({"a": {"x": 1, "z": 3}, "b": [1, 2]}));
        assert_eq!(
            Value::Object(exact_patch(&current, &target).unwrap()),
            json!({"a": {"y": null, "z": 3}})
        );
    }

    #[test]
    fn merge_sets_declared_keys_and_keeps_the_rest() {
        let current = map(json!({"a": {"x": 1}, "keep": true}));
        let declared = map(json!({"a": {"y": 2}}));
        assert_eq!(
            Value::Object(merge_patch(&current, &declared).unwrap()),
            json!({"a": {"y": 2}})
        );
    }

    #[test]
    fn no_patch_when_nothing_differs() {
        let current = map(json!({"a": {"x": 1}, "b": "c"}));
        assert_eq!(exact_patch(&current, &current), None);
        assert_eq!(merge_patch(&current, &map(json!({"a": {"x": 1}}))), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-d]", json_value(), 0..4)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn an_exact_patch_applied_with_merge_semantics_gives_the_declared_object(current in object(), target in object()) {
            let current = expected(&Map::new(), &current, true); // Clerk never stores nulls
            let mut result = current.clone();
            if let Some(patch) = exact_patch(&current, &target) {
                apply_patch(&mut result, &patch);
            }
            prop_assert_eq!(result, expected(&current, &target, true));
        }

        #[test]
        fn a_merge_patch_applied_gives_the_merged_object(current in object(), declared in object()) {
            let current = expected(&Map::new(), &current, true);
            let mut result = current.clone();
            if let Some(patch) = merge_patch(&current, &declared) {
                apply_patch(&mut result, &patch);
            }
            prop_assert_eq!(result, expected(&current, &declared, false));
        }

        #[test]
        fn a_converged_object_needs_no_patch(current in object(), declared in object()) {
            let current = expected(&Map::new(), &current, true);
            let exact = expected(&current, &declared, true);
            prop_assert_eq!(exact_patch(&exact, &declared), None);
            let merged = expected(&current, &declared, false);
            prop_assert_eq!(merge_patch(&merged, &declared), None);
        }
    }
}
