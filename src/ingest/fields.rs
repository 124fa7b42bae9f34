//! Reading exchange frames field by field, exactly.
//!
//! A frame is split into its top-level fields with each value kept as raw JSON
//! text ([`RawValue`]), so numbers are never rounded through a float before
//! [`Decimal`] sees them. Every accessor fails with a [`Malformed`] naming the
//! field, which becomes the reject's reason and detail.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use dataflows::tick::{RejectReason, Side};

use crate::decimal::Decimal;

/// Why a frame, or one trade in it, could not be used: the reason the
/// dataflow's own validation gives a tick (the same codes as the rejects
/// table), or a message the connector does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// What tick validation says.
    Tick(RejectReason),
    /// A message type or channel the connector does not handle.
    UnknownMessage,
}

impl Reason {
    /// The stable snake_case code written to the rejects topic.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Tick(r) => r.code(),
            Reason::UnknownMessage => "unknown_message",
        }
    }
}

impl From<RejectReason> for Reason {
    fn from(r: RejectReason) -> Self {
        Reason::Tick(r)
    }
}

/// A reason compares equal to its code, so tests read as the topic does.
impl PartialEq<&str> for Reason {
    fn eq(&self, code: &&str) -> bool {
        self.code() == *code
    }
}

/// Why a frame could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The reason, with a stable code.
    pub reason: Reason,
    /// What exactly was wrong.
    pub detail: String,
}

impl Malformed {
    /// A malformed-frame verdict.
    pub fn new(reason: impl Into<Reason>, detail: impl Into<String>) -> Self {
        Malformed {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// The top-level fields of one JSON object, values as raw text.
pub struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'a> Fields<'a> {
    /// Splits a JSON object; anything else is `malformed_json`.
    pub fn parse(text: &'a str) -> Result<Self, Malformed> {
        serde_json::from_str(text).map(Fields).map_err(|e| {
            Malformed::new(
                RejectReason::MalformedJson,
                format!("not a JSON object: {e}"),
            )
        })
    }

    /// The raw value of a present, non-null field.
    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied().filter(|v| v.get() != "null")
    }

    fn require(&self, name: &str) -> Result<&'a RawValue, Malformed> {
        self.raw(name).ok_or_else(|| {
            Malformed::new(
                RejectReason::MissingField,
                format!("missing field `{name}`"),
            )
        })
    }

    fn bad(name: &str, raw: &RawValue, want: &str) -> Malformed {
        let text: String = raw.get().chars().take(40).collect();
        Malformed::new(
            RejectReason::BadField,
            format!("field `{name}` = {text}: {want}"),
        )
    }

    /// Is the field present (and not null)?
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// A string field.
    pub fn str(&self, name: &str) -> Result<String, Malformed> {
        let raw = self.require(name)?;
        serde_json::from_str(raw.get()).map_err(|_| Self::bad(name, raw, "expected a string"))
    }

    /// A string field if present.
    pub fn opt_str(&self, name: &str) -> Option<String> {
        self.raw(name)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// An unsigned integer, sent as a number or a digit string.
    pub fn u64(&self, name: &str) -> Result<u64, Malformed> {
        let raw = self.require(name)?;
        let text = raw.get();
        let digits = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        digits
            .parse()
            .map_err(|_| Self::bad(name, raw, "expected an unsigned integer"))
    }

    /// A boolean.
    pub fn bool(&self, name: &str) -> Result<bool, Malformed> {
        let raw = self.require(name)?;
        serde_json::from_str(raw.get()).map_err(|_| Self::bad(name, raw, "expected true/false"))
    }

    /// An exact decimal, sent as a JSON number or a decimal string.
    pub fn decimal(&self, name: &str) -> Result<Decimal, Malformed> {
        let raw = self.require(name)?;
        let text = raw.get();
        let inner = match text.strip_prefix('"') {
            Some(t) => t.strip_suffix('"').unwrap_or(t),
            None => text,
        };
        Decimal::parse(inner)
            .map_err(|why| Malformed::new(RejectReason::BadField, format!("field `{name}`: {why}")))
    }

    /// `"buy"` or `"sell"`.
    pub fn side(&self, name: &str) -> Result<Side, Malformed> {
        match self.str(name)?.as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            other => Err(Malformed::new(
                RejectReason::BadField,
                format!("field `{name}` = {other:?}: expected buy/sell"),
            )),
        }
    }

    /// A nested object.
    pub fn object(&self, name: &str) -> Result<Fields<'a>, Malformed> {
        let raw = self.require(name)?;
        Fields::parse(raw.get()).map_err(|_| Self::bad(name, raw, "expected an object"))
    }

    /// An array's elements, raw.
    pub fn array(&self, name: &str) -> Result<Vec<&'a RawValue>, Malformed> {
        let raw = self.require(name)?;
        serde_json::from_str(raw.get()).map_err(|_| Self::bad(name, raw, "expected an array"))
    }

    /// The field names (for routing on unknown shapes).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// An RFC 3339 instant (`2014-11-07T08:19:27.028459Z`) as epoch ms, truncated.
pub fn rfc3339_ms(fields: &Fields<'_>, name: &str) -> Result<u64, Malformed> {
    let text = fields.str(name)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(|| {
            Malformed::new(
                RejectReason::BadField,
                format!("field `{name}` = {text:?}: expected an RFC 3339 time"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_numbers_exact_and_names_bad_fields() {
        let text = r#"{"p":"0.00100000","price":63287.4,"big":1.32e12,"t":12345,"ts":"77","m":true,"x":null}"#;
        let f = Fields::parse(text).unwrap();
        assert_eq!(f.decimal("p").unwrap().to_string(), "0.001");
        assert_eq!(f.decimal("price").unwrap().to_string(), "63287.4");
        assert_eq!(f.decimal("big").unwrap().to_string(), "1320000000000");
        assert_eq!(f.u64("t").unwrap(), 12345);
        assert_eq!(f.u64("ts").unwrap(), 77);
        assert!(f.bool("m").unwrap());
        assert_eq!(f.str("x").unwrap_err().reason, "missing_field");
        assert_eq!(f.u64("p").unwrap_err().reason, "bad_field");
        assert_eq!(f.str("t").unwrap_err().reason, "bad_field");
        assert_eq!(Fields::parse("[1]").err().unwrap().reason, "malformed_json");
        assert_eq!(
            Fields::parse("{oops").err().unwrap().reason,
            "malformed_json"
        );
    }

    #[test]
    fn reads_rfc3339_to_ms() {
        let f =
            Fields::parse(r#"{"time":"2014-11-07T08:19:27.028459Z","bad":"yesterday"}"#).unwrap();
        assert_eq!(rfc3339_ms(&f, "time").unwrap(), 1_415_348_367_028);
        assert_eq!(rfc3339_ms(&f, "bad").unwrap_err().reason, "bad_field");
    }
}
