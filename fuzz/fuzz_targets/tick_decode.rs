//! The dataflow's tick decoder and validator on arbitrary bytes: never
//! panics, and a tick it accepts survives the wire format unchanged.
#![no_main]

use dataflows::tick::{decode, Position, ValidationLimits};
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
    match decode(data, pos, LIMITS) {
        Ok(tick) => {
            let again = decode(tick.to_json().as_bytes(), pos, LIMITS)
                .expect("an accepted tick re-encodes to an accepted tick");
            assert_eq!(again, tick);
        }
        Err(reject) => {
            assert!(reject.payload.len() <= dataflows::tick::MAX_REJECT_PAYLOAD);
            assert!(!reject.detail.is_empty());
        }
    }
});
