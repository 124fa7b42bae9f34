//! A generic OHLCV CSV (header line, then rows) and its time formats:
//! never panics, and every tick a row makes passes the dataflow's decoder.
#![no_main]

use cryptoflow::replay::rows::{candle_ticks, parse_time, OhlcvHeader};
use dataflows::tick::{decode, Position, ValidationLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let Some(first) = lines.next() else { return };
    let _ = parse_time(first);
    let Ok(header) = OhlcvHeader::parse(first) else {
        return;
    };
    for line in lines.take(64) {
        let _ = header.time_ms(line);
        let Ok((_symbol, bar)) = header.bar(line, 60_000) else {
            continue;
        };
        if let Ok(ticks) = candle_ticks(&bar, "ETH-USD", "replay", LIMITS) {
            for t in ticks {
                decode(&t.payload, Position::default(), LIMITS).expect("replayed ticks are valid");
            }
        }
    }
});
