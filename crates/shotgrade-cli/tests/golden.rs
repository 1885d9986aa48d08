//! Golden test: the README's first command, `shotgrade score examples/ --format jsonl` on the
//! shipped weights, gives the rows recorded in `tests/golden/examples.jsonl` — every number
//! within 1e-5, everything else identical. A refactor must not move a grade; a change that
//! means to (new weights, a new rule) regenerates the file and says why in its commit:
//!
//! ```text
//! cargo run --release -p shotgrade-cli -- score examples/ --format jsonl \
//!     > crates/shotgrade-cli/tests/golden/examples.jsonl
//! ```

mod common;

use common::{bin, repo_root};
use serde_json::Value;

/// Where `a` and `b` differ (numbers by more than `tolerance`), as JSON paths.
fn differences(a: &Value, b: &Value, path: &str, tolerance: f64, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            if (x - y).abs() > tolerance || x.is_nan() != y.is_nan() {
                out.push(format!("{path}: {x} vs {y}"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        differences(p, q, &format!("{path}.{key}"), tolerance, out)
                    }
                    _ => out.push(format!("{path}.{key}: present on one side only")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{path}[{i}]"), tolerance, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

fn rows(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

#[test]
fn scoring_the_examples_gives_the_recorded_rows() {
    let root = repo_root();
    let out = bin()
        .current_dir(&root)
        .args(["score", "examples/", "--format", "jsonl"])
        .output()
        .expect("run shotgrade");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let golden =
        std::fs::read_to_string(root.join("crates/shotgrade-cli/tests/golden/examples.jsonl"))
            .expect("golden file");
    let (now, then) = (rows(&String::from_utf8_lossy(&out.stdout)), rows(&golden));
    assert_eq!(now.len(), then.len(), "row count");
    assert!(now.len() >= 12, "every example scored");
    let mut diff = Vec::new();
    for (i, (a, b)) in now.iter().zip(&then).enumerate() {
        differences(a, b, &format!("row {i}"), 1e-5, &mut diff);
    }
    assert!(diff.is_empty(), "scores moved:\n{}", diff.join("\n"));

    // The comparison itself can fail: a moved score is caught.
    let mut moved = then[0].clone();
    moved["scores"]["total"] =
        serde_json::json!(then[0]["scores"]["total"].as_f64().unwrap_or(0.0) + 1e-3);
    let mut caught = Vec::new();
    differences(&moved, &then[0], "row 0", 1e-5, &mut caught);
    assert_eq!(caught.len(), 1, "{caught:?}");
}
