//! # shotgrade
//!
//! Grades e-commerce product photos the way a catalogue team does: the background (S120), the
//! product's position (S130) and the visual experience (S140) are judged by three networks and
//! combined into one 0–100 score with reasons (S150).
//!
//! ```no_run
//! use shotgrade::{GradeOptions, Grader, GraderSettings};
//! use shotgrade_models::{Device, Models};
//!
//! let device = Device::flex();
//! let models = Models::embedded(&device).expect("this build has default weights")?;
//! let grader = Grader::new(models, GraderSettings::default())?;
//! let bytes = std::fs::read("photo.jpg")?;
//! let options = GradeOptions {
//!     scene: Some("electronics".into()),
//!     profile: Some("amazon-main".into()),
//! };
//! let row = grader.grade_bytes("photo.jpg", &bytes, &options);
//! println!("{}", serde_json::to_string(&row)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod grader;

pub use grader::{GradeError, GradeOptions, Grader, GraderSettings, Source, input_spec};
pub use shotgrade_core as core;
pub use shotgrade_core::ErrorKind;
pub use shotgrade_core::row::{ErrorRow, Row, RowError, ScoredRow};
pub use shotgrade_image as image;
pub use shotgrade_models as models;
