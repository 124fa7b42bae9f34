//! Decoding a payload from the topic into a [`Tick`], or a [`Reject`] that
//! says why not. Never panics, never guesses.

use serde_json::Value;

use super::{check, Invalid, Position, Reject, RejectReason, Side, Tick, ValidationLimits};
use crate::num::F64;

/// Decodes and validates one payload. Never panics. A flat, valid tick is
/// read by the scanner ([`super::scan`]); everything else, and every
/// reject, by [`decode_reference`].
pub fn decode(
    payload: &[u8],
    pos: Position,
    limits: ValidationLimits,
) -> Result<Tick, Box<Reject>> {
    match super::scan::decode_fast(payload, pos, limits) {
        Some(tick) => Ok(tick),
        None => decode_reference(payload, pos, limits),
    }
}

/// The reference decoder: the payload parsed into a JSON tree, each field
/// checked with a reason and a detail for what is wrong. The definition of
/// a valid tick and of every reject.
pub fn decode_reference(
    payload: &[u8],
    pos: Position,
    limits: ValidationLimits,
) -> Result<Tick, Box<Reject>> {
    let reject = |(reason, detail): Invalid| Box::new(Reject::new(reason, detail, payload, pos));
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| reject((RejectReason::MalformedJson, format!("not JSON: {e}"))))?;
    let Value::Object(obj) = value else {
        return Err(reject((
            RejectReason::MalformedJson,
            "not a JSON object".into(),
        )));
    };
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let require = |name: &'static str| {
        field(name).ok_or_else(|| {
            reject((
                RejectReason::MissingField,
                format!("missing field `{name}`"),
            ))
        })
    };

    let symbol = match require("symbol")? {
        Value::String(s) => s.clone(),
        other => {
            return Err(reject((
                RejectReason::BadField,
                format!("`symbol` must be a string, got {other}"),
            )))
        }
    };
    let ts_ms = parse_ts(require("ts")?).map_err(|d| reject((RejectReason::BadField, d)))?;
    let with_context = |mut r: Box<Reject>| {
        r.ts_ms = Some(ts_ms);
        r.symbol = Some(symbol.clone());
        r
    };
    let invalid = |i: Invalid| with_context(reject(i));
    check::symbol(&symbol).map_err(invalid)?;
    let exchange = match require("exchange").map_err(with_context)? {
        Value::String(s) => {
            check::exchange(s).map_err(invalid)?;
            s.clone()
        }
        other => {
            return Err(invalid((
                RejectReason::BadField,
                format!("`exchange` must be a non-empty string, got {other}"),
            )))
        }
    };
    let price = amount("price", require("price").map_err(with_context)?).map_err(invalid)?;
    let size = amount("size", require("size").map_err(with_context)?).map_err(invalid)?;
    let side = match require("side").map_err(with_context)? {
        Value::String(s) if s.eq_ignore_ascii_case("buy") => Side::Buy,
        Value::String(s) if s.eq_ignore_ascii_case("sell") => Side::Sell,
        other => {
            return Err(invalid((
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
            return Err(invalid((
                RejectReason::BadField,
                format!("`trade_id` must be a string or an integer, got {other}"),
            )))
        }
    };
    check::time(ts_ms, limits).map_err(invalid)?;
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

/// A price or size as a JSON number or a decimal string.
fn amount(name: &str, v: &Value) -> Result<f64, Invalid> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => check::parse_decimal(s),
        _ => None,
    };
    check::amount(name, x, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{is_canonical_symbol, MAX_REJECT_PAYLOAD};

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

    /// Found by fuzzing (`fuzz/fuzz_targets/tick_decode.rs`): invalid UTF-8
    /// turns into three-byte replacement characters, so a payload under the
    /// limit in bytes gave a reject payload of nearly three times the limit.
    #[test]
    fn a_reject_payload_stays_within_the_limit_whatever_the_bytes() {
        let mut raw = br#"{"prices":[[1711843200615,69702.31],[17118"#.to_vec();
        raw.extend(std::iter::repeat_n(0xdd, 2_000));
        raw.extend(b"43500000,69710.5]]}");
        let r = decode(&raw, Position::default(), LIMITS).unwrap_err();
        assert_eq!(r.reason, RejectReason::MalformedJson);
        assert!(r.payload.len() <= MAX_REJECT_PAYLOAD, "{}", r.payload.len());
        assert!(r.payload.starts_with(r#"{"prices":[[1711843200615"#));
        assert!(r.payload.ends_with('\u{fffd}'));
        for n in [0, 1, 4095, 4096, 4097] {
            let r = decode(&vec![0xff; n], Position::default(), LIMITS).unwrap_err();
            assert!(r.payload.len() <= MAX_REJECT_PAYLOAD);
        }
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
