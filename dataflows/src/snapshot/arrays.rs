//! Serde for arrays whose length is a const generic parameter (serde
//! implements arrays only for literal lengths): written as a sequence of
//! numbers, read back with the length checked.

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `[f64; D]`.
pub mod vector {
    use super::*;

    /// Writes the D numbers.
    pub fn serialize<S: Serializer, const D: usize>(a: &[f64; D], s: S) -> Result<S::Ok, S::Error> {
        a.as_slice().serialize(s)
    }

    /// Reads exactly D numbers.
    pub fn deserialize<'de, De: Deserializer<'de>, const D: usize>(
        d: De,
    ) -> Result<[f64; D], De::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        let n = v.len();
        v.try_into()
            .map_err(|_| De::Error::invalid_length(n, &format!("{D} numbers").as_str()))
    }
}

/// `[[f64; D]; D]`, row by row.
pub mod matrix {
    use super::*;

    /// Writes the D × D numbers, row by row.
    pub fn serialize<S: Serializer, const D: usize>(
        a: &[[f64; D]; D],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        a.as_flattened().serialize(s)
    }

    /// Reads exactly D × D numbers.
    pub fn deserialize<'de, De: Deserializer<'de>, const D: usize>(
        d: De,
    ) -> Result<[[f64; D]; D], De::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        if v.len() != D * D {
            return Err(De::Error::invalid_length(
                v.len(),
                &format!("{} numbers", D * D).as_str(),
            ));
        }
        let mut a = [[0.0; D]; D];
        if D > 0 {
            for (row, values) in a.iter_mut().zip(v.chunks_exact(D)) {
                row.copy_from_slice(values);
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Both<const D: usize> {
        #[serde(with = "super::vector")]
        v: [f64; D],
        #[serde(with = "super::matrix")]
        m: [[f64; D]; D],
    }

    #[test]
    fn lengths_are_checked() {
        let x = Both::<3> {
            v: [1.0, -2.0, f64::EPSILON],
            m: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
        };
        assert_eq!(crate::snapshot::round_trip(&x), x);
        let bytes = crate::snapshot::encode(&x);
        assert!(crate::snapshot::decode::<Both<2>>(&bytes).is_err());
        assert!(crate::snapshot::decode::<Both<4>>(&bytes).is_err());
    }
}
