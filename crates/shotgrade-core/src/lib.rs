//! # shotgrade-core
//!
//! The parts of shotgrade that are plain logic: the domain types ([`BackgroundClass`],
//! [`Detection`], [`Report`]), geometry ([`BBox`], IoU, NMS, [`Letterbox`]), decoding of the
//! position network's raw grid output, and the scoring policy that turns model outputs into
//! 0–100 scores with reasons, and the marketplace rule profiles ([`ProfileSet`]).
//!
//! Nothing here depends on a neural-network framework or touches files, so every rule can be
//! unit- and property-tested in isolation and reused by the CLI, the server and the library.

pub mod config;
pub mod detect;
pub mod error_kind;
pub mod geometry;
pub mod policy;
pub mod profile;
pub mod report;
pub mod row;
pub mod types;

pub use config::{ConfigError, ScoringConfig};
pub use detect::{DetectionDecoder, GridLevel, POSITION_CELL_WIDTH, nms};
pub use error_kind::ErrorKind;
pub use geometry::{BBox, Letterbox, iou};
pub use policy::{ModelOutputs, background_verdict, score};
pub use profile::{ProfileSet, check_profile};
pub use report::{CheckResult, ImageFacts, ProfileVerdict, Reason, Report, Scores, Status};
pub use row::{ErrorRow, Row, RowError, ScoredRow};
pub use types::{BACKGROUND_CLASSES, BackgroundClass, Detection, PositionCategory};
