//! End-to-end tests of the `shotgrade` binary on the bundled examples.

mod common;

use common::{bin, jsonl, repo_root, run, untrained_weights};

fn examples() -> std::path::PathBuf {
    repo_root().join("examples")
}

fn example_count() -> usize {
    std::fs::read_dir(examples()).expect("examples/").count()
}

fn score(extra: &[&str]) -> std::process::Output {
    bin()
        .args(["score", "--allow-untrained", "--weights"])
        .arg(untrained_weights())
        .arg(examples())
        .args(extra)
        .output()
        .expect("run")
}

#[test]
fn untrained_weights_are_refused_without_the_flag() {
    let out = bin()
        .args(["score", "--weights"])
        .arg(untrained_weights())
        .arg(examples())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never trained"), "{err}");
    assert!(out.stdout.is_empty(), "no scores from untrained weights");
}

#[test]
fn default_weights_are_used_or_their_absence_explained() {
    let info = run(&["models", "--json"]);
    assert!(info.status.success());
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    let out = bin()
        .args(["score", "--format", "jsonl"])
        .arg(examples())
        .output()
        .expect("run");
    if info["trained"] == true {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(jsonl(&out).len(), example_count());
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no trained weights"));
    }
}

#[test]
fn jsonl_has_one_valid_row_per_example_in_sorted_order() {
    let out = score(&["--format", "jsonl", "--scene", "electronics"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = jsonl(&out);
    assert_eq!(rows.len(), example_count());
    let paths: Vec<&str> = rows
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for r in &rows {
        assert_eq!(r["status"], "ok");
        assert_eq!(r["scene"], "electronics");
        for k in [
            "total",
            "background",
            "position",
            "visual",
            "aesthetic",
            "noise",
        ] {
            let v = r["scores"][k].as_f64().expect("score");
            assert!((0.0..=100.0).contains(&v), "{k} = {v}");
        }
        assert!(r["reasons"].is_array());
        assert!(r["background"]["class"].is_string());
    }
    let cutout = rows
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("transparent_cutout.png")
        })
        .expect("cutout row");
    assert_eq!(cutout["image"]["has_alpha"], true);

    // Same input, same output.
    let again = score(&["--format", "jsonl", "--scene", "electronics"]);
    assert_eq!(out.stdout, again.stdout);
}

#[test]
fn csv_json_table_and_output_file() {
    let csv_out = score(&["--format", "csv"]);
    assert!(csv_out.status.success());
    let text = String::from_utf8_lossy(&csv_out.stdout);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(headers.get(0), Some("path"));
    assert_eq!(headers.len(), 30);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), example_count());
    assert!(
        records
            .iter()
            .all(|r| r.len() == 30 && r.get(1) == Some("ok"))
    );
    for r in &records {
        let path = r.get(0).unwrap_or_default();
        let quality = r.get(29).unwrap_or_default();
        if path.ends_with(".jpg") {
            let q: u8 = quality
                .parse()
                .unwrap_or_else(|_| panic!("{path}: {quality:?}"));
            assert!((1..=100).contains(&q), "{path}: {q}");
        } else {
            assert_eq!(quality, "", "{path}: only JPEGs have a quality");
        }
    }

    let json_out = score(&["--format", "json"]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&json_out.stdout).expect("json array");
    assert_eq!(rows.len(), example_count());

    let table = score(&["--format", "table"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("TOTAL") || text.trim_start().starts_with("TOTAL"),
        "{text}"
    );
    // One line per image (plus the header); further reasons sit on indented lines below.
    let rows = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("· "))
        .count();
    assert_eq!(rows, example_count() + 1, "{text}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rows.jsonl");
    let to_file = score(&[
        "--format",
        "jsonl",
        "--output",
        file.to_str().expect("utf-8"),
    ]);
    assert!(to_file.status.success());
    assert!(to_file.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("rows")
            .lines()
            .count(),
        example_count()
    );
}

#[test]
fn usage_and_config_errors_exit_1_with_clear_messages() {
    let out = score(&["--scene", "cars"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown scene `cars`") && err.contains("electronics"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[weights]\nvisual = -2\n").expect("write");
    let out = score(&["--config", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("weights.visual") && err.contains("bad.toml"),
        "{err}"
    );

    let out = run(&["score"]);
    assert_eq!(out.status.code(), Some(1), "missing paths is a usage error");
    let out = run(&["score", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--format"));
}

#[test]
fn printed_config_is_a_valid_config_file() {
    let printed = run(&["config", "--print"]);
    assert!(printed.status.success());
    let text = String::from_utf8_lossy(&printed.stdout).to_string();
    for scene in [
        "general",
        "electronics",
        "apparel",
        "food",
        "home",
        "beauty",
    ] {
        assert!(
            text.contains(&format!("[scenes.{scene}]")),
            "{scene} missing"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, text).expect("write");
    let check = run(&["config", "--config", file.to_str().expect("utf-8")]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn models_lists_three_nets_with_flops() {
    let out = run(&[
        "models",
        "--json",
        "--weights",
        untrained_weights().to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let nets = v["nets"].as_array().expect("nets");
    assert_eq!(nets.len(), 3);
    for n in nets {
        assert!(n["parameters"].as_u64().unwrap_or(0) > 10_000);
        assert!(n["gflops"].as_f64().unwrap_or(0.0) > 0.0);
    }
    assert_eq!(v["trained"], false);
}

/// `eval real` grades the labelled photos of one part with a weights folder and reports per
/// source; here two bundled examples labelled by eye, the shipped weights, and one photo that
/// is in the split but missing on disk (an error row, counted as a miss).
#[test]
fn eval_real_scores_a_labelled_part_per_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = dir.path().join("labels");
    std::fs::create_dir_all(&labels).expect("mkdir");
    std::fs::write(
        labels.join("a.csv"),
        "path,background,person,cut_off,overlay,box,box_method,note\n\
         examples/white_centred.jpg,white,none,no,none,,,\n\
         examples/black_backdrop.jpg,black,none,no,none,,,\n\
         examples/missing.jpg,white,none,no,none,,,\n\
         examples/cluttered.jpg,cluttered,none,no,none,,,\n",
    )
    .expect("labels");
    std::fs::write(
        dir.path().join("split.csv"),
        "path,source,family,part\n\
         examples/white_centred.jpg,examples,w,test\n\
         examples/black_backdrop.jpg,examples,b,test\n\
         examples/missing.jpg,gone,m,test\n\
         examples/cluttered.jpg,examples,c,train\n",
    )
    .expect("split");
    let json = dir.path().join("out.json");
    let out = bin()
        .args(["eval", "real", "--weights"])
        .arg(repo_root().join("models"))
        .arg("--assets")
        .arg(repo_root())
        .arg("--labels")
        .arg(dir.path())
        .arg("--out")
        .arg(&json)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("real test: 3 photos, 1 errors"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    let scores = &report["real"]["scores"];
    assert_eq!(scores["per_source"]["examples"]["photos"], 2);
    // The train part is never graded.
    let photos = report["real"]["photos"].as_array().expect("photos");
    assert!(photos.iter().all(|p| p["path"] != "examples/cluttered.jpg"));
    assert_eq!(
        scores["per_source"]["gone"]["background_accuracy"]["mean"],
        0.0
    );

    // The masked second look runs end to end and grades the same photos.
    let masked = bin()
        .args(["eval", "real", "--product-mask", "--weights"])
        .arg(repo_root().join("models"))
        .arg("--assets")
        .arg(repo_root())
        .arg("--labels")
        .arg(dir.path())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&masked.stdout);
    assert!(masked.status.success(), "{text}");
    assert!(text.contains("real test: 3 photos, 1 errors"), "{text}");
}

#[test]
fn bench_reports_every_network_and_warm_and_cold_rates() {
    let out = bin()
        .args(["bench", "--count", "3", "--size", "96", "--repeats", "1"])
        .args(["--jobs", "1", "--json", "--weights"])
        .arg(untrained_weights())
        .output()
        .expect("run");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(report["images"], 3, "{report}");
    let nets: Vec<&str> = report["forward"]
        .as_array()
        .expect("forward timings")
        .iter()
        .filter_map(|f| f["net"].as_str())
        .collect();
    for net in ["background", "position", "experience", "position-folded"] {
        assert_eq!(nets.iter().filter(|n| **n == net).count(), 2, "{nets:?}");
    }
    for rate in [
        "end_to_end_images_per_s",
        "end_to_end_first_pass_images_per_s",
        "decode_preprocess_images_per_s",
    ] {
        let r = report[rate].as_f64().expect(rate);
        assert!(r.is_finite() && r > 0.0, "{rate}: {report}");
    }
}
