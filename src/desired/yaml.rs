//! The one place that knows which YAML crate we use.
//!
//! serde-saphyr replaces serde_yaml (archived upstream, and it silently keeps the last of
//! two duplicate keys). It rejects duplicate keys, reports line and column, and bounds
//! alias expansion, so a hostile file is refused fast and in bounded memory.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};

/// A value with the 1-based line and column of its node: 8 bytes where the parser's own
/// `Spanned` carries two full locations (96 bytes). A large file has a million of these, so the
/// difference is most of what parsing it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub line: u32,
    pub column: u32,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(At {
            line: spanned.referenced.line() as u32,
            column: spanned.referenced.column() as u32,
            value: spanned.value,
        })
    }
}

/// A value's schema is its inner value's: the position is the parser's, not the file's.
impl<T: schemars::JsonSchema> schemars::JsonSchema for At<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Largest desired-state file we read; larger ones are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A parse or type error reported by the YAML layer, with its position (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Parses one YAML document into `T`, refusing duplicate keys and alias bombs.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    // A 16 MiB file holds well under these; they only stop pathological input.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 8_000_000;
    budget.max_nodes = 4_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    budget.max_depth = 32;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 1_000;
    let options = serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        alias_limits: alias_limits,
        with_snippet: false,
        // YAML 1.2: only true/false are booleans; `y`, `no`, `on` in metadata stay strings.
        strict_booleans: true,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let (line, column) = error
            .location()
            .map(|location| (location.line(), location.column()))
            .unwrap_or((0, 0));
        let rendered = error
            .without_snippet()
            .render_with_formatter(&serde_saphyr::UserMessageFormatter);
        // The position is reported separately, so drop the crate's own trailer.
        let trailer = format!(" at line {line}, column {column}");
        let message = plain_words(rendered.strip_suffix(&trailer).unwrap_or(&rendered));
        SyntaxError {
            line,
            column,
            message,
        }
    })
}

/// Rewords the parser's terser messages for people who write YAML, not parsers.
fn plain_words(message: &str) -> String {
    match message {
        "invalid boolean" | "invalid boolean (true or false expected)" => {
            "expected true or false".to_owned()
        }
        "expected sequence start" => {
            "expected a list, like [a, b] or lines starting with `- `".to_owned()
        }
        "expected mapping start" => "expected a mapping of `key: value` lines".to_owned(),
        other if other.starts_with("YAML document too large or too complex") => format!(
            "refused: the document expands beyond membersync's limits (an alias bomb, or nesting too deep): {}",
            other.trim_start_matches("YAML document too large or too complex: ")
        ),
        other => other.to_owned(),
    }
}

/// The 1-based line and column of a positioned value.
pub fn position<T>(at: &At<T>) -> (u64, u64) {
    (u64::from(at.line), u64::from(at.column))
}

/// The dotted key path (`organizations.org_a.members.user_b`) of the node at a position,
/// found by replaying the parser's events up to it. Used to name the key in messages.
pub fn key_path_at(text: &str, line: u64, column: u64) -> String {
    use serde_saphyr::granit_parser::{Event, Parser};

    enum Frame {
        /// `key` is set while that key's value is pending or being read.
        Mapping {
            key: Option<String>,
        },
        Sequence {
            index: usize,
        },
    }

    fn node_done(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Mapping { key }) => *key = None,
            Some(Frame::Sequence { index }) => *index += 1,
            None => {}
        }
    }

    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let start = (span.start.line() as u64, span.start.col() as u64 + 1);
        // Collections that open or close at the position enclose it; a scalar there is it.
        let is_leaf = matches!(event, Event::Scalar(..) | Event::Alias(_));
        if start > (line, column) || (start == (line, column) && is_leaf) {
            // A mapping key exactly at the position is the key the message is about.
            if start == (line, column)
                && let Event::Scalar(value, ..) = &event
                && let Some(Frame::Mapping { key }) = stack.last_mut()
                && key.is_none()
            {
                *key = Some(value.to_string());
            }
            break;
        }
        match event {
            Event::Scalar(value, ..) => match stack.last_mut() {
                Some(Frame::Mapping { key }) if key.is_none() => *key = Some(value.into_owned()),
                _ => node_done(&mut stack),
            },
            Event::Alias(_) => node_done(&mut stack),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some(Frame::Mapping { key }) = stack.last_mut()
                    && key.is_none()
                {
                    // A complex (non-scalar) key; name it generically.
                    *key = Some("?".to_owned());
                }
                stack.push(match event {
                    Event::MappingStart(..) => Frame::Mapping { key: None },
                    _ => Frame::Sequence { index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            _ => {}
        }
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Mapping { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Mapping { key: None } => {}
            Frame::Sequence { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// A YAML mapping kept as an ordered list of entries, each key with its position, so that
/// validation can report duplicates that differ only in case with both line numbers.
#[derive(Debug)]
pub struct Entries<T>(pub Vec<(At<String>, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<At<String>>()? {
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_any(EntriesVisitor(std::marker::PhantomData))
    }
}
