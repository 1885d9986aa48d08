//! The background model's second stage as gradient-boosted trees (`gbdt`): from the border
//! band's statistics, the chance that a `white`-or-`solid` backdrop is white — the same
//! question as [`crate::BackdropLevel`] answers with a small MLP. Trees threshold each
//! statistic directly (a darkest-channel percentile at 249.5, a share of clipped pixels), which
//! is what the boundary between the classes is; on the validation composites they make fewer
//! errors than the MLP (models/HISTORY.md, "A second stage for white against off-white").
//!
//! The trees are not a burn module: a weights file carries them as JSON in its metadata under
//! [`TREES_METADATA_KEY`], and [`crate::Models::infer`] applies them on the CPU after the
//! network.

use gbdt::config::Config;
use gbdt::decision_tree::{Data, DataVec};
use gbdt::gradient_boost::GBDT;
use shotgrade_core::BackgroundClass;
use shotgrade_image::BACKDROP_FEATURES;

/// Metadata key of the trees' JSON in `background.safetensors`.
pub const TREES_METADATA_KEY: &str = "shotgrade.backdrop.trees";

/// How the trees are grown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeSettings {
    pub trees: usize,
    pub depth: u32,
    pub shrinkage: f32,
    pub min_leaf: usize,
}

impl Default for TreeSettings {
    fn default() -> Self {
        TreeSettings {
            trees: 300,
            depth: 5,
            shrinkage: 0.1,
            min_leaf: 5,
        }
    }
}

/// Gradient-boosted trees that say whether a backdrop is white rather than solid.
pub struct BackdropTrees {
    model: GBDT,
}

impl std::fmt::Debug for BackdropTrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackdropTrees").finish_non_exhaustive()
    }
}

impl BackdropTrees {
    /// Grows the trees on `(statistics, is white)` examples (binary log-likelihood, every
    /// example and statistic used: deterministic).
    pub fn fit(examples: &[([f32; BACKDROP_FEATURES], bool)], settings: &TreeSettings) -> Self {
        let mut config = Config::new();
        config.set_feature_size(BACKDROP_FEATURES);
        config.set_max_depth(settings.depth);
        config.set_iterations(settings.trees);
        config.set_shrinkage(settings.shrinkage);
        config.set_min_leaf_size(settings.min_leaf);
        config.set_loss("LogLikelyhood");
        config.set_data_sample_ratio(1.0);
        config.set_feature_sample_ratio(1.0);
        config.set_training_optimization_level(2);
        let mut data: DataVec = examples
            .iter()
            .map(|(s, white)| {
                Data::new_training_data(s.to_vec(), 1.0, if *white { 1.0 } else { -1.0 }, None)
            })
            .collect();
        let mut model = GBDT::new(&config);
        model.fit(&mut data);
        BackdropTrees { model }
    }

    /// The chance of white for each image of `statistics` (`n × BACKDROP_FEATURES`, flat).
    pub fn white_probabilities(&self, statistics: &[f32]) -> Vec<f32> {
        let data: DataVec = statistics
            .chunks_exact(BACKDROP_FEATURES)
            .map(|s| Data::new_test_data(s.to_vec(), None))
            .collect();
        if data.is_empty() {
            return Vec::new();
        }
        self.model
            .predict(&data)
            .into_iter()
            .map(|p| {
                if p.is_finite() {
                    p.clamp(0.0, 1.0)
                } else {
                    0.5
                }
            })
            .collect()
    }

    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string(&self.model).map_err(|e| e.to_string())
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json)
            .map(|model| BackdropTrees { model })
            .map_err(|e| format!("the second stage's trees do not parse: {e}"))
    }
}

/// Splits the `white` + `solid` probability of one image's class probabilities (in
/// `BACKGROUND_CLASSES` order) by `white`, the chance that its backdrop is white; the other
/// classes and the sum stay.
pub fn split_light(probabilities: &mut [f32; 5], white: f32) {
    let (w, s) = (
        BackgroundClass::White.index(),
        BackgroundClass::Solid.index(),
    );
    let light = probabilities[w] + probabilities[s];
    let white = white.clamp(0.0, 1.0);
    probabilities[w] = light * white;
    probabilities[s] = light * (1.0 - white);
}

/// Helpers the tests of this crate share: flat backdrops and small, quickly grown trees.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use shotgrade_image::{RgbImage, backdrop_statistics};

    /// The statistics of a flat 30 × 20 image of grey `level`.
    pub fn flat(level: u8) -> [f32; BACKDROP_FEATURES] {
        let img = RgbImage::from_raw(30, 20, vec![level; 30 * 20 * 3]).expect("30 × 20");
        backdrop_statistics(&img)
    }

    /// Trees grown on flat backdrops of 230–255, white from 250.
    pub fn flat_trees(trees: usize) -> BackdropTrees {
        let examples: Vec<_> = (230..=255u8)
            .map(|v| (flat(v), v >= 250))
            .cycle()
            .take(26 * 4)
            .collect();
        let settings = TreeSettings {
            trees,
            depth: 3,
            min_leaf: 1,
            ..TreeSettings::default()
        };
        BackdropTrees::fit(&examples, &settings)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{flat, flat_trees};
    use super::*;

    /// Trees grown on flat backdrops tell white from grey, survive their JSON, and split only
    /// the light mass.
    #[test]
    fn trees_learn_the_level_and_round_trip() {
        let trees = flat_trees(20);
        let stats: Vec<f32> = [255u8, 252, 246, 235]
            .iter()
            .flat_map(|&v| flat(v))
            .collect();
        let p = trees.white_probabilities(&stats);
        assert_eq!(p.len(), 4);
        assert!(
            p[0] > 0.5 && p[1] > 0.5 && p[2] < 0.5 && p[3] < 0.5,
            "{p:?}"
        );
        let again = BackdropTrees::from_json(&trees.to_json().expect("json")).expect("parses");
        assert_eq!(again.white_probabilities(&stats), p);
        assert!(BackdropTrees::from_json("{not json").is_err());
        assert!(trees.white_probabilities(&[]).is_empty());

        let mut probs = [0.3, 0.1, 0.2, 0.25, 0.15];
        split_light(&mut probs, 0.9);
        assert!((probs[0] - 0.45).abs() < 1e-6 && (probs[2] - 0.05).abs() < 1e-6);
        assert_eq!((probs[1], probs[3], probs[4]), (0.1, 0.25, 0.15));
    }
}
