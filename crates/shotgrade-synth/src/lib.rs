//! # shotgrade-synth
//!
//! Renders product photos procedurally — a backdrop of a known [`BackgroundClass`], a product of
//! a known box, a soft floor shadow, and a known degradation — so that every label is exact.
//! The bundled `examples/` images and the benchmarks come from here; the training compositor
//! builds on it.

pub mod assets;
pub mod compose;
pub mod labels;
pub mod matte;
mod render;
mod rng;

pub use assets::{AssetError, Assets};
pub use compose::{ComposeSettings, Label, Sample, background_class, compose};
pub use render::{Backdrop, Degradation, ProductShape, Scene, degrade, example_scenes, render};
pub use rng::SplitMix64;
pub use shotgrade_core::BackgroundClass;
