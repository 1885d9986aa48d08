//! An exponential moving average of a network's weights (Polyak averaging).
//!
//! Why: with small batches and a high learning rate, consecutive checkpoints of the background
//! network differ by a point of validation accuracy or more, so which one is kept is partly
//! luck. An average over the last few hundred steps sits nearer the middle of the region the
//! optimiser wanders in, and the checkpoint chosen from it depends less on the step it was taken
//! at. Batch-norm running statistics are averaged like the weights (they are float parameters to
//! burn's module visitors).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The running average of a network's floats: weights, biases and batch-norm statistics.
pub struct WeightAverage<M> {
    average: M,
    decay: f32,
    updates: usize,
}

impl<M: Module + Clone> WeightAverage<M> {
    /// Starts the average at `model`'s current weights. Each update keeps `decay` of the
    /// average (less during the first updates: `min(decay, (1 + t) / (10 + t))`, so the start
    /// does not weigh for hundreds of steps).
    pub fn new(model: &M, decay: f32) -> Self {
        WeightAverage {
            average: model.valid(),
            decay,
            updates: 0,
        }
    }

    /// Folds `model`'s current weights into the average.
    pub fn update(&mut self, model: &M) {
        let mut current = Collect(Vec::new());
        model.valid().visit(&mut current);
        let t = self.updates as f32;
        let keep = self.decay.min((1.0 + t) / (10.0 + t));
        let mut blend = Blend {
            current: current.0.into_iter(),
            keep,
        };
        self.average = self.average.clone().map(&mut blend);
        self.updates += 1;
    }

    /// The averaged network (no autodiff).
    pub fn average(&self) -> &M {
        &self.average
    }

    /// Updates folded in so far (the warm-up of the decay depends on it).
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// Continues an average saved after `updates` updates (a resumed run).
    pub fn restore(&mut self, average: M, updates: usize) {
        self.average = average;
        self.updates = updates;
    }
}

/// Every float parameter, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().detach().flatten(0, D - 1));
    }
}

/// Replaces each float parameter `a` by `keep · a + (1 − keep) · current`, taking `current`
/// in the same visiting order [`Collect`] filled it.
struct Blend<I> {
    current: I,
    keep: f32,
}

impl<I: Iterator<Item = Tensor<1>>> ModuleMapper for Blend<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.current.next() else {
            return param;
        };
        let keep = self.keep;
        param.map(|a| {
            let dims = a.dims();
            a * keep + current.reshape(dims) * (1.0 - keep)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(l: &Linear) -> Vec<f32> {
        l.weight.val().into_data().try_to_vec::<f32>().expect("f32")
    }

    /// The average moves toward the current weights by `1 − keep` per update, starting with
    /// the warm-up factors 1/10, 2/11, … and ending at the decay.
    #[test]
    fn average_follows_the_documented_recurrence() {
        let device = Device::flex();
        let a = LinearConfig::new(3, 2).init(&device);
        let b = LinearConfig::new(3, 2).init(&device);
        let (wa, wb) = (weights(&a), weights(&b));
        let mut avg = WeightAverage::new(&a, 0.5);
        avg.update(&b); // keep = min(0.5, 1/10) = 0.1
        let expected: Vec<f32> = wa.iter().zip(&wb).map(|(x, y)| 0.1 * x + 0.9 * y).collect();
        let got = weights(avg.average());
        assert!(
            got.iter().zip(&expected).all(|(g, e)| (g - e).abs() < 1e-6),
            "{got:?} vs {expected:?}"
        );
        for _ in 0..40 {
            avg.update(&b);
        }
        // After many updates toward b the average is b.
        let got = weights(avg.average());
        assert!(got.iter().zip(&wb).all(|(g, e)| (g - e).abs() < 1e-5));
        // The bias (a second float parameter) is blended too.
        let bias = |l: &Linear| {
            l.bias
                .as_ref()
                .expect("bias")
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        assert!(
            bias(avg.average())
                .iter()
                .zip(bias(&b))
                .all(|(g, e)| (g - e).abs() < 1e-5)
        );
    }
}
