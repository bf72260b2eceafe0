//! `cargo bench --bench apply -- directory-plan`: `plan` of 1,000 organizations with
//! `all_organizations` giving them 3 staff groups, the groups read from the fake directories
//! (one per provider: Google, Okta, Entra ID) against the same groups written inline. Prints
//! each median wall time of 3 runs and their ratio; asserts nothing about time.

use std::time::Duration;

use membersync::simulator::directories::{DirectoryState, FakeDirectories, UserStatus};
use membersync::simulator::{
    SimMembership, SimOptions, SimOrganization, SimState, SimUser, Simulator,
};

use super::{KEY, Scratch, membersync};

const ORGANIZATIONS: usize = 1_000;
const GROUPS: [&str; 3] = ["support", "success", "oncall"];
/// People per group.
const PEOPLE: usize = 20;
const GRAPH_ID: &str = "5b6c0e8a-0000-4000-8000-0000000000cc";

pub async fn run() {
    let simulator = Simulator::start_with(instance(), KEY, SimOptions::default())
        .await
        .expect("the simulator starts");
    let fake = FakeDirectories::start(directory())
        .await
        .expect("the fake directories start");
    let scratch = Scratch::new("directory-plan");
    let inline = scratch.write("inline.yaml", &inline_file());
    let from_directories = scratch.write("directories.yaml", &directories_file(&fake, &scratch));
    let args = ["plan", "--rate-limit", "100000/s", "--concurrency", "16"];
    let mut inline_walls = Vec::new();
    let mut directory_walls = Vec::new();
    for _ in 0..3 {
        inline_walls.push(membersync(&simulator, &args, &inline, &[]).await.wall);
        let planned = membersync(&simulator, &args, &from_directories, &[]).await;
        directory_walls.push(planned.wall);
        assert!(
            planned.stdout.contains("group support from corp"),
            "the groups were read"
        );
    }
    let (inline, directories) = (median(inline_walls), median(directory_walls));
    println!(
        "directory-plan: plan of {ORGANIZATIONS} organizations × {} groups of {PEOPLE} (all_organizations)",
        GROUPS.len()
    );
    println!(
        "  groups inline                 {:.2} s (median of 3)",
        inline.as_secs_f64()
    );
    println!(
        "  groups from 3 directories     {:.2} s (median of 3; {} directory requests a run)",
        directories.as_secs_f64(),
        fake.requests().len() / 3
    );
    println!(
        "  ratio                         {:.2}× (the bound is 2×)\n",
        directories.as_secs_f64() / inline.as_secs_f64()
    );
}

fn median(mut walls: Vec<Duration>) -> Duration {
    walls.sort();
    walls[walls.len() / 2]
}

fn email(group: usize, person: usize) -> String {
    format!("{}{person}@staff.example.com", GROUPS[group])
}

/// 1,000 organizations with an admin each, and the staff as Clerk users.
fn instance() -> SimState {
    let mut state = SimState::with_roles(&["org:admin", "org:member", "org:support"]);
    for group in 0..GROUPS.len() {
        for person in 0..PEOPLE {
            state.users.push(SimUser {
                id: format!("user_{group}_{person}"),
                emails: vec![email(group, person)],
            });
        }
    }
    for org in 0..ORGANIZATIONS {
        state.users.push(SimUser {
            id: format!("user_admin{org}"),
            emails: vec![],
        });
        state.organizations.push(SimOrganization {
            id: format!("org_{org}"),
            slug: format!("customer-{org}"),
            name: format!("Customer {org}"),
            role_set_key: None,
            max_allowed_memberships: None,
            ..SimOrganization::default()
        });
        state.memberships.push(SimMembership {
            id: format!("orgmem_{org}"),
            organization_id: format!("org_{org}"),
            user_id: format!("user_admin{org}"),
            role: "org:admin".into(),
            public_metadata: serde_json::Map::new(),
            private_metadata: serde_json::Map::new(),
            created_at: org as i64,
        });
    }
    state
}

/// The three groups, each in the directory of its provider (the fake serves them all).
fn directory() -> DirectoryState {
    let mut state = DirectoryState::default();
    let mut members: Vec<Vec<String>> = vec![Vec::new(); GROUPS.len()];
    for (group, ids) in members.iter_mut().enumerate() {
        for person in 0..PEOPLE {
            let id = format!("00u{group}x{person}");
            state.user(&id, &email(group, person), UserStatus::Active);
            ids.push(id);
        }
    }
    let ids = |group: usize| -> Vec<&str> { members[group].iter().map(String::as_str).collect() };
    state
        .group("00gsupport", "Support", "support@example.com", &ids(0), &[])
        .group("00gsuccess", "Success", "success@example.com", &ids(1), &[])
        .group(GRAPH_ID, "Oncall", "oncall@example.com", &ids(2), &[]);
    state
}

const RULE: &str = "all_organizations:\n  members:\n    group:support: support\n    group:success: member\n    group:oncall: member\norganizations: {}\n";

fn inline_file() -> String {
    let mut text = String::from("version: 1\ngroups:\n");
    for (group, name) in GROUPS.iter().enumerate() {
        let people: Vec<String> = (0..PEOPLE).map(|person| email(group, person)).collect();
        text.push_str(&format!("  {name}: [{}]\n", people.join(", ")));
    }
    text + RULE
}

fn directories_file(fake: &FakeDirectories, scratch: &Scratch) -> String {
    let state = DirectoryState::default();
    let key = scratch.write(
        "key.json",
        &fake.google_key("bench@corp.iam.gserviceaccount.com"),
    );
    let token = scratch.write("okta-token", &state.okta_token);
    let secret = scratch.write("entra-secret", &state.entra_client_secret);
    format!(
        "version: 1\ndirectories:\n  corp:\n    provider: google\n    credentials_file: {}\n    subject: admin@example.com\n    api_url: {}\n  okta:\n    provider: okta\n    url: {}\n    token_file: {}\n  entra:\n    provider: entra\n    tenant_id: {}\n    client_id: {}\n    client_secret_file: {}\n    api_url: {}\n    token_url: {}\ngroups:\n  support: {{directory: corp, group: support@example.com}}\n  success: {{directory: okta, group: 00gsuccess}}\n  oncall: {{directory: entra, group: {GRAPH_ID}}}\n{RULE}",
        key.display(),
        fake.google_api_url(),
        fake.okta_url(),
        token.display(),
        state.entra_tenant_id,
        state.entra_client_id,
        secret.display(),
        fake.graph_api_url(),
        fake.entra_token_url(),
    )
}
