//! The dashboard's files, embedded in the binary at build time: the page,
//! its script and style sheet (`src/http/dashboard/`), and uPlot's script
//! and style sheet, which `build.rs` takes from the npm package it fetched
//! and verified. Served under our own paths with no inline script or style,
//! so a `default-src 'self'` Content-Security-Policy allows all of them.
//! Nothing is loaded from elsewhere, so the dashboard works offline.

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::types::ErrorBody;
use super::ApiError;

/// (name, content type, bytes) of every file under `/assets/`.
pub const FILES: [(&str, &str, &[u8]); 6] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/pages.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("dashboard/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("dashboard/favicon.svg"),
    ),
    (
        "uplot.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/uplot.min.js")),
    ),
    (
        "uplot.min.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/uplot.min.css")),
    ),
];

/// uPlot's licence (MIT), shipped with the binary.
pub const UPLOT_LICENSE: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot.LICENSE"));

/// The dashboard's page (its CSP admits exactly its inline blocks, see
/// [`super::guard`]).
pub const INDEX: &str = include_str!("dashboard/index.html");

/// The dashboard (a single-page app: Overview, Symbol, Models, Jobs, Data quality).
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "the dashboard page", content_type = "text/html; charset=utf-8", body = String)))]
pub async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX,
    )
        .into_response()
}

/// A file of the dashboard (script, style sheet, the charting library).
#[utoipa::path(get, path = "/assets/{file}", tag = "dashboard",
    params(("file" = String, Path, description = "app.js, pages.js, app.css, favicon.svg, uplot.min.js or uplot.min.css", example = "app.js")),
    responses(
        (status = 200, description = "the file", content_type = "text/javascript", body = String),
        (status = 400, description = "bad path", body = ErrorBody),
        (status = 404, description = "no such file", body = ErrorBody),
    ))]
pub async fn file(name: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Some((_, ty, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::not_found(format!("no asset `{name}`")));
    };
    Ok((
        [
            (header::CONTENT_TYPE, *ty),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *bytes,
    )
        .into_response())
}
