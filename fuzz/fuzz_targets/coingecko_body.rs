//! The CoinGecko REST body parsers (`/simple/price` polls and
//! `/coins/{id}/market_chart` backfills) on arbitrary text: never panic.
#![no_main]

use std::time::Duration;

use cryptoflow::ingest::coingecko::CoinGecko;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut cg = CoinGecko::new(
        "https://fuzz.invalid/api/v3",
        &["bitcoin".to_string(), "ethereum".to_string()],
        &["usd".to_string(), "eur".to_string()],
        Duration::from_secs(30),
        0,
    )
    .expect("known coins");
    // Twice, so the second pass sees the first one's state (ids, last prices).
    for _ in 0..2 {
        let _ = cg.parse_simple_price(text);
    }
    let _ = cg.parse_market_chart("bitcoin", "usd", text);
});
