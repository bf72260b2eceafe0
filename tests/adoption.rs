//! Adoption: `export` round trips, `demo` runs end to end, `simulate` serves what the client
//! expects.

mod common;

use std::time::Duration;

use common::{KEY, members, membersync, run, seed, start, stderr, stdout, write_file};
use membersync::simulator::{SimMembership, SimOrganization, SimState, SimUser};
use serde_json::{Map, json};
use tokio::io::AsyncBufReadExt;

/// The seed plus `big` (slug big-team) with 1,200 members, some with metadata, and a user
/// without an email.
fn instance() -> SimState {
    let mut state = seed();
    state.organizations.push(SimOrganization {
        id: "org_big".into(),
        slug: "big-team".into(),
        name: "Big \"Team\"\n#1".into(),
        role_set_key: None,
        max_allowed_memberships: None,
        ..SimOrganization::default()
    });
    state.users.push(SimUser {
        id: "user_noemail".into(),
        emails: vec![],
    });
    for n in 0..1_200 {
        state.users.push(SimUser {
            id: format!("user_b{n}"),
            emails: vec![format!("b{n}@big.example")],
        });
        let public = if n % 100 == 0 {
            json!({"seat": n, "tags": ["y", "no"], "nested": {"a": [1, 2.5, null]}})
        } else {
            json!({})
        };
        state.memberships.push(SimMembership {
            id: format!("orgmem_b{n}"),
            organization_id: "org_big".into(),
            user_id: format!("user_b{n}"),
            role: if n == 0 { "org:admin" } else { "org:member" }.into(),
            public_metadata: public.as_object().cloned().unwrap(),
            private_metadata: if n == 7 {
                json!({"cost": 42, "note": "quote \" and # hash"})
                    .as_object()
                    .cloned()
                    .unwrap()
            } else {
                Map::new()
            },
            created_at: 1_000 + n,
        });
    }
    state.memberships.push(SimMembership {
        id: "orgmem_noemail".into(),
        organization_id: "org_alpha".into(),
        user_id: "user_noemail".into(),
        role: "org:billing".into(),
        public_metadata: Map::new(),
        private_metadata: json!({"level": 3}).as_object().cloned().unwrap(),
        created_at: 5_000,
    });
    state
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_plans_empty_and_restores_the_exported_state_after_drift() {
    for by_email in [false, true] {
        let simulator = start(instance()).await;
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["export", "-o", "exported.yaml"];
        if by_email {
            args.push("--by-email");
        }
        let exported = membersync(&simulator, dir.path(), &args).await;
        assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
        let text = std::fs::read_to_string(dir.path().join("exported.yaml")).unwrap();
        assert!(
            text.contains("  org_big:  # slug: big-team, name: Big \"Team\" #1\n"),
            "{text}"
        );
        if by_email {
            assert!(text.contains("      \"b1@big.example\": org:member  # user_b1\n"));
            assert!(text.contains("      user_noemail:\n        role: org:billing\n"));
        } else {
            assert!(text.contains("      user_b1: org:member  # b1@big.example\n"));
        }
        assert!(simulator.requests().iter().all(|r| !r.is_write()));

        let plan = membersync(&simulator, dir.path(), &["plan", "-f", "exported.yaml"]).await;
        assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
        assert!(
            stdout(&plan).starts_with("No changes: the 3 managed"),
            "{}",
            stdout(&plan)
        );

        // Drift: a role, metadata, a removed and an added member.
        let before = [
            members(&simulator, "org_alpha"),
            members(&simulator, "org_big"),
        ];
        simulator.mutate(|state| {
            for m in &mut state.memberships {
                if m.user_id == "user_b5" {
                    m.role = "org:admin".into();
                }
                if m.user_id == "user_b100" {
                    m.public_metadata.insert("seat".into(), json!(-1));
                }
            }
            state.memberships.retain(|m| m.user_id != "user_b7");
            state.memberships.push(SimMembership {
                id: "orgmem_intruder".into(),
                organization_id: "org_big".into(),
                user_id: "user_4".into(),
                role: "org:admin".into(),
                public_metadata: Map::new(),
                private_metadata: Map::new(),
                created_at: 9_999,
            });
        });
        let apply = membersync(&simulator, dir.path(), &["apply", "-f", "exported.yaml"]).await;
        assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
        assert!(
            stdout(&apply).contains("Apply complete: 4 applied"),
            "{}",
            stdout(&apply)
        );
        assert_eq!(members(&simulator, "org_alpha"), before[0]);
        assert_eq!(members(&simulator, "org_big"), before[1]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_of_named_organizations_writes_only_those() {
    let simulator = start(instance()).await;
    let dir = tempfile::tempdir().unwrap();
    let output = membersync(&simulator, dir.path(), &["export", "--org", "alpha"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("  org_alpha:  # slug: alpha, name: ALPHA\n"),
        "{text}"
    );
    assert!(
        !text.contains("org_other") && !text.contains("org_big"),
        "{text}"
    );
    write_file(dir.path(), "alpha.yaml", &text);
    let plan = membersync(&simulator, dir.path(), &["plan", "-f", "alpha.yaml"]).await;
    assert!(stdout(&plan).starts_with("No changes"), "{}", stdout(&plan));

    let missing = membersync(&simulator, dir.path(), &["export", "--org", "nope"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("`nope` does not exist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_applies_a_plan_and_then_plans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Run outside the repository: the built-in copies of the demo files are used.
    let output = run(dir.path(), &["demo"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let first = out
        .find("Plan: 12 to create, 4 role change(s)")
        .expect(&out);
    // The support team, read from the (fake) Okta, lands in all four organizations (the
    // customer the demo creates too).
    let staff =
        "+ user_2demoSam (sam@vendor.test) org:member (all organizations, group support from corp)";
    assert_eq!(out[..first].matches(staff).count(), 4, "{out}");
    assert!(
        !out.contains("vic@vendor.test"),
        "suspended in the directory: {out}"
    );
    let defined = out.find("+ role org:auditor \"Auditor\"").expect(&out);
    let handed_out = out
        .find("+ user_2demoJon (jon@initech.test) org:auditor")
        .expect(&out);
    let invited = out
        .find("+ invite newhire@acme.test org:member")
        .expect(&out);
    let applied = out
        .find("Apply complete: 25 applied, 0 failed, 0 skipped.")
        .expect(&out);
    let again = out
        .find("No changes: the 4 managed organization(s)")
        .expect(&out);
    assert!(
        defined < invited
            && invited < handed_out
            && handed_out < first
            && first < applied
            && applied < again,
        "{out}"
    );
    // A new customer organization is created with its domain and members.
    assert!(
        out.contains("organization umbrella (to be created)"),
        "{out}"
    );
    assert!(
        out.contains("applied  + domain umbrella.test manual_invitation"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_serves_what_the_client_expects_and_saves_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = serde_json::to_string(&seed()).unwrap();
    write_file(dir.path(), "state.json", &state);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "--state",
            "state.json",
            "--listen",
            "127.0.0.1:0",
            "--save",
            "after.json",
            "--latency",
            "5",
            "--fail-rate",
            "0.2",
        ])
        .env_remove("CLERK_SECRET_KEY")
        .env_remove("CLERK_SECRET_KEY_FILE")
        .env_remove("MEMBERSYNC_RATE_LIMIT")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the simulator starts")
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("Clerk simulator serving ")
        .expect(&first)
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let desired = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      four@example.com: billing\n";
    write_file(dir.path(), "m.yaml", desired);
    let env = [
        ("CLERK_API_URL", url.as_str()),
        ("CLERK_SECRET_KEY", "sk_test_simulator"),
    ];
    let apply = run(dir.path(), &["apply", "-f", "m.yaml"], &env).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let plan = run(dir.path(), &["plan", "-f", "m.yaml"], &env).await;
    assert!(stdout(&plan).starts_with("No changes"), "{}", stdout(&plan));
    // Another key is refused, as Clerk would.
    let wrong = run(
        dir.path(),
        &["plan", "-f", "m.yaml"],
        &[("CLERK_API_URL", url.as_str()), ("CLERK_SECRET_KEY", KEY)],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the simulator stops on SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let saved: SimState =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("after.json")).unwrap())
            .unwrap();
    assert!(
        saved
            .roles_of("org_alpha")
            .contains(&("user_4".into(), "org:billing".into()))
    );
}
