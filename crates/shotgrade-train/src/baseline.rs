//! A trivial baseline for the background class: a linear (softmax) classifier over the border
//! band's statistics alone ([`shotgrade_image::backdrop_statistics`]), fitted on the `train`
//! part of the real photos.
//!
//! Why: a model that needs a network and a thousand composites must beat what the border
//! pixels alone tell. `shotgrade eval real` reports the model beside this baseline, per class
//! and per source; where the two are equal, the labelled part cannot rank models.

/// A fitted softmax classifier over standardised features.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBaseline {
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// `classes × (features + 1)`: weights then bias, per class.
    weights: Vec<Vec<f32>>,
}

/// How the baseline is fitted: full-batch gradient descent on the mean cross-entropy plus an
/// L2 penalty on the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSettings {
    pub iterations: usize,
    pub learning_rate: f32,
    pub l2: f32,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        BaselineSettings {
            iterations: 2000,
            learning_rate: 0.5,
            l2: 1e-3,
        }
    }
}

fn softmax(logits: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in logits.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in logits.iter_mut() {
        *v /= sum;
    }
}

impl LinearBaseline {
    /// Fits `classes` classes to `examples` (features, class index). Classes with no example
    /// are never predicted. `None` when there are no examples.
    pub fn fit(
        examples: &[(Vec<f32>, usize)],
        classes: usize,
        settings: &BaselineSettings,
    ) -> Option<Self> {
        Self::fit_weighted(examples, &vec![1.0; examples.len()], classes, settings)
    }

    /// [`Self::fit`] with a weight per example (in the standardisation and the loss): a
    /// weighted mean cross-entropy. `None` also when the weights do not match the examples, sum
    /// to nothing, or any is negative or not finite (a negative weight would reward mistakes).
    pub fn fit_weighted(
        examples: &[(Vec<f32>, usize)],
        example_weights: &[f32],
        classes: usize,
        settings: &BaselineSettings,
    ) -> Option<Self> {
        let features = examples.first()?.0.len();
        let total: f32 = example_weights.iter().sum();
        if example_weights.len() != examples.len()
            || example_weights
                .iter()
                .any(|w| !(w.is_finite() && *w >= 0.0))
            || total <= 0.0
        {
            return None;
        }
        // Each example's share of the mean.
        let share: Vec<f32> = example_weights.iter().map(|w| w / total).collect();
        let mut mean = vec![0.0f32; features];
        for ((x, _), q) in examples.iter().zip(&share) {
            for (m, v) in mean.iter_mut().zip(x) {
                *m += v * q;
            }
        }
        let mut scale = vec![0.0f32; features];
        for ((x, _), q) in examples.iter().zip(&share) {
            for ((s, v), m) in scale.iter_mut().zip(x).zip(&mean) {
                *s += (v - m) * (v - m) * q;
            }
        }
        for s in &mut scale {
            *s = if *s > 1e-12 { 1.0 / s.sqrt() } else { 0.0 };
        }
        let mut model = LinearBaseline {
            mean,
            scale,
            weights: vec![vec![0.0; features + 1]; classes],
        };
        let standardised: Vec<Vec<f32>> =
            examples.iter().map(|(x, _)| model.standardise(x)).collect();
        let present: Vec<bool> = (0..classes)
            .map(|c| examples.iter().any(|(_, y)| *y == c))
            .collect();
        let mut probabilities = vec![0.0f32; classes];
        for _ in 0..settings.iterations {
            let mut grad = vec![vec![0.0f32; features + 1]; classes];
            for ((x, (_, y)), q) in standardised.iter().zip(examples).zip(&share) {
                model.logits_into(x, &mut probabilities);
                softmax(&mut probabilities);
                for (c, g) in grad.iter_mut().enumerate() {
                    let err = (probabilities[c] - f32::from(u8::from(c == *y))) * q;
                    for (gi, xi) in g.iter_mut().zip(x) {
                        *gi += err * xi;
                    }
                    g[features] += err;
                }
            }
            for (w, g) in model.weights.iter_mut().zip(&grad) {
                for i in 0..features {
                    w[i] -= settings.learning_rate * (g[i] + settings.l2 * w[i]);
                }
                w[features] -= settings.learning_rate * g[features];
            }
        }
        // A class absent from training is never predicted.
        for (w, &seen) in model.weights.iter_mut().zip(&present) {
            if !seen {
                w.iter_mut().for_each(|v| *v = 0.0);
                w[features] = f32::NEG_INFINITY;
            }
        }
        Some(model)
    }

    fn standardise(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) * s)
            .collect()
    }

    fn logits_into(&self, standardised: &[f32], out: &mut [f32]) {
        for (o, w) in out.iter_mut().zip(&self.weights) {
            let features = w.len() - 1;
            *o = w[features]
                + w[..features]
                    .iter()
                    .zip(standardised)
                    .map(|(a, b)| a * b)
                    .sum::<f32>();
        }
    }

    /// The classifier as one linear layer on the raw features: `(weights, bias)`, weights
    /// `classes × features`, with the standardisation folded in (`w·((x − m)·s) + b` =
    /// `(w·s)·x + (b − Σ w·m·s)`). A class never seen in training gets a bias of −10⁴ instead
    /// of −∞, so that the layer's output stays finite.
    pub fn folded(&self) -> (Vec<Vec<f32>>, Vec<f32>) {
        let mut weights = Vec::with_capacity(self.weights.len());
        let mut bias = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            let features = w.len() - 1;
            let row: Vec<f32> = (0..features).map(|i| w[i] * self.scale[i]).collect();
            let shift: f32 = (0..features)
                .map(|i| w[i] * self.mean[i] * self.scale[i])
                .sum();
            let b = w[features] - shift;
            bias.push(if b.is_finite() { b } else { -1e4 });
            weights.push(row);
        }
        (weights, bias)
    }

    /// The most probable class of `features`.
    pub fn predict(&self, features: &[f32]) -> usize {
        let mut logits = vec![0.0f32; self.weights.len()];
        self.logits_into(&self.standardise(features), &mut logits);
        logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learnt_and_an_absent_class_is_never_predicted() {
        // Three classes along two features, on very different scales; class 3 has no example.
        let mut examples = Vec::new();
        for i in 0..30 {
            let jitter = (i % 7) as f32 * 0.05;
            examples.push((vec![0.1 + jitter, 1000.0], 0));
            examples.push((vec![2.0 + jitter, 1000.0], 1));
            examples.push((vec![1.0 + jitter, 5000.0], 2));
        }
        let model = LinearBaseline::fit(&examples, 4, &BaselineSettings::default()).expect("fit");
        let right = examples
            .iter()
            .filter(|(x, y)| model.predict(x) == *y)
            .count();
        assert_eq!(right, examples.len());
        assert_eq!(model.predict(&[2.1, 1000.0]), 1);
        for x in [[-50.0, 0.0], [50.0, 9000.0], [1.0, 1e6]] {
            assert_ne!(model.predict(&x), 3, "{x:?}");
        }
        assert!(LinearBaseline::fit(&[], 2, &BaselineSettings::default()).is_none());

        // A weight of 2 is the example given twice.
        let mut twice = examples.clone();
        twice.push(examples[0].clone());
        let mut weights = vec![1.0; examples.len()];
        weights[0] = 2.0;
        let settings = BaselineSettings {
            iterations: 50,
            ..BaselineSettings::default()
        };
        let a = LinearBaseline::fit(&twice, 4, &settings).expect("fit");
        let b = LinearBaseline::fit_weighted(&examples, &weights, 4, &settings).expect("fit");
        for (u, v) in a
            .folded()
            .0
            .iter()
            .flatten()
            .zip(b.folded().0.iter().flatten())
        {
            assert!((u - v).abs() < 1e-4 * u.abs().max(1.0), "{u} vs {v}");
        }
        assert!(LinearBaseline::fit_weighted(&examples, &[1.0], 4, &settings).is_none());
        // A negative or non-finite weight is refused, even when the total stays positive.
        for bad in [-0.5, f32::NAN, f32::INFINITY] {
            let mut w = vec![1.0; examples.len()];
            w[1] = bad;
            assert!(LinearBaseline::fit_weighted(&examples, &w, 4, &settings).is_none());
        }

        // The folded layer gives the same logits' argmax on the raw features.
        let (weights, bias) = model.folded();
        assert_eq!(weights.len(), 4);
        assert!(bias.iter().all(|b| b.is_finite()));
        for (x, _) in examples.iter().chain(&[(vec![1.7, 2500.0], 0)]) {
            let logits: Vec<f32> = weights
                .iter()
                .zip(&bias)
                .map(|(w, b)| b + w.iter().zip(x).map(|(a, v)| a * v).sum::<f32>())
                .collect();
            let best = (0..4)
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap_or(0);
            assert_eq!(best, model.predict(x), "{x:?}");
        }
    }
}
