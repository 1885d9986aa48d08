//! The experience network's losses: regression of both heads, the real pairs' loss and the
//! twin variants (module docs of [`super`]).

use burn::tensor::{Device, Tensor, TensorData};

use super::TwinLoss;
use super::pairs::RealPair;

/// Margin and weight of the `ranked` hinge (scores in 0–1).
const HINGE_MARGIN: f32 = 0.05;
const HINGE_WEIGHT: f32 = 2.0;

/// Weight of the sharpness index in the aesthetic label (see the compositor's label).
const AESTHETIC_SHARPNESS_WEIGHT: f32 = 0.20;

/// Per-sample mean squared error of both heads. `[n, 2]` predictions and labels → `[n]`.
pub(super) fn regression(pred: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    (pred - labels).powf_scalar(2.0).mean_dim(1)
}

/// The loss on real pairs from `(aesthetic, noise)` predictions of the clean copies and the
/// degraded copies (`[n, 2]` each): noise regression on both, and the degraded copy's
/// aesthetic pulled to the clean copy's (held fixed) minus the sharpness share of the damage
/// it added.
pub(super) fn real_pair_loss(
    clean: Tensor<2>,
    degraded: Tensor<2>,
    pairs: &[RealPair],
    device: &Device,
) -> Tensor<1> {
    let n = pairs.len();
    let column = |f: fn(&RealPair) -> f32| {
        let v: Vec<f32> = pairs.iter().map(f).collect();
        Tensor::<2>::from_data(TensorData::new(v, [n, 1]), device)
    };
    let c = column(|p| p.clean_damage);
    let d = column(|p| p.damage);
    let noise_clean = (clean.clone().narrow(1, 1, 1) - (c.clone().neg() + 1.0)).powf_scalar(2.0);
    let noise_degraded =
        (degraded.clone().narrow(1, 1, 1) - (d.clone().neg() + 1.0)).powf_scalar(2.0);
    let aesthetic_target = (clean.narrow(1, 0, 1).detach()
        - (d - c).clamp_min(0.0) * AESTHETIC_SHARPNESS_WEIGHT)
        .clamp_min(0.0);
    let aesthetic = (degraded.narrow(1, 0, 1) - aesthetic_target).powf_scalar(2.0);
    (noise_clean + noise_degraded + aesthetic).mean() / 2.0
}

/// The twin variants' loss over `n` pairs from the twin's predictions `twin` on the clean
/// images and the main network's `main` on the degraded copies (`[n, 2]` each, in `[0, 1]`)
/// and their labels (module docs of [`super`]).
pub(super) fn twin_loss(
    kind: TwinLoss,
    twin: Tensor<2>,
    main: Tensor<2>,
    twin_labels: Tensor<2>,
    main_labels: Tensor<2>,
) -> Tensor<1> {
    let n = twin.dims()[0];
    let vt = twin.clone().mean_dim(1); // the twin's visual score [n, 1]
    let vm = main.clone().mean_dim(1);
    let lt = regression(twin, twin_labels); // [n, 1]
    let lm = regression(main, main_labels);
    let gate = vm.clone().detach().greater(vt.clone().detach()).float(); // 1 where twin < main
    match kind {
        TwinLoss::Seed => ((lt - lm).abs() * gate).sum() / n as f64,
        TwinLoss::SeedSum => ((lt + lm) * gate).sum() / n as f64,
        TwinLoss::Ranked => {
            (lt + lm + (vm - vt + HINGE_MARGIN).clamp_min(0.0) * HINGE_WEIGHT).mean()
        }
        // No twin: the main network's regression alone (training with `none` also feeds it the
        // clean images; see `NoTwinBatch`).
        TwinLoss::None => lm.mean(),
    }
}
