//! What every exchange frame target checks, shared by them (included with
//! `#[path]`; not a target itself): the venue's parser on arbitrary text
//! never panics, and each trade it reads, checked and encoded as the
//! connector does (`Trade::encode`), is either sent (and then decodes to
//! the same trade) or refused with the pipeline's reason.

use cryptoflow::ingest::{Frame, WsVenue};
use dataflows::tick::{decode, Position, ValidationLimits};

const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: 1_800_000_000_000,
    max_future_ms: 60_000,
};

/// Runs `venue`'s parser on `data` and checks what it reads.
pub fn check(venue: &impl WsVenue, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Frame::Trades(trades)) = venue.parse(text) else {
        return;
    };
    for t in trades.into_iter().flatten() {
        if let Ok(json) = t.encode(venue.exchange(), LIMITS) {
            let back = decode(&json, Position::default(), LIMITS).expect("sent ticks decode");
            assert_eq!(
                (back.symbol.as_str(), back.ts_ms, back.side),
                (t.symbol.as_str(), t.ts_ms, t.side)
            );
        }
    }
}
