//! Plans where reviewers read them (docs/ci.md: "CI recipes"), through the real binary: the Markdown
//! plan, the JSON Schema of the file, and shell completions.

mod common;

use common::*;

#[tokio::test]
async fn the_markdown_plan_has_every_change_in_a_diff_block() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "markdown"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("<!-- membersync-plan -->\n### membersync plan: 2 create, 1 update_role, 1 update_metadata, 1 delete\n"), "{text}");
    let block = text
        .split("```diff\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect(&text);
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 5, "{block}");
    assert!(lines.contains(&"+ user_4 org:member"), "{block}");
    assert!(
        lines.contains(&"- user_3 (three@example.com) org:member"),
        "{block}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("~ user_2 (two@example.com) role org:member → org:billing")),
        "{block}"
    );
    assert_eq!(writes(&simulator), 0);
}

#[tokio::test]
async fn a_refused_apply_says_so_in_bold_at_the_top_of_the_markdown() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &[
            "apply",
            "-f",
            &file,
            "--output",
            "markdown",
            "--max-deletes",
            "0",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stdout(&output);
    let bold = text
        .find("**Refused by a safety limit: the plan deletes 1 of")
        .expect(&text);
    assert!(bold < text.find("```diff").unwrap(), "{text}");
    assert_eq!(writes(&simulator), 0);

    let applied = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--output", "markdown"],
    )
    .await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert!(
        stdout(&applied).contains("### membersync apply: 5 applied, 0 failed, 0 skipped"),
        "{}",
        stdout(&applied)
    );
}

#[tokio::test]
async fn completions_are_printed_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = run(dir.path(), &["completions", shell], &[]).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = stdout(&output);
        assert!(script.contains("membersync"), "{shell}");
        assert!(
            script.contains("max-deletes"),
            "{shell}: the flags are in it"
        );
    }
    let bad = run(dir.path(), &["completions", "tcsh"], &[]).await;
    assert_eq!(bad.status.code(), Some(2));
}

/// The schema as `membersync schema` prints it.
async fn printed_schema() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["schema"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("the schema is JSON")
}

fn yaml_as_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_shipped_schema_is_the_printed_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["schema"], &[]).await;
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/membersync.schema.json"
    ))
    .unwrap();
    assert_eq!(
        stdout(&output),
        shipped,
        "schema/membersync.schema.json is stale: run `membersync schema > schema/membersync.schema.json`"
    );
    let schema = printed_schema().await;
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[tokio::test]
async fn the_schema_accepts_every_valid_file_and_rejects_structural_faults() {
    let schema = printed_schema().await;
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut valid: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("tests/fixtures/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    valid.push(root.join("config/membersync.example.yaml"));
    valid.push(root.join("config/demo/membersync.yaml"));
    for path in &valid {
        let instance = yaml_as_json(path);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} is valid, the schema says: {errors:?}",
            path.display()
        );
    }
    // Faults of structure (the others need Clerk or the loader's own checks).
    for name in [
        "unknown-field-top",
        "unknown-field-defaults",
        "unknown-field-organization",
        "unknown-field-member",
        "missing-version",
        "unsupported-version",
        "version-not-a-number",
        "wrong-type-ignore",
        "wrong-type-member",
        "wrong-type-metadata",
        "wrong-type-metadata-mode",
        "wrong-type-prune",
        "members-not-a-mapping",
        "missing-role",
        "null-member",
        "bad-member-key",
        "empty-role",
        "role-with-space",
        "role-illegal-characters",
        "invitations-expires-out-of-range",
        "invitations-redirect-not-a-url",
        "invitations-send-not-a-bool",
        "invitations-unknown-field",
        "group-names-group",
        "group-empty",
        "directory-missing-fields",
        "directory-inline-secret",
        "organization-fields",
        "organization-fields-wrong-type",
        "domains",
        "domains-unknown-field",
        "authorization-key-formats",
        "authorization-system-permission",
        "authorization-role-set-size",
    ] {
        let path = root.join(format!("tests/fixtures/invalid/{name}.yaml"));
        let instance = yaml_as_json(&path);
        assert!(
            !validator.is_valid(&instance),
            "{name} is invalid, the schema accepts it"
        );
    }
}
