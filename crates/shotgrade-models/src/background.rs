//! The background network (seed S120, fig. 2): Input → Conv → Bottleneck_3x3 / Bottleneck_5x5
//! modules → Concat → AvgPool → Flatten → class prediction.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use crate::blocks::{Bottleneck3x3, Bottleneck5x5, Chw, Macs, conv};

/// Shape of the background network.
#[derive(Config, Debug, PartialEq)]
pub struct BackgroundNetConfig {
    /// Side of the square, squash-resized RGB input.
    #[config(default = 128)]
    pub input_size: usize,
    /// Channels of the stem conv.
    #[config(default = 16)]
    pub stem_channels: usize,
    /// Output channels of the four trunk stages (3×3, 5×5, 3×3, 5×5 bottlenecks).
    #[config(default = "[24, 32, 48, 64]")]
    pub stage_channels: [usize; 4],
    /// Number of background classes.
    #[config(default = 5)]
    pub classes: usize,
}

/// Classifies the background of a product photo into the [`shotgrade_core::BackgroundClass`]es.
///
/// Trunk: a stride-2 stem conv and four bottleneck stages (the first three stride 2), so a
/// 128 px input ends at 8×8. Head: a `Bottleneck_3x3` and a `Bottleneck_5x5` branch run side by
/// side on the trunk's output together with the input averaged down to the same grid (the raw
/// colours, which separate white from off-white better than deep features do); they are
/// concatenated, average-pooled to 4×4 (so the head still knows border from centre — where the
/// background is), flattened, and a linear layer predicts the class.
#[derive(Module, Debug)]
pub struct BackgroundNet {
    pub stem: Conv2d,
    pub stem_bn: BatchNorm,
    pub stage1: Bottleneck3x3,
    pub stage2: Bottleneck5x5,
    pub stage3: Bottleneck3x3,
    pub stage4: Bottleneck5x5,
    pub branch3x3: Bottleneck3x3,
    pub branch5x5: Bottleneck5x5,
    pub colour_pool: AvgPool2d,
    pub head_pool: AvgPool2d,
    pub classifier: Linear,
}

/// Trunk downsampling factor: stem 2 × three stride-2 stages.
const TRUNK_STRIDE: usize = 16;
/// Grid the head flattens.
const HEAD_GRID: usize = 4;

impl BackgroundNetConfig {
    pub fn init(&self, device: &Device) -> BackgroundNet {
        let [c1, c2, c3, c4] = self.stage_channels;
        let grid = self.input_size / TRUNK_STRIDE;
        let concat = 2 * c4 + 3;
        BackgroundNet {
            stem: conv(3, self.stem_channels, [3, 3], 2, 1, false, device),
            stem_bn: BatchNormConfig::new(self.stem_channels).init(device),
            stage1: Bottleneck3x3::new(self.stem_channels, c1, 2, device),
            stage2: Bottleneck5x5::new(c1, c2, 2, device),
            stage3: Bottleneck3x3::new(c2, c3, 2, device),
            stage4: Bottleneck5x5::new(c3, c4, 1, device),
            branch3x3: Bottleneck3x3::new(c4, c4, 1, device),
            branch5x5: Bottleneck5x5::new(c4, c4, 1, device),
            colour_pool: AvgPool2dConfig::new([TRUNK_STRIDE, TRUNK_STRIDE])
                .with_strides([TRUNK_STRIDE, TRUNK_STRIDE])
                .init(),
            head_pool: {
                let k = (grid / HEAD_GRID).max(1);
                AvgPool2dConfig::new([k, k]).with_strides([k, k]).init()
            },
            classifier: LinearConfig::new(concat * HEAD_GRID * HEAD_GRID, self.classes)
                .init(device),
        }
    }

    /// Checks that the input size fits the network's strides.
    pub fn validate(&self) -> Result<(), String> {
        if self.input_size == 0 || !self.input_size.is_multiple_of(TRUNK_STRIDE * HEAD_GRID) {
            return Err(format!(
                "background input_size must be a positive multiple of {}, got {}",
                TRUNK_STRIDE * HEAD_GRID,
                self.input_size
            ));
        }
        Ok(())
    }
}

impl BackgroundNet {
    /// Class logits. `[B, 3, S, S] → [B, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let colour = self.colour_pool.forward(x.clone());
        let y = relu(self.stem_bn.forward(self.stem.forward(x)));
        let y = self.stage4.forward(
            self.stage3
                .forward(self.stage2.forward(self.stage1.forward(y))),
        );
        let a = self.branch3x3.forward(y.clone());
        let b = self.branch5x5.forward(y);
        let joined = self.head_pool.forward(Tensor::cat(vec![a, b, colour], 1));
        self.classifier.forward(joined.flatten(1, 3))
    }

    /// Class probabilities, averaged over the image and its mirror image (left–right).
    /// `[B, 3, S, S] → [B, classes]`
    ///
    /// A backdrop's class does not depend on which side the product stands, and the two views
    /// disagree mostly where one of them is wrong: on the held-out test composites averaging
    /// them removed 1, 4 and 6 of the 35–43 errors of the three checkpoints measured
    /// (models/README.md), for one more pass of this small network (~2–3 ms per image on the
    /// CPU; [`Self::macs`] counts one pass).
    pub fn probabilities(&self, x: Tensor<4>) -> Tensor<2> {
        let mirrored = x.clone().flip([3]);
        (softmax(self.forward(x), 1) + softmax(self.forward(mirrored), 1)) / 2.0
    }

    /// Multiply–accumulates of one forward pass for one image of side `input_size`.
    pub fn macs(&self, input_size: usize) -> u64 {
        let input: Chw = [3, input_size, input_size];
        let (a, s) = self.stem.macs(input);
        let (b, s) = self.stage1.macs(s);
        let (c, s) = self.stage2.macs(s);
        let (d, s) = self.stage3.macs(s);
        let (e, s) = self.stage4.macs(s);
        let (f, _) = self.branch3x3.macs(s);
        let (g, _) = self.branch5x5.macs(s);
        a + b + c + d + e + f + g + crate::linear_macs(&self.classifier)
    }
}
