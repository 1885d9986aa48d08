use super::*;
use crate::geometry::BBox;
use crate::report::{BackgroundVerdict, MainProduct, PositionVerdict, Scores};
use crate::types::PositionCategory;

fn facts(w: u32, h: u32, pure: f32, near: f32) -> ImageFacts {
    ImageFacts {
        width: w,
        height: h,
        format: "jpeg".into(),
        file_bytes: 400_000,
        has_alpha: false,
        transparent_fraction: 0.0,
        border_rgb: [255, 255, 255],
        border_pure_white_fraction: pure,
        border_near_white_fraction: near,
        jpeg_quality: Some(92),
    }
}

fn report(class: BackgroundClass, main: Option<(BBox, Vec<&str>)>, others: usize) -> Report {
    Report {
        scene: "general".into(),
        scores: Scores {
            total: 80.0,
            background: 80.0,
            position: 80.0,
            visual: 80.0,
            aesthetic: 80.0,
            noise: 80.0,
        },
        background: BackgroundVerdict {
            class,
            probability: 0.9,
            probabilities: BTreeMap::new(),
        },
        position: PositionVerdict {
            main: main.map(|(bbox, touches)| MainProduct {
                category: PositionCategory::Subject,
                bbox,
                probability: 0.9,
                subject_probability: 0.9,
                fill: 0.5,
                centre_offset: 0.0,
                touches: touches.into_iter().map(String::from).collect(),
            }),
            detections: 1 + others,
            other_products: others,
        },
        reasons: Vec::new(),
        profile: None,
    }
}

fn status_of(r: &ProfileVerdict, check: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no {check} check in {r:?}"))
        .status
}

#[test]
fn builtin_profiles_parse_and_cover_the_marketplaces() {
    let set = ProfileSet::builtin();
    let names: Vec<&str> = set.names().collect();
    for want in [
        "amazon-main",
        "walmart",
        "ebay",
        "google-merchant",
        "shopify",
        "etsy",
        "taobao-main",
        "jd-main",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, p) in set.iter() {
        assert!(!p.source.is_empty(), "{name} names no source");
        assert!(!p.checks.is_empty(), "{name} has no checks");
    }
}

#[test]
fn amazon_compliant_packshot_passes_every_check() {
    let set = ProfileSet::builtin();
    let r = check_profile(
        "amazon-main",
        set.get("amazon-main").expect("builtin"),
        &facts(1500, 1500, 1.0, 1.0),
        &report(
            BackgroundClass::White,
            Some((BBox::new(100.0, 80.0, 1400.0, 1420.0), vec![])),
            0,
        ),
    );
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    assert!(r.checks.iter().all(|c| c.fix.is_empty()));
}

#[test]
fn amazon_rules_fail_with_values_thresholds_and_fixes() {
    let set = ProfileSet::builtin();
    let amazon = set.get("amazon-main").expect("builtin");
    // 900 px, an RGB 250 border (near white, not pure), a product spanning 60 %.
    let r = check_profile(
        "amazon-main",
        amazon,
        &facts(900, 900, 0.0, 1.0),
        &report(
            BackgroundClass::White,
            Some((BBox::new(180.0, 180.0, 720.0, 720.0), vec![])),
            0,
        ),
    );
    assert_eq!(r.status, Status::Fail);
    assert_eq!(status_of(&r, "longest_side"), Status::Warn);
    assert_eq!(status_of(&r, "border_pure_white"), Status::Fail);
    assert_eq!(status_of(&r, "product_fill"), Status::Fail);
    let fill = r.checks.iter().find(|c| c.check == "product_fill").unwrap();
    assert_eq!(fill.measured, "60 %");
    assert!(fill.message.contains("at least 85 %"), "{}", fill.message);
    assert!(fill.fix.contains("crop closer"), "{}", fill.fix);
    let side = r.checks.iter().find(|c| c.check == "longest_side").unwrap();
    assert_eq!(side.measured, "900 px");
    assert!(side.threshold.contains("≥ 1000 px (recommended)"));
    assert!(side.message.contains("should be at least 1000 px"));
}

#[test]
fn cut_off_extra_items_wrong_background_and_missing_product() {
    let set = ProfileSet::builtin();
    let amazon = set.get("amazon-main").expect("builtin");
    let r = check_profile(
        "amazon-main",
        amazon,
        &facts(1200, 1200, 1.0, 1.0),
        &report(
            BackgroundClass::Lifestyle,
            Some((BBox::new(0.0, 50.0, 1100.0, 1150.0), vec!["left"])),
            2,
        ),
    );
    assert_eq!(status_of(&r, "background"), Status::Fail);
    assert_eq!(status_of(&r, "product_cut_sides"), Status::Fail);
    assert_eq!(status_of(&r, "other_products"), Status::Warn);
    let none = check_profile(
        "amazon-main",
        amazon,
        &facts(1200, 1200, 1.0, 1.0),
        &report(BackgroundClass::White, None, 0),
    );
    let fill = none
        .checks
        .iter()
        .find(|c| c.check == "product_fill")
        .unwrap();
    assert_eq!(fill.status, Status::Fail);
    assert_eq!(fill.measured, "no product found");
}

#[test]
fn square_size_and_format_rules() {
    let set = ProfileSet::builtin();
    let mut f = facts(1600, 1200, 1.0, 1.0);
    f.format = "webp".into();
    f.file_bytes = 6_000_000;
    let r = check_profile(
        "walmart",
        set.get("walmart").expect("builtin"),
        &f,
        &report(
            BackgroundClass::White,
            Some((BBox::new(200.0, 100.0, 1400.0, 1100.0), vec![])),
            0,
        ),
    );
    assert_eq!(status_of(&r, "format"), Status::Fail);
    assert_eq!(status_of(&r, "aspect_ratio"), Status::Fail);
    assert_eq!(status_of(&r, "shortest_side"), Status::Fail);
    assert_eq!(status_of(&r, "file_megabytes"), Status::Fail);
    let aspect = r.checks.iter().find(|c| c.check == "aspect_ratio").unwrap();
    assert_eq!(aspect.measured, "1.33");
}

#[test]
fn warn_band_sits_between_pass_and_fail() {
    let b = Bound {
        min: Some(500.0),
        warn_min: Some(1000.0),
        ..Bound::default()
    };
    let at = |v| check_bound(Measure::LongestSide, &b, Some(v)).status;
    assert_eq!(at(499.0), Status::Fail);
    assert_eq!(at(500.0), Status::Warn);
    assert_eq!(at(999.0), Status::Warn);
    assert_eq!(at(1000.0), Status::Pass);
}

#[test]
fn user_profiles_add_and_override() {
    let mut set = ProfileSet::builtin();
    set.extend_from_toml(
        r#"
[amazon-main]
title = "stricter"
source = "our catalogue team"
[amazon-main.checks]
longest_side = { min = 2000 }

[house]
title = "house style"
source = "us"
background = ["solid", "lifestyle"]
"#,
    )
    .expect("valid");
    assert_eq!(set.get("amazon-main").unwrap().title, "stricter");
    assert!(set.get("house").is_ok());
    assert!(set.get("walmart").is_ok());
    let err = set.get("nope").unwrap_err().to_string();
    assert!(err.contains("house") && err.contains("walmart"), "{err}");
}

#[test]
fn bad_profile_files_are_refused_with_the_reason() {
    let mut set = ProfileSet::builtin();
    let cases = [
        (
            "[x]\ntitle='t'\nsource='s'\n[x.checks]\nheight = { min = 1 }",
            "height",
        ),
        (
            "[x]\ntitle='t'\nsource='s'\n[x.checks]\nlongest_side = { min = 9, max = 1 }",
            "above",
        ),
        (
            "[x]\ntitle='t'\nsource='s'\nformats=['jpg']",
            "unknown format",
        ),
        ("[x]\ntitle='t'\nsource='s'\ncolour = 1", "colour"),
        ("[x]\nsource='s'", "title"),
    ];
    for (text, needle) in cases {
        let err = set.extend_from_toml(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}
