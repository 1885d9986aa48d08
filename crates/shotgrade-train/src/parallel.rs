//! Data parallelism for the training loops: a batch is dealt into shards, each shard's
//! forward and backward pass runs on its own worker thread against a clone of the network, and
//! the shards' gradients are summed, weighted by their share of the batch.
//!
//! Why: burn's CPU backend splits single operations across threads poorly at our sizes (a
//! background run with two threads was *slower* than with one: 40 against 44 images/s), while
//! two independent halves of a batch keep both cores busy. The summed gradient is the gradient
//! of the whole batch's mean loss; only the batch-norm statistics differ (each shard normalises
//! over its own images, as in any data-parallel training).

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

/// Deals `items` round-robin into at most `shards` non-empty shards: item `i` goes to shard
/// `i mod shards`, so every shard gets a similar mix of whatever the batch was built from
/// (fresh composites, reused ones, real photos), and shard sizes differ by at most one.
pub fn deal<T>(items: Vec<T>, shards: usize) -> Vec<Vec<T>> {
    let shards = shards.clamp(1, items.len().max(1));
    let mut out: Vec<Vec<T>> = (0..shards)
        .map(|_| Vec::with_capacity(items.len() / shards + 1))
        .collect();
    for (i, item) in items.into_iter().enumerate() {
        out[i % shards].push(item);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// What one training step measured over all shards.
pub struct ShardedStep<R> {
    /// Gradients of the whole batch's mean loss.
    pub grads: GradientsParams,
    /// The whole batch's mean loss.
    pub loss: f32,
    /// Each shard's by-product (predictions, say), in shard order.
    pub outputs: Vec<R>,
}

/// Runs `loss_of(network clone, shard)` for every shard on the worker threads and sums the
/// gradients, each shard's loss weighted by its share of the items (so the result is the
/// gradient of the mean over the whole batch when `loss_of` returns a mean over its shard).
///
/// With one shard this is exactly the ordinary single-threaded step. The sum runs in shard
/// order, so the result does not depend on which thread finished first.
pub fn sharded_gradients<N, T, R, F>(
    model: &N,
    device: &Device,
    shards: Vec<Vec<T>>,
    loss_of: F,
) -> ShardedStep<R>
where
    N: Module + Clone + Send + Sync,
    T: Send,
    R: Send,
    F: Fn(N, Vec<T>) -> (Tensor<1>, R) + Sync,
{
    let total: usize = shards.iter().map(Vec::len).sum();
    let per_shard: Vec<(GradientsParams, f32, R)> = shards
        .into_par_iter()
        .map(|shard| {
            let share = shard.len() as f32 / total.max(1) as f32;
            // A fork has the same parameter ids but its own autodiff leaves: the shards' graphs
            // share no node, so burn keeps them apart instead of merging them under one lock.
            let net = model.clone().fork(device);
            let (loss, output) = loss_of(net.clone(), shard);
            let weighted = loss * share;
            let value = weighted.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(weighted.backward(), &net);
            (grads, value, output)
        })
        .collect();
    let mut accumulator = GradientsAccumulator::<N>::new();
    let mut loss = 0.0;
    let mut outputs = Vec::with_capacity(per_shard.len());
    for (grads, value, output) in per_shard {
        accumulator.accumulate(model, grads);
        loss += value;
        outputs.push(output);
    }
    ShardedStep {
        grads: accumulator.grads(),
        loss,
        outputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn dealing_keeps_every_item_once_and_balances(len in 0usize..200, shards in 0usize..9) {
            let dealt = deal((0..len).collect::<Vec<_>>(), shards);
            let mut all: Vec<usize> = dealt.iter().flatten().copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..len).collect::<Vec<_>>());
            prop_assert!(dealt.iter().all(|s| !s.is_empty()));
            prop_assert!(dealt.len() <= shards.max(1));
            let sizes: Vec<usize> = dealt.iter().map(Vec::len).collect();
            if let (Some(lo), Some(hi)) = (sizes.iter().min(), sizes.iter().max()) {
                prop_assert!(hi - lo <= 1);
            }
        }
    }

    /// Mean squared output of a linear layer over some inputs: its gradient is the same
    /// whether the batch is one shard or dealt into several.
    fn mean_square(net: Linear, rows: Vec<[f32; 3]>) -> (Tensor<1>, usize) {
        let n = rows.len();
        let data: Vec<f32> = rows.into_iter().flatten().collect();
        let device = net.weight.device();
        let x = Tensor::<2>::from_data(TensorData::new(data, [n, 3]), &device);
        (net.forward(x).powi_scalar(2).mean(), n)
    }

    #[test]
    fn sharded_gradient_equals_whole_batch_gradient() {
        let device = Device::flex().autodiff();
        let net = LinearConfig::new(3, 2).init(&device);
        let rows: Vec<[f32; 3]> = (0..7)
            .map(|i| {
                [
                    i as f32 * 0.3 - 1.0,
                    (i * i) as f32 * 0.1,
                    1.0 - i as f32 * 0.2,
                ]
            })
            .collect();
        let whole = sharded_gradients(&net, &device, deal(rows.clone(), 1), mean_square);
        let split = sharded_gradients(&net, &device, deal(rows, 3), mean_square);
        assert_eq!(split.outputs, vec![3, 2, 2]);
        assert!(
            (whole.loss - split.loss).abs() < 1e-5,
            "{} vs {}",
            whole.loss,
            split.loss
        );
        let weight_grad = |grads: &GradientsParams| -> Vec<f32> {
            grads
                .get::<2>(net.weight.id)
                .expect("grad")
                .into_data()
                .iter::<f32>()
                .collect()
        };
        let (a, b) = (weight_grad(&whole.grads), weight_grad(&split.grads));
        assert!(
            a.iter().any(|v| v.abs() > 1e-3),
            "a gradient that cannot be zero"
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
}
