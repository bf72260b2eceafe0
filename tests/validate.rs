//! `membersync validate` through the real binary: every valid fixture passes, every invalid
//! fixture exits 2 with its errors (snapshotted, so wording and positions are reviewed).

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

fn membersync(args: &[&str]) -> Output {
    Command::cargo_bin("membersync")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MEMBERSYNC_FILE")
        .env_remove("CLERK_SECRET_KEY")
        .env_remove("CLERK_SECRET_KEY_FILE")
        .env_remove("CLERK_API_URL")
        .env_remove("MEMBERSYNC_RATE_LIMIT")
        .env_remove("MEMBERSYNC_CONCURRENCY")
        .env_remove("MEMBERSYNC_LOG_FORMAT")
        .args(args)
        .output()
        .unwrap()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_invalid_fixture_exits_2_naming_file_line_and_column() {
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        let file = relative(path);
        let output = membersync(&["validate", "-f", &file]);
        assert_eq!(output.status.code(), Some(2), "{file}: {}", stderr(&output));
        assert!(output.stdout.is_empty(), "{file}: nothing on stdout");
        let text = stderr(&output);
        let located = format!("error: {file}:");
        for line in text.lines().filter(|line| line.starts_with("error:")) {
            let rest = line
                .strip_prefix(&located)
                .unwrap_or_else(|| panic!("{file}: {line}"));
            let mut parts = rest.splitn(3, ':');
            let line_number: u64 = parts.next().unwrap().parse().expect("a line number");
            let column: u64 = parts.next().unwrap().parse().expect("a column");
            assert!(line_number >= 1 && column >= 1, "{line}");
        }
        insta::assert_snapshot!(text);
    });
}

#[test]
fn every_valid_fixture_passes() {
    insta::glob!("fixtures/valid/*.yaml", |path| {
        let file = relative(path);
        let output = membersync(&["validate", "-f", &file]);
        assert_eq!(output.status.code(), Some(0), "{file}: {}", stderr(&output));
        insta::assert_snapshot!(format!(
            "stdout: {}stderr: {}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        ));
    });
}

#[test]
fn the_example_file_is_valid() {
    let output = membersync(&["validate", "-f", "config/membersync.example.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "valid: 1 file, 2 organizations, 7 members\n"
    );
}

#[test]
fn a_member_both_listed_and_ignored_is_a_warning() {
    let output = membersync(&["validate", "-f", "tests/fixtures/valid/ignored-member.yaml"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("warning: tests/fixtures/valid/ignored-member.yaml:7:14: organizations.org_2ign.ignore: `user_2both` is both a member (line 6) and ignored"), "{}", stderr(&output));
}

#[test]
fn a_path_that_does_not_exist_exits_2() {
    let output = membersync(&["validate", "-f", "tests/fixtures/nope.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&output), @r"
    error: tests/fixtures/nope.yaml: no such file or directory
    1 error found; nothing was sent
    ");
}

#[test]
fn the_default_file_is_membersync_yaml_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = |dir: &Path| {
        Command::cargo_bin("membersync")
            .unwrap()
            .current_dir(dir)
            .env_remove("MEMBERSYNC_FILE")
            .arg("validate")
            .output()
            .unwrap()
    };
    let missing = run(dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("membersync.yaml: no such file or directory"));
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid/minimal.yaml"),
        dir.path().join("membersync.yaml"),
    )
    .unwrap();
    assert_eq!(run(dir.path()).status.code(), Some(0));
}

#[test]
fn membersync_file_names_the_files_when_no_flag_does() {
    // Spaces around a comma are not part of a path.
    for files in [
        "tests/fixtures/valid/minimal.yaml,tests/fixtures/valid/flow-style.yaml",
        "tests/fixtures/valid/minimal.yaml, tests/fixtures/valid/flow-style.yaml ",
    ] {
        let output = Command::cargo_bin("membersync")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("MEMBERSYNC_FILE", files)
            .arg("validate")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "valid: 2 files, 2 organizations, 3 members\n"
        );
    }
}

#[test]
fn with_json_logs_the_errors_are_json_lines_too() {
    let output = membersync(&[
        "validate",
        "-f",
        "tests/fixtures/invalid/duplicate-member.yaml",
        "--log-format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(!err.is_empty());
    for line in err.lines() {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert_eq!(parsed["level"], "ERROR", "{line}");
        assert_eq!(parsed["exit_code"], 2, "{line}");
    }
    assert!(err.contains("duplicate-member.yaml:"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
}

#[test]
fn a_directory_with_no_yaml_files_exits_2() {
    let output = membersync(&["validate", "-f", "tests/fixtures/multi/empty-dir"]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&output), @r"
    error: tests/fixtures/multi/empty-dir: the directory holds no *.yaml or *.yml file
    1 error found; nothing was sent
    ");
}

#[test]
fn the_same_organization_in_two_files_exits_2() {
    let output = membersync(&[
        "validate",
        "-f",
        "tests/fixtures/multi/a",
        "-f",
        "tests/fixtures/multi/b",
    ]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&output), @r"
    error: tests/fixtures/multi/b/team.yaml:6:3: organizations.org_2shared: this organization is already declared at tests/fixtures/multi/a/team.yaml:3:3
    1 error found; nothing was sent
    ");
}

#[test]
fn errors_of_several_files_are_all_reported() {
    let output = membersync(&[
        "validate",
        "-f",
        "tests/fixtures/invalid/empty-role.yaml",
        "-f",
        "tests/fixtures/invalid/missing-version.yaml",
        "-f",
        "tests/fixtures/nope.yaml",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).ends_with("4 errors found; nothing was sent\n"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_file_over_16_mib_is_refused_without_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let mut text = String::from("version: 1\norganizations:\n  org_2big:\n    members:\n");
    while text.len() <= 16 * 1024 * 1024 {
        text.push_str("      # padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&big, text).unwrap();
    let output = membersync(&["validate", "-f", big.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("over the limit of 16777216 bytes (16 MiB)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_alias_bomb_is_refused_fast() {
    let started = std::time::Instant::now();
    let output = membersync(&["validate", "-f", "tests/fixtures/invalid/alias-bomb.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("alias bomb"));
    // Not a timing assertion on performance: a generous bound that only an unbounded
    // expansion (10^9 nodes) could break.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn validate_needs_no_secret_key_and_no_network() {
    // An unroutable API URL and no key: validate must not care.
    let output = Command::cargo_bin("membersync")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CLERK_SECRET_KEY")
        .env("CLERK_API_URL", "http://127.0.0.1:9/v1")
        .args(["validate", "-f", "config/membersync.example.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn help_names_every_env_var_and_default() {
    let output = membersync(&["plan", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    // Wrapping may split a phrase over two lines.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "CLERK_API_URL",
        "CLERK_SECRET_KEY_FILE",
        "MEMBERSYNC_RATE_LIMIT",
        "MEMBERSYNC_CONCURRENCY",
        "MEMBERSYNC_LOG_FORMAT",
        "MEMBERSYNC_FILE",
        "default: membersync.yaml",
        "https://api.clerk.com/v1",
    ] {
        assert!(flat.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn validate_lists_only_the_options_it_uses_and_ignores_the_api_variables() {
    let output = membersync(&["validate", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for unused in [
        "--api-url",
        "--secret-key-file",
        "--rate-limit",
        "--concurrency",
        "--request-timeout",
    ] {
        assert!(
            !help.contains(unused),
            "validate --help lists {unused}:\n{help}"
        );
    }
    insta::assert_snapshot!(help);
    // A variable another command reads cannot break validate, nor can a leading API option.
    let minimal = "tests/fixtures/valid/minimal.yaml";
    let output = Command::cargo_bin("membersync")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "-f", minimal])
        .env("MEMBERSYNC_CONCURRENCY", "0")
        .env("MEMBERSYNC_RATE_LIMIT", "fast")
        .env("MEMBERSYNC_REQUEST_TIMEOUT", "never")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let leading = membersync(&[
        "--log-format",
        "json",
        "--rate-limit",
        "40/s",
        "validate",
        "-f",
        minimal,
    ]);
    assert_eq!(leading.status.code(), Some(0));
    // After the subcommand, an option validate does not have is an error.
    let after = membersync(&["validate", "--api-url", "https://api.clerk.com/v1"]);
    assert_eq!(after.status.code(), Some(2));
}
