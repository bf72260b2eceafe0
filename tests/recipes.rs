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

#[test]
fn the_kustomization_lists_every_manifest_and_only_existing_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let text = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let kustomization: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut listed: Vec<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present);
}

#[test]
fn the_manifests_run_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let cronjob = std::fs::read_to_string(dir.join("cronjob.yaml")).unwrap();
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    for text in [&cronjob, &deployment] {
        for needle in [
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "allowPrivilegeEscalation: false",
            "drop: [\"ALL\"]",
            "type: RuntimeDefault",
            "CLERK_SECRET_KEY_FILE",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
    assert!(cronjob.contains("concurrencyPolicy: Forbid"));
    assert!(deployment.contains("path: /healthz") && deployment.contains("path: /readyz"));
    // The daemon's arguments are flags it has.
    let mut cli = Cli::command();
    cli.build();
    let daemon = cli.find_subcommand("daemon").unwrap();
    for flag in ["interval", "listen"] {
        assert!(daemon.get_arguments().any(|a| a.get_long() == Some(flag)));
    }
}

#[test]
fn the_recipes_post_one_markdown_comment_and_update_it_in_place() {
    let marker = membersync::plan::markdown::MARKER;
    for (path, text) in recipes() {
        assert!(
            text.contains("--output markdown"),
            "{path}: the plan is Markdown"
        );
        assert!(
            text.contains(marker),
            "{path}: finds its comment by the plan's first line"
        );
        if path.ends_with("github-actions.yml") {
            assert!(
                text.contains("--method PATCH"),
                "{path}: updates the comment"
            );
            assert!(
                text.contains("GITHUB_STEP_SUMMARY"),
                "{path}: the job summary"
            );
            assert!(
                !text.contains("gh pr comment"),
                "{path}: not a new comment per push"
            );
        } else {
            assert!(text.contains("-X PUT"), "{path}: updates the note");
        }
    }
}

#[test]
fn the_webhook_overlay_exposes_only_the_webhook_path() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/webhooks");
    let kustomization: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    for resource in kustomization["resources"].as_array().unwrap() {
        let resource = resource.as_str().unwrap();
        assert!(dir.join(resource).exists(), "{resource}");
    }
    for patch in kustomization["patches"].as_array().unwrap() {
        let path = patch["path"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(path)).unwrap();
        assert!(text.contains("CLERK_WEBHOOK_SECRET_FILE"), "{path}");
    }
    let ingress: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("ingress.yaml")).unwrap())
            .unwrap();
    let paths: Vec<(String, String)> = ingress["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["http"]["paths"].as_array().unwrap().clone())
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["pathType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(paths, [("/webhooks/clerk".to_owned(), "Exact".to_owned())]);
}
