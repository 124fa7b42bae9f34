//! A Binance klines row to the four ticks it stands for: never panics, and
//! every tick it makes passes the dataflow's decoder.
#![no_main]

use cryptoflow::replay::rows::{binance_candle, candle_ticks};
use dataflows::tick::{decode, Position, ValidationLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(bar) = binance_candle(line) else {
        return;
    };
    if let Ok(ticks) = candle_ticks(&bar, "BTC-USDT", "binance", LIMITS) {
        for t in ticks {
            decode(&t.payload, Position::default(), LIMITS).expect("replayed ticks are valid");
        }
    }
});
