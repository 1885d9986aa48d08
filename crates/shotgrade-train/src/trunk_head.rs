//! A background classifier on the pretrained trunk's features: the photos labelled by eye go
//! through the frozen trunk once, their pooled features (and the border band's statistics) are
//! kept, and a linear softmax head is fitted on the `train` part and chosen on `validation`.
//!
//! Why a linear head on frozen features first: with a few hundred labelled photos per class, a
//! frozen ImageNet trunk plus a regularised linear layer is the transfer baseline every larger
//! head must beat, and it fits in seconds once the features are computed.

use burn::tensor::{Device, Tensor};
use shotgrade_core::{BACKGROUND_CLASSES, BackgroundClass};
use shotgrade_image::Limits;
use shotgrade_models::trunk::{EfficientNetLite0, global_average};
use shotgrade_synth::labels::{LabelledPhoto, Part, load_labelled};
use std::path::Path;

use crate::baseline::{BaselineSettings, LinearBaseline};
use crate::error::TrainError;
use crate::trunk::letterboxed_input;

/// Which of the trunk's outputs a head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkCut {
    /// The last MBConv block's 320 channels, average-pooled.
    Stage7,
    /// The 1280-channel head convolution, average-pooled.
    Head,
    /// Stages 5, 6 and 7 (112 + 192 + 320 channels), each average-pooled.
    Stages567,
}

/// How photos become head inputs: the letterbox side, the trunk's cut, and whether each
/// `train` photo is also added mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSettings {
    pub size: u32,
    pub cut: TrunkCut,
    pub mirror_train: bool,
}

/// One labelled photo's features.
#[derive(Debug, Clone)]
pub struct PhotoFeatures {
    pub path: String,
    pub source: String,
    pub part: Part,
    pub class: BackgroundClass,
    pub trunk: Vec<f32>,
    pub border: Vec<f32>,
}

/// The trunk features (at `cut`, letterboxed to `size` px) and border statistics of every
/// labelled photo with a background class (with `mirror_train`, each `train` photo also
/// mirrored left to right); photos that do not decode are skipped.
pub fn labelled_features(
    net: &EfficientNetLite0,
    labels: &Path,
    assets: &Path,
    settings: FeatureSettings,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PhotoFeatures>, TrainError> {
    let FeatureSettings {
        size,
        cut,
        mirror_train,
    } = settings;
    let photos: Vec<LabelledPhoto> = load_labelled(labels)
        .map_err(|e| TrainError::Settings(format!("real labels: {e}")))?
        .into_iter()
        .filter(|p| p.background.is_some())
        .collect();
    let mut out = Vec::with_capacity(photos.len());
    let started = std::time::Instant::now();
    for (chunk_index, chunk) in photos.chunks(16).enumerate() {
        let mut loaded: Vec<(&LabelledPhoto, image::RgbImage)> = chunk
            .iter()
            .filter_map(|p| {
                let img =
                    shotgrade_image::load_path(&assets.join(&p.path), &Limits::default()).ok()?;
                Some((p, img.rgb))
            })
            .collect();
        if mirror_train {
            // A backdrop's class does not depend on the side the product stands on.
            let mirrored: Vec<(&LabelledPhoto, image::RgbImage)> = loaded
                .iter()
                .filter(|(p, _)| p.part == Part::Train)
                .map(|(p, img)| (*p, image::imageops::flip_horizontal(img)))
                .collect();
            loaded.extend(mirrored);
        }
        let images: Vec<&image::RgbImage> = loaded.iter().map(|(_, img)| img).collect();
        for ((p, _), (trunk, border)) in loaded
            .iter()
            .zip(batch_features(net, &images, size, cut, device)?)
        {
            out.push(PhotoFeatures {
                path: p.path.clone(),
                source: p.source.clone(),
                part: p.part,
                class: p.background.unwrap_or(BackgroundClass::White),
                trunk,
                border,
            });
        }
        if chunk_index % 10 == 9 {
            log(&format!(
                "{} of {} photos through the trunk ({:.0} s)",
                out.len(),
                photos.len(),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    Ok(out)
}

/// One image's pooled trunk features and border-band statistics.
pub type ImageFeatures = (Vec<f32>, Vec<f32>);

/// The trunk features at `cut` and the border statistics of each image, letterboxed to `size`.
pub fn batch_features(
    net: &EfficientNetLite0,
    images: &[&image::RgbImage],
    size: u32,
    cut: TrunkCut,
    device: &Device,
) -> Result<Vec<ImageFeatures>, TrainError> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let inputs: Vec<Tensor<4>> = images
        .iter()
        .map(|img| letterboxed_input(img, size, device))
        .collect();
    let outputs = net.features(Tensor::cat(inputs, 0));
    let pooled: Tensor<2> = match cut {
        TrunkCut::Stage7 => global_average(outputs.stages[7].clone()),
        TrunkCut::Head => outputs.pooled_head,
        TrunkCut::Stages567 => Tensor::cat(
            (5..8)
                .map(|i| global_average(outputs.stages[i].clone()))
                .collect(),
            1,
        ),
    };
    let [_, width] = pooled.dims();
    let values = pooled
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Settings(format!("{e:?}")))?;
    Ok(images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            (
                values[i * width..(i + 1) * width].to_vec(),
                shotgrade_image::backdrop_statistics(img).to_vec(),
            )
        })
        .collect())
}

/// Features of `count` composites (training seeds from `first_seed`), as `train` examples of
/// the source `composite`.
pub fn composite_features(
    net: &EfficientNetLite0,
    assets: &shotgrade_synth::Assets,
    first_seed: u64,
    count: usize,
    size: u32,
    cut: TrunkCut,
    device: &Device,
) -> Result<Vec<PhotoFeatures>, TrainError> {
    let settings = shotgrade_synth::ComposeSettings::default();
    let mut out = Vec::with_capacity(count);
    let seeds: Vec<u64> = (first_seed..first_seed + count as u64).collect();
    for chunk in seeds.chunks(16) {
        let samples: Vec<shotgrade_synth::Sample> = chunk
            .iter()
            .map(|&seed| shotgrade_synth::compose(assets, seed, &settings))
            .collect();
        let images: Vec<&image::RgbImage> = samples.iter().map(|s| &s.image).collect();
        for (s, (trunk, border)) in samples
            .iter()
            .zip(batch_features(net, &images, size, cut, device)?)
        {
            out.push(PhotoFeatures {
                path: format!("composite/{}", s.label.seed),
                source: "composite".into(),
                part: Part::Train,
                class: s.label.background,
                trunk,
                border,
            });
        }
    }
    Ok(out)
}

/// A head's input for one photo: trunk features, border statistics, or both.
pub fn head_input(f: &PhotoFeatures, trunk: bool, border: bool) -> Vec<f32> {
    let mut x = Vec::new();
    if trunk {
        x.extend(&f.trunk);
    }
    if border {
        x.extend(&f.border);
    }
    x
}

/// A head's accuracy on one part: overall and per source (photos, accuracy).
pub struct PartScore {
    pub accuracy: f32,
    pub per_source: Vec<(String, usize, f32)>,
}

/// Fits a linear head on the `train` photos (and composites) and scores it on each of `parts`.
pub fn fit_and_score(
    features: &[PhotoFeatures],
    trunk: bool,
    border: bool,
    l2: f32,
    parts: &[Part],
) -> Option<(LinearBaseline, Vec<PartScore>)> {
    let train: Vec<(Vec<f32>, usize)> = features
        .iter()
        .filter(|f| f.part == Part::Train)
        .map(|f| (head_input(f, trunk, border), f.class.index()))
        .collect();
    let head = LinearBaseline::fit(
        &train,
        BACKGROUND_CLASSES.len(),
        &BaselineSettings {
            l2,
            ..BaselineSettings::default()
        },
    )?;
    let scores = parts
        .iter()
        .map(|&part| {
            let scored: Vec<(&PhotoFeatures, bool)> = features
                .iter()
                .filter(|f| f.part == part && f.source != "composite")
                .map(|f| {
                    (
                        f,
                        head.predict(&head_input(f, trunk, border)) == f.class.index(),
                    )
                })
                .collect();
            let accuracy =
                scored.iter().filter(|(_, ok)| *ok).count() as f32 / scored.len().max(1) as f32;
            let mut sources: Vec<String> = scored.iter().map(|(f, _)| f.source.clone()).collect();
            sources.sort();
            sources.dedup();
            let per_source = sources
                .into_iter()
                .map(|s| {
                    let of: Vec<bool> = scored
                        .iter()
                        .filter(|(f, _)| f.source == s)
                        .map(|(_, ok)| *ok)
                        .collect();
                    let acc = of.iter().filter(|ok| **ok).count() as f32 / of.len() as f32;
                    (s, of.len(), acc)
                })
                .collect();
            PartScore {
                accuracy,
                per_source,
            }
        })
        .collect();
    Some((head, scores))
}
