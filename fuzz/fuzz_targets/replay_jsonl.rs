//! A JSONL replay line: never panics; a line replay accepts goes out byte
//! for byte, keyed by its symbol.
#![no_main]

use cryptoflow::replay::rows::validated;
use dataflows::tick::ValidationLimits;
use libfuzzer_sys::fuzz_target;

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = validated(data.to_vec(), LIMITS) {
        assert_eq!(out.payload, data);
        assert!(dataflows::tick::is_canonical_symbol(&out.key));
    }
});
