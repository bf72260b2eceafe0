//! Network failures through the real binary, each made on loopback: a closed port (refused),
//! a server that accepts and never answers (timeout), a server with a self-signed certificate
//! (not trusted, not retried), and — inside a network namespace of its own, where no lookup
//! can leave the machine — a name that does not resolve. Each message names the host and the
//! cause. (The classifier itself is unit-tested in src/clerk/transport.rs, DNS included.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{run, stderr, write_file};

/// One organization by ID: the first request of a plan is one instance listing page.
const ONE: &str = "version: 1\norganizations:\n  org_alpha:\n    members:\n      user_1: admin\n";

async fn plan_against(url: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", ONE);
    let mut args = vec!["plan", "-f", "m.yaml"];
    args.extend_from_slice(extra);
    run(
        dir.path(),
        &args,
        &[("CLERK_API_URL", url), ("CLERK_SECRET_KEY", common::KEY)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_is_reported_as_refused_with_its_host() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = plan_against(&format!("http://127.0.0.1:{port}/v1"), &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "cannot reach Clerk at 127.0.0.1:{port}: connection refused"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_is_a_timeout_naming_the_host() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts every connection and holds it open without a word.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let output = plan_against(
        &format!("http://{address}/v1"),
        &["--request-timeout", "1s"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "no answer from Clerk at {address} within 1s (timeout"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_not_trusted_says_why_and_is_not_retried() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let certificate = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            // The client gives up in the handshake; the server sees it fail.
            tokio::spawn(async move { acceptor.accept(socket).await.map(drop) });
        }
    });

    let output = plan_against(&format!("https://{address}/v1"), &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "cannot reach Clerk at {address}: its TLS certificate is not trusted"
        )),
        "{err}"
    );
    assert!(
        err.contains("self-signed") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(err.contains("not retried"), "{err}");
    // One request, one connection: a certificate that is not trusted is not tried again.
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_does_not_resolve_is_a_dns_failure_naming_the_host() {
    // A network namespace with no route anywhere: the lookup fails on this machine. Where
    // unprivileged namespaces are not allowed, the unit test of the classifier stands alone.
    let allowed = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !allowed {
        eprintln!("unshare -rn is not allowed here; the DNS case is covered by the unit test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", ONE);
    let output = tokio::process::Command::new("unshare")
        .current_dir(dir.path())
        .args([
            "-rn",
            env!("CARGO_BIN_EXE_membersync"),
            "plan",
            "-f",
            "m.yaml",
        ])
        .env("CLERK_API_URL", "https://api.clerk.invalid/v1")
        .env("CLERK_SECRET_KEY", common::KEY)
        .env("MEMBERSYNC_RATE_LIMIT", "1000/s")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("cannot reach Clerk at api.clerk.invalid: DNS resolution failed"),
        "{err}"
    );
}
