//! The result and error rows every front end (CLI, HTTP) emits, one per input; the HTML report
//! reads them back from JSONL.

use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;
use crate::report::{
    BackgroundVerdict, ImageFacts, PositionVerdict, ProfileVerdict, Reason, Report, Scores,
};

/// One input's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Row {
    Scored(Box<ScoredRow>),
    Error(ErrorRow),
}

/// A scored image. `status` is always `"ok"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ScoredRow {
    pub path: String,
    pub status: String,
    pub scene: String,
    pub scores: Scores,
    pub image: ImageFacts,
    pub background: BackgroundVerdict,
    pub position: PositionVerdict,
    pub reasons: Vec<Reason>,
    /// Marketplace profile checks, when a profile was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileVerdict>,
}

/// An input that could not be scored. `status` is always `"error"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ErrorRow {
    pub path: String,
    pub status: String,
    pub error: RowError,
}

/// Why an input failed: a stable `kind` and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RowError {
    /// `unsupported_format`, `corrupt`, `too_large` or `io` for a file; `config` for a refused
    /// setting; `internal` for a bug; `queue_full` from a busy server.
    pub kind: ErrorKind,
    pub message: String,
}

impl Row {
    pub fn scored(path: String, facts: ImageFacts, report: Report) -> Self {
        Row::Scored(Box::new(ScoredRow {
            path,
            status: "ok".into(),
            scene: report.scene,
            scores: report.scores,
            image: facts,
            background: report.background,
            position: report.position,
            reasons: report.reasons,
            profile: report.profile,
        }))
    }

    pub fn error(path: String, kind: ErrorKind, message: String) -> Self {
        Row::Error(ErrorRow {
            path,
            status: "error".into(),
            error: RowError { kind, message },
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
