//! The background network (seed S120, fig. 2): Input → Conv → Bottleneck_3x3 / Bottleneck_5x5
//! modules → Concat → AvgPool → Flatten → class prediction.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use shotgrade_core::BackgroundClass;
use shotgrade_image::{BACKDROP_FEATURES, BackgroundView, BlockPlanes};

use crate::pretrained_background::{TRUNK_SIDE_STEP, TrunkBackground};

use crate::blocks::{Bottleneck3x3, Bottleneck5x5, Chw, Macs, bn, conv};

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
    /// Whether the input carries three median-colour planes after the RGB image (`6 × S × S`,
    /// `shotgrade_image::push_block_planes` with blocks of [`TRUNK_STRIDE`]): the head then
    /// sees, next to the averaged colours, each block's median native-pixel colour, which stays
    /// at 255 on a white backdrop under noise. An `Option` so that weights files written
    /// before the field existed still load (serde reads a missing `Option` as `None`; burn's
    /// config derive gives other fields no serde default): `None` means without.
    #[config(default = "None")]
    pub median_colours: Option<bool>,
    /// With [`Self::median_colours`], whether three spread planes follow the median planes
    /// (`9 × S × S`): each block's interquartile range of native pixels per channel. Why: a
    /// flat off-white `solid` backdrop and a white one pulled down by noise and JPEG can share
    /// a median; only the spread of their native pixels tells them apart, and the averaged
    /// thumbnail has lost it. `None` means without (every file written before the field).
    #[config(default = "None")]
    pub colour_spread: Option<bool>,
    /// Width of a per-cell nonlinear layer on the head's colour inputs (the averaged colours and
    /// any median planes): a 1×1 conv, batch norm and ReLU ([`ColourFeatures`]) whose outputs
    /// join the head next to the raw colours. Why: without it the class logits are linear in
    /// the colours, so the head cannot put a sharp, per-cell threshold at the white /
    /// off-white boundary (every channel ≥ 250) — the boundary most of the 64-px network's
    /// errors sit on. `None`: without (every file written before the field).
    #[config(default = "None")]
    pub colour_features: Option<usize>,
    /// How many snapshot networks of this shape a weights file holds, as a
    /// [`BackgroundEnsemble`] (tensors `members.N.…`). `None` — every file written before
    /// ensembles — holds one network under the plain tensor names.
    #[config(default = "None")]
    pub snapshots: Option<usize>,
    /// Width of the hidden layer of the model's second stage ([`BackdropLevel`]), which splits
    /// the network's `white` + `solid` probability between the two from the border band's
    /// statistics (`shotgrade_image::backdrop_statistics`). Held by the [`BackgroundEnsemble`],
    /// not by its networks. `None`: no second stage (every file written before it).
    #[config(default = "None")]
    pub backdrop_level: Option<usize>,
    /// Number of trees of the second stage when it is gradient-boosted trees
    /// ([`crate::BackdropTrees`], carried in the file's metadata) rather than
    /// [`Self::backdrop_level`]'s MLP. `None`: no trees.
    #[config(default = "None")]
    pub backdrop_trees: Option<usize>,
    /// Whether the model is the pretrained trunk with a linear head
    /// ([`crate::TrunkBackground`]) instead of this from-scratch network: the file then holds
    /// `trunk.…` tensors, the input is the photo letterboxed on white at [`Self::input_size`]
    /// (a multiple of 32) and the head also reads the backdrop statistics; the shape fields
    /// above are unused. `None`: the from-scratch network (every file written before it).
    #[config(default = "None")]
    pub pretrained_trunk: Option<bool>,
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
    pub colour_features: Option<ColourFeatures>,
    pub head_pool: AvgPool2d,
    pub classifier: Linear,
}

/// [`BackgroundNetConfig::colour_features`]: a 1×1 conv, batch norm and ReLU over the colour
/// planes on the trunk's grid, so each cell's colours pass a learned threshold before the
/// linear head.
#[derive(Module, Debug)]
pub struct ColourFeatures {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ColourFeatures {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        ColourFeatures {
            conv: conv(cin, cout, [1, 1], 1, 1, false, device),
            bn: bn(cout, device),
        }
    }

    fn forward(&self, colour: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(colour)))
    }
}

/// Trunk downsampling factor: stem 2 × three stride-2 stages; also the side of the median
/// planes' blocks, so each block lands on one cell of the head's grid.
pub const TRUNK_STRIDE: usize = 16;
/// Grid the head flattens.
const HEAD_GRID: usize = 4;

impl BackgroundNetConfig {
    pub fn init(&self, device: &Device) -> BackgroundNet {
        let [c1, c2, c3, c4] = self.stage_channels;
        let concat = 2 * c4 + self.input_channels() + self.colour_features.unwrap_or(0);
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
            colour_features: self
                .colour_features
                .map(|k| ColourFeatures::new(self.input_channels(), k, device)),
            head_pool: self.head_pool(),
            classifier: LinearConfig::new(concat * HEAD_GRID * HEAD_GRID, self.classes)
                .init(device),
        }
    }

    /// The pool that brings the trunk's grid (`input_size / 16`) down to the head's 4 × 4.
    /// It holds no weights, so one network runs at any valid input size once this is rebuilt
    /// ([`BackgroundNet::with_input_size`]).
    fn head_pool(&self) -> AvgPool2d {
        let k = (self.input_size / TRUNK_STRIDE / HEAD_GRID).max(1);
        AvgPool2dConfig::new([k, k]).with_strides([k, k]).init()
    }

    /// The networks of a [`BackgroundEnsemble`] of this config ([`Self::snapshots`]), each
    /// freshly initialised.
    pub fn init_ensemble(&self, device: &Device) -> BackgroundEnsemble {
        if self.is_pretrained() {
            return BackgroundEnsemble {
                members: Vec::new(),
                level: None,
                trunk: Some(TrunkBackground::init(self.classes, device)),
            };
        }
        BackgroundEnsemble {
            members: (0..self.snapshot_count())
                .map(|_| self.init(device))
                .collect(),
            level: self.backdrop_level.map(|w| BackdropLevel::new(w, device)),
            trunk: None,
        }
    }

    /// Whether this is the pretrained-trunk model ([`Self::pretrained_trunk`]).
    pub fn is_pretrained(&self) -> bool {
        self.pretrained_trunk == Some(true)
    }

    /// Whether the model reads the backdrop statistics: a second stage or the trunk's head.
    pub fn needs_statistics(&self) -> bool {
        self.has_second_stage() || self.is_pretrained()
    }

    /// How the photo becomes this model's input.
    pub fn view(&self) -> BackgroundView {
        if self.is_pretrained() {
            BackgroundView::LetterboxWhite
        } else {
            BackgroundView::Squash
        }
    }

    /// Members of the ensemble this config describes: [`Self::snapshots`], at least one.
    pub fn snapshot_count(&self) -> usize {
        self.snapshots.unwrap_or(1).max(1)
    }

    /// Channels of the input: RGB, plus the median planes with [`Self::median_colours`], plus
    /// the spread planes with [`Self::colour_spread`].
    pub fn input_channels(&self) -> usize {
        3 + 3 * usize::from(self.has_median_colours()) + 3 * usize::from(self.has_colour_spread())
    }

    /// Whether the input carries the spread planes ([`Self::colour_spread`]).
    pub fn has_colour_spread(&self) -> bool {
        self.colour_spread == Some(true)
    }

    /// Whether the input carries the median planes ([`Self::median_colours`]).
    pub fn has_median_colours(&self) -> bool {
        self.median_colours == Some(true)
    }

    /// Block side of the input's median planes, `None` without them.
    pub fn median_cell(&self) -> Option<usize> {
        self.has_median_colours().then_some(TRUNK_STRIDE)
    }

    /// The per-block planes the input carries after the RGB image, if any (what
    /// `shotgrade_image::Preprocessor` needs to make this network's input).
    pub fn block_planes(&self) -> Option<BlockPlanes> {
        self.median_cell().map(|cell| BlockPlanes {
            cell: cell as u32,
            spread: self.has_colour_spread(),
        })
    }

    /// Whether the model has a second stage (either kind), which needs the backdrop statistics.
    pub fn has_second_stage(&self) -> bool {
        self.backdrop_level.is_some() || self.backdrop_trees.is_some()
    }

    /// Checks that the input size fits the network's strides.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_pretrained() {
            let plain = self.backdrop_level.is_none()
                && self.backdrop_trees.is_none()
                && self.snapshots.is_none()
                && !self.has_median_colours()
                && !self.has_colour_spread()
                && self.colour_features.is_none();
            if !plain {
                return Err(
                    "the pretrained-trunk background model has no second stage, \
                            snapshots or block planes"
                        .into(),
                );
            }
            if self.input_size == 0 || !self.input_size.is_multiple_of(TRUNK_SIDE_STEP) {
                return Err(format!(
                    "the pretrained trunk's input_size must be a positive multiple of \
                     {TRUNK_SIDE_STEP}, got {}",
                    self.input_size
                ));
            }
            return Ok(());
        }
        if self.backdrop_level == Some(0) || self.backdrop_trees == Some(0) {
            return Err(
                "background backdrop_level and backdrop_trees must be at least 1 when set".into(),
            );
        }
        if self.backdrop_level.is_some() && self.backdrop_trees.is_some() {
            return Err(
                "a background model has one second stage: backdrop_level or backdrop_trees".into(),
            );
        }
        if self.snapshots == Some(0) {
            return Err("a background ensemble needs at least one snapshot".into());
        }
        if self.has_colour_spread() && !self.has_median_colours() {
            return Err("background colour_spread needs median_colours".into());
        }
        if self.colour_features == Some(0) {
            return Err("background colour_features must be at least 1 when set".into());
        }
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
    /// The same weights for inputs of `config.input_size` (which must pass
    /// [`BackgroundNetConfig::validate`]): every layer but the head's pool is independent of
    /// the input size, since the trunk is convolutional and the head always flattens a 4 × 4
    /// grid. Why: progressive resizing — a first training cycle on 64-px inputs runs the
    /// network at a quarter of the cost, and later cycles continue at 128 px.
    pub fn with_input_size(mut self, config: &BackgroundNetConfig) -> Self {
        self.head_pool = config.head_pool();
        self
    }

    /// Class logits. `[B, C, S, S] → [B, classes]`, `C` = [`BackgroundNetConfig::input_channels`]:
    /// the trunk sees the RGB image, the head its averaged colours and any block planes (and,
    /// with [`BackgroundNetConfig::colour_features`], a nonlinear layer over them).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let colour = self.colour_pool.forward(x.clone());
        let image = if x.dims()[1] > 3 {
            x.narrow(1, 0, 3)
        } else {
            x
        };
        let y = relu(self.stem_bn.forward(self.stem.forward(image)));
        let y = self.stage4.forward(
            self.stage3
                .forward(self.stage2.forward(self.stage1.forward(y))),
        );
        let a = self.branch3x3.forward(y.clone());
        let b = self.branch5x5.forward(y);
        let mut head = vec![a, b];
        if let Some(features) = &self.colour_features {
            head.push(features.forward(colour.clone()));
        }
        head.push(colour);
        let joined = self.head_pool.forward(Tensor::cat(head, 1));
        self.classifier.forward(joined.flatten(1, 3))
    }

    /// Class probabilities, averaged over the image and its mirror image (left–right).
    /// `[B, C, S, S] → [B, classes]`
    ///
    /// A backdrop's class does not depend on which side the product stands, and the two views
    /// disagree mostly where one of them is wrong: on the held-out test composites averaging
    /// them removed 1, 4 and 6 of the 35–43 errors of the three checkpoints measured
    /// (models/HISTORY.md), for one more pass of this small network (~2–3 ms per image on the
    /// CPU; [`Self::macs`] counts one pass).
    pub fn probabilities(&self, x: Tensor<4>) -> Tensor<2> {
        let mirrored = x.clone().flip([3]);
        (softmax(self.forward(x), 1) + softmax(self.forward(mirrored), 1)) / 2.0
    }

    /// Class probabilities of a snapshot ensemble: the mean of each member's
    /// [`Self::probabilities`]. `[B, C, S, S] → [B, classes]`; `nets` must share one config
    /// and must not be empty.
    ///
    /// # Panics
    /// Panics on an empty slice (a programming error: callers hold at least one network).
    pub fn ensemble_probabilities(nets: &[BackgroundNet], x: Tensor<4>) -> Tensor<2> {
        let (first, rest) = nets.split_first().expect("at least one network");
        if rest.is_empty() {
            return first.probabilities(x);
        }
        let sum = rest
            .iter()
            .fold(first.probabilities(x.clone()), |acc, net| {
                acc + net.probabilities(x.clone())
            });
        sum / nets.len() as f64
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
        let (g, [_, h, w]) = self.branch5x5.macs(s);
        let colour = self.colour_features.as_ref().map_or(0, |k| {
            let cin = k.conv.weight.dims()[1];
            k.conv.macs([cin, h, w]).0
        });
        a + b + c + d + e + f + g + colour + crate::linear_macs(&self.classifier)
    }
}

/// The background model's second stage: from the border band's statistics
/// (`shotgrade_image::backdrop_statistics`, [`BACKDROP_FEATURES`] numbers), the chance that a
/// backdrop the network calls `white` or `solid` is white. It splits the network's
/// `white` + `solid` probability accordingly and leaves the other classes alone.
///
/// Why: the boundary between the two is a level (every channel ≥ 250) that the network, on a
/// 64-px thumbnail and per-block medians, places poorly — most of its errors sat there — while
/// the border pixels' distribution and the photo's noise give it away (models/HISTORY.md, "A
/// second stage for white against off-white"). Trained on its own
/// (`shotgrade train backdrop`), after the network.
#[derive(Module, Debug)]
pub struct BackdropLevel {
    pub hidden: Linear,
    pub output: Linear,
}

impl BackdropLevel {
    pub fn new(width: usize, device: &Device) -> Self {
        BackdropLevel {
            hidden: LinearConfig::new(BACKDROP_FEATURES, width).init(device),
            output: LinearConfig::new(width, 1).init(device),
        }
    }

    /// Logit of "white rather than solid". `[B, BACKDROP_FEATURES] → [B, 1]`
    pub fn forward(&self, statistics: Tensor<2>) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(statistics)))
    }

    /// `probabilities` (`[B, classes]`) with their `white` + `solid` mass split by this stage's
    /// verdict on `statistics` (`[B, BACKDROP_FEATURES]`); the other classes and the sum stay.
    pub fn split(&self, probabilities: Tensor<2>, statistics: Tensor<2>) -> Tensor<2> {
        let white = sigmoid(self.forward(statistics));
        let column = |c: BackgroundClass| probabilities.clone().narrow(1, c.index(), 1);
        let light = column(BackgroundClass::White) + column(BackgroundClass::Solid);
        let mut columns: Vec<Tensor<2>> = shotgrade_core::BACKGROUND_CLASSES
            .iter()
            .map(|&c| column(c))
            .collect();
        columns[BackgroundClass::Solid.index()] = light.clone() * (white.clone().neg() + 1.0);
        columns[BackgroundClass::White.index()] = light * white;
        Tensor::cat(columns, 1)
    }

    /// Multiply–accumulates for one image.
    pub fn macs(&self) -> u64 {
        crate::linear_macs(&self.hidden) + crate::linear_macs(&self.output)
    }
}

/// Snapshots of one background network, averaged: the class probabilities are the mean of the
/// members' [`BackgroundNet::probabilities`].
///
/// Why: one training run with restarts of the learning rate passes through several good
/// networks (the best checkpoint of each cycle) that make partly different mistakes; averaging
/// their probabilities costs no training time, only one more pair of passes per member at
/// inference, and leans less on which single checkpoint happened to be chosen (measured in
/// models/HISTORY.md). A single network is an ensemble of one.
#[derive(Module, Debug)]
pub struct BackgroundEnsemble {
    pub members: Vec<BackgroundNet>,
    /// The second stage, with [`BackgroundNetConfig::backdrop_level`].
    pub level: Option<BackdropLevel>,
    /// The pretrained-trunk model, with [`BackgroundNetConfig::pretrained_trunk`] (then
    /// `members` is empty and there is no second stage).
    pub trunk: Option<TrunkBackground>,
}

impl BackgroundEnsemble {
    /// The ensemble of one network.
    pub fn single(net: BackgroundNet) -> Self {
        BackgroundEnsemble {
            members: vec![net],
            level: None,
            trunk: None,
        }
    }

    /// Whether [`Self::classify`] takes the backdrop statistics as a tensor: an MLP stage and
    /// the trunk's head do; a trees stage reads them directly, outside the model.
    pub fn takes_statistics_tensor(&self) -> bool {
        self.level.is_some() || self.trunk.is_some()
    }

    /// Mean class probabilities of the members, without the second stage.
    /// `[B, C, S, S] → [B, classes]`. The trunk model gets all-zero backdrop statistics here
    /// (for timing and shape checks; grading goes through [`Self::classify`]).
    pub fn probabilities(&self, x: Tensor<4>) -> Tensor<2> {
        if let Some(trunk) = &self.trunk {
            let statistics = Tensor::zeros([x.dims()[0], BACKDROP_FEATURES], &x.device());
            return trunk.probabilities(x, statistics);
        }
        BackgroundNet::ensemble_probabilities(&self.members, x)
    }

    /// The model's class probabilities: the members' mean, split between `white` and `solid`
    /// by the second stage when the model has one and `statistics` (`[B, BACKDROP_FEATURES]`)
    /// are given. `[B, C, S, S] → [B, classes]`
    pub fn classify(&self, x: Tensor<4>, statistics: Option<Tensor<2>>) -> Tensor<2> {
        if let Some(trunk) = &self.trunk {
            // The statistics are half of what the head reads: grading without them would give
            // confident, wrong classes. Callers prepare them whenever the config asks
            // (`needs_statistics`), so their absence is a programming error.
            let statistics =
                statistics.expect("the pretrained-trunk model needs the backdrop statistics");
            return trunk.probabilities(x, statistics);
        }
        let p = self.probabilities(x);
        match (&self.level, statistics) {
            (Some(level), Some(s)) => level.split(p, s),
            _ => p,
        }
    }

    /// Multiply–accumulates of one forward pass of every member (and the second stage) for
    /// one image.
    pub fn macs(&self, input_size: usize) -> u64 {
        let level = self.level.as_ref().map_or(0, BackdropLevel::macs);
        let trunk = self.trunk.as_ref().map_or(0, |t| t.macs(input_size));
        trunk + self.members.iter().map(|m| m.macs(input_size)).sum::<u64>() + level
    }
}
