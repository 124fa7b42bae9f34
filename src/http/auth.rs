//! The admin bearer token: what every state-changing endpoint requires.
//!
//! The HTTP server is read-only by default. A state-changing route is
//! wrapped in [`require_admin`]: without a token configured (`--admin-token`
//! or `CRYPTOFLOW_ADMIN_TOKEN`) the endpoint is absent — 404, with a
//! message saying how to enable it (nothing could authorise it); with one,
//! a request must carry `Authorization: Bearer <token>` or gets 401 with
//! `WWW-Authenticate: Bearer` and the usual JSON error body.
//!
//! The comparison is constant-time: both sides are hashed (SHA-256, so the
//! compared lengths are always equal) and the digests compared with
//! `subtle`'s constant-time equality, so response timing says nothing
//! about how much of a guess was right. The token never appears in a log
//! line, an error or a `Debug` output. No time semantics here.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;

/// The environment variable the admin token is read from.
pub const ADMIN_TOKEN_ENV: &str = "CRYPTOFLOW_ADMIN_TOKEN";

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// A bad token setting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is too short (its value is not shown).
    #[error("the admin token must be at least {MIN_TOKEN_LEN} characters (got {0})")]
    TooShort(usize),
}

/// The admin token, kept as its SHA-256 digest. `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Arc<[u8; 32]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// A token from its text (surrounding blanks removed).
    pub fn new(token: &str) -> Result<Self, Error> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_LEN {
            return Err(Error::TooShort(token.chars().count()));
        }
        Ok(AdminToken(Arc::new(
            Sha256::digest(token.as_bytes()).into(),
        )))
    }

    /// Whether `presented` is the token, in time independent of where
    /// (or whether) they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.0.as_slice().ct_eq(digest.as_slice()).into()
    }
}

/// Middleware for state-changing routes: passes the request on only with
/// the admin token as a bearer credential. Use with
/// `axum::middleware::from_fn_with_state(token, require_admin)`.
pub async fn require_admin(
    State(token): State<Option<AdminToken>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no such endpoint here: state-changing endpoints are disabled; start the \
             server with --admin-token (or CRYPTOFLOW_ADMIN_TOKEN) to enable them",
        )
        .into_response();
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if presented.is_some_and(|p| token.matches(p)) {
        return next.run(req).await;
    }
    let why = if presented.is_some() {
        "the bearer token is not the admin token"
    } else {
        "this endpoint needs `Authorization: Bearer <admin token>`"
    };
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, why).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"cryptoflow\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let t = AdminToken::new("  correct-horse-battery-staple ").unwrap();
        assert!(t.matches(b"correct-horse-battery-staple"));
        for wrong in [
            &b""[..],
            b"correct-horse-battery-stapl",
            b"correct-horse-battery-staple ",
            b"Correct-horse-battery-staple",
        ] {
            assert!(!t.matches(wrong));
        }
        assert!(matches!(AdminToken::new("short"), Err(Error::TooShort(5))));
        assert!(!format!("{t:?}").contains("horse"));
    }
}
