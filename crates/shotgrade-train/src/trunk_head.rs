//! The pretrained-trunk background model's head, fitted: the photos labelled by eye go
//! through the frozen trunk once, their pooled features (and the border band's statistics) are
//! kept, and a linear softmax head is fitted on the `train` part and chosen on `validation`.
//!
//! Why a linear head on frozen features first: with a few hundred labelled photos per class, a
//! frozen ImageNet trunk plus a regularised linear layer is the transfer baseline every larger
//! head must beat, and it fits in seconds once the features are computed.

use burn::tensor::{Device, Tensor, TensorData};
use shotgrade_core::{BACKGROUND_CLASSES, BackgroundClass};
use shotgrade_image::{BACKDROP_FEATURES, BackgroundView, InputSpec, Limits, Preprocessor};
use shotgrade_models::TrunkBackground;
use shotgrade_synth::labels::{LabelledPhoto, Part, load_labelled};
use std::path::Path;

use crate::baseline::{BaselineSettings, LinearBaseline};
use crate::error::TrainError;

/// How photos become head inputs: the input side, the view (letterboxed on white, as the
/// shipped model reads photos, or squashed), and whether each `train` photo is also added
/// mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSettings {
    pub size: u32,
    pub view: BackgroundView,
    pub mirror_train: bool,
    /// Keep each photo's stage-5 map ([`PhotoFeatures::map`]) for fine-tuning the late
    /// stages (~45 KB a photo at 160 px).
    pub keep_maps: bool,
}

impl FeatureSettings {
    /// The preprocessing of the model's input: the grader's own, so that the head is fitted on
    /// exactly what it will see.
    fn preprocessor(&self) -> Preprocessor {
        Preprocessor::new(InputSpec {
            background: self.size,
            background_view: self.view,
            background_blocks: None,
            backdrop: true,
            position: self.size,
            experience: self.size,
        })
    }
}

/// One labelled photo's features.
#[derive(Debug, Clone)]
pub struct PhotoFeatures {
    pub path: String,
    pub source: String,
    pub part: Part,
    pub class: BackgroundClass,
    /// The model's head input: pooled trunk stages, then the backdrop statistics.
    pub features: Vec<f32>,
    /// Its weight in the head's loss (1 for a photo; composites may count less).
    pub weight: f32,
    /// The stage-5 map (`TrunkBackground::first_head_map`, flattened) with
    /// `FeatureSettings::keep_maps`; empty without.
    pub map: Vec<f32>,
}

impl PhotoFeatures {
    /// The head input without the backdrop statistics (the trunk's part alone).
    pub fn trunk(&self) -> &[f32] {
        &self.features[..self.features.len() - BACKDROP_FEATURES]
    }

    /// The backdrop statistics alone.
    pub fn border(&self) -> &[f32] {
        &self.features[self.features.len() - BACKDROP_FEATURES..]
    }
}

/// The head inputs of every labelled photo with a background class (with `mirror_train`, each
/// `train` photo also mirrored left to right); photos that do not decode are skipped.
pub fn labelled_features(
    model: &TrunkBackground,
    labels: &Path,
    assets: &Path,
    settings: FeatureSettings,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PhotoFeatures>, TrainError> {
    labelled_features_where(
        model,
        labels,
        assets,
        settings,
        &|_| true,
        &mut || true,
        device,
        log,
    )
}

/// [`labelled_features`] of the photos `wanted` accepts; `keep_going` is asked before each
/// batch of 16 and ends the pass early when it says no.
#[allow(clippy::too_many_arguments)]
pub fn labelled_features_where(
    model: &TrunkBackground,
    labels: &Path,
    assets: &Path,
    settings: FeatureSettings,
    wanted: &dyn Fn(&LabelledPhoto) -> bool,
    keep_going: &mut dyn FnMut() -> bool,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PhotoFeatures>, TrainError> {
    let photos: Vec<LabelledPhoto> = load_labelled(labels)
        .map_err(|e| TrainError::Settings(format!("real labels: {e}")))?
        .into_iter()
        .filter(|p| p.background.is_some() && wanted(p))
        .collect();
    let mut preprocessor = settings.preprocessor();
    let mut out = Vec::with_capacity(photos.len());
    let mut unreadable = Vec::new();
    let started = std::time::Instant::now();
    for (chunk_index, chunk) in photos.chunks(16).enumerate() {
        if !keep_going() {
            break;
        }
        let mut loaded: Vec<(&LabelledPhoto, image::RgbImage)> = chunk
            .iter()
            .filter_map(|p| {
                match shotgrade_image::load_path(&assets.join(&p.path), &Limits::default()) {
                    Ok(img) => Some((p, img.rgb)),
                    Err(e) => {
                        unreadable.push(format!("{}: {e}", p.path));
                        None
                    }
                }
            })
            .collect();
        if settings.mirror_train {
            // A backdrop's class does not depend on the side the product stands on.
            let mirrored: Vec<(&LabelledPhoto, image::RgbImage)> = loaded
                .iter()
                .filter(|(p, _)| p.part == Part::Train)
                .map(|(p, img)| (*p, image::imageops::flip_horizontal(img)))
                .collect();
            loaded.extend(mirrored);
        }
        let images: Vec<&image::RgbImage> = loaded.iter().map(|(_, img)| img).collect();
        for ((p, _), (features, map)) in loaded.iter().zip(batch_features(
            model,
            &mut preprocessor,
            &images,
            settings.keep_maps,
            device,
        )?) {
            out.push(PhotoFeatures {
                path: p.path.clone(),
                source: p.source.clone(),
                part: p.part,
                class: p.background.unwrap_or(BackgroundClass::White),
                features,
                weight: 1.0,
                map,
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
    if !unreadable.is_empty() {
        // Left out, not fatal: a photo missing from this machine's asset folder should not
        // stop a fit, but the count must be visible.
        log(&format!(
            "{} labelled photos could not be read and are left out, e.g. {}",
            unreadable.len(),
            unreadable[0]
        ));
    }
    Ok(out)
}

/// One image's head input and its stage-5 map (empty unless kept).
pub type FeaturesAndMap = (Vec<f32>, Vec<f32>);

/// The head inputs of `images`, prepared as the grader prepares them, each with its stage-5
/// map when `keep_maps` (else an empty one).
pub fn batch_features(
    model: &TrunkBackground,
    preprocessor: &mut Preprocessor,
    images: &[&image::RgbImage],
    keep_maps: bool,
    device: &Device,
) -> Result<Vec<FeaturesAndMap>, TrainError> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let side = preprocessor.spec().background as usize;
    let mut pixels = Vec::new();
    let mut statistics = Vec::new();
    for img in images {
        pixels.extend(preprocessor.background_input(img));
        statistics.extend(preprocessor.backdrop_input(img));
    }
    let n = images.len();
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, side, side]), device);
    let s = Tensor::<2>::from_data(TensorData::new(statistics, [n, BACKDROP_FEATURES]), device);
    let map = model.first_head_map(x);
    let rows = |t: Tensor<2>| -> Result<Vec<Vec<f32>>, TrainError> {
        let values = t
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Settings(format!("{e:?}")))?;
        let width = values.len() / n;
        Ok(values.chunks(width).map(<[f32]>::to_vec).collect())
    };
    let features = rows(model.features_from(map.clone(), s))?;
    let maps = if keep_maps {
        rows(map.flatten(1, 3))?
    } else {
        vec![Vec::new(); n]
    };
    Ok(features.into_iter().zip(maps).collect())
}

/// Features of `count` composites (training seeds from `first_seed`), as `train` examples of
/// the source `composite`, each of weight `weight`.
pub fn composite_features(
    model: &TrunkBackground,
    assets: &shotgrade_synth::Assets,
    first_seed: u64,
    count: usize,
    weight: f32,
    feature_settings: FeatureSettings,
    device: &Device,
) -> Result<Vec<PhotoFeatures>, TrainError> {
    let mut preprocessor = feature_settings.preprocessor();
    // The sizes `shotgrade eval background` composes its test set at.
    let settings = shotgrade_synth::ComposeSettings {
        min_side: 160,
        ..shotgrade_synth::ComposeSettings::default()
    };
    let mut out = Vec::with_capacity(count);
    let seeds: Vec<u64> = (first_seed..first_seed + count as u64).collect();
    for chunk in seeds.chunks(16) {
        let samples: Vec<shotgrade_synth::Sample> = chunk
            .iter()
            .map(|&seed| shotgrade_synth::compose(assets, seed, &settings))
            .collect();
        let images: Vec<&image::RgbImage> = samples.iter().map(|s| &s.image).collect();
        for (s, (features, map)) in samples.iter().zip(batch_features(
            model,
            &mut preprocessor,
            &images,
            feature_settings.keep_maps,
            device,
        )?) {
            out.push(PhotoFeatures {
                path: format!("composite/{}", s.label.seed),
                source: "composite".into(),
                part: Part::Train,
                class: s.label.background,
                features,
                weight,
                map,
            });
        }
    }
    Ok(out)
}

/// A head's input for one photo: trunk features, border statistics, or both.
pub fn head_input(f: &PhotoFeatures, trunk: bool, border: bool) -> Vec<f32> {
    let mut x = Vec::new();
    if trunk {
        x.extend(f.trunk());
    }
    if border {
        x.extend(f.border());
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
    let train: Vec<&PhotoFeatures> = features.iter().filter(|f| f.part == Part::Train).collect();
    let weights: Vec<f32> = train.iter().map(|f| f.weight).collect();
    let train: Vec<(Vec<f32>, usize)> = train
        .iter()
        .map(|f| (head_input(f, trunk, border), f.class.index()))
        .collect();
    let head = LinearBaseline::fit_weighted(
        &train,
        &weights,
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

/// `shotgrade train background-trunk`: what it reads, where it writes, how it fits.
#[derive(Debug, Clone)]
pub struct TrunkBackgroundSettings {
    /// The trunk's ImageNet weights (`shotgrade train trunk` fetches them).
    pub trunk_weights: std::path::PathBuf,
    /// The labelled real photos (`data/real`): the head is fitted on `train`, its L2 penalty
    /// chosen on `validation`; `test` photos are not read.
    pub labels: std::path::PathBuf,
    pub assets: std::path::PathBuf,
    /// Output folder: `background.safetensors` and `background-trunk.metrics.json`.
    pub out: std::path::PathBuf,
    /// Input side (a multiple of 32).
    pub size: u32,
    /// The L2 penalties tried, in this order; the best on `validation` is kept (on a tie, the
    /// later one).
    pub l2: Vec<f32>,
    /// Add each `train` photo mirrored.
    pub mirror: bool,
    /// Training composites added to the `train` photos (seeds 1 to N, the training range):
    /// they cover what the labelled photos lack (black backdrops: 7 `train` photos).
    pub composites: usize,
    /// Each composite's weight in the head's loss, a labelled photo's being 1.
    pub composite_weight: f32,
    /// Copies of each person matted off a `train` on-model photo in the composites' cut-out
    /// pool (0: no people; `shotgrade_synth::matte`).
    pub people: usize,
    /// Fine-tuning steps of stages 6–7 and the head after the linear fit (0: the linear head
    /// alone; `crate::trunk_tune`).
    pub tune_steps: usize,
    /// Peak learning rate of the fine-tuning.
    pub tune_learning_rate: f64,
    /// Ends the run (writing nothing) when it runs out; a run takes minutes, nothing resumes.
    pub guard: crate::fit::Guard,
}

impl Default for TrunkBackgroundSettings {
    fn default() -> Self {
        TrunkBackgroundSettings {
            trunk_weights: std::path::PathBuf::new(),
            labels: "data/real".into(),
            assets: "../shared/assets".into(),
            out: "runs/background-trunk".into(),
            size: 160,
            l2: vec![1e-3, 3e-3, 1e-2, 3e-2],
            mirror: false,
            composites: 1500,
            composite_weight: 0.1,
            people: 0,
            tune_steps: 0,
            tune_learning_rate: 1e-4,
            guard: crate::fit::Guard::default(),
        }
    }
}

/// Validation accuracy of one L2 penalty.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PenaltyScore {
    pub l2: f32,
    pub validation_accuracy: f32,
}

/// What `train background-trunk` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrunkBackgroundReport {
    pub weights: std::path::PathBuf,
    pub size: u32,
    pub train_photos: usize,
    pub validation_photos: usize,
    pub composites: usize,
    pub composite_weight: f32,
    pub people: usize,
    pub tried: Vec<PenaltyScore>,
    pub l2: f32,
    /// Validation accuracy of the model written (fine-tuned where that scored higher).
    pub validation_accuracy: f32,
    /// The fine-tuning of stages 6–7, where asked for.
    pub fine_tune: Option<crate::trunk_tune::TuneReport>,
    /// Validation accuracy per source of the linear head: (source, photos, accuracy).
    pub validation_per_source: Vec<(String, usize, f32)>,
    pub seconds: f64,
}

impl TrunkBackgroundSettings {
    /// The model's config, or why these settings cannot train one (checked before anything
    /// is fetched or read).
    pub fn config(&self) -> Result<shotgrade_models::BackgroundNetConfig, TrainError> {
        let config = shotgrade_models::BackgroundNetConfig::new()
            .with_input_size(self.size as usize)
            .with_pretrained_trunk(Some(true));
        config
            .validate()
            .map_err(|e| TrainError::Settings(format!("--size: {e}")))?;
        if self.l2.is_empty() || self.l2.iter().any(|l| !(*l >= 0.0 && l.is_finite())) {
            return Err(TrainError::Settings(
                "--l2 takes one or more penalties ≥ 0".into(),
            ));
        }
        if self.composites > 0
            && !(self.composite_weight > 0.0 && self.composite_weight.is_finite())
        {
            return Err(TrainError::Settings(
                "--composite-weight must be a positive number".into(),
            ));
        }
        Ok(config)
    }
}

/// Fits the pretrained-trunk background model's head on the `train` photos and writes the
/// model (trunk and head) as `OUT/background.safetensors`.
pub fn train_trunk_background(
    settings: &TrunkBackgroundSettings,
    log: &mut dyn FnMut(&str),
) -> Result<TrunkBackgroundReport, TrainError> {
    use shotgrade_models::{BackgroundEnsemble, NetKind};
    let started = std::time::Instant::now();
    let config = settings.config()?;
    let device = Device::flex();
    let mut model = crate::trunk::imagenet_background(&settings.trunk_weights, &device)?;
    let feature_settings = FeatureSettings {
        size: settings.size,
        view: config.view(),
        mirror_train: settings.mirror,
        keep_maps: settings.tune_steps > 0,
    };
    // The test part is never read: only train and validation photos go through the trunk.
    let mut features = labelled_features_of(
        &model,
        settings,
        feature_settings,
        &[Part::Train, Part::Validation],
        &device,
        log,
    )?;
    if settings.composites > 0 {
        log(&format!(
            "{} training composites through the trunk…",
            settings.composites
        ));
        let mut assets = shotgrade_synth::Assets::load(&settings.assets, 320, 640)?;
        let dropped = drop_held_out_cutouts(&mut assets, &settings.labels)?;
        log(&format!(
            "{dropped} cut-outs left out: cut from validation or test photos of {}",
            settings.labels.display()
        ));
        if settings.people > 0 {
            add_people(
                &mut assets,
                &settings.labels,
                &settings.assets,
                settings.people,
                log,
            )?;
        }
        features.extend(composite_features(
            &model,
            &assets,
            1,
            settings.composites,
            settings.composite_weight,
            feature_settings,
            &device,
        )?);
    }
    let count = |part| {
        features
            .iter()
            .filter(|f| f.part == part && f.source != "composite")
            .count()
    };
    let (train_photos, validation_photos) = (count(Part::Train), count(Part::Validation));
    if train_photos == 0 || validation_photos == 0 {
        return Err(TrainError::Settings(format!(
            "{}: the head needs train and validation photos with a background class",
            settings.labels.display()
        )));
    }
    let mut tried = Vec::new();
    let mut best: Option<(LinearBaseline, PartScore, f32)> = None;
    for &l2 in &settings.l2 {
        let Some((head, mut scores)) =
            fit_and_score(&features, true, true, l2, &[Part::Validation])
        else {
            continue;
        };
        let score = scores.remove(0);
        log(&format!(
            "L2 {l2}: validation {:.1} %",
            100.0 * score.accuracy
        ));
        tried.push(PenaltyScore {
            l2,
            validation_accuracy: score.accuracy,
        });
        if best
            .as_ref()
            .is_none_or(|(_, b, _)| score.accuracy >= b.accuracy)
        {
            best = Some((head, score, l2));
        }
    }
    let Some((head, score, l2)) = best else {
        return Err(TrainError::Settings("no head could be fitted".into()));
    };
    set_head(&mut model, &head, &device);
    let mut validation_accuracy = score.accuracy;
    let mut fine_tune = None;
    if settings.tune_steps > 0 {
        let train: Vec<&PhotoFeatures> =
            features.iter().filter(|f| f.part == Part::Train).collect();
        let validation: Vec<&PhotoFeatures> = features
            .iter()
            .filter(|f| f.part == Part::Validation && f.source != "composite")
            .collect();
        let tune = crate::trunk_tune::TuneSettings {
            steps: settings.tune_steps,
            learning_rate: settings.tune_learning_rate,
            guard: settings.guard.clone(),
            ..crate::trunk_tune::TuneSettings::default()
        };
        // Built where it trains: weights loaded on the autodiff device are tracked.
        let train_device = crate::trunk_tune::training_device();
        let mut start = crate::trunk::imagenet_background(&settings.trunk_weights, &train_device)?;
        set_head(&mut start, &head, &train_device);
        let (tuned, report) =
            crate::trunk_tune::fine_tune(start, &train, &validation, score.accuracy, &tune, log)?;
        if let Some(tuned) = tuned {
            model = tuned;
            validation_accuracy = report.validation_accuracy;
        }
        fine_tune = Some(report);
    }
    crate::schedule::create_out_dir(&settings.out)?;
    let path = settings.out.join(NetKind::Background.file_name());
    let ensemble = BackgroundEnsemble {
        members: Vec::new(),
        level: None,
        trunk: Some(model),
    };
    let meta = vec![
        ("shotgrade.background.head_l2".to_string(), l2.to_string()),
        (
            "shotgrade.background.head_recipe".to_string(),
            format!(
                "train background-trunk --size {} --composites {} --composite-weight {} \
                 --people {} --fine-tune-steps {} --fine-tune-lr {}{}",
                settings.size,
                settings.composites,
                settings.composite_weight,
                settings.people,
                settings.tune_steps,
                settings.tune_learning_rate,
                if settings.mirror { " --mirror" } else { "" }
            ),
        ),
        (
            "shotgrade.background.trunk".to_string(),
            crate::trunk::PACKAGE.to_string(),
        ),
    ];
    ensemble.save(&config, true, &meta, &path)?;
    let report = TrunkBackgroundReport {
        weights: path,
        size: settings.size,
        train_photos,
        validation_photos,
        composites: settings.composites,
        composite_weight: settings.composite_weight,
        people: settings.people,
        tried,
        l2,
        validation_accuracy,
        fine_tune,
        validation_per_source: score.per_source,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| TrainError::Settings(e.to_string()))?;
    let metrics = settings.out.join("background-trunk.metrics.json");
    std::fs::write(&metrics, json).map_err(|e| TrainError::Write {
        path: metrics.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(report)
}

/// Adds `copies` of each person matted off the on-model `train` photos to the cut-out pool,
/// so that composites show people in rooms, on patterns and on other backdrops.
pub fn add_people(
    assets: &mut shotgrade_synth::Assets,
    labels: &Path,
    asset_root: &Path,
    copies: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(), TrainError> {
    use shotgrade_synth::matte::{MatteSettings, people_cutouts};
    let people = people_cutouts(labels, asset_root, Part::Train, &MatteSettings::default())
        .map_err(|e| TrainError::Settings(format!("real labels: {e}")))?;
    log(&format!(
        "{} people matted off train on-model photos ({} could not be: busy backdrop, or the \
         fill ate the product), {copies} cop{} each among {} cut-outs",
        people.cutouts.len(),
        people.skipped.len(),
        if copies == 1 { "y" } else { "ies" },
        assets.cutouts.len()
    ));
    for _ in 0..copies {
        assets.cutouts.extend(people.cutouts.iter().cloned());
    }
    Ok(())
}

/// Removes the cut-outs cut from a `validation` or `test` photo of the labelled set (matched by
/// file name: `cutouts/grocery/X_Iconic.png` is `real/grocery/iconic/X_Iconic.jpg`), so that
/// no pixel of those photos reaches the head's training through a composite. Returns how many
/// were removed.
pub fn drop_held_out_cutouts(
    assets: &mut shotgrade_synth::Assets,
    labels: &Path,
) -> Result<usize, TrainError> {
    let held_out: std::collections::HashSet<String> = load_labelled(labels)
        .map_err(|e| TrainError::Settings(format!("real labels: {e}")))?
        .into_iter()
        .filter(|p| p.part != Part::Train)
        .filter_map(|p| {
            Path::new(&p.path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    let before = assets.cutouts.len();
    assets.cutouts.retain(|c| !held_out.contains(&c.stem));
    Ok(before - assets.cutouts.len())
}

/// [`labelled_features`] of the photos in `parts` only, stopping with an error when the guard
/// says so.
fn labelled_features_of(
    model: &TrunkBackground,
    settings: &TrunkBackgroundSettings,
    feature_settings: FeatureSettings,
    parts: &[Part],
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PhotoFeatures>, TrainError> {
    let guard = &settings.guard;
    let mut stopped = None;
    let features = labelled_features_where(
        model,
        &settings.labels,
        &settings.assets,
        feature_settings,
        &|p: &LabelledPhoto| parts.contains(&p.part),
        &mut || {
            if let Some(code) = guard.stop_requested() {
                stopped = Some(format!("stopped by a signal (exit status {code})"));
            } else if guard.limit.is_some_and(|l| l.left().is_zero()) {
                stopped = Some("the time limit ran out".to_string());
            }
            stopped.is_none()
        },
        device,
        log,
    )?;
    match stopped {
        Some(why) => Err(TrainError::Stopped(format!(
            "{why} while the photos went through the trunk; nothing was written"
        ))),
        None => Ok(features),
    }
}

/// Writes the fitted linear classifier into the model's head (burn's linear weight is
/// `inputs × outputs`).
fn set_head(model: &mut TrunkBackground, head: &LinearBaseline, device: &Device) {
    use burn::module::Param;
    let (weights, bias) = head.folded();
    let (classes, inputs) = (weights.len(), weights.first().map_or(0, Vec::len));
    let mut w = vec![0.0f32; inputs * classes];
    for (c, row) in weights.iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            w[i * classes + c] = *v;
        }
    }
    model.head.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(w, [inputs, classes]),
        device,
    ));
    model.head.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [classes]),
        device,
    )));
}
