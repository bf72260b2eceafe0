//! The CI recipes in deploy/ci parse as YAML and call membersync only with flags it has.

use clap::CommandFactory;
use membersync::cli::Cli;

fn recipes() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ci");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.display().to_string(), text)
        })
        .collect()
}

#[test]
fn every_recipe_is_valid_yaml() {
    for (path, text) in recipes() {
        let parsed: Result<serde_json::Value, _> = serde_saphyr::from_str(&text);
        assert!(parsed.is_ok(), "{path}: {parsed:?}");
    }
}

#[test]
fn every_membersync_call_in_a_recipe_uses_documented_flags() {
    let mut cli = Cli::command();
    cli.build();
    let mut calls = 0;
    for (path, text) in recipes() {
        for line in text.lines() {
            let line = line.trim_start_matches([' ', '-']);
            let Some(rest) = line.split("membersync ").nth(1).filter(|_| {
                line.starts_with("membersync ") || line.starts_with("run: membersync ")
            }) else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap();
            let command = cli
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{path}: no command `{name}` in `{line}`"));
            for flag in words.filter_map(|w| w.strip_prefix("--")) {
                let flag = flag.split('=').next().unwrap();
                assert!(
                    command.get_arguments().any(|a| a.get_long() == Some(flag)),
                    "{path}: `membersync {name}` has no --{flag} (in `{line}`)"
                );
            }
            calls += 1;
        }
    }
    assert!(calls >= 6, "{calls} calls found");
}
