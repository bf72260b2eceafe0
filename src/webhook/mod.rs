//! Clerk webhooks (docs/kubernetes.md: "Webhooks: drift repaired in seconds"): Svix signatures, the events the
//! daemon acts on, replay protection, and the per-organization work queue (`queue`). Clerk signs
//! each delivery with Svix: `svix-signature` holds space-separated `v1,<base64 HMAC-SHA256>` over
//! `svix-id.svix-timestamp.body`, keyed with the base64 part of the `whsec_…` secret
//! (<https://docs.svix.com/receiving/verifying-payloads/how-manual>).

pub(crate) mod queue;
pub(crate) mod target;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from now, either way.
pub(crate) const TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The largest body accepted (413 over it).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// The webhook signing secret (`whsec_…`): never shown.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("WebhookSecret(redacted)")
    }
}

/// Why the webhook secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("cannot read the webhook secret file {path}: {detail}")]
    File { path: String, detail: String },
    #[error(
        "the webhook secret is not a Svix signing secret (`whsec_` followed by base64); copy it from the endpoint's page in the Clerk dashboard"
    )]
    Malformed,
}

impl WebhookSecret {
    /// A secret as the Clerk dashboard shows it, `whsec_<base64>` (the prefix is optional).
    pub fn parse(text: &str) -> Result<WebhookSecret, WebhookSecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookSecretError::Malformed)?;
        if key.is_empty() {
            return Err(WebhookSecretError::Malformed);
        }
        Ok(WebhookSecret { key })
    }

    /// From `--webhook-secret-file` / `CLERK_WEBHOOK_SECRET_FILE`, else `CLERK_WEBHOOK_SECRET`;
    /// `None` when neither is set.
    pub(crate) fn from_env_or_file(
        file: Option<&Path>,
    ) -> Result<Option<WebhookSecret>, WebhookSecretError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|error| WebhookSecretError::File {
                path: path.display().to_string(),
                detail: error.to_string(),
            })?;
            return WebhookSecret::parse(&text).map(Some);
        }
        match std::env::var("CLERK_WEBHOOK_SECRET") {
            Ok(text) if !text.trim().is_empty() => WebhookSecret::parse(&text).map(Some),
            _ => Ok(None),
        }
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `svix-signature` header value for this delivery (the simulator and tests send it).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signature = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", STANDARD.encode(signature))
    }

    /// Checks a delivery: the headers, the timestamp within [`TOLERANCE`] of `now` (Unix
    /// seconds), and any `v1` signature matching (compared in constant time).
    pub(crate) fn verify(
        &self,
        headers: &Headers<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejected> {
        let (Some(id), Some(timestamp), Some(signatures)) =
            (headers.id, headers.timestamp, headers.signature)
        else {
            return Err(Rejected::MissingHeaders);
        };
        let at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Rejected::BadTimestamp)?;
        if at.abs_diff(now) > TOLERANCE.as_secs() {
            return Err(Rejected::BadTimestamp);
        }
        for candidate in signatures.split_whitespace() {
            let Some(encoded) = candidate.strip_prefix("v1,") else {
                continue;
            };
            let Ok(signature) = STANDARD.decode(encoded) else {
                continue;
            };
            if self
                .mac(id, timestamp.trim(), body)
                .verify_slice(&signature)
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(Rejected::BadSignature)
    }
}

/// The Svix headers of a delivery.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a delivery is refused (401; the reason is only logged, at debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("a Svix header is missing")]
    MissingHeaders,
    #[error("the timestamp is malformed or more than 5 minutes from now")]
    BadTimestamp,
    #[error("no signature matches")]
    BadSignature,
}

/// What a verified event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `organizationMembership.created`, …
    pub kind: String,
    pub organization_id: Option<String>,
    /// Where the event carries it (membership events do).
    pub slug: Option<String>,
}

impl Event {
    /// Reads the event's type and organization; `None` when the body is not a Clerk event.
    pub(crate) fn parse(body: &[u8]) -> Option<Event> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let kind = value["type"].as_str()?.to_owned();
        let data = &value["data"];
        let organization = if kind.starts_with("organization.") {
            &data["id"]
        } else if !data["organization"]["id"].is_null() {
            &data["organization"]["id"]
        } else {
            &data["organization_id"]
        };
        let slug = if kind.starts_with("organization.") {
            data["slug"].as_str()
        } else {
            data["organization"]["slug"].as_str()
        };
        Some(Event {
            kind,
            organization_id: organization.as_str().map(str::to_owned),
            slug: slug.map(str::to_owned),
        })
    }

    /// Which family the event belongs to.
    pub(crate) fn family(&self) -> Family {
        if self.kind.starts_with("organizationMembership.") {
            Family::Membership
        } else if self.kind.starts_with("organizationInvitation.") {
            Family::Invitation
        } else if self.kind == "organization.created" {
            Family::OrganizationCreated
        } else if self.kind == "organization.updated" {
            Family::OrganizationUpdated
        } else if self.kind.starts_with("organizationDomain.") {
            Family::Domain
        } else {
            Family::Other
        }
    }
}

/// The kinds of event the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Membership,
    Invitation,
    OrganizationCreated,
    /// An organization's own fields changed (acted on where the files declare them).
    OrganizationUpdated,
    /// An organization's domain was created, changed or deleted (acted on where the files
    /// declare `domains`).
    Domain,
    Other,
}

/// The `svix-id`s seen recently (the last 10,000, for 10 minutes): a redelivery is
/// acknowledged and not processed again.
#[derive(Debug, Default)]
pub struct Replays {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Replays {
    const CAPACITY: usize = 10_000;
    const WINDOW: Duration = Duration::from_secs(10 * 60);

    /// Whether `id` is new (and remembers it).
    pub(crate) fn first_time(&mut self, id: &str) -> bool {
        let now = Instant::now();
        while let Some((at, _)) = self.order.front() {
            if self.order.len() < Self::CAPACITY && now.duration_since(*at) < Self::WINDOW {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        if !self.seen.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back((now, id.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn headers<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> Headers<'a> {
        Headers {
            id: Some(id),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    #[test]
    fn svix_documented_example_verifies() {
        // The example of Svix's "verifying payloads manually" page.
        let body = br#"{"test": 2432232314}"#;
        let ok = headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        );
        assert_eq!(secret().verify(&ok, body, 1614265330), Ok(()));
    }

    #[test]
    fn any_v1_signature_may_match_and_everything_else_is_refused() {
        let body = b"{}";
        let now = 1_700_000_000;
        let good = secret().sign("msg_1", now, body);
        let both = format!("v1,AAAA {good}");
        assert_eq!(
            secret().verify(&headers("msg_1", &now.to_string(), &both), body, now),
            Ok(())
        );
        let other = WebhookSecret::parse("whsec_c2VjcmV0LXR3bw==").unwrap();
        assert_eq!(
            other.verify(&headers("msg_1", &now.to_string(), &good), body, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            secret().verify(&headers("msg_1", &now.to_string(), &good), b"{ }", now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            secret().verify(&headers("msg_1", &now.to_string(), &good), body, now + 301),
            Err(Rejected::BadTimestamp)
        );
        assert_eq!(
            secret().verify(&headers("msg_1", &now.to_string(), &good), body, now - 301),
            Err(Rejected::BadTimestamp)
        );
        assert_eq!(
            secret().verify(&Headers::default(), body, now),
            Err(Rejected::MissingHeaders)
        );
        assert!(format!("{:?}", secret()).contains("redacted"));
    }

    #[test]
    fn events_name_their_organization() {
        let membership = Event::parse(br#"{"type":"organizationMembership.created","data":{"organization":{"id":"org_1","slug":"acme"},"public_user_data":{"user_id":"user_1"}}}"#).unwrap();
        assert_eq!(membership.organization_id.as_deref(), Some("org_1"));
        assert_eq!(membership.slug.as_deref(), Some("acme"));
        assert_eq!(membership.family(), Family::Membership);
        let invitation = Event::parse(
            br#"{"type":"organizationInvitation.accepted","data":{"organization_id":"org_2"}}"#,
        )
        .unwrap();
        assert_eq!(invitation.organization_id.as_deref(), Some("org_2"));
        let created =
            Event::parse(br#"{"type":"organization.created","data":{"id":"org_3","slug":"new"}}"#)
                .unwrap();
        assert_eq!(
            (created.organization_id.as_deref(), created.family()),
            (Some("org_3"), Family::OrganizationCreated)
        );
        assert_eq!(
            Event::parse(br#"{"type":"user.created","data":{}}"#)
                .unwrap()
                .family(),
            Family::Other
        );
        assert!(Event::parse(b"not json").is_none());
    }

    #[test]
    fn a_replayed_id_is_seen_once() {
        let mut replays = Replays::default();
        assert!(replays.first_time("msg_1"));
        assert!(!replays.first_time("msg_1"));
        assert!(replays.first_time("msg_2"));
    }
}
