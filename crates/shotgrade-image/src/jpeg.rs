//! The quality a JPEG was saved at, estimated from its luminance quantisation table.
//!
//! Encoders derived from the IJG library (libjpeg, libjpeg-turbo, mozjpeg's defaults, the
//! `image` crate, PIL) scale one base table by the quality; matching the file's table against
//! every scaled table recovers the quality exactly for them and approximately for others.
//! Training uses it to label real photos that arrive already compressed.

/// The base luminance table of the JPEG standard (Annex K.1). Only sums of differences are
/// compared, so the order (natural or zig-zag) does not matter.
const BASE_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The IJG table for `quality` (1–100), entry by entry.
fn scaled_table(quality: u32) -> impl Iterator<Item = u32> {
    let scale = if quality < 50 {
        5000 / quality
    } else {
        200 - 2 * quality
    };
    BASE_LUMA
        .iter()
        .map(move |&b| ((b as u32 * scale + 50) / 100).clamp(1, 255))
}

/// The file's luminance (id 0) quantisation table, in file order, if it has one before the
/// first scan.
fn luma_table(bytes: &[u8]) -> Option<Vec<u32>> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            return None;
        }
        let marker = bytes[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // start of scan or end of image: no table came first
        }
        let len = u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize;
        let segment = bytes.get(pos + 4..pos + 2 + len)?;
        if marker == 0xDB {
            let mut s = segment;
            while let Some((&pq_tq, rest)) = s.split_first() {
                let wide = pq_tq >> 4 != 0;
                let n = if wide { 128 } else { 64 };
                let values = rest.get(..n)?;
                if pq_tq & 0x0F == 0 {
                    return Some(if wide {
                        values
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                            .collect()
                    } else {
                        values.iter().map(|&v| v as u32).collect()
                    });
                }
                s = &rest[n..];
            }
        }
        pos += 2 + len;
    }
    None
}

/// The estimated quality (1–100) of JPEG `bytes`, or `None` for other data or a JPEG without
/// a luminance table.
pub fn estimate_quality(bytes: &[u8]) -> Option<u8> {
    let sum: u32 = luma_table(bytes)?.iter().sum();
    // Sums are order-free; the closest scaled sum wins (ties: the higher quality).
    (1..=100u32)
        .rev()
        .min_by_key(|&q| scaled_table(q).sum::<u32>().abs_diff(sum))
        .map(|q| q as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn jpeg(quality: u8) -> Vec<u8> {
        let img = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&img)
            .expect("encode");
        out
    }

    #[test]
    fn recovers_the_quality_an_ijg_style_encoder_used() {
        for q in [5u8, 15, 35, 50, 60, 75, 85, 90, 95] {
            let est = estimate_quality(&jpeg(q)).expect("a JPEG");
            assert!(est.abs_diff(q) <= 1, "saved at {q}, estimated {est}");
        }
    }

    #[test]
    fn other_and_broken_data_have_no_quality() {
        assert_eq!(estimate_quality(b""), None);
        assert_eq!(estimate_quality(b"\x89PNG\r\n\x1a\n"), None);
        let full = jpeg(80);
        for cut in [2, 4, 20, 40] {
            // Truncated inside or before the table: no panic, and no made-up answer.
            let _ = estimate_quality(&full[..cut.min(full.len())]);
        }
        let mut bad_length = full.clone();
        bad_length[4] = 0xFF;
        bad_length[5] = 0xFF;
        let _ = estimate_quality(&bad_length);
    }
}
