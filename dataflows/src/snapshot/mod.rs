//! The binary form of operator state, for snapshots (issue 14; the plan is
//! in `docs/design/snapshots.md`).
//!
//! Every piece of state an operator keeps per key (a symbol's features,
//! models, calibration and pending predictions; a series' evaluation sums)
//! has a serde form here, written with bincode: exact f64 bits, fixed-width
//! integers, little endian, the format timely itself exchanges data in.
//! Decoding is strict: trailing bytes, a short buffer or a length that does
//! not fit is an error, never a misread state.
//!
//! Names (`&'static str` model and slot names) are not stored; they come
//! from the configuration a state is restored under, and a state whose
//! shape does not match that configuration (other horizons, other models,
//! other batch slots) is refused with the difference named.
//!
//! What is not here yet: the cut protocol, the file container (version,
//! checksum, atomic write) and restore in the running dataflow.

pub mod arrays;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a piece of state could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("state does not decode: {0}")]
    Decode(String),
    /// The bytes decode but do not fit the configuration restored under.
    #[error("state does not match the configuration: {0}")]
    Shape(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// The state's bytes.
pub fn encode<T: Serialize>(state: &T) -> Vec<u8> {
    options()
        .serialize(state)
        .expect("operator state has no map with non-string keys or unsized data")
}

/// The state from its bytes; at most `bytes.len()` bytes are ever
/// allocated for lengths read from the input, so a corrupt length cannot
/// exhaust memory.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    options()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(|e| StateError::Decode(e.to_string()))
}

/// Encodes, decodes and re-encodes `state`, checking the two encodings are
/// the same bytes; returns the decoded copy. For tests of each operator's
/// state.
#[cfg(test)]
pub(crate) fn round_trip<T: Serialize + DeserializeOwned>(state: &T) -> T {
    let bytes = encode(state);
    let back: T = decode(&bytes).expect("own encoding decodes");
    assert_eq!(encode(&back), bytes, "re-encoding changed the bytes");
    back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_padded_bytes_are_errors() {
        let v: Vec<f64> = vec![1.0, f64::MIN_POSITIVE, -0.0];
        let bytes = encode(&v);
        assert_eq!(decode::<Vec<f64>>(&bytes).unwrap().len(), 3);
        assert!(decode::<Vec<f64>>(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Vec<f64>>(&longer).is_err());
        // A length field claiming far more than the buffer holds.
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<f64>>(&huge).is_err());
    }
}
