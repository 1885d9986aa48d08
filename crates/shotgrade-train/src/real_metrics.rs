//! Scores of the whole grader on the real photos labelled by eye (`shotgrade eval real`):
//! background accuracy per source and per class with its confusion matrix, and the main box's
//! IoU split by the kinds of photo the detector finds hard. Plain functions over outcomes; the
//! CLI runs the grader.

use std::collections::BTreeMap;

use serde::Serialize;
use shotgrade_core::{BBox, BackgroundClass, iou};

use crate::metrics::{ClassMetrics, classification};

/// What the grader made of one labelled photo.
#[derive(Debug, Clone)]
pub struct RealOutcome {
    pub source: String,
    /// Label; `None` when no backdrop is visible (left out of background accuracy).
    pub truth_class: Option<BackgroundClass>,
    /// `None` when the photo could not be graded (counted as wrong).
    pub predicted_class: Option<BackgroundClass>,
    pub truth_box: Option<BBox>,
    /// The grader's main product box in the photo's pixels; `None` when none was found
    /// (IoU 0).
    pub predicted_box: Option<BBox>,
    /// The truth box spans ≥ 85 % of the frame's width or height.
    pub fills_frame: bool,
    /// A person wears the product.
    pub on_model: bool,
    /// The label says the product runs off the frame.
    pub truth_cut_off: bool,
    /// The grader reported the product cut off (the `product_cut_off` reason); `None` when the
    /// photo could not be graded.
    pub predicted_cut_off: Option<bool>,
}

/// A mean over a group of photos.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Mean {
    pub mean: f32,
    pub count: usize,
}

impl Mean {
    fn of(values: impl Iterator<Item = f32>) -> Mean {
        let (sum, count) = values.fold((0.0f32, 0usize), |(s, n), v| (s + v, n + 1));
        Mean {
            mean: if count == 0 { 0.0 } else { sum / count as f32 },
            count,
        }
    }
}

/// One source's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceScores {
    pub photos: usize,
    /// Share of photos with a background label whose class was right.
    pub background_accuracy: Mean,
    pub box_iou: Mean,
}

/// Main-box IoU by kind of photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoxScores {
    pub white: Mean,
    pub non_white: Mean,
    pub frame_filling: Mean,
    pub on_model_non_white: Mean,
    /// Share of boxed photos whose predicted box has IoU ≥ 0.5.
    pub hit_rate_50: Mean,
}

/// Everything `shotgrade eval real` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealScores {
    pub photos: usize,
    /// Photos the grader returned an error for.
    pub errors: usize,
    /// Over every photo with a background label; confusion rows are the truth in
    /// [`shotgrade_core::BACKGROUND_CLASSES`] order. A photo the grader failed on counts as a
    /// miss (it is not in the matrix).
    pub background: ClassMetrics,
    pub background_accuracy: Mean,
    pub per_source: BTreeMap<String, SourceScores>,
    pub boxes: BoxScores,
    /// The grader's cut-off call against the by-eye `cut_off` label, over graded photos.
    pub cut_off: CutOffScores,
}

/// Precision and recall of the cut-off call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CutOffScores {
    /// Share of the photos called cut off that are (0 when none is called).
    pub precision: f32,
    /// Share of the photos labelled cut off that were called so (0 when none is labelled).
    pub recall: f32,
    /// Photos called cut off, labelled cut off, and graded.
    pub predicted: usize,
    pub labelled: usize,
    pub photos: usize,
}

impl CutOffScores {
    fn of(outcomes: &[RealOutcome]) -> CutOffScores {
        let graded: Vec<(bool, bool)> = outcomes
            .iter()
            .filter_map(|o| o.predicted_cut_off.map(|p| (o.truth_cut_off, p)))
            .collect();
        let both = graded.iter().filter(|&&(t, p)| t && p).count();
        let predicted = graded.iter().filter(|&&(_, p)| p).count();
        let labelled = graded.iter().filter(|&&(t, _)| t).count();
        let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f32 / d as f32 };
        CutOffScores {
            precision: share(both, predicted),
            recall: share(both, labelled),
            predicted,
            labelled,
            photos: graded.len(),
        }
    }
}

fn correct(o: &RealOutcome) -> Option<f32> {
    let truth = o.truth_class?;
    Some(f32::from(u8::from(o.predicted_class == Some(truth))))
}

fn box_iou(o: &RealOutcome) -> Option<f32> {
    let truth = o.truth_box?;
    Some(o.predicted_box.map_or(0.0, |p| iou(&p, &truth)))
}

/// Aggregates the outcomes of one part of the real set.
pub fn score_real(outcomes: &[RealOutcome]) -> RealScores {
    let labelled: Vec<&RealOutcome> = outcomes
        .iter()
        .filter(|o| o.truth_class.is_some() && o.predicted_class.is_some())
        .collect();
    let index = |c: Option<BackgroundClass>| c.map_or(usize::MAX, |c| c.index());
    let background = classification(
        &labelled
            .iter()
            .map(|o| index(o.truth_class))
            .collect::<Vec<_>>(),
        &labelled
            .iter()
            .map(|o| index(o.predicted_class))
            .collect::<Vec<_>>(),
        shotgrade_core::BACKGROUND_CLASSES.len(),
    );
    let mut sources: BTreeMap<String, Vec<&RealOutcome>> = BTreeMap::new();
    for o in outcomes {
        sources.entry(o.source.clone()).or_default().push(o);
    }
    let per_source = sources
        .into_iter()
        .map(|(source, os)| {
            let scores = SourceScores {
                photos: os.len(),
                background_accuracy: Mean::of(os.iter().filter_map(|o| correct(o))),
                box_iou: Mean::of(os.iter().filter_map(|o| box_iou(o))),
            };
            (source, scores)
        })
        .collect();
    let group = |keep: &dyn Fn(&RealOutcome) -> bool| {
        Mean::of(outcomes.iter().filter(|o| keep(o)).filter_map(box_iou))
    };
    let white = |o: &RealOutcome| o.truth_class == Some(BackgroundClass::White);
    RealScores {
        photos: outcomes.len(),
        errors: outcomes
            .iter()
            .filter(|o| o.predicted_class.is_none())
            .count(),
        background,
        background_accuracy: Mean::of(outcomes.iter().filter_map(correct)),
        per_source,
        boxes: BoxScores {
            white: group(&white),
            non_white: group(&|o| !white(o)),
            frame_filling: group(&|o| o.fills_frame),
            on_model_non_white: group(&|o| o.on_model && !white(o)),
            hit_rate_50: Mean::of(
                outcomes
                    .iter()
                    .filter_map(box_iou)
                    .map(|v| f32::from(u8::from(v >= 0.5))),
            ),
        },
        cut_off: CutOffScores::of(outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackgroundClass::*;

    fn bbox(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        BBox { x0, y0, x1, y1 }
    }

    fn outcome(
        source: &str,
        truth: Option<BackgroundClass>,
        pred: Option<BackgroundClass>,
    ) -> RealOutcome {
        RealOutcome {
            source: source.into(),
            truth_class: truth,
            predicted_class: pred,
            truth_box: None,
            predicted_box: None,
            fills_frame: false,
            on_model: false,
            truth_cut_off: false,
            predicted_cut_off: pred.map(|_| false),
        }
    }

    #[test]
    fn cut_off_precision_and_recall_count_graded_photos_only() {
        let call = |truth: bool, predicted: Option<bool>| RealOutcome {
            truth_cut_off: truth,
            predicted_cut_off: predicted,
            ..outcome("a", Some(White), Some(White))
        };
        let s = score_real(&[
            call(true, Some(true)),
            call(true, Some(false)),
            call(false, Some(true)),
            call(false, Some(true)),
            call(false, Some(false)),
            call(true, None), // not graded: left out
        ]);
        let c = s.cut_off;
        assert_eq!((c.predicted, c.labelled, c.photos), (3, 2, 5));
        assert!((c.precision - 1.0 / 3.0).abs() < 1e-6 && (c.recall - 0.5).abs() < 1e-6);
        let none = score_real(&[call(false, Some(false))]).cut_off;
        assert_eq!((none.precision, none.recall), (0.0, 0.0));
    }

    #[test]
    fn accuracy_counts_failures_as_misses_and_skips_photos_without_a_backdrop() {
        let outcomes = [
            outcome("a", Some(White), Some(White)),
            outcome("a", Some(Solid), Some(Lifestyle)),
            outcome("b", Some(Solid), None), // the grader failed
            outcome("b", None, Some(Solid)), // no backdrop visible
        ];
        let s = score_real(&outcomes);
        assert_eq!(s.photos, 4);
        assert_eq!(s.errors, 1);
        assert_eq!(
            s.background_accuracy,
            Mean {
                mean: 1.0 / 3.0,
                count: 3
            }
        );
        // The matrix holds only graded photos with a label.
        assert_eq!(s.background.count, 2);
        assert_eq!(s.background.confusion[Solid.index()][Lifestyle.index()], 1);
        assert_eq!(s.per_source["a"].background_accuracy.mean, 0.5);
        assert_eq!(
            s.per_source["b"].background_accuracy,
            Mean {
                mean: 0.0,
                count: 1
            }
        );
        assert_eq!(s.per_source["b"].photos, 2);
    }

    #[test]
    fn box_groups_split_white_non_white_frame_filling_and_on_model() {
        let mut a = outcome("a", Some(White), Some(White));
        a.truth_box = Some(bbox(0.0, 0.0, 10.0, 10.0));
        a.predicted_box = Some(bbox(0.0, 0.0, 10.0, 5.0)); // IoU 0.5
        let mut b = outcome("a", Some(Solid), Some(Solid));
        b.truth_box = Some(bbox(0.0, 0.0, 10.0, 10.0));
        b.predicted_box = None; // missed: IoU 0
        b.on_model = true;
        b.fills_frame = true;
        let c = outcome("a", Some(Solid), Some(Solid)); // no box drawn: not in any group
        let s = score_real(&[a, b, c]);
        assert_eq!(
            s.boxes.white,
            Mean {
                mean: 0.5,
                count: 1
            }
        );
        assert_eq!(
            s.boxes.non_white,
            Mean {
                mean: 0.0,
                count: 1
            }
        );
        assert_eq!(s.boxes.frame_filling.count, 1);
        assert_eq!(s.boxes.on_model_non_white.count, 1);
        assert_eq!(
            s.boxes.hit_rate_50,
            Mean {
                mean: 0.5,
                count: 2
            }
        );
        assert_eq!(
            s.per_source["a"].box_iou,
            Mean {
                mean: 0.25,
                count: 2
            }
        );
    }

    #[test]
    fn nothing_to_score_gives_zero_means_not_nan() {
        let s = score_real(&[]);
        assert_eq!(s.background_accuracy, Mean::default());
        assert!(s.boxes.white.mean.is_finite());
    }
}
