//! Exact decimals for prices and sizes as the exchanges send them.
//!
//! Binance and Coinbase send decimal strings (`"0.00100000"`), Kraken v2 and
//! CoinGecko send JSON numbers (`63287.4`, `1.32e12`). Either way the text is
//! parsed here into an integer mantissa and a decimal exponent — never through
//! a binary float — and written back in plain canonical form (no exponent,
//! no trailing fractional zeros), which is what goes on the `ticks` topic as a
//! decimal string. The dataflow decides itself how to compute with it.

use std::fmt;

/// A non-negative decimal number `mantissa × 10^-scale`, exactly as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    mantissa: u128,
    scale: u32,
}

/// Longest digit string accepted (u128 holds 38 digits).
const MAX_DIGITS: usize = 38;

impl Decimal {
    /// Parses `123`, `0.001`, `1.32e12`, `5E-3`. Rejects signs, empty parts,
    /// `NaN`/`inf`, and values that would need more than 38 digits.
    pub fn parse(text: &str) -> Result<Decimal, String> {
        let bad = |why: &str| format!("`{}` is not a decimal: {why}", cut(text));
        let (number, exp) = match text.find(['e', 'E']) {
            Some(i) => {
                let e: i32 = text[i + 1..]
                    .strip_prefix('+')
                    .unwrap_or(&text[i + 1..])
                    .parse()
                    .map_err(|_| bad("bad exponent"))?;
                (&text[..i], e)
            }
            None => (text, 0),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad("expected digits[.digits][e±N]"));
        }
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(bad("too many digits"));
        }
        let mut mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| bad("too many digits"))?
        };
        let mut scale = frac.len() as i64 - i64::from(exp);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10).ok_or_else(|| bad("too large"))?;
            scale += 1;
        }
        if scale > 60 {
            return Err(bad("too small"));
        }
        let mut d = Decimal {
            mantissa,
            scale: scale as u32,
        };
        while d.scale > 0 && d.mantissa.is_multiple_of(10) {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        if d.mantissa == 0 {
            d.scale = 0;
        }
        Ok(d)
    }

    /// Is it exactly zero?
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
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

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Decimal::parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_exchange_texts_exactly() {
        assert_eq!(canon("0.00100000"), "0.001");
        assert_eq!(canon("400.23"), "400.23");
        assert_eq!(canon("63287.4"), "63287.4");
        assert_eq!(canon("1.32e12"), "1320000000000");
        assert_eq!(canon("5E-3"), "0.005");
        assert_eq!(canon("2.5e+1"), "25");
        assert_eq!(canon("100"), "100");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("0.000"), "0");
        // More digits than a double holds survive untouched.
        assert_eq!(
            canon("67432.123456789012345678"),
            "67432.123456789012345678"
        );
        assert!(Decimal::parse("0.0").unwrap().is_zero());
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in [
            "", ".5", "-1", "+1", "1.2.3", "NaN", "inf", "1e", "1e99999", "12a", " 1", "1,5",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Decimal::parse(&"9".repeat(39)).is_err());
    }
}
