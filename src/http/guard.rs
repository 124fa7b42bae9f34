//! Access controls around every route of the HTTP server, applied as layers
//! by [`secure`] (so `app()` has them in-process as well as on a socket):
//!
//! - **Sizes**: request headers (names, values and the target URI together)
//!   over [`Access::max_header_bytes`] or more than [`MAX_HEADERS`] of
//!   them get 431; a body over [`Access::max_body_bytes`] gets 413 (by its
//!   `Content-Length` at once, or when a streamed body passes the limit).
//! - **Rate limit** on `/api/*`, per client IP (the socket's peer address;
//!   forwarded-for headers are not trusted): a token bucket of
//!   [`RateLimit::burst`] requests refilled at [`RateLimit::per_second`].
//!   Over it, 429 with `Retry-After` (whole seconds until a request would
//!   pass). A request is counted when it starts, so a long-lived response
//!   (a server-sent event stream) is one request and is never cut by the
//!   limiter. At most [`MAX_CLIENTS`] clients are tracked; idle ones are
//!   forgotten first.
//! - **CORS** closed by default: no `Access-Control-Allow-Origin` unless the
//!   request's `Origin` is in [`Access::cors_origins`] (exact match, no
//!   wildcards); a preflight from any other origin gets 403.
//! - **Security headers** on every response: a Content-Security-Policy that
//!   lets the dashboard load only its own assets (same origin, plus the
//!   SHA-256 of each inline `<script>`/`<style>` block of the page, computed
//!   from the page itself), no framing, no sniffing, no referrer.
//!
//! Errors are the API's JSON body with the status. Time: the limiter reads
//! the monotonic clock only; nothing here touches event time. It must never
//! log a request's credentials or hold a request's body.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::auth::AdminToken;
use super::ApiError;

/// Largest request body accepted unless configured, bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest request head (URI and headers) accepted unless configured, bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// API requests per second per client unless configured (0: no limit).
pub const DEFAULT_RATE_PER_SECOND: u32 = 50;
/// Clients tracked by the rate limiter at the most.
pub const MAX_CLIENTS: usize = 10_000;

/// A per-client token bucket: `burst` requests at once, refilled at
/// `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests that may come at once.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` sustained with a burst of twice that; None for 0 (off).
    pub fn per_second(per_second: u32) -> Option<Self> {
        (per_second > 0).then_some(RateLimit {
            per_second,
            burst: per_second.saturating_mul(2),
        })
    }
}

/// The HTTP server's access settings.
#[derive(Clone, Debug)]
pub struct Access {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest request head (URI plus header names and values), bytes.
    pub max_header_bytes: usize,
    /// Rate limit of `/api/*` per client (None: off).
    pub rate_limit: Option<RateLimit>,
    /// Origins allowed to read responses cross-origin (empty: none).
    pub cors_origins: Vec<String>,
    /// The token state-changing endpoints require (None: they are disabled).
    pub admin_token: Option<AdminToken>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            rate_limit: RateLimit::per_second(DEFAULT_RATE_PER_SECOND),
            cors_origins: Vec::new(),
            admin_token: None,
        }
    }
}

/// Wraps `router` in the access layers (outermost first: sizes, CORS, rate
/// limit, security headers). `page` is the dashboard's HTML, whose inline
/// blocks the CSP admits by hash.
pub fn secure(router: Router, access: &Access, page: &str) -> Router {
    let Access {
        max_body_bytes,
        max_header_bytes,
        rate_limit,
        cors_origins,
        admin_token: _, // applied per route, by `auth::require_admin`
    } = access.clone();
    let csp = HeaderValue::from_str(&content_security_policy(page))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let limiter = rate_limit.map(|r| Arc::new(Limiter::new(r)));
    router
        .layer(middleware::from_fn_with_state(csp, security_headers))
        .layer(middleware::from_fn_with_state(limiter, rate_limited))
        .layer(middleware::from_fn_with_state(Arc::new(cors_origins), cors))
        .layer(middleware::from_fn_with_state(
            (max_header_bytes, max_body_bytes),
            sizes,
        ))
}

async fn sizes(
    State((max_head, max_body)): State<(usize, usize)>,
    req: Request,
    next: Next,
) -> Response {
    let head = req.uri().to_string().len() + header_bytes(req.headers());
    if head > max_head || req.headers().len() > MAX_HEADERS {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request head too large: {head} bytes in {} headers (limit {max_head} bytes, {MAX_HEADERS} headers)",
                req.headers().len()
            ),
        )
        .into_response();
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > max_body as u64) {
        return too_large(max_body);
    }
    // A body without a length is cut off where it passes the limit.
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, max_body)));
    next.run(req).await
}

fn too_large(max_body: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the limit of {max_body} bytes"),
    )
    .into_response()
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum()
}

async fn cors(State(origins): State<Arc<Vec<String>>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| origins.iter().any(|a| a == o));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight && origin.is_some() {
        if !allowed {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-origin requests from this origin are not allowed (see --cors-origin)",
            )
            .into_response();
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("origin"));
        allow_origin(h, origin);
        return resp;
    }
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("origin"));
    if allowed {
        allow_origin(resp.headers_mut(), origin);
    }
    resp
}

fn allow_origin(h: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
}

async fn security_headers(State(csp): State<HeaderValue>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The CSP for `page`: same-origin scripts, styles, images and connections
/// (fetch, server-sent events), plus the hash of each inline `<script>` and
/// `<style>` block; nothing else, no framing, no base or form targets.
pub fn content_security_policy(page: &str) -> String {
    let hashes = |tag: &str| -> String {
        inline_blocks(page, tag)
            .map(|body| {
                let digest = Sha256::digest(body.as_bytes());
                format!(
                    " 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect()
    };
    format!(
        "default-src 'none'; script-src 'self'{}; style-src 'self'{}; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style")
    )
}

/// The contents of each `<tag …>…</tag>` block of `page` that has no `src`.
fn inline_blocks<'a>(page: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = page;
    std::iter::from_fn(move || loop {
        let start = rest.find(&open)?;
        let after = &rest[start + open.len()..];
        let head_end = after.find('>')?;
        let head = &after[..head_end];
        let body_start = &after[head_end + 1..];
        let end = body_start.find(&close)?;
        rest = &body_start[end + close.len()..];
        // `<scripts>` is not `<script>`; an external script carries no body to hash.
        let is_tag = head.is_empty() || head.starts_with(char::is_whitespace);
        if is_tag && !head.contains("src=") {
            return Some(&body_start[..end]);
        }
    })
}

/// Per-client token buckets. A `HashMap`: iteration order never leaves it.
struct Limiter {
    rate: RateLimit,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    fn new(rate: RateLimit) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket at `now`, or says how long
    /// until one would be there.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = (
            f64::from(self.rate.per_second),
            f64::from(self.rate.burst.max(1)),
        );
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            // Forget clients whose bucket has refilled: they are idle.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        let (tokens, at) = buckets.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

async fn rate_limited(
    State(limiter): State<Option<Arc<Limiter>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limiter) = limiter else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    // In-process calls (tests) have no peer address: they share one bucket.
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit of {} requests per second exceeded; retry in {secs} s",
                    limiter.rate.per_second
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let l = Limiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(a, t0).is_ok());
        }
        let wait = l.take(a, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert!(l.take(b, t0).is_ok(), "clients have their own buckets");
        assert!(l.take(a, t0 + Duration::from_millis(100)).is_ok());
        assert!(l.take(a, t0 + Duration::from_millis(100)).is_err());
        // Refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.take(a, later).is_ok());
        }
        assert!(l.take(a, later).is_err());
    }

    #[test]
    fn the_csp_admits_exactly_the_pages_inline_blocks() {
        let page = "<html><style>b{}</style><script src=\"/x.js\"></script>\
                    <script type=\"module\">go()</script><scripts>no</scripts></html>";
        let csp = content_security_policy(page);
        let hash = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
        };
        assert!(
            csp.contains(&format!("script-src 'self' 'sha256-{}';", hash("go()"))),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src 'self' 'sha256-{}';", hash("b{}"))),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"));
        assert!(content_security_policy("<p>no inline</p>").contains("script-src 'self';"));
    }
}
