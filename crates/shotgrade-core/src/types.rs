//! Domain types shared by every shotgrade crate.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::geometry::BBox;

/// What the background of a product photo is, as the background network classifies it.
///
/// The order is the order of the background network's output logits; it is part of the
/// weights' contract and must not change without retraining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackgroundClass {
    /// Pure or practically pure white: the classic marketplace packshot.
    White,
    /// Black or near-black studio backdrop.
    Black,
    /// Any other uniform or smoothly graded backdrop: grey, off-white, a colour, a gradient,
    /// a paper or fabric sweep.
    Solid,
    /// A real setting used as context: a table, a room, nature.
    Lifestyle,
    /// Busy surroundings with competing objects: shelves, clutter, loud patterns.
    Cluttered,
}

/// All background classes in logit order.
pub const BACKGROUND_CLASSES: [BackgroundClass; 5] = [
    BackgroundClass::White,
    BackgroundClass::Black,
    BackgroundClass::Solid,
    BackgroundClass::Lifestyle,
    BackgroundClass::Cluttered,
];

impl BackgroundClass {
    /// Index of this class in the network's output.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class at a logit index, if any.
    pub fn from_index(index: usize) -> Option<Self> {
        BACKGROUND_CLASSES.get(index).copied()
    }

    /// Lower-case name used in files, tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            BackgroundClass::White => "white",
            BackgroundClass::Black => "black",
            BackgroundClass::Solid => "solid",
            BackgroundClass::Lifestyle => "lifestyle",
            BackgroundClass::Cluttered => "cluttered",
        }
    }

    /// A studio backdrop with nothing else in it: `white`, `black` or `solid`.
    pub fn is_plain(self) -> bool {
        matches!(
            self,
            BackgroundClass::White | BackgroundClass::Black | BackgroundClass::Solid
        )
    }

    /// Parses a lower-case class name.
    pub fn parse(name: &str) -> Option<Self> {
        BACKGROUND_CLASSES.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for BackgroundClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a detected product occupies the subject position of the photo (seed, fig. 5, Output1).
///
/// `Subject`: the product is the photo's main subject — it is the object the photo is about, it
/// is whole in the frame and it is not a small item lost in its surroundings. `NonSubject`: the
/// product is present but does not hold that position (a small item in a scene, an object at the
/// edge, a secondary item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PositionCategory {
    Subject,
    NonSubject,
}

impl PositionCategory {
    /// Category from the network's subject probability.
    pub fn from_probability(subject_probability: f32) -> Self {
        if subject_probability >= 0.5 {
            PositionCategory::Subject
        } else {
            PositionCategory::NonSubject
        }
    }
}

/// One product found by the position network, in original-image pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Box of the product (Output2).
    pub bbox: BBox,
    /// Probability that the box holds a product (Output3, "coordinate probability").
    pub probability: f32,
    /// Probability that the product is in the subject position (Output1).
    pub subject_probability: f32,
}

impl Detection {
    /// The position category (Output1) as a class.
    pub fn category(&self) -> PositionCategory {
        PositionCategory::from_probability(self.subject_probability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_index_round_trips() {
        for (i, c) in BACKGROUND_CLASSES.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(BackgroundClass::from_index(i), Some(*c));
            assert_eq!(BackgroundClass::parse(c.name()), Some(*c));
        }
        assert_eq!(BackgroundClass::from_index(5), None);
        assert_eq!(BackgroundClass::parse("grey"), None);
    }

    #[test]
    fn category_threshold() {
        assert_eq!(
            PositionCategory::from_probability(0.5),
            PositionCategory::Subject
        );
        assert_eq!(
            PositionCategory::from_probability(0.49),
            PositionCategory::NonSubject
        );
    }
}
