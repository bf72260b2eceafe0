//! The options an operator and CI rely on, through the real binary against the simulator:
//! private metadata hidden in the text and Markdown plans (kept in JSON and saved plans,
//! shown with `--show-private`), `--org`, the environment variables (and the table in docs/options.md of
//! them, checked against `--help`), `apply --dry-run --out`, a stale saved plan printed as
//! Markdown, no "No changes" before an error, and options before the subcommand.

mod common;

use common::*;
use serde_json::{Value, json};

/// `user_2` of `org_alpha` has private metadata {cost_center: 4200} live; the file sets 1.
const PRIVATE: &str = "version: 1\norganizations:\n  alpha:\n    metadata: merge\n    members:\n      user_1: admin\n      user_2:\n        role: member\n        private_metadata: {cost_center: 1}\n      user_3: member\n      user_5: admin\n      user_4:\n        role: member\n        private_metadata: {badge: secret-4711}\n";

async fn private_setup() -> (membersync::simulator::Simulator, tempfile::TempDir, String) {
    let (simulator, dir, file) = setup(PRIVATE).await;
    simulator.mutate(|state| {
        let member = state
            .memberships
            .iter_mut()
            .find(|m| m.organization_id == "org_alpha" && m.user_id == "user_2")
            .unwrap();
        member
            .private_metadata
            .insert("cost_center".into(), json!(4200));
    });
    (simulator, dir, file)
}

#[tokio::test(flavor = "multi_thread")]
async fn private_values_are_hidden_in_text_and_markdown_and_kept_in_json_and_saved_plans() {
    let (simulator, dir, file) = private_setup().await;
    let text = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let out = stdout(&text);
    assert!(
        out.contains(
            "~ user_2 (two@example.com) private_metadata {cost_center: (private)} → {cost_center: (private)}"
        ),
        "{out}"
    );
    assert!(
        out.contains("+ user_4 org:member with private_metadata {badge: (private)}"),
        "{out}"
    );
    let markdown = membersync(
        &simulator,
        dir.path(),
        &[
            "plan",
            "-f",
            &file,
            "--output",
            "markdown",
            "--out",
            "plan.json",
        ],
    )
    .await;
    let comment = stdout(&markdown);
    assert!(comment.contains("{cost_center: (private)}"), "{comment}");
    for (shown, name) in [(&out, "text"), (&comment, "markdown")] {
        assert!(
            !shown.contains("4200")
                && !shown.contains("secret-4711")
                && !shown.contains("\"cost_center\":1"),
            "{name} shows a private value:\n{shown}"
        );
    }
    // Programs get the values: the JSON document and the saved plan.
    let json = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
    )
    .await;
    let document: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let patches: Vec<&Value> = document["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["metadata_patch"])
        .collect();
    assert!(
        patches.contains(&&json!({"private_metadata": {"cost_center": 1}})),
        "{document}"
    );
    assert!(
        patches.contains(&&json!({"private_metadata": {"badge": "secret-4711"}})),
        "{document}"
    );
    let saved = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(saved.contains("secret-4711"), "{saved}");

    // --show-private (or MEMBERSYNC_SHOW_PRIVATE) shows them.
    let shown = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--show-private"],
    )
    .await;
    assert!(
        stdout(&shown).contains(r#"private_metadata {"cost_center":4200} → {"cost_center":1}"#),
        "{}",
        stdout(&shown)
    );
    let by_env = run(
        dir.path(),
        &["plan", "-f", &file, "--output", "markdown"],
        &[
            ("CLERK_API_URL", simulator.api_url().as_str()),
            ("CLERK_SECRET_KEY", KEY),
            ("MEMBERSYNC_SHOW_PRIVATE", "true"),
        ],
    )
    .await;
    assert!(
        stdout(&by_env).contains("secret-4711"),
        "{}",
        stdout(&by_env)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_report_hides_private_values_too() {
    let (simulator, dir, file) = private_setup().await;
    let output = membersync(&simulator, dir.path(), &["apply", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(
            "applied  ~ user_2 (two@example.com) private_metadata {cost_center: (private)}"
        ),
        "{out}"
    );
    assert!(
        !out.contains("4200") && !out.contains("secret-4711"),
        "{out}"
    );
    assert!(
        members(&simulator, "org_alpha")
            .iter()
            .any(|m| m.0 == "user_2" && m.3 == json!({"cost_center": 1}))
    );
}

const TWO_ORGS: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      user_4: member\n  org_other:\n    members:\n      user_3: admin\n";

#[tokio::test(flavor = "multi_thread")]
async fn org_plans_only_the_organizations_named_and_reads_no_other() {
    let (simulator, dir, file) = setup(TWO_ORGS).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--org", "alpha"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.starts_with("Only the organizations selected with --org: alpha."),
        "{out}"
    );
    assert!(out.contains("+ user_4 org:member"), "{out}");
    assert!(!out.contains("org_other"), "{out}");
    let requests = simulator.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.path.contains("org_other") && !r.query.contains("org_other")),
        "{requests:?}"
    );
    // The other one alone, through MEMBERSYNC_ORG (comma-separated, spaces allowed).
    let both = run(
        dir.path(),
        &["plan", "-f", &file, "--output", "json"],
        &[
            ("CLERK_API_URL", simulator.api_url().as_str()),
            ("CLERK_SECRET_KEY", KEY),
            ("MEMBERSYNC_ORG", "alpha, org_other"),
        ],
    )
    .await;
    assert_eq!(both.status.code(), Some(0), "{}", stderr(&both));
    let document: Value = serde_json::from_str(&stdout(&both)).unwrap();
    let deletes: Vec<&Value> = document["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["organization_id"] == "org_other")
        .collect();
    assert_eq!(deletes.len(), 1, "{document}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_org_the_files_do_not_manage_is_invalid_input_and_sends_nothing() {
    let (simulator, dir, file) = setup(TWO_ORGS).await;
    for args in [
        vec!["plan", "-f", &file, "--org", "org_alpha"],
        vec!["apply", "-f", &file, "--org", "nope"],
    ] {
        let output = membersync(&simulator, dir.path(), &args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains("names no organization the files manage")
                && stderr(&output).contains("they name: alpha, org_other"),
            "{}",
            stderr(&output)
        );
    }
    assert!(
        simulator.requests().is_empty(),
        "{:?}",
        simulator.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_safety_limits_apply_to_the_selected_organizations_and_a_saved_plan_records_them() {
    // alpha: 4 members, 1 deleted (25%); org_other: 2 members, both kept.
    let text = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n  org_other:\n    prune: false\n    members:\n      user_1: member\n";
    let (simulator, dir, file) = setup(text).await;
    // Over the 6 memberships of both, one deletion is 17%; over alpha's 4, it is 25%.
    let all = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--max-deletes", "20%"],
    )
    .await;
    assert!(
        !stdout(&all).contains("apply would refuse"),
        "{}",
        stdout(&all)
    );
    let one = membersync(
        &simulator,
        dir.path(),
        &[
            "plan",
            "-f",
            &file,
            "--org",
            "alpha",
            "--max-deletes",
            "20%",
            "--out",
            "alpha.json",
        ],
    )
    .await;
    assert!(
        stdout(&one).contains("apply would refuse this plan"),
        "{}",
        stdout(&one)
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("alpha.json")).unwrap())
            .unwrap();
    assert_eq!(saved["plan"]["selected"], json!(["alpha"]));
    let applied = membersync(&simulator, dir.path(), &["apply", "--plan", "alpha.json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert!(
        stdout(&applied).starts_with("Only the organizations selected with --org: alpha."),
        "{}",
        stdout(&applied)
    );
    // --org with --plan makes no sense: the saved plan has its own.
    let both = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "alpha.json", "--org", "alpha"],
    )
    .await;
    assert_eq!(both.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_all_organizations_only_the_selected_organizations_get_the_rule() {
    let text = "version: 1\nall_organizations:\n  members:\n    user_6: member\norganizations:\n  alpha:\n    prune: false\n    members:\n      user_1: admin\n";
    let (simulator, dir, file) = setup(text).await;
    let other = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--org", "other"],
    )
    .await;
    assert_eq!(other.status.code(), Some(0), "{}", stderr(&other));
    let has_six = |org: &str| members(&simulator, org).iter().any(|m| m.0 == "user_6");
    assert!(has_six("org_other"));
    assert!(!has_six("org_alpha"), "alpha was not selected");
    // The named organization under its other name is that entry, joined by the rule.
    let alpha = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--org", "org_alpha"],
    )
    .await;
    assert_eq!(alpha.status.code(), Some(0), "{}", stderr(&alpha));
    assert!(has_six("org_alpha"));
    // An organization that does not exist: reported, nothing written.
    let ghost = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--org", "org_ghost"],
    )
    .await;
    assert_eq!(ghost.status.code(), Some(1));
    assert!(
        stderr(&ghost).contains("organization `org_ghost` does not exist"),
        "{}",
        stderr(&ghost)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_sets_what_a_cronjob_or_ci_would_set() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let url = simulator.api_url();
    let env = |extra: &[(&'static str, &'static str)]| {
        let mut all = vec![
            ("CLERK_API_URL", url.clone()),
            ("CLERK_SECRET_KEY", KEY.to_owned()),
        ];
        all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        all
    };
    let with = async |args: &[&str], extra: &[(&'static str, &'static str)]| {
        let vars = env(extra);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(dir.path(), args, &vars).await
    };
    let json = with(&["plan", "-f", &file], &[("MEMBERSYNC_OUTPUT", "json")]).await;
    assert!(
        serde_json::from_str::<Value>(&stdout(&json)).is_ok(),
        "{}",
        stdout(&json)
    );
    let detailed = with(
        &["plan", "-f", &file],
        &[("MEMBERSYNC_DETAILED_EXITCODE", "true")],
    )
    .await;
    assert_eq!(detailed.status.code(), Some(4));
    let refused = with(&["apply", "-f", &file], &[("MEMBERSYNC_MAX_DELETES", "0")]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let not_forced = with(
        &["apply", "-f", &file],
        &[
            ("MEMBERSYNC_MAX_DELETES", "0"),
            ("MEMBERSYNC_FORCE", "false"),
        ],
    )
    .await;
    assert_eq!(not_forced.status.code(), Some(3));
    assert_eq!(writes(&simulator), 0);
    let forced = with(
        &["apply", "-f", &file],
        &[("MEMBERSYNC_MAX_DELETES", "0"), ("MEMBERSYNC_FORCE", "1")],
    )
    .await;
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_dry_run_saves_a_plan_with_out_like_plan() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "--dry-run", "-f", &file, "--out", "dry.json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let saved = std::fs::read_to_string(dir.path().join("dry.json")).unwrap();
    assert!(saved.contains("\"format\": \"membersync-plan\""), "{saved}");
    assert_eq!(writes(&simulator), 0);
    // A real apply does not save plans.
    let real = membersync(
        &simulator,
        dir.path(),
        &["apply", "-f", &file, "--out", "x.json"],
    )
    .await;
    assert_eq!(real.status.code(), Some(2));
    assert!(
        stderr(&real).contains("apply --dry-run"),
        "{}",
        stderr(&real)
    );
    let applied = membersync(&simulator, dir.path(), &["apply", "--plan", "dry.json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_eq!(members(&simulator, "org_alpha"), desired_alpha());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_saved_plan_prints_a_markdown_document_with_the_refusal_in_bold() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let planned = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--out", "p.json"],
    )
    .await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    simulator.mutate(|state| {
        let member = state
            .memberships
            .iter_mut()
            .find(|m| m.organization_id == "org_alpha" && m.user_id == "user_3")
            .unwrap();
        member.role = "org:billing".into();
    });
    let output = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "p.json", "--output", "markdown"],
    )
    .await;
    assert_eq!(output.status.code(), Some(3));
    let comment = stdout(&output);
    assert!(comment.starts_with("<!-- membersync-plan -->"), "{comment}");
    assert!(
        comment.contains(
            "**Refused: refused to apply p.json: 1 membership(s) it touches changed since"
        ),
        "{comment}"
    );
    assert!(comment.contains("```diff"), "{comment}");
    assert_eq!(writes(&simulator), 0);
    let json = membersync(
        &simulator,
        dir.path(),
        &["apply", "--plan", "p.json", "--output", "json"],
    )
    .await;
    let document: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        document["refused"].as_array().unwrap().len(),
        1,
        "{document}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_changes_is_not_claimed_before_an_error_that_ends_the_run() {
    let text = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n      user_2: member\n      user_3: member\n      user_5: admin\n  org_ghost:\n    members:\n      user_1: admin\n";
    let (simulator, dir, file) = setup(text).await;
    for command in ["plan", "apply"] {
        let output = membersync(&simulator, dir.path(), &[command, "-f", &file]).await;
        assert_eq!(output.status.code(), Some(1), "{command}");
        let out = stdout(&output);
        assert!(!out.contains("match the desired state"), "{command}: {out}");
        assert!(out.contains("do not exist: org_ghost"), "{command}: {out}");
    }
    let markdown = membersync(
        &simulator,
        dir.path(),
        &["plan", "-f", &file, "--output", "markdown"],
    )
    .await;
    assert!(
        stdout(&markdown).contains("**Not found**"),
        "{}",
        stdout(&markdown)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_json_logs_the_final_error_is_a_json_line() {
    let (simulator, dir, file) =
        setup("version: 1\norganizations:\n  org_ghost:\n    members:\n      user_1: admin\n")
            .await;
    let output = membersync(
        &simulator,
        dir.path(),
        &["--log-format", "json", "plan", "-f", &file],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let lines: Vec<Value> = err
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["exit_code"], 1);
    assert!(
        last["message"].as_str().unwrap().contains("org_ghost"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_options_go_before_the_subcommand_too_and_the_one_after_wins() {
    let (simulator, dir, file) = setup(DESIRED).await;
    let before = run(
        dir.path(),
        &[
            "--api-url",
            &simulator.api_url(),
            "--concurrency",
            "2",
            "plan",
            "-f",
            &file,
        ],
        &[
            ("CLERK_SECRET_KEY", KEY),
            ("CLERK_API_URL", "http://127.0.0.1:9/v1"),
        ],
    )
    .await;
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let after_wins = run(
        dir.path(),
        &[
            "--api-url",
            "http://127.0.0.1:9/v1",
            "plan",
            "--api-url",
            &simulator.api_url(),
            "-f",
            &file,
        ],
        &[("CLERK_SECRET_KEY", KEY)],
    )
    .await;
    assert_eq!(after_wins.status.code(), Some(0), "{}", stderr(&after_wins));
}

/// The table in docs/options.md of options and environment variables, as (option, variable, commands).
fn readme_table() -> Vec<(String, String, Vec<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/options.md")).unwrap();
    let start = readme
        .find("| option | environment variable | commands | default |")
        .expect("docs/options.md has the table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            // `\|` inside a cell is a literal bar, not a column.
            let line = line.replace("\\|", "/");
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let option = cells[1]
                .split([' ', '`', ','])
                .find(|word| word.starts_with("--"))?
                .to_owned();
            let variable = cells[2].trim_matches('`').to_owned();
            let commands = cells[3].split(", ").map(str::to_owned).collect();
            Some((option, variable, commands))
        })
        .collect()
}

fn help(command: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .args([command, "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_readme_table_of_environment_variables_matches_help() {
    let table = readme_table();
    assert!(table.len() >= 20, "{table:?}");
    let commands = ["validate", "plan", "apply", "export", "daemon"];
    for command in commands {
        let help = help(command);
        // Every variable the help names is in the table, for this command.
        for variable in help
            .split("[env: ")
            .skip(1)
            .map(|rest| rest.split('=').next().unwrap())
        {
            assert!(
                table
                    .iter()
                    .any(|(_, v, c)| v == variable && c.iter().any(|c| c == command)),
                "`{command} --help` names {variable}, which the table in docs/options.md does not give for {command}"
            );
        }
        // Every row of the table for this command is in its help, with its variable.
        for (option, variable, _) in table
            .iter()
            .filter(|(_, _, c)| c.iter().any(|c| c == command))
        {
            let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains(option.as_str()),
                "`{command} --help` lacks {option}"
            );
            assert!(
                flat.contains(&format!("[env: {variable}=")),
                "`{command} --help` lacks {variable} for {option}"
            );
        }
        // And every option the command has (but --help and --version) is in the table.
        let mut cli = <membersync::cli::Cli as clap::CommandFactory>::command();
        cli.build();
        let subcommand = cli.find_subcommand(command).unwrap();
        for option in subcommand
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .filter(|long| !["help", "version"].contains(long))
        {
            let option = format!("--{option}");
            assert!(
                table
                    .iter()
                    .any(|(o, _, c)| *o == option && c.iter().any(|c| c == command)),
                "`{command}` has {option}, which the table in docs/options.md does not list for {command}"
            );
        }
    }
}
