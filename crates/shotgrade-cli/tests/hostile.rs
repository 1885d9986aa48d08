//! A corpus of hostile and unusual files: each must get the right result or the right error
//! kind, with no panic and bounded memory, in one run of the real binary.

mod common;

use image::{ImageEncoder, Rgb, RgbImage};
use std::path::Path;

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("jpeg");
    out
}

fn png_rgb(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("png");
    out
}

/// Red left half, blue right half: orientation is visible in the border colour.
fn two_tone(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgb([220, 30, 30])
        } else {
            Rgb([30, 30, 220])
        }
    })
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims 100,000 × 100,000 pixels, with valid CRCs and a tiny body.
fn huge_header_png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// A JPEG whose entropy-coded data is overwritten with junk (markers and EOI kept): stuffed
/// `FF 00` pairs make a run of 1-bits, and an all-ones Huffman code is invalid by the standard.
fn corrupt_huffman_jpeg() -> Vec<u8> {
    let mut bytes = jpeg(&two_tone(64, 64), 90);
    let sos = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS marker");
    let header_len = u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]) as usize;
    let start = sos + 2 + header_len;
    let end = bytes.len() - 2 - (bytes.len() - 2 - start) % 2;
    for (i, b) in bytes[start..end].iter_mut().enumerate() {
        *b = [0xFF, 0x00][i % 2];
    }
    bytes
}

/// A CMYK JPEG (Adobe convention, as Photoshop writes) of a pure red-ish colour.
fn cmyk_jpeg() -> Vec<u8> {
    let (w, h) = (48u16, 32u16);
    // C=0, M=255, Y=255, K=0 → red.
    let data: Vec<u8> = (0..w as usize * h as usize)
        .flat_map(|_| [0u8, 255, 255, 0])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&data, w, h, jpeg_encoder::ColorType::Cmyk)
        .expect("cmyk jpeg");
    out
}

/// A PNG of `w × h` raw `pixels` in `color` and `depth`; `setup` adds chunks (palette,
/// transparency) before the header is written.
fn png_file(
    (w, h): (u32, u32),
    color: png::ColorType,
    depth: png::BitDepth,
    setup: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
    pixels: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        setup(&mut enc);
        let mut writer = enc.write_header().expect("header");
        writer.write_image_data(pixels).expect("data");
    }
    out
}

/// 16-bit RGB PNG: 0x8000, 0xC000, 0x4000 scale to 128, 191, 64 in 8 bits (x · 255 / 65535).
fn png16() -> Vec<u8> {
    let (w, h) = (40u32, 30u32);
    let px: Vec<u8> = (0..w * h)
        .flat_map(|_| [0x80u8, 0x00, 0xC0, 0x00, 0x40, 0x00])
        .collect();
    png_file(
        (w, h),
        png::ColorType::Rgb,
        png::BitDepth::Sixteen,
        |_| (),
        &px,
    )
}

/// Palette PNG whose first palette entry is fully transparent; the left half uses it.
fn palette_transparent_png() -> Vec<u8> {
    let (w, h) = (20u32, 10u32);
    let px: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).map(|x| if x < w / 2 { 0u8 } else { 1 }))
        .collect();
    let palette = |enc: &mut png::Encoder<&mut Vec<u8>>| {
        enc.set_palette(vec![0u8, 0, 0, 10, 200, 10]);
        enc.set_trns(vec![0u8, 255]);
    };
    png_file(
        (w, h),
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        palette,
        &px,
    )
}

/// Two-frame animated GIF: a red frame, then a blue one.
fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let palette = [220u8, 30, 30, 30, 30, 220];
        let mut enc = gif::Encoder::new(&mut out, 16, 16, &palette).expect("gif");
        enc.set_repeat(gif::Repeat::Infinite).expect("repeat");
        for index in [0u8, 1] {
            let frame = gif::Frame {
                width: 16,
                height: 16,
                buffer: std::borrow::Cow::Owned(vec![index; 256]),
                delay: 10,
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).expect("frame");
        }
    }
    out
}

/// A 200×100 JPEG (red left, blue right) tagged EXIF orientation 6 ("rotate 90° clockwise"):
/// upright it is 100×200 with red on top.
fn exif_rotated_jpeg() -> Vec<u8> {
    let img = two_tone(200, 100);
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 92);
    // Exif header + little-endian TIFF with one IFD entry: Orientation (0x0112) SHORT = 6.
    let mut exif = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
    exif.extend_from_slice(&1u16.to_le_bytes());
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&6u16.to_le_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_le_bytes());
    enc.add_app_segment(1, &exif).expect("app1");
    enc.encode(img.as_raw(), 200, 100, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

fn other_format(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

struct Case {
    file: &'static str,
    bytes: Vec<u8>,
    /// `Ok(check)` expects a scored row passing `check`; `Err(kind)` an error row of that kind.
    expect: Result<fn(&serde_json::Value), &'static str>,
}

fn corpus() -> Vec<Case> {
    let good = two_tone(120, 80);
    let full = jpeg(&good, 90);
    let full_png = png_rgb(&good);
    let ok = |f: fn(&serde_json::Value)| Ok(f);
    let mut cases = vec![
        Case {
            file: "01_empty.jpg",
            bytes: vec![],
            expect: Err("unsupported_format"),
        },
        Case {
            file: "02_text_named.jpg",
            bytes: b"this is a text file, not a photo\n".to_vec(),
            expect: Err("unsupported_format"),
        },
        Case {
            file: "03_truncated.jpg",
            bytes: full[..full.len() / 2].to_vec(),
            expect: Err("corrupt"),
        },
        Case {
            file: "04_truncated.png",
            bytes: full_png[..full_png.len() * 2 / 3].to_vec(),
            expect: Err("corrupt"),
        },
        Case {
            file: "05_corrupt_huffman.jpg",
            bytes: corrupt_huffman_jpeg(),
            expect: Err("corrupt"),
        },
        Case {
            file: "06_huge_header.png",
            bytes: huge_header_png(),
            expect: Err("too_large"),
        },
        Case {
            file: "07_one_pixel.png",
            bytes: png_rgb(&RgbImage::from_pixel(1, 1, Rgb([9, 99, 199]))),
            expect: ok(|r| {
                assert_eq!(
                    (r["image"]["width"].as_u64(), r["image"]["height"].as_u64()),
                    (Some(1), Some(1))
                );
                assert_eq!(r["image"]["border_rgb"], serde_json::json!([9, 99, 199]));
            }),
        },
        Case {
            file: "08_cmyk.jpg",
            bytes: cmyk_jpeg(),
            expect: ok(|r| {
                let c = &r["image"]["border_rgb"];
                let (red, green, blue) = (
                    c[0].as_i64().unwrap_or(0),
                    c[1].as_i64().unwrap_or(255),
                    c[2].as_i64().unwrap_or(255),
                );
                assert!(
                    red > 200 && green < 60 && blue < 60,
                    "CMYK red decoded as {c}"
                );
            }),
        },
        Case {
            file: "09_16bit.png",
            bytes: png16(),
            expect: ok(|r| assert_eq!(r["image"]["border_rgb"], serde_json::json!([128, 191, 64]))),
        },
        Case {
            file: "10_animated.gif",
            bytes: animated_gif(),
            expect: ok(|r| {
                assert_eq!(r["image"]["format"], "gif");
                assert_eq!(
                    r["image"]["border_rgb"],
                    serde_json::json!([220, 30, 30]),
                    "first frame"
                );
            }),
        },
        Case {
            file: "11_exif_rotated.jpg",
            bytes: exif_rotated_jpeg(),
            expect: ok(|r| {
                assert_eq!(
                    (r["image"]["width"].as_u64(), r["image"]["height"].as_u64()),
                    (Some(100), Some(200)),
                    "orientation applied"
                );
            }),
        },
        Case {
            file: "12_palette_transparent.png",
            bytes: palette_transparent_png(),
            expect: ok(|r| {
                assert_eq!(r["image"]["has_alpha"], true);
                assert!(
                    (r["image"]["transparent_fraction"].as_f64().unwrap_or(0.0) - 0.5).abs() < 1e-6
                );
            }),
        },
        Case {
            file: "13_png_named.jpg",
            bytes: full_png.clone(),
            expect: ok(|r| assert_eq!(r["image"]["format"], "png")),
        },
        Case {
            file: "14_lossless.webp",
            bytes: other_format(&good, image::ImageFormat::WebP),
            expect: ok(|r| assert_eq!(r["image"]["format"], "webp")),
        },
        Case {
            file: "15_plain.bmp",
            bytes: other_format(&good, image::ImageFormat::Bmp),
            expect: ok(|r| assert_eq!(r["image"]["format"], "bmp")),
        },
        Case {
            file: "16_plain.tiff",
            bytes: other_format(&good, image::ImageFormat::Tiff),
            expect: ok(|r| assert_eq!(r["image"]["format"], "tiff")),
        },
        Case {
            file: "17_grayscale.jpg",
            bytes: {
                let g = image::GrayImage::from_pixel(30, 20, image::Luma([77]));
                other_format(
                    &image::DynamicImage::ImageLuma8(g).to_rgb8(),
                    image::ImageFormat::Jpeg,
                )
            },
            expect: ok(|r| {
                let c = &r["image"]["border_rgb"];
                assert!(
                    (c[0].as_i64().unwrap_or(0) - 77).abs() <= 2 && c[0] == c[1] && c[1] == c[2],
                    "{c}"
                );
            }),
        },
        Case {
            file: "18_random_bytes.png",
            bytes: (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            expect: Err("unsupported_format"),
        },
    ];
    // AVIF and HEIC go through the system's libheif (`.ci/run` installs it).
    if std::env::var_os("SHOTGRADE_SKIP_HEIF").is_none() {
        cases.extend(heif_cases());
    }
    cases
}

/// The libheif fixtures of `shotgrade-image`, whole, truncated and with a huge header.
fn heif_cases() -> Vec<Case> {
    let fixture = |name: &str| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shotgrade-image/tests/fixtures");
        std::fs::read(dir.join(name)).expect("heif fixture")
    };
    let heic = fixture("product.heic");
    let mut huge = fixture("product.avif");
    if let Some(at) = huge.windows(4).position(|w| w == b"ispe") {
        huge[at + 8..at + 16].copy_from_slice(&[0, 1, 134, 160, 0, 1, 134, 160]); // 100,000 px
    }
    vec![
        Case {
            file: "19_packshot.heic",
            bytes: heic.clone(),
            expect: Ok(|r| assert_eq!(r["image"]["format"], "heic")),
        },
        Case {
            file: "20_cutout.avif",
            bytes: fixture("cutout.avif"),
            expect: Ok(|r| {
                assert_eq!(r["image"]["format"], "avif");
                assert_eq!(r["image"]["has_alpha"], true);
            }),
        },
        Case {
            file: "21_truncated.heic",
            bytes: heic[..heic.len() / 2].to_vec(),
            expect: Err("corrupt"),
        },
        Case {
            file: "22_huge_header.avif",
            bytes: huge,
            expect: Err("too_large"),
        },
    ]
}

fn write_corpus(dir: &Path) -> Vec<Case> {
    let cases = corpus();
    for c in &cases {
        std::fs::write(dir.join(c.file), &c.bytes).expect("write case");
    }
    cases
}

/// Writes the corpus above into `fuzz/corpus/decode/` as seeds of the `decode` fuzz target
/// (`fuzz/README.md`): `cargo test -p shotgrade-cli --test hostile -- --ignored`.
#[test]
#[ignore = "a tool for fuzzing, not a check"]
fn write_corpus_as_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cases = write_corpus(&dir);
    assert!(!cases.is_empty());
}

/// Peak resident memory of all finished child processes of this test process, in MB.
fn children_peak_rss_mb() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own; RUSAGE_CHILDREN is a valid selector.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss as f64 / 1024.0 // Linux reports kilobytes
}

#[test]
fn hostile_corpus_gets_right_results_and_error_kinds_without_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = write_corpus(dir.path());
    assert!(cases.len() >= 12);
    let missing = dir.path().join("19_missing.jpg");
    let weights = common::untrained_weights();
    let out = common::bin()
        .args([
            "score",
            "--format",
            "jsonl",
            "--allow-untrained",
            "--weights",
        ])
        .arg(weights)
        .arg(dir.path())
        .arg(&missing)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "some inputs fail → exit 2; stderr: {stderr}"
    );
    let rows = common::jsonl(&out);
    assert_eq!(rows.len(), cases.len() + 1, "one row per input");
    for (case, row) in cases.iter().zip(&rows) {
        assert!(
            row["path"].as_str().is_some_and(|p| p.ends_with(case.file)),
            "order: {} vs {}",
            row["path"],
            case.file
        );
        match case.expect {
            Ok(check) => {
                assert_eq!(row["status"], "ok", "{}: {row}", case.file);
                for k in ["total", "background", "position", "visual"] {
                    let v = row["scores"][k].as_f64().unwrap_or(-1.0);
                    assert!((0.0..=100.0).contains(&v), "{}: {k} = {v}", case.file);
                }
                check(row);
            }
            Err(kind) => {
                assert_eq!(row["status"], "error", "{}: {row}", case.file);
                assert_eq!(row["error"]["kind"], kind, "{}: {row}", case.file);
                assert!(!row["error"]["message"].as_str().unwrap_or("").is_empty());
            }
        }
    }
    let last = rows.last().expect("rows");
    assert_eq!(last["error"]["kind"], "io");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("19_missing.jpg")
    );

    // The 100,000 × 100,000 header was refused before allocation: the whole run stays small.
    let peak = children_peak_rss_mb();
    assert!(peak < 400.0, "peak RSS {peak:.0} MB");
}

#[test]
fn tight_limits_refuse_large_files_and_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.png");
    std::fs::write(&path, png_rgb(&two_tone(600, 400))).expect("write");
    let weights = common::untrained_weights();
    for limit in [
        ["--max-side", "500"],
        ["--max-megapixels", "0.2"],
        ["--max-file-mb", "0.001"],
    ] {
        let out = common::bin()
            .args([
                "score",
                "--format",
                "jsonl",
                "--allow-untrained",
                "--weights",
            ])
            .arg(weights)
            .args(limit)
            .arg(&path)
            .output()
            .expect("run");
        let rows = common::jsonl(&out);
        assert_eq!(
            rows[0]["error"]["kind"], "too_large",
            "{limit:?}: {}",
            rows[0]
        );
        assert_eq!(out.status.code(), Some(2));
    }
}
