//! Any bytes given to the desired-state loader end in a value or in diagnostics that name a
//! position inside the input — never in a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::PathBuf::from("fuzz.yaml");
    if let Err(error) = membersync::desired::load_files(&[(path, text.to_owned())]) {
        for diagnostic in &error.0 {
            // Rendering a diagnostic must not panic either.
            let _ = diagnostic.to_string();
        }
    }
});
