//! Groups from the company directory (docs/directories.md) through the real binary, against
//! the simulator's Clerk and its fake directories: each provider's paging and authentication,
//! who counts (suspended and disabled users out, nested members in), the source in the plan,
//! an empty group with and without `allow_empty`, a refused token (no removal, exit 1, the other
//! groups applied), no directory request without `directories` or from `validate`, and no
//! secret in any output, trace logs included.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use membersync::simulator::Simulator;
use membersync::simulator::directories::{
    DirectoryFault, DirectoryState, FakeDirectories, FakeEndpoint, UserStatus,
};

const SERVICE_ACCOUNT: &str = "membersync@corp-project.iam.gserviceaccount.com";
const STAFF_GRAPH: &str = "5b6c0e8a-0000-4000-8000-00000000aaaa";
const NESTED_GRAPH: &str = "5b6c0e8a-0000-4000-8000-00000000bbbb";
const EMPTY_GRAPH: &str = "5b6c0e8a-0000-4000-8000-00000000cccc";
/// More members than one page of any provider (Google 200, Okta and Graph 1,000 or less).
const FILLER: usize = 1_100;

/// The directory: `staff` holds four@ (user_4), three@ (user_3, suspended), one@ (user_1),
/// 1,100 suspended people with no Clerk account, and the nested group `nested` with five@
/// (user_5) and Six@ (user_6); `empty` has no one. The same groups serve all three providers.
fn directory() -> DirectoryState {
    let mut state = DirectoryState::default();
    state
        .user("00uone", "one@example.com", UserStatus::Active)
        .user("00ufour", "Four@Example.com", UserStatus::Active)
        .user("00uthree", "three@example.com", UserStatus::Suspended)
        .user("00ufive", "five@example.com", UserStatus::Active)
        .user("00usix", "Six@Example.com", UserStatus::Active);
    let mut staff = vec!["00uone".to_owned(), "00ufour".into(), "00uthree".into()];
    for n in 0..FILLER {
        let status = if n % 2 == 0 {
            UserStatus::Suspended
        } else {
            UserStatus::Deprovisioned
        };
        state.user(
            &format!("00ugone{n}"),
            &format!("gone{n}@example.com"),
            status,
        );
        staff.push(format!("00ugone{n}"));
    }
    let staff: Vec<&str> = staff.iter().map(String::as_str).collect();
    state
        .group(
            STAFF_GRAPH,
            "Staff",
            "staff@example.com",
            &staff,
            &[NESTED_GRAPH],
        )
        .group(
            NESTED_GRAPH,
            "Nested",
            "nested@example.com",
            &["00ufive", "00usix"],
            &[],
        )
        .group(EMPTY_GRAPH, "Empty", "empty@example.com", &[], &[]);
    state
}

#[derive(Clone, Copy, Debug)]
enum Provider {
    Google,
    Okta,
    Entra,
}

/// Credentials in files of `dir`, and the `directories:` entry of `provider` named `name`.
fn declare(fake: &FakeDirectories, dir: &Path, provider: Provider, name: &str) -> String {
    let state = DirectoryState::default();
    match provider {
        Provider::Google => {
            let key = dir.join(format!("{name}-key.json"));
            std::fs::write(&key, fake.google_key(SERVICE_ACCOUNT)).unwrap();
            format!(
                "  {name}:\n    provider: google\n    credentials_file: {}\n    subject: admin@example.com\n    api_url: {}\n",
                key.display(),
                fake.google_api_url()
            )
        }
        Provider::Okta => {
            let token = dir.join(format!("{name}-token"));
            std::fs::write(&token, &state.okta_token).unwrap();
            format!(
                "  {name}:\n    provider: okta\n    url: {}\n    token_file: {}\n",
                fake.okta_url(),
                token.display()
            )
        }
        Provider::Entra => {
            let secret = dir.join(format!("{name}-secret"));
            std::fs::write(&secret, &state.entra_client_secret).unwrap();
            format!(
                "  {name}:\n    provider: entra\n    tenant_id: {}\n    client_id: {}\n    client_secret_file: {}\n    api_url: {}\n    token_url: {}\n",
                state.entra_tenant_id,
                state.entra_client_id,
                secret.display(),
                fake.graph_api_url(),
                fake.entra_token_url()
            )
        }
    }
}

/// The key of group `staff` or `empty` in `provider`.
fn key(provider: Provider, group: &str) -> String {
    match (provider, group) {
        (Provider::Google, _) => format!("{group}@example.com"),
        (Provider::Okta, "staff") => "Staff".into(),
        (Provider::Okta, _) => "Empty".into(),
        (Provider::Entra, "staff") => STAFF_GRAPH.into(),
        (Provider::Entra, _) => EMPTY_GRAPH.into(),
    }
}

async fn binary(simulator: &Simulator, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("CLERK_API_URL", simulator.api_url()),
        ("CLERK_SECRET_KEY", simulator.key().to_owned()),
    ];
    all.extend(env.iter().map(|(n, v)| (*n, (*v).to_owned())));
    let env: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
    run(dir, args, &env).await
}

fn pair(user: &str, role: &str) -> (String, String) {
    (user.to_owned(), role.to_owned())
}

#[tokio::test]
async fn each_providers_staff_group_lands_in_every_organization_through_its_paging_and_auth() {
    for provider in [Provider::Google, Provider::Okta, Provider::Entra] {
        let simulator = start(seed()).await;
        let fake = FakeDirectories::start(directory()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "version: 1\ndirectories:\n{}groups:\n  staff: {{directory: corp, group: {}}}\nall_organizations:\n  members:\n    group:staff: member\norganizations:\n  alpha:\n    prune: true\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n",
            declare(&fake, dir.path(), provider, "corp"),
            key(provider, "staff")
        );
        write_file(dir.path(), "membersync.yaml", &text);

        let output = binary(&simulator, dir.path(), &["apply"], &[]).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{provider:?}: {}",
            stderr(&output)
        );
        let out = stdout(&output);
        assert!(
            out.contains("user_4") && out.contains("(all organizations, group staff from corp)"),
            "{provider:?}: {out}"
        );
        // Active and nested people count (Okta has no nested groups); suspended three@
        // (user_3) does not: it is pruned from alpha, and only kept in `other`, where the
        // rule only adds.
        let nested = !matches!(provider, Provider::Okta);
        let mut alpha = vec![
            pair("user_1", "org:admin"),
            pair("user_2", "org:member"),
            pair("user_4", "org:member"),
            pair("user_5", "org:admin"),
        ];
        let mut other = vec![
            pair("user_1", "org:member"),
            pair("user_3", "org:admin"),
            pair("user_4", "org:member"),
        ];
        if nested {
            alpha.push(pair("user_6", "org:member"));
            other.extend([pair("user_5", "org:member"), pair("user_6", "org:member")]);
        }
        assert_eq!(
            simulator.state().roles_of("org_alpha"),
            alpha,
            "{provider:?}"
        );
        assert_eq!(
            simulator.state().roles_of("org_other"),
            other,
            "{provider:?}"
        );
        let (token, pages) = match provider {
            Provider::Google => (FakeEndpoint::GoogleToken, FakeEndpoint::GoogleMembers),
            Provider::Okta => (FakeEndpoint::OktaGroups, FakeEndpoint::OktaUsers),
            Provider::Entra => (FakeEndpoint::EntraToken, FakeEndpoint::GraphMembers),
        };
        // One token (Okta: one lookup of the group by name), and every page, once.
        assert_eq!(fake.requests_to(token), 1, "{provider:?}");
        assert!(fake.requests_to(pages) >= 2, "{provider:?}: paged");
        assert!(
            fake.requests().iter().all(|r| r.status == 200),
            "{provider:?}"
        );

        let again = binary(&simulator, dir.path(), &["plan"], &[]).await;
        assert_eq!(
            again.status.code(),
            Some(0),
            "{provider:?}: {}",
            stderr(&again)
        );
        assert!(
            stdout(&again).contains("No changes"),
            "{provider:?}: {}",
            stdout(&again)
        );
    }
}

/// A file with a Google directory whose token is refused and an Okta one that reads, in
/// `alpha` (pruned); `user_3` is listed by no one that was read.
async fn refused_and_read(json: bool) -> (Simulator, FakeDirectories, Output) {
    let simulator = start(seed()).await;
    let fake = FakeDirectories::start(directory()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}{}groups:\n  support: {{directory: corp, group: staff@example.com}}\n  oncall: {{directory: okta, group: Nested}}\norganizations:\n  alpha:\n    prune: true\n    members:\n      user_1: admin\n      group:support: admin\n      group:oncall: billing\n",
        declare(&fake, dir.path(), Provider::Google, "corp"),
        declare(&fake, dir.path(), Provider::Okta, "okta"),
    );
    write_file(dir.path(), "membersync.yaml", &text);
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GoogleToken,
        status: 401,
        retry_after: None,
        times: 10,
    });
    let args: &[&str] = if json {
        &["apply", "--output", "json"]
    } else {
        &["apply"]
    };
    let output = binary(&simulator, dir.path(), args, &[]).await;
    (simulator, fake, output)
}

#[tokio::test]
async fn a_refused_token_removes_and_demotes_no_one_and_the_groups_read_are_applied() {
    let (simulator, fake, output) = refused_and_read(false).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 0);
    assert_eq!(
        simulator.state().roles_of("org_alpha"),
        [
            pair("user_1", "org:admin"),
            // Unknown now: kept, not removed.
            pair("user_2", "org:member"),
            pair("user_3", "org:member"),
            // From the Okta group that was read: created, and the admin kept (no demotion).
            pair("user_5", "org:admin"),
            pair("user_6", "org:billing"),
        ]
    );
    let out = stdout(&output);
    assert!(
        out.contains("group support from corp could not be read")
            && out.contains("nothing it could decide is removed or demoted"),
        "{out}"
    );
    assert!(out.contains("(group oncall from okta)"), "{out}");
    let err = stderr(&output);
    assert!(
        err.contains("directory group `staff@example.com` of directory `corp` could not be read")
            && err.contains("HTTP 401"),
        "{err}"
    );
}

#[tokio::test]
async fn the_json_plan_names_the_source_and_the_unavailable_group() {
    let (_simulator, _fake, output) = refused_and_read(true).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sources: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["source"].as_str())
        .collect();
    assert_eq!(sources, ["group oncall from okta"], "{report:#}");
    let unavailable = &report["unavailable"][0];
    assert_eq!(unavailable["organization_id"], "org_alpha");
    assert_eq!(
        unavailable["groups"][0],
        "group support from corp could not be read"
    );
    assert!(unavailable["withheld"].as_u64().unwrap() >= 2, "{report:#}");
}

#[tokio::test]
async fn an_empty_group_is_unavailable_unless_its_entry_allows_it() {
    for (allow, code, kept) in [("false", 1, true), ("true", 0, false)] {
        let simulator = start(seed()).await;
        let fake = FakeDirectories::start(directory()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "version: 1\ndirectories:\n{}groups:\n  oncall: {{directory: entra, group: {EMPTY_GRAPH}, allow_empty: {allow}}}\norganizations:\n  alpha:\n    prune: true\n    members:\n      user_1: admin\n      user_5: admin\n      group:oncall: member\n",
            declare(&fake, dir.path(), Provider::Entra, "entra"),
        );
        write_file(dir.path(), "membersync.yaml", &text);
        let args = ["apply", "--max-deletes", "10"];
        let output = binary(&simulator, dir.path(), &args, &[]).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "{allow}: {}",
            stderr(&output)
        );
        let users: Vec<String> = simulator
            .state()
            .roles_of("org_alpha")
            .into_iter()
            .map(|(user, _)| user)
            .collect();
        assert_eq!(
            users.contains(&"user_2".to_owned()) && users.contains(&"user_3".to_owned()),
            kept,
            "allow_empty {allow}: {users:?}"
        );
        if kept {
            assert!(
                stdout(&output).contains("came back empty (`allow_empty: true` is not set)"),
                "{}",
                stdout(&output)
            );
        }
    }
}

#[tokio::test]
async fn no_directory_request_without_directories_nor_from_validate() {
    let simulator = start(seed()).await;
    let fake = FakeDirectories::start(directory()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}groups:\n  staff: {{directory: okta, group: Staff}}\norganizations:\n  alpha:\n    members:\n      group:staff: member\n",
        declare(&fake, dir.path(), Provider::Okta, "okta"),
    );
    write_file(dir.path(), "with.yaml", &text);
    write_file(dir.path(), "without.yaml", DESIRED);
    let state = DirectoryState::default();
    let env = [("OKTA_API_TOKEN", state.okta_token.as_str())];

    let validated = binary(
        &simulator,
        dir.path(),
        &["validate", "-f", "with.yaml"],
        &env,
    )
    .await;
    assert_eq!(validated.status.code(), Some(0), "{}", stderr(&validated));
    let planned = binary(
        &simulator,
        dir.path(),
        &["plan", "-f", "without.yaml"],
        &env,
    )
    .await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    let planned = binary(&simulator, dir.path(), &["plan", "-f", "with.yaml"], &env).await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert!(!fake.requests().is_empty());
}

#[tokio::test]
async fn no_secret_appears_in_any_output_even_in_trace_logs() {
    let simulator = start(seed()).await;
    let fake = FakeDirectories::start(directory()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}{}{}groups:\n  a: {{directory: corp, group: staff@example.com}}\n  b: {{directory: okta, group: Staff}}\n  c: {{directory: entra, group: {STAFF_GRAPH}}}\nall_organizations:\n  members:\n    group:a: member\n    group:b: member\n    group:c: member\norganizations: {{}}\n",
        declare(&fake, dir.path(), Provider::Google, "corp"),
        declare(&fake, dir.path(), Provider::Okta, "okta"),
        declare(&fake, dir.path(), Provider::Entra, "entra"),
    );
    write_file(dir.path(), "membersync.yaml", &text);
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("corp-key.json")).unwrap())
            .unwrap();
    let private_key = key["private_key"].as_str().unwrap().to_owned();
    let state = DirectoryState::default();
    let body_line = private_key.lines().nth(1).unwrap().to_owned();
    let secrets = [
        state.okta_token.clone(),
        state.entra_client_secret.clone(),
        body_line,
        simulator.key().to_owned(),
    ];
    for log_format in ["text", "json"] {
        // Read, then refused (Entra's token, Okta's listing) on the second run.
        for refused in [false, true] {
            if refused {
                fake.push_fault(DirectoryFault {
                    endpoint: FakeEndpoint::EntraToken,
                    status: 401,
                    retry_after: None,
                    times: 10,
                });
                fake.push_fault(DirectoryFault {
                    endpoint: FakeEndpoint::OktaUsers,
                    status: 401,
                    retry_after: None,
                    times: 10,
                });
            }
            let output = binary(
                &simulator,
                dir.path(),
                &["plan", "--log-format", log_format],
                &[("RUST_LOG", "trace")],
            )
            .await;
            let all = format!("{}{}", stdout(&output), stderr(&output));
            assert!(
                all.contains("directory group read"),
                "the logs say something: {all}"
            );
            for secret in &secrets {
                assert!(
                    !all.contains(secret.as_str()),
                    "a secret leaked ({log_format}, refused {refused})"
                );
            }
            assert!(!all.contains("Bearer ey"), "an access token leaked");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_reads_the_directory_again_every_cycle_and_counts_an_unavailable_group() {
    use common::daemon::{Daemon, Setup};

    let simulator = start(seed()).await;
    let fake = FakeDirectories::start(directory()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}groups:\n  staff: {{directory: corp, group: Staff}}\norganizations:\n  alpha:\n    prune: true\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      group:staff: member\n",
        declare(&fake, dir.path(), Provider::Okta, "corp"),
    );
    write_file(dir.path(), "m.yaml", &text);
    let setup = Setup {
        webhooks: false,
        args: &["--interval", "1s"],
        ..Setup::default()
    };
    let daemon = Daemon::start_with(&simulator, dir.path(), setup).await;
    let has_four = || {
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&pair("user_4", "org:member"))
    };
    eventually("four@ joins alpha from the directory", async || has_four()).await;

    // Four leaves the company: the next cycle reads the directory again and removes them.
    fake.update(|state| {
        let four = state.users.iter_mut().find(|u| u.id == "00ufour").unwrap();
        four.status = UserStatus::Suspended;
    });
    eventually("four@ leaves alpha", async || !has_four()).await;

    // The token is refused from now on: the group is unavailable, counted, and nobody goes.
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::OktaUsers,
        status: 401,
        retry_after: None,
        times: 1_000,
    });
    eventually("the unavailable group is counted", async || {
        sample(
            &daemon.metrics().await,
            "membersync_directory_unavailable_total{directory=\"corp\"}",
        )
        .is_some_and(|count| count >= 2.0)
    })
    .await;
    let users: Vec<String> = simulator
        .state()
        .roles_of("org_alpha")
        .into_iter()
        .map(|(user, _)| user)
        .collect();
    assert_eq!(users, ["user_1", "user_2", "user_3", "user_5"]);
}

#[tokio::test]
async fn a_directory_group_invites_people_without_an_account_and_its_expiry_applies() {
    let simulator = start(seed()).await;
    let mut state = directory();
    state.user("00unew", "new@vendor.test", UserStatus::Active);
    state.groups[0].users.push("00unew".into());
    let fake = FakeDirectories::start(state).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}groups:\n  staff: {{directory: corp, group: {STAFF_GRAPH}}}\norganizations:\n  alpha:\n    invitations: {{send: true}}\n    members:\n      user_1: admin\n      group:staff: {{role: member, expires: 2099-01-01}}\n  other:\n    members:\n      group:staff: {{role: member, expires: 2020-01-01}}\n",
        declare(&fake, dir.path(), Provider::Entra, "corp"),
    );
    write_file(dir.path(), "membersync.yaml", &text);
    let output = binary(&simulator, dir.path(), &["plan", "--output", "json"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let changes: Vec<(String, String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let who = c["user_id"]
                .as_str()
                .or(c["email"].as_str())
                .unwrap_or_default();
            (
                c["organization_id"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
                who.to_owned(),
            )
        })
        .collect();
    let invite = (
        "org_alpha".to_owned(),
        "invite".to_owned(),
        "new@vendor.test".to_owned(),
    );
    assert!(changes.contains(&invite), "{changes:?}");
    // Nobody suspended is invited; in `other` the group's entry has expired: no one is added.
    assert!(
        changes.iter().all(|(org, action, who)| {
            let suspended = who.starts_with("gone");
            let expired = org == "org_other" && action == "create";
            !suspended && !expired
        }),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("org_alpha".into(), "create".into(), "user_4".into())),
        "{changes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_reconcile_plans_with_what_the_last_cycle_read_without_reading_again() {
    use common::daemon::Daemon;

    let simulator = start(seed()).await;
    let fake = FakeDirectories::start(directory()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\ndirectories:\n{}groups:\n  staff: {{directory: corp, group: {STAFF_GRAPH}}}\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n      group:staff: member\n",
        declare(&fake, dir.path(), Provider::Entra, "corp"),
    );
    write_file(dir.path(), "m.yaml", &text);
    let daemon = Daemon::start(&simulator, dir.path(), &["--interval", "1h"]).await;
    let read_by_the_cycle = fake.requests().len();
    assert!(read_by_the_cycle >= 2, "the cycle read the group");
    assert!(
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&pair("user_4", "org:member"))
    );

    // Someone removes user_4 (from the directory group) in the dashboard: the event's
    // reconcile puts them back, with the cycle's reading.
    simulator.mutate(|state| {
        state
            .memberships
            .retain(|m| !(m.organization_id == "org_alpha" && m.user_id == "user_4"))
    });
    let event = serde_json::json!({
        "type": "organizationMembership.deleted",
        "object": "event",
        "data": {
            "organization": {"id": "org_alpha", "slug": "alpha"},
            "public_user_data": {"user_id": "user_4"},
            "role": "org:member"
        }
    })
    .to_string();
    assert_eq!(daemon.signed("msg_1", &event).await, 200);
    eventually("user_4 is back in alpha", async || {
        simulator
            .state()
            .roles_of("org_alpha")
            .contains(&pair("user_4", "org:member"))
    })
    .await;
    assert_eq!(
        fake.requests().len(),
        read_by_the_cycle,
        "no directory request"
    );
}

/// A line of `simulate`'s stdout that has `marker`, and what follows it.
fn after(lines: &mut impl Iterator<Item = std::io::Result<String>>, marker: &str) -> String {
    lines
        .find_map(|line| Some(line.ok()?.split_once(marker)?.1.to_owned()))
        .unwrap_or_else(|| panic!("simulate printed no `{marker}`"))
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_serves_fake_directories_that_a_file_with_directories_reads_in_a_rehearsal() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, serde_json::to_string(&seed()).unwrap()).unwrap();
    std::fs::write(
        dir.path().join("directories.json"),
        r#"{"users": [{"id": "00uone", "email": "one@example.com"},
                      {"id": "00ufour", "email": "four@example.com"},
                      {"id": "00usix", "email": "six@example.com", "status": "suspended"}],
            "groups": [{"id": "00gstaff", "name": "Staff", "email": "staff@example.com",
                        "users": ["00uone", "00ufour", "00usix"]}],
            "okta_token": "00rehearsal-okta-token"}"#,
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_membersync"))
        .current_dir(dir.path())
        .args(["simulate", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .args(["--directories", "directories.json"])
        .args(["--directories-listen", "127.0.0.1:0"])
        .args(["--google-key-out", "google-key.json"])
        .env("CLERK_SECRET_KEY", KEY as &str)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let api_url: String = after(&mut lines, "Clerk simulator serving ");
    let fake = after(&mut lines, "Fake directories serving ");
    after(&mut lines, "service-account key in ");
    std::fs::write(dir.path().join("okta-token"), "00rehearsal-okta-token").unwrap();
    let file = format!(
        "version: 1\ndirectories:\n  corp:\n    provider: google\n    credentials_file: google-key.json\n    subject: admin@example.com\n    api_url: {fake}/google\n  okta:\n    provider: okta\n    url: {fake}/okta\n    token_file: okta-token\ngroups:\n  staff: {{directory: corp, group: staff@example.com}}\n  oncall: {{directory: okta, group: Staff}}\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      group:staff: billing\n  other:\n    members:\n      user_3: admin\n      group:oncall: billing\n"
    );
    write_file(dir.path(), "membersync.yaml", &file);
    let output = run(
        dir.path(),
        &["plan", "--output", "json"],
        &[
            ("CLERK_API_URL", api_url.as_str()),
            ("CLERK_SECRET_KEY", KEY as &str),
        ],
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let creates: Vec<(String, String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["action"] == "create")
        .map(|change| {
            (
                change["organization_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                change["user_id"].as_str().unwrap_or_default().to_owned(),
                change["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        creates.len(),
        2,
        "four@ joins both; six@ is suspended: {creates:?}"
    );
    assert!(
        creates.iter().all(|(_, user, _)| user == "user_4"),
        "{creates:?}"
    );
    assert!(
        creates
            .iter()
            .any(|(org, _, source)| org == "org_alpha" && source.contains("staff"))
    );
    assert!(
        creates
            .iter()
            .any(|(org, _, source)| org == "org_other" && source.contains("oncall"))
    );
}
