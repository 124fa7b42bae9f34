//! Exchange symbol spellings to cryptoflow's canonical `BASE-QUOTE`.
//!
//! | venue     | native               | canonical  |
//! |-----------|----------------------|------------|
//! | Binance   | `BTCUSDT`            | `BTC-USDT` |
//! | Coinbase  | `BTC-USD`            | `BTC-USD`  |
//! | Kraken v2 | `BTC/USD`, `XBT/USD` | `BTC-USD` (`XBT`→`BTC`, `XDG`→`DOGE`) |
//! | CoinGecko | `bitcoin` + `usd`    | `BTC-USD` through [`COINGECKO_IDS`] |
//!
//! Binance writes pairs without a separator (`BTCUSDT`), so the split is
//! found by the longest known quote asset at the end of the name
//! ([`QUOTE_ASSETS`]); `BTC-USDT`, `BTC/USDT` and lowercase spellings are
//! accepted as well. Stablecoins stay distinct from the currency they track
//! (`BTCUSDT` → `BTC-USDT`, never `BTC-USD`). A name that matches none is
//! refused, not guessed. Pure functions, no I/O.

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

/// `BTC-USDT` (or `BTCUSDT`) → `btcusdt`, Binance's stream-name form.
pub fn binance_stream(symbol: &str) -> String {
    symbol.replace(['-', '/'], "").to_ascii_lowercase()
}

fn kraken_asset(a: &str) -> &str {
    match a {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        other => other,
    }
}

/// Kraken's `BTC/USD` or legacy `XBT/USD` → `BTC-USD`.
pub fn kraken_canonical(native: &str) -> Option<String> {
    let (base, quote) = native.split_once('/')?;
    let s = format!(
        "{}-{}",
        kraken_asset(&base.to_ascii_uppercase()),
        kraken_asset(&quote.to_ascii_uppercase())
    );
    is_canonical_symbol(&s).then_some(s)
}

/// `BTC-USD` → `BTC/USD`, the pair form Kraken v2 subscribes with.
pub fn kraken_pair(symbol: &str) -> String {
    symbol.replace('-', "/").to_ascii_uppercase()
}

/// CoinGecko coin ids and the ticker each stands for.
pub const COINGECKO_IDS: [(&str, &str); 14] = [
    ("bitcoin", "BTC"),
    ("ethereum", "ETH"),
    ("solana", "SOL"),
    ("ripple", "XRP"),
    ("dogecoin", "DOGE"),
    ("cardano", "ADA"),
    ("binancecoin", "BNB"),
    ("tron", "TRX"),
    ("avalanche-2", "AVAX"),
    ("polkadot", "DOT"),
    ("chainlink", "LINK"),
    ("litecoin", "LTC"),
    ("tether", "USDT"),
    ("usd-coin", "USDC"),
];

/// CoinGecko `bitcoin` + `usd` → `BTC-USD`, for ids in [`COINGECKO_IDS`].
pub fn coingecko_canonical(id: &str, vs: &str) -> Option<String> {
    let (_, ticker) = COINGECKO_IDS.iter().find(|(i, _)| *i == id)?;
    let s = format!("{ticker}-{}", vs.to_ascii_uppercase());
    is_canonical_symbol(&s).then_some(s)
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

    #[test]
    fn kraken_and_coingecko() {
        assert_eq!(binance_stream("BTC-USDT"), "btcusdt");
        assert_eq!(kraken_canonical("XBT/USD").unwrap(), "BTC-USD");
        assert_eq!(kraken_canonical("BTC/USD").unwrap(), "BTC-USD");
        assert_eq!(kraken_canonical("XDG/EUR").unwrap(), "DOGE-EUR");
        assert_eq!(kraken_canonical("BTCUSD"), None);
        assert_eq!(kraken_canonical("BTC/"), None);
        assert_eq!(kraken_pair("ETH-USD"), "ETH/USD");
        assert_eq!(coingecko_canonical("bitcoin", "usd").unwrap(), "BTC-USD");
        assert_eq!(coingecko_canonical("nocoin", "usd"), None);
    }
}
