//! # shotgrade-image
//!
//! Turns untrusted bytes into the RGB pixels shotgrade's networks see, and never panics or
//! over-allocates on the way:
//!
//! * [`load_bytes`] / [`load_path`] detect the format from the bytes (never the extension),
//!   enforce [`Limits`] on the file size and on the header's dimensions *before* pixels are
//!   allocated, apply EXIF orientation, convert grey, palette, CMYK and 16-bit images to RGB8 and
//!   flatten alpha onto white, and measure [`ImageFacts`](shotgrade_core::ImageFacts). AVIF
//!   and HEIC go through the system's libheif ([`heif`]).
//! * [`Preprocessor`] resizes with `fast_image_resize` into the three networks' input tensors:
//!   squash for the background and experience networks, letterbox for the position network.

mod backdrop;
mod error;
pub mod heif;
pub mod jpeg;
mod load;
mod mask;
mod preprocess;
mod snap;

pub use backdrop::{BACKDROP_FEATURES, backdrop_statistics, border_band_width, for_border_band};
pub use error::{ErrorKind, ImageError};
/// The decoded pixel type every function here takes and returns.
pub use image::RgbImage;
pub use load::{Limits, LoadedImage, load_bytes, load_path};
pub use mask::{MIN_BACKDROP_SHARE, mask_box, mask_box_within};
pub use preprocess::{
    BackgroundView, BlockPlanes, InputSpec, JPEG_GRID, NetInputs, Preprocessor, on_jpeg_grid,
    push_chw,
};
pub use snap::{SnapSettings, snap_main_detection, snap_to_backdrop};
