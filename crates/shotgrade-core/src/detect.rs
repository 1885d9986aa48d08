//! Decoding the position network's raw grid output into product detections.
//!
//! The network predicts, for every cell of each output grid, [`POSITION_CELL_WIDTH`] numbers:
//! `[objectness, subject, tx, ty, tw, th]`, all raw (before any activation). The grids are laid
//! out one after the other in level order, each row-major. Keeping the decode here — plain
//! arithmetic on a slice — lets it be tested without the network and lets training build
//! targets with the exact inverse ([`GridLevel::encode`]).

use crate::geometry::{BBox, iou};
use crate::types::Detection;

/// Numbers the network predicts per grid cell.
pub const POSITION_CELL_WIDTH: usize = 6;

/// Largest magnitude of the raw size logits; keeps `exp` finite for any network output.
const MAX_SIZE_LOGIT: f32 = 6.0;

/// One output grid of the position network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLevel {
    /// Input pixels per grid cell.
    pub stride: u32,
    pub rows: u32,
    pub cols: u32,
}

impl GridLevel {
    /// The position network's two output grids for a square input of `input_size` pixels: stride
    /// 16, then stride 32 (the order of its outputs).
    pub fn position_levels(input_size: u32) -> Vec<GridLevel> {
        [16u32, 32]
            .into_iter()
            .map(|stride| {
                let n = input_size / stride;
                GridLevel {
                    stride,
                    rows: n,
                    cols: n,
                }
            })
            .collect()
    }

    /// Number of cells in this grid.
    pub fn cells(&self) -> usize {
        (self.rows * self.cols) as usize
    }

    /// Decodes one cell's box from its raw offsets: the centre may move from −0.5 to +1.5 cells
    /// away from the cell's corner (so a centre on a cell border is reachable from both cells),
    /// and the size is `stride · exp(t)`.
    pub fn decode(&self, row: u32, col: u32, t: [f32; 4]) -> BBox {
        let s = self.stride as f32;
        let cx = (col as f32 + 2.0 * sigmoid(t[0]) - 0.5) * s;
        let cy = (row as f32 + 2.0 * sigmoid(t[1]) - 0.5) * s;
        let w = s * t[2].clamp(-MAX_SIZE_LOGIT, MAX_SIZE_LOGIT).exp();
        let h = s * t[3].clamp(-MAX_SIZE_LOGIT, MAX_SIZE_LOGIT).exp();
        BBox::from_center(cx, cy, w, h)
    }

    /// The cell responsible for a box (the one holding its centre) and the raw targets that
    /// [`decode`](Self::decode) maps back onto the box. `None` when the centre is off the grid.
    pub fn encode(&self, b: &BBox) -> Option<(u32, u32, [f32; 4])> {
        let s = self.stride as f32;
        let (cx, cy) = b.center();
        if cx < 0.0 || cy < 0.0 {
            return None;
        }
        let (col, row) = ((cx / s) as u32, (cy / s) as u32);
        if col >= self.cols || row >= self.rows {
            return None;
        }
        let fx = ((cx / s - col as f32 + 0.5) / 2.0).clamp(1e-4, 1.0 - 1e-4);
        let fy = ((cy / s - row as f32 + 0.5) / 2.0).clamp(1e-4, 1.0 - 1e-4);
        let tw = (b.width().max(1.0) / s).ln();
        let th = (b.height().max(1.0) / s).ln();
        Some((row, col, [logit(fx), logit(fy), tw, th]))
    }
}

/// Turns raw network output into detections on the network's input canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionDecoder {
    pub levels: Vec<GridLevel>,
    /// Detections less probable than this are dropped before NMS.
    pub min_probability: f32,
    /// NMS overlap threshold.
    pub iou_threshold: f32,
    /// At most this many detections are returned.
    pub max_detections: usize,
}

impl DetectionDecoder {
    /// Total cells over all levels: the expected output length is this × [`POSITION_CELL_WIDTH`].
    pub fn cells(&self) -> usize {
        self.levels.iter().map(GridLevel::cells).sum()
    }

    /// Decodes one image's raw output (length `cells() × 6`) into detections in canvas pixels,
    /// most probable first, after NMS. Non-finite numbers are treated as "no product here".
    ///
    /// # Panics
    /// Panics if `raw` has the wrong length: that is a programming error (model and decoder
    /// disagree), not a data error.
    pub fn decode(&self, raw: &[f32]) -> Vec<Detection> {
        assert_eq!(
            raw.len(),
            self.cells() * POSITION_CELL_WIDTH,
            "position output length does not match the decoder's grids"
        );
        let mut found = Vec::new();
        let mut cell_values = raw.chunks_exact(POSITION_CELL_WIDTH);
        for level in &self.levels {
            for row in 0..level.rows {
                for col in 0..level.cols {
                    let Some(v) = cell_values.next() else { break };
                    let probability = sigmoid(v[0]);
                    // NaN probabilities fail this test too.
                    if probability.is_nan() || probability < self.min_probability {
                        continue;
                    }
                    let bbox = level.decode(row, col, [v[2], v[3], v[4], v[5]]);
                    let subject_probability = sigmoid(v[1]);
                    if bbox.is_finite() && subject_probability.is_finite() {
                        found.push(Detection {
                            bbox,
                            probability,
                            subject_probability,
                        });
                    }
                }
            }
        }
        let mut kept = nms(found, self.iou_threshold);
        kept.truncate(self.max_detections);
        kept
    }
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Inverse of [`sigmoid`] for `p` in `(0, 1)`.
pub fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// Greedy non-maximum suppression: keeps the most probable detection, drops every other one
/// that overlaps a kept one by more than `iou_threshold`, and returns the kept ones sorted by
/// probability, highest first. Ties keep their input order, so the result is deterministic.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len().min(16));
    for d in detections {
        if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(b: BBox, p: f32) -> Detection {
        Detection {
            bbox: b,
            probability: p,
            subject_probability: 0.9,
        }
    }

    #[test]
    fn nms_drops_overlaps_keeps_distinct() {
        let a = det(BBox::new(0.0, 0.0, 10.0, 10.0), 0.9);
        let b = det(BBox::new(1.0, 1.0, 11.0, 11.0), 0.8);
        let c = det(BBox::new(50.0, 50.0, 60.0, 60.0), 0.7);
        let kept = nms(vec![c, b, a], 0.5);
        assert_eq!(kept, vec![a, c]);
    }

    fn any_box() -> impl Strategy<Value = BBox> {
        (-50f32..500.0, -50f32..500.0, 0f32..400.0, 0f32..400.0)
            .prop_map(|(x, y, w, h)| BBox::new(x, y, x + w, y + h))
    }

    proptest! {
        #[test]
        fn nms_is_idempotent_and_a_subset(
            boxes in proptest::collection::vec((any_box(), 0f32..1.0), 0..30),
            thr in 0.1f32..0.9,
        ) {
            let dets: Vec<Detection> = boxes.into_iter().map(|(b, p)| det(b, p)).collect();
            let once = nms(dets.clone(), thr);
            let twice = nms(once.clone(), thr);
            prop_assert_eq!(&once, &twice);
            prop_assert!(once.len() <= dets.len());
            for k in &once {
                prop_assert!(dets.contains(k));
            }
            for (i, a) in once.iter().enumerate() {
                for b in &once[i + 1..] {
                    prop_assert!(iou(&a.bbox, &b.bbox) <= thr);
                }
            }
        }

    }

    fn decoder() -> DetectionDecoder {
        DetectionDecoder {
            levels: GridLevel::position_levels(256),
            min_probability: 0.3,
            iou_threshold: 0.5,
            max_detections: 10,
        }
    }

    #[test]
    fn empty_output_finds_nothing() {
        let d = decoder();
        let raw = vec![-10.0; d.cells() * POSITION_CELL_WIDTH];
        assert!(d.decode(&raw).is_empty());
        let nan = vec![f32::NAN; d.cells() * POSITION_CELL_WIDTH];
        assert!(d.decode(&nan).is_empty());
    }

    #[test]
    fn one_planted_box_is_found_where_encoded() {
        let d = decoder();
        let level = d.levels[1];
        let target = BBox::new(40.0, 60.0, 200.0, 230.0);
        let (row, col, t) = level.encode(&target).expect("centre on grid");
        let mut raw = vec![-10.0; d.cells() * POSITION_CELL_WIDTH];
        let idx = (d.levels[0].cells() + (row * level.cols + col) as usize) * POSITION_CELL_WIDTH;
        raw[idx..idx + 6].copy_from_slice(&[3.0, 2.0, t[0], t[1], t[2], t[3]]);
        let found = d.decode(&raw);
        assert_eq!(found.len(), 1);
        let b = found[0].bbox;
        assert!(crate::geometry::iou(&b, &target) > 0.99, "{b:?}");
        assert!(found[0].subject_probability > 0.8);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(x in 0f32..250.0, y in 0f32..250.0, w in 4f32..256.0, h in 4f32..256.0) {
            let level = GridLevel { stride: 32, rows: 8, cols: 8 };
            let b = BBox::from_center(x, y, w, h);
            if let Some((row, col, t)) = level.encode(&b) {
                let back = level.decode(row, col, t);
                prop_assert!(crate::geometry::iou(&b, &back) > 0.98);
            }
        }

        #[test]
        fn decode_never_panics_on_any_values(raw in proptest::collection::vec(-1e6f32..1e6, 320 * 6)) {
            let d = decoder();
            for det in d.decode(&raw) {
                prop_assert!(det.bbox.is_finite());
                prop_assert!((0.0..=1.0).contains(&det.probability));
            }
        }
    }
}
