//! One canonical symbol form, `BASE-QUOTE` in upper case, for every venue.
//!
//! | venue     | native              | canonical  |
//! |-----------|---------------------|------------|
//! | Binance   | `BTCUSDT`           | `BTC-USDT` (USDT stays distinct from USD) |
//! | Coinbase  | `BTC-USD`           | `BTC-USD`  |
//! | Kraken v2 | `BTC/USD`, `XBT/USD`| `BTC-USD` (`XBT`→`BTC`, `XDG`→`DOGE`) |
//! | CoinGecko | `bitcoin` + `usd`   | `BTC-USD` through [`COINGECKO_IDS`] |
//!
//! Binance concatenates base and quote, so the split uses the longest known
//! quote asset that ends the symbol ([`BINANCE_QUOTES`]); a symbol ending in
//! none of them is refused rather than guessed.

/// Quote assets Binance lists, longest first within a shared suffix.
pub const BINANCE_QUOTES: [&str; 17] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "GBP",
    "TRY", "BRL", "JPY", "AUD", "USD",
];

/// CoinGecko coin ids and the ticker they map to.
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

/// `BTCUSDT` (any case) → `BTC-USDT`.
pub fn binance_to_canonical(native: &str) -> Option<String> {
    let upper = native.to_ascii_uppercase();
    if !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let quote = BINANCE_QUOTES
        .iter()
        .filter(|q| upper.len() > q.len() && upper.ends_with(*q))
        .max_by_key(|q| q.len())?;
    Some(format!("{}-{quote}", &upper[..upper.len() - quote.len()]))
}

/// `BTC-USDT` → `btcusdt` (the stream-name form), or a native symbol as is.
pub fn binance_native(symbol: &str) -> String {
    symbol.replace('-', "").to_ascii_lowercase()
}

fn kraken_asset(a: &str) -> &str {
    match a {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        other => other,
    }
}

/// `BTC/USD` or `XBT/USD` → `BTC-USD`.
pub fn kraken_to_canonical(native: &str) -> Option<String> {
    let (base, quote) = native.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(base) && ok(quote)).then(|| {
        format!(
            "{}-{}",
            kraken_asset(&base.to_ascii_uppercase()),
            kraken_asset(&quote.to_ascii_uppercase())
        )
    })
}

/// `BTC-USD` → `BTC/USD` (what Kraken v2 subscribes with); `BTC/USD` as is.
pub fn kraken_native(symbol: &str) -> String {
    symbol.replace('-', "/").to_ascii_uppercase()
}

/// `bitcoin` + `usd` → `BTC-USD`, for ids in [`COINGECKO_IDS`].
pub fn coingecko_to_canonical(id: &str, vs: &str) -> Option<String> {
    let (_, ticker) = COINGECKO_IDS.iter().find(|(i, _)| *i == id)?;
    Some(format!("{ticker}-{}", vs.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_venue_to_base_quote() {
        assert_eq!(binance_to_canonical("BTCUSDT").unwrap(), "BTC-USDT");
        assert_eq!(binance_to_canonical("bnbbtc").unwrap(), "BNB-BTC");
        assert_eq!(binance_to_canonical("ETHFDUSD").unwrap(), "ETH-FDUSD");
        assert_eq!(binance_to_canonical("BTCTUSD").unwrap(), "BTC-TUSD");
        assert_eq!(binance_to_canonical("USDT"), None);
        assert_eq!(binance_to_canonical("BTCXYZ"), None);
        assert_eq!(binance_native("BTC-USDT"), "btcusdt");
        assert_eq!(kraken_to_canonical("XBT/USD").unwrap(), "BTC-USD");
        assert_eq!(kraken_to_canonical("BTC/USD").unwrap(), "BTC-USD");
        assert_eq!(kraken_to_canonical("XDG/EUR").unwrap(), "DOGE-EUR");
        assert_eq!(kraken_to_canonical("BTCUSD"), None);
        assert_eq!(kraken_native("ETH-USD"), "ETH/USD");
        assert_eq!(coingecko_to_canonical("bitcoin", "usd").unwrap(), "BTC-USD");
        assert_eq!(coingecko_to_canonical("nocoin", "usd"), None);
    }
}
