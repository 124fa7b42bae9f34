//! The fitted form every batch model is deployed as: a linear score of
//! standardised, clipped feature columns, read through a link. ElasticNet,
//! PLS and a linear-kernel ε-SVR are `Identity` (the score is the predicted
//! log return); logistic regression is `Direction` (the score is the
//! log-odds of an up move; the point forecast is (2p − 1) times the mean
//! absolute return of the training window, as the online logistic model
//! does). [`BatchModel`] evaluates one behind the online models' interface,
//! so the predictor scores it like any other model; it never learns online.

use serde::{Deserialize, Serialize};

use crate::features::{Features, FEATURES, FEATURE_COUNT};
use crate::models::{Forecast, OnlineModel};
use crate::num::F64;

use super::ModelVersion;

/// Standardised inputs are clipped to ±this many training deviations, in
/// training and in serving alike.
pub const MAX_Z: f64 = 5.0;

/// How a linear score becomes a forecast.
///
/// In JSON (the registry's `fitted` column) it is internally tagged,
/// `{"link":"direction","mean_abs":…}`; in binary formats it is externally
/// tagged, because timely moves deployments between processes with bincode,
/// which cannot read internally tagged enums (it has no self-describing
/// `deserialize_any`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// The score is the predicted log return.
    Identity,
    /// The score is the log-odds that the return is positive.
    Direction {
        /// Mean absolute return of the training window.
        mean_abs: F64,
    },
}

/// [`Link`] as JSON writes it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "link")]
enum TaggedLink {
    Identity,
    Direction { mean_abs: F64 },
}

/// [`Link`] as binary formats write it.
#[derive(Serialize, Deserialize)]
enum PlainLink {
    Identity,
    Direction { mean_abs: F64 },
}

impl Serialize for Link {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self, s.is_human_readable()) {
            (Link::Identity, true) => TaggedLink::Identity.serialize(s),
            (Link::Identity, false) => PlainLink::Identity.serialize(s),
            (&Link::Direction { mean_abs }, true) => {
                TaggedLink::Direction { mean_abs }.serialize(s)
            }
            (&Link::Direction { mean_abs }, false) => {
                PlainLink::Direction { mean_abs }.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(if d.is_human_readable() {
            match TaggedLink::deserialize(d)? {
                TaggedLink::Identity => Link::Identity,
                TaggedLink::Direction { mean_abs } => Link::Direction { mean_abs },
            }
        } else {
            match PlainLink::deserialize(d)? {
                PlainLink::Identity => Link::Identity,
                PlainLink::Direction { mean_abs } => Link::Direction { mean_abs },
            }
        })
    }
}

/// A linear model over named feature columns, as plain data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinearForecast {
    /// Feature columns read ([`FEATURES`] names), in weight order.
    pub columns: Vec<String>,
    /// Training-window mean of each column.
    pub mean: Vec<F64>,
    /// Training-window standard deviation of each column (> 0).
    pub scale: Vec<F64>,
    /// Weight of each standardised column.
    pub weights: Vec<F64>,
    /// Score at the training mean.
    pub intercept: F64,
    /// How the score becomes a forecast.
    pub link: Link,
}

impl LinearForecast {
    /// Checks the model can be evaluated: known columns, matching lengths,
    /// finite numbers, positive scales. A model failing this is never deployed.
    pub fn check(&self) -> Result<(), String> {
        let n = self.columns.len();
        if n == 0 {
            return Err("no input columns".into());
        }
        if self.mean.len() != n || self.scale.len() != n || self.weights.len() != n {
            return Err(format!(
                "{n} columns but {} means, {} scales, {} weights",
                self.mean.len(),
                self.scale.len(),
                self.weights.len()
            ));
        }
        if let Some(c) = self.columns.iter().find(|c| column_index(c).is_none()) {
            return Err(format!("unknown feature column `{c}`"));
        }
        let finite = |v: &[F64]| v.iter().all(|x| x.0.is_finite());
        if !finite(&self.mean) || !finite(&self.weights) || !self.intercept.0.is_finite() {
            return Err("non-finite parameter".into());
        }
        if self.scale.iter().any(|s| !(s.0.is_finite() && s.0 > 0.0)) {
            return Err("a column scale is not positive and finite".into());
        }
        if let Link::Direction { mean_abs } = self.link {
            if !(mean_abs.0.is_finite() && mean_abs.0 >= 0.0) {
                return Err("mean absolute return is not finite".into());
            }
        }
        Ok(())
    }

    /// The linear score of one row of feature values (in [`FEATURES`]
    /// order), reading the columns at `index`.
    pub fn score(&self, index: &[usize], values: &[f64; FEATURE_COUNT]) -> f64 {
        let mut s = self.intercept.0;
        for (k, &i) in index.iter().enumerate() {
            s += self.weights[k].0 * standardise(values[i], self.mean[k].0, self.scale[k].0);
        }
        s
    }

    /// The forecast for a score.
    pub fn forecast(&self, score: f64) -> Forecast {
        match self.link {
            Link::Identity => Forecast::point(score),
            Link::Direction { mean_abs } => {
                let p = sigmoid(score);
                Forecast {
                    ret: (2.0 * p - 1.0) * mean_abs.0,
                    direction_prob: Some(p),
                }
            }
        }
    }

    /// Where each column sits in [`FEATURES`] (None: an unknown column).
    pub fn column_index(&self) -> Option<Vec<usize>> {
        self.columns.iter().map(|c| column_index(c)).collect()
    }
}

/// A standardised, clipped input: what training and serving both feed the
/// weights. A non-finite value counts as the mean.
pub fn standardise(x: f64, mean: f64, scale: f64) -> f64 {
    let z = (x - mean) / scale;
    if z.is_finite() {
        z.clamp(-MAX_Z, MAX_Z)
    } else {
        0.0
    }
}

/// The logistic function, safe for any input.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z.clamp(-40.0, 40.0)).exp())
}

fn column_index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|d| d.name == name)
}

/// A deployed batch model version behind the online-model interface.
#[derive(Clone, Debug)]
pub struct BatchModel {
    name: &'static str,
    version: ModelVersion,
    index: Vec<usize>,
    model: LinearForecast,
}

impl BatchModel {
    /// Wraps a checked model under the predictor's model name `name`.
    pub fn new(
        name: &'static str,
        version: ModelVersion,
        model: LinearForecast,
    ) -> Result<Self, String> {
        model.check()?;
        let index = model
            .column_index()
            .ok_or_else(|| "unknown feature column".to_string())?;
        Ok(BatchModel {
            name,
            version,
            index,
            model,
        })
    }

    /// Which version this is.
    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    /// Its parameters.
    pub fn parameters(&self) -> &LinearForecast {
        &self.model
    }
}

impl OnlineModel for BatchModel {
    fn name(&self) -> &'static str {
        self.name
    }

    fn predict(&self, x: &Features) -> Forecast {
        self.model
            .forecast(self.model.score(&self.index, &x.values()))
    }

    fn learn(&mut self, _x: &Features, _y: f64) -> bool {
        false // batch models change only by redeployment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(link: Link) -> LinearForecast {
        LinearForecast {
            columns: vec!["ret1".into(), "ofi".into()],
            mean: vec![F64(0.0), F64(0.1)],
            scale: vec![F64(0.001), F64(0.5)],
            weights: vec![F64(2e-4), F64(-1e-4)],
            intercept: F64(1e-5),
            link,
        }
    }

    #[test]
    fn links_keep_their_json_shape_and_cross_processes_in_bincode() {
        for link in [
            Link::Identity,
            Link::Direction {
                mean_abs: F64(1e-3),
            },
        ] {
            let m = model(link);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<LinearForecast>(&json).unwrap(), m);
            // What timely does with a deployment bound for another process.
            let bytes = bincode::serialize(&m).unwrap();
            assert_eq!(bincode::deserialize::<LinearForecast>(&bytes).unwrap(), m);
        }
        let json = serde_json::to_value(model(Link::Direction { mean_abs: F64(0.5) })).unwrap();
        assert_eq!(
            json["link"],
            serde_json::json!({"link": "direction", "mean_abs": 0.5})
        );
        assert_eq!(
            serde_json::to_value(model(Link::Identity)).unwrap()["link"],
            serde_json::json!({"link": "identity"})
        );
    }

    #[test]
    fn score_is_the_linear_form_of_standardised_clipped_inputs() {
        let m = model(Link::Identity);
        m.check().unwrap();
        let index = m.column_index().unwrap();
        let mut values = [0.0; FEATURE_COUNT];
        values[index[0]] = 0.002; // z = 2
        values[index[1]] = 10.0; // z = 19.8, clipped to 5
        let s = m.score(&index, &values);
        assert!(
            (s - (1e-5 + 2e-4 * 2.0 - 1e-4 * MAX_Z)).abs() < 1e-15,
            "{s}"
        );
        values[index[0]] = f64::NAN;
        let s = m.score(&index, &values);
        assert!((s - (1e-5 - 1e-4 * MAX_Z)).abs() < 1e-15, "{s}");
    }

    #[test]
    fn direction_link_gives_a_probability_and_a_scaled_point_forecast() {
        let m = model(Link::Direction {
            mean_abs: F64(0.002),
        });
        let f = m.forecast(0.0);
        assert_eq!(f.direction_prob, Some(0.5));
        assert_eq!(f.ret, 0.0);
        let f = m.forecast(2.0);
        let p = 1.0 / (1.0 + (-2f64).exp());
        assert!((f.ret - (2.0 * p - 1.0) * 0.002).abs() < 1e-15);
    }

    #[test]
    fn bad_models_fail_the_check() {
        let mut m = model(Link::Identity);
        m.weights[0] = F64(f64::NAN);
        assert!(m.check().is_err());
        let mut m = model(Link::Identity);
        m.scale[1] = F64(0.0);
        assert!(m.check().is_err());
        let mut m = model(Link::Identity);
        m.columns[0] = "nope".into();
        assert!(m.check().is_err());
        let mut m = model(Link::Identity);
        m.mean.pop();
        assert!(m.check().is_err());
    }
}
