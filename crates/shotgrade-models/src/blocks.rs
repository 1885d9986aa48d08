//! The building blocks of the seed's networks.
//!
//! Background network (fig. 2–4): [`DwConv`], [`Bottleneck3x3`], [`Bottleneck5x5`].
//! Position network (fig. 5–11): [`Cbl`], [`Focus`], [`ResUnit`], [`Csp1`], [`Csp2`], [`Spp`].
//!
//! Every block can report its multiply–accumulate count for a given input shape
//! ([`Macs::macs`]), which `shotgrade models` prints; the count follows the same shape
//! arithmetic as `forward`, and the shape tests hold the two together.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::{Device, Tensor};

/// Negative slope of every LeakyReLU (the usual detector value).
pub const LEAKY_SLOPE: f64 = 0.1;

/// A feature-map shape without the batch: `[channels, height, width]`.
pub type Chw = [usize; 3];

/// Multiply–accumulate count of a block and the shape it produces.
pub trait Macs {
    fn macs(&self, input: Chw) -> (u64, Chw);
}

/// A convolution with "same"-style symmetric padding `k / 2` on each axis.
pub fn conv(
    cin: usize,
    cout: usize,
    kernel: [usize; 2],
    stride: usize,
    groups: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    let (ph, pw) = (kernel[0] / 2, kernel[1] / 2);
    Conv2dConfig::new([cin, cout], kernel)
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_bias(bias)
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .init(device)
}

fn conv_out(size: usize, kernel: usize, stride: usize) -> usize {
    (size + 2 * (kernel / 2) - kernel) / stride + 1
}

impl Macs for Conv2d {
    fn macs(&self, [c, h, w]: Chw) -> (u64, Chw) {
        let [cout, cin_per_group, kh, kw] = self.weight.dims();
        let (oh, ow) = (
            conv_out(h, kh, self.stride[0]),
            conv_out(w, kw, self.stride[1]),
        );
        debug_assert_eq!(cin_per_group * self.groups, c);
        (
            (oh * ow * cout * cin_per_group * kh * kw) as u64,
            [cout, oh, ow],
        )
    }
}

pub(crate) fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// `conv` followed by the channels `first..first + cout` of inference-mode `bn`, as one
/// convolution: each output channel's weights scaled by `γ / √(var + ε)` and a bias of
/// `β − mean · γ / √(var + ε)` (plus the conv's own bias, scaled). Same output up to float
/// rounding, one pass over the activations fewer.
pub(crate) fn fold_batch_norm(conv: &Conv2d, bn: &BatchNorm, first: usize) -> Conv2d {
    let [cout, ..] = conv.weight.dims();
    let part = |t: Tensor<1>| t.narrow(0, first, cout);
    let scale = part(bn.gamma.val()) / (part(bn.running_var.value()) + bn.epsilon).sqrt();
    let mut bias = part(bn.beta.val()) - part(bn.running_mean.value()) * scale.clone();
    if let Some(b) = &conv.bias {
        bias = bias + b.val() * scale.clone();
    }
    let mut folded = conv.clone();
    folded.weight = Param::from_tensor(conv.weight.val() * scale.reshape([cout, 1, 1, 1]));
    folded.bias = Some(Param::from_tensor(bias));
    folded
}

fn pool_out(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad - kernel) / stride + 1
}

/// `CBL` (fig. 6): Conv → BatchNorm → LeakyReLU.
#[derive(Module, Debug)]
pub struct Cbl {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    /// `conv` and `bn` as one convolution, for inference ([`Cbl::fold_batch_norm`]); never
    /// in a weights file.
    pub folded: Option<Conv2d>,
}

impl Cbl {
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        Cbl {
            conv: conv(cin, cout, [kernel, kernel], stride, 1, false, device),
            bn: bn(cout, device),
            folded: None,
        }
    }

    /// `[B, cin, H, W] → [B, cout, H / stride, W / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = match &self.folded {
            Some(folded) => folded.forward(x),
            None => self.bn.forward(self.conv.forward(x)),
        };
        leaky_relu(y, LEAKY_SLOPE)
    }

    /// Folds the batch norm into the convolution for inference (the running statistics are
    /// fixed then); training must not use a folded block.
    pub fn fold_batch_norm(&mut self) {
        self.folded = Some(fold_batch_norm(&self.conv, &self.bn, 0));
    }
}

impl Macs for Cbl {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        self.conv.macs(input)
    }
}

/// A depthwise convolution (one filter per channel) of any kernel shape — the seed's DW layers.
#[derive(Module, Debug)]
pub struct DwConv {
    pub conv: Conv2d,
}

impl DwConv {
    pub fn new(channels: usize, kernel: [usize; 2], device: &Device) -> Self {
        DwConv {
            conv: conv(channels, channels, kernel, 1, channels, false, device),
        }
    }

    /// `[B, C, H, W] → [B, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

impl Macs for DwConv {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        self.conv.macs(input)
    }
}

/// `Bottleneck_3x3` (fig. 3): three depthwise 3×3 layers, a 1×1 conv, BN, max-pool, avg-pool
/// and a residual Add.
///
/// ```text
/// main: DW3×3(cin) → Conv1×1(cin→cout) → BN → ReLU → DW3×3(cout) → BN → MaxPool 3×3/s
/// edge: AvgPool 2×2/s → DW3×3(cin) → Conv1×1(cin→cout) → BN
/// out = ReLU(main + edge)
/// ```
/// The edge path is the seed's "DW_3x3 and Conv_1x1 at the edge" that keeps gradients flowing.
#[derive(Module, Debug)]
pub struct Bottleneck3x3 {
    pub dw_in: DwConv,
    pub pointwise: Conv2d,
    pub bn_main: BatchNorm,
    pub dw_mid: DwConv,
    pub bn_mid: BatchNorm,
    pub max_pool: MaxPool2d,
    pub avg_pool: Option<AvgPool2d>,
    pub dw_edge: DwConv,
    pub pointwise_edge: Conv2d,
    pub bn_edge: BatchNorm,
}

impl Bottleneck3x3 {
    /// `stride` is 1 or 2.
    pub fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Bottleneck3x3 {
            dw_in: DwConv::new(cin, [3, 3], device),
            pointwise: conv(cin, cout, [1, 1], 1, 1, false, device),
            bn_main: bn(cout, device),
            dw_mid: DwConv::new(cout, [3, 3], device),
            bn_mid: bn(cout, device),
            max_pool: MaxPool2dConfig::new([3, 3])
                .with_strides([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            avg_pool: (stride > 1).then(|| {
                AvgPool2dConfig::new([stride, stride])
                    .with_strides([stride, stride])
                    .init()
            }),
            dw_edge: DwConv::new(cin, [3, 3], device),
            pointwise_edge: conv(cin, cout, [1, 1], 1, 1, false, device),
            bn_edge: bn(cout, device),
        }
    }

    /// `[B, cin, H, W] → [B, cout, H / stride, W / stride]` (H, W divisible by the stride)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let main = relu(
            self.bn_main
                .forward(self.pointwise.forward(self.dw_in.forward(x.clone()))),
        );
        let main = self
            .max_pool
            .forward(self.bn_mid.forward(self.dw_mid.forward(main)));
        let edge = match &self.avg_pool {
            Some(pool) => pool.forward(x),
            None => x,
        };
        let edge = self
            .bn_edge
            .forward(self.pointwise_edge.forward(self.dw_edge.forward(edge)));
        relu(main + edge)
    }
}

impl Macs for Bottleneck3x3 {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        let (a, s1) = self.dw_in.macs(input);
        let (b, s2) = self.pointwise.macs(s1);
        let (c, s3) = self.dw_mid.macs(s2);
        let stride = self.max_pool.stride[0];
        let pooled = [input[0], input[1] / stride, input[2] / stride];
        let (d, s4) = self.dw_edge.macs(pooled);
        let (e, _) = self.pointwise_edge.macs(s4);
        let out = [
            s3[0],
            pool_out(s3[1], 3, stride, 1),
            pool_out(s3[2], 3, stride, 1),
        ];
        (a + b + c + d + e, out)
    }
}

/// `Bottleneck_5x5` (fig. 4): DW 3×3, conv, BN, then depthwise 1×5, 5×1 and 5×5 layers with
/// different receptive fields, a residual Add and an avg-pool.
///
/// ```text
/// x1   = ReLU(BN(Conv1×1(cin→cout)(DW3×3(x))))
/// long = BN(DW5×1(DW1×5(x1)))          // elongated receptive fields
/// wide = BN(DW5×5(x1))
/// out  = AvgPool 2×2/s (ReLU(x1 + long + wide))
/// ```
#[derive(Module, Debug)]
pub struct Bottleneck5x5 {
    pub dw_in: DwConv,
    pub pointwise: Conv2d,
    pub bn_in: BatchNorm,
    pub dw_1x5: DwConv,
    pub dw_5x1: DwConv,
    pub bn_long: BatchNorm,
    pub dw_5x5: DwConv,
    pub bn_wide: BatchNorm,
    pub avg_pool: Option<AvgPool2d>,
}

impl Bottleneck5x5 {
    /// `stride` is 1 or 2.
    pub fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Bottleneck5x5 {
            dw_in: DwConv::new(cin, [3, 3], device),
            pointwise: conv(cin, cout, [1, 1], 1, 1, false, device),
            bn_in: bn(cout, device),
            dw_1x5: DwConv::new(cout, [1, 5], device),
            dw_5x1: DwConv::new(cout, [5, 1], device),
            bn_long: bn(cout, device),
            dw_5x5: DwConv::new(cout, [5, 5], device),
            bn_wide: bn(cout, device),
            avg_pool: (stride > 1).then(|| {
                AvgPool2dConfig::new([stride, stride])
                    .with_strides([stride, stride])
                    .init()
            }),
        }
    }

    /// `[B, cin, H, W] → [B, cout, H / stride, W / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x1 = relu(
            self.bn_in
                .forward(self.pointwise.forward(self.dw_in.forward(x))),
        );
        let long = self
            .bn_long
            .forward(self.dw_5x1.forward(self.dw_1x5.forward(x1.clone())));
        let wide = self.bn_wide.forward(self.dw_5x5.forward(x1.clone()));
        let y = relu(x1 + long + wide);
        match &self.avg_pool {
            Some(pool) => pool.forward(y),
            None => y,
        }
    }
}

impl Macs for Bottleneck5x5 {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        let (a, s1) = self.dw_in.macs(input);
        let (b, s2) = self.pointwise.macs(s1);
        let (c, _) = self.dw_1x5.macs(s2);
        let (d, _) = self.dw_5x1.macs(s2);
        let (e, _) = self.dw_5x5.macs(s2);
        let stride = self.avg_pool.as_ref().map_or(1, |p| p.stride[0]);
        (a + b + c + d + e, [s2[0], s2[1] / stride, s2[2] / stride])
    }
}

/// `Focus` (fig. 7): slices every 2×2 pixel block into four channel groups (`3 → 12` channels
/// at half resolution, no information lost), concatenates them, and applies a [`Cbl`].
#[derive(Module, Debug)]
pub struct Focus {
    pub cbl: Cbl,
}

impl Focus {
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Focus {
            cbl: Cbl::new(4 * cin, cout, 3, 1, device),
        }
    }

    /// `[B, C, H, W] → [B, cout, H / 2, W / 2]` (H and W even)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        // [B, C, H/2, 2, W/2, 2] → [B, 2, 2, C, H/2, W/2] → [B, 4C, H/2, W/2]
        let sliced = x
            .reshape([b, c, h / 2, 2, w / 2, 2])
            .permute([0, 3, 5, 1, 2, 4])
            .reshape([b, 4 * c, h / 2, w / 2]);
        self.cbl.forward(sliced)
    }

    pub fn fold_batch_norm(&mut self) {
        self.cbl.fold_batch_norm();
    }
}

impl Macs for Focus {
    fn macs(&self, [c, h, w]: Chw) -> (u64, Chw) {
        self.cbl.macs([4 * c, h / 2, w / 2])
    }
}

/// The residual component of `CSP1_X` (fig. 10): CBL 1×1 → CBL 3×3 → Add.
#[derive(Module, Debug)]
pub struct ResUnit {
    pub reduce: Cbl,
    pub expand: Cbl,
}

impl ResUnit {
    pub fn new(channels: usize, device: &Device) -> Self {
        ResUnit {
            reduce: Cbl::new(channels, channels, 1, 1, device),
            expand: Cbl::new(channels, channels, 3, 1, device),
        }
    }

    /// `[B, C, H, W] → [B, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.expand.forward(self.reduce.forward(x))
    }

    pub fn fold_batch_norm(&mut self) {
        self.reduce.fold_batch_norm();
        self.expand.fold_batch_norm();
    }
}

impl Macs for ResUnit {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        let (a, s) = self.reduce.macs(input);
        let (b, s) = self.expand.macs(s);
        (a + b, s)
    }
}

/// The inner path of a CSP block: `X` residual units (`CSP1_X`) or `2X` CBLs (`CSP2_X`).
#[derive(Module, Debug)]
pub enum CspInner {
    Residual(Vec<ResUnit>),
    Plain(Vec<Cbl>),
}

/// Shared body of `CSP1_X` (fig. 9) and `CSP2_X` (fig. 11): an optional downsampling CBL, then
/// two paths — `CBL 1×1 → inner → Conv 1×1` and a plain `Conv 1×1` — concatenated,
/// batch-normalised, LeakyReLU, and fused by a CBL 1×1.
#[derive(Module, Debug)]
pub struct CspBody {
    pub down: Option<Cbl>,
    pub enter: Cbl,
    pub inner: CspInner,
    pub inner_out: Conv2d,
    pub shortcut: Conv2d,
    pub bn: BatchNorm,
    pub fuse: Cbl,
    /// `inner_out` and `shortcut` with their halves of `bn` folded in, for inference.
    pub folded: Option<[Conv2d; 2]>,
}

impl CspBody {
    fn new(
        cin: usize,
        cout: usize,
        downsample: bool,
        inner: impl FnOnce(usize) -> CspInner,
        device: &Device,
    ) -> Self {
        let hidden = (cout / 2).max(1);
        let c_in = if downsample { cout } else { cin };
        CspBody {
            down: downsample.then(|| Cbl::new(cin, cout, 3, 2, device)),
            enter: Cbl::new(c_in, hidden, 1, 1, device),
            inner: inner(hidden),
            inner_out: conv(hidden, hidden, [1, 1], 1, 1, false, device),
            shortcut: conv(c_in, hidden, [1, 1], 1, 1, false, device),
            bn: bn(2 * hidden, device),
            fuse: Cbl::new(2 * hidden, cout, 1, 1, device),
            folded: None,
        }
    }

    fn fold_batch_norm(&mut self) {
        if let Some(down) = &mut self.down {
            down.fold_batch_norm();
        }
        self.enter.fold_batch_norm();
        match &mut self.inner {
            CspInner::Residual(units) => units.iter_mut().for_each(ResUnit::fold_batch_norm),
            CspInner::Plain(cbls) => cbls.iter_mut().for_each(Cbl::fold_batch_norm),
        }
        let [hidden, ..] = self.inner_out.weight.dims();
        self.folded = Some([
            fold_batch_norm(&self.inner_out, &self.bn, 0),
            fold_batch_norm(&self.shortcut, &self.bn, hidden),
        ]);
        self.fuse.fold_batch_norm();
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.down {
            Some(down) => down.forward(x),
            None => x,
        };
        let mut y = self.enter.forward(x.clone());
        match &self.inner {
            CspInner::Residual(units) => units.iter().for_each(|u| y = u.forward(y.clone())),
            CspInner::Plain(cbls) => cbls.iter().for_each(|c| y = c.forward(y.clone())),
        }
        let joined = match &self.folded {
            Some([inner_out, shortcut]) => {
                Tensor::cat(vec![inner_out.forward(y), shortcut.forward(x)], 1)
            }
            None => self.bn.forward(Tensor::cat(
                vec![self.inner_out.forward(y), self.shortcut.forward(x)],
                1,
            )),
        };
        self.fuse.forward(leaky_relu(joined, LEAKY_SLOPE))
    }

    fn macs(&self, input: Chw) -> (u64, Chw) {
        let (mut total, x) = match &self.down {
            Some(down) => down.macs(input),
            None => (0, input),
        };
        let (a, mut s) = self.enter.macs(x);
        total += a;
        match &self.inner {
            CspInner::Residual(units) => units.iter().for_each(|u| {
                let (m, o) = u.macs(s);
                total += m;
                s = o;
            }),
            CspInner::Plain(cbls) => cbls.iter().for_each(|c| {
                let (m, o) = c.macs(s);
                total += m;
                s = o;
            }),
        }
        let (b, s1) = self.inner_out.macs(s);
        let (c, _) = self.shortcut.macs(x);
        let (d, out) = self.fuse.macs([2 * s1[0], s1[1], s1[2]]);
        (total + b + c + d, out)
    }
}

/// `CSP1_X` (fig. 9): downsampling CBL, then the CSP body with `X` [`ResUnit`]s.
#[derive(Module, Debug)]
pub struct Csp1 {
    pub body: CspBody,
}

impl Csp1 {
    pub fn new(cin: usize, cout: usize, units: usize, downsample: bool, device: &Device) -> Self {
        Csp1 {
            body: CspBody::new(
                cin,
                cout,
                downsample,
                |h| CspInner::Residual((0..units).map(|_| ResUnit::new(h, device)).collect()),
                device,
            ),
        }
    }

    /// `[B, cin, H, W] → [B, cout, H / s, W / s]`, `s` = 2 when downsampling, else 1.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.body.forward(x)
    }

    pub fn fold_batch_norm(&mut self) {
        self.body.fold_batch_norm();
    }
}

impl Macs for Csp1 {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        self.body.macs(input)
    }
}

/// `CSP2_X` (fig. 11): the CSP body with `2X` CBLs (alternating 1×1 and 3×3) instead of
/// residual units.
#[derive(Module, Debug)]
pub struct Csp2 {
    pub body: CspBody,
}

impl Csp2 {
    pub fn new(cin: usize, cout: usize, x: usize, downsample: bool, device: &Device) -> Self {
        Csp2 {
            body: CspBody::new(
                cin,
                cout,
                downsample,
                |h| {
                    CspInner::Plain(
                        (0..2 * x)
                            .map(|i| Cbl::new(h, h, if i % 2 == 0 { 1 } else { 3 }, 1, device))
                            .collect(),
                    )
                },
                device,
            ),
        }
    }

    /// `[B, cin, H, W] → [B, cout, H / s, W / s]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.body.forward(x)
    }

    pub fn fold_batch_norm(&mut self) {
        self.body.fold_batch_norm();
    }
}

impl Macs for Csp2 {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        self.body.macs(input)
    }
}

/// `SPP` (fig. 8): CBL 1×1, max-pools of several sizes (stride 1, same size) side by side with
/// the identity, concatenated, fused by a CBL 1×1 — multi-scale context at the deepest level.
#[derive(Module, Debug)]
pub struct Spp {
    pub reduce: Cbl,
    pub pools: Vec<MaxPool2d>,
    pub fuse: Cbl,
}

impl Spp {
    /// `pool_sizes` must be odd (e.g. 5, 9, 13).
    pub fn new(cin: usize, cout: usize, pool_sizes: &[usize], device: &Device) -> Self {
        let hidden = (cin / 2).max(1);
        Spp {
            reduce: Cbl::new(cin, hidden, 1, 1, device),
            pools: pool_sizes
                .iter()
                .map(|&k| {
                    MaxPool2dConfig::new([k, k])
                        .with_strides([1, 1])
                        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
                        .init()
                })
                .collect(),
            fuse: Cbl::new(hidden * (pool_sizes.len() + 1), cout, 1, 1, device),
        }
    }

    /// `[B, cin, H, W] → [B, cout, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.reduce.forward(x);
        let mut parts = vec![x.clone()];
        parts.extend(self.pools.iter().map(|p| p.forward(x.clone())));
        self.fuse.forward(Tensor::cat(parts, 1))
    }

    pub fn fold_batch_norm(&mut self) {
        self.reduce.fold_batch_norm();
        self.fuse.fold_batch_norm();
    }
}

impl Macs for Spp {
    fn macs(&self, input: Chw) -> (u64, Chw) {
        let (a, s) = self.reduce.macs(input);
        let (b, out) = self.fuse.macs([s[0] * (self.pools.len() + 1), s[1], s[2]]);
        (a + b, out)
    }
}
