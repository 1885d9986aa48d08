//! Decoding untrusted files into RGB8 with limits, orientation and alpha handling.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use shotgrade_core::ImageFacts;
use std::io::{Cursor, Read};
use std::path::Path;

use crate::error::{ErrorKind, ImageError};

/// Resource limits checked before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
}

impl Default for Limits {
    /// 50 MB, 100 megapixels, 20,000 px a side: above any real product photo, below what
    /// would exhaust a worker's memory (100 MP of RGBA is 400 MB).
    fn default() -> Self {
        Limits {
            max_file_bytes: 50_000_000,
            max_pixels: 100_000_000,
            max_side: 20_000,
        }
    }
}

/// A decoded image, upright, as RGB8 on white, with the facts measured on the way.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub rgb: RgbImage,
    pub facts: ImageFacts,
}

/// Reads and decodes a file. The file's size is checked before it is read.
pub fn load_path(path: &Path, limits: &Limits) -> Result<LoadedImage, ImageError> {
    let io_err = |e: std::io::Error| {
        ImageError::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    check_file_size(size, limits)?;
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while it is read.
    file.take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    load_bytes(&bytes, limits)
}

fn check_file_size(size: u64, limits: &Limits) -> Result<(), ImageError> {
    if size > limits.max_file_bytes {
        return Err(ImageError::new(
            ErrorKind::TooLarge,
            format!(
                "file is {size} bytes; the limit is {} bytes",
                limits.max_file_bytes
            ),
        ));
    }
    Ok(())
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        _ => "other",
    }
}

/// Decodes an image held in memory.
pub fn load_bytes(bytes: &[u8], limits: &Limits) -> Result<LoadedImage, ImageError> {
    check_file_size(bytes.len() as u64, limits)?;
    if bytes.is_empty() {
        return Err(ImageError::new(
            ErrorKind::UnsupportedFormat,
            "file is empty",
        ));
    }
    if let Some(kind) = crate::heif::sniff(bytes) {
        let img = crate::heif::decode(bytes, kind, limits)?;
        return Ok(finish(bytes, img, kind.name(), None));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        ImageError::new(
            ErrorKind::UnsupportedFormat,
            "not a recognised image: expected JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP or TIFF data",
        )
    })?;
    let name = format_name(format);
    if name == "other" {
        return Err(ImageError::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "{format:?} images are not supported; use JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP or TIFF"
            ),
        ));
    }
    if format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        return Err(ImageError::new(
            ErrorKind::Corrupt,
            "jpeg data is truncated: no end-of-image marker",
        ));
    }

    let img = if format == ImageFormat::Jpeg {
        decode_jpeg_strict(bytes, limits)?
    } else {
        decode_with_image_crate(bytes, format, name, limits)?
    };
    let jpeg_quality = (format == ImageFormat::Jpeg)
        .then(|| crate::jpeg::estimate_quality(bytes))
        .flatten();
    Ok(finish(bytes, img, name, jpeg_quality))
}

/// The upright decoded image flattened to RGB8, with the facts rows report.
fn finish(bytes: &[u8], img: DynamicImage, name: &str, jpeg_quality: Option<u8>) -> LoadedImage {
    let has_alpha = img.color().has_alpha();
    let (rgb, transparent_fraction) = if has_alpha {
        flatten_on_white(&img)
    } else {
        (img.to_rgb8(), 0.0)
    };
    drop(img);
    let border = border_stats(&rgb);
    LoadedImage {
        facts: ImageFacts {
            width: rgb.width(),
            height: rgb.height(),
            format: name.to_string(),
            file_bytes: bytes.len() as u64,
            has_alpha,
            transparent_fraction,
            border_rgb: border.mean,
            border_pure_white_fraction: border.pure_white,
            border_near_white_fraction: border.near_white,
            jpeg_quality,
        },
        rgb,
    }
}

pub(crate) fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), ImageError> {
    let pixels = width as u64 * height as u64;
    if width == 0 || height == 0 {
        return Err(ImageError::new(
            ErrorKind::Corrupt,
            format!("image header says {width}×{height} pixels"),
        ));
    }
    if width > limits.max_side || height > limits.max_side || pixels > limits.max_pixels {
        return Err(ImageError::new(
            ErrorKind::TooLarge,
            format!(
                "image is {width}×{height} pixels; limits are {} px a side and {} megapixels",
                limits.max_side,
                limits.max_pixels / 1_000_000
            ),
        ));
    }
    Ok(())
}

/// Decodes any non-JPEG format through the `image` crate, with its own limits as a second line
/// of defence, the header checked against ours before decoding, and EXIF orientation applied.
fn decode_with_image_crate(
    bytes: &[u8],
    format: ImageFormat,
    name: &str,
    limits: &Limits,
) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // Room for the widest decoded form (RGBA, 16 bits a channel) plus decoder scratch.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImageError::from_decoder(name, e))?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::from_decoder(name, e))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Decodes a JPEG with `zune-jpeg` in strict mode. The `image` crate runs the same decoder
/// leniently, which turns corrupt entropy-coded data into grey blocks instead of an error — and
/// a broken upload would then be graded as if it were a photo. Strict mode reports it. CMYK and
/// YCCK are converted to RGB by the decoder.
fn decode_jpeg_strict(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, ImageError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    use zune_jpeg::errors::DecodeErrors;

    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(limits.max_side as usize)
        .set_max_height(limits.max_side as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let classify = |e: DecodeErrors| match e {
        DecodeErrors::LargeDimensions(_) => ImageError::new(
            ErrorKind::TooLarge,
            format!("jpeg image is larger than {} px a side", limits.max_side),
        ),
        DecodeErrors::Unsupported(s) => ImageError::new(
            ErrorKind::UnsupportedFormat,
            format!("unsupported jpeg variant: {s:?}"),
        ),
        other => ImageError::new(ErrorKind::Corrupt, format!("corrupt jpeg data: {other}")),
    };
    decoder.decode_headers().map_err(classify)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| ImageError::new(ErrorKind::Corrupt, "jpeg header has no dimensions"))?;
    check_dimensions(width as u32, height as u32, limits)?;
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(classify)?;
    let rgb = RgbImage::from_raw(width as u32, height as u32, pixels).ok_or_else(|| {
        ImageError::new(
            ErrorKind::Corrupt,
            "jpeg decoder returned the wrong number of pixels",
        )
    })?;
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    Ok(img)
}

/// A complete JPEG ends with an EOI marker (`FF D9`), possibly followed by padding or trailing
/// data such as an appended preview. The decoder fills a missing tail with grey instead of
/// failing, which would grade half an upload; so a file without EOI in its last 64 KiB is
/// called truncated.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Composites onto white and measures the share of mostly transparent pixels (alpha < 128).
fn flatten_on_white(img: &DynamicImage) -> (RgbImage, f32) {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    let mut transparent = 0u64;
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let [r, g, b, a] = src.0;
        if a < 128 {
            transparent += 1;
        }
        let a = a as u32;
        let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        dst.0 = [blend(r), blend(g), blend(b)];
    }
    (
        out,
        transparent as f32 / (w as u64 * h as u64).max(1) as f32,
    )
}

/// What the border band (2 % of the shorter side, at least 1 px) looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BorderStats {
    mean: [u8; 3],
    /// Share of band pixels at exactly RGB 255,255,255.
    pure_white: f32,
    /// Share of band pixels with every channel ≥ [`NEAR_WHITE`].
    near_white: f32,
}

/// Lowest channel value that still counts as "near white" (what marketplaces tolerate).
pub const NEAR_WHITE: u8 = 250;

fn border_stats(rgb: &RgbImage) -> BorderStats {
    let mut sum = [0u64; 3];
    let (mut white, mut near, mut count) = (0u64, 0u64, 0u64);
    crate::for_border_band(rgb, |p| {
        for (acc, v) in sum.iter_mut().zip(p) {
            *acc += v as u64;
        }
        if p == [255, 255, 255] {
            white += 1;
        }
        if p.iter().all(|&v| v >= NEAR_WHITE) {
            near += 1;
        }
        count += 1;
    });
    let count = count.max(1);
    BorderStats {
        mean: sum.map(|s| ((s + count / 2) / count) as u8),
        pure_white: white as f32 / count as f32,
        near_white: near as f32 / count as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgba, RgbaImage};

    fn png_bytes(img: &RgbaImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgba8,
            )
            .expect("encode");
        out
    }

    #[test]
    fn transparent_png_is_flattened_on_white_and_measured() {
        let mut img = RgbaImage::from_pixel(10, 10, Rgba([0, 0, 0, 0]));
        for x in 0..10 {
            for y in 0..5 {
                img.put_pixel(x, y, Rgba([200, 0, 0, 255]));
            }
        }
        img.put_pixel(0, 9, Rgba([0, 0, 0, 128]));
        let loaded = load_bytes(&png_bytes(&img), &Limits::default()).expect("loads");
        assert!(loaded.facts.has_alpha);
        assert!((loaded.facts.transparent_fraction - 0.49).abs() < 1e-6);
        assert_eq!(loaded.rgb.get_pixel(5, 8).0, [255, 255, 255]);
        assert_eq!(loaded.rgb.get_pixel(5, 2).0, [200, 0, 0]);
        assert_eq!(loaded.rgb.get_pixel(0, 9).0, [127, 127, 127]);
        assert_eq!(loaded.facts.format, "png");
        assert_eq!(loaded.facts.jpeg_quality, None, "only JPEGs have a quality");
    }

    #[test]
    fn jpeg_quality_is_measured_from_the_file() {
        let img = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 60])
        });
        for q in [30u8, 70, 92] {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q)
                .encode_image(&img)
                .expect("encode");
            let loaded = load_bytes(&bytes, &Limits::default()).expect("loads");
            let est = loaded.facts.jpeg_quality.expect("a JPEG has a quality");
            assert!(est.abs_diff(q) <= 1, "saved at {q}, measured {est}");
        }
    }

    #[test]
    fn border_stats_of_a_packshot() {
        let mut img = RgbImage::from_pixel(100, 100, image::Rgb([255, 255, 255]));
        for x in 20..80 {
            for y in 20..80 {
                img.put_pixel(x, y, image::Rgb([10, 20, 30]));
            }
        }
        let stats = |img: &RgbImage| {
            let s = border_stats(img);
            (s.mean, s.pure_white, s.near_white)
        };
        assert_eq!(stats(&img), ([255, 255, 255], 1.0, 1.0));
        let grey = RgbImage::from_pixel(50, 30, image::Rgb([231, 231, 231]));
        assert_eq!(stats(&grey), ([231, 231, 231], 0.0, 0.0));
        let off_white = RgbImage::from_pixel(50, 30, image::Rgb([252, 251, 250]));
        assert_eq!(stats(&off_white), ([252, 251, 250], 0.0, 1.0));
    }

    #[test]
    fn limits_reject_before_decoding() {
        let img = RgbaImage::from_pixel(300, 200, Rgba([1, 2, 3, 255]));
        let bytes = png_bytes(&img);
        let small = Limits {
            max_side: 250,
            ..Limits::default()
        };
        assert_eq!(
            load_bytes(&bytes, &small).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let few = Limits {
            max_pixels: 50_000,
            ..Limits::default()
        };
        assert_eq!(
            load_bytes(&bytes, &few).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let tiny_file = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            load_bytes(&bytes, &tiny_file).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        assert!(load_bytes(&bytes, &Limits::default()).is_ok());
    }

    #[test]
    fn non_images_are_unsupported() {
        let e = load_bytes(b"hello, I am text", &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedFormat);
        assert_eq!(
            load_bytes(b"", &Limits::default()).unwrap_err().kind,
            ErrorKind::UnsupportedFormat
        );
    }

    #[test]
    fn missing_file_is_io() {
        let e = load_path(Path::new("/nonexistent/x.jpg"), &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        assert!(e.message.contains("/nonexistent/x.jpg"));
    }
}
