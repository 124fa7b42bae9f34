//! The Coinbase frame parser on arbitrary text (see `frames.rs` for what is
//! checked).
#![no_main]

#[path = "frames.rs"]
mod frames;

use cryptoflow::ingest::coinbase::Coinbase;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let venue =
        Coinbase::new("wss://fuzz.invalid", &["BTC-USD".to_string()]).expect("valid symbols");
    frames::check(&venue, data);
});
