//! # shotgrade-train
//!
//! Trains shotgrade's networks on an endless stream of composites from
//! [`shotgrade_synth`] (plus real photos with weak labels where they help), evaluates them on
//! held-out synthetic and real data, and writes weights with their metrics.

pub mod background;
pub mod data;
pub mod metrics;

pub use background::{BackgroundTrainSettings, train_background};
