//! The producers' side of the tick: a trade a feed is about to send is
//! checked with the same rules [`super::decode`] applies (the shared
//! [`super::check`]) and serialised in the wire format, in one step. So
//! nothing a producer sends is rejected downstream, and a trade that would
//! be is refused with the very [`RejectReason`](super::RejectReason) the
//! dataflow would give it.

use super::{check, DecimalWireTick, Invalid, ValidationLimits};

/// Checks `tick` and returns its wire-format JSON, or why the pipeline
/// would reject it. Prices and sizes stay the exact decimal text given.
pub fn encode_checked(
    tick: &DecimalWireTick<'_>,
    limits: ValidationLimits,
) -> Result<Vec<u8>, Invalid> {
    check::symbol(tick.symbol)?;
    check::exchange(tick.exchange)?;
    // Shown as the decoder shows a JSON string value: quoted and escaped.
    let shown = |s: &str| serde_json::Value::from(s).to_string();
    check::amount(
        "price",
        check::parse_decimal(tick.price),
        &shown(tick.price),
    )?;
    check::amount("size", check::parse_decimal(tick.size), &shown(tick.size))?;
    check::time(tick.ts, limits)?;
    Ok(serde_json::to_vec(tick).expect("a tick of strings and integers always serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{decode, Position, RejectReason, Side};

    const LIMITS: ValidationLimits = ValidationLimits {
        now_ms: 1_700_000_000_000,
        max_future_ms: 60_000,
    };

    fn tick<'a>(symbol: &'a str, price: &'a str, size: &'a str, ts: u64) -> DecimalWireTick<'a> {
        DecimalWireTick {
            symbol,
            exchange: "binance",
            ts,
            price,
            size,
            side: Side::Sell,
            trade_id: Some("7"),
        }
    }

    /// Whatever the encoder accepts decodes to the same values; whatever it
    /// refuses, the decoder rejects with the same reason.
    #[test]
    fn agrees_with_the_decoder() {
        let ts = LIMITS.now_ms - 1;
        let cases = [
            tick("BTC-USD", "64123.5", "0.001", ts),
            tick("btc-usd", "1", "1", ts),
            tick("BTC-USD", "abc", "1", ts),
            tick("BTC-USD", "NaN", "1", ts),
            tick("BTC-USD", "1", "inf", ts),
            tick("BTC-USD", "0", "1", ts),
            tick("BTC-USD", "1", "-2", ts),
            tick("BTC-USD", "1", "1", 1_699_999_999),
            tick("BTC-USD", "1", "1", LIMITS.now_ms + 60_001),
            DecimalWireTick {
                exchange: "",
                ..tick("BTC-USD", "1", "1", ts)
            },
            // Found by fuzzing (`fuzz/fuzz_targets/tick_encode.rs`): a value
            // with a control character or a quote was shown raw here and
            // escaped by the decoder, so the two details differed.
            tick("BTC-USD", "5", "1\0", ts),
            tick("BTC-USD", "\"5\"", "1", ts),
            tick("BTC-USD", "5", "x\u{7f}\\", ts),
        ];
        for t in &cases {
            let json = serde_json::to_vec(t).unwrap();
            let decoded = decode(&json, Position::default(), LIMITS);
            match encode_checked(t, LIMITS) {
                Ok(bytes) => {
                    assert_eq!(bytes, json);
                    let d = decoded.unwrap();
                    assert_eq!(d.price.0, t.price.parse::<f64>().unwrap());
                }
                Err((reason, detail)) => {
                    let r = decoded.unwrap_err();
                    assert_eq!(reason, r.reason, "{t:?}");
                    assert_eq!(detail, r.detail, "{t:?}");
                    assert_ne!(reason, RejectReason::MalformedJson);
                }
            }
        }
    }
}
