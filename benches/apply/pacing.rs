//! `-- pacing`: the pacer against a limit it was not told, under each limiter design a real
//! API may run (`pacing-sliding`, `pacing-fixed`, `pacing-bucket`, `pacing-full-bucket` run one
//! model). The simulator allows 40 requests a second; membersync is told 1×, 1.5×, 2.5× and
//! 10× that, at 10 ms and 100 ms latency, and creates 1,600 memberships with 8 in flight.
//! `PACING_CHANGES=N` changes the number of creates, `PACING_TOLD=2.5` and
//! `PACING_LATENCY=100` run one row; `PACING_TIMELINE=1` (or `=100`, per 100 ms) prints what the
//! simulator accepted and refused in each half second, and what each 429 taught the pacer.

use std::time::Duration;

use membersync::simulator::{RateLimitModel, SimOptions, SimUser, Simulator, generated_state};
use serde_json::Value;

use super::{KEY, Scratch, membersync};

/// The real limit, in requests per second.
const REAL: f64 = 40.0;
const ORGANIZATIONS: usize = 6;

/// The limit each model is given: 40 a second, or for the fixed window 400 per aligned 10 s.
fn real_limit(model: RateLimitModel) -> &'static str {
    match model {
        RateLimitModel::Fixed => "400/10s",
        _ => "40/s",
    }
}

/// What one run measured.
struct Row {
    requests: usize,
    throttled: usize,
    throughput: f64,
    pace: Option<f64>,
}

pub async fn pacing(models: &[RateLimitModel]) {
    let changes: usize = std::env::var("PACING_CHANGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_600);
    println!(
        "pacing: the API really allows {REAL}/s; {changes} creates, --concurrency 8; \
         throughput = requests accepted ÷ wall time of the run"
    );
    println!(
        "  model        limit     told  --rate-limit  latency  requests  answered 429  429 share  throughput ÷ real limit  learnt pace"
    );
    let only = |name: &str, value: f64| {
        std::env::var(name)
            .ok()
            .and_then(|wanted| wanted.parse::<f64>().ok())
            .is_none_or(|wanted| wanted == value)
    };
    for &model in models {
        for told in [1.0, 1.5, 2.5, 10.0]
            .into_iter()
            .filter(|t| only("PACING_TOLD", *t))
        {
            for latency in [10, 100]
                .into_iter()
                .filter(|l| only("PACING_LATENCY", *l as f64))
            {
                let row = run(model, told, Duration::from_millis(latency), changes).await;
                let pace = row
                    .pace
                    .map_or("—".to_owned(), |pace| format!("{pace:.1}/s"));
                println!(
                    "  {:<11}  {:<8}  {told:>4}×  {:>12}  {latency:>4} ms  {:>8}  {:>12}  {:>8.1}%  {:>23.2}  {pace:>11}",
                    model.to_string(),
                    real_limit(model),
                    format!("{}/s", (REAL * told).round()),
                    row.requests,
                    row.throttled,
                    100.0 * row.throttled as f64 / row.requests as f64,
                    row.throughput / REAL,
                );
            }
        }
    }
    println!();
}

async fn run(model: RateLimitModel, told: f64, latency: Duration, changes: usize) -> Row {
    let per_organization = changes.div_ceil(ORGANIZATIONS);
    let mut state = generated_state(ORGANIZATIONS, 0);
    state.users = (0..=per_organization)
        .map(|user| SimUser {
            id: format!("user_{user}"),
            emails: vec![format!("u{user}@example.com")],
        })
        .collect();
    let options = SimOptions {
        latency,
        rate_limit: Some(real_limit(model).parse().expect("a rate")),
        rate_limit_model: model,
        ..SimOptions::default()
    };
    let simulator = Simulator::start_with(state, KEY, options)
        .await
        .expect("the simulator starts");
    let mut text = String::from("version: 1\norganizations:\n");
    for org in 0..ORGANIZATIONS {
        text.push_str(&format!(
            "  org_{org}:\n    members:\n      user_0: admin\n"
        ));
        for user in 1..per_organization {
            text.push_str(&format!("      user_{user}: member\n"));
        }
    }
    let scratch = Scratch::new("pacing");
    let file = scratch.write("membersync.yaml", &text);
    let rate = format!("{}/s", (REAL * told).round());
    let output = membersync(
        &simulator,
        &[
            "apply",
            "--rate-limit",
            &rate,
            "--concurrency",
            "8",
            "--log-format",
            "json",
        ],
        &file,
        &[(
            "RUST_LOG",
            "warn,membersync::commands::execute=info,membersync::clerk::pacing=info",
        )],
    )
    .await;
    let requests = simulator.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let accepted = requests.len() - throttled;
    if std::env::var_os("PACING_TIMELINE").is_some() {
        timeline(&requests);
        lessons(&output.stderr);
    }
    let pace = output
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "run finished")
        .find_map(|line| line["pace_per_second"].as_f64());
    Row {
        requests: requests.len(),
        throttled,
        throughput: accepted as f64 / output.wall.as_secs_f64(),
        pace,
    }
}

/// What each 429 taught the pacer, from its log lines.
fn lessons(stderr: &str) {
    for line in stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"].as_str().is_some_and(|m| m.contains("429")))
    {
        println!(
            "    {} 429: accepted {}/s, pace {}/s, climbing {}",
            line["timestamp"].as_str().unwrap_or_default(),
            line["accepted_per_second"],
            line["pace_per_second"],
            line["climbing"]
        );
    }
}

/// Accepted and refused requests in each half second (`PACING_TIMELINE=100`: each 100 ms), as
/// the simulator saw them.
fn timeline(requests: &[membersync::simulator::LoggedRequest]) {
    let bin_ms: u128 = std::env::var("PACING_TIMELINE")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .filter(|ms| *ms >= 10)
        .unwrap_or(500);
    let bins = requests
        .iter()
        .map(|r| (r.at.as_millis() / bin_ms) as usize)
        .max()
        .unwrap_or_default()
        + 1;
    let mut counts = vec![(0, 0); bins];
    for request in requests {
        let bin = &mut counts[(request.at.as_millis() / bin_ms) as usize];
        if request.status == 429 {
            bin.1 += 1;
        } else {
            bin.0 += 1;
        }
    }
    let line: Vec<String> = counts
        .iter()
        .map(|(accepted, refused)| {
            if *refused > 0 {
                format!("{accepted}+{refused}!")
            } else {
                accepted.to_string()
            }
        })
        .collect();
    println!("    per {bin_ms} ms: {}", line.join(" "));
}
