//! The tick: one trade on one exchange, as it travels on the `ticks` topic.
//!
//! This module owns the wire schema (JSON, documented in the README), its
//! decoding and its validation. Decoding never panics and never guesses: a
//! payload that is not a well-formed, plausible trade becomes a [`Reject`]
//! carrying a [`RejectReason`] and the raw payload, so the caller can count it
//! and write it to the rejects table. Time here is the trade's own event time
//! (`ts`, epoch milliseconds); the only wall-clock input is the `now_ms` passed
//! in to bound how far into the future a tick may claim to be.

use serde::{Deserialize, Serialize};

use crate::num::F64;

mod decode;
mod encode;
mod scan;

pub use decode::{decode, decode_reference};
pub use encode::encode_checked;
pub use scan::{decode_fast, decode_fast_ref};

/// Event times before this (2001-09-09) are almost certainly seconds, not ms.
pub const MIN_PLAUSIBLE_TS_MS: u64 = 1_000_000_000_000;
/// Raw payloads kept in a reject are cut to this many bytes.
pub const MAX_REJECT_PAYLOAD: usize = 4096;

/// The taker's side of the trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The taker bought (lifted the offer).
    Buy,
    /// The taker sold (hit the bid).
    Sell,
}

impl Side {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Where a record came from: partition and offset in the source topic.
///
/// Besides provenance, this is the deterministic tie-break between ticks of
/// equal event time, so bars do not depend on arrival order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// Source partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// A validated trade.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tick {
    /// Canonical `BASE-QUOTE` symbol, e.g. `BTC-USD`.
    pub symbol: String,
    /// Exchange name as sent by the producer (lowercase by convention).
    pub exchange: String,
    /// Event time, epoch milliseconds.
    pub ts_ms: u64,
    /// Trade price, > 0 and finite.
    pub price: F64,
    /// Trade size in base units, > 0 and finite.
    pub size: F64,
    /// Taker side.
    pub side: Side,
    /// Exchange trade id, when the producer sent one.
    pub trade_id: Option<String>,
    /// Source position (not part of the wire format).
    pub pos: Position,
}

/// The JSON shape a producer writes. `price` and `size` may be numbers or
/// decimal strings; `trade_id` may be a string or an integer.
#[derive(Clone, Debug, Serialize)]
pub struct WireTick<'a> {
    /// Canonical symbol.
    pub symbol: &'a str,
    /// Exchange name.
    pub exchange: &'a str,
    /// Event time, epoch ms.
    pub ts: u64,
    /// Price as a number.
    pub price: f64,
    /// Size as a number.
    pub size: f64,
    /// `buy` or `sell`.
    pub side: Side,
    /// Optional trade id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<&'a str>,
}

/// The wire shape with `price` and `size` as decimal strings, for producers
/// that hold the exact text (replayed files, exchange feeds), so no value
/// goes through a lossy float round trip on its way to the topic.
#[derive(Clone, Debug, Serialize)]
pub struct DecimalWireTick<'a> {
    /// Canonical symbol.
    pub symbol: &'a str,
    /// Exchange name.
    pub exchange: &'a str,
    /// Event time, epoch ms.
    pub ts: u64,
    /// Price, a decimal string.
    pub price: &'a str,
    /// Size, a decimal string.
    pub size: &'a str,
    /// `buy` or `sell`.
    pub side: Side,
    /// Optional trade id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<&'a str>,
}

/// A validated trade borrowed from its payload: a [`Tick`] without the
/// three heap strings, for the source, which folds most ticks into a bar
/// it already holds and so never needs them owned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickRef<'a> {
    /// Canonical symbol.
    pub symbol: &'a str,
    /// Exchange name.
    pub exchange: &'a str,
    /// Event time, epoch milliseconds.
    pub ts_ms: u64,
    /// Trade price, > 0 and finite.
    pub price: F64,
    /// Trade size in base units, > 0 and finite.
    pub size: F64,
    /// Taker side.
    pub side: Side,
    /// Exchange trade id, when the producer sent one.
    pub trade_id: Option<TradeIdRef<'a>>,
    /// Source position.
    pub pos: Position,
}

/// A trade id as the payload holds it: text, or a plain integer (whose
/// owned form is its canonical decimal, as [`decode_reference`] gives it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeIdRef<'a> {
    /// A JSON string.
    Text(&'a str),
    /// A JSON integer.
    Number(u64),
}

impl TickRef<'_> {
    /// The owned tick.
    pub fn to_tick(&self) -> Tick {
        Tick {
            symbol: self.symbol.to_string(),
            exchange: self.exchange.to_string(),
            ts_ms: self.ts_ms,
            price: self.price,
            size: self.size,
            side: self.side,
            trade_id: self.trade_id.map(|id| match id {
                TradeIdRef::Text(s) => s.to_string(),
                TradeIdRef::Number(n) => n.to_string(),
            }),
            pos: self.pos,
        }
    }
}

impl Tick {
    /// The tick borrowed.
    pub fn view(&self) -> TickRef<'_> {
        TickRef {
            symbol: &self.symbol,
            exchange: &self.exchange,
            ts_ms: self.ts_ms,
            price: self.price,
            size: self.size,
            side: self.side,
            trade_id: self.trade_id.as_deref().map(TradeIdRef::Text),
            pos: self.pos,
        }
    }

    /// Serialises the tick in the wire format (without its source position).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&WireTick {
            symbol: &self.symbol,
            exchange: &self.exchange,
            ts: self.ts_ms,
            price: self.price.0,
            size: self.size.0,
            side: self.side,
            trade_id: self.trade_id.as_deref(),
        })
        .expect("a tick always serialises")
    }
}

/// Why a record was rejected. The `code` strings are stable: they are what
/// the rejects table and the metrics carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not valid UTF-8 JSON, or not a JSON object.
    MalformedJson,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong type or an unparsable value.
    BadField,
    /// `symbol` is not canonical `BASE-QUOTE` (upper-case letters and digits).
    BadSymbol,
    /// `price` or `size` is NaN or infinite.
    NonFinite,
    /// `price` or `size` is zero or negative.
    NonPositive,
    /// `ts` is before 2001-09-09, i.e. probably seconds rather than milliseconds.
    ImplausibleTimestamp,
    /// `ts` is further ahead of the wall clock than the allowed skew.
    FutureTimestamp,
    /// `ts` is behind the event-time watermark (arrived too late for its bar).
    Late,
}

impl RejectReason {
    /// Every reason, for metrics and tests.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::MalformedJson,
        RejectReason::MissingField,
        RejectReason::BadField,
        RejectReason::BadSymbol,
        RejectReason::NonFinite,
        RejectReason::NonPositive,
        RejectReason::ImplausibleTimestamp,
        RejectReason::FutureTimestamp,
        RejectReason::Late,
    ];

    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadField => "bad_field",
            RejectReason::BadSymbol => "bad_symbol",
            RejectReason::NonFinite => "non_finite",
            RejectReason::NonPositive => "non_positive",
            RejectReason::ImplausibleTimestamp => "implausible_timestamp",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::Late => "late",
        }
    }
}

/// A record that did not become a tick, with the reason and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reject {
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// Human-readable detail, e.g. which field and what was wrong.
    pub detail: String,
    /// The raw payload (lossy UTF-8, cut to [`MAX_REJECT_PAYLOAD`] bytes).
    pub payload: String,
    /// Where the record came from.
    pub pos: Position,
    /// The record's event time when it could be read.
    pub ts_ms: Option<u64>,
    /// Symbol when it could be read.
    pub symbol: Option<String>,
    /// Event time the reject belongs to: its partition's watermark when it
    /// was read (set by the source; a pure function of the partition's
    /// contents, so replays place it in the same epoch).
    pub at_ms: u64,
}

impl Reject {
    fn new(reason: RejectReason, detail: impl Into<String>, payload: &[u8], pos: Position) -> Self {
        Reject {
            reason,
            detail: detail.into(),
            payload: cut_payload(payload),
            pos,
            ts_ms: None,
            symbol: None,
            at_ms: 0,
        }
    }

    /// Turns an accepted tick into a rejection (e.g. it arrived late).
    pub fn of_tick(tick: &Tick, reason: RejectReason, detail: impl Into<String>) -> Self {
        let mut r = Reject::new(reason, detail, tick.to_json().as_bytes(), tick.pos);
        r.ts_ms = Some(tick.ts_ms);
        r.symbol = Some(tick.symbol.clone());
        r
    }
}

/// `payload` as text (lossy UTF-8) of at most [`MAX_REJECT_PAYLOAD`] bytes,
/// cut at a character boundary. The cut comes after the conversion: each
/// invalid byte becomes a three-byte U+FFFD, so cutting the bytes first
/// could give up to three times the limit (found by fuzzing `decode`).
fn cut_payload(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(MAX_REJECT_PAYLOAD)]);
    let mut end = text.len().min(MAX_REJECT_PAYLOAD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Validation limits that do not come from the record itself.
#[derive(Clone, Copy, Debug)]
pub struct ValidationLimits {
    /// Wall-clock now, epoch ms.
    pub now_ms: u64,
    /// How far ahead of `now_ms` an event time may be.
    pub max_future_ms: u64,
}

/// A field that fails validation: the reason the pipeline rejects it with
/// and a detail naming the field and the value.
pub type Invalid = (RejectReason, String);

/// Is `s` a canonical `BASE-QUOTE` symbol?
pub fn is_canonical_symbol(s: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 16
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    match s.split_once('-') {
        Some((base, quote)) => ok_part(base) && ok_part(quote),
        None => false,
    }
}

/// The checks every tick passes, shared by [`decode`] (the dataflow's
/// source) and [`encode_checked`] (every producer), so the two can never
/// disagree on what a valid tick is.
pub(crate) mod check {
    use super::{
        is_canonical_symbol, Invalid, RejectReason, ValidationLimits, MIN_PLAUSIBLE_TS_MS,
    };

    /// The symbol is canonical `BASE-QUOTE`.
    pub fn symbol(symbol: &str) -> Result<(), Invalid> {
        if is_canonical_symbol(symbol) {
            Ok(())
        } else {
            Err((
                RejectReason::BadSymbol,
                format!("symbol `{symbol}` is not canonical BASE-QUOTE (e.g. BTC-USD)"),
            ))
        }
    }

    /// The exchange is named.
    pub fn exchange(exchange: &str) -> Result<(), Invalid> {
        if exchange.is_empty() {
            Err((
                RejectReason::BadField,
                "`exchange` must be a non-empty string, got \"\"".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Parses a decimal string such as `"64123.50"` or `"1e-3"`. Accepts
    /// `NaN` and `inf` spellings too, so that they are reported as
    /// non-finite rather than as unparsable.
    pub fn parse_decimal(s: &str) -> Option<f64> {
        let t = s.trim();
        if t.is_empty() || t.len() > 64 {
            return None;
        }
        t.parse::<f64>().ok()
    }

    /// A price or size (`name`), parsed from `shown` into `x`: finite and > 0.
    pub fn amount(
        name: &str,
        x: Option<f64>,
        shown: &dyn std::fmt::Display,
    ) -> Result<f64, Invalid> {
        let Some(x) = x else {
            return Err((
                RejectReason::BadField,
                format!("`{name}` must be a number or a decimal string, got {shown}"),
            ));
        };
        if !x.is_finite() {
            return Err((
                RejectReason::NonFinite,
                format!("`{name}` is not finite ({shown})"),
            ));
        }
        if x <= 0.0 {
            return Err((
                RejectReason::NonPositive,
                format!("`{name}` must be > 0, got {shown}"),
            ));
        }
        Ok(x)
    }

    /// The event time is epoch milliseconds and not too far in the future.
    pub fn time(ts_ms: u64, limits: ValidationLimits) -> Result<(), Invalid> {
        if ts_ms < MIN_PLAUSIBLE_TS_MS {
            return Err((
                RejectReason::ImplausibleTimestamp,
                format!("ts {ts_ms} is before 2001-09-09; ts must be epoch milliseconds"),
            ));
        }
        if ts_ms > limits.now_ms.saturating_add(limits.max_future_ms) {
            return Err((
                RejectReason::FutureTimestamp,
                format!(
                    "ts {ts_ms} is {} ms ahead of the clock (allowed {} ms)",
                    ts_ms - limits.now_ms,
                    limits.max_future_ms
                ),
            ));
        }
        Ok(())
    }
}
