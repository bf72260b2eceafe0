//! Outgoing webhooks, as Clerk sends them: after each write that succeeds, a Svix-signed
//! `organizationMembership.*` or `organizationInvitation.*` event is posted to the configured
//! URL (`simulate --webhook-url URL --webhook-secret-file F`), so that the daemon's webhook
//! flow can be rehearsed end to end.

use serde_json::json;

use super::state::SimState;
use crate::webhook::WebhookSecret;

/// Where the simulator sends its events, and the secret it signs them with.
#[derive(Debug, Clone)]
pub struct SimWebhook {
    pub url: String,
    pub secret: WebhookSecret,
}

/// The event a successful write makes, if any: its type and body.
pub(super) fn event_for(state: &SimState, method: &str, path: &str) -> Option<serde_json::Value> {
    let mut segments = path.trim_start_matches("/v1/").split('/');
    if segments.next() != Some("organizations") {
        return None;
    }
    let organization = state.organization(segments.next()?)?;
    let rest: Vec<&str> = segments.collect();
    let kind = match (method, rest.as_slice()) {
        ("POST", ["memberships"]) => "organizationMembership.created",
        ("PATCH", ["memberships", _]) | ("PATCH", ["memberships", _, "metadata"]) => {
            "organizationMembership.updated"
        }
        ("DELETE", ["memberships", _]) => "organizationMembership.deleted",
        ("POST", ["invitations"]) | ("POST", ["invitations", "bulk"]) => {
            "organizationInvitation.created"
        }
        ("POST", ["invitations", _, "revoke"]) => "organizationInvitation.revoked",
        _ => return None,
    };
    let user = match rest.as_slice() {
        ["memberships", user, ..] => Some(*user),
        _ => None,
    };
    Some(json!({
        "type": kind,
        "object": "event",
        "data": {
            "organization": {"id": organization.id, "slug": organization.slug},
            "organization_id": organization.id,
            "public_user_data": {"user_id": user},
        },
    }))
}

/// Posts one signed event (in the background; a failed delivery is only logged, as a real
/// endpoint would retry later).
pub(super) fn send(webhook: &SimWebhook, number: u64, event: serde_json::Value) {
    let webhook = webhook.clone();
    tokio::spawn(async move {
        let body = event.to_string();
        let id = format!("msg_sim{number}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let signature = webhook.secret.sign(&id, now, body.as_bytes());
        let sent = reqwest::Client::new()
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("svix-id", id)
            .header("svix-timestamp", now.to_string())
            .header("svix-signature", signature)
            .body(body)
            .send()
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "the simulator could not deliver a webhook");
        }
    });
}
