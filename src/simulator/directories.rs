//! Fake company directories on a real HTTP server (127.0.0.1, a port of its own), for tests,
//! `demo` and rehearsals: Google's Admin SDK (service-account JWT bearer token,
//! `members.list` with `nextPageToken` and derived membership), Okta (`SSWS` token, group
//! members with `Link` paging, groups by name) and Microsoft Graph (client-credentials token,
//! `transitiveMembers` of users with `@odata.nextLink`, `ConsistencyLevel` checked).
//!
//! One [`DirectoryState`] (users with a status, groups of users and nested groups) is seen
//! through all three. Credentials are checked as the providers do: the Google assertion's
//! RS256 signature against the registered service account's public key (a wrong signature is
//! Google's `400 invalid_grant`), the Okta token, the Entra client secret (`401
//! invalid_client`); access tokens expire. Every request is logged, and scripted
//! [`DirectoryFault`]s answer 429 with `Retry-After` (Okta: `X-Rate-Limit-Reset`), 5xx or 401.

mod file;
mod google;
mod graph;
mod okta;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;

/// A person in the fake directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Okta `00u…`, Graph object ID, Google numeric ID: any string.
    pub id: String,
    /// The primary email; `None`: the directory has none (Okta login only, Graph no mail).
    pub email: Option<String>,
    pub status: UserStatus,
}

/// A user's account state, as each provider shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Google `ACTIVE`, Okta `ACTIVE`, Graph `accountEnabled: true`.
    Active,
    /// Okta `LOCKED_OUT` (Google `ACTIVE`, Graph enabled): active, but locked.
    LockedOut,
    /// Okta `STAGED` (never activated); Google `SUSPENDED`, Graph disabled.
    Staged,
    /// Google and Okta `SUSPENDED`, Graph disabled.
    Suspended,
    /// Okta `DEPROVISIONED`; Google `SUSPENDED`, Graph disabled.
    Deprovisioned,
}

impl UserStatus {
    fn google(self) -> &'static str {
        match self {
            UserStatus::Active | UserStatus::LockedOut => "ACTIVE",
            _ => "SUSPENDED",
        }
    }

    fn okta(self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVE",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::Staged => "STAGED",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
        }
    }

    fn enabled(self) -> bool {
        matches!(self, UserStatus::Active | UserStatus::LockedOut)
    }
}

/// A group: its users and nested groups (Okta shows only the users).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// Okta `00g…`, Graph object ID, Google ID.
    pub id: String,
    /// Okta's `profile.name`.
    pub name: String,
    /// Google's group key.
    pub email: String,
    /// User IDs.
    pub users: Vec<String>,
    /// Nested group IDs.
    pub groups: Vec<String>,
}

/// What the fake directories hold, and the credentials they accept.
#[derive(Debug, Clone)]
pub struct DirectoryState {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    /// Admins a Google service account may act as (`sub`).
    pub google_admins: Vec<String>,
    /// Scopes granted to service accounts by domain-wide delegation.
    pub google_scopes: Vec<String>,
    pub okta_token: String,
    pub entra_tenant_id: String,
    pub entra_client_id: String,
    pub entra_client_secret: String,
    /// How long an access token lives.
    pub token_lifetime: Duration,
}

impl Default for DirectoryState {
    fn default() -> DirectoryState {
        DirectoryState {
            users: Vec::new(),
            groups: Vec::new(),
            google_admins: vec!["admin@example.com".into()],
            google_scopes: vec![crate::directory::GOOGLE_SCOPE.into()],
            okta_token: "00fake-okta-api-token-0123456789".into(),
            entra_tenant_id: "00000000-0000-0000-0000-000000000000".into(),
            entra_client_id: "11111111-1111-1111-1111-111111111111".into(),
            entra_client_secret: "fake~entra~client~secret~0123456789".into(),
            token_lifetime: Duration::from_secs(3599),
        }
    }
}

impl DirectoryState {
    /// Adds a user with an email.
    pub fn user(&mut self, id: &str, email: &str, status: UserStatus) -> &mut DirectoryState {
        self.users.push(DirectoryUser {
            id: id.to_owned(),
            email: Some(email.to_owned()),
            status,
        });
        self
    }

    /// Adds a group (`email` for Google, `name` for Okta) of these users and nested groups.
    pub fn group(
        &mut self,
        id: &str,
        name: &str,
        email: &str,
        users: &[&str],
        groups: &[&str],
    ) -> &mut DirectoryState {
        self.groups.push(DirectoryGroup {
            id: id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
            users: users.iter().map(|user| (*user).to_owned()).collect(),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        });
        self
    }
}

/// Which endpoint a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeEndpoint {
    GoogleToken,
    GoogleMembers,
    OktaGroups,
    OktaUsers,
    EntraToken,
    GraphMembers,
    Unknown,
}

impl FakeEndpoint {
    fn of(method: &Method, path: &str) -> FakeEndpoint {
        let post = method == Method::POST;
        match path.split('/').nth(1).unwrap_or_default() {
            "google" if post && path == "/google/token" => FakeEndpoint::GoogleToken,
            "google" if path.ends_with("/members") => FakeEndpoint::GoogleMembers,
            "okta" if path.trim_end_matches('/') == "/okta/api/v1/groups" => {
                FakeEndpoint::OktaGroups
            }
            "okta" if path.ends_with("/users") => FakeEndpoint::OktaUsers,
            "entra" if post => FakeEndpoint::EntraToken,
            "graph" => FakeEndpoint::GraphMembers,
            _ => FakeEndpoint::Unknown,
        }
    }

    fn is_token(self) -> bool {
        matches!(self, FakeEndpoint::GoogleToken | FakeEndpoint::EntraToken)
    }
}

/// A scripted answer: the next `times` requests to `endpoint` get `status` instead of being
/// served. For a 429, `retry_after` seconds go in `Retry-After` (Okta: `X-Rate-Limit-Reset`).
#[derive(Debug, Clone)]
pub struct DirectoryFault {
    pub endpoint: FakeEndpoint,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub times: usize,
}

/// One request the fake directories received.
#[derive(Debug, Clone)]
pub struct DirectoryRequest {
    pub endpoint: FakeEndpoint,
    pub method: String,
    pub path: String,
    /// The raw query string (percent-encoded as sent).
    pub query: String,
    /// The `ConsistencyLevel` header, if sent.
    pub consistency_level: Option<String>,
    pub status: u16,
    /// When it arrived, since the server started.
    pub at: Duration,
}

/// A throwaway RSA service-account key in Google's JSON key format, made at run time (for
/// tests and rehearsals only).
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// The key file's text, private key included.
    pub json: String,
    /// The public key, PEM (SubjectPublicKeyInfo).
    pub public_pem: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

/// Makes a 2048-bit RSA service-account key whose file names `token_uri`.
pub fn service_account_key(client_email: &str, token_uri: &str) -> ServiceAccountKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("an RSA key is generated");
    let private =
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("the key encodes as PKCS#8");
    let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key())
        .expect("the public key encodes");
    let private_pem = pem("PRIVATE KEY", private.as_ref());
    let json = json!({
        "type": "service_account",
        "project_id": "membersync-fake",
        "private_key_id": format!("{:040x}", rand::random::<u128>()),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    });
    ServiceAccountKey {
        client_email: client_email.to_owned(),
        json: serde_json::to_string_pretty(&json).expect("JSON"),
        public_pem: pem("PUBLIC KEY", public.as_ref()),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An access token the fake issued.
struct Issued {
    endpoint: FakeEndpoint,
    expires: std::time::Instant,
}

pub(super) struct Inner {
    pub(super) state: DirectoryState,
    /// Service accounts' public keys, by client email.
    keys: HashMap<String, String>,
    tokens: HashMap<String, Issued>,
    issued: u64,
    log: Vec<DirectoryRequest>,
    faults: Vec<DirectoryFault>,
    started: std::time::Instant,
    /// Each group's users (with or without nested groups' users), by group ID (dropped on
    /// every change).
    flattened: HashMap<(String, bool), Arc<Vec<usize>>>,
}

impl Inner {
    /// Issues an access token for the endpoints behind `endpoint`'s token endpoint.
    pub(super) fn issue(&mut self, endpoint: FakeEndpoint, prefix: &str) -> String {
        self.issued += 1;
        let token = format!("{prefix}fake-access-token-{}", self.issued);
        let expires = std::time::Instant::now() + self.state.token_lifetime;
        self.tokens
            .insert(token.clone(), Issued { endpoint, expires });
        token
    }

    /// Whether the `Authorization: Bearer` header carries a live token from `endpoint`.
    pub(super) fn bearer_ok(&self, headers: &HeaderMap, endpoint: FakeEndpoint) -> bool {
        let token = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        token
            .and_then(|token| self.tokens.get(token))
            .is_some_and(|issued| {
                issued.endpoint == endpoint && issued.expires > std::time::Instant::now()
            })
    }

    pub(super) fn public_key(&self, client_email: &str) -> Option<&str> {
        self.keys.get(client_email).map(String::as_str)
    }

    pub(super) fn group(&self, key: &str) -> Option<&DirectoryGroup> {
        let key_lower = key.to_lowercase();
        self.state
            .groups
            .iter()
            .find(|group| group.id == key || group.email.to_lowercase() == key_lower)
    }

    /// The indexes (into `state.users`) of a group's users, nested groups' users included when
    /// `nested`, each once, in order of discovery.
    pub(super) fn users_of(&mut self, group_id: &str, nested: bool) -> Arc<Vec<usize>> {
        let key = (group_id.to_owned(), nested);
        if let Some(found) = self.flattened.get(&key) {
            return found.clone();
        }
        let by_id: HashMap<&str, usize> = self
            .state
            .users
            .iter()
            .enumerate()
            .map(|(index, user)| (user.id.as_str(), index))
            .collect();
        let mut seen_users = HashSet::new();
        let mut seen_groups = HashSet::from([group_id.to_owned()]);
        let mut queue = vec![group_id.to_owned()];
        let mut users = Vec::new();
        while let Some(id) = queue.pop() {
            let Some(group) = self.state.groups.iter().find(|group| group.id == id) else {
                continue;
            };
            for user in &group.users {
                if let Some(&index) = by_id.get(user.as_str())
                    && seen_users.insert(index)
                {
                    users.push(index);
                }
            }
            if !nested {
                break;
            }
            for inner in group.groups.iter().rev() {
                if seen_groups.insert(inner.clone()) {
                    queue.push(inner.clone());
                }
            }
        }
        let users = Arc::new(users);
        self.flattened.insert(key, users.clone());
        users
    }
}

#[derive(Clone)]
pub(super) struct Shared {
    pub(super) inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`.
    pub(super) base: String,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Running fake directories. Dropping them stops the server.
pub struct FakeDirectories {
    address: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDirectories {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeDirectories {
    /// Starts the fake directories on a free loopback port.
    pub async fn start(state: DirectoryState) -> std::io::Result<FakeDirectories> {
        FakeDirectories::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), state).await
    }

    /// Starts the fake directories on `address`.
    pub async fn start_on(
        address: SocketAddr,
        state: DirectoryState,
    ) -> std::io::Result<FakeDirectories> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                state,
                keys: HashMap::new(),
                tokens: HashMap::new(),
                issued: 0,
                log: Vec::new(),
                faults: Vec::new(),
                started: std::time::Instant::now(),
                flattened: HashMap::new(),
            })),
            base: format!("http://{address}"),
        };
        let app = Router::new()
            .route("/google/token", post(google::token))
            .route(
                "/google/admin/directory/v1/groups/{group}/members",
                get(google::members),
            )
            .route("/okta/api/v1/groups", get(okta::groups))
            .route("/okta/api/v1/groups/{group}/users", get(okta::users))
            .route("/entra/{tenant}/oauth2/v2.0/token", post(graph::token))
            .route(
                "/graph/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user",
                get(graph::members),
            )
            .fallback(unknown)
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeDirectories {
            address,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Google's `api_url` (the Admin SDK's documented paths follow it).
    pub fn google_api_url(&self) -> String {
        format!("{}/google", self.base_url())
    }

    /// Google's token endpoint (a key file's `token_uri`, or `token_url`).
    pub fn google_token_url(&self) -> String {
        format!("{}/google/token", self.base_url())
    }

    /// Okta's `url`.
    pub fn okta_url(&self) -> String {
        format!("{}/okta", self.base_url())
    }

    /// Graph's `api_url`.
    pub fn graph_api_url(&self) -> String {
        format!("{}/graph", self.base_url())
    }

    /// Entra's `token_url`, for the tenant of the state.
    pub fn entra_token_url(&self) -> String {
        let tenant = self.shared.lock().state.entra_tenant_id.clone();
        format!("{}/entra/{tenant}/oauth2/v2.0/token", self.base_url())
    }

    /// A new service-account key, registered (its signatures verify), as a key file's text
    /// whose `token_uri` is this server's.
    pub fn google_key(&self, client_email: &str) -> String {
        let key = service_account_key(client_email, &self.google_token_url());
        self.register_google_key(&key);
        key.json
    }

    /// Registers a service account's public key.
    pub fn register_google_key(&self, key: &ServiceAccountKey) {
        self.shared
            .lock()
            .keys
            .insert(key.client_email.clone(), key.public_pem.clone());
    }

    /// Changes the state (users, groups, credentials).
    pub fn update(&self, change: impl FnOnce(&mut DirectoryState)) {
        let mut inner = self.shared.lock();
        change(&mut inner.state);
        inner.flattened.clear();
    }

    /// Revokes every access token issued so far.
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Scripts answers for the next requests to an endpoint.
    pub fn push_fault(&self, fault: DirectoryFault) {
        self.shared.lock().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<DirectoryRequest> {
        self.shared.lock().log.clone()
    }

    /// Requests received so far at `endpoint`.
    pub fn requests_to(&self, endpoint: FakeEndpoint) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|request| request.endpoint == endpoint)
            .count()
    }
}

/// Applies a scripted fault, then logs the request with the status it got.
async fn record(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let endpoint = FakeEndpoint::of(request.method(), request.uri().path());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let consistency_level = request
        .headers()
        .get("consistencylevel")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let fault = take_fault(&shared, endpoint);
    let response = match fault {
        Some(fault) => fault_response(endpoint, &fault),
        None => next.run(request).await,
    };
    let mut inner = shared.lock();
    let at = inner.started.elapsed();
    inner.log.push(DirectoryRequest {
        endpoint,
        method,
        path,
        query,
        consistency_level,
        status: response.status().as_u16(),
        at,
    });
    response
}

fn take_fault(shared: &Shared, endpoint: FakeEndpoint) -> Option<DirectoryFault> {
    let mut inner = shared.lock();
    let index = inner
        .faults
        .iter()
        .position(|fault| fault.endpoint == endpoint && fault.times > 0)?;
    let fault = &mut inner.faults[index];
    fault.times -= 1;
    let taken = fault.clone();
    if fault.times == 0 {
        inner.faults.remove(index);
    }
    Some(taken)
}

/// The provider's own error shape for a scripted status.
fn fault_response(endpoint: FakeEndpoint, fault: &DirectoryFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!("scripted {} answer", fault.status);
    let body = match endpoint {
        _ if endpoint.is_token() => {
            let code = if fault.status == 401 {
                "invalid_client"
            } else {
                "temporarily_unavailable"
            };
            json!({"error": code, "error_description": message})
        }
        FakeEndpoint::OktaGroups | FakeEndpoint::OktaUsers => {
            json!({"errorCode": "E0000047", "errorSummary": message, "errorCauses": []})
        }
        FakeEndpoint::GraphMembers => {
            json!({"error": {"code": "TooManyRequests", "message": message}})
        }
        _ => json!({"error": {"code": fault.status, "message": message, "status": "UNAVAILABLE"}}),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = fault.retry_after {
        let headers = response.headers_mut();
        if matches!(endpoint, FakeEndpoint::OktaGroups | FakeEndpoint::OktaUsers) {
            let now = std::time::SystemTime::now();
            let reset = now + Duration::from_secs(seconds);
            let epoch = |at: std::time::SystemTime| {
                at.duration_since(std::time::UNIX_EPOCH)
                    .map(|since| since.as_secs())
                    .unwrap_or_default()
            };
            headers.insert("x-rate-limit-limit", "600".parse().expect("a header"));
            headers.insert("x-rate-limit-remaining", "0".parse().expect("a header"));
            if let Ok(value) = epoch(reset).to_string().parse() {
                headers.insert("x-rate-limit-reset", value);
            }
            if let Ok(value) = httpdate::fmt_http_date(now).parse() {
                headers.insert("date", value);
            }
        } else if let Ok(value) = seconds.to_string().parse() {
            headers.insert("retry-after", value);
        }
    }
    response
}

async fn unknown() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no such endpoint in the fake directories"})),
    )
        .into_response()
}

/// The query string's pairs, decoded (names like `$top` included).
pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

pub(super) fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A JSON error answer.
pub(super) fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}
