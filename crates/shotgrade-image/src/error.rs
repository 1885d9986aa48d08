use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// Why an image could not be loaded, as a stable machine-readable kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnsupportedFormat => "unsupported_format",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image that could not be loaded: a kind plus a message for people.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ImageError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ImageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ImageError {
            kind,
            message: message.into(),
        }
    }

    /// Classifies an error of the `image` crate.
    pub(crate) fn from_decoder(format: &str, e: image::ImageError) -> Self {
        use image::ImageError as E;
        match e {
            E::Limits(l) => ImageError::new(
                ErrorKind::TooLarge,
                format!("{format} image exceeds the decoder's limits: {l}"),
            ),
            E::Unsupported(u) => ImageError::new(
                ErrorKind::UnsupportedFormat,
                format!("unsupported {format} variant: {u}"),
            ),
            E::IoError(io) => ImageError::new(
                ErrorKind::Corrupt,
                format!("{format} data ends early or is unreadable: {io}"),
            ),
            other => ImageError::new(
                ErrorKind::Corrupt,
                format!("corrupt {format} data: {other}"),
            ),
        }
    }
}
