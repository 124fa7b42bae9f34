//! The admin bearer token: what protects every endpoint that changes state
//! (today `POST /api/jobs/{name}/run`).
//!
//! The token comes from `--admin-token` on `run` and `demo`, or the
//! environment variable [`ADMIN_TOKEN_ENV`]. Requests carry it as
//! `Authorization: Bearer <token>`; it is compared in constant time (every
//! byte is looked at whatever the first difference). A missing or wrong
//! token is a 401 JSON error with `WWW-Authenticate: Bearer`. Without a
//! configured token the admin endpoints are disabled: they answer 404 and
//! say how to enable them. The token is never logged or echoed.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The environment variable the admin token is read from.
pub const ADMIN_TOKEN_ENV: &str = "CRYPTOFLOW_ADMIN_TOKEN";

/// The configured admin token, if any.
#[derive(Clone, Default)]
pub struct AdminToken(Option<Arc<[u8]>>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AdminToken(configured)"
        } else {
            "AdminToken(none)"
        })
    }
}

/// Why a request may not use an admin endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No token is configured: the endpoint is disabled.
    Disabled,
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token that is not the configured one.
    Wrong,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Denied::Disabled => (
                StatusCode::NOT_FOUND,
                format!("admin endpoints are disabled: no admin token is configured (start with --admin-token or {ADMIN_TOKEN_ENV})"),
            ),
            Denied::Missing => (
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` header".to_string(),
            ),
            Denied::Wrong => (StatusCode::UNAUTHORIZED, "wrong admin token".to_string()),
        };
        let mut resp = ApiError::new(status, message).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Equal in time independent of where the inputs differ (only the lengths
/// are not hidden).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AdminToken {
    /// A token (None or empty: admin endpoints disabled).
    pub fn new(token: Option<String>) -> Self {
        AdminToken(
            token
                .filter(|t| !t.is_empty())
                .map(|t| Arc::from(t.into_bytes())),
        )
    }

    /// Is a token configured?
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Checks a request's `Authorization` header.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(expected) = &self.0 else {
            return Err(Denied::Disabled);
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Missing)?;
        if constant_time_eq(given.as_bytes(), expected) {
            Ok(())
        } else {
            Err(Denied::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn checks_the_bearer_token() {
        let t = AdminToken::new(Some("s3cret".into()));
        assert_eq!(t.check(&headers(Some("Bearer s3cret"))), Ok(()));
        assert_eq!(t.check(&headers(Some("Bearer s3cres"))), Err(Denied::Wrong));
        assert_eq!(
            t.check(&headers(Some("Bearer s3cret2"))),
            Err(Denied::Wrong)
        );
        assert_eq!(
            t.check(&headers(Some("Basic s3cret"))),
            Err(Denied::Missing)
        );
        assert_eq!(t.check(&headers(None)), Err(Denied::Missing));
        let off = AdminToken::new(None);
        assert_eq!(
            off.check(&headers(Some("Bearer s3cret"))),
            Err(Denied::Disabled)
        );
        assert!(!AdminToken::new(Some(String::new())).enabled());
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
