//! The desired-state loader never panics: arbitrary text, and valid files with bytes flipped,
//! end in a value or in diagnostics (the cargo-fuzz target in fuzz/ explores further).

use std::path::PathBuf;

use membersync::desired::load_files;
use proptest::prelude::*;

const VALID: &str = include_str!("../config/membersync.example.yaml");

fn load(text: &str) {
    let input = [(PathBuf::from("p.yaml"), text.to_owned())];
    if let Err(error) = load_files(&input) {
        assert!(!error.0.is_empty());
        let lines = text.lines().count().max(1) as u64 + 1;
        for diagnostic in &error.0 {
            let rendered = diagnostic.to_string();
            assert!(rendered.starts_with("p.yaml"), "{rendered}");
            if let Some((line, _)) = diagnostic.position {
                assert!(line <= lines, "line {line} of {lines}: {rendered}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        load(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[a-z_:@ \\n\\-\\[\\]{}&*!|>'\"#0-9.]{0,400}") {
        load(&format!("version: 1\norganizations:\n{text}"));
    }

    #[test]
    fn a_valid_file_with_a_few_bytes_changed_never_panics(
        edits in proptest::collection::vec((0usize..VALID.len(), any::<u8>()), 1..6)
    ) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, byte) in edits {
            bytes[at] = byte;
        }
        if let Ok(text) = String::from_utf8(bytes) {
            load(&text);
        }
    }
}
