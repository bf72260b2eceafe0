//! Why no answer came from Clerk: the cause read from the error's chain of sources (reqwest →
//! hyper-util → hyper, io and rustls errors), so that the message names the host and what
//! happened — DNS resolution, connection refused, timeout, a TLS certificate (and why it is not
//! trusted), an HTTP/2 or HTTP protocol error, a broken connection — and so that a certificate
//! the machine does not trust is not retried.

use std::error::Error as StdError;
use std::io::ErrorKind;
use std::time::Duration;

use rustls::CertificateError;

/// What kept a request from getting an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The host name did not resolve; the resolver's message.
    Dns(String),
    /// Nothing accepted the connection.
    Refused,
    /// No answer (or no connection) within the request timeout.
    Timeout,
    /// The server's TLS certificate is not trusted; why.
    Certificate(String),
    /// Another TLS failure (the handshake).
    Tls(String),
    /// An HTTP/2 protocol error (a stream reset, a GOAWAY).
    Http2(String),
    /// What came back is not HTTP.
    Protocol(String),
    /// The connection closed or was reset before the whole answer came.
    Closed(String),
    /// Anything else (the network unreachable, …); the innermost message.
    Other(String),
}

impl Cause {
    /// Reads the cause from an error and its sources.
    pub fn of(error: &(dyn StdError + 'static)) -> Cause {
        let chain = chain(error);
        for error in &chain {
            if let Some(tls) = error.downcast_ref::<rustls::Error>() {
                return match tls {
                    rustls::Error::InvalidCertificate(reason) => {
                        Cause::Certificate(certificate_reason(reason))
                    }
                    other => Cause::Tls(other.to_string()),
                };
            }
        }
        // hyper-util names a failed lookup "dns error"; the resolver's own message is the
        // innermost error under it.
        if let Some(at) = chain.iter().position(|e| e.to_string() == "dns error") {
            let reason = chain[at + 1..].last().map(ToString::to_string);
            return Cause::Dns(reason.unwrap_or_else(|| "no address".to_owned()));
        }
        if chain.iter().any(|e| is_timeout(*e)) {
            return Cause::Timeout;
        }
        if io_kind(&chain, &[ErrorKind::ConnectionRefused]).is_some() {
            return Cause::Refused;
        }
        if let Some(cause) = chain.iter().find_map(|e| hyper_cause(*e)) {
            return cause;
        }
        let closed = [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ];
        if let Some(kind) = io_kind(&chain, &closed) {
            return Cause::Closed(kind.to_string());
        }
        let innermost = chain.last().map(ToString::to_string).unwrap_or_default();
        Cause::Other(innermost)
    }

    /// Whether trying again may help: not when the certificate is not trusted (it will not be
    /// trusted a second later either).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Cause::Certificate(_))
    }

    /// What to tell the user about `host` (`api.clerk.com`, `127.0.0.1:8080`).
    pub fn describe(&self, host: &str, timeout: Duration) -> String {
        match self {
            Cause::Dns(reason) => format!(
                "cannot reach Clerk at {host}: DNS resolution failed ({reason}); check --api-url (CLERK_API_URL) and this machine's DNS"
            ),
            Cause::Refused => format!(
                "cannot reach Clerk at {host}: connection refused (nothing listens there, or a firewall refuses the connection)"
            ),
            Cause::Timeout => format!(
                "no answer from Clerk at {host} within {} (timeout; --request-timeout sets it)",
                humantime::format_duration(timeout)
            ),
            Cause::Certificate(reason) => format!(
                "cannot reach Clerk at {host}: its TLS certificate is not trusted: {reason}; not retried (a wrong --api-url, or a proxy that intercepts TLS?)"
            ),
            Cause::Tls(reason) => {
                format!("cannot reach Clerk at {host}: the TLS handshake failed: {reason}")
            }
            Cause::Http2(reason) => {
                format!("the connection to Clerk at {host} failed: HTTP/2 protocol error: {reason}")
            }
            Cause::Protocol(reason) => format!(
                "the answer from {host} is not valid HTTP ({reason}); is --api-url Clerk's Backend API?"
            ),
            Cause::Closed(reason) => format!(
                "the connection to Clerk at {host} broke before the answer was complete ({reason})"
            ),
            Cause::Other(reason) => format!("cannot reach Clerk at {host}: {reason}"),
        }
    }
}

/// An error and its sources, `a: b: c` (for debug logs: reqwest's own message alone is "error
/// sending request").
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text.push_str(": ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    text
}

/// The error and its sources, outermost first. An `io::Error` that wraps another error does
/// not list it as its source (it forwards to the wrapped error's source), so it is added here.
fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut chain: Vec<&'a (dyn StdError + 'static)> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        if chain.len() > 32 {
            break;
        }
        chain.push(error);
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        next = match wrapped {
            // Its source is the wrapped error's source: visit the wrapped error first.
            Some(inner) => Some(inner as &'a (dyn StdError + 'static)),
            None => error.source(),
        };
    }
    chain
}

fn io_kind(chain: &[&(dyn StdError + 'static)], kinds: &[ErrorKind]) -> Option<ErrorKind> {
    chain
        .iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
        .find(|kind| kinds.contains(kind))
}

fn is_timeout(error: &(dyn StdError + 'static)) -> bool {
    if let Some(error) = error.downcast_ref::<reqwest::Error>() {
        return error.is_timeout();
    }
    if let Some(error) = error.downcast_ref::<hyper::Error>() {
        return error.is_timeout();
    }
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::TimedOut)
}

/// hyper's own kinds: an HTTP/2 error, an answer that is not HTTP, a connection closed early.
fn hyper_cause(error: &(dyn StdError + 'static)) -> Option<Cause> {
    let hyper = error.downcast_ref::<hyper::Error>()?;
    let detail = || {
        hyper
            .source()
            .map(ToString::to_string)
            .unwrap_or_else(|| hyper.to_string())
    };
    if hyper.to_string() == "http2 error" {
        Some(Cause::Http2(detail()))
    } else if hyper.is_parse() {
        Some(Cause::Protocol(hyper.to_string()))
    } else if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
        Some(Cause::Closed(hyper.to_string()))
    } else {
        None
    }
}

/// Why a certificate is not trusted, in words.
fn certificate_reason(reason: &CertificateError) -> String {
    let words = match reason {
        CertificateError::UnknownIssuer => {
            "it is issued by an authority this machine does not trust (a self-signed certificate, or a private CA)"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it is not valid for this host name"
        }
        CertificateError::Revoked => "it has been revoked",
        _ => "it is invalid",
    };
    format!(
        "{words} ({})",
        rustls::Error::InvalidCertificate(reason.clone())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and a source, as hyper-util's `ConnectError` is.
    #[derive(Debug)]
    struct Wrapped(&'static str, Box<dyn StdError + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str(self.0)
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn wrapped(message: &'static str, inner: impl StdError + Send + Sync + 'static) -> Wrapped {
        Wrapped(message, Box::new(inner))
    }

    // DNS cannot be made to fail on loopback without a network; this is the chain reqwest
    // builds for a name that does not resolve (its `GaiResolver` through hyper-util).
    #[test]
    fn a_name_that_does_not_resolve_is_a_dns_failure_with_the_resolvers_message() {
        let lookup = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        let error = wrapped(
            "client error (Connect)",
            wrapped("dns error", wrapped("error resolving DNS", lookup)),
        );
        let cause = Cause::of(&error);
        assert_eq!(
            cause,
            Cause::Dns("failed to lookup address information: Name or service not known".into())
        );
        let text = cause.describe("api.clerk.invalid", Duration::from_secs(30));
        assert!(
            text.starts_with("cannot reach Clerk at api.clerk.invalid: DNS resolution failed"),
            "{text}"
        );
        assert!(cause.is_retryable());
    }

    #[test]
    fn an_untrusted_certificate_says_why_and_is_not_retried() {
        // As hyper-rustls hands it on: an io::Error around tokio-rustls's io::Error around it.
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(std::io::Error::new(ErrorKind::InvalidData, tls));
        let error = wrapped("client error (Connect)", io);
        let cause = Cause::of(&error);
        assert!(matches!(&cause, Cause::Certificate(reason) if reason.contains("self-signed")));
        assert!(!cause.is_retryable());
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        let error = wrapped("tls", std::io::Error::new(ErrorKind::InvalidData, expired));
        assert!(
            matches!(Cause::of(&error), Cause::Certificate(reason) if reason.starts_with("it has expired"))
        );
    }

    #[test]
    fn refused_reset_and_timed_out_connections_are_told_apart() {
        let kind = |kind: ErrorKind| wrapped("tcp connect error", std::io::Error::from(kind));
        assert_eq!(
            Cause::of(&kind(ErrorKind::ConnectionRefused)),
            Cause::Refused
        );
        assert_eq!(Cause::of(&kind(ErrorKind::TimedOut)), Cause::Timeout);
        assert!(matches!(
            Cause::of(&kind(ErrorKind::ConnectionReset)),
            Cause::Closed(_)
        ));
        let text = Cause::Timeout.describe("127.0.0.1:9", Duration::from_secs(2));
        assert_eq!(
            text,
            "no answer from Clerk at 127.0.0.1:9 within 2s (timeout; --request-timeout sets it)"
        );
    }

    #[test]
    fn another_error_keeps_its_innermost_message() {
        let error = wrapped(
            "client error",
            std::io::Error::other("network is unreachable"),
        );
        assert_eq!(
            Cause::of(&error),
            Cause::Other("network is unreachable".into())
        );
    }
}
