//! The Kraken frame parser on arbitrary text (see `frames.rs` for what is
//! checked).
#![no_main]

#[path = "frames.rs"]
mod frames;

use cryptoflow::ingest::kraken::Kraken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let venue = Kraken::new(
        "wss://fuzz.invalid",
        &["BTC/USD".to_string(), "XBT/EUR".to_string()],
    )
    .expect("valid symbols");
    frames::check(&venue, data);
});
