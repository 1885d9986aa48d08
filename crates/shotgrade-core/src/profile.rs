//! Marketplace rule profiles: deterministic checks of a photo against one marketplace's stated
//! image requirements, each with the measured value, the threshold and a fix.
//!
//! A profile is a small TOML table (the built-in ones are in `profiles.toml` next to this
//! crate's sources; users add or override profiles with a file of the same format):
//!
//! ```toml
//! [amazon-main]
//! title = "Amazon main image"
//! source = "Amazon Seller Central: Product image requirements"
//! formats = ["jpeg", "png", "gif", "tiff"]
//! background = ["white"]
//! [amazon-main.checks]
//! longest_side = { min = 500, warn_min = 1000 }
//! border_pure_white = { min = 90 }
//! product_fill = { min = 85 }
//! ```
//!
//! Every check names a [`Measure`] and a [`Bound`]: a value below `min` or above `max` fails
//! (a hard requirement), one below `warn_min` or above `warn_max` warns (a recommendation).
//!
//! **Product fill** is the product's span along its longer extent, `max(box_w / W, box_h / H)`,
//! in percent. Marketplaces say "the product fills 85 % of the frame"; measured as area, a
//! bottle could never pass that on a square canvas, while the span reading is what sellers
//! and catalogue teams check by eye.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::report::{CheckResult, ImageFacts, ProfileVerdict, Report, Status};
use crate::types::BackgroundClass;

/// The built-in profiles, in the format described in the module docs.
pub const BUILTIN_PROFILES: &str = include_str!("../profiles.toml");

/// What a check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Longer side in pixels (after EXIF orientation).
    LongestSide,
    /// Shorter side in pixels.
    ShortestSide,
    /// Width / height.
    AspectRatio,
    /// Width × height / 10⁶.
    Megapixels,
    /// File size in MB (10⁶ bytes).
    FileMegabytes,
    /// Share of the border band at exactly RGB 255,255,255, in percent.
    BorderPureWhite,
    /// Share of the border band with every channel ≥ 250, in percent.
    BorderNearWhite,
    /// The main product's span along its longer extent, in percent of the frame.
    ProductFill,
    /// Number of image borders the main product touches.
    ProductCutSides,
    /// Other confident products at least a quarter the size of the main one.
    OtherProducts,
}

impl Measure {
    /// The name used in profiles and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Measure::LongestSide => "longest_side",
            Measure::ShortestSide => "shortest_side",
            Measure::AspectRatio => "aspect_ratio",
            Measure::Megapixels => "megapixels",
            Measure::FileMegabytes => "file_megabytes",
            Measure::BorderPureWhite => "border_pure_white",
            Measure::BorderNearWhite => "border_near_white",
            Measure::ProductFill => "product_fill",
            Measure::ProductCutSides => "product_cut_sides",
            Measure::OtherProducts => "other_products",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Measure::LongestSide => "longest side",
            Measure::ShortestSide => "shortest side",
            Measure::AspectRatio => "aspect ratio (width / height)",
            Measure::Megapixels => "resolution",
            Measure::FileMegabytes => "file size",
            Measure::BorderPureWhite => "pure-white border (RGB 255)",
            Measure::BorderNearWhite => "near-white border (RGB ≥ 250)",
            Measure::ProductFill => "product span of the frame",
            Measure::ProductCutSides => "borders the product touches",
            Measure::OtherProducts => "other products in the photo",
        }
    }

    fn format(self, v: f64) -> String {
        match self {
            Measure::LongestSide | Measure::ShortestSide => format!("{v:.0} px"),
            Measure::AspectRatio => format!("{v:.2}"),
            Measure::Megapixels => format!("{v:.1} MP"),
            Measure::FileMegabytes => format!("{v:.1} MB"),
            Measure::BorderPureWhite | Measure::BorderNearWhite | Measure::ProductFill => {
                format!("{v:.0} %")
            }
            Measure::ProductCutSides | Measure::OtherProducts => format!("{v:.0}"),
        }
    }

    /// What to do when the value is too low (`low`) or too high.
    fn fix(self, low: bool, limit: &str) -> String {
        match (self, low) {
            (Measure::LongestSide | Measure::ShortestSide, true) => format!(
                "upload a larger original ({limit} or more); upscaling a small photo does not help"
            ),
            (Measure::LongestSide | Measure::ShortestSide | Measure::Megapixels, false) => {
                format!("downscale the image to {limit} or less")
            }
            (Measure::Megapixels, true) => format!("upload a larger original ({limit} or more)"),
            (Measure::AspectRatio, _) => {
                format!("crop or pad the canvas to an aspect ratio of {limit}")
            }
            (Measure::FileMegabytes, _) => format!(
                "re-save under {limit}: JPEG quality 85 and no larger than the marketplace shows"
            ),
            (Measure::BorderPureWhite | Measure::BorderNearWhite, _) => format!(
                "make the background pure white RGB 255,255,255 ({limit} of the border at least): \
                 lift the whites in an editor or use a background-removal tool"
            ),
            (Measure::ProductFill, true) => {
                format!("crop closer so the product spans {limit} of the frame or more")
            }
            (Measure::ProductFill, false) => {
                format!("leave a margin: the product should span at most {limit} of the frame")
            }
            (Measure::ProductCutSides, _) => {
                "show the whole product: zoom out or re-centre so it clears every border".into()
            }
            (Measure::OtherProducts, _) => {
                "show only the product being sold: remove props, accessories and extra items".into()
            }
        }
    }
}

/// Limits of one check; any subset may be given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Below this the check fails.
    pub min: Option<f64>,
    /// Above this the check fails.
    pub max: Option<f64>,
    /// Below this (but not below `min`) the check warns.
    pub warn_min: Option<f64>,
    /// Above this (but not above `max`) the check warns.
    pub warn_max: Option<f64>,
}

/// One marketplace's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub title: String,
    /// Where the marketplace states these requirements.
    pub source: String,
    /// Anything a user should know about how the rules were read.
    #[serde(default)]
    pub notes: String,
    /// Accepted container formats (`jpeg`, `png`, …); empty accepts any.
    #[serde(default)]
    pub formats: Vec<String>,
    /// Accepted background classes; empty accepts any.
    #[serde(default)]
    pub background: Vec<BackgroundClass>,
    #[serde(default)]
    pub checks: BTreeMap<Measure, Bound>,
}

/// Why a profile file or name was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid profile file: {0}")]
    Parse(String),
    #[error("profile {name}: {problem}")]
    Invalid { name: String, problem: String },
    #[error("unknown profile {name:?}; known profiles: {known}")]
    Unknown { name: String, known: String },
}

/// Named profiles: the built-in ones plus any a user added.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// The built-in marketplace profiles.
    pub fn builtin() -> Self {
        let profiles =
            parse_profiles(BUILTIN_PROFILES).expect("the built-in profiles are valid (tested)");
        ProfileSet { profiles }
    }

    /// Adds the profiles in `toml_text`; a name that already exists is replaced.
    pub fn extend_from_toml(&mut self, toml_text: &str) -> Result<(), ProfileError> {
        self.profiles.extend(parse_profiles(toml_text)?);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_string(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Profile)> {
        self.profiles.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn parse_profiles(text: &str) -> Result<BTreeMap<String, Profile>, ProfileError> {
    let profiles: BTreeMap<String, Profile> =
        toml::from_str(text).map_err(|e| ProfileError::Parse(e.to_string()))?;
    for (name, p) in &profiles {
        let invalid = |problem: String| ProfileError::Invalid {
            name: name.clone(),
            problem,
        };
        for (m, b) in &p.checks {
            let values = [b.min, b.max, b.warn_min, b.warn_max];
            if values.iter().flatten().any(|v| !v.is_finite()) {
                return Err(invalid(format!("{} has a non-finite limit", m.name())));
            }
            if let (Some(lo), Some(hi)) = (b.min.or(b.warn_min), b.max.or(b.warn_max))
                && lo > hi
            {
                return Err(invalid(format!("{} has min {lo} above max {hi}", m.name())));
            }
        }
        for f in &p.formats {
            if !KNOWN_FORMATS.contains(&f.as_str()) {
                return Err(invalid(format!(
                    "unknown format {f:?}; use {}",
                    KNOWN_FORMATS.join(", ")
                )));
            }
        }
    }
    Ok(profiles)
}

/// Container format names as the loader reports them.
const KNOWN_FORMATS: [&str; 8] = ["jpeg", "png", "webp", "avif", "heic", "gif", "bmp", "tiff"];

/// The value a measure takes for one image; `None` when it cannot be measured (no product).
fn measure(m: Measure, facts: &ImageFacts, report: &Report) -> Option<f64> {
    let (w, h) = (facts.width as f64, facts.height as f64);
    let main = report.position.main.as_ref();
    Some(match m {
        Measure::LongestSide => w.max(h),
        Measure::ShortestSide => w.min(h),
        Measure::AspectRatio => w / h.max(1.0),
        Measure::Megapixels => w * h / 1e6,
        Measure::FileMegabytes => facts.file_bytes as f64 / 1e6,
        Measure::BorderPureWhite => facts.border_pure_white_fraction as f64 * 100.0,
        Measure::BorderNearWhite => facts.border_near_white_fraction as f64 * 100.0,
        Measure::ProductFill => {
            let b = main?.bbox;
            let span = (b.width() as f64 / w.max(1.0)).max(b.height() as f64 / h.max(1.0));
            span.clamp(0.0, 1.0) * 100.0
        }
        Measure::ProductCutSides => main?.touches.len() as f64,
        Measure::OtherProducts => report.position.other_products as f64,
    })
}

/// Checks one image against a profile. `facts` are the loader's, `report` the scorer's.
pub fn check_profile(
    name: &str,
    profile: &Profile,
    facts: &ImageFacts,
    report: &Report,
) -> ProfileVerdict {
    let mut checks = Vec::new();
    if !profile.formats.is_empty() {
        let ok = profile.formats.contains(&facts.format);
        let wanted = profile.formats.join(", ");
        checks.push(CheckResult {
            check: "format".into(),
            status: if ok { Status::Pass } else { Status::Fail },
            measured: facts.format.clone(),
            threshold: format!("one of {wanted}"),
            message: format!("the file is {}; accepted: {wanted}", facts.format),
            fix: if ok {
                String::new()
            } else {
                format!("re-save the photo as {}", profile.formats[0])
            },
        });
    }
    if !profile.background.is_empty() {
        let class = report.background.class;
        let ok = profile.background.contains(&class);
        let wanted: Vec<&str> = profile.background.iter().map(|c| c.name()).collect();
        checks.push(CheckResult {
            check: "background".into(),
            status: if ok { Status::Pass } else { Status::Fail },
            measured: class.name().into(),
            threshold: format!("one of {}", wanted.join(", ")),
            message: format!(
                "the background looks {class} ({:.0} % sure); required: {}",
                report.background.probability * 100.0,
                wanted.join(" or ")
            ),
            fix: if ok {
                String::new()
            } else {
                format!(
                    "reshoot or cut out the product on a {} background",
                    wanted[0]
                )
            },
        });
    }
    for (&m, bound) in &profile.checks {
        checks.push(check_bound(m, bound, measure(m, facts, report)));
    }
    ProfileVerdict {
        name: name.to_string(),
        title: profile.title.clone(),
        status: checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
        checks,
    }
}

fn check_bound(m: Measure, b: &Bound, value: Option<f64>) -> CheckResult {
    let mut limits = Vec::new();
    let mut push = |sign: &str, v: Option<f64>, level: &str| {
        if let Some(v) = v {
            limits.push(format!("{sign} {}{level}", m.format(v)));
        }
    };
    push("≥", b.min, "");
    push("≤", b.max, "");
    push("≥", b.warn_min, " (recommended)");
    push("≤", b.warn_max, " (recommended)");
    let threshold = limits.join(", ");
    let Some(v) = value else {
        return CheckResult {
            check: m.name().into(),
            status: Status::Fail,
            measured: "no product found".into(),
            threshold,
            message: format!("{} cannot be measured: no product was found", m.label()),
            fix: "show one product clearly, in the middle of the frame".into(),
        };
    };
    let (status, low, limit) = if b.min.is_some_and(|lo| v < lo) {
        (Status::Fail, true, b.min)
    } else if b.max.is_some_and(|hi| v > hi) {
        (Status::Fail, false, b.max)
    } else if b.warn_min.is_some_and(|lo| v < lo) {
        (Status::Warn, true, b.warn_min)
    } else if b.warn_max.is_some_and(|hi| v > hi) {
        (Status::Warn, false, b.warn_max)
    } else {
        (Status::Pass, true, None)
    };
    let measured = m.format(v);
    let (message, fix) = match limit {
        None => (
            format!("{} is {measured} ({threshold})", m.label()),
            String::new(),
        ),
        Some(limit) => {
            let l = m.format(limit);
            let verb = if status == Status::Fail {
                "must be"
            } else {
                "should be"
            };
            let sign = if low { "at least" } else { "at most" };
            (
                format!("{} is {measured}; it {verb} {sign} {l}", m.label()),
                m.fix(low, &l),
            )
        }
    };
    CheckResult {
        check: m.name().into(),
        status,
        measured,
        threshold,
        message,
        fix,
    }
}

#[cfg(test)]
mod tests;
