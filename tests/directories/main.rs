//! The directory clients against the fake directories (and wiremock for answers the fake never
//! gives): each provider's paging and authentication, who counts, refused credentials, 429s
//! with `Retry-After`, renewed tokens, and no secret in any error, Debug output or trace log.

mod answers;
mod fixtures;
mod secrets;

use std::time::Duration;

use fixtures::*;
use membersync::directory::{DirectoryClient, DirectoryError, ProviderKind};
use membersync::simulator::directories::{
    DirectoryFault, DirectoryState, FakeDirectories, FakeEndpoint, UserStatus, service_account_key,
};

#[tokio::test]
async fn google_pages_through_derived_membership_with_one_token_and_counts_active_users() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    let corp = client(&google(&fake, &key));

    let members = corp.read_group("support@example.com").await.unwrap();
    // Nested `oncall`'s active user counts; its suspended one does not.
    let mut expected = expected_support(true);
    expected.push("oncall1@example.com".into());
    expected.sort();
    assert_eq!(emails(&members), expected);
    assert_eq!(
        members.not_users, 1,
        "the nested group itself is not a person"
    );
    assert!(members.inactive > 0);
    // 450 users, the nested group's entry and its two other users: 453 members, 3 pages.
    assert_eq!(members.pages, 3);
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleToken), 1);
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 3);
    for request in fake.requests() {
        if request.endpoint == FakeEndpoint::GoogleMembers {
            assert!(
                request.query.contains("includeDerivedMembership=true"),
                "{request:?}"
            );
            assert!(request.query.contains("maxResults=200"), "{request:?}");
        }
    }

    // A second group of the same directory reuses the token.
    let oncall = corp.read_group("oncall@example.com").await.unwrap();
    assert_eq!(emails(&oncall), ["oncall1@example.com", "u1@example.com"]);
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleToken), 1);
    assert_eq!(corp.requests(), 5);
}

#[tokio::test]
async fn google_refuses_an_assertion_signed_with_another_key() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The account is known, but this key is not the one registered for it.
    fake.google_key(SERVICE_ACCOUNT);
    let stranger = service_account_key(SERVICE_ACCOUNT, &fake.google_token_url());
    let key = write(dir.path(), "key.json", &stranger.json);

    let error = client(&google(&fake, &key))
        .read_group("support@example.com")
        .await
        .unwrap_err();
    assert_refused(
        &error,
        400,
        &[
            "directory `corp` (google)",
            "Invalid JWT Signature",
            "credentials_file or GOOGLE_APPLICATION_CREDENTIALS",
        ],
    );
    assert_eq!(
        fake.requests_to(FakeEndpoint::GoogleToken),
        1,
        "a refusal is not retried"
    );
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 0);
}

#[tokio::test]
async fn google_without_delegation_for_the_scope_is_refused_with_401() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    fake.update(|state| state.google_scopes.clear());
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    let error = client(&google(&fake, &key))
        .read_group("support@example.com")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(
        error.to_string().contains("domain-wide delegation"),
        "{error}"
    );
}

#[tokio::test]
async fn a_token_endpoint_answering_401_is_a_clear_error_naming_the_directory() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GoogleToken,
        status: 401,
        retry_after: None,
        times: 1,
    });
    let error = client(&google(&fake, &key))
        .read_group("support@example.com")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert_eq!(error.directory(), "corp");
    assert!(
        text.starts_with(
            "directory `corp` (google): getting an access token: the token endpoint http://"
        ),
        "{text}"
    );
    assert!(text.contains("HTTP 401"), "{text}");
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 0);
}

#[tokio::test]
async fn okta_follows_link_headers_with_the_ssws_token_and_counts_active_accounts() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", &DirectoryState::default().okta_token);
    let okta = client(&okta(&fake, Some(&token)));

    let members = okta.read_group("00gsupport0000000000").await.unwrap();
    // Okta groups do not nest; LOCKED_OUT is an active account.
    assert_eq!(emails(&members), expected_support(true));
    assert_eq!(members.pages, 3);
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.endpoint == FakeEndpoint::OktaUsers)
        .collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0].query, "limit=200");
    assert!(pages[1].query.contains("after=00u199"), "{:?}", pages[1]);
    assert!(pages[2].query.contains("after=00u399"), "{:?}", pages[2]);
}

#[tokio::test]
async fn okta_finds_a_group_by_its_exact_name_and_refuses_an_ambiguous_one() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    fake.update(|state| {
        // Okta's `eq` ignores case: only the exact name may be taken.
        state.group("00glowercase000000000", "support", "", &["00u1"], &[]);
        state.group("00gdup1", "Twins", "", &[], &[]);
        state.group("00gdup2", "Twins", "", &[], &[]);
    });
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", &DirectoryState::default().okta_token);
    let okta = client(&okta(&fake, Some(&token)));

    let members = okta.read_group("Support").await.unwrap();
    assert_eq!(emails(&members), expected_support(true));
    let lookup = &fake.requests()[0];
    assert_eq!(lookup.endpoint, FakeEndpoint::OktaGroups);
    assert!(
        lookup
            .query
            .contains("search=profile.name+eq+%22Support%22"),
        "{lookup:?}"
    );

    let error = okta.read_group("Twins").await.unwrap_err();
    assert!(
        matches!(error, DirectoryError::AmbiguousGroup { count: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("00gdup1, 00gdup2"), "{error}");
    let error = okta.read_group("Nobody").await.unwrap_err();
    assert!(
        matches!(error, DirectoryError::GroupNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn okta_reads_the_token_from_its_variable_and_refuses_a_wrong_one() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let directory = okta(&fake, None);
    let right =
        |name: &str| (name == "OKTA_API_TOKEN").then(|| DirectoryState::default().okta_token);
    let okta_client =
        DirectoryClient::with_options(&directory, options(ProviderKind::Okta), &right).unwrap();
    assert!(okta_client.read_group("00goncall00000000000").await.is_ok());

    let wrong = |_: &str| Some("00wrong-token-value".to_owned());
    let error = DirectoryClient::with_options(&directory, options(ProviderKind::Okta), &wrong)
        .unwrap()
        .read_group("00goncall00000000000")
        .await
        .unwrap_err();
    assert_refused(&error, 401, &["token_file or OKTA_API_TOKEN"]);
    assert!(
        !error.to_string().contains("00wrong-token-value"),
        "{error}"
    );

    let missing = DirectoryClient::with_options(&directory, options(ProviderKind::Okta), &no_env)
        .unwrap_err();
    assert!(missing.to_string().contains("OKTA_API_TOKEN"), "{missing}");
}

#[tokio::test]
async fn graph_pages_transitive_users_with_consistency_level_and_skips_disabled_accounts() {
    let mut state = seeded();
    // 1,500 more users in the Graph group: two pages of 999.
    let mut extra = Vec::new();
    for n in 0..1500 {
        state.user(
            &format!("g{n}"),
            &format!("g{n}@example.com"),
            UserStatus::Active,
        );
        extra.push(format!("g{n}"));
    }
    state.groups[2].users.extend(extra);
    let fake = FakeDirectories::start(state).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = write(
        dir.path(),
        "secret",
        &DirectoryState::default().entra_client_secret,
    );
    let entra = client(&entra(&fake, &secret));

    let members = entra.read_group(GRAPH_GROUP).await.unwrap();
    let people = emails(&members);
    assert_eq!(people.len(), expected_support(true).len() + 1500 + 1);
    assert!(
        people.contains(&"oncall1@example.com".to_owned()),
        "nested users count"
    );
    assert!(
        !people.contains(&"oncall2@example.com".to_owned()),
        "disabled users do not"
    );
    assert!(!people.contains(&"u10@example.com".to_owned()));
    assert_eq!(members.pages, 2);
    assert_eq!(fake.requests_to(FakeEndpoint::EntraToken), 1);
    for request in fake.requests() {
        if request.endpoint == FakeEndpoint::GraphMembers {
            assert_eq!(request.consistency_level.as_deref(), Some("eventual"));
            assert!(request.query.contains("%24count=true"), "{request:?}");
            assert!(request.query.contains("%24top=999"), "{request:?}");
            assert!(request.status == 200, "{request:?}");
        }
    }
}

#[tokio::test]
async fn entra_refuses_a_wrong_client_secret_with_a_clear_error() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", "not~the~secret~at~all");
    let error = client(&entra(&fake, &secret))
        .read_group(GRAPH_GROUP)
        .await
        .unwrap_err();
    assert_refused(
        &error,
        401,
        &[
            "directory `entra` (entra)",
            "AADSTS7000215",
            "client_secret_file or AZURE_CLIENT_SECRET",
        ],
    );
    assert!(!error.to_string().contains("not~the~secret"), "{error}");
    assert_eq!(fake.requests_to(FakeEndpoint::GraphMembers), 0);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_converges() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = write(
        dir.path(),
        "secret",
        &DirectoryState::default().entra_client_secret,
    );
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GraphMembers,
        status: 429,
        retry_after: Some(1),
        times: 1,
    });
    let entra = client(&entra(&fake, &secret));
    let members = entra.read_group(GRAPH_GROUP).await.unwrap();
    assert!(!members.people.is_empty());
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.endpoint == FakeEndpoint::GraphMembers)
        .collect();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].status, 429);
    assert!(
        pages[1].at - pages[0].at >= Duration::from_millis(950),
        "the retry waited for Retry-After: {:?}",
        pages[1].at - pages[0].at
    );
    assert_eq!(
        entra
            .stats()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn an_okta_429_waits_until_its_rate_limit_resets() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", &DirectoryState::default().okta_token);
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::OktaUsers,
        status: 429,
        retry_after: Some(2),
        times: 1,
    });
    let members = client(&okta(&fake, Some(&token)))
        .read_group("00goncall00000000000")
        .await
        .unwrap();
    assert_eq!(members.people.len(), 2);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    // X-Rate-Limit-Reset has one-second resolution: at least one full second remains.
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_retry_after_longer_than_a_run_waits_fails_the_group_at_once() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GoogleMembers,
        status: 429,
        retry_after: Some(3600),
        times: 1,
    });
    let error = client(&google(&fake, &key))
        .read_group("support@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(error, DirectoryError::Throttled { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("3600 s"), "{error}");
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 1);
}

#[tokio::test]
async fn server_errors_are_retried_within_the_attempts() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    let corp = client(&google(&fake, &key));
    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GoogleMembers,
        status: 503,
        retry_after: None,
        times: 2,
    });
    assert!(corp.read_group("oncall@example.com").await.is_ok());
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 3);

    fake.push_fault(DirectoryFault {
        endpoint: FakeEndpoint::GoogleMembers,
        status: 500,
        retry_after: None,
        times: 10,
    });
    let error = corp.read_group("oncall@example.com").await.unwrap_err();
    assert_eq!(error.status(), Some(500));
    // Four attempts in all, as configured.
    assert_eq!(fake.requests_to(FakeEndpoint::GoogleMembers), 3 + 4);
}

#[tokio::test]
async fn a_revoked_access_token_is_renewed_once() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = write(
        dir.path(),
        "secret",
        &DirectoryState::default().entra_client_secret,
    );
    let entra = client(&entra(&fake, &secret));
    entra.read_group(GRAPH_NESTED).await.unwrap();
    fake.revoke_tokens();
    entra.read_group(GRAPH_NESTED).await.unwrap();
    assert_eq!(fake.requests_to(FakeEndpoint::EntraToken), 2);
    // The first read, the refused page, and the page again with the new token.
    assert_eq!(fake.requests_to(FakeEndpoint::GraphMembers), 3);
}

#[tokio::test]
async fn an_unknown_group_is_not_found_in_every_provider() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    let token = write(dir.path(), "token", &DirectoryState::default().okta_token);
    let secret = write(
        dir.path(),
        "secret",
        &DirectoryState::default().entra_client_secret,
    );
    for (directory, group) in [
        (google(&fake, &key), "nobody@example.com"),
        (okta(&fake, Some(&token)), "00gnobody"),
        (
            entra(&fake, &secret),
            "5b6c0e8a-0000-4000-8000-000000000000",
        ),
    ] {
        let error = client(&directory).read_group(group).await.unwrap_err();
        assert!(
            matches!(error, DirectoryError::GroupNotFound { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(group), "{error}");
    }
}

#[tokio::test]
async fn an_empty_group_reads_as_no_people() {
    let fake = FakeDirectories::start(seeded()).await.unwrap();
    fake.update(|state| {
        state.group(
            "00gempty000000000000",
            "Empty",
            "empty@example.com",
            &[],
            &[],
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &fake.google_key(SERVICE_ACCOUNT));
    let token = write(dir.path(), "token", &DirectoryState::default().okta_token);
    let google_members = client(&google(&fake, &key))
        .read_group("empty@example.com")
        .await
        .unwrap();
    let okta_members = client(&okta(&fake, Some(&token)))
        .read_group("00gempty000000000000")
        .await
        .unwrap();
    for members in [google_members, okta_members] {
        assert!(members.people.is_empty());
        assert_eq!(members.pages, 1);
    }
}
