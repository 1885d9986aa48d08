//! The visual-experience network (seed S140, fig. 12): Input → Conv → Flatten → two outputs,
//! the aesthetic sub-score and the noise sub-score.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::blocks::{Chw, Macs, conv};

/// Shape of the experience network.
#[derive(Config, Debug, PartialEq)]
pub struct ExperienceNetConfig {
    /// Height `S` of the input; the input is `3 × S × 2S`: the squash-resized image and a
    /// native-resolution centre crop side by side.
    #[config(default = 160)]
    pub input_size: usize,
    /// Channels of the five stride-2 conv layers.
    #[config(default = "[16, 32, 48, 64, 64]")]
    pub conv_channels: [usize; 5],
    /// Channels of the 1×1 conv that precedes Flatten.
    #[config(default = 16)]
    pub flatten_channels: usize,
    /// Hidden width of each head.
    #[config(default = 64)]
    pub head_hidden: usize,
}

/// One conv layer of the experience trunk: Conv 3×3 / 2 → BN → ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    fn new(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        ConvBnRelu {
            conv: conv(cin, cout, [kernel, kernel], stride, 1, false, device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// A regression head: Linear → ReLU → Linear → sigmoid, a score in `(0, 1)`.
#[derive(Module, Debug)]
pub struct ScoreHead {
    pub hidden: Linear,
    pub out: Linear,
}

impl ScoreHead {
    fn new(fan_in: usize, hidden: usize, device: &Device) -> Self {
        ScoreHead {
            hidden: LinearConfig::new(fan_in, hidden).init(device),
            out: LinearConfig::new(hidden, 1).init(device),
        }
    }

    /// Raw logit. `[B, F] → [B, 1]`
    pub fn logit(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// The two sub-scores for a batch, each in `(0, 1)` (× 100 for the 0–100 scale).
#[derive(Debug, Clone)]
pub struct ExperienceOutput {
    /// Output1: the aesthetic sub-score. `[B, 1]`
    pub aesthetic: Tensor<2>,
    /// Output2: the noise sub-score (cleanliness: 1 = clean). `[B, 1]`
    pub noise: Tensor<2>,
}

/// Rates how a photo looks (aesthetic head) and how clean it is (noise head).
///
/// The trunk is five stride-2 Conv-BN-ReLU layers and a 1×1 reduction; Flatten keeps the
/// spatial layout (composition matters for aesthetics, and the two halves of the input —
/// global view and detail crop — stay apart), and two separate heads read it.
#[derive(Module, Debug)]
pub struct ExperienceNet {
    pub convs: Vec<ConvBnRelu>,
    pub reduce: ConvBnRelu,
    pub aesthetic: ScoreHead,
    pub noise: ScoreHead,
}

/// Downsampling of the five stride-2 layers.
const TRUNK_STRIDE: usize = 32;

impl ExperienceNetConfig {
    pub fn init(&self, device: &Device) -> ExperienceNet {
        let mut cin = 3;
        let convs = self
            .conv_channels
            .iter()
            .map(|&c| {
                let layer = ConvBnRelu::new(cin, c, 3, 2, device);
                cin = c;
                layer
            })
            .collect();
        let (h, w) = (
            self.input_size / TRUNK_STRIDE,
            2 * self.input_size / TRUNK_STRIDE,
        );
        let flat = self.flatten_channels * h * w;
        ExperienceNet {
            convs,
            reduce: ConvBnRelu::new(cin, self.flatten_channels, 1, 1, device),
            aesthetic: ScoreHead::new(flat, self.head_hidden, device),
            noise: ScoreHead::new(flat, self.head_hidden, device),
        }
    }

    /// Checks that the input size fits the network's strides.
    pub fn validate(&self) -> Result<(), String> {
        if self.input_size == 0 || !self.input_size.is_multiple_of(TRUNK_STRIDE) {
            return Err(format!(
                "experience input_size must be a positive multiple of {TRUNK_STRIDE}, got {}",
                self.input_size
            ));
        }
        Ok(())
    }
}

impl ExperienceNet {
    /// Flattened features. `[B, 3, S, 2S] → [B, F]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut y = x;
        for layer in &self.convs {
            y = layer.forward(y);
        }
        self.reduce.forward(y).flatten(1, 3)
    }

    /// Raw logits of both heads. `[B, 3, S, 2S] → ([B, 1], [B, 1])`
    pub fn logits(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let f = self.features(x);
        (self.aesthetic.logit(f.clone()), self.noise.logit(f))
    }

    /// Both sub-scores in `(0, 1)`. `[B, 3, S, 2S] → ExperienceOutput`
    pub fn forward(&self, x: Tensor<4>) -> ExperienceOutput {
        let (a, n) = self.logits(x);
        ExperienceOutput {
            aesthetic: sigmoid(a),
            noise: sigmoid(n),
        }
    }

    /// Multiply–accumulates of one forward pass for one image of height `input_size`.
    pub fn macs(&self, input_size: usize) -> u64 {
        let mut s: Chw = [3, input_size, 2 * input_size];
        let mut total = 0;
        for layer in &self.convs {
            let (m, o) = layer.conv.macs(s);
            total += m;
            s = o;
        }
        let (m, _) = self.reduce.conv.macs(s);
        total += m;
        for head in [&self.aesthetic, &self.noise] {
            total += crate::linear_macs(&head.hidden) + crate::linear_macs(&head.out);
        }
        total
    }
}
