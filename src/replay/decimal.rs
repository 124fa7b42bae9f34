//! Exact decimals for replayed prices and volumes.
//!
//! Files carry prices as text (`"42283.58000000"`). They are validated here
//! and passed through to the topic as the same text, so nothing goes through
//! a lossy float round trip; the only arithmetic, splitting a bar's volume
//! into equal parts, is done on the integer mantissa and is exact.

use std::cmp::Ordering;

/// Most significant digits accepted (a `u128` holds 38; the split needs two more).
const MAX_DIGITS: usize = 34;

/// A non-negative decimal: its text and its value as `mantissa / 10^scale`.
#[derive(Clone, Debug)]
pub struct Decimal<'a> {
    text: &'a str,
    mantissa: u128,
    scale: u32,
}

impl<'a> Decimal<'a> {
    /// Parses `digits[.digits][e[+-]digits]` (also `.5`); anything else is an
    /// error saying what was found.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("`{t}` is not a non-negative decimal number");
        let (number, exponent) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (t, 0),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) {
            return Err(bad());
        }
        let digits = format!("{int}{frac}");
        let significant = digits.trim_start_matches('0');
        if significant.len() > MAX_DIGITS {
            return Err(format!(
                "`{t}` has more than {MAX_DIGITS} significant digits"
            ));
        }
        let mut mantissa: u128 = significant.parse().unwrap_or(0);
        let mut scale = frac.len() as i64 - i64::from(exponent);
        if scale < 0 {
            mantissa = 10u128
                .checked_pow((-scale) as u32)
                .and_then(|p| mantissa.checked_mul(p))
                .ok_or_else(|| format!("`{t}` is too large"))?;
            scale = 0;
        }
        if scale > MAX_DIGITS as i64 {
            return Err(format!("`{t}` has more than {MAX_DIGITS} decimal places"));
        }
        Ok(Decimal {
            text: t,
            mantissa,
            scale: scale as u32,
        })
    }

    /// The text as it was written (trimmed).
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Exactly a quarter of the value, as a decimal string.
    pub fn quarter(&self) -> String {
        // x / 4 = 25x / 100: two more decimal places, no rounding.
        format_scaled(self.mantissa * 25, self.scale + 2)
    }
}

impl PartialEq for Decimal<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal<'_> {}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal<'_> {
    /// Exact: both mantissas brought to the larger scale.
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        let at = |d: &Decimal| {
            10u128
                .checked_pow(scale - d.scale)
                .and_then(|p| d.mantissa.checked_mul(p))
        };
        match (at(self), at(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Beyond 38 digits at a common scale: the leading digits decide.
            _ => {
                let v = |d: &Decimal| d.mantissa as f64 / 10f64.powi(d.scale as i32);
                v(self).total_cmp(&v(other))
            }
        }
    }
}

/// `mantissa / 10^scale` as the shortest exact decimal string.
fn format_scaled(mantissa: u128, scale: u32) -> String {
    let digits = mantissa.to_string();
    let scale = scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_validates_and_compares_exactly() {
        let d = Decimal::parse(" 42283.58000000 ").unwrap();
        assert_eq!(d.text(), "42283.58000000");
        assert_eq!(d, Decimal::parse("42283.58").unwrap());
        assert!(Decimal::parse("0.1").unwrap() < Decimal::parse("0.10000001").unwrap());
        assert!(Decimal::parse("1e3").unwrap() == Decimal::parse("1000").unwrap());
        assert!(Decimal::parse("2.5E-3").unwrap() == Decimal::parse(".0025").unwrap());
        assert!(Decimal::parse("0.00000000").unwrap().is_zero());
        for bad in [
            "", "abc", "-1", "1.2.3", "1,5", "NaN", "inf", ".", "1e", "+2",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quarters_are_exact() {
        for (v, q) in [
            ("1", "0.25"),
            ("1.5", "0.375"),
            ("0.00000001", "0.0000000025"),
            ("123.45600000", "30.864"),
            ("4", "1"),
            ("1e2", "25"),
        ] {
            assert_eq!(Decimal::parse(v).unwrap().quarter(), q, "{v}");
        }
        // Four quarters add up to the whole, digit for digit.
        let v = Decimal::parse("7.00000003").unwrap();
        let q = Decimal::parse(&v.quarter()).unwrap().mantissa;
        assert_eq!(q * 4, v.mantissa * 100);
    }
}
