//! The Binance frame parser on arbitrary text (see `frames.rs` for what is
//! checked).
#![no_main]

#[path = "frames.rs"]
mod frames;

use cryptoflow::ingest::binance::Binance;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let venue = Binance::new(
        "wss://fuzz.invalid",
        &["BTCUSDT".to_string(), "ETHBTC".to_string()],
    )
    .expect("valid symbols");
    frames::check(&venue, data);
});
