//! # shotgrade-train
//!
//! Trains shotgrade's networks on an endless stream of composites from
//! [`shotgrade_synth`] (plus real photos with weak labels where they help), evaluates them on
//! held-out synthetic and real data, and writes weights with their metrics.
//!
//! Every model trains through one loop, [`fit::fit`]; each model is a [`fit::Task`] (its
//! batches, loss and evaluation) in its own module.

pub mod average;
pub mod backdrop;
pub mod background;
pub mod baseline;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod eval;
pub mod experience;
pub mod fit;
pub mod metrics;
pub mod parallel;
pub mod pool;
pub mod position;
pub mod position_real;
pub mod real_metrics;
pub mod resume;
pub mod schedule;
pub mod trunk;
pub mod trunk_head;
pub mod trunk_tune;

pub use backdrop::{BackdropTrainSettings, train_backdrop};
pub use background::{BackgroundTrainSettings, train_background};
pub use error::TrainError;
pub use experience::{ExperienceTrainSettings, TwinLoss, train_experience};
pub use fit::{Ended, Evaluation, FitSettings, Fitted, Gradients, Guard, Schedule, Task, fit};
pub use position::{PositionTrainSettings, train_position};
pub use schedule::{ComputeDevice, RunSettings};
