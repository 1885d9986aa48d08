//! Evaluation metrics: plain functions over predictions and labels.

use serde::Serialize;

/// Classification results over `k` classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn metrics_in_unit_interval(pairs in proptest::collection::vec((0usize..4, 0usize..4), 0..100)) {
            let (t, p): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
            let m = classification(&t, &p, 4);
            prop_assert!((0.0..=1.0).contains(&m.accuracy));
            prop_assert!(m.precision.iter().chain(&m.recall).all(|v| (0.0..=1.0).contains(v)));
            prop_assert_eq!(m.confusion.iter().flatten().sum::<u32>() as usize, t.len());
        }
    }
}
