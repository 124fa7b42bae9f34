//! The producers' checked encoder on arbitrary field values: never panics,
//! and agrees with the decoder — what it accepts decodes to the same
//! trade, what it refuses the decoder rejects for the same reason.
#![no_main]

use dataflows::tick::{decode, encode_checked, DecimalWireTick, Position, Side, ValidationLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xff: symbol, exchange, price, size, trade id; then 8 bytes of ts.
    let (text, ts) = data.split_at(data.len().saturating_sub(8));
    let ts = ts.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let text = String::from_utf8_lossy(text);
    let mut parts = text.split('\u{fffd}');
    let mut next = || parts.next().unwrap_or("");
    let (symbol, exchange, price, size, id) = (next(), next(), next(), next(), next());
    let tick = DecimalWireTick {
        symbol,
        exchange,
        ts,
        price,
        size,
        side: if ts % 2 == 0 { Side::Buy } else { Side::Sell },
        trade_id: (!id.is_empty()).then_some(id),
    };
    let wire = serde_json::to_vec(&tick).expect("strings and integers serialise");
    let decoded = decode(&wire, Position::default(), LIMITS);
    match encode_checked(&tick, LIMITS) {
        Ok(bytes) => {
            assert_eq!(bytes, wire);
            let t = decoded.expect("the decoder accepts what the encoder accepted");
            assert_eq!((t.symbol.as_str(), t.ts_ms), (symbol, ts));
        }
        Err((reason, detail)) => {
            let r = decoded.expect_err("the decoder rejects what the encoder refused");
            assert_eq!((reason, detail), (r.reason, r.detail));
        }
    }
});
