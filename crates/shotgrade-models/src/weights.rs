//! Weights files: one safetensors file per network, with the network's config and provenance in
//! the file's metadata, so a file always rebuilds the architecture it was trained with.

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Metadata keys written into every weights file.
pub const META_NET: &str = "shotgrade.net";
pub const META_CONFIG: &str = "shotgrade.config";
pub const META_TRAINED: &str = "shotgrade.trained";
pub const META_FORMAT: &str = "shotgrade.format";
/// Bumped when the tensor layout of any network changes incompatibly.
pub const FORMAT_VERSION: &str = "1";

/// Which of the three networks a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetKind {
    Background,
    Position,
    Experience,
}

impl NetKind {
    pub const ALL: [NetKind; 3] = [NetKind::Background, NetKind::Position, NetKind::Experience];

    pub fn name(self) -> &'static str {
        match self {
            NetKind::Background => "background",
            NetKind::Position => "position",
            NetKind::Experience => "experience",
        }
    }

    /// File name inside a weights directory.
    pub fn file_name(self) -> String {
        format!("{}.safetensors", self.name())
    }
}

/// A weights file that cannot be used. Every variant names the file.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("cannot read weights file {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("weights file {file} is not a valid safetensors file: {message}")]
    Corrupt { file: String, message: String },
    #[error("weights file {file} is not a shotgrade {expected} network: {message}")]
    WrongNet {
        file: String,
        expected: &'static str,
        message: String,
    },
    #[error("weights file {file} does not match the {net} network: {message}")]
    Mismatch {
        file: String,
        net: &'static str,
        message: String,
    },
    #[error("cannot write weights file {file}: {message}")]
    Write { file: String, message: String },
}

/// What a weights file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsHeader {
    pub net: String,
    /// The network's `Config` as JSON.
    pub config_json: String,
    /// Whether the weights came out of training (false for random initialisations).
    pub trained: bool,
    /// All metadata, including training provenance.
    pub metadata: HashMap<String, String>,
}

/// Reads and checks the header of a weights file held in memory.
pub fn read_header(
    bytes: &[u8],
    file: &str,
    expected: NetKind,
) -> Result<WeightsHeader, WeightsError> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Corrupt {
            file: file.to_string(),
            message: e.to_string(),
        })?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let wrong = |message: String| WeightsError::WrongNet {
        file: file.to_string(),
        expected: expected.name(),
        message,
    };
    let net = metadata
        .get(META_NET)
        .cloned()
        .ok_or_else(|| wrong(format!("metadata key `{META_NET}` is missing")))?;
    if net != expected.name() {
        return Err(wrong(format!("it holds the `{net}` network")));
    }
    match metadata.get(META_FORMAT).map(String::as_str) {
        Some(FORMAT_VERSION) => {}
        other => {
            return Err(wrong(format!(
                "weights format {} is not the supported format {FORMAT_VERSION}",
                other.unwrap_or("(none)")
            )));
        }
    }
    let config_json = metadata
        .get(META_CONFIG)
        .cloned()
        .ok_or_else(|| wrong(format!("metadata key `{META_CONFIG}` is missing")))?;
    let trained = metadata.get(META_TRAINED).is_some_and(|v| v == "true");
    Ok(WeightsHeader {
        net,
        config_json,
        trained,
        metadata,
    })
}

/// Loads tensors into `net`, which must have been built from the file's own config. Every
/// tensor of the network must be present with the right shape, and the file must hold nothing
/// else; otherwise the error names the tensors.
pub fn load_tensors<M: Module + ModuleSnapshot>(
    net: &mut M,
    bytes: Vec<u8>,
    file: &str,
    kind: NetKind,
) -> Result<(), WeightsError> {
    let mismatch = |message: String| WeightsError::Mismatch {
        file: file.to_string(),
        net: kind.name(),
        message,
    };
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .allow_partial(true)
        .validate(true);
    let result = net
        .load_from(&mut store)
        .map_err(|e| mismatch(e.to_string()))?;
    if !result.errors.is_empty() {
        let list: Vec<String> = result
            .errors
            .iter()
            .take(5)
            .map(|e| e.to_string())
            .collect();
        return Err(mismatch(list.join("; ")));
    }
    if !result.missing.is_empty() {
        let list: Vec<&str> = result
            .missing
            .iter()
            .take(5)
            .map(|(p, _)| p.as_str())
            .collect();
        return Err(mismatch(format!("missing tensor(s): {}", list.join(", "))));
    }
    if !result.unused.is_empty() {
        let list: Vec<&str> = result.unused.iter().take(5).map(String::as_str).collect();
        return Err(mismatch(format!(
            "unexpected tensor(s): {}",
            list.join(", ")
        )));
    }
    Ok(())
}

/// Writes `net` with its header to `path`.
pub fn save_net<M: Module + ModuleSnapshot>(
    net: &M,
    kind: NetKind,
    config_json: &str,
    trained: bool,
    extra: &[(String, String)],
    path: &Path,
) -> Result<(), WeightsError> {
    // Written under a temporary name and renamed: a run killed while writing leaves the
    // previous file whole.
    let tmp = path.with_extension("safetensors.partial");
    let mut store = SafetensorsStore::from_file(&tmp)
        .overwrite(true)
        .metadata(META_NET, kind.name())
        .metadata(META_FORMAT, FORMAT_VERSION)
        .metadata(META_CONFIG, config_json)
        .metadata(META_TRAINED, if trained { "true" } else { "false" });
    for (k, v) in extra {
        store = store.metadata(k.clone(), v.clone());
    }
    let fail = |message: String| WeightsError::Write {
        file: path.display().to_string(),
        message,
    };
    net.save_into(&mut store).map_err(|e| fail(e.to_string()))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| fail(e.to_string()))
}

/// Reads a weights file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, WeightsError> {
    std::fs::read(path).map_err(|source| WeightsError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Where each network's file lives in a weights directory.
pub fn paths_in(dir: &Path) -> [(NetKind, PathBuf); 3] {
    NetKind::ALL.map(|k| (k, dir.join(k.file_name())))
}
