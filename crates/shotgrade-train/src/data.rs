//! Training and evaluation data: composites made on the fly and real photos with labels.

use rayon::prelude::*;
use shotgrade_core::BackgroundClass;
use shotgrade_image::{InputSpec, Limits, Preprocessor};
use shotgrade_models::BackgroundNetConfig;
use shotgrade_synth::assets::{RealPhoto, real_photos};
use shotgrade_synth::{Assets, ComposeSettings, Label, compose};
use std::path::Path;

/// Seeds at and above this are never used for training streams: held-out synthetic test sets
/// draw from here.
pub const TEST_SEED_BASE: u64 = 1 << 40;

/// One preprocessed background-network example.
#[derive(Debug, Clone)]
pub struct BackgroundExample {
    /// `C × S × S` in `[0, 1]`: the squash-resized image and any block planes
    /// ([`background_preprocessor`]).
    pub input: Vec<f32>,
    /// The image's backdrop statistics when the model has a second stage
    /// (`shotgrade_image::backdrop_statistics`), otherwise empty.
    pub backdrop: Vec<f32>,
    pub class: BackgroundClass,
}

/// A preprocessor whose three input sides are all `size` (training prepares one net at a time).
pub fn preprocessor(size: u32) -> Preprocessor {
    Preprocessor::new(spec(size))
}

/// The preprocessor that makes a background network's inputs (with its block planes if the
/// config asks for them).
pub fn background_preprocessor(config: &BackgroundNetConfig) -> Preprocessor {
    Preprocessor::new(InputSpec {
        background_view: config.view(),
        background_blocks: config.block_planes(),
        backdrop: config.needs_statistics(),
        ..spec(config.input_size as u32)
    })
}

fn spec(size: u32) -> InputSpec {
    InputSpec {
        background: size,
        background_view: shotgrade_image::BackgroundView::Squash,
        background_blocks: None,
        backdrop: false,
        position: size,
        experience: size,
    }
}

/// Composites for seeds `seeds`, preprocessed for the background network `config`, with their
/// labels.
pub fn synthetic_background(
    assets: &Assets,
    seeds: &[u64],
    settings: &ComposeSettings,
    config: &BackgroundNetConfig,
) -> Vec<(BackgroundExample, Label)> {
    seeds
        .par_iter()
        .map_init(
            || background_preprocessor(config),
            |pre, &seed| {
                let sample = compose(assets, seed, settings);
                let input = pre.background_input(&sample.image);
                (
                    BackgroundExample {
                        input,
                        backdrop: pre.backdrop_input(&sample.image),
                        class: sample.label.background,
                    },
                    sample.label,
                )
            },
        )
        .collect()
}

/// The photos of one part of the by-eye labelled set (`data/real`) with a background class
/// (photos labelled `none` are left out), preprocessed for the background network `config`;
/// unreadable files are skipped and counted.
pub fn labelled_background(
    labels: &Path,
    assets: &Path,
    part: shotgrade_synth::labels::Part,
    config: &BackgroundNetConfig,
) -> Result<(Vec<BackgroundExample>, usize), shotgrade_synth::labels::LabelError> {
    let photos: Vec<(std::path::PathBuf, BackgroundClass)> =
        shotgrade_synth::labels::load_labelled(labels)?
            .into_iter()
            .filter(|p| p.part == part)
            .filter_map(|p| Some((assets.join(&p.path), p.background?)))
            .collect();
    let loaded: Vec<Option<BackgroundExample>> = photos
        .par_iter()
        .map_init(
            || background_preprocessor(config),
            |pre, (path, class)| {
                let img = shotgrade_image::load_path(path, &Limits::default()).ok()?;
                Some(BackgroundExample {
                    input: pre.background_input(&img.rgb),
                    backdrop: pre.backdrop_input(&img.rgb),
                    class: *class,
                })
            },
        )
        .collect();
    let skipped = loaded.iter().filter(|e| e.is_none()).count();
    Ok((loaded.into_iter().flatten().collect(), skipped))
}

/// Real photos under `prefixes` of the asset folder whose hint is one of the five classes,
/// preprocessed for the background network `config`. Unreadable files are skipped and counted.
pub fn real_background(
    root: &Path,
    prefixes: &[&str],
    config: &BackgroundNetConfig,
) -> Result<(Vec<BackgroundExample>, usize), shotgrade_synth::AssetError> {
    let photos: Vec<RealPhoto> = real_photos(root, prefixes)?
        .into_iter()
        .filter(|p| p.hint.is_some())
        .collect();
    let loaded: Vec<Option<BackgroundExample>> = photos
        .par_iter()
        .map_init(
            || background_preprocessor(config),
            |pre, photo| {
                let img = shotgrade_image::load_path(&photo.path, &Limits::default()).ok()?;
                Some(BackgroundExample {
                    input: pre.background_input(&img.rgb),
                    backdrop: pre.backdrop_input(&img.rgb),
                    class: photo.hint?,
                })
            },
        )
        .collect();
    let skipped = loaded.iter().filter(|e| e.is_none()).count();
    Ok((loaded.into_iter().flatten().collect(), skipped))
}
