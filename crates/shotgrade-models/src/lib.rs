//! # shotgrade-models
//!
//! The three networks of the seed method in burn — [`BackgroundNet`] (S120), [`PositionNet`]
//! (S130) and [`ExperienceNet`] (S140) — their weights files, and [`Models`], which loads all
//! three and runs a batch through them concurrently.

pub mod backdrop_trees;
pub mod background;
pub mod blocks;
pub mod experience;
pub mod position;
pub mod pretrained_background;
pub mod trunk;
pub mod weights;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub use backdrop_trees::{BackdropTrees, TREES_METADATA_KEY, TreeSettings, split_light};
pub use background::{BackdropLevel, BackgroundEnsemble, BackgroundNet, BackgroundNetConfig};
pub use burn::tensor::Device;
pub use experience::{ExperienceNet, ExperienceNetConfig, ExperienceOutput};
pub use position::{PositionNet, PositionNetConfig, PositionOutput};
pub use pretrained_background::TrunkBackground;
pub use weights::{NetKind, WeightsError, WeightsHeader};

use burn::config::Config;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use std::path::Path;

/// Multiply–accumulates of a linear layer for one sample.
pub(crate) fn linear_macs(layer: &Linear) -> u64 {
    let [fan_in, fan_out] = layer.weight.dims();
    (fan_in * fan_out) as u64
}

/// The configs of all three networks.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfigs {
    pub background: BackgroundNetConfig,
    pub position: PositionNetConfig,
    pub experience: ExperienceNetConfig,
}

impl ModelConfigs {
    /// The preprocessing these networks expect: input sides, the background input's block
    /// planes, and whether the background model's second stage needs the backdrop statistics.
    pub fn input_spec(&self) -> shotgrade_image::InputSpec {
        shotgrade_image::InputSpec {
            background: self.background.input_size as u32,
            background_view: self.background.view(),
            background_blocks: self.background.block_planes(),
            backdrop: self.background.needs_statistics(),
            position: self.position.input_size as u32,
            experience: self.experience.input_size as u32,
        }
    }
}

impl Default for ModelConfigs {
    fn default() -> Self {
        ModelConfigs {
            background: BackgroundNetConfig::new(),
            position: PositionNetConfig::new(),
            experience: ExperienceNetConfig::new(),
        }
    }
}

/// Where a set of weights came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// `embedded`, a directory path, or `random` for untrained initialisations.
    pub source: String,
    /// Whether all three networks were trained.
    pub trained: bool,
    /// SHA-256 over the three files' bytes (background, position, experience), hex; empty for
    /// random initialisations.
    pub sha256: String,
}

/// The inputs of one batch, each a concatenation of per-image `C × H × W` tensors as
/// `shotgrade_image`'s preprocessing produces them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub len: usize,
    pub background: Vec<f32>,
    /// Backdrop statistics, `len × BACKDROP_FEATURES`, for a background model with a second
    /// stage; empty otherwise (the stage is then skipped).
    pub backdrop: Vec<f32>,
    pub position: Vec<f32>,
    pub experience: Vec<f32>,
}

/// What the networks say about one image, before the scoring policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    /// Softmax over the background classes.
    pub background_probabilities: [f32; 5],
    /// Position network output, `cells × 6`, in the core decoder's layout.
    pub position: Vec<f32>,
    /// Aesthetic sub-score, 0–100.
    pub aesthetic: f32,
    /// Noise (cleanliness) sub-score, 0–100.
    pub noise: f32,
}

/// All three networks, ready for inference.
#[derive(Debug)]
pub struct Models {
    /// The background network's snapshots (one for weights files of a single network).
    pub background: BackgroundEnsemble,
    /// The background model's second stage when it is trees
    /// ([`BackgroundNetConfig::backdrop_trees`]); an MLP stage lives in the ensemble.
    pub backdrop_trees: Option<BackdropTrees>,
    pub position: PositionNet,
    pub experience: ExperienceNet,
    pub configs: ModelConfigs,
    pub provenance: Provenance,
    device: Device,
}

impl Models {
    /// Freshly initialised, untrained networks (for training, tests and benchmarks).
    pub fn untrained(configs: ModelConfigs, device: &Device) -> Self {
        Models {
            background: configs.background.init_ensemble(device),
            backdrop_trees: None,
            position: configs.position.init(device),
            experience: configs.experience.init(device),
            configs,
            provenance: Provenance {
                source: "random".into(),
                trained: false,
                sha256: String::new(),
            },
            device: device.clone(),
        }
    }

    /// The weights compiled into this build, if `models/` held them at build time.
    pub fn embedded(device: &Device) -> Option<Result<Self, WeightsError>> {
        embedded::EMBEDDED.map(|files| {
            let [b, p, e] = files.map(<[u8]>::to_vec);
            Self::from_bytes(
                [
                    ("<embedded>/background.safetensors", b),
                    ("<embedded>/position.safetensors", p),
                    ("<embedded>/experience.safetensors", e),
                ],
                "embedded",
                device,
            )
        })
    }

    /// Loads `background.safetensors`, `position.safetensors` and `experience.safetensors` from
    /// a directory.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self, WeightsError> {
        let [(_, b), (_, p), (_, e)] = weights::paths_in(dir);
        let label = |p: &Path| p.display().to_string();
        let files = [
            (label(&b), weights::read_file(&b)?),
            (label(&p), weights::read_file(&p)?),
            (label(&e), weights::read_file(&e)?),
        ];
        let [(lb, bb), (lp, pb), (le, eb)] = files;
        Self::from_bytes(
            [(lb.as_str(), bb), (lp.as_str(), pb), (le.as_str(), eb)],
            &dir.display().to_string(),
            device,
        )
    }

    fn from_bytes(
        files: [(&str, Vec<u8>); 3],
        source: &str,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for (_, bytes) in &files {
            hasher.update(bytes);
        }
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let [(bf, bb), (pf, pb), (ef, eb)] = files;
        let (background, bc, bh) = net_from_bytes::<BackgroundEnsemble>(bb, bf, device)?;
        let backdrop_trees = trees_from_header(&bc, &bh, bf)?;
        let (position, pc, ph) = net_from_bytes::<PositionNet>(pb, pf, device)?;
        let (experience, ec, eh) = net_from_bytes::<ExperienceNet>(eb, ef, device)?;
        Ok(Models {
            background,
            backdrop_trees,
            position,
            experience,
            configs: ModelConfigs {
                background: bc,
                position: pc,
                experience: ec,
            },
            provenance: Provenance {
                source: source.to_string(),
                trained: bh.trained && ph.trained && eh.trained,
                sha256,
            },
            device: device.clone(),
        })
    }

    /// Prepares the networks for inference only: folds the batch norms of the position network
    /// and of the background trunk into their convolutions (same outputs up to float rounding,
    /// faster). Do not save or train models after this.
    pub fn fold_for_inference(&mut self) {
        self.position.fold_batch_norms();
        if let Some(trunk) = &mut self.background.trunk {
            trunk.fold_batch_norms();
        }
    }

    /// Writes the three weights files into `dir` (created if needed).
    pub fn save_dir(
        &self,
        dir: &Path,
        trained: bool,
        extra: &[(String, String)],
    ) -> Result<(), WeightsError> {
        std::fs::create_dir_all(dir).map_err(|e| WeightsError::Write {
            file: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let [(_, b), (_, p), (_, e)] = weights::paths_in(dir);
        let mut background_extra = extra.to_vec();
        if let Some(trees) = &self.backdrop_trees {
            let json = trees.to_json().map_err(|message| WeightsError::Write {
                file: b.display().to_string(),
                message,
            })?;
            background_extra.push((TREES_METADATA_KEY.to_string(), json));
        }
        self.background
            .save(&self.configs.background, trained, &background_extra, &b)?;
        weights::save_net(
            &self.position,
            NetKind::Position,
            &self.configs.position.to_string(),
            trained,
            extra,
            &p,
        )?;
        weights::save_net(
            &self.experience,
            NetKind::Experience,
            &self.configs.experience.to_string(),
            trained,
            extra,
            &e,
        )
    }

    /// Parameter counts of the background, position and experience networks.
    pub fn param_counts(&self) -> [usize; 3] {
        use burn::module::Module;
        [
            self.background.num_params(),
            self.position.num_params(),
            self.experience.num_params(),
        ]
    }

    /// Times one forward pass of one network on a synthetic batch, including reading the
    /// result back (so lazy backends are measured completely). For benchmarks.
    /// The background model alone on `n` images: its network (mirror-averaged, over every
    /// ensemble member) and, when it has one and `backdrop` holds `n` statistics rows, its
    /// second stage's white/solid split. `background` holds `n` inputs of the configured shape.
    pub fn background_probabilities(
        &self,
        background: &[f32],
        backdrop: &[f32],
        n: usize,
    ) -> Vec<[f32; 5]> {
        if n == 0 {
            return Vec::new();
        }
        let bs = self.configs.background.input_size;
        let shape = [n, self.configs.background.input_channels(), bs, bs];
        assert_eq!(
            background.len(),
            shape.iter().product::<usize>(),
            "background buffer has the wrong size"
        );
        let has_statistics = backdrop.len() == n * shotgrade_image::BACKDROP_FEATURES;
        assert!(
            has_statistics || self.background.trunk.is_none(),
            "the pretrained-trunk model needs {n} rows of backdrop statistics, got {} numbers",
            backdrop.len()
        );
        let statistics = (self.background.takes_statistics_tensor() && has_statistics).then(|| {
            Tensor::<2>::from_data(
                TensorData::new(backdrop.to_vec(), [n, shotgrade_image::BACKDROP_FEATURES]),
                &self.device,
            )
        });
        let x = Tensor::<4>::from_data(TensorData::new(background.to_vec(), shape), &self.device);
        let bg = self
            .background
            .classify(x, statistics)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let classes = bg.len() / n;
        let white = match &self.backdrop_trees {
            Some(trees) if has_statistics => trees.white_probabilities(backdrop),
            _ => Vec::new(),
        };
        (0..n)
            .map(|i| {
                let mut probs = [0.0; 5];
                for (k, p) in probs.iter_mut().enumerate().take(classes.min(5)) {
                    *p = bg[i * classes + k];
                }
                if let Some(&w) = white.get(i) {
                    split_light(&mut probs, w);
                }
                probs
            })
            .collect()
    }

    pub fn time_forward(&self, kind: NetKind, batch: usize) -> std::time::Duration {
        let (bs, ps, es) = self.input_sizes();
        let input = |shape: [usize; 4]| Tensor::<4>::full(shape, 0.5, &self.device);
        let start = std::time::Instant::now();
        let values = match kind {
            NetKind::Background => self
                .background
                .probabilities(input([
                    batch,
                    self.configs.background.input_channels(),
                    bs,
                    bs,
                ]))
                .into_data()
                .num_elements(),
            NetKind::Position => self
                .position
                .forward(input([batch, 3, ps, ps]))
                .packed()
                .into_data()
                .num_elements(),
            NetKind::Experience => self
                .experience
                .forward(input([batch, 3, es, 2 * es]))
                .noise
                .into_data()
                .num_elements(),
        };
        std::hint::black_box(values);
        start.elapsed()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Input side lengths `(background, position, experience height)`.
    pub fn input_sizes(&self) -> (usize, usize, usize) {
        (
            self.configs.background.input_size,
            self.configs.position.input_size,
            self.configs.experience.input_size,
        )
    }

    /// Runs one batch through the three networks — concurrently, as the seed allows (S120–S140
    /// are independent) — and returns one [`RawOutputs`] per image, in order.
    ///
    /// # Panics
    /// Panics if the batch's buffers do not hold `len` inputs of the configured sizes: that is
    /// a programming error in the caller, not a data error.
    pub fn infer(&self, batch: &Batch) -> Vec<RawOutputs> {
        let n = batch.len;
        if n == 0 {
            return Vec::new();
        }
        let (_, ps, es) = self.input_sizes();
        let tensor = |data: &[f32], shape: [usize; 4]| {
            assert_eq!(
                data.len(),
                shape.iter().product::<usize>(),
                "batch buffer has the wrong size"
            );
            Tensor::<4>::from_data(TensorData::new(data.to_vec(), shape), &self.device)
        };
        let to_vec = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        let to_vec3 = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap_or_default();

        let ((bg, pos), exp) = rayon::join(
            || {
                rayon::join(
                    || self.background_probabilities(&batch.background, &batch.backdrop, n),
                    || {
                        to_vec3(
                            self.position
                                .forward(tensor(&batch.position, [n, 3, ps, ps]))
                                .packed(),
                        )
                    },
                )
            },
            || {
                let out = self
                    .experience
                    .forward(tensor(&batch.experience, [n, 3, es, 2 * es]));
                (to_vec(out.aesthetic), to_vec(out.noise))
            },
        );
        let cells = pos.len() / n;
        (0..n)
            .map(|i| RawOutputs {
                background_probabilities: bg[i],
                position: pos[i * cells..(i + 1) * cells].to_vec(),
                aesthetic: exp.0[i] * 100.0,
                noise: exp.1[i] * 100.0,
            })
            .collect()
    }
}

/// A network with a weights file of its own: which file kind it is and how its config builds
/// and checks it. Lets one loader serve all three networks.
pub trait Network: burn::module::Module + burn::store::ModuleSnapshot + Sized {
    type Config: Config + Clone + std::fmt::Display;
    const KIND: NetKind;
    fn build(config: &Self::Config, device: &Device) -> Self;
    /// Why the config cannot build a working network, if it cannot.
    fn check(config: &Self::Config) -> Result<(), String>;
    /// Builds the network for `config` (already checked) and loads a weights file's tensors
    /// into it.
    fn load(
        config: &Self::Config,
        bytes: Vec<u8>,
        file: &str,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        build_and_load(config, bytes, file, device)
    }
}

/// A network of `config` with a weights file's tensors: what [`Network::load`] does unless a
/// network overrides it.
fn build_and_load<N: Network>(
    config: &N::Config,
    bytes: Vec<u8>,
    file: &str,
    device: &Device,
) -> Result<N, WeightsError> {
    let mut net = N::build(config, device);
    weights::load_tensors(&mut net, bytes, file, N::KIND)?;
    Ok(net)
}

impl Network for BackgroundNet {
    type Config = BackgroundNetConfig;
    const KIND: NetKind = NetKind::Background;
    fn build(config: &Self::Config, device: &Device) -> Self {
        config.init(device)
    }
    fn check(config: &Self::Config) -> Result<(), String> {
        if config.is_pretrained() {
            return Err("it holds the pretrained-trunk model, not the from-scratch network".into());
        }
        match (config.snapshots, config.has_second_stage()) {
            (Some(n), _) => Err(format!(
                "it holds a snapshot ensemble of {n} networks, not one network (score and \
                 evaluate with it; train from one of its source checkpoints)"
            )),
            (None, true) => Err(
                "it holds a network with a second stage (white against off-white), not one \
                 network (score and evaluate with it; train from the network's own file)"
                    .into(),
            ),
            (None, false) => config.validate(),
        }
    }
}

impl BackgroundEnsemble {
    /// Writes the ensemble with its header to `path`: one network without a second stage
    /// ([`BackgroundNetConfig::snapshots`] and [`BackgroundNetConfig::backdrop_level`] unset)
    /// under the plain tensor names (the layout every build reads; [`Network::load`] below
    /// reads it back), otherwise every member as `members.N.…` and the stage as `level.…`.
    pub fn save(
        &self,
        config: &BackgroundNetConfig,
        trained: bool,
        extra: &[(String, String)],
        path: &Path,
    ) -> Result<(), WeightsError> {
        let (kind, json) = (NetKind::Background, config.to_string());
        match self.members.as_slice() {
            [single] if config.snapshots.is_none() && self.level.is_none() => {
                weights::save_net(single, kind, &json, trained, extra, path)
            }
            _ => weights::save_net(self, kind, &json, trained, extra, path),
        }
    }
}

impl Network for BackgroundEnsemble {
    type Config = BackgroundNetConfig;
    const KIND: NetKind = NetKind::Background;
    fn build(config: &Self::Config, device: &Device) -> Self {
        config.init_ensemble(device)
    }
    fn check(config: &Self::Config) -> Result<(), String> {
        config.validate()
    }
    /// A file without [`BackgroundNetConfig::snapshots`] and without a second stage holds one
    /// network under the plain tensor names: it loads as that network, an ensemble of one.
    fn load(
        config: &Self::Config,
        bytes: Vec<u8>,
        file: &str,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        if config.snapshots.is_none() && config.backdrop_level.is_none() && !config.is_pretrained()
        {
            return BackgroundNet::load(config, bytes, file, device).map(Self::single);
        }
        build_and_load(config, bytes, file, device)
    }
}

/// A network whose config builds it with `init` and checks itself with `validate`, and whose
/// file holds nothing but its tensors.
macro_rules! plain_network {
    ($net:ty, $config:ty, $kind:expr) => {
        impl Network for $net {
            type Config = $config;
            const KIND: NetKind = $kind;
            fn build(config: &Self::Config, device: &Device) -> Self {
                config.init(device)
            }
            fn check(config: &Self::Config) -> Result<(), String> {
                config.validate()
            }
        }
    };
}

plain_network!(PositionNet, PositionNetConfig, NetKind::Position);
plain_network!(ExperienceNet, ExperienceNetConfig, NetKind::Experience);

/// The second stage's trees a background weights file carries in its metadata, when its config
/// says it has them. `file` names it in errors.
pub fn trees_from_header(
    config: &BackgroundNetConfig,
    header: &WeightsHeader,
    file: &str,
) -> Result<Option<BackdropTrees>, WeightsError> {
    if config.backdrop_trees.is_none() {
        return Ok(None);
    }
    let corrupt = |message: String| WeightsError::Corrupt {
        file: file.to_string(),
        message,
    };
    let json = header.metadata.get(TREES_METADATA_KEY).ok_or_else(|| {
        corrupt(format!(
            "its config has trees but {TREES_METADATA_KEY} is missing"
        ))
    })?;
    BackdropTrees::from_json(json).map(Some).map_err(corrupt)
}

/// Loads one network's weights file on its own (for evaluation and fine-tuning), e.g.
/// `load_net::<BackgroundNet>(path, &device)`.
pub fn load_net<N: Network>(path: &Path, device: &Device) -> Result<(N, N::Config), WeightsError> {
    let file = path.display().to_string();
    let bytes = weights::read_file(path)?;
    let (net, config, _) = net_from_bytes::<N>(bytes, &file, device)?;
    Ok((net, config))
}

/// Reads a weights file's header, rebuilds and checks the config it records, builds the
/// network and loads the tensors into it. `file` names it in errors.
pub fn net_from_bytes<N: Network>(
    bytes: Vec<u8>,
    file: &str,
    device: &Device,
) -> Result<(N, N::Config, WeightsHeader), WeightsError> {
    let header = weights::read_header(&bytes, file, N::KIND)?;
    let bad_config = |message: String| WeightsError::WrongNet {
        file: file.to_string(),
        expected: N::KIND.name(),
        message: format!("its config is unusable: {message}"),
    };
    let config = N::Config::load_binary(header.config_json.as_bytes())
        .map_err(|e| bad_config(e.to_string()))?;
    N::check(&config).map_err(bad_config)?;
    let net = N::load(&config, bytes, file, device)?;
    Ok((net, config, header))
}

#[cfg(test)]
mod tests;
