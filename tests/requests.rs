//! How many requests a plan sends over a 20,000-membership instance (counts, not timings).

mod common;

use common::*;
use membersync::simulator::generated_state;

fn desired(orgs: std::ops::Range<usize>, by_slug: bool, emails: usize) -> String {
    let mut text = String::from("version: 1\norganizations:\n");
    for org in orgs {
        let key = if by_slug {
            format!("team-{org}")
        } else {
            format!("org_{org}")
        };
        text.push_str(&format!("  {key}:\n    members:\n      user_0: admin\n"));
        for member in 1..500 {
            if member <= emails {
                text.push_str(&format!("      u{member}@example.com: member\n"));
            } else {
                text.push_str(&format!("      user_{member}: member\n"));
            }
        }
    }
    text
}

async fn plan_requests(text: &str) -> (usize, String) {
    let simulator = start(generated_state(40, 500)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", text);
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let requests = simulator.requests();
    assert!(requests.iter().all(|r| !r.is_write()));
    (requests.len(), stdout(&output))
}

#[tokio::test(flavor = "multi_thread")]
async fn planning_every_organization_reads_the_instance_listing_once() {
    // 40 pages of 500, plus ⌈150/100⌉ = 2 email lookups: the minimum.
    let (count, out) = plan_requests(&desired(0..40, false, 150)).await;
    assert!(out.starts_with("No changes"), "{out}");
    assert_eq!(count, 40 + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn planning_a_few_organizations_lists_them_one_by_one() {
    // One instance page reveals 20,000 memberships (39 more pages); 5 organizations need
    // 1 batched lookup + 5 pages instead: 1 + 1 + 5.
    let (count, out) = plan_requests(&desired(0..5, false, 0)).await;
    assert!(out.starts_with("No changes"), "{out}");
    assert_eq!(count, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_named_by_slug_cost_one_lookup_each() {
    // 3 slug lookups (they carry the member counts) + 1 instance page + 3 pages.
    let (count, _) = plan_requests(&desired(0..3, true, 0)).await;
    assert_eq!(count, 3 + 1 + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn role_checks_cost_one_batched_lookup_and_one_role_listing() {
    // Every organization changes user_1's role: the roles are checked with one batched
    // `GET /organizations?organization_id=…` (40 IDs) and one `GET /organization_roles`.
    let text = desired(0..40, false, 150).replace(
        "      u1@example.com: member\n",
        "      u1@example.com: billing\n",
    );
    let (count, out) = plan_requests(&text).await;
    assert!(out.contains("40 role change(s)"), "{out}");
    assert_eq!(count, 40 + 2 + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_that_grows_while_it_is_listed_is_read_in_full() {
    use membersync::simulator::{Fault, FaultKind, SimMembership, SimState};
    // org_0 is counted at 500 (one page); when its listing starts, 10 more members join.
    let simulator = start(generated_state(40, 500)).await;
    simulator.inject(
        Fault::new(FaultKind::race(|state: &mut SimState| {
            for n in 0..10 {
                state.memberships.push(SimMembership {
                    id: format!("orgmem_late{n}"),
                    organization_id: "org_0".into(),
                    user_id: format!("user_{}", 500 + n),
                    role: "org:member".into(),
                    public_metadata: Default::default(),
                    private_metadata: Default::default(),
                    created_at: 1_000_000 + n,
                });
            }
        }))
        .on("GET", "/organizations/org_0/memberships"),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "membersync.yaml", &desired(0..1, false, 0));
    let output = membersync(&simulator, dir.path(), &["plan", "-f", &file]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("10 to delete"),
        "the late members are seen: {out}"
    );
    let pages = simulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/organizations/org_0/memberships")
        .count();
    assert_eq!(pages, 2);
}
