//! Profiles, overlays and the HTML report through the real binary, and the report rendered by
//! a real browser (headless Chromium).
//!
//! The browser test needs `chromium` on the PATH (`.ci/run` installs it). Set
//! `SHOTGRADE_SKIP_BROWSER=1` to skip only that test on a machine without one.

mod common;

use common::{bin, jsonl, repo_root, untrained_weights};
use std::path::Path;
use std::process::Command;

fn score_examples(extra: &[&str]) -> std::process::Output {
    bin()
        .args(["score", "--allow-untrained", "--quiet", "--weights"])
        .arg(untrained_weights())
        .arg(repo_root().join("examples"))
        .args(extra)
        .output()
        .expect("run")
}

#[test]
fn every_row_has_a_profile_section_in_every_format() {
    let out = score_examples(&["--profile", "amazon-main", "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = jsonl(&out);
    assert!(!rows.is_empty());
    for row in &rows {
        let p = &row["profile"];
        assert_eq!(p["name"], "amazon-main", "{row}");
        assert!(["pass", "warn", "fail"].contains(&p["status"].as_str().unwrap_or("")));
        let checks = p["checks"].as_array().expect("checks");
        for name in [
            "format",
            "background",
            "longest_side",
            "border_pure_white",
            "product_fill",
        ] {
            assert!(checks.iter().any(|c| c["check"] == name), "{name} missing");
        }
        for c in checks {
            assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(c["threshold"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    let csv = score_examples(&["--profile", "walmart", "--format", "csv"]);
    let text = String::from_utf8_lossy(&csv.stdout);
    let header = text.lines().next().expect("header");
    assert!(header.ends_with("profile,profile_status,profile_failed,profile_warned,jpeg_quality"));
    assert!(text.lines().skip(1).all(|l| l.contains(",walmart,")));
    let table = score_examples(&["--profile", "ebay", "--format", "table"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("· ebay "));
}

#[test]
fn unknown_profile_and_bad_profile_file_are_usage_errors() {
    let out = score_examples(&["--profile", "aliexpress"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown profile") && err.contains("amazon-main"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[mine]\ntitle='t'\nsource='s'\n[mine.checks]\nwidth={min=1}\n",
    )
    .unwrap();
    let out = score_examples(&["--profiles", file.to_str().unwrap(), "--profile", "mine"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p.toml") && err.contains("width"), "{err}");

    std::fs::write(
        &file,
        "[mine]\ntitle='t'\nsource='s'\n[mine.checks]\nlongest_side={min=5000}\n",
    )
    .unwrap();
    let out = score_examples(&[
        "--profiles",
        file.to_str().unwrap(),
        "--profile",
        "mine",
        "--format",
        "jsonl",
    ]);
    assert!(out.status.success());
    assert!(jsonl(&out).iter().all(|r| r["profile"]["status"] == "fail"));
}

#[test]
fn profiles_command_lists_and_prints() {
    let out = bin().args(["profiles"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "amazon-main",
        "walmart",
        "ebay",
        "google-merchant",
        "shopify",
        "etsy",
        "taobao-main",
        "jd-main",
    ] {
        assert!(text.contains(name), "{name}");
    }
    let out = bin().args(["profiles", "--print"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[amazon-main.checks]"));
}

#[test]
fn overlays_are_written_per_scored_photo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = score_examples(&[
        "--overlays",
        dir.path().to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = jsonl(&out);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), rows.len());
    for f in files {
        let img = image::open(f.path()).expect("overlay is an image");
        assert!(img.width() > 0);
        assert!(f.file_name().to_string_lossy().ends_with(".overlay.jpg"));
    }
}

/// Scores the examples plus a broken file with a profile and writes the report both ways.
fn make_report(dir: &Path) -> (std::path::PathBuf, usize) {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for e in std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), photos.join(e.file_name())).unwrap();
    }
    std::fs::write(
        photos.join("broken.jpg"),
        b"\xFF\xD8\xFF\xE0 not really a jpeg",
    )
    .unwrap();
    let results = dir.join("results.jsonl");
    let html = dir.join("report.html");
    let out = bin()
        .args(["score", "--allow-untrained", "--quiet", "--weights"])
        .arg(untrained_weights())
        .arg(&photos)
        .args(["--profile", "amazon-main", "--format", "jsonl", "--output"])
        .arg(&results)
        .arg("--report")
        .arg(&html)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "one broken file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = std::fs::read_dir(&photos).unwrap().count();
    // The `report` subcommand gives the same document from the JSONL file.
    let again = dir.join("again.html");
    let out = bin()
        .args(["report"])
        .arg(&results)
        .arg("--out")
        .arg(&again)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = std::fs::read_to_string(&again).unwrap();
    assert_eq!(a.matches("<article class=\"card").count(), count);
    (html, count)
}

#[test]
fn report_subcommand_refuses_a_file_that_is_not_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("x.jsonl");
    std::fs::write(&f, "{\"hello\": 1}\n").unwrap();
    let out = bin().args(["report"]).arg(&f).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn report_renders_in_headless_chromium_with_a_card_per_image() {
    if std::env::var_os("SHOTGRADE_SKIP_BROWSER").is_some() {
        eprintln!("SHOTGRADE_SKIP_BROWSER set: browser test skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (html, count) = make_report(dir.path());
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is needed for this test (apt-get install chromium), or set SHOTGRADE_SKIP_BROWSER=1");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
    ];
    let url = format!("file://{}", html.display());
    let profile_dir = dir.path().join("chromium-profile");
    let user_data = format!("--user-data-dir={}", profile_dir.display());
    let dom = Command::new(browser)
        .args(flags)
        .arg(&user_data)
        .args(["--dump-dom", &url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<article class=\"card").count(),
        count,
        "one card per image"
    );
    assert_eq!(
        dom.matches("<tr class=\"row").count(),
        count,
        "one table row per image"
    );
    // The script ran: it wrote the shown-count.
    assert!(
        dom.contains(&format!("{count} of {count} shown")),
        "filter script did not run"
    );
    assert!(dom.contains("could not be scored"), "error card");
    assert!(dom.contains("class=\"reason\""), "reasons rendered");
    assert!(dom.contains("Amazon"), "profile checks rendered");

    let shot = dir.path().join("report.png");
    let out = Command::new(browser)
        .args(flags)
        .arg(&user_data)
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1200,1600", &url])
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = image::open(&shot).expect("screenshot is a PNG");
    assert_eq!((png.width(), png.height()), (1200, 1600));
    // Not a blank page: the rendered report has many distinct colours.
    let rgb = png.to_rgb8();
    let mut colours = std::collections::HashSet::new();
    for p in rgb.pixels().step_by(97) {
        colours.insert(p.0);
    }
    assert!(
        colours.len() > 20,
        "screenshot looks blank ({} colours)",
        colours.len()
    );
    if let Some(keep) = std::env::var_os("SHOTGRADE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
}
