//! Evaluation metrics: plain functions over predictions and labels.

use serde::{Deserialize, Serialize};
use shotgrade_core::{BBox, iou};

/// Classification results over `k` classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub accuracy: f32,
    /// `confusion[truth][prediction]`.
    pub confusion: Vec<Vec<u32>>,
    pub precision: Vec<f32>,
    pub recall: Vec<f32>,
    pub count: usize,
}

/// Accuracy, confusion matrix and per-class precision/recall. Pairs with out-of-range classes
/// are ignored. Precision/recall of a class never predicted/present is 0.
pub fn classification(truth: &[usize], predicted: &[usize], classes: usize) -> ClassMetrics {
    let mut confusion = vec![vec![0u32; classes]; classes];
    let mut count = 0;
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < classes && p < classes {
            confusion[t][p] += 1;
            count += 1;
        }
    }
    let correct: u32 = (0..classes).map(|c| confusion[c][c]).sum();
    let ratio = |a: u32, b: u32| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let precision = (0..classes)
        .map(|c| ratio(confusion[c][c], (0..classes).map(|t| confusion[t][c]).sum()))
        .collect();
    let recall = (0..classes)
        .map(|c| ratio(confusion[c][c], confusion[c].iter().sum()))
        .collect();
    ClassMetrics {
        accuracy: ratio(correct, count as u32),
        confusion,
        precision,
        recall,
        count,
    }
}

/// Ranks with ties given their mean rank.
fn ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = mean;
        }
        i = j + 1;
    }
    ranks
}

fn pearson64(x: &[f64], y: &[f64]) -> f32 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let (mx, my) = (
        x[..n].iter().sum::<f64>() / n as f64,
        y[..n].iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return 0.0;
    }
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0) as f32
}

/// Pearson linear correlation (PLCC); 0 when either side is constant.
pub fn plcc(x: &[f32], y: &[f32]) -> f32 {
    let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    pearson64(&to64(x), &to64(y))
}

/// Spearman rank correlation (SRCC): Pearson correlation of the ranks, ties averaged.
pub fn srcc(x: &[f32], y: &[f32]) -> f32 {
    pearson64(&ranks(x), &ranks(y))
}

/// One predicted box: the image it belongs to, the box and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub image: usize,
    pub bbox: BBox,
    pub score: f32,
}

/// Average precision of one class at one IoU threshold, all-point interpolated (the area under
/// the precision–recall curve made monotone). Predictions are matched greedily, most confident
/// first, to the unmatched ground-truth box of the same image with the highest IoU. Returns 0
/// when there is no ground truth.
pub fn average_precision(
    predictions: &[Prediction],
    truths: &[(usize, BBox)],
    threshold: f32,
) -> f32 {
    if truths.is_empty() {
        return 0.0;
    }
    let mut order: Vec<&Prediction> = predictions.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut matched = vec![false; truths.len()];
    let mut tp = 0usize;
    let mut curve = Vec::with_capacity(order.len());
    for (k, p) in order.iter().enumerate() {
        let best = truths
            .iter()
            .enumerate()
            .filter(|(i, (img, _))| *img == p.image && !matched[*i])
            .map(|(i, (_, t))| (i, iou(&p.bbox, t)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, v)) = best
            && v >= threshold
        {
            matched[i] = true;
            tp += 1;
        }
        curve.push((tp as f32 / truths.len() as f32, tp as f32 / (k + 1) as f32));
    }
    // Make precision monotone from the right, then integrate over recall.
    let mut ap = 0.0;
    let mut best_precision = 0.0f32;
    let mut previous_recall = 0.0;
    let mut envelope: Vec<(f32, f32)> = curve
        .iter()
        .rev()
        .map(|&(r, p)| {
            best_precision = best_precision.max(p);
            (r, best_precision)
        })
        .collect();
    envelope.reverse();
    for (r, p) in envelope {
        ap += (r - previous_recall) * p;
        previous_recall = r;
    }
    ap.clamp(0.0, 1.0)
}

/// mAP@0.5 and mAP@0.5:0.95 (mean over thresholds 0.50, 0.55, …, 0.95).
pub fn map_50_and_50_95(predictions: &[Prediction], truths: &[(usize, BBox)]) -> (f32, f32) {
    let at50 = average_precision(predictions, truths, 0.5);
    let all: f32 = (0..10)
        .map(|i| average_precision(predictions, truths, 0.5 + 0.05 * i as f32))
        .sum();
    (at50, all / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(x: f32, y: f32, s: f32) -> BBox {
        BBox::new(x, y, x + s, y + s)
    }

    #[test]
    fn perfect_and_empty_detections() {
        let truths = vec![(0, b(0.0, 0.0, 10.0)), (1, b(5.0, 5.0, 20.0))];
        let perfect: Vec<Prediction> = truths
            .iter()
            .map(|&(image, bbox)| Prediction {
                image,
                bbox,
                score: 0.9,
            })
            .collect();
        assert_eq!(map_50_and_50_95(&perfect, &truths), (1.0, 1.0));
        assert_eq!(average_precision(&[], &truths, 0.5), 0.0);
        // A confident false positive first: precision 1/2 then 2/3 at full recall; the
        // interpolated (monotone) precision is 2/3 over the whole recall range.
        let mut with_fp = perfect.clone();
        with_fp.push(Prediction {
            image: 0,
            bbox: b(50.0, 50.0, 5.0),
            score: 0.99,
        });
        let ap = average_precision(&with_fp, &truths, 0.5);
        assert!((ap - 2.0 / 3.0).abs() < 1e-6, "{ap}");
        // (see also the correlation tests below)
        // Duplicates of one truth count once.
        let dup = vec![perfect[0], perfect[0]];
        assert!((average_precision(&dup, &truths, 0.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn known_confusion() {
        let m = classification(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
        assert!((m.accuracy - 0.6).abs() < 1e-6);
        assert_eq!(m.recall, vec![0.5, 1.0, 0.0]);
        assert!((m.precision[1] - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(m.precision[2], 0.0);
    }

    #[test]
    fn correlations_known_values() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((srcc(&x, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-6);
        assert!(
            (srcc(&x, &[1.0, 4.0, 9.0, 16.0]) - 1.0).abs() < 1e-6,
            "monotone, not linear"
        );
        assert!(plcc(&x, &[1.0, 4.0, 9.0, 16.0]) < 0.99);
        assert!((srcc(&x, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(srcc(&x, &[5.0; 4]), 0.0);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![1.5, 0.0, 1.5]);
    }

    proptest! {
        #[test]
        fn correlations_in_range(v in proptest::collection::vec((-100f32..100.0, -100f32..100.0), 0..50)) {
            let (x, y): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            prop_assert!((-1.0..=1.0).contains(&srcc(&x, &y)));
            prop_assert!((-1.0..=1.0).contains(&plcc(&x, &y)));
        }

        #[test]
        fn metrics_in_unit_interval(pairs in proptest::collection::vec((0usize..4, 0usize..4), 0..100)) {
            let (t, p): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
            let m = classification(&t, &p, 4);
            prop_assert!((0.0..=1.0).contains(&m.accuracy));
            prop_assert!(m.precision.iter().chain(&m.recall).all(|v| (0.0..=1.0).contains(v)));
            prop_assert_eq!(m.confusion.iter().flatten().sum::<u32>() as usize, t.len());
        }

        #[test]
        fn ap_in_unit_interval(
            preds in proptest::collection::vec((0usize..3, 0f32..100.0, 0f32..100.0, 1f32..50.0, 0f32..1.0), 0..20),
            truths in proptest::collection::vec((0usize..3, 0f32..100.0, 0f32..100.0, 1f32..50.0), 0..10),
        ) {
            let preds: Vec<Prediction> = preds.into_iter().map(|(image, x, y, s, score)| Prediction { image, bbox: b(x, y, s), score }).collect();
            let truths: Vec<(usize, BBox)> = truths.into_iter().map(|(i, x, y, s)| (i, b(x, y, s))).collect();
            let (a, m) = map_50_and_50_95(&preds, &truths);
            prop_assert!((0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&m));
            prop_assert!(m <= a + 1e-6);
        }
    }
}
