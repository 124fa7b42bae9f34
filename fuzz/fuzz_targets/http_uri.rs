//! The HTTP API's path and query handling on arbitrary request targets
//! (through `app()` in-process, access layers included): never panics and
//! never answers 5xx; every answer is JSON or the dashboard page.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request};
use cryptoflow::http::guard::Access;
use cryptoflow::http::{app_with, LiveView};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Timers on, as in the server: the event stream's heartbeat uses them.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let (method, target) = match data.split_first() {
        Some((m, rest)) => (
            [Method::GET, Method::POST, Method::OPTIONS, Method::HEAD][usize::from(*m % 4)].clone(),
            rest,
        ),
        None => return,
    };
    let Ok(req) = Request::builder()
        .method(method)
        .uri(target)
        .header("origin", "https://elsewhere.invalid")
        .body(Body::empty())
    else {
        return;
    };
    let access = Access {
        rate_limit: None,
        ..Access::default()
    };
    let router = app_with(Arc::new(LiveView::new()), &access);
    let resp = runtime().block_on(router.oneshot(req)).expect("infallible");
    let status = resp.status();
    assert!(
        !status.is_server_error(),
        "{status} for {:?}",
        String::from_utf8_lossy(target)
    );
});
