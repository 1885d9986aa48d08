//! The background model on the pretrained trunk: EfficientNet-Lite0's ImageNet features of the
//! photo (stages 5, 6 and 7, each average-pooled) next to the border band's statistics
//! (`shotgrade_image::backdrop_statistics`), and one linear layer over them to the classes.
//!
//! Why this shape (measured in models/HISTORY.md, "A pretrained trunk with a linear head"):
//! with a few hundred photos labelled by eye per class, a frozen ImageNet trunk and a
//! regularised linear layer beat the from-scratch network on the real validation part by
//! 15 points, and the border statistics beside the trunk features keep the white / off-white
//! boundary (a pixel level the trunk's features do not carry) the pixels' job. The pooled
//! 1280-channel head features were worse than the earlier stages, so the trunk ships without
//! its head convolution and classifier. The layer is fitted on standardised features; the
//! standardisation is folded into its weights, so the file holds the trunk and one layer.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use shotgrade_image::BACKDROP_FEATURES;

use crate::trunk::{EfficientNetLite0, EfficientNetLite0Config, STAGE_CHANNELS, global_average};

/// The trunk stages (1-based, as `EfficientNetLite0::stages` numbers them) whose pooled
/// outputs the head reads.
pub const HEAD_STAGES: [usize; 3] = [5, 6, 7];
/// Most images the trunk runs on at once ([`TrunkBackground::probabilities`]).
pub const TRUNK_CHUNK: usize = 8;
/// Input side granularity: the trunk's total stride, so every stage's padding is exact.
pub const TRUNK_SIDE_STEP: usize = 32;

/// Width of the head's input: the pooled stages, then the backdrop statistics.
pub const fn head_inputs() -> usize {
    let mut n = BACKDROP_FEATURES;
    let mut i = 0;
    while i < HEAD_STAGES.len() {
        n += STAGE_CHANNELS[HEAD_STAGES[i] - 1];
        i += 1;
    }
    n
}

/// The pretrained trunk (without its head) and the linear layer over its pooled stages and the
/// backdrop statistics.
#[derive(Module, Debug)]
pub struct TrunkBackground {
    pub trunk: EfficientNetLite0,
    pub head: Linear,
}

impl TrunkBackground {
    /// Untrained (the shape a weights file is loaded into).
    pub fn init(classes: usize, device: &Device) -> Self {
        TrunkBackground {
            trunk: EfficientNetLite0Config::new()
                .with_with_head(false)
                .init(device),
            head: LinearConfig::new(head_inputs(), classes).init(device),
        }
    }

    /// The head's inputs, `[B, head_inputs()]`, for `x` (`[B, 3, S, S]`, RGB in `[0, 1]` as
    /// `shotgrade_image::push_chw` writes it) and `statistics` (`[B, BACKDROP_FEATURES]`).
    pub fn features(&self, x: Tensor<4>, statistics: Tensor<2>) -> Tensor<2> {
        self.features_from(self.first_head_map(x), statistics)
    }

    /// The output of the first stage the head reads (stage 5: `[B, 112, S/16, S/16]`): what
    /// the stages before it — frozen in every fit — make of `x`.
    pub fn first_head_map(&self, x: Tensor<4>) -> Tensor<4> {
        // The trunk's own scaling, (v − 127) / 128 of the 8-bit value v = 255 x.
        let x = x.mul_scalar(255.0 / 128.0).sub_scalar(127.0 / 128.0);
        let mut stages = self.trunk.stages(x, HEAD_STAGES[0]);
        stages.swap_remove(HEAD_STAGES[0])
    }

    /// The head's inputs from [`Self::first_head_map`]'s output: the later head stages run
    /// on it, each stage is pooled, the statistics follow.
    pub fn features_from(&self, first: Tensor<4>, statistics: Tensor<2>) -> Tensor<2> {
        let last = HEAD_STAGES[HEAD_STAGES.len() - 1];
        let later = self
            .trunk
            .continue_stages(first.clone(), HEAD_STAGES[0] + 1, last);
        let mut parts: Vec<Tensor<2>> = std::iter::once(first)
            .chain(later)
            .map(global_average)
            .collect();
        parts.push(statistics);
        Tensor::cat(parts, 1)
    }

    /// Class scores before the softmax from [`Self::first_head_map`]'s output (fine-tuning).
    pub fn logits_from(&self, first: Tensor<4>, statistics: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.features_from(first, statistics))
    }

    /// Class probabilities. `[B, 3, S, S]` and `[B, BACKDROP_FEATURES]` → `[B, classes]`
    ///
    /// Runs the trunk on at most [`TRUNK_CHUNK`] images at a time: the early stages' expanded
    /// activations of a batch of 16 at 160 px (16 × 96 × 80 × 80 floats, 39 MB per tensor)
    /// overflow the caches, and on this project's 2-core machine chunks of 8 measured ~15 ms
    /// per image against ~20 ms for the whole batch (`examples/trunk_timing.rs`).
    pub fn probabilities(&self, x: Tensor<4>, statistics: Tensor<2>) -> Tensor<2> {
        let n = x.dims()[0];
        if n <= TRUNK_CHUNK {
            return softmax(self.head.forward(self.features(x, statistics)), 1);
        }
        let chunks: Vec<Tensor<2>> = (0..n)
            .step_by(TRUNK_CHUNK)
            .map(|start| {
                let len = TRUNK_CHUNK.min(n - start);
                self.probabilities(
                    x.clone().narrow(0, start, len),
                    statistics.clone().narrow(0, start, len),
                )
            })
            .collect();
        Tensor::cat(chunks, 0)
    }

    /// Folds the trunk's batch norms into its convolutions, for inference only
    /// ([`EfficientNetLite0::fold_batch_norms`]).
    pub fn fold_batch_norms(&mut self) {
        self.trunk.fold_batch_norms();
    }

    /// Multiply–accumulates for one `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        self.trunk
            .stage_macs(side, HEAD_STAGES[HEAD_STAGES.len() - 1])
            + crate::linear_macs(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn features_are_pooled_stages_then_statistics() {
        let device = Device::flex();
        let model = TrunkBackground::init(5, &device);
        assert_eq!(head_inputs(), 112 + 192 + 320 + BACKDROP_FEATURES);
        let stats: Vec<f32> = (0..2 * BACKDROP_FEATURES).map(|i| i as f32).collect();
        let statistics = Tensor::<2>::from_data(
            TensorData::new(stats.clone(), [2, BACKDROP_FEATURES]),
            &device,
        );
        let x = Tensor::<4>::full([2, 3, 64, 64], 0.5, &device);
        let f = model.features(x.clone(), statistics.clone());
        assert_eq!(f.dims(), [2, head_inputs()]);
        let values = f.into_data().try_to_vec::<f32>().expect("f32");
        // The statistics pass through unchanged at the end of each row.
        let tail = &values[head_inputs() - BACKDROP_FEATURES..head_inputs()];
        assert_eq!(tail, &stats[..BACKDROP_FEATURES]);
        let p = model
            .probabilities(x, statistics)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        for row in p.chunks(5) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }

    /// More images than one chunk: each row is the image's own, as if it ran alone.
    #[test]
    fn chunked_batches_keep_each_image_its_row() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let model = TrunkBackground::init(5, &device);
        let n = TRUNK_CHUNK + 3;
        let x = Tensor::<4>::random([n, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
        let s = Tensor::<2>::random(
            [n, BACKDROP_FEATURES],
            Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let all = model
            .probabilities(x.clone(), s.clone())
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        for i in [0, TRUNK_CHUNK - 1, TRUNK_CHUNK, n - 1] {
            let one = model
                .probabilities(x.clone().narrow(0, i, 1), s.clone().narrow(0, i, 1))
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            for (a, b) in one.iter().zip(&all[i * 5..(i + 1) * 5]) {
                assert!((a - b).abs() < 1e-5, "image {i}: {a} vs {b}");
            }
        }
    }
}
