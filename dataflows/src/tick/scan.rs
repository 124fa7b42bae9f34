//! The fast path of [`super::decode`]: one pass over a flat JSON object,
//! with no JSON tree and no allocation besides the tick's own strings.
//!
//! It only ever *accepts*. Anything it is not sure of — escapes in a string,
//! a nested value, a number outside plain JSON grammar or outside the exact
//! integer range, `ts` given as a string, a field that fails validation —
//! makes it return `None`, and the caller runs the reference decoder
//! ([`super::decode::decode_reference`]) on the same bytes. So every reject,
//! its reason and its detail come from one place, and a tick the scanner
//! accepts is the tick the reference decoder would have built: same fields,
//! same bits (numbers are parsed by Rust's correctly rounded `f64` parser,
//! which is what serde_json's `float_roundtrip` gives; duplicate keys keep
//! the last value, as serde_json's map does). A unit test and the fuzz
//! target `tick_scan` compare the two on random and mutated payloads.

use super::{check, Position, Side, Tick, TickRef, TradeIdRef, ValidationLimits};
use crate::num::F64;

/// A scalar JSON value, as the bytes between its delimiters.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    /// A string without escapes (the bytes between the quotes, valid UTF-8).
    Str(&'a str),
    /// A number in JSON grammar (its text).
    Num(&'a str),
    /// `true`, `false` (never a valid field value; kept to know it is not null).
    Bool,
    /// `null` (the same as a missing field).
    Null,
}

/// A position in a payload known to be UTF-8 (checked once, as a whole:
/// JSON can only hold other bytes inside strings, which the reference
/// decoder refuses too), so strings are sliced, not validated one by one.
struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// A string without escapes or control characters, after its opening quote.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        // Both ends are ASCII quotes: char boundaries.
        let s = self.s.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number in JSON grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        // Only ASCII was consumed.
        let n = self.s.get(start..self.i)?;
        // serde_json refuses a whole document with a number beyond f64's
        // range, whatever its key. Without an exponent, fewer than 300
        // characters are below 1e300 and always fit; only the others are
        // parsed to find out.
        let short = n.len() < 300 && !n.bytes().any(|b| b == b'e' || b == b'E');
        (short || n.parse::<f64>().is_ok_and(f64::is_finite)).then_some(n)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end) == Some(word)).then(|| self.i = end)
    }

    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string().map(Scalar::Str)
            }
            b't' => self.literal(b"true").map(|_| Scalar::Bool),
            b'f' => self.literal(b"false").map(|_| Scalar::Bool),
            b'n' => self.literal(b"null").map(|_| Scalar::Null),
            b'-' | b'0'..=b'9' => self.number().map(Scalar::Num),
            _ => None, // nested values and anything malformed
        }
    }
}

/// The fields a tick is made of, the last value of each key (None: absent).
#[derive(Default)]
struct Fields<'a> {
    symbol: Option<Scalar<'a>>,
    ts: Option<Scalar<'a>>,
    exchange: Option<Scalar<'a>>,
    price: Option<Scalar<'a>>,
    size: Option<Scalar<'a>>,
    side: Option<Scalar<'a>>,
    trade_id: Option<Scalar<'a>>,
}

fn fields(payload: &[u8]) -> Option<Fields<'_>> {
    let s = std::str::from_utf8(payload).ok()?;
    let mut c = Cursor {
        s,
        b: payload,
        i: 0,
    };
    let mut f = Fields::default();
    c.eat(b'{')?;
    if c.eat(b'}').is_none() {
        loop {
            c.eat(b'"')?;
            let key = c.string()?;
            c.eat(b':')?;
            let value = c.scalar()?;
            let mut ignored = None;
            let slot = match key {
                "symbol" => &mut f.symbol,
                "ts" => &mut f.ts,
                "exchange" => &mut f.exchange,
                "price" => &mut f.price,
                "size" => &mut f.size,
                "side" => &mut f.side,
                "trade_id" => &mut f.trade_id,
                _ => &mut ignored,
            };
            *slot = Some(value);
            if c.eat(b',').is_none() {
                c.eat(b'}')?;
                break;
            }
        }
    }
    c.ws();
    (c.i == payload.len()).then_some(f)
}

/// A non-negative integer without sign, fraction or exponent, that fits a u64.
fn plain_u64(n: &str) -> Option<u64> {
    if n.bytes().all(|b| b.is_ascii_digit()) {
        n.parse().ok()
    } else {
        None
    }
}

fn amount(name: &str, v: Option<Scalar<'_>>) -> Option<f64> {
    let x = match v? {
        Scalar::Num(n) => n.parse::<f64>().ok()?,
        Scalar::Str(s) => check::parse_decimal(s)?,
        Scalar::Bool | Scalar::Null => return None,
    };
    check::amount(name, Some(x), &"").ok()
}

fn text(v: Option<Scalar<'_>>) -> Option<&str> {
    match v? {
        Scalar::Str(s) => Some(s),
        _ => None,
    }
}

/// The tick in `payload` if it is a flat, valid tick the scanner is sure of;
/// None means "ask the reference decoder", never "reject".
pub fn decode_fast(payload: &[u8], pos: Position, limits: ValidationLimits) -> Option<Tick> {
    decode_fast_ref(payload, pos, limits).map(|t| t.to_tick())
}

/// [`decode_fast`], the tick borrowed from `payload`.
pub fn decode_fast_ref(
    payload: &[u8],
    pos: Position,
    limits: ValidationLimits,
) -> Option<TickRef<'_>> {
    let f = fields(payload)?;
    let symbol = text(f.symbol)?;
    check::symbol(symbol).ok()?;
    let ts_ms = match f.ts? {
        Scalar::Num(n) => plain_u64(n)?,
        _ => return None,
    };
    let exchange = text(f.exchange)?;
    check::exchange(exchange).ok()?;
    let price = amount("price", f.price)?;
    let size = amount("size", f.size)?;
    let side = match text(f.side)? {
        s if s.eq_ignore_ascii_case("buy") => Side::Buy,
        s if s.eq_ignore_ascii_case("sell") => Side::Sell,
        _ => return None,
    };
    let trade_id = match f.trade_id {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(TradeIdRef::Text(s)),
        Some(Scalar::Num(n)) => Some(TradeIdRef::Number(plain_u64(n)?)),
        Some(Scalar::Bool) => return None,
    };
    check::time(ts_ms, limits).ok()?;
    Some(TickRef {
        symbol,
        exchange,
        ts_ms,
        price: F64(price),
        size: F64(size),
        side,
        trade_id,
        pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Rng;
    use crate::tick::decode_reference;

    const LIMITS: ValidationLimits = ValidationLimits {
        now_ms: 1_800_000_000_000,
        max_future_ms: 60_000,
    };
    const POS: Position = Position {
        partition: 2,
        offset: 9,
    };

    /// The scanner never accepts what the reference rejects, and what it
    /// accepts is the reference's tick, bit for bit.
    fn agrees(payload: &[u8]) -> bool {
        let fast = decode_fast(payload, POS, LIMITS);
        if let Some(t) = &fast {
            let reference = decode_reference(payload, POS, LIMITS);
            assert_eq!(
                reference.as_ref().ok(),
                Some(t),
                "scanner accepted {:?}; reference: {reference:?}",
                String::from_utf8_lossy(payload)
            );
            assert_eq!(t.price.0.to_bits(), reference.unwrap().price.0.to_bits());
            // The borrowed form the source folds into bars says the same.
            assert_eq!(&t.view().to_tick(), t);
        }
        fast.is_some()
    }

    const VALID: [&str; 8] = [
        r#"{"symbol":"BTC-USD","exchange":"coinbase","ts":1700000000000,"price":64123.5,"size":0.25,"side":"buy"}"#,
        r#"{"symbol": "S0024-USD", "ts": 1700000000001, "price": 37396.769, "size": 0.108693, "side": "sell", "exchange": "sim"}"#,
        r#" { "symbol" : "ETH-EUR" , "exchange":"kraken","ts":1700000000000,"price":"3101.25","size":"1e-3","side":"SELL","trade_id":"abc-1" } "#,
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000000000,"price":1E+2,"size":2.5e-1,"side":"Buy","trade_id":42,"extra":[1,2]}"#,
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000000000,"price":100,"size":1,"side":"buy","trade_id":null,"note":"é ✓","flag":true,"n":-0.5,"z":null}"#,
        r#"{"symbol":"NOPE","symbol":"BTC-USD","exchange":"x","ts":1700000000000,"price":100,"size":1,"side":"buy"}"#,
        "{\"symbol\":\"BTC-USD\",\r\n\t\"exchange\":\"x\",\"ts\":1700000000000,\"price\":0.1,\"size\":0.30000000000000004,\"side\":\"buy\"}\n",
        r#"{"symbol":"SOL-USDT","exchange":"binance","ts":1700000000000,"price":123456789012345678901234567890,"size":1.7976931348623157e308,"side":"sell","trade_id":18446744073709551615}"#,
    ];

    #[test]
    fn accepts_plain_ticks_exactly_as_the_reference() {
        // Index 3 has a nested value (an unknown key's array): the scanner
        // leaves it to the reference decoder, which accepts it.
        for (k, p) in VALID.iter().enumerate() {
            assert_eq!(agrees(p.as_bytes()), k != 3, "{p}");
            assert!(decode_reference(p.as_bytes(), POS, LIMITS).is_ok(), "{p}");
        }
    }

    #[test]
    fn numbers_parse_to_the_same_bits_as_serde_json() {
        let mut rng = Rng::new(11);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut n = String::new();
            if rng.uniform() < 0.05 {
                n.push('-');
            }
            let digits = 1 + (rng.next_u64() % 25) as usize;
            for d in 0..digits {
                let c = (b'0' + (rng.next_u64() % 10) as u8) as char;
                n.push(if d == 0 && rng.uniform() < 0.8 && c == '0' {
                    '1'
                } else {
                    c
                });
            }
            if rng.uniform() < 0.6 {
                let at = 1 + (rng.next_u64() as usize % n.len());
                n.insert(at.min(n.len()), '.');
            }
            if rng.uniform() < 0.3 {
                n.push_str(["e", "E", "e+", "e-", "E-"][(rng.next_u64() % 5) as usize]);
                n.push_str(&(rng.next_u64() % 400).to_string());
            }
            for field in ["price", "size"] {
                let p = format!(
                    r#"{{"symbol":"BTC-USD","exchange":"x","ts":1700000000000,"price":1,"size":1,"side":"buy","{field}":{n}}}"#
                );
                accepted += usize::from(agrees(p.as_bytes()));
                let quoted = p.replace(&format!(":{n}}}"), &format!(":\"{n}\"}}"));
                accepted += usize::from(agrees(quoted.as_bytes()));
            }
        }
        assert!(accepted > 20_000, "the fast path took only {accepted}");
    }

    /// Numbers without an exponent are taken as finite below 300
    /// characters without being parsed: long ones, at and beyond f64's
    /// range, in a known and an unknown field, agree with the reference.
    #[test]
    fn long_numbers_agree() {
        for digits in [18, 20, 290, 298, 299, 300, 308, 309, 310, 400] {
            let n = "9".repeat(digits);
            for (key, value) in [("price", n.clone()), ("other", n.clone())] {
                for v in [value.clone(), format!("{value}.25"), format!("0.{value}")] {
                    let p = format!(
                        r#"{{"symbol":"BTC-USD","exchange":"x","ts":1700000000000,"price":1.5,"size":2,"side":"buy","{key}":{v}}}"#
                    );
                    let fast = agrees(p.as_bytes());
                    let reference = decode_reference(p.as_bytes(), POS, LIMITS).is_ok();
                    assert_eq!(fast, reference, "{digits} digits as {key}: {v:.40}");
                }
            }
        }
    }

    #[test]
    fn mutated_payloads_never_disagree() {
        let noise = b"\"\\{}[],:-+.eE0159 \tnulltruefalse\x00\xff\xc3";
        let mut rng = Rng::new(5);
        for p in VALID {
            for _ in 0..25_000 {
                let mut b = p.as_bytes().to_vec();
                for _ in 0..1 + rng.next_u64() % 3 {
                    let at = (rng.next_u64() as usize) % (b.len() + 1);
                    let c = noise[(rng.next_u64() as usize) % noise.len()];
                    match rng.next_u64() % 3 {
                        0 if at < b.len() => b[at] = c,
                        1 if at < b.len() => {
                            b.remove(at);
                        }
                        _ => b.insert(at, c),
                    }
                }
                agrees(&b);
            }
        }
    }
}
