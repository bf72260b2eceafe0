//! The progress bar `apply` draws when stderr is a terminal, and the log lines written while
//! it is drawn: each log line starts on a line of its own, never after the bar's text.
//! The terminal is a pseudo-terminal made by `script` (util-linux).

mod common;

use std::time::Duration;

use common::{KEY, creates, write_file};
use membersync::simulator::{Fault, FaultKind, SimOptions, Simulator};

const CHANGES: usize = 30;
const FAILURES: usize = 5;

/// The lines a terminal shows for `raw`: a carriage return goes back to the start of the line
/// and an erase-line sequence clears it, so what was drawn there before is gone. Other escape
/// sequences (colours, cursor moves of the bar) are dropped.
fn screen_lines(raw: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let line = lines.last_mut().unwrap();
        match c {
            '\n' => lines.push(String::new()),
            '\r' => line.push('\r'),
            '\u{1b}' => {
                let mut sequence = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        sequence.push(c);
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                // Erase the line: what the bar drew is gone.
                if sequence.ends_with('K') {
                    line.clear();
                }
            }
            c => line.push(c),
        }
    }
    // After a carriage return, text overwrites the line from its start; what stays visible
    // at the start is the text written last.
    lines
        .into_iter()
        .map(|line| {
            line.rsplit('\r')
                .find(|part| !part.is_empty())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_written_while_the_progress_bar_is_drawn_each_start_a_line_of_their_own() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed to give apply a terminal");
    }
    let (state, text) = creates(CHANGES);
    let options = SimOptions {
        latency: Duration::from_millis(60),
        ..Default::default()
    };
    let simulator = Simulator::start_with(state, KEY, options).await.unwrap();
    // A few creates fail for good: each failure is a warning logged while the bar is drawn.
    simulator.inject(
        Fault::new(FaultKind::Before {
            status: 422,
            code: "form_param_unknown".into(),
        })
        .on("POST", "memberships")
        .skip(10)
        .times(FAILURES),
    );
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "m.yaml", &text);
    let binary = env!("CARGO_BIN_EXE_membersync");
    // stdout stays a pipe (the report); stderr is the terminal `script` records.
    let command = format!("'{binary}' apply -f m.yaml 2>&1 >report.txt");
    let output = tokio::process::Command::new("script")
        .current_dir(dir.path())
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("CLERK_API_URL", simulator.api_url())
        .env("CLERK_SECRET_KEY", KEY)
        .env("MEMBERSYNC_CONCURRENCY", "2")
        .env("TERM", "xterm")
        .env_remove("MEMBERSYNC_FILE")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{terminal}");
    assert!(
        terminal.contains("applying ["),
        "the bar was drawn: {terminal:?}"
    );
    let lines = screen_lines(&terminal);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), FAILURES, "{lines:#?}");
    for line in warnings {
        assert!(
            !line.contains("applying [") && line.trim_start().starts_with("20"),
            "a log line shares its line with the bar: {line:?}\n{terminal:?}"
        );
    }
    let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
    assert!(!report.contains("applying ["), "the bar stays off stdout");
}
