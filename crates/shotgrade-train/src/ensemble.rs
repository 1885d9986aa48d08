//! Snapshot ensembles of the background network: several checkpoints of one training run
//! written into one weights file (`shotgrade_models::BackgroundEnsemble`), whose probabilities
//! the grader averages.

use burn::tensor::Device;
use serde::Serialize;
use shotgrade_models::weights::{self, NetKind};
use shotgrade_models::{
    BackdropTrees, BackgroundEnsemble, BackgroundNetConfig, net_from_bytes, trees_from_header,
};
use std::path::{Path, PathBuf};

use crate::error::TrainError;

/// What went into an ensemble file.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleReport {
    pub out: String,
    /// The snapshot files, in member order.
    pub members: Vec<String>,
    /// Each member's training step, where its file records it.
    pub steps: Vec<Option<usize>>,
}

/// Background networks loaded from several files, flattened into one ensemble.
pub struct LoadedMembers {
    pub ensemble: BackgroundEnsemble,
    /// The config the networks share, its [`BackgroundNetConfig::snapshots`] cleared (and
    /// [`BackgroundNetConfig::backdrop_level`] set only with a second stage).
    pub config: BackgroundNetConfig,
    /// Each file's training step, where its header records one.
    pub steps: Vec<Option<usize>>,
    /// The second stage's trees, when the one file given has them.
    pub trees: Option<BackdropTrees>,
}

/// Loads background networks — single networks or ensembles — reading each file once, and
/// returns all their members. Errors if the files' networks differ in shape: their
/// probabilities could not be averaged over one input. A file's second stage (backdrop level)
/// is kept only when it is the one file given: it was trained after its own networks.
pub fn load_background_members(
    files: &[PathBuf],
    device: &Device,
) -> Result<LoadedMembers, TrainError> {
    let mut members = Vec::new();
    let mut level = None;
    let mut trees = None;
    let mut trunk = None;
    let mut steps = Vec::with_capacity(files.len());
    let mut shape: Option<BackgroundNetConfig> = None;
    for path in files {
        let file = path.display().to_string();
        let bytes = weights::read_file(path)?;
        let (ensemble, config, header) =
            net_from_bytes::<BackgroundEnsemble>(bytes, &file, device)?;
        let file_trees = trees_from_header(&config, &header, &file)?;
        if ensemble.trunk.is_some() && files.len() > 1 {
            return Err(TrainError::Settings(format!(
                "{file} holds the pretrained-trunk model, which makes no ensemble; use it alone"
            )));
        }
        if ensemble.trunk.is_some() {
            trunk = ensemble.trunk;
        }
        if (ensemble.level.is_some() || file_trees.is_some()) && files.len() > 1 {
            return Err(TrainError::Settings(format!(
                "{file} holds a second stage (backdrop level) as well as networks; use it alone, \
                 or combine the networks' own files"
            )));
        }
        level = ensemble.level;
        trees = file_trees;
        let config = BackgroundNetConfig {
            snapshots: None,
            ..config
        };
        match &shape {
            Some(first) if *first != config => {
                return Err(TrainError::Settings(format!(
                    "{file} holds a network of another shape than {}; snapshots of one ensemble \
                     must share the input size, channels and median planes",
                    files[0].display()
                )));
            }
            Some(_) => {}
            None => shape = Some(config),
        }
        steps.push(
            header
                .metadata
                .get("shotgrade.train.step")
                .and_then(|s| s.parse().ok()),
        );
        members.extend(ensemble.members);
    }
    let config = shape.ok_or_else(|| TrainError::Settings("no background weights given".into()))?;
    Ok(LoadedMembers {
        ensemble: BackgroundEnsemble {
            members,
            level,
            trunk,
        },
        config,
        steps,
        trees,
    })
}

/// Writes the members of `files` as one ensemble into `out/background.safetensors`, recording
/// the source files and their training steps in the file's metadata.
pub fn write_background_ensemble(
    files: &[PathBuf],
    out: &Path,
) -> Result<EnsembleReport, TrainError> {
    let LoadedMembers {
        ensemble,
        config,
        steps,
        trees,
    } = load_background_members(files, &Device::flex())?;
    if ensemble.trunk.is_some() {
        return Err(TrainError::Settings(
            "the pretrained-trunk model makes no snapshot ensemble".into(),
        ));
    }
    let config = BackgroundNetConfig {
        snapshots: Some(ensemble.members.len()),
        ..config
    };
    crate::schedule::create_out_dir(out)?;
    let path = out.join(NetKind::Background.file_name());
    let members: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut meta = vec![
        ("shotgrade.ensemble.members".to_string(), members.join(";")),
        (
            "shotgrade.ensemble.steps".to_string(),
            steps
                .iter()
                .map(|s| s.map_or_else(|| "?".to_string(), |s| s.to_string()))
                .collect::<Vec<_>>()
                .join(";"),
        ),
    ];
    if let Some(trees) = &trees {
        let json = trees.to_json().map_err(TrainError::Settings)?;
        meta.push((shotgrade_models::TREES_METADATA_KEY.to_string(), json));
    }
    ensemble.save(&config, true, &meta, &path)?;
    Ok(EnsembleReport {
        out: path.display().to_string(),
        members,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shotgrade_models::load_net;

    fn save(config: &BackgroundNetConfig, step: usize, path: &Path) {
        let net = config.init(&Device::flex());
        let meta = [("shotgrade.train.step".to_string(), step.to_string())];
        weights::save_net(
            &net,
            NetKind::Background,
            &config.to_string(),
            true,
            &meta,
            path,
        )
        .expect("save");
    }

    /// Two checkpoints become one file of two members that records where they came from;
    /// adding the ensemble file to a third checkpoint flattens it; shapes must agree.
    #[test]
    fn writes_flattens_and_checks_shapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BackgroundNetConfig::new().with_median_colours(Some(true));
        let files: Vec<PathBuf> = [300, 200, 100]
            .iter()
            .map(|&step| {
                let path = dir
                    .path()
                    .join(format!("background.step{step}.safetensors"));
                save(&config, step, &path);
                path
            })
            .collect();
        let out = dir.path().join("pair");
        let report = write_background_ensemble(&files[..2], &out).expect("ensemble");
        assert_eq!(report.steps, vec![Some(300), Some(200)]);
        let device = Device::flex();
        let (pair, c) =
            load_net::<BackgroundEnsemble>(&out.join("background.safetensors"), &device)
                .expect("load");
        assert_eq!((pair.members.len(), c.snapshots), (2, Some(2)));
        assert!(c.has_median_colours());

        let LoadedMembers {
            ensemble: three,
            config: shared,
            ..
        } = load_background_members(
            &[out.join("background.safetensors"), files[2].clone()],
            &device,
        )
        .expect("members");
        assert_eq!((three.members.len(), shared.snapshots), (3, None));

        let plain = dir.path().join("plain.safetensors");
        save(&BackgroundNetConfig::new(), 1, &plain);
        let e = write_background_ensemble(&[files[0].clone(), plain], &dir.path().join("bad"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another shape"), "{e}");
    }

    /// A file that is not a background weights file — garbage bytes, another network's
    /// weights, a missing file — stops the ensemble with an error that names it.
    #[test]
    fn bad_files_get_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.safetensors");
        save(&BackgroundNetConfig::new(), 1, &good);
        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"\xff\xff\xff\xffnot a safetensors file").expect("write");
        let other = dir.path().join("position.safetensors");
        let position = shotgrade_models::PositionNetConfig::new().init(&Device::flex());
        weights::save_net(
            &position,
            NetKind::Position,
            &shotgrade_models::PositionNetConfig::new().to_string(),
            true,
            &[],
            &other,
        )
        .expect("save");
        let missing = dir.path().join("missing.safetensors");
        for (bad, expected) in [
            (&garbage, "not a valid safetensors file"),
            (&other, "holds the `position` network"),
            (&missing, "cannot read"),
        ] {
            let e =
                write_background_ensemble(&[good.clone(), bad.clone()], &dir.path().join("out"))
                    .unwrap_err()
                    .to_string();
            assert!(
                e.contains(expected) && e.contains(&bad.display().to_string()),
                "{e}"
            );
        }
        assert!(!dir.path().join("out/background.safetensors").exists());
    }
}
