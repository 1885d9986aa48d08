//! Training the position network (S130): objectness, box and subject losses on the grid cells
//! responsible for the product, YOLO-style.
//!
//! Targets: on each output level the cell holding the box centre and its two nearest
//! neighbours (one per axis) are positives — the decode lets a centre sit up to half a cell
//! outside its cell, so neighbours can predict it too, which triples the positives and speeds
//! up learning. Losses:
//! * objectness: binary cross-entropy on every cell (positives weighted `POSITIVE_WEIGHT`);
//! * box: 1 − GIoU of the decoded box (in the cell's units) plus a light smooth-L1 of the log
//!   sizes; the objectness target of a positive is raised with its current IoU;
//! * subject: binary cross-entropy of the subject logit on positive cells.

use burn::optim::AdamWConfig;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use shotgrade_core::{BBox, DetectionDecoder, GridLevel, iou};
use shotgrade_models::position::{MAX_DETECTIONS, NMS_IOU};
use shotgrade_models::{PositionNet, PositionNetConfig, PositionOutput};
use shotgrade_synth::labels::Part;
use shotgrade_synth::{Assets, ComposeSettings, SplitMix64, compose};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::data::TEST_SEED_BASE;
use crate::error::TrainError;
use crate::fit::{Evaluation, Gradients, Task, fit};
use crate::metrics::{Prediction, map_50_and_50_95};
use crate::parallel::{deal, sharded_gradients};
use crate::position_real::{BoxedPhoto, load_boxed, real_batch, real_example};
use crate::schedule::{CheckpointFiles, ComputeDevice, RunSettings, starting_net, write_report};

/// Weight of a positive cell's objectness loss relative to the mean over negatives.
pub const POSITIVE_WEIGHT: f32 = 5.0;

/// Objectness target of a positive cell whose box does not overlap the product at all.
const IOU_FLOOR: f32 = 0.3;

/// One preprocessed example with its dense targets.
#[derive(Debug, Clone)]
pub struct PositionExample {
    /// `3 × S × S` letterboxed input.
    pub input: Vec<f32>,
    /// Product box on the canvas.
    pub bbox: BBox,
    pub subject: bool,
}

/// Dense per-cell targets for one image: objectness, positive mask, 4 box targets, subject.
#[derive(Debug, Clone, PartialEq)]
pub struct CellTargets {
    pub objectness: Vec<f32>,
    pub boxes: Vec<f32>,
    pub subject: Vec<f32>,
}

/// Builds the dense targets of one box over all levels (see the module docs).
pub fn cell_targets(levels: &[GridLevel], bbox: &BBox, subject: bool) -> CellTargets {
    let cells: usize = levels.iter().map(GridLevel::cells).sum();
    let mut t = CellTargets {
        objectness: vec![0.0; cells],
        boxes: vec![0.0; cells * 4],
        subject: vec![0.0; cells],
    };
    let mut offset = 0;
    for level in levels {
        if let Some((row, col, _)) = level.encode(bbox) {
            let s = level.stride as f32;
            let (cx, cy) = bbox.center();
            let (fx, fy) = (cx / s - col as f32, cy / s - row as f32);
            let dc: i64 = if fx < 0.5 { -1 } else { 1 };
            let dr: i64 = if fy < 0.5 { -1 } else { 1 };
            for (r, c) in [
                (row as i64, col as i64),
                (row as i64, col as i64 + dc),
                (row as i64 + dr, col as i64),
            ] {
                if r < 0 || c < 0 || r >= level.rows as i64 || c >= level.cols as i64 {
                    continue;
                }
                let i = offset + (r as u32 * level.cols + c as u32) as usize;
                // Encode relative to this cell: centre offset within (−0.5, 1.5) cells → (0, 1).
                let ox = ((cx / s - c as f32 + 0.5) / 2.0).clamp(0.0, 1.0);
                let oy = ((cy / s - r as f32 + 0.5) / 2.0).clamp(0.0, 1.0);
                t.objectness[i] = 1.0;
                t.subject[i] = if subject { 1.0 } else { 0.0 };
                t.boxes[i * 4..i * 4 + 4].copy_from_slice(&[
                    ox,
                    oy,
                    (bbox.width().max(1.0) / s).ln(),
                    (bbox.height().max(1.0) / s).ln(),
                ]);
            }
        }
        offset += level.cells();
    }
    t
}

/// Composites for `seeds`, letterboxed to `size`, with canvas boxes.
pub fn synthetic_position(
    assets: &Assets,
    seeds: &[u64],
    settings: &ComposeSettings,
    size: u32,
) -> Vec<PositionExample> {
    seeds
        .par_iter()
        .map_init(
            || crate::data::preprocessor(size),
            |pre, &seed| {
                let sample = compose(assets, seed, settings);
                let (input, lb) = pre.position_input(&sample.image);
                let (bbox, subject) = match &sample.label.product {
                    Some(p) => (lb.to_canvas(&p.bbox), p.subject),
                    None => (BBox::new(0.0, 0.0, 0.0, 0.0), false),
                };
                PositionExample {
                    input,
                    bbox,
                    subject,
                }
            },
        )
        .collect()
}

/// Settings of a position training run.
#[derive(Debug, Clone)]
pub struct PositionTrainSettings {
    /// Folders, length, schedule and checkpointing of the run.
    pub run: RunSettings,
    pub compose: ComposeSettings,
    pub config: PositionNetConfig,
    /// The labelled real photos (`data/real`): with them, a share of every batch comes from
    /// the boxed photos of the `train` part, and checkpoints are chosen by the mean of
    /// synthetic mAP@0.5 and the top detection's IoU on the boxed `validation` photos.
    pub real_labels: Option<PathBuf>,
    /// Share of each batch taken from the real `train` photos when `real_labels` is set.
    pub real_fraction: f32,
}

impl Default for PositionTrainSettings {
    fn default() -> Self {
        PositionTrainSettings {
            run: RunSettings {
                assets: PathBuf::from("../shared/assets"),
                out: PathBuf::from("runs/position"),
                steps: 2000,
                // 16 per shard on two cores: the shipped recipe (models/README.md).
                batch_size: 32,
                learning_rate: 2e-3,
                seed: 1,
                eval_every: 200,
                patience: 6,
                validation_size: 200,
                init_from: None,
                device: ComputeDevice::Cpu,
                keep_checkpoints: false,
                guard: Default::default(),
                resume: false,
                command: Vec::new(),
            },
            compose: ComposeSettings {
                min_side: 256,
                max_side: 512,
                degrade_probability: 0.3,
                ..ComposeSettings::default()
            },
            config: PositionNetConfig::new(),
            real_labels: None,
            real_fraction: 0.25,
        }
    }
}

/// Held-out measurements of a position network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PositionMetrics {
    pub map_50: f32,
    pub map_50_95: f32,
    /// Share of images whose top detection's subject call matches the label.
    pub subject_accuracy: f32,
    /// Mean IoU of the top detection with the product box (0 when nothing is found).
    pub mean_iou: f32,
    pub count: usize,
    /// Mean IoU of the top detection on the boxed real `validation` photos, when the run has
    /// real labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_mean_iou: Option<f32>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PositionReport {
    pub steps_run: usize,
    pub best_step: usize,
    pub seconds: f64,
    pub images_seen: usize,
    pub synthetic_validation: PositionMetrics,
    pub settings: String,
}

/// Raw outputs `[n, cells × 6]` of a (non-autodiff) network on letterboxed `3 × S × S`
/// inputs, run in batches of 32.
pub(crate) fn raw_outputs<'a>(
    net: &PositionNet,
    inputs: impl ExactSizeIterator<Item = &'a [f32]>,
    size: usize,
    device: &Device,
) -> Vec<Vec<f32>> {
    let inputs: Vec<&[f32]> = inputs.collect();
    let mut out = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(32) {
        let data: Vec<f32> = chunk.iter().flat_map(|i| i.iter().copied()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, size, size]), device);
        let flat: Vec<f32> = net.forward(x).packed().into_data().iter::<f32>().collect();
        let per = flat.len() / chunk.len().max(1);
        out.extend(flat.chunks(per.max(1)).map(<[f32]>::to_vec));
    }
    out
}

/// mAP, subject accuracy and mean IoU of the top detection on `examples`.
pub fn evaluate_position(
    net: &PositionNet,
    levels: &[GridLevel],
    examples: &[PositionExample],
    size: usize,
    device: &Device,
) -> PositionMetrics {
    // mAP ranks every detection, so it keeps fainter ones than grading does.
    let decoder = DetectionDecoder {
        levels: levels.to_vec(),
        min_probability: 0.01,
        iou_threshold: NMS_IOU,
        max_detections: MAX_DETECTIONS,
    };
    let mut predictions = Vec::new();
    let mut truths = Vec::new();
    let (mut subject_ok, mut iou_sum) = (0usize, 0.0f32);
    for (i, (raw, e)) in raw_outputs(
        net,
        examples.iter().map(|e| e.input.as_slice()),
        size,
        device,
    )
    .iter()
    .zip(examples)
    .enumerate()
    {
        let found = decoder.decode(raw);
        truths.push((i, e.bbox));
        predictions.extend(found.iter().map(|d| Prediction {
            image: i,
            bbox: d.bbox,
            score: d.probability,
        }));
        if let Some(top) = found.first() {
            iou_sum += iou(&top.bbox, &e.bbox);
            if (top.subject_probability >= 0.5) == e.subject {
                subject_ok += 1;
            }
        }
    }
    let (map_50, map_50_95) = map_50_and_50_95(&predictions, &truths);
    let n = examples.len().max(1) as f32;
    PositionMetrics {
        map_50,
        map_50_95,
        subject_accuracy: subject_ok as f32 / n,
        mean_iou: iou_sum / n,
        count: examples.len(),
        real_mean_iou: None,
    }
}

/// Binary cross-entropy with logits, elementwise: `max(x, 0) − x·y + ln(1 + e^(−|x|))`.
fn bce_with_logits(x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
    x.clone().clamp_min(0.0) - x.clone() * y + (x.abs().neg().exp() + 1.0).log()
}

/// Box overlap in a cell's own units, from raw `[tx, ty, tw, th]` predictions and the
/// `[ox, oy, ln w, ln h]` targets of [`cell_targets`]: `(IoU, GIoU)`, each `[n, cells, 1]`.
///
/// Both boxes are decoded exactly as [`GridLevel::decode`] does, divided by the stride; IoU
/// does not change under that scaling.
fn cell_overlap(raw: Tensor<3>, target: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let centre = |t: Tensor<3>| t * 2.0 - 0.5;
    let px = centre(sigmoid(raw.clone().narrow(2, 0, 1)));
    let py = centre(sigmoid(raw.clone().narrow(2, 1, 1)));
    let pw = raw.clone().narrow(2, 2, 1).clamp(-6.0, 6.0).exp();
    let ph = raw.narrow(2, 3, 1).clamp(-6.0, 6.0).exp();
    let tx = centre(target.clone().narrow(2, 0, 1));
    let ty = centre(target.clone().narrow(2, 1, 1));
    let tw = target.clone().narrow(2, 2, 1).exp();
    let th = target.narrow(2, 3, 1).exp();
    let edges = |c: Tensor<3>, half: Tensor<3>| (c.clone() - half.clone(), c + half);
    let (px0, px1) = edges(px, pw.clone() / 2.0);
    let (py0, py1) = edges(py, ph.clone() / 2.0);
    let (tx0, tx1) = edges(tx, tw.clone() / 2.0);
    let (ty0, ty1) = edges(ty, th.clone() / 2.0);
    let overlap = |a0: Tensor<3>, a1: Tensor<3>, b0: Tensor<3>, b1: Tensor<3>| {
        (a1.min_pair(b1) - a0.max_pair(b0)).clamp_min(0.0)
    };
    let span = |a0: Tensor<3>, a1: Tensor<3>, b0: Tensor<3>, b1: Tensor<3>| {
        a1.max_pair(b1) - a0.min_pair(b0)
    };
    let inter = overlap(px0.clone(), px1.clone(), tx0.clone(), tx1.clone())
        * overlap(py0.clone(), py1.clone(), ty0.clone(), ty1.clone());
    let union = pw * ph + tw * th - inter.clone() + 1e-6;
    let hull = span(px0, px1, tx0, tx1) * span(py0, py1, ty0, ty1) + 1e-6;
    let iou = inter / union.clone();
    let giou = iou.clone() - (hull.clone() - union) / hull;
    (iou, giou)
}

/// One batch's input and dense targets as tensors: `[n, 3, S, S]` input, `[n, cells]`
/// objectness and subject, `[n, cells, 4]` boxes ([`cell_targets`] of each example).
struct BatchTensors {
    input: Tensor<4>,
    objectness: Tensor<2>,
    boxes: Tensor<3>,
    subject: Tensor<2>,
}

impl BatchTensors {
    fn new(
        examples: &[&PositionExample],
        levels: &[GridLevel],
        size: usize,
        device: &Device,
    ) -> Self {
        let n = examples.len();
        let cells: usize = levels.iter().map(GridLevel::cells).sum();
        let mut input = Vec::with_capacity(n * 3 * size * size);
        let (mut obj, mut boxes, mut subj) = (
            Vec::with_capacity(n * cells),
            Vec::with_capacity(n * cells * 4),
            Vec::with_capacity(n * cells),
        );
        for e in examples {
            input.extend_from_slice(&e.input);
            let t = cell_targets(levels, &e.bbox, e.subject);
            obj.extend(t.objectness);
            boxes.extend(t.boxes);
            subj.extend(t.subject);
        }
        BatchTensors {
            input: Tensor::from_data(TensorData::new(input, [n, 3, size, size]), device),
            objectness: Tensor::from_data(TensorData::new(obj, [n, cells]), device),
            boxes: Tensor::from_data(TensorData::new(boxes, [n, cells, 4]), device),
            subject: Tensor::from_data(TensorData::new(subj, [n, cells]), device),
        }
    }
}

/// The training loss of one batch (see the module docs); `obj_t`, `subj_t` are `[n, cells]`,
/// `box_t` is `[n, cells, 4]`.
fn position_loss(
    out: PositionOutput,
    obj_t: Tensor<2>,
    box_t: Tensor<3>,
    subj_t: Tensor<2>,
) -> Tensor<1> {
    let [n, cells, _] = box_t.dims();
    let obj_logit = out.probability.reshape([n, cells]);
    let subj_logit = out.category.reshape([n, cells]);
    let positives = obj_t.clone().sum().clamp_min(1.0);
    let mask3 = obj_t.clone().reshape([n, cells, 1]);

    // Box: 1 − GIoU on positive cells, plus a light smooth-L1 on the log sizes that keeps the
    // size logits moving while the boxes do not overlap yet.
    let (iou_now, giou) = cell_overlap(out.boxes.clone(), box_t.clone());
    let size_err = (out.boxes.narrow(2, 2, 2) - box_t.narrow(2, 2, 2)).abs();
    let smooth =
        size_err.clone().clamp_max(1.0).powf_scalar(2.0) * 0.5 + (size_err - 1.0).clamp_min(0.0);
    let box_loss =
        (((giou.neg() + 1.0) + smooth.sum_dim(2) * 0.25) * mask3).sum() / positives.clone();

    // Objectness: positives aim at `IOU_FLOOR + (1 − IOU_FLOOR) · IoU` of their current box, so
    // the probability ranks well-placed boxes first (what mAP rewards).
    let quality =
        iou_now.detach().reshape([n, cells]).clamp(0.0, 1.0) * (1.0 - IOU_FLOOR) + IOU_FLOOR;
    let obj_target = obj_t.clone() * quality;
    let obj_bce = bce_with_logits(obj_logit, obj_target);
    let weights = obj_t.clone() * (POSITIVE_WEIGHT - 1.0) + 1.0;
    let obj_loss = (obj_bce * weights).sum() / (n * cells) as f64 * 10.0;
    let subj_loss = (bce_with_logits(subj_logit, subj_t) * obj_t).sum() / positives;
    obj_loss + box_loss * 2.0 + subj_loss
}

/// Position training as a [`Task`]: fresh composites every step, the loss of the module docs
/// over the batch dealt into shards, mAP@0.5 on held-out composites as the selection key.
struct PositionTask {
    assets: Assets,
    compose: ComposeSettings,
    size: usize,
    levels: Vec<GridLevel>,
    /// First seed of the training stream.
    stream: u64,
    batch_size: usize,
    shards: usize,
    train_device: Device,
    eval_device: Device,
    validation: Vec<PositionExample>,
    /// Boxed real `train` photos and how many of them go into each batch.
    real: Vec<BoxedPhoto>,
    real_per_batch: usize,
    real_rng: SplitMix64,
    real_validation: Vec<PositionExample>,
    files: CheckpointFiles,
}

impl Task for PositionTask {
    type Model = PositionNet;
    type Batch = Vec<PositionExample>;
    type Metrics = PositionMetrics;

    /// Composites follow from the step; the real photos' draws from their stream.
    fn stream_state(&self) -> Vec<u64> {
        vec![self.real_rng.state()]
    }

    fn restore_stream(&mut self, state: &[u64]) {
        if let [real] = state {
            self.real_rng = SplitMix64::new(*real);
        }
    }

    fn batch(&mut self, step: usize) -> Vec<PositionExample> {
        let base = self.stream + (step * self.batch_size) as u64;
        let seeds: Vec<u64> = (0..(self.batch_size - self.real_per_batch) as u64)
            .map(|i| (base + i) % TEST_SEED_BASE)
            .collect();
        let mut batch = synthetic_position(&self.assets, &seeds, &self.compose, self.size as u32);
        batch.extend(real_batch(
            &self.real,
            self.real_per_batch,
            &mut self.real_rng,
            self.size as u32,
        ));
        batch
    }

    fn gradients(&mut self, model: &PositionNet, batch: Vec<PositionExample>) -> Gradients {
        let shards = deal(batch.iter().collect(), self.shards);
        let step = sharded_gradients(model, &self.train_device, shards, |net, shard| {
            let t = BatchTensors::new(&shard, &self.levels, self.size, &self.train_device);
            (
                position_loss(net.forward(t.input), t.objectness, t.boxes, t.subject),
                (),
            )
        });
        Gradients {
            grads: step.grads,
            loss: step.loss,
        }
    }

    fn evaluate(&mut self, net: &PositionNet) -> Evaluation<PositionMetrics> {
        let mut m = evaluate_position(
            net,
            &self.levels,
            &self.validation,
            self.size,
            &self.eval_device,
        );
        let mut summary = format!(
            "mAP@0.5 {:.4}, mAP@0.5:0.95 {:.4}, subject accuracy {:.4}, mean IoU {:.4}",
            m.map_50, m.map_50_95, m.subject_accuracy, m.mean_iou
        );
        let mut key = m.map_50;
        if !self.real_validation.is_empty() {
            let real = evaluate_position(
                net,
                &self.levels,
                &self.real_validation,
                self.size,
                &self.eval_device,
            );
            summary += &format!(
                "; real validation IoU {:.4} ({} photos)",
                real.mean_iou, real.count
            );
            key = (m.map_50 + real.mean_iou) / 2.0;
            m.real_mean_iou = Some(real.mean_iou);
        }
        Evaluation {
            key,
            summary,
            metrics: m,
        }
    }

    fn checkpoint(&mut self, net: &PositionNet, step: usize, best: bool) -> Result<(), TrainError> {
        self.files.write(net, step, best)
    }
}

/// Trains, keeps the best network by synthetic mAP@0.5 (averaged with the real validation IoU
/// when the run has real labels), writes `position.safetensors` and
/// `position.metrics.json`.
pub fn train_position(
    settings: &PositionTrainSettings,
    log: &mut dyn FnMut(&str),
) -> Result<PositionReport, TrainError> {
    let (train_device, eval_device) = settings.run.devices()?;
    let (model, config) =
        starting_net::<PositionNet>(&settings.run, &settings.config, &train_device)?;
    if settings.run.batch_size < 1 || settings.run.eval_every == 0 {
        return Err(TrainError::Settings(
            "need batch_size >= 1 and eval_every >= 1".into(),
        ));
    }
    let started = Instant::now();
    let size = config.input_size;
    log("loading assets…");
    let assets = Assets::load(&settings.run.assets, 320, 640)?;
    let val_seeds: Vec<u64> = (0..settings.run.validation_size as u64)
        .map(|i| TEST_SEED_BASE + 1_000_000 + i)
        .collect();
    let validation = synthetic_position(&assets, &val_seeds, &settings.compose, size as u32);
    let (real, real_validation) = match &settings.real_labels {
        Some(labels) => {
            log("loading the boxed real photos…");
            let train = load_boxed(labels, &settings.run.assets, Part::Train)?;
            let mut pre = crate::data::preprocessor(size as u32);
            let validation = load_boxed(labels, &settings.run.assets, Part::Validation)?
                .iter()
                .map(|p| real_example(&mut pre, p, false))
                .collect();
            (train, validation)
        }
        None => (Vec::new(), Vec::new()),
    };
    let real_per_batch = if real.is_empty() {
        0
    } else {
        ((settings.run.batch_size as f32 * settings.real_fraction).round() as usize)
            .min(settings.run.batch_size)
    };
    let mut task = PositionTask {
        assets,
        compose: settings.compose,
        size,
        levels: config.levels(),
        stream: settings
            .run
            .seed
            .wrapping_mul(1 << 32)
            .wrapping_add(1 << 31),
        batch_size: settings.run.batch_size,
        shards: settings.run.shards(),
        train_device,
        eval_device,
        validation,
        real,
        real_per_batch,
        real_rng: SplitMix64::new(settings.run.seed ^ 0x5EA1_B0C5),
        real_validation,
        files: CheckpointFiles::new::<PositionNet>(&settings.run, &config, &[])?,
    };
    let optimiser = AdamWConfig::new().with_weight_decay(5e-4).init();
    let fitted = fit(
        &mut task,
        model,
        optimiser,
        &settings.run.fit_settings(100, "img"),
        log,
    )?;
    let report = PositionReport {
        steps_run: fitted.steps_run,
        best_step: fitted.best_step,
        seconds: started.elapsed().as_secs_f64(),
        images_seen: fitted.steps_run * settings.run.batch_size,
        synthetic_validation: fitted.metrics,
        settings: format!("{settings:?}"),
    };
    write_report(&settings.run.out.join("position.metrics.json"), &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shotgrade_core::{Letterbox, POSITION_CELL_WIDTH};

    fn levels() -> Vec<GridLevel> {
        GridLevel::position_levels(256)
    }

    #[test]
    fn targets_mark_centre_and_neighbours_and_decode_back() {
        let b = BBox::new(60.0, 70.0, 180.0, 200.0);
        let t = cell_targets(&levels(), &b, true);
        let positives: Vec<usize> = t
            .objectness
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == 1.0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(positives.len(), 6, "3 cells on each of 2 levels");
        assert!(positives.iter().all(|&i| t.subject[i] == 1.0));
        // Every positive cell's targets decode back onto the box.
        let mut offset = 0;
        for level in levels() {
            for r in 0..level.rows {
                for c in 0..level.cols {
                    let i = offset + (r * level.cols + c) as usize;
                    if t.objectness[i] == 1.0 {
                        let v = &t.boxes[i * 4..i * 4 + 4];
                        let logit = |p: f32| (p / (1.0 - p)).ln();
                        let d = level.decode(r, c, [logit(v[0]), logit(v[1]), v[2], v[3]]);
                        assert!(iou(&d, &b) > 0.98, "{d:?}");
                    }
                }
            }
            offset += level.cells();
        }
        assert_eq!(POSITION_CELL_WIDTH, 6);
    }

    #[test]
    fn letterbox_targets_stay_on_canvas() {
        let lb = Letterbox::new(400, 200, 256);
        let b = lb.to_canvas(&BBox::new(0.0, 0.0, 400.0, 200.0));
        assert!(b.y0 >= 64.0 - 0.5 && b.y1 <= 192.0 + 0.5);
        let t = cell_targets(&levels(), &b, false);
        assert!(t.objectness.contains(&1.0));
        assert!(t.subject.iter().all(|&v| v == 0.0));
    }
}
