//! AVIF and HEIC through the system's libheif: the fixtures decode with their facts, and
//! broken, truncated or oversized files give errors of the right kind — never a panic, never
//! a pixel buffer beyond the limits.
//!
//! Needs libheif at run time (`apt-get install libheif1`); `.ci/run` installs it. Set
//! `SHOTGRADE_SKIP_HEIF=1` to skip on a machine without it.

use shotgrade_image::{ErrorKind, Limits, heif, load_bytes};

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    std::fs::read(format!("{path}{name}")).expect("fixture")
}

/// False (skip) only when asked to; otherwise a missing libheif fails the test.
fn libheif_present() -> bool {
    if std::env::var_os("SHOTGRADE_SKIP_HEIF").is_some() {
        return false;
    }
    if let Err(e) = heif::library_version() {
        panic!("{e} (or set SHOTGRADE_SKIP_HEIF=1 to skip these tests)");
    }
    true
}

#[test]
fn packshots_decode_with_their_facts() {
    if !libheif_present() {
        return;
    }
    for (file, format) in [("product.heic", "heic"), ("product.avif", "avif")] {
        let loaded = load_bytes(&fixture(file), &Limits::default()).expect(file);
        let f = &loaded.facts;
        assert_eq!((f.width, f.height), (96, 64), "{file}");
        assert_eq!(f.format, format);
        assert!(!f.has_alpha, "{file}");
        assert_eq!(f.jpeg_quality, None, "{file}");
        assert!(f.border_near_white_fraction > 0.9, "{file}: {f:?}");
        let [r, g, b] = loaded.rgb.get_pixel(48, 32).0;
        assert!(r > 150 && g < 90 && b < 90, "{file}: centre {r},{g},{b}");
    }
}

#[test]
fn alpha_is_flattened_on_white_and_measured() {
    if !libheif_present() {
        return;
    }
    for file in ["cutout.avif", "cutout.heic"] {
        let loaded = load_bytes(&fixture(file), &Limits::default()).expect(file);
        let f = &loaded.facts;
        assert_eq!((f.width, f.height), (64, 48), "{file}");
        assert!(f.has_alpha, "{file}");
        assert!(
            (0.2..0.8).contains(&f.transparent_fraction),
            "{file}: {f:?}"
        );
        let corner = loaded.rgb.get_pixel(0, 0).0;
        assert!(
            corner.iter().all(|&c| c >= 245),
            "{file}: corner {corner:?}"
        );
    }
}

#[test]
fn limits_apply_before_decoding() {
    if !libheif_present() {
        return;
    }
    let small = Limits {
        max_side: 50,
        ..Limits::default()
    };
    for file in ["product.heic", "product.avif"] {
        let err = load_bytes(&fixture(file), &small).expect_err(file);
        assert_eq!(err.kind, ErrorKind::TooLarge, "{file}: {err}");
    }
    // A header that claims 100,000 × 100,000 px (the `ispe` property rewritten).
    for file in ["product.heic", "product.avif"] {
        let mut bytes = fixture(file);
        let at = bytes
            .windows(4)
            .position(|w| w == b"ispe")
            .expect("ispe box");
        bytes[at + 8..at + 12].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[at + 12..at + 16].copy_from_slice(&100_000u32.to_be_bytes());
        let err = load_bytes(&bytes, &Limits::default()).expect_err(file);
        assert_eq!(err.kind, ErrorKind::TooLarge, "{file}: {err}");
    }
}

#[test]
fn broken_files_are_errors_not_panics() {
    if !libheif_present() {
        return;
    }
    for file in ["product.heic", "product.avif", "cutout.avif", "cutout.heic"] {
        let good = fixture(file);
        // Truncated anywhere after the file-type box.
        for cut in (24..good.len()).step_by(37) {
            let err = load_bytes(&good[..cut], &Limits::default());
            assert!(err.is_err(), "{file} cut at {cut} decoded");
        }
        // Bytes flipped one at a time: an error or an image, but never a panic or a size
        // beyond the limits.
        for at in (12..good.len()).step_by(11) {
            let mut bad = good.clone();
            bad[at] ^= 0xA5;
            if let Ok(img) = load_bytes(&bad, &Limits::default()) {
                assert!(img.facts.width <= 20_000 && img.facts.height <= 20_000);
            }
        }
    }
    // Only the file-type box.
    let err =
        load_bytes(&fixture("product.heic")[..24], &Limits::default()).expect_err("header only");
    assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
}
