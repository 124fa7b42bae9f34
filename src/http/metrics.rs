//! Prometheus metrics at `GET /metrics` (OpenMetrics text, which Prometheus
//! scrapes natively), through the `prometheus-client` crate.
//!
//! Two kinds: meters updated where things happen (HTTP requests by route
//! and status with a latency histogram — recorded by [`track`] —, epoch
//! commit latency and failures, SSE clients), and values read at scrape
//! time from the same state `/api/health` reports (ticks, rejects by
//! reason, bars, predictions, scores, per-partition offsets and watermark
//! lag), so the two always agree at a given moment. Routes are labelled
//! by their template (`/api/bars/{symbol}`), unmatched paths as
//! `unmatched`, so label cardinality is bounded.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::view::LiveView;
use super::AppState;
use crate::telemetry::Telemetry;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry of one server: its meters and the scrape-time collector.
pub fn registry(view: &Arc<LiveView>, telemetry: &Arc<Telemetry>) -> Registry {
    let mut r = Registry::default();
    let m = &telemetry.meters;
    r.register_with_unit(
        "cryptoflow_epoch_commit_duration",
        "Wall time of one epoch commit to the warehouse (all tables)",
        Unit::Seconds,
        m.commit_seconds.clone(),
    );
    r.register(
        "cryptoflow_delta_commit_failures",
        "Epoch commits to the Delta warehouse that failed (retried)",
        m.commit_failures.clone(),
    );
    r.register(
        "cryptoflow_http_requests",
        "HTTP requests by route template and status",
        m.http_requests.clone(),
    );
    r.register_with_unit(
        "cryptoflow_http_request_duration",
        "HTTP request latency by route template (to the response head)",
        Unit::Seconds,
        m.http_seconds.clone(),
    );
    let hub = &view.hub().meters;
    r.register(
        "cryptoflow_sse_clients",
        "Connected SSE clients",
        hub.clients.clone(),
    );
    r.register(
        "cryptoflow_sse_clients_dropped",
        "SSE clients dropped for falling behind the replay buffer",
        hub.dropped.clone(),
    );
    r.register(
        "cryptoflow_sse_events",
        "Events published on the SSE stream",
        hub.events.clone(),
    );
    r.register_collector(Box::new(Snapshot {
        view: view.clone(),
        telemetry: telemetry.clone(),
    }));
    r
}

/// Values read at scrape time from the live view and the source.
struct Snapshot {
    view: Arc<LiveView>,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.view.stats();
        let progress = self.telemetry.progress.snapshot();
        let now = crate::now_ms();
        counter(
            &mut e,
            "cryptoflow_ticks_read",
            "Records read from the tick topic (valid or not)",
            progress.values().map(|p| p.records).sum(),
        )?;
        counter(
            &mut e,
            "cryptoflow_ticks",
            "Ticks accepted into closed bars",
            stats.ticks,
        )?;
        {
            let probe = ConstCounter::new(0u64);
            let mut family = e.encode_descriptor(
                "cryptoflow_ticks_rejected",
                "Records rejected, by reason",
                None,
                probe.metric_type(),
            )?;
            for (reason, n) in &stats.rejects {
                let labels = [("reason", reason.as_str())];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "cryptoflow_bars",
            "Bars closed (including gap-filled)",
            stats.bars,
        )?;
        counter(
            &mut e,
            "cryptoflow_bars_filled",
            "Gap-filling flat bars",
            stats.bars_filled,
        )?;
        counter(
            &mut e,
            "cryptoflow_predictions",
            "Predictions made",
            stats.predictions,
        )?;
        counter(
            &mut e,
            "cryptoflow_scores",
            "Predictions scored",
            stats.scores,
        )?;
        let (ok, _) = self.telemetry.commit_counts();
        counter(
            &mut e,
            "cryptoflow_epoch_commits",
            "Epoch commits that succeeded",
            ok,
        )?;
        if let Some(t) = stats.event_time_ms {
            let g = ConstGauge::new(t as f64 / 1e3);
            g.encode(e.encode_descriptor(
                "cryptoflow_event_time",
                "Latest event time fully processed (unix time)",
                Some(&Unit::Seconds),
                g.metric_type(),
            )?)?;
        }
        {
            let g = ConstGauge::new(0i64);
            let mut offsets = e.encode_descriptor(
                "cryptoflow_partition_offset",
                "Next offset to read, per source partition",
                None,
                g.metric_type(),
            )?;
            for (p, st) in &progress {
                if let Some(o) = st.next_offset {
                    let labels = [("partition", p.to_string())];
                    ConstGauge::new(o).encode(offsets.encode_family(&labels)?)?;
                }
            }
        }
        let g = ConstGauge::new(0f64);
        let mut lags = e.encode_descriptor(
            "cryptoflow_partition_watermark_lag",
            "Wall clock minus the partition's event-time watermark",
            Some(&Unit::Seconds),
            g.metric_type(),
        )?;
        for (p, st) in &progress {
            if let Some(w) = st.watermark_ms {
                let labels = [("partition", p.to_string())];
                ConstGauge::new(now.saturating_sub(w) as f64 / 1e3)
                    .encode(lags.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "OpenMetrics text exposition",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &state.registry).is_err() {
        return super::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed",
        )
        .into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Middleware: counts every request by route template and status and
/// records its latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.telemetry.meters;
    m.http_seconds
        .get_or_create(&[("route", route.clone())])
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&[
            ("route", route),
            ("status", resp.status().as_u16().to_string()),
        ])
        .inc();
    resp
}
