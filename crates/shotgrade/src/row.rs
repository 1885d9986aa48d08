//! The result and error rows every front end (CLI, HTTP) emits, one per input.

use serde::Serialize;
use shotgrade_core::report::{BackgroundVerdict, PositionVerdict};
use shotgrade_core::{ImageFacts, Reason, Report, Scores};

/// One input's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Row {
    Scored(Box<ScoredRow>),
    Error(ErrorRow),
}

/// A scored image. `status` is always `"ok"`.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredRow {
    pub path: String,
    pub status: &'static str,
    pub scene: String,
    pub scores: Scores,
    pub image: ImageFacts,
    pub background: BackgroundVerdict,
    pub position: PositionVerdict,
    pub reasons: Vec<Reason>,
}

/// An input that could not be scored. `status` is always `"error"`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRow {
    pub path: String,
    pub status: &'static str,
    pub error: ErrorBody,
}

/// Why an input failed: a stable `kind` and a message for people.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// `unsupported_format`, `corrupt`, `too_large` or `io`.
    pub kind: String,
    pub message: String,
}

impl Row {
    pub fn scored(path: String, facts: ImageFacts, report: Report) -> Self {
        Row::Scored(Box::new(ScoredRow {
            path,
            status: "ok",
            scene: report.scene,
            scores: report.scores,
            image: facts,
            background: report.background,
            position: report.position,
            reasons: report.reasons,
        }))
    }

    pub fn error(path: String, kind: &str, message: String) -> Self {
        Row::Error(ErrorRow {
            path,
            status: "error",
            error: ErrorBody {
                kind: kind.to_string(),
                message,
            },
        })
    }

    pub fn path(&self) -> &str {
        match self {
            Row::Scored(s) => &s.path,
            Row::Error(e) => &e.path,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Row::Scored(_))
    }
}
