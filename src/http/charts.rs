//! The endpoints the dashboard's charts read: a per-symbol overview, bars,
//! scores and champion changes, bounded and paginated.
//!
//! Recent ranges come from the live view's in-memory windows (see
//! `history.rs`); a `since` older than the oldest bar or score held is
//! served from the Delta tables (when the server has a warehouse), then the
//! in-memory rest, in event-time order and never more than `limit` rows.
//! Pagination: pass the `next_since` of a page as the next `since`.
//! Time semantics: `since` and every `*_ms` are event time (epoch ms);
//! freshness ages compare event times with the wall clock.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{instant, query, symbol_path};
use super::history::{BarPoint, ChampionChange, ScorePoint};
use super::older::{warehouse_bars, warehouse_scores};
use super::types::{ChampionView, ErrorBody, PredictionView};
use super::{ApiError, AppState};

/// Rows per page unless asked.
pub const DEFAULT_LIMIT: usize = 500;
/// Rows per page at the most.
pub const MAX_LIMIT: usize = 5_000;
/// Closes in an overview sparkline.
pub const SPARKLINE: usize = 60;

/// One symbol on the overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolOverview {
    /// Symbol.
    pub symbol: String,
    /// Close of the last bar.
    pub last_price: f64,
    /// Close of the first bar of the sparkline (the change is measured from it).
    pub ref_price: f64,
    /// Relative change from `ref_price` to `last_price`.
    pub change: f64,
    /// The last closes, oldest first.
    pub sparkline: Vec<f64>,
    /// Bar length (ms).
    pub bar_ms: u64,
    /// End of the last bar (event ms).
    pub last_bar_end_ms: u64,
    /// End of the last bar that had a trade (event ms): the last tick is before it.
    pub last_trade_bar_end_ms: Option<u64>,
    /// Wall-clock age of the last bar's end (ms).
    pub bar_age_ms: u64,
    /// Wall-clock age of the end of the last bar with a trade (ms).
    pub tick_age_ms: Option<u64>,
    /// True when the last bar is older than three bar lengths plus 5 s.
    pub stale: bool,
    /// The champion's current prediction per horizon.
    pub predictions: Vec<PredictionView>,
}

/// Every symbol with bars: price, change, sparkline, freshness and the
/// champion's prediction per horizon.
#[utoipa::path(get, path = "/api/symbols", tag = "charts",
    responses((status = 200, description = "one per symbol", body = [SymbolOverview])))]
pub async fn symbols(State(state): State<AppState>) -> Json<Vec<SymbolOverview>> {
    let now = crate::now_ms();
    let best = state.view.best();
    let out = state.view.with_history(|h| {
        h.symbols()
            .filter_map(|s| {
                let bars = h.last_bars(s, SPARKLINE);
                let (first, last) = (bars.first()?, bars.last()?);
                let bar_ms = last.end_ms - last.start_ms;
                let bar_age_ms = now.saturating_sub(last.end_ms);
                let trade = h.last_trade_bar(s);
                Some(SymbolOverview {
                    symbol: s.clone(),
                    last_price: last.close,
                    ref_price: first.close,
                    change: last.close / first.close - 1.0,
                    sparkline: bars.iter().map(|b| b.close).collect(),
                    bar_ms,
                    last_bar_end_ms: last.end_ms,
                    last_trade_bar_end_ms: trade,
                    bar_age_ms,
                    tick_age_ms: trade.map(|t| now.saturating_sub(t)),
                    stale: bar_age_ms > 3 * bar_ms + 5_000,
                    predictions: Vec::new(),
                })
            })
            .collect::<Vec<_>>()
    });
    Json(
        out.into_iter()
            .map(|mut o| {
                o.predictions = best
                    .iter()
                    .filter(|e| e.prediction.symbol == o.symbol)
                    .map(PredictionView::from)
                    .collect();
                o
            })
            .collect(),
    )
}

/// Paging of `/api/bars/{symbol}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BarsQuery {
    /// Only bars ending after this event time (epoch ms); absent: the latest `limit` bars.
    #[param(minimum = 0)]
    pub since: Option<u64>,
    /// At most this many bars (1–5000, default 500).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// A page of bars.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarsPage {
    /// Symbol.
    pub symbol: String,
    /// Bars, oldest first.
    pub bars: Vec<BarPoint>,
    /// `memory`, `warehouse` or `warehouse+memory`.
    pub source: String,
    /// The `since` of the next page, when this one is full.
    pub next_since: Option<u64>,
}

fn limit(l: Option<usize>) -> Result<usize, ApiError> {
    match l.unwrap_or(DEFAULT_LIMIT) {
        l @ 1..=MAX_LIMIT => Ok(l),
        l => Err(ApiError::bad_request(format!(
            "limit {l} is outside 1..={MAX_LIMIT}"
        ))),
    }
}

fn known(state: &AppState, symbol: &str) -> Result<(), ApiError> {
    if state.view.knows_symbol(symbol) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no data for symbol `{symbol}`"
        )))
    }
}

/// Bars of one symbol, oldest first.
#[utoipa::path(get, path = "/api/bars/{symbol}", tag = "charts",
    params(("symbol" = String, Path, description = "canonical BASE-QUOTE", pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$"), BarsQuery),
    responses(
        (status = 200, description = "a page of bars", body = BarsPage),
        (status = 400, description = "bad symbol or query", body = ErrorBody),
        (status = 404, description = "unknown symbol", body = ErrorBody),
        (status = 503, description = "the warehouse could not be read for an older range", body = ErrorBody),
    ))]
pub async fn bars(
    State(state): State<AppState>,
    symbol: Result<Path<String>, PathRejection>,
    q: Result<Query<BarsQuery>, QueryRejection>,
) -> Result<Json<BarsPage>, ApiError> {
    let symbol = symbol_path(symbol)?;
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let since = instant(q.since, "since")?;
    known(&state, &symbol)?;
    let (mut bars, oldest, source) = match since {
        None => {
            let bars = state.view.with_history(|h| h.last_bars(&symbol, limit));
            (bars, None, "memory")
        }
        Some(since) => {
            let (bars, oldest) = state.view.with_history(|h| h.bars(&symbol, since, limit));
            (bars, oldest.filter(|o| since < *o), "memory")
        }
    };
    let mut source = source.to_string();
    if let (Some(root), Some(since), Some(oldest)) = (&state.warehouse, since, oldest) {
        let mut older = warehouse_bars(root, &symbol, since, oldest).await?;
        if !older.is_empty() {
            source = "warehouse+memory".into();
            older.truncate(limit);
            let room = limit - older.len();
            bars.truncate(room);
            older.append(&mut bars);
            bars = older;
        }
    }
    let next_since = (bars.len() == limit)
        .then(|| bars.last().map(|b| b.end_ms))
        .flatten();
    Ok(Json(BarsPage {
        symbol,
        bars,
        source,
        next_since,
    }))
}

/// Paging of `/api/scores/{symbol}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScoresQuery {
    /// Horizon in bars.
    #[param(minimum = 1)]
    pub horizon: u32,
    /// Only scores whose outcome is after this event time (epoch ms); absent: the latest `limit`.
    #[param(minimum = 0)]
    pub since: Option<u64>,
    /// Only this model.
    pub model: Option<String>,
    /// At most this many scores per model (1–5000, default 500).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// A page of scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresPage {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Scores by (outcome time, model).
    pub scores: Vec<ScorePoint>,
    /// `memory`, `warehouse` or `warehouse+memory`.
    pub source: String,
    /// The `since` of the next page, when a model's page is full.
    pub next_since: Option<u64>,
}

/// Scored predictions of one symbol and horizon (every model, or one):
/// what each predicted and what happened.
#[utoipa::path(get, path = "/api/scores/{symbol}", tag = "charts",
    params(("symbol" = String, Path, description = "canonical BASE-QUOTE", pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$"), ScoresQuery),
    responses(
        (status = 200, description = "a page of scores", body = ScoresPage),
        (status = 400, description = "bad symbol or query", body = ErrorBody),
        (status = 404, description = "unknown symbol", body = ErrorBody),
        (status = 503, description = "the warehouse could not be read for an older range", body = ErrorBody),
    ))]
pub async fn scores(
    State(state): State<AppState>,
    symbol: Result<Path<String>, PathRejection>,
    q: Result<Query<ScoresQuery>, QueryRejection>,
) -> Result<Json<ScoresPage>, ApiError> {
    let symbol = symbol_path(symbol)?;
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let since = instant(q.since, "since")?;
    if q.horizon > i32::MAX as u32 {
        return Err(ApiError::bad_request("horizon is too large"));
    }
    known(&state, &symbol)?;
    let model = q.model.as_deref();
    let (mut scores, oldest) = state
        .view
        .with_history(|h| h.scores(&symbol, q.horizon, model, since, limit));
    let mut source = "memory".to_string();
    let held_from = oldest.filter(|o| since.is_some_and(|since| since < *o));
    if let (Some(root), Some(since), Some(oldest)) = (&state.warehouse, since, held_from) {
        let mut older = warehouse_scores(root, &symbol, q.horizon, model, since, oldest).await?;
        if !older.is_empty() {
            source = "warehouse+memory".into();
            older.truncate(limit);
            older.append(&mut scores);
            scores = older;
        }
    }
    let mut per_model = std::collections::BTreeMap::<&str, usize>::new();
    for s in &scores {
        *per_model.entry(s.model.as_str()).or_default() += 1;
    }
    let full = per_model.values().any(|n| *n >= limit);
    let next_since = full
        .then(|| scores.last().map(|s| s.target_at_ms))
        .flatten();
    Ok(Json(ScoresPage {
        symbol,
        horizon_bars: q.horizon,
        scores,
        source,
        next_since,
    }))
}

/// Champions of one symbol.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChampionsPage {
    /// Symbol.
    pub symbol: String,
    /// The current champion per horizon.
    pub current: Vec<CurrentChampion>,
    /// Every change held (the last 400), oldest first.
    pub history: Vec<ChampionChange>,
}

/// The current champion of one horizon.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentChampion {
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// The champion.
    pub champion: ChampionView,
}

/// The champion of each horizon of one symbol and its history: who, since
/// when, why.
#[utoipa::path(get, path = "/api/champions/{symbol}", tag = "charts",
    params(("symbol" = String, Path, description = "canonical BASE-QUOTE", pattern = r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$")),
    responses(
        (status = 200, description = "current champions and their history", body = ChampionsPage),
        (status = 400, description = "bad symbol", body = ErrorBody),
        (status = 404, description = "unknown symbol", body = ErrorBody),
    ))]
pub async fn champions(
    State(state): State<AppState>,
    symbol: Result<Path<String>, PathRejection>,
) -> Result<Json<ChampionsPage>, ApiError> {
    let symbol = symbol_path(symbol)?;
    known(&state, &symbol)?;
    let current = state
        .view
        .models(Some(&symbol))
        .into_iter()
        .filter_map(|m| {
            Some(CurrentChampion {
                horizon_bars: m.horizon_bars,
                champion: m.champion?,
            })
        })
        .collect();
    let history = state.view.with_history(|h| h.champions(&symbol));
    Ok(Json(ChampionsPage {
        symbol,
        current,
        history,
    }))
}
