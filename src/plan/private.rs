//! Private metadata in what people read. Clerk's `private_metadata` is meant for the backend
//! only, and the text and Markdown plans end up in terminals, CI logs and pull-request
//! comments that everyone with read access sees. So those plans show private metadata by key,
//! each value as `(private)`, and only the keys a change touches:
//! `private_metadata {cost_center: (private)} → {cost_center: (private), region: (private)}`
//! says that `cost_center` changes and `region` is added. `--show-private` shows the values;
//! the JSON document and saved plans always hold them (programs need them).

use serde_json::{Map, Value};

/// Whether the text and Markdown plans show `private_metadata` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Private {
    /// Each value is `(private)` (the default).
    #[default]
    Hidden,
    /// The values are printed (`--show-private`).
    Shown,
}

impl Private {
    /// `Shown` when asked for with `--show-private`.
    pub fn shown_if(show: bool) -> Private {
        if show {
            Private::Shown
        } else {
            Private::Hidden
        }
    }
}

/// What stands for a hidden value.
pub const HIDDEN: &str = "(private)";

/// `{key: (private), …}` for these keys, in the order given.
pub fn hidden_object<'a>(keys: impl IntoIterator<Item = &'a String>) -> String {
    let entries: Vec<String> = keys
        .into_iter()
        .map(|key| format!("{}: {HIDDEN}", key_text(key)))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// `before → after` of a private metadata change, by key: the keys the patch touches that
/// exist before, and those that exist after.
pub fn hidden_change(before: &Map<String, Value>, patch: &Map<String, Value>) -> String {
    let was = patch.keys().filter(|key| before.contains_key(*key));
    let will = patch
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, _)| key);
    format!("{} → {}", hidden_object(was), hidden_object(will))
}

/// A key as written in the plan: bare when it is a plain word, JSON-quoted otherwise (so that
/// a key holding `, ` or `: ` cannot be misread).
fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_change_names_the_keys_it_touches_and_no_value() {
        let before = object(json!({"cost_center": 4200, "team": "core", "old": 1}));
        let patch = object(json!({"cost_center": 1, "region": "eu", "old": null}));
        let text = hidden_change(&before, &patch);
        assert_eq!(
            text,
            "{cost_center: (private), old: (private)} → {cost_center: (private), region: (private)}"
        );
        assert!(!text.contains("4200") && !text.contains("eu") && !text.contains("team"));
    }

    #[test]
    fn a_key_that_is_not_a_plain_word_is_quoted() {
        let keys = ["plain_key-1.x".to_owned(), "two words, here".to_owned()];
        assert_eq!(
            hidden_object(&keys),
            "{plain_key-1.x: (private), \"two words, here\": (private)}"
        );
    }
}
