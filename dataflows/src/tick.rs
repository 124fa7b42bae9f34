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
use serde_json::Value;

use crate::num::F64;

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

impl Tick {
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
        let cut = payload.len().min(MAX_REJECT_PAYLOAD);
        Reject {
            reason,
            detail: detail.into(),
            payload: String::from_utf8_lossy(&payload[..cut]).into_owned(),
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

/// Validation limits that do not come from the record itself.
#[derive(Clone, Copy, Debug)]
pub struct ValidationLimits {
    /// Wall-clock now, epoch ms.
    pub now_ms: u64,
    /// How far ahead of `now_ms` an event time may be.
    pub max_future_ms: u64,
}

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

/// Decodes and validates one payload. Never panics.
pub fn decode(
    payload: &[u8],
    pos: Position,
    limits: ValidationLimits,
) -> Result<Tick, Box<Reject>> {
    let reject = |reason, detail: String| Box::new(Reject::new(reason, detail, payload, pos));
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| reject(RejectReason::MalformedJson, format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(reject(
            RejectReason::MalformedJson,
            "not a JSON object".into(),
        ));
    };
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let require = |name: &'static str| {
        field(name).ok_or_else(|| {
            reject(
                RejectReason::MissingField,
                format!("missing field `{name}`"),
            )
        })
    };

    let symbol = match require("symbol")? {
        Value::String(s) => s.clone(),
        other => {
            return Err(reject(
                RejectReason::BadField,
                format!("`symbol` must be a string, got {other}"),
            ))
        }
    };
    let ts_ms = parse_ts(require("ts")?).map_err(|d| reject(RejectReason::BadField, d))?;
    let with_context = |mut r: Box<Reject>| {
        r.ts_ms = Some(ts_ms);
        r.symbol = Some(symbol.clone());
        r
    };
    if !is_canonical_symbol(&symbol) {
        return Err(with_context(reject(
            RejectReason::BadSymbol,
            format!("symbol `{symbol}` is not canonical BASE-QUOTE (e.g. BTC-USD)"),
        )));
    }
    let exchange = match require("exchange").map_err(with_context)? {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => {
            return Err(with_context(reject(
                RejectReason::BadField,
                format!("`exchange` must be a non-empty string, got {other}"),
            )))
        }
    };
    let price = parse_positive("price", require("price").map_err(with_context)?)
        .map_err(|(r, d)| with_context(reject(r, d)))?;
    let size = parse_positive("size", require("size").map_err(with_context)?)
        .map_err(|(r, d)| with_context(reject(r, d)))?;
    let side = match require("side").map_err(with_context)? {
        Value::String(s) if s.eq_ignore_ascii_case("buy") => Side::Buy,
        Value::String(s) if s.eq_ignore_ascii_case("sell") => Side::Sell,
        other => {
            return Err(with_context(reject(
                RejectReason::BadField,
                format!("`side` must be \"buy\" or \"sell\", got {other}"),
            )))
        }
    };
    let trade_id = match field("trade_id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Some(other) => {
            return Err(with_context(reject(
                RejectReason::BadField,
                format!("`trade_id` must be a string or an integer, got {other}"),
            )))
        }
    };
    if ts_ms < MIN_PLAUSIBLE_TS_MS {
        return Err(with_context(reject(
            RejectReason::ImplausibleTimestamp,
            format!("ts {ts_ms} is before 2001-09-09; ts must be epoch milliseconds"),
        )));
    }
    if ts_ms > limits.now_ms.saturating_add(limits.max_future_ms) {
        return Err(with_context(reject(
            RejectReason::FutureTimestamp,
            format!(
                "ts {ts_ms} is {} ms ahead of the clock (allowed {} ms)",
                ts_ms - limits.now_ms,
                limits.max_future_ms
            ),
        )));
    }
    Ok(Tick {
        symbol,
        exchange,
        ts_ms,
        price: F64(price),
        size: F64(size),
        side,
        trade_id,
        pos,
    })
}

fn parse_ts(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("`ts` must be a non-negative integer (epoch ms), got {n}")),
        Value::String(s) => s
            .parse::<u64>()
            .map_err(|_| format!("`ts` must be an integer (epoch ms), got \"{s}\"")),
        other => Err(format!("`ts` must be an integer (epoch ms), got {other}")),
    }
}

fn parse_positive(name: &str, v: &Value) -> Result<f64, (RejectReason, String)> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_decimal(s),
        _ => None,
    };
    let Some(x) = x else {
        return Err((
            RejectReason::BadField,
            format!("`{name}` must be a number or a decimal string, got {v}"),
        ));
    };
    if !x.is_finite() {
        return Err((
            RejectReason::NonFinite,
            format!("`{name}` is not finite ({v})"),
        ));
    }
    if x <= 0.0 {
        return Err((
            RejectReason::NonPositive,
            format!("`{name}` must be > 0, got {v}"),
        ));
    }
    Ok(x)
}

/// Parses a decimal string such as `"64123.50"` or `"1e-3"`. Accepts `NaN`
/// and `inf` spellings too, so that they are reported as non-finite rather
/// than as unparsable.
fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;
    const LIMITS: ValidationLimits = ValidationLimits {
        now_ms: NOW,
        max_future_ms: 60_000,
    };

    fn dec(s: &str) -> Result<Tick, Box<Reject>> {
        decode(
            s.as_bytes(),
            Position {
                partition: 3,
                offset: 7,
            },
            LIMITS,
        )
    }

    #[test]
    fn accepts_numbers_and_decimal_strings() {
        let t = dec(r#"{"symbol":"BTC-USD","exchange":"coinbase","ts":1699999999000,"price":"64123.50","size":0.25,"side":"buy","trade_id":42,"extra":true}"#).unwrap();
        assert_eq!(t.symbol, "BTC-USD");
        assert_eq!(t.price.0, 64123.5);
        assert_eq!(t.size.0, 0.25);
        assert_eq!(t.side, Side::Buy);
        assert_eq!(t.trade_id.as_deref(), Some("42"));
        assert_eq!(
            t.pos,
            Position {
                partition: 3,
                offset: 7
            }
        );
        let back = dec(&t.to_json()).unwrap();
        assert_eq!(back, t);
    }

    fn reason(s: &str) -> RejectReason {
        dec(s).unwrap_err().reason
    }

    #[test]
    fn every_decode_reason_is_reachable() {
        let ok = |f: &str, v: &str| {
            let mut m: serde_json::Map<String, Value> = serde_json::from_str(
                r#"{"symbol":"ETH-USD","exchange":"kraken","ts":1699999999000,"price":2000.5,"size":1,"side":"sell"}"#,
            )
            .unwrap();
            if v == "<absent>" {
                m.remove(f);
            } else {
                m.insert(f.to_string(), serde_json::from_str(v).unwrap());
            }
            Value::Object(m).to_string()
        };
        assert_eq!(reason("{not json"), RejectReason::MalformedJson);
        assert_eq!(reason("[1,2]"), RejectReason::MalformedJson);
        assert_eq!(reason(&ok("price", "<absent>")), RejectReason::MissingField);
        assert_eq!(reason(&ok("side", "null")), RejectReason::MissingField);
        assert_eq!(reason(&ok("price", "\"abc\"")), RejectReason::BadField);
        assert_eq!(reason(&ok("side", "\"hold\"")), RejectReason::BadField);
        assert_eq!(reason(&ok("ts", "1.5")), RejectReason::BadField);
        assert_eq!(reason(&ok("symbol", "\"btcusd\"")), RejectReason::BadSymbol);
        assert_eq!(reason(&ok("price", "\"NaN\"")), RejectReason::NonFinite);
        assert_eq!(reason(&ok("size", "\"inf\"")), RejectReason::NonFinite);
        assert_eq!(reason(&ok("price", "0")), RejectReason::NonPositive);
        assert_eq!(reason(&ok("size", "-1")), RejectReason::NonPositive);
        assert_eq!(
            reason(&ok("ts", "1699999999")),
            RejectReason::ImplausibleTimestamp
        );
        assert_eq!(
            reason(&ok("ts", &(NOW + 60_001).to_string())),
            RejectReason::FutureTimestamp
        );
        assert!(dec(&ok("ts", &(NOW + 60_000).to_string())).is_ok());
    }

    #[test]
    fn rejects_keep_payload_and_context() {
        let r = dec(r#"{"symbol":"BTC-USD","exchange":"x","ts":1699999999000,"price":-3,"size":1,"side":"buy"}"#)
            .unwrap_err();
        assert_eq!(r.symbol.as_deref(), Some("BTC-USD"));
        assert_eq!(r.ts_ms, Some(1_699_999_999_000));
        assert!(r.payload.contains("\"price\":-3"));
        assert!(r.detail.contains("price"));
        let long = vec![b'x'; 10_000];
        let r = decode(&long, Position::default(), LIMITS).unwrap_err();
        assert_eq!(r.payload.len(), MAX_REJECT_PAYLOAD);
    }

    #[test]
    fn canonical_symbols() {
        assert!(is_canonical_symbol("BTC-USD"));
        assert!(is_canonical_symbol("1INCH-USDT"));
        for bad in [
            "BTCUSD",
            "btc-usd",
            "BTC-",
            "-USD",
            "BTC-USD-X",
            "BTC/USD",
            "",
        ] {
            assert!(!is_canonical_symbol(bad), "{bad}");
        }
    }
}
