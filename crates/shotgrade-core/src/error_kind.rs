//! Every kind of failure a user can see, in rows and in HTTP responses, with its HTTP status
//! in one place.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an image or a request failed: stable, machine-readable, serialised in `snake_case`
/// (`unsupported_format`, `queue_full`, …) in the `kind` field of error rows and HTTP error
/// bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not an image format shotgrade reads (or not an image at all).
    UnsupportedFormat,
    /// The file claims a supported format but its data is broken or truncated.
    Corrupt,
    /// The file or its pixel dimensions exceed the configured limits.
    TooLarge,
    /// The file could not be read.
    Io,
    /// A scene, profile or scoring setting was refused.
    Config,
    /// A bug or a failed worker: the input was not at fault.
    Internal,
    /// The request body exceeds the server's limit.
    BodyTooLarge,
    /// A malformed request (bad multipart, bad query).
    BadRequest,
    /// The grading queue is full: retry shortly.
    QueueFull,
    /// The image was not graded within the request timeout.
    Timeout,
    /// A missing or wrong API key.
    Unauthorized,
    /// No such route.
    NotFound,
    /// Too many requests in flight.
    Saturated,
    /// The server is shutting down.
    ShuttingDown,
}

impl ErrorKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::UnsupportedFormat,
        ErrorKind::Corrupt,
        ErrorKind::TooLarge,
        ErrorKind::Io,
        ErrorKind::Config,
        ErrorKind::Internal,
        ErrorKind::BodyTooLarge,
        ErrorKind::BadRequest,
        ErrorKind::QueueFull,
        ErrorKind::Timeout,
        ErrorKind::Unauthorized,
        ErrorKind::NotFound,
        ErrorKind::Saturated,
        ErrorKind::ShuttingDown,
    ];

    /// The name written in rows and responses.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnsupportedFormat => "unsupported_format",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Io => "io",
            ErrorKind::Config => "config",
            ErrorKind::Internal => "internal",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Saturated => "saturated",
            ErrorKind::ShuttingDown => "shutting_down",
        }
    }

    /// The HTTP status of a response that fails with this kind: a request the client must fix
    /// is 4xx (an image that cannot be graded is 422), a server that cannot take it now is
    /// 503 or 504, a bug is 500.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::UnsupportedFormat
            | ErrorKind::Corrupt
            | ErrorKind::TooLarge
            | ErrorKind::Io => 422,
            ErrorKind::Config | ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::Internal => 500,
            ErrorKind::QueueFull | ErrorKind::Saturated | ErrorKind::ShuttingDown => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_statuses_are_errors() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialise");
            assert_eq!(json, format!("\"{kind}\""));
            let back: ErrorKind = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, kind);
            assert!((400..600).contains(&kind.http_status()), "{kind}");
        }
        assert_eq!(ErrorKind::Corrupt.http_status(), 422);
        assert_eq!(ErrorKind::Config.http_status(), 400);
    }
}
