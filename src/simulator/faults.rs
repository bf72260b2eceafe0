//! Scripted faults: which requests they hit and what they do to them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::SimState;

/// A change to the instance made by a fault, as if another client raced membersync.
#[derive(Clone)]
pub struct StateHook(pub Arc<dyn Fn(&mut SimState) + Send + Sync>);

impl std::fmt::Debug for StateHook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("StateHook")
    }
}

/// What a scripted fault does to the request it matches.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status and Clerk error code; nothing is done.
    Before { status: u16, code: String },
    /// Do the request, then answer this status anyway (the client cannot know it worked).
    After { status: u16 },
    /// Close the connection before the answer is complete; with `applied`, after doing it.
    Drop { applied: bool },
    /// Wait this long before handling the request.
    Delay(Duration),
    /// Do the request and answer 200 with a body that is not valid JSON.
    Malformed,
    /// Never answer.
    Stall,
    /// Change the instance first (another client racing), then handle the request normally.
    Race(StateHook),
}

impl FaultKind {
    /// A race: `change` is applied to the instance just before the matched request.
    pub fn race(change: impl Fn(&mut SimState) + Send + Sync + 'static) -> FaultKind {
        FaultKind::Race(StateHook(Arc::new(change)))
    }
}

/// A scripted fault: which requests it matches, how many it lets through first, how many it
/// hits, and what it does.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `GET`, `POST`, … (`None`: any method; `"WRITE"`: any method but GET).
    pub method: Option<String>,
    /// A substring of the path (`None`: any path).
    pub path_contains: Option<String>,
    /// Matching requests let through before the fault starts.
    pub skip: usize,
    /// Matching requests the fault hits (`usize::MAX`: every one).
    pub times: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault hitting every request, once.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            method: None,
            path_contains: None,
            skip: 0,
            times: 1,
            kind,
        }
    }

    /// Only requests with this method (`"WRITE"`: POST, PATCH and DELETE) whose path contains
    /// `path` (empty: any path).
    pub fn on(mut self, method: &str, path: &str) -> Fault {
        self.method = Some(method.to_owned());
        self.path_contains = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    pub fn skip(mut self, skip: usize) -> Fault {
        self.skip = skip;
        self
    }

    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    pub fn always(self) -> Fault {
        self.times(usize::MAX)
    }

    pub(super) fn matches(&self, method: &str, path: &str) -> bool {
        let method_matches = match self.method.as_deref() {
            None => true,
            Some("WRITE") => method != "GET",
            Some(wanted) => wanted.eq_ignore_ascii_case(method),
        };
        method_matches
            && self
                .path_contains
                .as_deref()
                .is_none_or(|part| path.contains(part))
    }
}

/// A 200 whose body breaks off: the client sees the connection drop mid-answer.
pub(super) fn broken_body() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
