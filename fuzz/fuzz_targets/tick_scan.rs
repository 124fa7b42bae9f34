//! The tick scanner (the decoder's fast path) against the reference
//! decoder on arbitrary bytes: it never accepts what the reference rejects,
//! and what it accepts is the reference's tick, bit for bit.
#![no_main]

use dataflows::tick::{decode_fast, decode_reference, Position, ValidationLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

fuzz_target!(|data: &[u8]| {
    let pos = Position {
        partition: 1,
        offset: 2,
    };
    if let Some(tick) = decode_fast(data, pos, LIMITS) {
        let reference = decode_reference(data, pos, LIMITS)
            .expect("the scanner accepted what the reference decoder rejects");
        assert_eq!(reference, tick);
    }
});
