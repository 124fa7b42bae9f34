//! Exact decimals for prices and sizes as files and exchanges write them.
//!
//! Binance and Coinbase send decimal strings (`"0.00100000"`), Kraken v2 and
//! CoinGecko JSON numbers (`63287.4`, `1.32e12`), history files text columns.
//! All are parsed here into an integer mantissa and a decimal scale — never
//! through a binary float — and written back in canonical form (no exponent,
//! no trailing fractional zeros: `"42283.58000000"` → `42283.58`), which is
//! what goes on the `ticks` topic as a decimal string. The only arithmetic,
//! splitting a bar's volume in four, is exact on the mantissa.

use std::cmp::Ordering;
use std::fmt;

/// Most significant digits accepted (a `u128` holds 38; [`Decimal::quarter`]
/// needs two more).
const MAX_DIGITS: usize = 34;

/// A non-negative decimal `mantissa × 10^-scale`, kept normalised (no
/// trailing zeros in the mantissa when `scale > 0`), so equal values have
/// equal representations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: u128,
    scale: u32,
}

impl Decimal {
    /// Parses `digits[.digits][e[+-]digits]` (also `.5`), trimmed. Signs,
    /// `NaN`/`inf`, empty parts and more than 34 significant digits or
    /// decimal places are errors saying what was found.
    pub fn parse(text: &str) -> Result<Decimal, String> {
        let t = text.trim();
        let bad = || format!("`{}` is not a non-negative decimal number", cut(t));
        let (number, exponent) = match t.find(['e', 'E']) {
            Some(i) => {
                let e = &t[i + 1..];
                (
                    &t[..i],
                    e.strip_prefix('+')
                        .unwrap_or(e)
                        .parse::<i32>()
                        .map_err(|_| bad())?,
                )
            }
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
                "`{}` has more than {MAX_DIGITS} significant digits",
                cut(t)
            ));
        }
        let mut mantissa: u128 = significant.parse().unwrap_or(0);
        let mut scale = frac.len() as i64 - i64::from(exponent);
        if mantissa == 0 {
            scale = 0;
        }
        if scale < 0 {
            mantissa = u32::try_from(-scale)
                .ok()
                .and_then(|s| 10u128.checked_pow(s))
                .and_then(|p| mantissa.checked_mul(p))
                .filter(|m| m.to_string().len() <= MAX_DIGITS)
                .ok_or_else(|| format!("`{}` is too large", cut(t)))?;
            scale = 0;
        }
        if scale > MAX_DIGITS as i64 {
            return Err(format!(
                "`{}` has more than {MAX_DIGITS} decimal places",
                cut(t)
            ));
        }
        Ok(Decimal::normalised(mantissa, scale as u32))
    }

    fn normalised(mut mantissa: u128, mut scale: u32) -> Decimal {
        while scale > 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            scale -= 1;
        }
        Decimal { mantissa, scale }
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// Exactly a quarter of the value.
    pub fn quarter(self) -> Decimal {
        // x / 4 = 25x / 100: two more decimal places, no rounding.
        Decimal::normalised(self.mantissa * 25, self.scale + 2)
    }

    /// The nearest double (for estimates only; the wire carries the text).
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }
}

fn cut(s: &str) -> &str {
    let end = s.char_indices().nth(40).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
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
            // Beyond 38 digits at a common scale: the integer parts decide.
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Decimal::parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_exchange_and_file_texts_exactly() {
        for (text, want) in [
            ("0.00100000", "0.001"),
            (" 42283.58000000 ", "42283.58"),
            ("400.23", "400.23"),
            ("63287.4", "63287.4"),
            ("1.32e12", "1320000000000"),
            ("5E-3", "0.005"),
            ("2.5e+1", "25"),
            (".0025", "0.0025"),
            ("100", "100"),
            ("0", "0"),
            ("0.000", "0"),
            ("0e99999", "0"),
            // More digits than a double holds survive untouched.
            ("67432.123456789012345678", "67432.123456789012345678"),
        ] {
            assert_eq!(canon(text), want, "{text}");
        }
        assert!(Decimal::parse("0.0").unwrap().is_zero());
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in [
            "", ".", "-1", "+1", "1.2.3", "NaN", "inf", "1e", "1e99999", "12a", "1,5", "abc",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Decimal::parse(&"9".repeat(35)).is_err());
        assert!(Decimal::parse("1e40").is_err());
    }

    #[test]
    fn compares_exactly() {
        let d = |s| Decimal::parse(s).unwrap();
        assert_eq!(d("42283.58000000"), d("42283.58"));
        assert!(d("0.1") < d("0.10000001"));
        assert_eq!(d("1e3"), d("1000"));
        assert_eq!(d("2.5E-3"), d(".0025"));
        assert!(d("0.000000000000000000000000000000001") < d("1000000000000000000000000000000000"));
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
            assert_eq!(Decimal::parse(v).unwrap().quarter().to_string(), q, "{v}");
        }
        // Four quarters add up to the whole, digit for digit.
        let v = Decimal::parse("7.00000003").unwrap();
        let q = v.quarter();
        assert_eq!(q.mantissa * 4, v.mantissa * 10u128.pow(q.scale - v.scale));
    }
}
