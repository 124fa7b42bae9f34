//! The predictor's state as a snapshot stores it: [`SymbolSnapshot`], one
//! per symbol, plain data without names (see [`crate::snapshot`]).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{HorizonState, Pending, PredictConfig, Prediction, SymbolState};
use crate::calibrate::Calibrator;
use crate::deploy::{BatchModel, LinearForecast, ModelVersion};
use crate::features::FeatureState;
use crate::models::{Online, OnlineModel};
use crate::snapshot::StateError;

/// A [`SymbolState`] as a snapshot stores it ([`crate::snapshot`]): plain
/// data without names. The model and slot names come from the
/// [`PredictConfig`] it is restored under, and [`SymbolState::restore`]
/// refuses a state whose horizons, online models or batch slots differ
/// from that configuration's. The models' hyper-parameters travel inside
/// their state: a restored model keeps the ones it was created with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SymbolSnapshot {
    features: FeatureState,
    horizons: Vec<HorizonSnapshot>,
}

/// One horizon of a [`SymbolSnapshot`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct HorizonSnapshot {
    h: u32,
    models: Vec<Online>,
    /// Per batch slot, the deployed version and its parameters.
    batch: Vec<Option<(ModelVersion, LinearForecast)>>,
    calibrators: Vec<Calibrator>,
    pending: VecDeque<Pending>,
    current: Vec<Option<Prediction>>,
}

impl SymbolState {
    /// The current prediction of every slot that has one: the symbol's
    /// part of the `current` collection.
    pub fn current(&self) -> impl Iterator<Item = &Prediction> {
        self.horizons
            .iter()
            .flat_map(|hs| hs.current.iter().flatten())
    }

    /// The state as plain data (a copy; the state is unchanged).
    pub fn snapshot(&self) -> SymbolSnapshot {
        SymbolSnapshot {
            features: self.features.clone(),
            horizons: self
                .horizons
                .iter()
                .map(|hs| HorizonSnapshot {
                    h: hs.h,
                    models: hs.models.clone(),
                    batch: hs
                        .batch
                        .iter()
                        .map(|(_, b)| {
                            b.as_ref()
                                .map(|b| (b.version().clone(), b.parameters().clone()))
                        })
                        .collect(),
                    calibrators: hs.calibrators.clone(),
                    pending: hs.pending.clone(),
                    current: hs.current.clone(),
                })
                .collect(),
        }
    }

    /// The state `snapshot` describes, under `config`: it continues exactly
    /// as the state it was taken from would have. An error names what does
    /// not match the configuration.
    pub fn restore(config: &PredictConfig, snapshot: SymbolSnapshot) -> Result<Self, StateError> {
        let shape = StateError::Shape;
        let hs: Vec<u32> = snapshot.horizons.iter().map(|h| h.h).collect();
        if hs != config.horizons {
            return Err(shape(format!(
                "horizons {hs:?}, configured {:?}",
                config.horizons
            )));
        }
        let mut horizons = Vec::with_capacity(hs.len());
        for h in snapshot.horizons {
            let names: Vec<&'static str> = h.models.iter().map(|m| m.name()).collect();
            if names != config.models {
                return Err(shape(format!(
                    "online models {names:?}, configured {:?}",
                    config.models
                )));
            }
            if h.batch.len() != config.batch_models.len() {
                return Err(shape(format!(
                    "{} batch-model slots, configured {:?}",
                    h.batch.len(),
                    config.batch_models
                )));
            }
            let n = names.len() + h.batch.len();
            if h.calibrators.len() != n
                || h.current.len() != n
                || h.pending.iter().any(|p| p.preds.len() != n)
            {
                return Err(shape(format!("horizon {}: slots do not number {n}", h.h)));
            }
            let batch = config
                .batch_models
                .iter()
                .zip(h.batch)
                .map(|(&name, slot)| {
                    let model = slot
                        .map(|(version, model)| BatchModel::new(name, version, model))
                        .transpose()
                        .map_err(|e| shape(format!("batch slot `{name}`: {e}")))?;
                    Ok((name, model))
                })
                .collect::<Result<Vec<_>, StateError>>()?;
            horizons.push(HorizonState {
                h: h.h,
                models: h.models,
                batch,
                calibrators: h.calibrators,
                pending: h.pending,
                current: h.current,
            });
        }
        Ok(SymbolState {
            features: snapshot.features,
            horizons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::Bar;
    use crate::deploy::{Deployment, Link};
    use crate::num::F64;
    use crate::predict::{deploy, on_bar, Predicted};
    use proptest::prelude::*;

    fn deployment(version: u64, weight: f64) -> Deployment {
        Deployment {
            symbol: "A-B".into(),
            horizon_bars: 5,
            kind: "batch_test".into(),
            version: ModelVersion {
                id: format!("batch_test.A-B.h5.{version}"),
                version,
            },
            model: LinearForecast {
                columns: vec!["ret1".into(), "ofi".into()],
                mean: vec![F64(0.0), F64(0.1)],
                scale: vec![F64(0.001), F64(0.5)],
                weights: vec![F64(weight), F64(-1e-4)],
                intercept: F64(1e-5),
                link: Link::Identity,
            },
        }
    }

    /// Runs `bars` from `state` on, deploying batch versions at fixed bars;
    /// returns what it produced.
    fn run(state: &mut SymbolState, bars: &[Bar], from: usize) -> Predicted {
        let mut out = Predicted::default();
        for (i, bar) in bars.iter().enumerate().skip(from) {
            match i {
                150 => deploy(state, &deployment(1, 2e-4)).unwrap(),
                300 => deploy(state, &deployment(2, -3e-4)).unwrap(),
                _ => {}
            }
            on_bar(state, bar, &mut out);
        }
        out
    }

    fn snapshot_config() -> PredictConfig {
        PredictConfig {
            horizons: vec![1, 5],
            batch_models: vec!["batch_test"],
            ..PredictConfig::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Stopping at any bar, storing the state, reading it back and
        /// going on gives exactly what never stopping gives: the same
        /// predictions, scores and features bit for bit, and the same state
        /// bytes at the end (features, every model, calibration, pending
        /// predictions, batch slots; a gap reset on the way).
        #[test]
        fn restored_symbol_state_continues_as_if_never_stopped(
            seed in 0u64..10_000,
            cut in 0usize..420,
        ) {
            let config = snapshot_config();
            let mut bars = crate::sim::random_bars(seed, 420);
            bars[330].after_gap = true;
            let mut whole = SymbolState::new(&config);
            let all = run(&mut whole, &bars, 0);

            let mut first = SymbolState::new(&config);
            let mut before = run(&mut first, &bars[..cut], 0);
            let stored = crate::snapshot::round_trip(&first.snapshot());
            let mut restored = SymbolState::restore(&config, stored).unwrap();
            let after = run(&mut restored, &bars, cut);
            before.current.extend(after.current);
            before.scores.extend(after.scores);
            before.features.extend(after.features);
            prop_assert!(before == all, "outputs differ after a restore at bar {}", cut);
            prop_assert_eq!(
                crate::snapshot::encode(&restored.snapshot()),
                crate::snapshot::encode(&whole.snapshot())
            );
        }
    }

    #[test]
    fn a_state_from_another_configuration_is_refused() {
        let config = snapshot_config();
        let mut st = SymbolState::new(&config);
        run(&mut st, &crate::sim::random_bars(1, 200), 0);
        let snap = st.snapshot();
        let other = |c: PredictConfig| match SymbolState::restore(&c, snap.clone()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("restored under {c:?}"),
        };
        assert!(other(PredictConfig {
            horizons: vec![1, 15],
            ..snapshot_config()
        })
        .contains("horizons [1, 5]"));
        assert!(other(PredictConfig {
            models: config.params.select(&["rls"]).unwrap(),
            ..snapshot_config()
        })
        .contains("online models"));
        assert!(other(PredictConfig {
            batch_models: vec![],
            ..snapshot_config()
        })
        .contains("batch-model slots"));
        assert!(SymbolState::restore(&config, snap).is_ok());
    }
}
