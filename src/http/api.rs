//! The API's core endpoints: health, current best predictions, model
//! leaderboards and daily evaluations, read from the live view.
//!
//! Time semantics: everything served is as of the latest complete delivery
//! (one event time); health compares wall times (see `health.rs`). Bad
//! parameters are 400s, unknown symbols 404s, never a panic.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dataflows::tick::is_canonical_symbol;
use serde::Deserialize;
use utoipa::IntoParams;

use super::health::{assess, Health};
use super::types::{ErrorBody, PredictionView};
use super::view::{EvaluationRow, SeriesModels};
use super::{ApiError, AppState};

/// Filters of `/api/predictions`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PredictionQuery {
    /// Only this horizon (ms).
    #[param(minimum = 0)]
    pub horizon_ms: Option<u64>,
}

/// Filter of `/api/models`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// Only this symbol (canonical BASE-QUOTE).
    #[param(pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$")]
    pub symbol: Option<String>,
}

/// Filters of `/api/evaluations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvaluationQuery {
    /// Only this symbol (canonical BASE-QUOTE).
    #[param(pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$")]
    pub symbol: Option<String>,
    /// Only this UTC day (YYYY-MM-DD, a real calendar date).
    #[param(value_type = Option<String>, format = Date)]
    pub day: Option<String>,
}

/// A query string, or a 400 that says what is wrong with it.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

/// An event-time parameter, or a 400: the document says `int64` (what
/// JSON clients can hold), so values above `i64::MAX` are refused although
/// the field is unsigned.
pub fn instant(v: Option<u64>, name: &str) -> Result<Option<u64>, ApiError> {
    match v {
        Some(x) if x > i64::MAX as u64 => Err(ApiError::bad_request(format!(
            "`{name}` {x} is beyond the largest instant ({})",
            i64::MAX
        ))),
        v => Ok(v),
    }
}

/// A canonical symbol from the path, or a 400.
pub fn symbol_path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(symbol) = p.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if !is_canonical_symbol(&symbol) {
        return Err(ApiError::bad_request(format!(
            "`{symbol}` is not a canonical BASE-QUOTE symbol such as BTC-USD"
        )));
    }
    Ok(symbol)
}

/// Is the pipeline healthy? 200 with `"status":"ok"`, or 503 with
/// `"status":"degraded"` and the reasons: warehouse commits failing, the
/// broker unreachable, no tick for longer than the threshold, or (on
/// process 0 of a cluster) another process not answering.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "healthy", body = Health),
        (status = 503, description = "degraded, with the reasons", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> Response {
    let mut h = assess(&state.view, &state.telemetry, crate::now_ms());
    if let Some(cluster) = &state.cluster {
        h = super::health::with_cluster(h, cluster);
    }
    let code = if h.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(h)).into_response()
}

/// The champion's current prediction per (symbol, horizon).
#[utoipa::path(get, path = "/api/predictions", tag = "predictions", params(PredictionQuery),
    responses(
        (status = 200, description = "one per (symbol, horizon)", body = [PredictionView]),
        (status = 400, description = "bad query", body = ErrorBody),
    ))]
pub async fn predictions(
    State(state): State<AppState>,
    q: Result<Query<PredictionQuery>, QueryRejection>,
) -> Result<Json<Vec<PredictionView>>, ApiError> {
    let h = instant(query(q)?.horizon_ms, "horizon_ms")?;
    Ok(Json(
        state
            .view
            .best()
            .iter()
            .filter(|e| h.is_none_or(|h| e.prediction.horizon_ms == h))
            .map(PredictionView::from)
            .collect(),
    ))
}

/// The champion's current predictions of one symbol.
#[utoipa::path(get, path = "/api/predictions/{symbol}", tag = "predictions",
    params(("symbol" = String, Path, description = "canonical BASE-QUOTE", pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$"), PredictionQuery),
    responses(
        (status = 200, description = "one per horizon", body = [PredictionView]),
        (status = 400, description = "not a canonical symbol, or a bad query", body = ErrorBody),
        (status = 404, description = "no predictions for this symbol", body = ErrorBody),
    ))]
pub async fn predictions_for(
    State(state): State<AppState>,
    symbol: Result<Path<String>, PathRejection>,
    q: Result<Query<PredictionQuery>, QueryRejection>,
) -> Result<Json<Vec<PredictionView>>, ApiError> {
    let symbol = symbol_path(symbol)?;
    let h = instant(query(q)?.horizon_ms, "horizon_ms")?;
    let entries = state.view.best_for(&symbol);
    if entries.is_empty() {
        return Err(ApiError::not_found(format!(
            "no predictions for symbol `{symbol}`"
        )));
    }
    Ok(Json(
        entries
            .iter()
            .filter(|e| h.is_none_or(|h| e.prediction.horizon_ms == h))
            .map(PredictionView::from)
            .collect(),
    ))
}

fn check_symbol(state: &AppState, symbol: Option<&str>) -> Result<(), ApiError> {
    let Some(s) = symbol else { return Ok(()) };
    if !is_canonical_symbol(s) {
        return Err(ApiError::bad_request(format!(
            "`{s}` is not a canonical BASE-QUOTE symbol such as BTC-USD"
        )));
    }
    if !state.view.knows_symbol(s) {
        return Err(ApiError::not_found(format!("no models for symbol `{s}`")));
    }
    Ok(())
}

/// Per (symbol, horizon): the champion (model, since, day won, skill,
/// reason), every model's metrics on the last evaluated day, and every
/// model's rolling metrics over the last 15 minutes of event time.
#[utoipa::path(get, path = "/api/models", tag = "models", params(ModelQuery),
    responses(
        (status = 200, description = "one per (symbol, horizon)", body = [SeriesModels]),
        (status = 400, description = "bad query (`day` belongs to /api/evaluations)", body = ErrorBody),
        (status = 404, description = "unknown symbol", body = ErrorBody),
    ))]
pub async fn models(
    State(state): State<AppState>,
    q: Result<Query<ModelQuery>, QueryRejection>,
) -> Result<Json<Vec<SeriesModels>>, ApiError> {
    let q = query(q)?;
    check_symbol(&state, q.symbol.as_deref())?;
    Ok(Json(state.view.models(q.symbol.as_deref())))
}

/// The daily evaluation rows: per (symbol, horizon, day, model) samples,
/// MAE, RMSE, hit rate, skill, interval coverage, winner and reason.
#[utoipa::path(get, path = "/api/evaluations", tag = "models", params(EvaluationQuery),
    responses(
        (status = 200, description = "evaluation rows", body = [EvaluationRow]),
        (status = 400, description = "bad query or not a real date", body = ErrorBody),
        (status = 404, description = "unknown symbol", body = ErrorBody),
    ))]
pub async fn evaluations(
    State(state): State<AppState>,
    q: Result<Query<EvaluationQuery>, QueryRejection>,
) -> Result<Json<Vec<EvaluationRow>>, ApiError> {
    let q = query(q)?;
    check_symbol(&state, q.symbol.as_deref())?;
    let day = match q.day.as_deref() {
        None => None,
        Some(d) => Some(crate::warehouse::date::parse_day(d).ok_or_else(|| {
            ApiError::bad_request(format!("`{d}` is not a date like 2026-11-24"))
        })?),
    };
    Ok(Json(state.view.evaluations(q.symbol.as_deref(), day)))
}
