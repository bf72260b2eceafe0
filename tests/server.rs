//! The daemon's HTTP port against clients that misbehave: connections that send half a
//! header are closed within the header-read timeout while health and metrics keep answering
//! (through the binary, with the default 10 s), and with short limits (the library's server):
//! idle keep-alive connections close, a webhook body that stalls gets 408, and at the
//! connection cap the oldest waiting connection makes room for a probe.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::daemon::{Daemon, SECRET};
use common::{seed, start, write_file};
use membersync::daemon::{self, Health, Intake, Limits};
use membersync::webhook::{Replays, WebhookSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const DESIRED: &str = "version: 1\norganizations:\n  alpha:\n    members:\n      user_1: admin\n      user_5: admin\n      user_2: member\n      user_3: member\n";

/// Opens a connection and sends the first half of a request head.
async fn stalled(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Half: ")
        .await
        .unwrap();
    stream
}

/// Waits until the server closes `stream` (end of stream or reset), by `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 400 before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

/// `GET path` answered within a second.
async fn answers_within_a_second(address: &str, path: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    client
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_connections_are_closed_within_the_header_timeout_while_health_answers() {
    let simulator = start(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", DESIRED);
    let daemon = Daemon::start(&simulator, dir.path(), &["--interval", "1h"]).await;
    let address = daemon.address.clone();

    let started = Instant::now();
    let mut connections = Vec::new();
    for _ in 0..150 {
        connections.push(stalled(&address).await);
    }
    for path in ["/healthz", "/metrics", "/healthz"] {
        assert!(
            answers_within_a_second(&address, path).await,
            "{path} answers while 150 connections stall"
        );
    }
    // The header-read timeout is 10 s: every stalled connection is closed well before 30 s.
    let deadline = started + Duration::from_secs(30);
    for (n, connection) in connections.iter_mut().enumerate() {
        assert!(
            closed_by(connection, deadline).await,
            "stalled connection {n} still open after 30 s"
        );
    }
    assert!(answers_within_a_second(&address, "/healthz").await);
    assert_eq!(daemon.stop().await, Some(0));
}

/// The daemon's server on a free port, with these limits and a webhook intake.
async fn serve(limits: Limits) -> (daemon::Server, String) {
    let (events, _received) = tokio::sync::mpsc::unbounded_channel();
    let intake = Arc::new(Intake {
        secret: WebhookSecret::parse(SECRET).unwrap(),
        replays: Mutex::new(Replays::default()),
        events,
    });
    let server = daemon::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Health::default()),
        Some(intake),
        limits,
    )
    .await
    .unwrap();
    let address = server.address().to_string();
    (server, address)
}

fn short(max_connections: usize) -> Limits {
    Limits {
        header_read: Duration::from_millis(600),
        idle: Duration::from_millis(300),
        body_read: Duration::from_millis(600),
        max_connections,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_and_silent_connections_are_closed() {
    let (server, address) = serve(short(64)).await;
    // A whole request, then nothing more on the kept-alive connection.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    assert!(
        closed_by(&mut kept, deadline).await,
        "idle keep-alive closed"
    );
    assert!(
        closed_by(&mut silent, deadline).await,
        "silent connection closed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_sent_a_byte_at_a_time_is_cut_at_the_header_timeout() {
    let (server, address) = serve(short(64)).await;
    let mut slow = TcpStream::connect(&address).await.unwrap();
    // A byte every 50 ms is never idle for 300 ms; the whole head never arrives.
    let started = Instant::now();
    let closed = loop {
        if slow.write_all(b"X").await.is_err() {
            break true;
        }
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break true,
            _ if started.elapsed() > Duration::from_secs(10) => break false,
            _ => {}
        }
    };
    assert!(closed, "closed by the header-read timeout");
    assert!(answers_within_a_second(&address, "/healthz").await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_body_that_stalls_gets_408_and_its_connection_closes() {
    let (server, address) = serve(short(64)).await;
    let mut slow = TcpStream::connect(&address).await.unwrap();
    // The head promises 100 bytes; 10 arrive.
    slow.write_all(b"POST /webhooks/clerk HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":\"")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answers_within_a_second(&address, "/healthz").await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_the_oldest_waiting_connection_makes_room_for_a_probe() {
    // Long timeouts: only the cap can free a place.
    let limits = Limits {
        header_read: Duration::from_secs(60),
        idle: Duration::from_secs(60),
        body_read: Duration::from_secs(60),
        max_connections: 20,
    };
    let (server, address) = serve(limits).await;
    let mut connections = Vec::new();
    for _ in 0..20 {
        connections.push(stalled(&address).await);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Five probes, each on its own connection kept open: each takes the place of the oldest
    // stalled connection.
    let mut probes = Vec::new();
    for _ in 0..5 {
        let mut probe = TcpStream::connect(&address).await.unwrap();
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(1), probe.read_exact(&mut head))
            .await
            .expect("the probe is answered within a second")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        probes.push(probe);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for connection in connections.iter_mut().take(5) {
        assert!(closed_by(connection, deadline).await);
    }
    // The others stay (nothing else makes room).
    let soon = Instant::now() + Duration::from_millis(300);
    assert!(!closed_by(&mut connections[5], soon).await);
    server.stop().await;
}
