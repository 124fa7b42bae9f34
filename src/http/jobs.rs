//! The orchestrator's endpoints: job states, run history, the model
//! registry, and manual runs (the one that changes state, behind the admin
//! token of [`super::auth::require_admin`]). They are plain axum routes,
//! not in the OpenAPI document yet.
//!
//! | endpoint | returns |
//! | --- | --- |
//! | `GET /api/jobs` | every job: schedule, state, what it waits for, run counts, failures, its latest history row (404 where no orchestrator runs) |
//! | `GET /api/jobs/{name}/runs[?limit=N]` | the job's `job_runs` rows, newest first (default 50) |
//! | `POST /api/jobs/{name}/run` | queues a manual run; optional JSON body `{"start": T, "end": T}` (RFC 3339, a date, or epoch ms) as its data interval (a backfill) |
//! | `GET /api/registry[?symbol=S][&model=M][&status=S]` | every batch model version's current registry row (the leaderboard stays `/api/models`) |

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dataflows::deploy::{ModelRecord, ModelStatus};
use serde::Deserialize;

use super::api::query;
use super::auth::{require_admin, AdminToken};
use super::{ApiError, AppState};
use crate::jobs::{JobRun, JobStatus, JobsHandle, TriggerError, JOBS};
use crate::warehouse::date::{iso_ms, parse_instant};

/// The routes of this module; manual runs need `admin`.
pub fn routes(admin: Option<AdminToken>) -> Router<AppState> {
    Router::new()
        .route("/api/jobs", get(list))
        .route("/api/jobs/{name}/runs", get(runs))
        .route(
            "/api/jobs/{name}/run",
            post(run).layer(axum::middleware::from_fn_with_state(admin, require_admin)),
        )
        .route("/api/registry", get(registry))
}

fn orchestrator(state: &AppState) -> Result<&JobsHandle, ApiError> {
    state.jobs.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no orchestrator in this process (process 0 of a cluster runs it)",
        )
    })
}

fn unknown_job(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("unknown job `{name}` (jobs: {})", JOBS.join(", ")),
    )
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<JobStatus>>, ApiError> {
    Ok(Json(orchestrator(&state)?.jobs()))
}

/// Query of `/api/jobs/{name}/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// At most this many rows (1..=1000, default 50).
    pub limit: Option<usize>,
}

async fn runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<JobRun>>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`limit` must be between 1 and 1000",
        ));
    }
    let jobs = orchestrator(&state)?;
    jobs.runs(&name, limit)
        .map(Json)
        .ok_or_else(|| unknown_job(&name))
}

/// Body of `POST /api/jobs/{name}/run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Start of the data interval.
    pub start: Option<String>,
    /// End of the data interval (exclusive).
    pub end: Option<String>,
}

fn instant(name: &str, v: &str) -> Result<u64, ApiError> {
    parse_instant(v).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{name}`: `{v}` is not an instant (RFC 3339, YYYY-MM-DD or epoch ms)"),
        )
    })
}

async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let jobs = orchestrator(&state).map_err(IntoResponse::into_response)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m).into_response();
    let req: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad(format!("bad JSON body: {e}")))?
    };
    let interval = match (&req.start, &req.end) {
        (None, None) => None,
        (Some(s), Some(e)) => Some((
            instant("start", s).map_err(IntoResponse::into_response)?,
            instant("end", e).map_err(IntoResponse::into_response)?,
        )),
        _ => return Err(bad("give both `start` and `end`, or neither".into())),
    };
    match jobs.trigger(&name, interval) {
        Ok(run) => Ok((
            StatusCode::OK,
            Json(serde_json::json!({
                "queued": name,
                "run": run,
                "interval": interval.map(|(s, e)| [iso_ms(s), iso_ms(e)]),
            })),
        )
            .into_response()),
        Err(TriggerError::Unknown(_)) => Err(unknown_job(&name).into_response()),
        Err(e @ TriggerError::BadInterval) => Err(bad(e.to_string())),
        Err(e @ TriggerError::Stopped) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response())
        }
    }
}

/// Filters of `/api/registry`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryQuery {
    /// Only this symbol.
    pub symbol: Option<String>,
    /// Only this model name (e.g. `batch_pls`).
    pub model: Option<String>,
    /// Only this status.
    pub status: Option<String>,
}

async fn registry(
    State(state): State<AppState>,
    q: Result<Query<RegistryQuery>, QueryRejection>,
) -> Result<Json<Vec<ModelRecord>>, ApiError> {
    let q = query(q)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ModelStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown status `{s}` (candidate, active, rejected, retired)"),
            )
        })?),
    };
    Ok(Json(state.view.registry(|m| {
        q.symbol.as_ref().is_none_or(|s| *s == m.symbol)
            && q.model.as_ref().is_none_or(|k| *k == m.kind)
            && status.is_none_or(|s| s == m.status)
    })))
}
