//! The position network (seed S130, fig. 5): YOLOv5-style `Focus`, `CBL`, `CSP1_X`, `CSP2_X` and
//! `SPP` blocks with three outputs per grid cell — the position category (subject or not), the
//! product box, and the box probability.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::interpolate::{Interpolate2d, Interpolate2dConfig, InterpolateMode};
use burn::tensor::{Device, Tensor};
use shotgrade_core::{Detection, DetectionDecoder, GridLevel, Letterbox, POSITION_CELL_WIDTH};

use crate::blocks::{Cbl, Chw, Csp1, Csp2, Focus, Macs, Spp, conv};

/// Cells whose box probability is below this are dropped before NMS when grading: low enough
/// to keep a faint main product, high enough that background texture rarely passes.
pub const MIN_DETECTION_PROBABILITY: f32 = 0.05;
/// Overlap above which NMS keeps only the more probable of two boxes.
pub const NMS_IOU: f32 = 0.5;
/// Products kept per photo after NMS.
pub const MAX_DETECTIONS: usize = 20;

/// Shape of the position network.
#[derive(Config, Debug, PartialEq)]
pub struct PositionNetConfig {
    /// Side of the square, letterboxed RGB input; a multiple of 32.
    #[config(default = 256)]
    pub input_size: usize,
    /// Channels after Focus and after each of the four downsampling CSP1 stages.
    #[config(default = "[16, 32, 64, 96, 128]")]
    pub channels: [usize; 5],
    /// Residual units in the CSP1 stages at strides 4, 8, 16.
    #[config(default = "[1, 2, 2]")]
    pub csp1_units: [usize; 3],
    /// Max-pool sizes of the SPP block.
    #[config(default = "vec![5, 9, 13]")]
    pub spp_pools: Vec<usize>,
}

/// The three outputs of the position network for a batch, over all `N` grid cells of both
/// levels (stride 16 first, then stride 32, each row-major).
#[derive(Debug, Clone)]
pub struct PositionOutput {
    /// Output1, position category: subject logit per cell. `[B, N, 1]`
    pub category: Tensor<3>,
    /// Output2, box offsets per cell (see [`shotgrade_core::GridLevel::decode`]). `[B, N, 4]`
    pub boxes: Tensor<3>,
    /// Output3, coordinate probability: objectness logit per cell. `[B, N, 1]`
    pub probability: Tensor<3>,
}

impl PositionOutput {
    /// The raw per-cell layout the core decoder reads: `[objectness, subject, tx, ty, tw, th]`.
    /// `[B, N, 6]`
    pub fn packed(&self) -> Tensor<3> {
        Tensor::cat(
            vec![
                self.probability.clone(),
                self.category.clone(),
                self.boxes.clone(),
            ],
            2,
        )
    }
}

/// Finds products and says whether the main one holds the subject position.
///
/// Backbone: Focus (÷2) → CSP1 stages (÷4, ÷8, ÷16, ÷32, each opening with a stride-2 CBL) →
/// SPP → CSP2. Neck: a small PAN — the stride-32 features are upsampled and fused with the
/// stride-16 ones (CSP2), then brought back down and fused again (CSP2). Heads: a 1×1 conv on
/// each of the two levels predicts 6 numbers per cell. Two levels suffice because products fill
/// 3–98 % of the frame: the smallest is still ≥ 2 cells wide at stride 16.
#[derive(Module, Debug)]
pub struct PositionNet {
    pub focus: Focus,
    pub stage1: Csp1,
    pub stage2: Csp1,
    pub stage3: Csp1,
    pub down4: Cbl,
    pub spp: Spp,
    pub stage4: Csp2,
    pub lateral: Cbl,
    pub upsample: Interpolate2d,
    pub fuse16: Csp2,
    pub down16: Cbl,
    pub fuse32: Csp2,
    pub head16: Conv2d,
    pub head32: Conv2d,
}

impl PositionNetConfig {
    pub fn init(&self, device: &Device) -> PositionNet {
        let [c0, c1, c2, c3, c4] = self.channels;
        let [u1, u2, u3] = self.csp1_units;
        PositionNet {
            focus: Focus::new(3, c0, device),
            stage1: Csp1::new(c0, c1, u1, true, device),
            stage2: Csp1::new(c1, c2, u2, true, device),
            stage3: Csp1::new(c2, c3, u3, true, device),
            down4: Cbl::new(c3, c4, 3, 2, device),
            spp: Spp::new(c4, c4, &self.spp_pools, device),
            stage4: Csp2::new(c4, c4, 1, false, device),
            lateral: Cbl::new(c4, c3, 1, 1, device),
            upsample: Interpolate2dConfig::new()
                .with_scale_factor(Some([2.0, 2.0]))
                .with_mode(InterpolateMode::Nearest)
                .init(),
            fuse16: Csp2::new(2 * c3, c3, 1, false, device),
            down16: Cbl::new(c3, c3, 3, 2, device),
            fuse32: Csp2::new(2 * c3, c4, 1, false, device),
            head16: conv(c3, POSITION_CELL_WIDTH, [1, 1], 1, 1, true, device),
            head32: conv(c4, POSITION_CELL_WIDTH, [1, 1], 1, 1, true, device),
        }
    }

    /// The output grids for this input size (stride 16, then stride 32).
    pub fn levels(&self) -> Vec<GridLevel> {
        GridLevel::position_levels(self.input_size as u32)
    }

    /// How this network's cells become products when grading (the thresholds above).
    pub fn decoder(&self) -> DetectionDecoder {
        DetectionDecoder {
            levels: self.levels(),
            min_probability: MIN_DETECTION_PROBABILITY,
            iou_threshold: NMS_IOU,
            max_detections: MAX_DETECTIONS,
        }
    }

    /// Checks that the input size fits the network's strides.
    pub fn validate(&self) -> Result<(), String> {
        if self.input_size == 0 || !self.input_size.is_multiple_of(32) {
            return Err(format!(
                "position input_size must be a positive multiple of 32, got {}",
                self.input_size
            ));
        }
        if self.spp_pools.iter().any(|k| k.is_multiple_of(2)) {
            return Err("position spp_pools must be odd".into());
        }
        Ok(())
    }
}

/// The products in one photo's raw position output (`cells × 6`, see
/// [`PositionOutput::packed`]), most probable first, with boxes in the photo's own pixels.
pub fn detections(
    decoder: &DetectionDecoder,
    raw: &[f32],
    letterbox: &Letterbox,
) -> Vec<Detection> {
    decoder
        .decode(raw)
        .into_iter()
        .map(|mut d| {
            d.bbox = letterbox.to_source(&d.bbox);
            d
        })
        .collect()
}

/// `[B, 6, H, W] → [B, H·W, 6]`
fn cells(x: Tensor<4>) -> Tensor<3> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).swap_dims(1, 2)
}

impl PositionNet {
    /// `[B, 3, S, S] → PositionOutput` over `(S/16)² + (S/32)²` cells.
    pub fn forward(&self, x: Tensor<4>) -> PositionOutput {
        let p16 = self.stage3.forward(
            self.stage2
                .forward(self.stage1.forward(self.focus.forward(x))),
        );
        let p32 = self
            .stage4
            .forward(self.spp.forward(self.down4.forward(p16.clone())));
        let lat = self.lateral.forward(p32);
        let n16 = self.fuse16.forward(Tensor::cat(
            vec![self.upsample.forward(lat.clone()), p16],
            1,
        ));
        let n32 = self
            .fuse32
            .forward(Tensor::cat(vec![self.down16.forward(n16.clone()), lat], 1));
        let raw = Tensor::cat(
            vec![
                cells(self.head16.forward(n16)),
                cells(self.head32.forward(n32)),
            ],
            1,
        );
        PositionOutput {
            probability: raw.clone().narrow(2, 0, 1),
            category: raw.clone().narrow(2, 1, 1),
            boxes: raw.narrow(2, 2, 4),
        }
    }

    /// Folds every batch norm into the convolution before it ([`Cbl::fold_batch_norm`]): the
    /// inference network the grader runs (same outputs up to float rounding, one pass over
    /// each activation map fewer); a folded network must not be trained or saved.
    pub fn fold_batch_norms(&mut self) {
        self.focus.fold_batch_norm();
        self.stage1.fold_batch_norm();
        self.stage2.fold_batch_norm();
        self.stage3.fold_batch_norm();
        self.down4.fold_batch_norm();
        self.spp.fold_batch_norm();
        self.stage4.fold_batch_norm();
        self.lateral.fold_batch_norm();
        self.fuse16.fold_batch_norm();
        self.down16.fold_batch_norm();
        self.fuse32.fold_batch_norm();
    }

    /// Multiply–accumulates of one forward pass for one image of side `input_size`.
    pub fn macs(&self, input_size: usize) -> u64 {
        let input: Chw = [3, input_size, input_size];
        let (a, s) = self.focus.macs(input);
        let (b, s) = self.stage1.macs(s);
        let (c, s) = self.stage2.macs(s);
        let (d, p16) = self.stage3.macs(s);
        let (e, s) = self.down4.macs(p16);
        let (f, s) = self.spp.macs(s);
        let (g, p32) = self.stage4.macs(s);
        let (h, lat) = self.lateral.macs(p32);
        let (i, n16) = self.fuse16.macs([lat[0] + p16[0], p16[1], p16[2]]);
        let (j, d16) = self.down16.macs(n16);
        let (k, n32) = self.fuse32.macs([d16[0] + lat[0], lat[1], lat[2]]);
        let (l, _) = self.head16.macs(n16);
        let (m, _) = self.head32.macs(n32);
        a + b + c + d + e + f + g + h + i + j + k + l + m
    }
}
