//! `shotgrade train` and `shotgrade eval` end to end on a tiny generated asset folder: every
//! network trains a few steps, writes weights and metrics, continues from its own weights, and
//! the three files evaluate and score together.

mod common;

use common::bin;
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::path::Path;
use std::process::Output;

fn save_rgb(root: &Path, rel: &str, img: &RgbImage) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    img.save(&path).expect("save");
}

/// A stand-in for `../shared/assets`: two cut-outs, one backdrop per pool, real photos in every
/// folder the trainers and `eval` read.
fn tiny_assets(root: &Path) {
    std::fs::create_dir_all(root.join("cutouts")).expect("mkdir");
    for (i, colour) in [[200u8, 30, 30, 255], [30, 90, 200, 255]]
        .iter()
        .enumerate()
    {
        let img = RgbaImage::from_fn(60, 90, |x, y| {
            if (x as i32 - 30).pow(2) + (y as i32 - 45).pow(2) < 900 {
                Rgba(*colour)
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        img.save(root.join(format!("cutouts/c{i}.png")))
            .expect("save");
    }
    std::fs::write(
        root.join("cutouts/index.csv"),
        "path,source,category\ncutouts/c0.png,test,ball\ncutouts/c1.png,test,ball\n",
    )
    .expect("index");

    let stripes = RgbImage::from_fn(200, 150, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let paper = RgbImage::from_fn(200, 150, |x, y| Rgb([220, 210, (190 + (x + y) % 9) as u8]));
    save_rgb(root, "backgrounds/scenes/room.jpg", &stripes);
    save_rgb(root, "backgrounds/textures/paper.jpg", &paper);
    save_rgb(root, "backgrounds/graphics/busy.jpg", &stripes);
    std::fs::write(
        root.join("backgrounds/index.csv"),
        "path,pool\nbackgrounds/scenes/room.jpg,scenes\nbackgrounds/textures/paper.jpg,textures\n\
         backgrounds/graphics/busy.jpg,graphics\n",
    )
    .expect("index");

    let packshot = RgbImage::from_fn(160, 200, |x, y| {
        if (50..110).contains(&x) && (60..150).contains(&y) {
            Rgb([40, 60, 90])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let mut index = String::from("path,source,background_hint\n");
    for (rel, hint, img) in [
        ("real/grocery/train/a.jpg", "cluttered", &stripes),
        ("real/grocery/train/b.jpg", "cluttered", &stripes),
        ("real/grocery/val/c.jpg", "cluttered", &stripes),
        ("real/grocery/iconic/d.jpg", "white", &packshot),
        // Shop photos: product families e (training), f (validation ladder) and g (test
        // ladder), see `ShopSplit`.
        ("real/magento2/e.jpg", "white", &packshot),
        ("real/spree/f.jpg", "solid", &paper),
        ("real/magento2/g-red_main.jpg", "white", &packshot),
        ("real/spree/g-kettle.jpg", "solid", &paper),
    ] {
        save_rgb(root, rel, img);
        index.push_str(&format!("{rel},test,{hint}\n"));
    }
    std::fs::write(root.join("real/index.csv"), index).expect("index");

    // Labels drawn "by eye" for two packshots: one to train on, one to choose by.
    std::fs::create_dir_all(root.join("labels/labels")).expect("mkdir");
    std::fs::write(
        root.join("labels/labels/a.csv"),
        "path,background,person,cut_off,overlay,box,box_method,note\n\
         real/magento2/e.jpg,white,none,no,none,50 60 110 150,pixels,\n\
         real/grocery/iconic/d.jpg,white,none,no,none,50 60 110 150,pixels,\n",
    )
    .expect("labels");
    std::fs::write(
        root.join("labels/split.csv"),
        "path,source,family,part\n\
         real/magento2/e.jpg,magento2,e,train\n\
         real/grocery/iconic/d.jpg,grocery,d,validation\n",
    )
    .expect("split");
}

fn ok(out: Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{what} failed: {err}");
    err
}

fn train(net: &str, assets: &Path, out: &Path, extra: &[&str]) -> String {
    let output = train_command(&[net], assets, out)
        .args([
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--eval-every",
            "1",
            "--validation-size",
            "4",
            "--jobs",
            "2",
        ])
        .args(extra)
        .output()
        .expect("run shotgrade");
    ok(output, &format!("train {net}"))
}

/// Runs `shotgrade eval ARGS --weights W --assets A --out JSON`, expects success and returns
/// the JSON it wrote.
fn run_eval(args: &[&str], weights: &Path, assets: &Path, json: &Path) -> serde_json::Value {
    let out = bin()
        .arg("eval")
        .args(args)
        .arg("--weights")
        .arg(weights)
        .arg("--assets")
        .arg(assets)
        .arg("--out")
        .arg(json)
        .output()
        .expect("run shotgrade");
    ok(out, &format!("eval {}", args.join(" ")));
    serde_json::from_slice(&std::fs::read(json).expect("eval JSON")).expect("JSON")
}

#[test]
fn every_network_trains_continues_evaluates_and_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assets = dir.path().join("assets");
    tiny_assets(&assets);
    let weights = dir.path().join("weights");
    let labels = assets.join("labels").to_string_lossy().to_string();

    for (net, extra) in [
        (
            "background",
            vec![
                "--max-side",
                "200",
                "--median-colours",
                "--colour-spread",
                "--colour-features",
                "4",
                "--boundary-share",
                "0.5",
                "--weight-average",
                "0.9",
                "--input-size",
                "64",
                "--real-labels",
                &labels,
            ],
        ),
        (
            "position",
            vec!["--real-labels", &labels, "--real-fraction", "0.5"],
        ),
        (
            "experience",
            vec![
                "--real-fraction",
                "0.5",
                "--large-share",
                "0.5",
                "--low-jpeg-share",
                "0.3",
                "--mild-share",
                "0.4",
            ],
        ),
    ] {
        let out = dir.path().join(net);
        let log = train(net, &assets, &out, &extra);
        assert!(log.contains("eval step 2"), "{net}: {log}");
        if net == "background" {
            // grocery/train's two photos and the labelled train photo; the labelled validation
            // photo validates, and nothing else of magento2 or spree is trained on.
            assert!(
                log.contains("3 real training photos (0 unreadable); 1 real validation photos"),
                "{log}"
            );
        }
        if net == "position" {
            assert!(
                log.contains("real validation IoU") && log.contains("(1 photos)"),
                "{log}"
            );
        }
        let metrics: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("{net}.metrics.json"))).expect("metrics written"),
        )
        .expect("metrics JSON");
        assert_eq!(metrics["steps_run"], 2, "{net}: {metrics}");
        if net == "background" {
            let settings = metrics["settings"].as_str().unwrap_or_default();
            assert!(settings.contains("max_side: 200"), "{settings}");
            // The median planes, the colour features and the weight average reach the run; eval
            // and score below use that network (continued from this file, which keeps its
            // config).
            assert!(
                settings.contains("median_colours: Some(true)"),
                "{settings}"
            );
            assert!(settings.contains("colour_features: Some(4)"), "{settings}");
            assert!(settings.contains("colour_spread: Some(true)"), "{settings}");
            assert!(settings.contains("boundary_share: 0.5"), "{settings}");
            assert!(settings.contains("weight_average: Some(0.9)"), "{settings}");
            assert!(settings.contains("input_size: 64,"), "{settings}");
            assert_eq!(
                metrics["composites_rendered"], 6,
                "3 per batch of 4: {metrics}"
            );

            // Reuse: step 1 renders the 3 composites of its batch and fills the pool of 3;
            // step 2 renders ⌈3 / 3⌉ = 1 and draws 2 from the pool.
            let reused = dir.path().join("background-reuse");
            let log = train(
                net,
                &assets,
                &reused,
                &["--reuse", "3", "--reuse-pool", "3"],
            );
            assert!(log.contains("reusing composites"), "{log}");
            let m: serde_json::Value = serde_json::from_slice(
                &std::fs::read(reused.join("background.metrics.json")).expect("metrics written"),
            )
            .expect("metrics JSON");
            assert_eq!(m["composites_rendered"], 4, "{m}");
            assert_eq!(m["images_seen"], 8, "{m}");
        }
        if net == "experience" {
            // The checkpoint is chosen with the validation family's ladder (one photo).
            assert!(log.contains("validation ladder: 1 shop photos"), "{log}");
            assert_eq!(metrics["ladder_validation"]["photos"], 1, "{metrics}");
            // 4 synthetic + 2 real pairs per step.
            assert_eq!(metrics["pairs_rendered"], 12, "{metrics}");

            // Reuse: step 1 renders all 6 pairs (4 fill the synthetic pool); step 2 renders
            // ⌈4 / 2⌉ = 2 synthetic pairs and draws 2, and 2 real ones (that pool is not full).
            let reused = dir.path().join("experience-reuse");
            let log = train(
                net,
                &assets,
                &reused,
                &[
                    "--real-fraction",
                    "0.5",
                    "--reuse",
                    "2",
                    "--reuse-pool",
                    "4",
                ],
            );
            assert!(log.contains("reusing pairs"), "{log}");
            let m: serde_json::Value = serde_json::from_slice(
                &std::fs::read(reused.join("experience.metrics.json")).expect("metrics written"),
            )
            .expect("metrics JSON");
            assert_eq!(m["pairs_rendered"], 10, "{m}");
        }
        let file = out.join(format!("{net}.safetensors"));
        assert!(file.is_file(), "{net}: weights written");

        // Continuing from the saved file keeps its shape and runs; the background network
        // continues at another input size (progressive resizing), which eval and score use.
        let again = dir.path().join(format!("{net}-continued"));
        let mut continued = vec!["--init-from", file.to_str().expect("utf-8")];
        if net == "background" {
            continued.extend(["--input-size", "128"]);
        }
        train(net, &assets, &again, &continued);
        if net == "background" {
            let m = std::fs::read_to_string(again.join("background.metrics.json"))
                .expect("metrics written");
            assert!(m.contains("input_size: 128,"), "{m}");
        }
        std::fs::create_dir_all(&weights).expect("mkdir");
        std::fs::copy(
            again.join(format!("{net}.safetensors")),
            weights.join(format!("{net}.safetensors")),
        )
        .expect("copy weights");
    }

    // The second stage joins the trained background network, as an MLP and as trees (the
    // default); eval and score below use the trees.
    let stage = |kind: &str, extra: &[&str]| {
        let out = dir.path().join(format!("backdrop-{kind}"));
        let output = bin()
            .args(["train", "backdrop", "--stage", kind, "--network"])
            .arg(weights.join("background.safetensors"))
            .arg("--assets")
            .arg(&assets)
            .arg("--out")
            .arg(&out)
            .args([
                "--composites",
                "40",
                "--validation-composites",
                "30",
                "--jobs",
                "2",
            ])
            .args(extra)
            .output()
            .expect("run shotgrade");
        let log = ok(output, &format!("train backdrop --stage {kind}"));
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("backdrop.metrics.json")).expect("metrics written"),
        )
        .expect("metrics JSON");
        let kept = m["training_examples"].as_u64().unwrap_or(0);
        assert!((1..40).contains(&kept), "white and solid ones only: {m}");
        (out, log, m)
    };
    let (_, log, m) = stage("mlp", &["--epochs", "2", "--width", "4"]);
    assert!(log.contains("epoch 2/2"), "{log}");
    assert_eq!(
        m["validation_accuracy"].as_array().map(Vec::len),
        Some(2),
        "{m}"
    );
    let (staged, log, m) = stage("trees", &["--trees", "5"]);
    assert!(log.contains("5 trees"), "{log}");
    assert_eq!(
        m["validation_accuracy"].as_array().map(Vec::len),
        Some(1),
        "{m}"
    );
    std::fs::copy(
        staged.join("background.safetensors"),
        weights.join("background.safetensors"),
    )
    .expect("copy weights");

    let eval_json = dir.path().join("eval.json");
    let eval = run_eval(
        &[
            "all",
            "--synthetic",
            "6",
            "--ladder-photos",
            "2",
            "--labels",
            &labels,
            "--part",
            "validation",
        ],
        &weights,
        &assets,
        &eval_json,
    );
    // Position against the one boxed validation photo.
    assert_eq!(eval["position"]["real"]["part"], "validation", "{eval}");
    assert_eq!(eval["position"]["real"]["photos"], 1, "{eval}");
    let iou = eval["position"]["real"]["mean_iou"]
        .as_f64()
        .expect("real mean IoU");
    assert!((0.0..=1.0).contains(&iou), "{eval}");
    let accuracy = eval["background"]["synthetic"]["accuracy"]
        .as_f64()
        .expect("background accuracy");
    assert!((0.0..=1.0).contains(&accuracy), "{eval}");
    assert_eq!(eval["background"]["second_stage"], true, "{eval}");
    assert_eq!(
        eval["experience"]["ladder"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(eval["experience"]["ladder_photos"], 2, "{eval}");
    assert_eq!(eval["experience"]["ladder_families"], "test", "{eval}");

    // The validation families' ladder (family f: one photo) is a separate set.
    let eval = run_eval(
        &[
            "experience",
            "--synthetic",
            "2",
            "--ladder-families",
            "validation",
        ],
        &weights,
        &assets,
        &eval_json,
    );
    assert_eq!(eval["experience"]["ladder_photos"], 1, "{eval}");
    assert_eq!(
        eval["experience"]["ladder_families"], "validation",
        "{eval}"
    );

    let out = bin()
        .args(["score", "--format", "jsonl", "--weights"])
        .arg(&weights)
        .arg(assets.join("real/magento2/e.jpg"))
        .output()
        .expect("run shotgrade");
    ok(out.clone(), "score with the trained weights");
    let row: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON row from the trained weights");
    assert_eq!(row["status"], "ok", "{row}");
}

/// Runs `shotgrade ARGS --assets A --out O`, expects it to fail and returns its stderr.
fn refused(args: &[&str], assets: &Path, out: &Path) -> String {
    let output = bin()
        .args(args)
        .arg("--assets")
        .arg(assets)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run shotgrade");
    assert!(!output.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn training_refuses_bad_settings_and_missing_assets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["train", "background", "--assets"])
        .arg(dir.path().join("nowhere"))
        .arg("--out")
        .arg(dir.path().join("o"))
        .args(["--steps", "1"])
        .output()
        .expect("run shotgrade");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nowhere") && err.contains("index.csv"),
        "{err}"
    );

    let assets = dir.path().join("assets");
    tiny_assets(&assets);
    let err = refused(
        &[
            "train",
            "experience",
            "--twin-loss",
            "seed",
            "--real-fraction",
            "0.5",
        ],
        &assets,
        &dir.path().join("o"),
    );
    assert!(err.contains("--twin-loss none"), "{err}");

    // A labelled real photo that is not an image is named; a share outside [0, 1] is refused.
    let labels = dir.path().join("broken_labels");
    std::fs::create_dir_all(labels.join("labels")).expect("mkdir");
    std::fs::write(assets.join("real/broken.jpg"), b"not a jpeg").expect("write");
    std::fs::write(
        labels.join("labels/a.csv"),
        "path,background,person,cut_off,overlay,box,box_method,note\n\
         real/broken.jpg,white,none,no,none,1 1 5 5,eye,\n",
    )
    .expect("labels");
    std::fs::write(
        labels.join("split.csv"),
        "path,source,family,part\nreal/broken.jpg,x,b,train\n",
    )
    .expect("split");
    let labels_arg = labels.to_string_lossy().to_string();
    for (fraction, expected) in [("0.5", "real/broken.jpg"), ("2", "--real-fraction")] {
        let err = refused(
            &[
                "train",
                "position",
                "--steps",
                "1",
                "--real-labels",
                &labels_arg,
                "--real-fraction",
                fraction,
            ],
            &assets,
            &dir.path().join("o"),
        );
        assert!(err.contains(expected), "{fraction}: {err}");
    }

    // Composites smaller than the shortest side the compositor draws are refused by clap.
    let out = bin()
        .args(["train", "background", "--max-side", "100"])
        .output()
        .expect("run shotgrade");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-side") && err.contains("160"), "{err}");

    // A device this build cannot drive is named, with the way to get it, before any work.
    for (device, expected) in [
        ("tpu", "expected cpu, gpu or gpu:N"),
        ("gpu", "--features vulkan"),
    ] {
        let err = refused(
            &["train", "position", "--device", device],
            &assets,
            &dir.path().join("o"),
        );
        assert!(err.contains(expected), "{device}: {err}");
    }
    for (net, flag) in [
        ("background", "--reuse"),
        ("background", "--reuse-pool"),
        ("background", "--colour-features"),
        ("experience", "--reuse"),
        ("experience", "--reuse-pool"),
    ] {
        let out = bin()
            .args(["train", net, flag, "0"])
            .output()
            .expect("run shotgrade");
        assert!(!out.status.success(), "{flag} 0");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("not in 1.."),
            "{flag}: {err}"
        );
    }

    // Bad background options, each named in the error.
    for (args, expected) in [
        (
            &["--weight-average", "1"][..],
            "the decay must be in [0, 1)",
        ),
        (&["--colour-spread"], "--median-colours"),
        (&["--boundary-share", "1.5"], "boundary_share in [0, 1]"),
        (&["--input-size", "96"], "multiple of 64, got 96"),
        (
            &["--stage-channels", "8,8,8"],
            "--stage-channels takes four numbers",
        ),
    ] {
        let args = [&["train", "background"][..], args].concat();
        let err = refused(&args, &assets, &dir.path().join("o"));
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    // The second stage: bad numbers, and a network file that is not there, named.
    let missing = dir.path().join("no-network.safetensors");
    let missing = missing.to_str().expect("utf-8");
    for (args, expected) in [
        (&["--network", missing, "--width", "0"][..], "need width"),
        (
            &["--network", missing, "--epochs", "0"],
            "need width, epochs",
        ),
        (&["--network", missing], "no-network.safetensors"),
    ] {
        let args = [&["train", "backdrop"][..], args].concat();
        let err = refused(&args, &assets, &dir.path().join("o"));
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    for (net, flag, value) in [
        ("background", "--replay-fraction", "1.5"),
        ("background", "--replay-fraction", "0.8"), // with the default real share: sum ≥ 1
        ("experience", "--large-share", "2"),
        ("experience", "--low-jpeg-share", "1.5"),
        ("experience", "--mild-share", "1.5"),
    ] {
        let out = bin()
            .args(["train", net, flag, value, "--assets"])
            .arg(&assets)
            .arg("--out")
            .arg(dir.path().join("o"))
            .output()
            .expect("run shotgrade");
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("invalid training setting"),
            "{flag} {value}: {err}"
        );
    }
}

/// `shotgrade train ARGS --assets A --out O`, not started yet.
fn train_command(args: &[&str], assets: &Path, out: &Path) -> std::process::Command {
    let mut command = bin();
    command
        .arg("train")
        .args(args)
        .arg("--assets")
        .arg(assets)
        .arg("--out")
        .arg(out);
    command
}

/// `shotgrade train …` with `args`, in the tiny asset folder; the finished process.
fn train_raw(args: &[&str], assets: &Path, out: &Path) -> Output {
    train_command(args, assets, out)
        .output()
        .expect("run shotgrade")
}

/// `shotgrade train ARGS --resume DIR`; the finished process.
fn resume(args: &[&str], dir: &Path) -> Output {
    bin()
        .arg("train")
        .args(args)
        .arg("--resume")
        .arg(dir)
        .output()
        .expect("run shotgrade")
}

/// Every file under `dir`, relative, sorted (nothing when it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

/// `--time-limit` stops a long run with its stop line and exit 0; what it wrote scores beside
/// the shipped position and experience weights; `--resume` carries on from it and refuses a
/// changed option; SIGTERM leaves a set that resumes.
#[test]
fn time_limited_runs_stop_cleanly_resume_and_survive_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assets = dir.path().join("assets");
    tiny_assets(&assets);
    // A run told to stop by SIGTERM (below) writes its set and ends with status 143; it
    // trains meanwhile, beside the time-limited runs.
    let sigterm = dir.path().join("pos");
    let child = train_command(
        &[
            "position",
            "--steps",
            "100000",
            "--batch-size",
            "4",
            "--eval-every",
            "3",
            "--validation-size",
            "4",
            "--jobs",
            "2",
        ],
        &assets,
        &sigterm,
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    let run = dir.path().join("bg");
    let plan = [
        "background",
        "--steps",
        "100000",
        "--batch-size",
        "4",
        "--eval-every",
        "50",
        "--validation-size",
        "4",
        "--jobs",
        "2",
        "--time-limit",
        "3s",
    ];
    let started = std::time::Instant::now();
    let err = ok(train_raw(&plan, &assets, &run), "time-limited train");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let stop = err
        .lines()
        .find(|l| l.starts_with("stopped at the time limit (3.0s) after step "))
        .unwrap_or_else(|| panic!("no stop line: {err}"));
    assert!(stop.contains("of 100000"), "{stop}");
    assert!(run.join("background.safetensors").exists());
    assert!(run.join("resume/LATEST").exists());

    // The run's weights beside the shipped position and experience networks score a photo.
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    for file in ["position.safetensors", "experience.safetensors"] {
        std::fs::copy(models.join(file), run.join(file)).expect("copy shipped weights");
    }
    let scored = bin()
        .args(["score", "--format", "jsonl", "--weights"])
        .arg(&run)
        .arg(assets.join("real/grocery/iconic/d.jpg"))
        .output()
        .expect("score");
    let rows = ok(scored.clone(), "score with the stopped run's weights");
    let stdout = String::from_utf8_lossy(&scored.stdout);
    assert!(stdout.contains("\"status\":\"ok\""), "{stdout} {rows}");

    // Resuming: another option is refused with nothing written; the run itself goes on.
    let before = listing(&run);
    let out = resume(&["background", "--steps", "5"], &run);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only --time-limit and --jobs") && err.contains("--steps"),
        "{err}"
    );
    assert_eq!(listing(&run), before, "a refused resume writes nothing");
    let out = resume(&["background", "--time-limit", "3s", "--jobs", "1"], &run);
    let err = ok(out, "resumed train");
    assert!(err.contains("resumed at step "), "{err}");
    assert!(err.contains("stopped at the time limit (3.0s)"), "{err}");

    // A run told to stop by SIGTERM writes its set and ends with status 143.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !sigterm.join("resume/LATEST").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(sigterm.join("resume/LATEST").exists(), "no first set");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("stop requested: checkpoint written"), "{err}");
    let out = resume(&["position", "--time-limit", "3s"], &sigterm);
    let err = ok(out, "resume after SIGTERM");
    assert!(err.contains("resumed at step "), "{err}");
}

#[test]
fn time_limit_and_resume_usage_errors_exit_1_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assets = dir.path().join("assets");
    tiny_assets(&assets);
    let out = dir.path().join("o");
    for (limit, expected) in [
        ("0s", "no time at all"),
        ("abc", "not a duration"),
        ("5", "not a duration"),
        ("1m1h", "not a duration"),
    ] {
        let output = train_raw(&["position", "--time-limit", limit], &assets, &out);
        assert_eq!(output.status.code(), Some(1), "{limit}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(expected), "{limit}: {err}");
        assert!(!out.exists(), "{limit}: nothing written");
    }
    // An empty folder, and a folder that is not a run.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    for folder in [empty.clone(), assets.clone(), dir.path().join("missing")] {
        let before = listing(&folder);
        let output = resume(&["position"], &folder);
        assert_eq!(output.status.code(), Some(1));
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("no resumable run"), "{err}");
        assert_eq!(listing(&folder), before);
    }
    // A run of another network.
    train("experience", &assets, &out, &[]);
    let before = listing(&out);
    let output = resume(&["position"], &out);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("holds a `train experience` run") && err.contains("train experience --resume"),
        "{err}"
    );
    assert_eq!(listing(&out), before);
}
