use thiserror::Error;

pub use shotgrade_core::ErrorKind;

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
