//! The shipped background weights classify freshly rendered photos of known classes.

use shotgrade_core::{BBox, BackgroundClass};
use shotgrade_models::Device;
use shotgrade_synth::{Backdrop, Degradation, ProductShape, Scene, SplitMix64, render};
use shotgrade_train::data::{BackgroundExample, background_preprocessor};

fn scene(backdrop: Backdrop, seed: u64) -> Scene {
    let mut rng = SplitMix64::new(seed);
    let (w, h) = (
        rng.range(300.0, 700.0) as u32,
        rng.range(300.0, 700.0) as u32,
    );
    let fill = rng.range(0.3, 0.7);
    let product = BBox::from_center(
        w as f32 / 2.0,
        h as f32 / 2.0,
        w as f32 * fill,
        h as f32 * fill,
    );
    let colour = [
        rng.range(30.0, 220.0) as u8,
        rng.range(30.0, 220.0) as u8,
        rng.range(30.0, 220.0) as u8,
    ];
    Scene {
        width: w,
        height: h,
        backdrop,
        product: Some((ProductShape::Carton, product, colour)),
        shadow: true,
        degradation: Degradation::default(),
        seed,
    }
}

#[test]
fn shipped_background_weights_classify_rendered_photos() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/background.safetensors");
    let device = Device::flex();
    // The networks and any second stage, as the grader loads them.
    let loaded = shotgrade_train::ensemble::load_background_members(&[path], &device)
        .expect("models/background.safetensors is shipped and loads");
    let (ensemble, config) = (&loaded.ensemble, &loaded.config);
    let mut pre = background_preprocessor(config);
    let mut examples = Vec::new();
    for seed in 0..4u64 {
        let cases = [
            (Backdrop::Uniform([255; 3]), BackgroundClass::White),
            (Backdrop::Uniform([6; 3]), BackgroundClass::Black),
            (Backdrop::Uniform([70, 140, 200]), BackgroundClass::Solid),
            (
                Backdrop::Gradient {
                    top: [235, 200, 190],
                    bottom: [180, 120, 110],
                },
                BackgroundClass::Solid,
            ),
            (
                Backdrop::Clutter { objects: 40 },
                BackgroundClass::Cluttered,
            ),
        ];
        for (backdrop, class) in cases {
            let img = render(&scene(backdrop, 100 + seed));
            examples.push(BackgroundExample {
                input: pre.background_input(&img),
                backdrop: pre.backdrop_input(&img),
                class,
            });
        }
    }
    let predicted = shotgrade_train::background::predict_ensemble(
        ensemble,
        loaded.trees.as_ref(),
        &examples,
        config.input_size,
        &device,
    );
    let correct = predicted
        .iter()
        .zip(&examples)
        .filter(|(p, e)| **p == e.class.index())
        .count();
    let wrong: Vec<String> = predicted
        .iter()
        .zip(&examples)
        .filter(|(p, e)| **p != e.class.index())
        .map(|(p, e)| format!("{} → {:?}", e.class, BackgroundClass::from_index(*p)))
        .collect();
    assert!(
        correct * 10 >= examples.len() * 9,
        "{correct}/{} right; wrong: {wrong:?}",
        examples.len()
    );
}
