//! OAuth 2.0 access tokens: the token endpoint's answer, and a cache that keeps a token for
//! its lifetime within a run (one token request per directory, not one per group or page).

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::error::DirectoryError;
use super::secret::Secret;
use super::transport::{Auth, Call, Endpoint, Reply, Transport};

/// A token is renewed this long before it expires, so none expires between the check and
/// the request (or while a page is read).
const MARGIN: Duration = Duration::from_secs(60);

/// An access token and when it stops being usable.
pub(crate) struct AccessToken {
    pub secret: Secret,
    pub expires_at: Instant,
}

/// The success answer of a token endpoint (RFC 6749 §5.1). `expires_in` is a number of
/// seconds (some endpoints have sent it as a string).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl AccessToken {
    /// Reads a token endpoint's answer; a token without `expires_in` is taken to last an hour,
    /// the lifetime Google and Microsoft give.
    pub(crate) fn from_answer(body: &[u8]) -> Result<AccessToken, String> {
        // serde's own message may quote a value: only where it failed is kept.
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|error| {
            format!(
                "the token answer is not the documented JSON with an access_token (line {}, column {})",
                error.line(),
                error.column()
            )
        })?;
        if answer.access_token.is_empty() {
            return Err("the token answer has an empty access_token".to_owned());
        }
        let seconds = match answer.expires_in {
            Some(serde_json::Value::Number(number)) => number.as_u64(),
            Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        Ok(AccessToken {
            secret: Secret::new(answer.access_token),
            expires_at: Instant::now() + Duration::from_secs(seconds),
        })
    }

    fn usable(&self) -> bool {
        self.expires_at > Instant::now() + MARGIN
    }
}

/// The current access token of one directory. Concurrent readers wait for one exchange.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: tokio::sync::Mutex<Option<AccessToken>>,
}

impl TokenCache {
    /// The cached token while it is usable, or a new one from `exchange`; `true` when new.
    pub(crate) async fn get<F, Fut>(&self, exchange: F) -> Result<(Secret, bool), DirectoryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, DirectoryError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref().filter(|token| token.usable()) {
            return Ok((token.secret.clone(), false));
        }
        let token = exchange().await?;
        let secret = token.secret.clone();
        *slot = Some(token);
        Ok((secret, true))
    }

    /// Drops `token` (the API refused it before its time: revoked, or the clock is off), so
    /// the next `get` asks for a new one.
    pub(crate) async fn forget(&self, token: &Secret) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|cached| &cached.secret == token) {
            *slot = None;
        }
    }
}

/// What a token request is for, in messages.
pub(crate) const TOKEN_CONTEXT: &str = "getting an access token";

/// Asks a token endpoint for an access token with a form (the grant and its credentials),
/// through the directory's limiter and retries.
pub(crate) async fn request_token(
    transport: &Transport,
    url: &url::Url,
    fields: &[(&str, &str)],
) -> Result<AccessToken, DirectoryError> {
    // The serializer is not `Send`: it is gone before the request is awaited.
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        Secret::new(form.finish())
    };
    let reply = transport
        .send(&Call {
            context: TOKEN_CONTEXT,
            endpoint: Endpoint::Token,
            method: reqwest::Method::POST,
            url,
            auth: Auth::None,
            form: Some(form.expose()),
            headers: &[],
        })
        .await?;
    let token = AccessToken::from_answer(&reply.body).map_err(|detail| DirectoryError::Decode {
        directory: transport.directory.clone(),
        provider: transport.kind,
        context: TOKEN_CONTEXT.to_owned(),
        detail,
    })?;
    transport.remember(&token.secret);
    Ok(token)
}

/// A GET with the directory's access token. A 401 on a cached token renews it once: it may
/// have been revoked, or the clocks disagree.
pub(crate) async fn authorized_get<F, Fut>(
    transport: &Transport,
    tokens: &TokenCache,
    exchange: F,
    url: &url::Url,
    context: &str,
    headers: &[(&'static str, &'static str)],
) -> Result<Reply, DirectoryError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<AccessToken, DirectoryError>>,
{
    let mut renewed = false;
    loop {
        let (token, fresh) = tokens.get(&exchange).await?;
        let reply = transport
            .send(&Call {
                context,
                endpoint: Endpoint::Api,
                method: reqwest::Method::GET,
                url,
                auth: Auth::Bearer(&token),
                form: None,
                headers,
            })
            .await;
        match reply {
            Err(error) if error.status() == Some(401) && !fresh && !renewed => {
                tokens.forget(&token).await;
                renewed = true;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_answer_is_read_with_a_numeric_or_string_lifetime() {
        let token = AccessToken::from_answer(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(token.secret.expose(), "ya29.x");
        assert!(token.usable());
        let token = AccessToken::from_answer(br#"{"access_token":"t","expires_in":"30"}"#).unwrap();
        assert!(
            !token.usable(),
            "a token that expires within the margin is renewed"
        );
        let error = AccessToken::from_answer(br#"{"token_type":"Bearer"}"#)
            .err()
            .unwrap();
        assert!(error.contains("access_token"), "{error}");
    }

    #[tokio::test]
    async fn the_cache_asks_once_while_the_token_lives_and_again_after_forget() {
        let cache = TokenCache::default();
        let exchanges = std::sync::atomic::AtomicU32::new(0);
        let exchange = || async {
            let n = exchanges.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken {
                secret: Secret::new(format!("token-{n}")),
                expires_at: Instant::now() + Duration::from_secs(3600),
            })
        };
        let (first, fresh) = cache.get(exchange).await.unwrap();
        assert!(fresh);
        let (again, fresh) = cache.get(exchange).await.unwrap();
        assert!(!fresh);
        assert_eq!(first, again);
        cache.forget(&first).await;
        let (renewed, fresh) = cache.get(exchange).await.unwrap();
        assert!(fresh);
        assert_ne!(first, renewed);
        assert_eq!(exchanges.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
