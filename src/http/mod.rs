//! The HTTP server (axum): the JSON API (best predictions, models,
//! evaluations, chart history, jobs, data quality, health), live updates
//! over SSE, Prometheus metrics, the OpenAPI document and the dashboard.
//! Read-only: nothing here changes pipeline state.
//!
//! `app(state)` builds the router so tests can call it in-process as well
//! as over a socket. Every API route is registered through `utoipa-axum`
//! together with its `#[utoipa::path]` annotation, so `/api/openapi.json`
//! is generated from the same code that routes, and a route cannot exist
//! undocumented. Every error is a JSON body `{"error": {...}}` with the
//! right status; no handler panics on input. Handlers only read shared
//! state (short locks); none waits on the dataflow. Every route sits behind
//! the access layers of [`guard`] (size limits, rate limit, CORS, security
//! headers); a state-changing route also behind [`auth::require_admin`]
//! (the bearer token). `/api/health` answers 503 when another process of
//! the cluster does not answer (see [`crate::health`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod api;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod guard;
pub mod health;
pub mod history;
pub mod jobs;
pub mod metrics;
mod older;
pub mod ops;
pub mod stream;
pub mod types;
pub mod view;

use crate::telemetry::Telemetry;
pub use types::{ErrorBody, PredictionView};
pub use view::LiveView;

/// An API error: status plus message, rendered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "status": self.status.as_u16(), "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}

/// What the handlers share: the live view, the operational telemetry, the
/// warehouse root (for history older than the in-memory windows) and the
/// generated OpenAPI document. Cloning shares it.
#[derive(Clone)]
pub struct AppState {
    /// The live view.
    pub view: Arc<LiveView>,
    /// Commits, broker, source progress, meters.
    pub telemetry: Arc<Telemetry>,
    /// The warehouse root, if the server may read Delta tables.
    pub warehouse: Option<PathBuf>,
    /// This process's health in the cluster (partitions read, peers
    /// polled), when it runs a pipeline.
    pub cluster: Option<Arc<crate::health::ProcessHealth>>,
    /// The orchestrator's handle, where it runs (process 0).
    pub jobs: Option<crate::jobs::JobsHandle>,
    registry: Arc<prometheus_client::registry::Registry>,
    openapi: Arc<OnceLock<String>>,
}

impl AppState {
    /// State over `view` and `telemetry`, without a warehouse.
    pub fn new(view: Arc<LiveView>, telemetry: Arc<Telemetry>) -> Self {
        let registry = metrics::registry(&view, &telemetry);
        AppState {
            view,
            telemetry,
            warehouse: None,
            cluster: None,
            jobs: None,
            registry: Arc::new(registry),
            openapi: Arc::default(),
        }
    }

    /// Serves history older than the in-memory windows from the Delta
    /// tables under `root`.
    pub fn with_warehouse(mut self, root: PathBuf) -> Self {
        self.warehouse = Some(root);
        self
    }

    /// Serves the orchestrator's jobs, run history and registry.
    pub fn with_jobs(mut self, jobs: crate::jobs::JobsHandle) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Reports `cluster` (this process and its peers) in `/api/health`.
    pub fn with_cluster(mut self, cluster: Arc<crate::health::ProcessHealth>) -> Self {
        self.cluster = Some(cluster);
        self
    }
}

impl From<Arc<LiveView>> for AppState {
    fn from(view: Arc<LiveView>) -> Self {
        AppState::new(view, Arc::new(Telemetry::default()))
    }
}

/// The OpenAPI document's frame; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cryptoflow",
        description = "Live crypto predictions from a timely/differential dataflow: best predictions, model leaderboards, chart history, live updates (SSE), jobs, data quality, health and metrics. Read-only. Errors are `{\"error\":{\"status\":N,\"message\":\"…\"}}`; unknown query parameters are a 400.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The router and the OpenAPI document describing it.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let parts = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::health))
        .routes(routes!(api::predictions))
        .routes(routes!(api::predictions_for))
        .routes(routes!(api::models))
        .routes(routes!(api::evaluations))
        .routes(routes!(charts::symbols))
        .routes(routes!(charts::bars))
        .routes(routes!(charts::scores))
        .routes(routes!(charts::champions))
        .routes(routes!(ops::jobs))
        .routes(routes!(ops::quality))
        .routes(routes!(stream::sse))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(assets::index))
        .routes(routes!(assets::file))
        .split_for_parts();
    let (router, mut doc) = parts;
    document_rate_limit(&mut doc);
    (router, doc)
}

/// Every `/api/*` operation may also answer 429: the per-client rate limit
/// of [`guard`] sits in front of all of them.
fn document_rate_limit(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Ref;
    use utoipa::openapi::{ContentBuilder, ResponseBuilder};
    let limited = ResponseBuilder::new()
        .description("rate limited: too many requests from this client; see `Retry-After`")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            op.responses
                .responses
                .entry("429".into())
                .or_insert_with(|| limited.clone().into());
        }
    }
}

/// The OpenAPI document of this server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The router behind the default [`guard::Access`].
pub fn app(state: impl Into<AppState>) -> Router {
    app_with(state, &guard::Access::default())
}

/// The router behind the access layers of `access`.
pub fn app_with(state: impl Into<AppState>, access: &guard::Access) -> Router {
    let router = routes_with(state.into(), access.admin_token.clone());
    guard::secure(router, access, assets::INDEX)
}

fn routes_with(state: AppState, admin: Option<auth::AdminToken>) -> Router {
    let (router, doc) = routes();
    let _ = state
        .openapi
        .set(doc.to_json().unwrap_or_else(|_| "{}".into()));
    router
        .merge(jobs::routes(admin))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The OpenAPI 3.1 document describing every endpoint.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let doc = state.openapi.get().cloned().unwrap_or_else(|| "{}".into());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /api/openapi.json for the list")
}

/// Binds the HTTP address, with an error that names it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app_with(state, access)` on `listener` until `shutdown`
/// resolves, then ends the SSE streams and drains. Also samples the
/// data-quality history while it runs. Each request carries its peer
/// address (the rate limiter's client).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: impl Into<AppState>,
    access: &guard::Access,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state: AppState = state.into();
    let sampler = tokio::spawn(ops::sample_quality(state.clone()));
    let hub = state.view.hub().clone();
    let router = app_with(state, access);
    let result = serve_app(listener, router, async move {
        shutdown.await;
        // Open SSE streams never end on their own.
        hub.close();
    })
    .await;
    sampler.abort();
    result
}

/// Serves a router built elsewhere (e.g. with [`app_with`]) on `listener`
/// until `shutdown` resolves, with each request's peer address.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "http server listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
