//! Exchange symbol spellings to cryptoflow's canonical `BASE-QUOTE`.
//!
//! Binance writes pairs without a separator (`BTCUSDT`), so the split is
//! found by the longest known quote asset at the end of the name
//! ([`QUOTE_ASSETS`]); `BTC-USDT`, `BTC/USDT` and lowercase spellings are
//! accepted as well. Stablecoins stay distinct from the currency they track
//! (`BTCUSDT` → `BTC-USDT`, never `BTC-USD`). Pure functions, no I/O.

use dataflows::tick::is_canonical_symbol;

/// Quote assets recognised at the end of a Binance symbol, longest first
/// where one is a suffix of another (`FDUSD` before `USD`).
pub const QUOTE_ASSETS: &[&str] = &[
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "USDS", "DAI", "BTC", "ETH", "BNB", "EUR",
    "TRY", "BRL", "GBP", "JPY", "AUD", "ARS", "MXN", "PLN", "RON", "UAH", "ZAR", "IDR", "COP",
    "CZK", "XRP", "SOL", "DOGE", "TRX", "USD",
];

/// `raw` as a canonical `BASE-QUOTE` symbol, or None when it cannot be split.
pub fn canonical(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase().replace('/', "-");
    if is_canonical_symbol(&upper) {
        return Some(upper);
    }
    if !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    QUOTE_ASSETS
        .iter()
        .filter(|q| upper.len() > q.len() && upper.ends_with(*q))
        .max_by_key(|q| q.len())
        .map(|q| format!("{}-{q}", &upper[..upper.len() - q.len()]))
        .filter(|s| is_canonical_symbol(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_and_other_spellings() {
        for (raw, want) in [
            ("BTCUSDT", "BTC-USDT"),
            ("ethbtc", "ETH-BTC"),
            ("BTCFDUSD", "BTC-FDUSD"),
            ("SOLUSDC", "SOL-USDC"),
            ("BNBEUR", "BNB-EUR"),
            ("1INCHUSDT", "1INCH-USDT"),
            ("BTCTRY", "BTC-TRY"),
            ("BTC-USD", "BTC-USD"),
            ("eth/usdt", "ETH-USDT"),
        ] {
            assert_eq!(canonical(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in ["USDT", "BTCXYZ", "BTC_USDT", "", "BTC-"] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
    }
}
