//! The fake Google: the OAuth 2.0 token endpoint for service-account JWT bearer assertions,
//! and the Admin SDK's `members.list`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::{FakeEndpoint, Inner, Shared, error, query_pairs, query_value};

/// The largest page `members.list` serves.
const MAX_RESULTS: usize = 200;
/// The query parameters of `members.list` in Google's discovery document (admin
/// directory_v1), and the standard ones every method takes. Google refuses others.
const PARAMETERS: [&str; 15] = [
    "includeDerivedMembership",
    "maxResults",
    "pageToken",
    "roles",
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
];

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    scope: String,
    iat: u64,
    exp: u64,
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    error(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// `POST /google/token`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and a signed
/// assertion. Google answers 400 `invalid_grant` for a bad signature, an unknown account or
/// subject, or a lifetime over an hour, and 401 `unauthorized_client` for a scope the
/// delegation does not grant.
pub(super) async fn token(State(shared): State<Shared>, body: String) -> Response {
    let form = query_pairs(Some(&body));
    if query_value(&form, "grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    let Some(assertion) = query_value(&form, "assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let claims = match verify(&shared, assertion) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let mut inner = shared.lock();
    if !claims
        .sub
        .as_ref()
        .is_some_and(|sub| inner.state.google_admins.contains(sub))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid email or User ID",
        );
    }
    let granted = claims.scope.split_whitespace().all(|scope| {
        inner
            .state
            .google_scopes
            .iter()
            .any(|granted| granted == scope)
    });
    if !granted {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let lifetime = inner.state.token_lifetime.as_secs();
    let token = inner.issue(FakeEndpoint::GoogleMembers, "ya29.");
    error(
        StatusCode::OK,
        json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}),
    )
}

/// Checks the assertion's RS256 signature with the public key registered for its `iss`, its
/// audience (this token endpoint), and its lifetime.
fn verify(shared: &Shared, assertion: &str) -> Result<Claims, Response> {
    let invalid =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid("Invalid JWT: the assertion is not a JWT."))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("Invalid JWT: the signing algorithm must be RS256."));
    }
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| invalid("Invalid JWT: claims are missing or malformed."))?;
    let public = shared
        .lock()
        .public_key(&unverified.iss)
        .map(str::to_owned)
        .ok_or_else(|| invalid("Invalid grant: account not found"))?;
    let key = DecodingKey::from_rsa_pem(public.as_bytes())
        .map_err(|_| invalid("Invalid grant: account not found"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/google/token", shared.base)]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("Invalid JWT Signature."),
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                invalid("Invalid JWT: aud is not this token endpoint.")
            }
            _ => invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."),
        })?
        .claims;
    if claims.exp <= claims.iat || claims.exp - claims.iat > 3600 {
        return Err(invalid(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    Ok(claims)
}

fn google_error(status: StatusCode, message: &str, reason: &str) -> Response {
    error(
        status,
        json!({"error": {"code": status.as_u16(), "message": message, "status": reason}}),
    )
}

/// What a `members.list` request asks for.
struct Listing {
    derived: bool,
    page_size: usize,
    offset: usize,
}

/// Reads the query as Google would: only the discovery document's parameters, each of its
/// type (`maxResults` 1 to 200), and a page token this server gave.
fn listing(pairs: &[(String, String)]) -> Result<Listing, Response> {
    let invalid =
        |message: &str| google_error(StatusCode::BAD_REQUEST, message, "INVALID_ARGUMENT");
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, _)| !PARAMETERS.contains(&name.as_str()))
    {
        return Err(invalid(&format!(
            "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter."
        )));
    }
    let derived = match query_value(pairs, "includeDerivedMembership") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(invalid(
                "Invalid value at 'include_derived_membership' (TYPE_BOOL)",
            ));
        }
    };
    let page_size = match query_value(pairs, "maxResults").map(str::parse::<usize>) {
        None => MAX_RESULTS,
        Some(Ok(size)) if (1..=MAX_RESULTS).contains(&size) => size,
        Some(_) => return Err(invalid("Invalid Input: maxResults")),
    };
    let offset = match query_value(pairs, "pageToken")
        .map(|token| token.strip_prefix("page-").map(str::parse::<usize>))
    {
        None => 0,
        Some(Some(Ok(offset))) => offset,
        Some(_) => return Err(invalid("Invalid Input: pageToken")),
    };
    Ok(Listing {
        derived,
        page_size,
        offset,
    })
}

/// `GET /google/admin/directory/v1/groups/{group}/members`: `includeDerivedMembership`,
/// `maxResults` (at most 200), `pageToken`.
pub(super) async fn members(
    State(shared): State<Shared>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let mut inner = shared.lock();
    if !inner.bearer_ok(&headers, FakeEndpoint::GoogleMembers) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
        );
    }
    let listing = match listing(&pairs) {
        Ok(listing) => listing,
        Err(response) => return response,
    };
    let Some((id, nested)) = inner
        .group(&group)
        .map(|found| (found.id.clone(), found.groups.clone()))
    else {
        return google_error(
            StatusCode::NOT_FOUND,
            "Resource Not Found: groupKey",
            "NOT_FOUND",
        );
    };
    error(StatusCode::OK, page(&mut inner, &id, &nested, &listing))
}

/// One page of members: nested groups first (type `GROUP`), then the users (with derived
/// membership, the nested groups' users too).
fn page(inner: &mut Inner, id: &str, nested: &[String], listing: &Listing) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = nested
        .iter()
        .filter_map(|nested| inner.group(nested))
        .map(|nested| json!({"kind": "admin#directory#member", "id": nested.id, "email": nested.email, "role": "MEMBER", "type": "GROUP", "status": "ACTIVE"}))
        .collect();
    let users = inner.users_of(id, listing.derived);
    let total = entries.len() + users.len();
    let end = (listing.offset + listing.page_size).min(total);
    let mut page = Vec::with_capacity(end.saturating_sub(listing.offset));
    for position in listing.offset..end {
        if position < entries.len() {
            page.push(entries[position].clone());
            continue;
        }
        let user = &inner.state.users[users[position - entries.len()]];
        let mut member = json!({"kind": "admin#directory#member", "etag": "\"fake\"", "id": user.id, "role": "MEMBER", "type": "USER", "status": user.status.google(), "delivery_settings": "ALL_MAIL"});
        if let Some(email) = &user.email {
            member["email"] = json!(email);
        }
        page.push(member);
    }
    let mut body = json!({"kind": "admin#directory#members", "etag": "\"fake\""});
    if !page.is_empty() {
        body["members"] = json!(page);
    }
    if end < total {
        body["nextPageToken"] = json!(format!("page-{end}"));
    }
    body
}
