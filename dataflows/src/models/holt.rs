//! Holt's linear trend on the log price, updated every bar: level ℓ and
//! trend b per bar; the forecast for h bars ahead is ℓ + h·b, so the
//! predicted return is ℓ + h·b − (current log price). It learns from the
//! price path itself (`observe`), which is known at bar t: no look-ahead.

use super::{Forecast, OnlineModel};
use crate::features::Features;

/// Holt's double exponential smoothing.
#[derive(Clone, Debug)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    h: f64,
    /// Log price relative to the first bar seen.
    log_price: f64,
    level: Option<f64>,
    trend: f64,
}

impl Holt {
    /// A model with level smoothing `alpha`, trend smoothing `beta`, horizon `h` bars.
    pub fn new(alpha: f64, beta: f64, h: u32) -> Self {
        Holt {
            alpha: alpha.clamp(1e-3, 1.0),
            beta: beta.clamp(1e-4, 1.0),
            h: f64::from(h.max(1)),
            log_price: 0.0,
            level: None,
            trend: 0.0,
        }
    }
}

impl OnlineModel for Holt {
    fn name(&self) -> &'static str {
        "holt"
    }

    fn observe(&mut self, x: &Features) {
        let r = x.lags[0];
        if !r.is_finite() {
            return;
        }
        self.log_price += r;
        let y = self.log_price;
        match self.level {
            None => self.level = Some(y),
            Some(l) => {
                let level = self.alpha * y + (1.0 - self.alpha) * (l + self.trend);
                self.trend = self.beta * (level - l) + (1.0 - self.beta) * self.trend;
                self.level = Some(level);
            }
        }
        if !self.trend.is_finite() || !self.level.is_some_and(f64::is_finite) {
            *self = Holt::new(self.alpha, self.beta, self.h as u32);
        }
    }

    fn predict(&self, _x: &Features) -> Forecast {
        let Some(l) = self.level else {
            return Forecast::point(0.0);
        };
        Forecast::point(l + self.h * self.trend - self.log_price)
    }

    fn learn(&mut self, _x: &Features, _y: f64) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_steady_trend() {
        let mut m = Holt::new(0.5, 0.2, 5);
        let x = Features {
            lags: [0.001, 0.0, 0.0],
            ..Features::default()
        };
        for _ in 0..500 {
            m.observe(&x);
        }
        // Log price rises 0.001 per bar: five bars ahead is +0.005.
        assert!(
            (m.predict(&x).ret - 0.005).abs() < 1e-9,
            "{}",
            m.predict(&x).ret
        );
    }
}
