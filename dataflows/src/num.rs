//! Small numeric helpers shared by the dataflow: a totally ordered `f64`
//! (dataflow records must be `Ord + Hash`), a stable string hash for routing
//! (the same on every process and every Rust version), UTC day arithmetic.
//! Nothing here reads a clock.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// An `f64` with a total order (`f64::total_cmp`) and bitwise equality, so
/// records holding prices can live in differential collections.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for F64 {}
impl PartialOrd for F64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl Hash for F64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// FNV-1a over the bytes: a routing hash that is identical on every worker,
/// process and build, unlike `std`'s unspecified `DefaultHasher`.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Milliseconds in a UTC day.
pub const DAY_MS: u64 = 86_400_000;

/// The UTC day number (days since 1970-01-01) of an epoch-ms instant.
pub fn utc_day(ts_ms: u64) -> i32 {
    (ts_ms / DAY_MS) as i32
}

/// Fixed-point scale for errors summed inside differential diffs: sums of
/// integers are exact, so metrics do not depend on merge order (and so not
/// on the number of workers).
pub const ERR_SCALE: f64 = 1e9;

/// Converts a (log-return) error to fixed point, saturating absurd values.
pub fn to_fixed(x: f64) -> i64 {
    if x.is_finite() {
        (x * ERR_SCALE).round().clamp(-1e15, 1e15) as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_order_is_total() {
        let mut v = [F64(2.0), F64(f64::NAN), F64(-1.0), F64(0.0)];
        v.sort();
        assert_eq!(v[0], F64(-1.0));
        assert_eq!(v[2], F64(2.0));
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(stable_hash(""), 0xcbf29ce484222325);
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn days() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(DAY_MS - 1), 0);
        assert_eq!(utc_day(1_700_000_000_000), 19675);
        assert_eq!(to_fixed(0.5e-9), 1);
        assert_eq!(to_fixed(f64::NAN), 0);
    }
}
