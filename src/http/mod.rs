//! The HTTP API (axum): current best predictions, model leaderboards (champion,
//! daily evaluations, rolling metrics) and health, plus a small live
//! dashboard; the orchestrator's jobs, run history and model registry
//! ([`jobs`]). Read-only, except the admin endpoints behind the bearer
//! token of [`auth`] (manual job runs).
//!
//! `app(state)` builds the router so tests can call it in-process as well
//! as over a socket. Every error is a JSON body `{"error": {...}}` with the
//! right status; no handler panics on input.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dataflows::tick::is_canonical_symbol;
use serde::{Deserialize, Serialize};

pub mod auth;
pub mod jobs;
pub mod view;

pub use auth::{AdminToken, ADMIN_TOKEN_ENV};
use view::BestEntry;
pub use view::LiveView;

/// An API error: status plus message, rendered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
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

/// One entry of `/api/predictions`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct PredictionView {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Horizon in ms.
    pub horizon_ms: u64,
    /// The champion model that made it.
    pub model: String,
    /// Predicted log return to the target time.
    pub predicted_return: f64,
    /// Predicted price at the target time.
    pub predicted_price: f64,
    /// Last close when the prediction was made.
    pub base_price: f64,
    /// Bar close the prediction was made at (epoch ms).
    pub made_at_ms: u64,
    /// Bar close it predicts (epoch ms).
    pub target_at_ms: u64,
    /// Probability that the return is positive (models that have one).
    pub direction_prob: Option<f64>,
    /// Lower end of the 80% prediction interval, as a price.
    pub interval_low: Option<f64>,
    /// Upper end of the 80% prediction interval, as a price.
    pub interval_high: Option<f64>,
    /// Since when this model is champion (epoch ms; 0: baseline before any evaluated day).
    pub champion_since_ms: u64,
    /// The champion's skill versus persistence on the day it won.
    pub champion_skill: f64,
    /// Why this model is champion.
    pub champion_reason: String,
}

impl From<BestEntry> for PredictionView {
    fn from(e: BestEntry) -> Self {
        let BestEntry {
            prediction: p,
            champion: c,
        } = e;
        let base = p.base_price.0;
        PredictionView {
            symbol: p.symbol,
            horizon_bars: p.horizon_bars,
            horizon_ms: p.horizon_ms,
            model: p.model,
            predicted_return: p.predicted_return.0,
            predicted_price: p.predicted_price.0,
            base_price: base,
            made_at_ms: p.made_at_ms,
            target_at_ms: p.target_at_ms,
            direction_prob: p.direction_prob.map(|x| x.0),
            interval_low: p.interval_low.map(|r| base * r.0.exp()),
            interval_high: p.interval_high.map(|r| base * r.0.exp()),
            champion_since_ms: c.since_ms,
            champion_skill: c.skill.0,
            champion_reason: c.reason,
        }
    }
}

/// Filters of `/api/predictions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionQuery {
    /// Only this horizon (ms).
    pub horizon_ms: Option<u64>,
}

type Shared = Arc<LiveView>;

/// What the handlers share: the live view, the orchestrator (process 0
/// runs it) and the admin token.
#[derive(Clone)]
pub struct AppState {
    /// The live view.
    pub view: Shared,
    /// The orchestrator's handle, where it runs.
    pub jobs: Option<crate::jobs::JobsHandle>,
    /// The admin token (admin endpoints are disabled without one).
    pub admin: AdminToken,
}

impl From<Shared> for AppState {
    fn from(view: Shared) -> Self {
        AppState {
            view,
            jobs: None,
            admin: AdminToken::default(),
        }
    }
}

impl FromRef<AppState> for Shared {
    fn from_ref(state: &AppState) -> Shared {
        state.view.clone()
    }
}

/// The router.
pub fn app(state: impl Into<AppState>) -> Router {
    let state: AppState = state.into();
    Router::new()
        .route("/", get(dashboard))
        .route("/api/health", get(health))
        .route("/api/predictions", get(predictions))
        .route("/api/predictions/{symbol}", get(predictions_for))
        .route("/api/models", get(models))
        .route("/api/evaluations", get(evaluations))
        .merge(jobs::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn dashboard() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("dashboard.html")),
    )
}

async fn health(State(state): State<Shared>) -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "stats": state.stats() }))
}

fn filter_horizon(
    q: Result<Query<PredictionQuery>, QueryRejection>,
) -> Result<Option<u64>, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query: {}", e.body_text()),
        )
    })?;
    Ok(q.horizon_ms)
}

async fn predictions(
    State(state): State<Shared>,
    q: Result<Query<PredictionQuery>, QueryRejection>,
) -> Result<Json<Vec<PredictionView>>, ApiError> {
    let h = filter_horizon(q)?;
    Ok(Json(
        state
            .best()
            .into_iter()
            .filter(|e| h.is_none_or(|h| e.prediction.horizon_ms == h))
            .map(PredictionView::from)
            .collect(),
    ))
}

async fn predictions_for(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    q: Result<Query<PredictionQuery>, QueryRejection>,
) -> Result<Json<Vec<PredictionView>>, ApiError> {
    let h = filter_horizon(q)?;
    if !is_canonical_symbol(&symbol) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{symbol}` is not a canonical BASE-QUOTE symbol such as BTC-USD"),
        ));
    }
    let entries = state.best_for(&symbol);
    if entries.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no predictions for symbol `{symbol}`"),
        ));
    }
    Ok(Json(
        entries
            .into_iter()
            .filter(|e| h.is_none_or(|h| e.prediction.horizon_ms == h))
            .map(PredictionView::from)
            .collect(),
    ))
}

/// Filters of `/api/models` and `/api/evaluations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    /// Only this symbol.
    pub symbol: Option<String>,
    /// Only this UTC day, YYYY-MM-DD (evaluations only).
    pub day: Option<String>,
}

fn check_symbol(state: &LiveView, symbol: Option<&str>) -> Result<(), ApiError> {
    let Some(s) = symbol else { return Ok(()) };
    if !is_canonical_symbol(s) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{s}` is not a canonical BASE-QUOTE symbol such as BTC-USD"),
        ));
    }
    if !state.knows_symbol(s) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no models for symbol `{s}`"),
        ));
    }
    Ok(())
}

pub(crate) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("bad query: {}", e.body_text()),
    )
}

async fn models(
    State(state): State<Shared>,
    q: Result<Query<ModelQuery>, QueryRejection>,
) -> Result<Json<Vec<view::SeriesModels>>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    if q.day.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`day` filters /api/evaluations, not /api/models",
        ));
    }
    check_symbol(&state, q.symbol.as_deref())?;
    Ok(Json(state.models(q.symbol.as_deref())))
}

async fn evaluations(
    State(state): State<Shared>,
    q: Result<Query<ModelQuery>, QueryRejection>,
) -> Result<Json<Vec<view::EvaluationRow>>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    check_symbol(&state, q.symbol.as_deref())?;
    let day = match q.day.as_deref() {
        None => None,
        Some(d) => Some(crate::warehouse::date::parse_day(d).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`{d}` is not a date like 2026-11-24"),
            )
        })?),
    };
    Ok(Json(state.evaluations(q.symbol.as_deref(), day)))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/health, /api/predictions, /api/models, /api/evaluations, /api/jobs, /api/registry",
    )
}

/// Binds the HTTP address, with an error that names it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: impl Into<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "http server listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
