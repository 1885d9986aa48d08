//! Which input side and view suit the pretrained trunk's background head: the labelled photos
//! through the frozen EfficientNet-Lite0 once per side, prepared as the grader prepares them,
//! then linear heads over the pooled stages 5–7, the border statistics, or both, fitted on
//! `train` and scored on `validation` (and `test`, for the record).
//!
//! ```sh
//! cargo run --release -p shotgrade-train --example trunk_probe -- [SIZE …]
//! ```
//! Needs the trunk's weights (`shotgrade train trunk`) and `../shared/assets`. Variants, by
//! environment variable:
//! * `SQUASH=1` squashes photos to the square instead of letterboxing them on white;
//! * `COMPOSITES=N` adds N composites to the training photos (each of weight
//!   `COMPOSITE_WEIGHT`, default 1); `PEOPLE=N[,M…]` adds N (then M…) copies of each person
//!   matted off the `train` on-model photos to their cut-outs;
//! * `MIRROR=1` adds each training photo mirrored;
//! * `BOXPOOL=1` and `MOSAIC=1` add box-pooled and corner-mosaic features (see their
//!   functions); `MLP=H` also fits a one-hidden-layer head of H units;
//! * `BOTH_ONLY=1` fits only the shipped kind of head (trunk + border);
//! * `FINAL=1` also prints the test accuracy (for the record, once the choice is made on
//!   validation).

use burn::tensor::Device;
use shotgrade_image::BackgroundView;
use shotgrade_synth::labels::Part;
use shotgrade_train::trunk::{cached_weights, imagenet_background};
use shotgrade_train::trunk_head::{
    FeatureSettings, composite_features, fit_and_score, labelled_features,
};
use std::path::Path;

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![224] } else { sizes };
    let home = std::env::var_os("HOME").expect("HOME");
    let pth = cached_weights(&Path::new(&home).join(".cache/shotgrade/efficientnet"));
    let device = Device::flex();
    let model =
        imagenet_background(&pth, &device).expect("trunk weights: run shotgrade train trunk");
    let mut log = |l: &str| eprintln!("{l}");
    let view = if std::env::var_os("SQUASH").is_some() {
        BackgroundView::Squash
    } else {
        BackgroundView::LetterboxWhite
    };
    for size in sizes {
        let settings = FeatureSettings {
            size,
            view,
            mirror_train: std::env::var_os("MIRROR").is_some(),
            keep_maps: std::env::var_os("BOXPOOL").is_some(),
        };
        let started = std::time::Instant::now();
        let photos = labelled_features(
            &model,
            Path::new("data/real"),
            Path::new("../shared/assets"),
            settings,
            &device,
            &mut log,
        )
        .expect("features");
        let photos = if std::env::var_os("MOSAIC").is_some() {
            with_corner_mosaic(photos, &model, size, &device)
        } else {
            photos
        };
        let photos = if settings.keep_maps {
            backdrop_pooled(photos, size)
        } else {
            photos
        };
        let composites: usize = std::env::var("COMPOSITES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let weight: f32 = std::env::var("COMPOSITE_WEIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.0);
        // Each value of PEOPLE (comma-separated) is a variant; the photos' features are shared.
        let people_values: Vec<usize> = std::env::var("PEOPLE")
            .unwrap_or_default()
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        let people_values = if people_values.is_empty() {
            vec![0]
        } else {
            people_values
        };
        for people in people_values {
            let mut features = photos.clone();
            if composites > 0 {
                let mut assets =
                    shotgrade_synth::Assets::load(Path::new("../shared/assets"), 320, 640)
                        .expect("assets");
                shotgrade_train::trunk_head::drop_held_out_cutouts(
                    &mut assets,
                    Path::new("data/real"),
                )
                .expect("labels");
                if people > 0 {
                    shotgrade_train::trunk_head::add_people(
                        &mut assets,
                        Path::new("data/real"),
                        Path::new("../shared/assets"),
                        people,
                        &mut log,
                    )
                    .expect("people");
                }
                features.extend(
                    composite_features(&model, &assets, 1, composites, weight, settings, &device)
                        .expect("composites"),
                );
            }
            println!(
                "{size} px, {view:?}, people {people}: {} photos and composites in {:.0} s",
                features.len(),
                started.elapsed().as_secs_f64()
            );
            let heads: &[(bool, bool, &str)] = if std::env::var_os("BOTH_ONLY").is_some() {
                &[(true, true, "trunk + border")]
            } else {
                &[
                    (false, true, "border statistics"),
                    (true, false, "trunk"),
                    (true, true, "trunk + border"),
                ]
            };
            if let Some(hidden) = std::env::var("MLP").ok().and_then(|v| v.parse().ok()) {
                mlp_head(&features, hidden);
            }
            for &(trunk, border, name) in heads {
                for l2 in [1e-3f32, 1e-2, 3e-2] {
                    let (_, scores) = fit_and_score(
                        &features,
                        trunk,
                        border,
                        l2,
                        &[Part::Validation, Part::Test],
                    )
                    .expect("fit");
                    let sources: Vec<String> = scores[0]
                        .per_source
                        .iter()
                        .map(|(s, n, a)| format!("{s} {:.0}% ({n})", 100.0 * a))
                        .collect();
                    // Test accuracy only for the record of a choice already made (FINAL=1):
                    // choices between settings look at validation alone.
                    let test = if std::env::var_os("FINAL").is_some() {
                        format!("  test {:.1} %", 100.0 * scores[1].accuracy)
                    } else {
                        String::new()
                    };
                    println!(
                        "  {name:<18} l2 {l2:<6} validation {:.1} %{test}   {}",
                        100.0 * scores[0].accuracy,
                        sources.join(", ")
                    );
                }
            }
        }
    }
}

/// BOXPOOL=1: each photo's stage-5 map also pooled over the cells outside its labelled box
/// (inside the photo's part of the letterbox), inserted before the border statistics — an
/// upper bound for box-aware pooling, the labelled box standing in for the detector's.
/// BOXPOOL=FILE.jsonl: the detector's main box instead, read from `shotgrade score` rows of the
/// photos (paths given as `../shared/assets/real/…`).
fn backdrop_pooled(
    photos: Vec<shotgrade_train::trunk_head::PhotoFeatures>,
    size: u32,
) -> Vec<shotgrade_train::trunk_head::PhotoFeatures> {
    use shotgrade_core::Letterbox;
    let labelled: std::collections::HashMap<String, shotgrade_synth::labels::LabelledPhoto> =
        shotgrade_synth::labels::load_labelled(Path::new("data/real"))
            .expect("labels")
            .into_iter()
            .map(|p| (p.path.clone(), p))
            .collect();
    let detected: Option<std::collections::HashMap<String, shotgrade_core::BBox>> =
        std::env::var("BOXPOOL")
            .ok()
            .filter(|v| v.ends_with(".jsonl"))
            .map(|file| {
                std::fs::read_to_string(file)
                    .expect("BOXPOOL rows")
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|r| {
                        let path = r["path"].as_str()?.trim_start_matches("../shared/assets/");
                        let b = &r["position"]["main"]["bbox"];
                        let v = |k: &str| b[k].as_f64().map(|x| x as f32);
                        Some((
                            path.to_string(),
                            shotgrade_core::BBox::new(v("x0")?, v("y0")?, v("x1")?, v("y1")?),
                        ))
                    })
                    .collect()
            });
    let channels = 112;
    let side = (size / 16) as usize;
    photos
        .into_iter()
        .map(|mut f| {
            let cell = 16.0f32;
            let mut mask = vec![true; side * side];
            let chosen = match &detected {
                Some(boxes) => boxes.get(&f.path).copied(),
                None => labelled.get(&f.path).and_then(|p| p.bbox),
            };
            if let Some(p) = labelled.get(&f.path)
                && let Some(b) = chosen
                && let Ok((w, h)) =
                    image::image_dimensions(Path::new("../shared/assets").join(&p.path))
            {
                let lb = Letterbox::new(w, h, size);
                let c = lb.to_canvas(&b);
                for j in 0..side {
                    for i in 0..side {
                        let (x, y) = ((i as f32 + 0.5) * cell, (j as f32 + 0.5) * cell);
                        let in_photo = x >= lb.pad_x as f32
                            && x < (lb.pad_x + lb.scaled_width) as f32
                            && y >= lb.pad_y as f32
                            && y < (lb.pad_y + lb.scaled_height) as f32;
                        let in_box = x >= c.x0 && x < c.x1 && y >= c.y0 && y < c.y1;
                        mask[j * side + i] = in_photo && !in_box;
                    }
                }
            }
            if !mask.iter().any(|m| *m) {
                mask = vec![true; side * side];
            }
            let n = mask.iter().filter(|m| **m).count() as f32;
            let pooled: Vec<f32> = (0..channels)
                .map(|ch| {
                    let plane = &f.map[ch * side * side..(ch + 1) * side * side];
                    plane
                        .iter()
                        .zip(&mask)
                        .filter(|(_, m)| **m)
                        .map(|(v, _)| v)
                        .sum::<f32>()
                        / n
                })
                .collect();
            let stats = f
                .features
                .split_off(f.features.len() - shotgrade_image::BACKDROP_FEATURES);
            f.features.extend(pooled);
            f.features.extend(stats);
            f.map = Vec::new();
            f
        })
        .collect()
}

/// MOSAIC=1: a second look at the backdrop in more detail — the photo's four corners (squares
/// of half its shorter side), each scaled to half the input side and tiled 2 × 2 — through the
/// trunk; its pooled stages join the head's input before the border statistics.
fn with_corner_mosaic(
    photos: Vec<shotgrade_train::trunk_head::PhotoFeatures>,
    model: &shotgrade_models::TrunkBackground,
    size: u32,
    device: &Device,
) -> Vec<shotgrade_train::trunk_head::PhotoFeatures> {
    use burn::tensor::{Tensor, TensorData};
    let half = size / 2;
    let mut out = Vec::with_capacity(photos.len());
    for chunk in photos.chunks(16) {
        let mut pixels = Vec::new();
        for f in chunk {
            let img = shotgrade_image::load_path(
                &Path::new("../shared/assets").join(&f.path),
                &shotgrade_image::Limits::default(),
            )
            .map(|l| l.rgb)
            .unwrap_or_else(|_| image::RgbImage::new(size, size));
            let (w, h) = img.dimensions();
            let c = (w.min(h) / 2).max(1);
            let mut mosaic = image::RgbImage::new(size, size);
            for (k, (x, y)) in [(0, 0), (w - c, 0), (0, h - c), (w - c, h - c)]
                .into_iter()
                .enumerate()
            {
                let crop = image::imageops::crop_imm(&img, x, y, c, c).to_image();
                let small = image::imageops::resize(
                    &crop,
                    half,
                    half,
                    image::imageops::FilterType::Triangle,
                );
                image::imageops::replace(
                    &mut mosaic,
                    &small,
                    i64::from((k as u32 % 2) * half),
                    i64::from((k as u32 / 2) * half),
                );
            }
            shotgrade_image::push_chw(&mosaic, &mut pixels);
        }
        let n = chunk.len();
        let s = size as usize;
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, s, s]), device);
        let zeros = Tensor::<2>::zeros([n, shotgrade_image::BACKDROP_FEATURES], device);
        let values = model
            .features(x, zeros)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let width = values.len() / n;
        for (f, row) in chunk.iter().zip(values.chunks(width)) {
            let mut f = f.clone();
            let stats = f
                .features
                .split_off(f.features.len() - shotgrade_image::BACKDROP_FEATURES);
            f.features
                .extend(&row[..width - shotgrade_image::BACKDROP_FEATURES]);
            f.features.extend(stats);
            out.push(f);
        }
    }
    out
}

/// MLP=H: a one-hidden-layer head (H units, ReLU, dropout 0.5) over the standardised trunk +
/// border features, full-batch AdamW with weight decay on the `train` photos and composites
/// (weighted), validation accuracy every 25 epochs.
fn mlp_head(features: &[shotgrade_train::trunk_head::PhotoFeatures], hidden: usize) {
    use burn::module::Module;
    use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::activation::{log_softmax, relu};
    use burn::tensor::{Int, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct Mlp {
        a: Linear,
        b: Linear,
        drop: Dropout,
    }
    impl Mlp {
        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            self.b.forward(
                self.drop
                    .forward(relu(self.a.forward(self.drop.forward(x)))),
            )
        }
    }
    let train: Vec<_> = features.iter().filter(|f| f.part == Part::Train).collect();
    let val: Vec<_> = features
        .iter()
        .filter(|f| f.part == Part::Validation && f.source != "composite")
        .collect();
    let width = train[0].features.len();
    let mut mean = vec![0.0f32; width];
    let mut sd = vec![0.0f32; width];
    for f in &train {
        for (m, v) in mean.iter_mut().zip(&f.features) {
            *m += v / train.len() as f32;
        }
    }
    for f in &train {
        for ((s, v), m) in sd.iter_mut().zip(&f.features).zip(&mean) {
            *s += (v - m) * (v - m) / train.len() as f32;
        }
    }
    let matrix = |rows: &[&shotgrade_train::trunk_head::PhotoFeatures], device: &Device| {
        let mut x = Vec::with_capacity(rows.len() * width);
        for f in rows {
            for ((v, m), s) in f.features.iter().zip(&mean).zip(&sd) {
                x.push(if *s > 1e-12 { (v - m) / s.sqrt() } else { 0.0 });
            }
        }
        Tensor::<2>::from_data(TensorData::new(x, [rows.len(), width]), device)
    };
    let device = Device::flex().autodiff();
    let eval_device = Device::flex();
    let x = matrix(&train, &device);
    let targets: Vec<i64> = train.iter().map(|f| f.class.index() as i64).collect();
    let y = Tensor::<2, Int>::from_data(TensorData::new(targets, [train.len(), 1]), &device);
    let weights: Vec<f32> = train.iter().map(|f| f.weight).collect();
    let total: f32 = weights.iter().sum();
    let w = Tensor::<1>::from_data(TensorData::new(weights, [train.len()]), &device);
    let xv = matrix(&val, &eval_device);
    for decay in [1e-3f32, 1e-2, 1e-1] {
        let mut model = Mlp {
            a: LinearConfig::new(width, hidden).init(&device),
            b: LinearConfig::new(hidden, 5).init(&device),
            drop: DropoutConfig::new(0.5).init(),
        };
        let mut optim = AdamWConfig::new().with_weight_decay(decay).init();
        let mut best = (0.0f32, 0usize);
        for epoch in 1..=400 {
            let picked = log_softmax(model.forward(x.clone()), 1)
                .gather(1, y.clone())
                .reshape([train.len()]);
            let loss = (picked * w.clone()).sum().neg() / total;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
            if epoch % 25 == 0 {
                let predicted = model
                    .valid()
                    .forward(xv.clone())
                    .argmax(1)
                    .into_data()
                    .iter::<i64>()
                    .collect::<Vec<_>>();
                let right = val
                    .iter()
                    .zip(&predicted)
                    .filter(|(f, p)| f.class.index() as i64 == **p)
                    .count();
                let acc = right as f32 / val.len() as f32;
                if acc > best.0 {
                    best = (acc, epoch);
                }
            }
        }
        println!(
            "  MLP {hidden} units, weight decay {decay}: best validation {:.1} % at epoch {}",
            100.0 * best.0,
            best.1
        );
    }
}
