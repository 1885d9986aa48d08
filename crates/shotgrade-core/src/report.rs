//! What shotgrade says about one image: the scores, the models' verdicts, and the reasons.
//! These types are serialised as-is into the JSON/JSONL/CSV outputs and the HTTP API.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::geometry::BBox;
use crate::types::{BackgroundClass, PositionCategory};
use std::fmt;

/// Facts about the file and its pixels that the loader measures (not the models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ImageFacts {
    /// Width and height after EXIF orientation was applied.
    pub width: u32,
    pub height: u32,
    /// Container format detected from the bytes: `jpeg`, `png`, `webp`, `avif`, `heic`, `gif`,
    /// `bmp`, `tiff`.
    pub format: String,
    pub file_bytes: u64,
    /// Whether the file has an alpha channel (its pixels were flattened onto white).
    pub has_alpha: bool,
    /// Share of pixels that are mostly transparent (alpha below 50 %).
    pub transparent_fraction: f32,
    /// Mean RGB of a band 2 % of the shorter side wide around the border (after flattening):
    /// what a person sees as "the background colour" on a packshot.
    pub border_rgb: [u8; 3],
    /// Share of border-band pixels that are exactly RGB 255,255,255.
    pub border_pure_white_fraction: f32,
    /// Share of border-band pixels with every channel at 250 or more.
    #[serde(default)]
    pub border_near_white_fraction: f32,
    /// For JPEG files, the quality (1–100) they were saved at, estimated from the luminance
    /// quantisation table: exact for libjpeg-style encoders, close for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg_quality: Option<u8>,
}

/// The sub-scores and the total, all 0–100, higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Scores {
    pub total: f32,
    pub background: f32,
    pub position: f32,
    pub visual: f32,
    /// Aesthetic head of the experience network.
    pub aesthetic: f32,
    /// Noise head of the experience network: cleanliness, 100 = no visible noise, blur or
    /// compression damage.
    pub noise: f32,
}

/// The background network's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct BackgroundVerdict {
    pub class: BackgroundClass,
    pub probability: f32,
    /// Probability of every class.
    pub probabilities: BTreeMap<BackgroundClass, f32>,
}

/// The position network's verdict on the main product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PositionVerdict {
    /// `None` when no product was found.
    pub main: Option<MainProduct>,
    /// Number of products found after NMS.
    pub detections: usize,
    /// Other confident products at least a quarter the size of the main one: props, extra
    /// items, a second product.
    #[serde(default)]
    pub other_products: usize,
}

/// The main product and the measurements the position score is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct MainProduct {
    pub category: PositionCategory,
    /// Box in original pixels.
    pub bbox: BBox,
    pub probability: f32,
    pub subject_probability: f32,
    /// Box area / image area.
    pub fill: f32,
    /// Offset of the box centre from the image centre: 0 centred, 1 on the border.
    pub centre_offset: f32,
    /// Borders the box touches: any of `left`, `top`, `right`, `bottom`.
    pub touches: Vec<String>,
}

/// One deduction, in words a seller can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Reason {
    /// `background`, `position` or `visual`.
    pub component: String,
    /// Stable machine-readable code, e.g. `product_small`.
    pub code: String,
    pub message: String,
    /// Points this deduction costs the total score.
    pub points: f32,
}

/// Everything shotgrade concludes about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scene: String,
    pub scores: Scores,
    pub background: BackgroundVerdict,
    pub position: PositionVerdict,
    /// Deductions, largest first.
    pub reasons: Vec<Reason>,
    /// The marketplace profile's checks, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileVerdict>,
}

/// The outcome of one check, or of a whole profile (its worst check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct CheckResult {
    /// The measure's name (`longest_side`, …), `format` or `background`.
    pub check: String,
    pub status: Status,
    /// The measured value in words with its unit, e.g. `900 px`.
    pub measured: String,
    /// The requirement, e.g. `≥ 1000 px (warn)`.
    pub threshold: String,
    /// One sentence for a seller: what was measured against what.
    pub message: String,
    /// What to do about it; empty when the check passed.
    pub fix: String,
}

/// A profile's verdict on one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ProfileVerdict {
    pub name: String,
    pub title: String,
    /// The worst status of any check.
    pub status: Status,
    pub checks: Vec<CheckResult>,
}

impl ProfileVerdict {
    /// Checks with the given status.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(move |c| c.status == status)
    }
}
