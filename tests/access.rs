//! The HTTP server's access controls, in-process (`app_with` + `oneshot`)
//! and over a real socket: 413 for a large body, 431 for large headers,
//! 429 with `Retry-After` per client, CORS closed unless allowed, the
//! dashboard's CSP admitting exactly its own inline blocks, the admin
//! token (401, or 404 when none is configured) on a state-changing route, every real route read-only,
//! and a run on a non-loopback address without a token warning about it
//! while no secret reaches its logs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use cryptoflow::http::auth::{require_admin, AdminToken};
use cryptoflow::http::guard::{secure, Access, RateLimit};
use cryptoflow::http::{app_with, LiveView};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

fn access() -> Access {
    Access {
        rate_limit: None,
        ..Access::default()
    }
}

async fn send(router: Router, req: Request<Body>) -> (Response<()>, serde_json::Value, String) {
    let resp = router.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (Response::from_parts(parts, ()), json, text)
}

fn get(uri: &str) -> axum::http::request::Builder {
    Request::builder().uri(uri)
}

fn assert_error(status: StatusCode, json: &serde_json::Value, want: StatusCode) {
    assert_eq!(status, want, "{json}");
    assert_eq!(json["error"]["status"], want.as_u16(), "{json}");
    assert!(json["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn large_bodies_get_413_and_large_heads_431() {
    let app = || app_with(Arc::new(LiveView::new()), &access());
    let body = vec![b'x'; 64 * 1024 + 1];
    let (resp, json, _) = send(
        app(),
        get("/api/predictions")
            .method(Method::POST)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_error(resp.status(), &json, StatusCode::PAYLOAD_TOO_LARGE);
    // At the limit the request goes through (and GET-only routes say 405).
    let (resp, _, _) = send(
        app(),
        get("/api/predictions")
            .method(Method::POST)
            .body(Body::from(vec![b'x'; 64 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (resp, json, _) = send(
        app(),
        get("/api/health")
            .header("x-filler", "a".repeat(17 * 1024))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(
        resp.status(),
        &json,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    );
    let mut many = get("/api/health");
    for i in 0..65 {
        many = many.header(format!("x-h{i}"), "1");
    }
    let (resp, json, _) = send(app(), many.body(Body::empty()).unwrap()).await;
    assert_error(
        resp.status(),
        &json,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    );
    let long_uri = format!("/api/predictions?horizon_ms={}", "1".repeat(17 * 1024));
    let (resp, json, _) = send(app(), get(&long_uri).body(Body::empty()).unwrap()).await;
    assert_error(
        resp.status(),
        &json,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    );
}

#[tokio::test]
async fn cors_is_closed_unless_the_origin_is_allowed() {
    let allowed = "https://dash.example";
    let app = || {
        app_with(
            Arc::new(LiveView::new()),
            &Access {
                cors_origins: vec![allowed.to_string()],
                ..access()
            },
        )
    };
    let (resp, _, _) = send(
        app(),
        get("/api/health")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/predictions")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap()
    };
    let (resp, json, _) = send(app(), preflight("https://evil.example")).await;
    assert_error(resp.status(), &json, StatusCode::FORBIDDEN);
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    let (resp, _, _) = send(app(), preflight(allowed)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    assert!(resp.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap()
        .contains("GET"));
    let (resp, _, _) = send(
        app(),
        get("/api/health")
            .header(header::ORIGIN, allowed)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    // Closed by default: the default access allows no origin at all.
    let (resp, _, _) = send(
        app_with(Arc::new(LiveView::new()), &access()),
        preflight(allowed),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_dashboard_csp_admits_only_its_own_inline_blocks() {
    let (resp, _, page) = send(
        app_with(Arc::new(LiveView::new()), &access()),
        get("/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    // Hash the served page's blocks here, independently of the server.
    let block = |tag: &str| -> Vec<String> {
        page.split(&format!("<{tag}>"))
            .skip(1)
            .map(|rest| {
                let body = &rest[..rest.find(&format!("</{tag}>")).unwrap()];
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()))
            })
            .collect()
    };
    let (scripts, styles) = (block("script"), block("style"));
    assert!(!scripts.is_empty() || page.contains("src="), "{page}");
    let directive = |name: &str| -> Vec<&str> {
        csp.split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {csp}"))
            .split_whitespace()
            .collect()
    };
    let mut want: Vec<String> = vec!["'self'".into()];
    want.extend(scripts.iter().map(|h| format!("'sha256-{h}'")));
    assert_eq!(directive("script-src "), want, "{csp}");
    let mut want: Vec<String> = vec!["'self'".into()];
    want.extend(styles.iter().map(|h| format!("'sha256-{h}'")));
    assert_eq!(directive("style-src "), want, "{csp}");
    assert_eq!(directive("default-src "), ["'none'"]);
    assert_eq!(directive("connect-src "), ["'self'"]);
    assert_eq!(directive("frame-ancestors "), ["'none'"]);
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
}

#[tokio::test]
async fn every_route_is_read_only_and_state_changes_need_the_admin_token() {
    // The real routes take GET only.
    for uri in [
        "/",
        "/api/health",
        "/api/predictions",
        "/api/predictions/BTC-USD",
        "/api/models",
        "/api/evaluations",
    ] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let (resp, _, _) = send(
                app_with(Arc::new(LiveView::new()), &access()),
                get(uri).method(method.clone()).body(Body::empty()).unwrap(),
            )
            .await;
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}"
            );
        }
    }
    // A state-changing route (this test's own: the branch has none yet)
    // behind `require_admin`, under the same access layers.
    let token = "0123456789abcdef-admin";
    let route = |configured: Option<&str>| {
        let token = configured.map(|t| AdminToken::new(t).unwrap());
        let r = Router::new().route(
            "/api/jobs/retrain/run",
            post(|| async { "started" })
                .layer(axum::middleware::from_fn_with_state(token, require_admin)),
        );
        secure(r, &access(), "")
    };
    let call = |auth: Option<String>| {
        let mut b = get("/api/jobs/retrain/run").method(Method::POST);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    let (resp, json, _) = send(route(Some(token)), call(None)).await;
    assert_error(resp.status(), &json, StatusCode::UNAUTHORIZED);
    assert!(resp.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    for wrong in [
        format!("Bearer {token}x"),
        format!("Bearer {}", &token[1..]),
        format!("Basic {token}"),
        token.to_string(),
    ] {
        let (resp, json, text) = send(route(Some(token)), call(Some(wrong))).await;
        assert_error(resp.status(), &json, StatusCode::UNAUTHORIZED);
        assert!(!text.contains(token), "the token leaks into {text}");
    }
    let (resp, _, text) = send(route(Some(token)), call(Some(format!("Bearer {token}")))).await;
    assert_eq!((resp.status(), text.as_str()), (StatusCode::OK, "started"));
    // No token configured: nothing can authorise it, and it is absent.
    let (resp, json, _) = send(route(None), call(Some(format!("Bearer {token}")))).await;
    assert_error(resp.status(), &json, StatusCode::NOT_FOUND);
}

/// One raw HTTP/1.1 GET over a real socket: (status, head).
fn raw_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase())
}

#[test]
fn the_api_rate_limit_answers_429_with_retry_after_per_client_over_a_socket() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(cryptoflow::http::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let limited = Access {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..Access::default()
    };
    let router = app_with(Arc::new(LiveView::new()), &limited);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(cryptoflow::http::serve_app(listener, router, async {
        let _ = rx.await;
    }));
    let statuses: Vec<u16> = (0..3).map(|_| raw_get(&addr, "/api/health").0).collect();
    assert_eq!(statuses, [200, 200, 200], "the burst passes");
    let (status, head) = raw_get(&addr, "/api/predictions");
    assert_eq!(status, 429, "{head}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .expect("Retry-After")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{head}");
    // Only the API is limited; the dashboard still loads.
    assert_eq!(raw_get(&addr, "/").0, 200);
    // After Retry-After one more request passes.
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(raw_get(&addr, "/api/health").0, 200);
    let _ = tx.send(());
    rt.block_on(server).unwrap().unwrap();
}

#[test]
fn a_non_loopback_listener_without_a_token_warns_and_no_secret_reaches_the_logs() {
    let dir = common::temp_dir("cryptoflow-access");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 1);
    let port = cryptoflow::broker::free_port().unwrap();
    let (password, token) = ("hunter2-kafka-password", "0123456789abcdef-admin-token");
    let log_path = dir.join("run.log");
    let run = |admin: Option<&str>| {
        let mut c = common::run_cmd(&brokers, &topic, "1", &dir.join("wh"));
        c.args(["--http", &format!("0.0.0.0:{port}")])
            .args(["--kafka-opt", "sasl.username=alice"])
            .args(["--kafka-opt", &format!("sasl.password={password}")])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            // A file, not a pipe: debug logging would fill a pipe nobody
            // reads until the end and block the process.
            .stderr(std::fs::File::create(&log_path).unwrap());
        match admin {
            Some(t) => c.env("CRYPTOFLOW_ADMIN_TOKEN", t),
            None => c.env_remove("CRYPTOFLOW_ADMIN_TOKEN"),
        };
        let mut child = c.spawn().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let up = common::wait_for(Duration::from_secs(60), || {
            common::http_get(&addr, "/api/health")
                .ok()
                .filter(|(s, _)| *s == 200)
        });
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(status.success(), "{log}");
        assert!(up.is_some(), "no health on {addr}:\n{log}");
        log
    };
    let open = run(None);
    assert!(
        open.contains("non-loopback address without an admin token"),
        "{open}"
    );
    let guarded = run(Some(token));
    assert!(!guarded.contains("without an admin token"), "{guarded}");
    for log in [&open, &guarded] {
        assert!(!log.contains(password) && !log.contains(token), "{log}");
        assert!(
            log.contains("sasl.password"),
            "the option's key is logged: {log}"
        );
    }
}

#[tokio::test]
async fn the_manual_job_run_is_absent_without_a_configured_token() {
    let req = || {
        Request::builder()
            .method(Method::POST)
            .uri("/api/jobs/retrain/run")
            .header(header::AUTHORIZATION, "Bearer 0123456789abcdef-guess")
            .body(Body::empty())
            .unwrap()
    };
    let (resp, json, _) = send(app_with(Arc::new(LiveView::new()), &access()), req()).await;
    assert_error(resp.status(), &json, StatusCode::NOT_FOUND);
    // With a token configured the route is there, and a wrong one is a 401.
    let guarded = Access {
        admin_token: Some(AdminToken::new("0123456789abcdef-admin").unwrap()),
        ..access()
    };
    let (resp, json, _) = send(app_with(Arc::new(LiveView::new()), &guarded), req()).await;
    assert_error(resp.status(), &json, StatusCode::UNAUTHORIZED);
}
