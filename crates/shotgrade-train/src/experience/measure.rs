//! Measuring an experience network on held-out pairs.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use shotgrade_models::ExperienceNet;

use super::pairs::{ExperienceExample, Pair};
use crate::metrics::{plcc, srcc};

/// Held-out measurements of an experience network on synthetic pairs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperienceMetrics {
    /// SRCC between the noise label and the noise sub-score, over clean and degraded images.
    pub noise_srcc: f32,
    pub noise_plcc: f32,
    /// SRCC between the aesthetic label and the aesthetic sub-score.
    pub aesthetic_srcc: f32,
    /// Share of pairs where the clean image's visual score beats its degraded copy's.
    pub pair_accuracy: f32,
    pub pairs: usize,
}

pub(super) fn tensor(
    examples: &[&ExperienceExample],
    side: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<2>) {
    let mut data = Vec::with_capacity(examples.len() * 6 * side * side);
    let mut labels = Vec::with_capacity(examples.len() * 2);
    for e in examples {
        data.extend_from_slice(&e.input);
        labels.extend_from_slice(&[e.aesthetic, e.noise]);
    }
    let n = examples.len();
    (
        Tensor::from_data(TensorData::new(data, [n, 3, side, 2 * side]), device),
        Tensor::from_data(TensorData::new(labels, [n, 2]), device),
    )
}

/// `(aesthetic, noise)` predictions in `[0, 1]` of a (non-autodiff) network.
pub fn predict(
    net: &ExperienceNet,
    examples: &[&ExperienceExample],
    side: usize,
    device: &Device,
) -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(32) {
        let (x, _) = tensor(chunk, side, device);
        let o = net.forward(x);
        let a: Vec<f32> = o.aesthetic.into_data().iter::<f32>().collect();
        let n: Vec<f32> = o.noise.into_data().iter::<f32>().collect();
        out.extend(a.into_iter().zip(n));
    }
    out
}

/// Noise/aesthetic correlations and clean > degraded pair accuracy.
pub fn evaluate_experience(
    net: &ExperienceNet,
    pairs: &[Pair],
    side: usize,
    device: &Device,
) -> ExperienceMetrics {
    let clean: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.clean).collect();
    let degraded: Vec<&ExperienceExample> = pairs.iter().map(|p| &p.degraded).collect();
    let pc = predict(net, &clean, side, device);
    let pd = predict(net, &degraded, side, device);
    let all_examples: Vec<&ExperienceExample> = clean.iter().chain(&degraded).copied().collect();
    let all_pred: Vec<(f32, f32)> = pc.iter().chain(&pd).copied().collect();
    let noise_label: Vec<f32> = all_examples.iter().map(|e| e.noise).collect();
    let noise_pred: Vec<f32> = all_pred.iter().map(|p| p.1).collect();
    let aes_label: Vec<f32> = all_examples.iter().map(|e| e.aesthetic).collect();
    let aes_pred: Vec<f32> = all_pred.iter().map(|p| p.0).collect();
    let wins = pc
        .iter()
        .zip(&pd)
        .filter(|(c, d)| c.0 + c.1 > d.0 + d.1)
        .count();
    ExperienceMetrics {
        noise_srcc: srcc(&noise_label, &noise_pred),
        noise_plcc: plcc(&noise_label, &noise_pred),
        aesthetic_srcc: srcc(&aes_label, &aes_pred),
        pair_accuracy: wins as f32 / pairs.len().max(1) as f32,
        pairs: pairs.len(),
    }
}
