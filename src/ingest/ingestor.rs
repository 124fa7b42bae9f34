//! The shared half of every connector: [`Ingestor`] turns a venue's parsed
//! frames into ticks, rejects and counters, the same way for every venue
//! (dedupe and gap checks by trade id, validation by the dataflow's own
//! rules through `Trade::encode`, rejects with the raw frame, `--max-ticks`).
//!
//! Time semantics: a trade keeps its venue's event time; the wall clock is
//! used only for the "not in the future" bound and a reject's `received_ms`.
//! It must never stop on bad input (a bad frame or trade is a reject, and the
//! connection carries on) and never send what the pipeline would reject.

use dataflows::tick::{ValidationLimits, MAX_REJECT_PAYLOAD};
use serde::Serialize;
use tracing::{debug, info, warn};

use super::{Frame, Malformed, RunLimits, Seen, Sink, Summary, Tracker, Trade};
use crate::kafka;
use crate::now_ms;

#[derive(Serialize)]
struct RejectRecord<'a> {
    exchange: &'a str,
    received_ms: u64,
    reason: &'a str,
    detail: &'a str,
    payload: &'a str,
}

/// The shared half of every connector: turns parsed frames into ticks,
/// rejects and counters.
pub struct Ingestor<'s> {
    exchange: &'static str,
    consecutive_ids: bool,
    sink: &'s dyn Sink,
    limits: RunLimits,
    tracker: Tracker,
    summary: Summary,
}

impl<'s> Ingestor<'s> {
    /// An ingestor for `exchange` writing to `sink`.
    pub fn new(
        exchange: &'static str,
        consecutive_ids: bool,
        sink: &'s dyn Sink,
        limits: RunLimits,
    ) -> Self {
        Ingestor {
            exchange,
            consecutive_ids,
            sink,
            limits,
            tracker: Tracker::default(),
            summary: Summary {
                exchange: exchange.to_string(),
                ..Summary::default()
            },
        }
    }

    /// Has `--max-ticks` been reached?
    pub fn done(&self) -> bool {
        self.limits
            .max_ticks
            .is_some_and(|m| self.summary.ticks >= m)
    }

    /// Counters so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Counts a failed connection or poll.
    pub fn reconnecting(&mut self) {
        self.summary.reconnects += 1;
    }

    /// Handles one frame: `raw` is the text as received (kept for rejects).
    pub fn frame(
        &mut self,
        raw: &str,
        parsed: std::result::Result<Frame, Malformed>,
    ) -> kafka::Result<()> {
        self.summary.frames += 1;
        match parsed {
            Err(m) => self.reject(raw, &m),
            Ok(Frame::Trades(trades)) => {
                for t in trades {
                    match t {
                        Ok(t) => self.trade(raw, &t)?,
                        Err(m) => self.reject(raw, &m)?,
                    }
                }
                Ok(())
            }
            Ok(Frame::Heartbeat(last)) => {
                self.summary.heartbeats += 1;
                if let Some((symbol, id)) = last {
                    let missing = self.tracker.heartbeat(&symbol, id);
                    self.gap(
                        &symbol,
                        missing,
                        "heartbeat announced trades never received",
                    );
                }
                Ok(())
            }
            Ok(Frame::Control) => Ok(()),
            Ok(Frame::Quote) => {
                self.summary.quotes += 1;
                Ok(())
            }
            Ok(Frame::VenueError(msg)) => {
                self.summary.venue_errors += 1;
                warn!(exchange = self.exchange, error = %msg, "venue reported an error");
                Ok(())
            }
        }
    }

    fn gap(&mut self, symbol: &str, missing: u64, what: &str) {
        if missing > 0 {
            self.summary.gaps += 1;
            self.summary.missing_trades = self.summary.missing_trades.saturating_add(missing);
            warn!(exchange = self.exchange, symbol, missing, "gap: {what}");
        }
    }

    /// The run's limits.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Sends a tick built and validated elsewhere (e.g. a backfilled kline),
    /// bypassing the trade-id tracking.
    pub fn validated_tick(&mut self, symbol: &str, payload: &[u8]) -> kafka::Result<()> {
        if self.done() {
            return Ok(());
        }
        self.sink.tick(symbol, payload)?;
        self.summary.ticks += 1;
        Ok(())
    }

    /// Counts a gap known only by time (no ids to say how many trades).
    pub fn time_gap(&mut self, symbol: &str, seconds: u64) {
        self.summary.gaps += 1;
        warn!(
            exchange = self.exchange,
            symbol, seconds, "gap: no update for too long"
        );
    }

    /// Handles one trade: dedupe, gap check, validate, send.
    pub fn trade(&mut self, raw: &str, t: &Trade) -> kafka::Result<()> {
        if self.done() {
            return Ok(());
        }
        match self
            .tracker
            .observe(&t.symbol, t.trade_id, self.consecutive_ids)
        {
            Seen::Duplicate => {
                self.summary.duplicates += 1;
                debug!(exchange = self.exchange, symbol = %t.symbol, id = t.trade_id, "duplicate dropped");
                return Ok(());
            }
            Seen::New {
                missing,
                out_of_order,
            } => {
                self.gap(&t.symbol, missing, "trade ids skipped");
                if out_of_order {
                    self.summary.out_of_order += 1;
                }
            }
        }
        let limits = ValidationLimits {
            now_ms: now_ms(),
            max_future_ms: self.limits.max_future_ms,
        };
        match t.encode(self.exchange, limits) {
            Ok(json) => {
                self.sink.tick(&t.symbol, &json)?;
                self.summary.ticks += 1;
                Ok(())
            }
            Err((reason, detail)) => self.reject(raw, &Malformed::new(reason, detail)),
        }
    }

    /// Sends a frame that could not be used to the rejects topic.
    pub fn reject(&mut self, raw: &str, why: &Malformed) -> kafka::Result<()> {
        self.summary.rejected += 1;
        if self.summary.rejected <= 10 || self.summary.rejected.is_power_of_two() {
            warn!(exchange = self.exchange, reason = why.reason.code(), detail = %why.detail, rejected = self.summary.rejected, "frame rejected");
        }
        let end = (0..=raw.len().min(MAX_REJECT_PAYLOAD))
            .rev()
            .find(|&i| raw.is_char_boundary(i))
            .unwrap_or(0);
        let record = RejectRecord {
            exchange: self.exchange,
            received_ms: now_ms(),
            reason: why.reason.code(),
            detail: &why.detail,
            payload: &raw[..end],
        };
        let json = serde_json::to_vec(&record).expect("a reject always serialises");
        self.sink.reject(self.exchange, &json)
    }

    /// Flushes the sink and returns the counters.
    pub fn finish(self) -> kafka::Result<Summary> {
        self.sink.flush()?;
        info!(summary = ?self.summary, "ingest finished");
        Ok(self.summary)
    }
}
