//! `shotgrade eval`.

use anyhow::{Context, Result};
use shotgrade::core::{BACKGROUND_CLASSES, BackgroundClass};
use shotgrade::models::{Device, Models};
use shotgrade::{GradeOptions, Grader, GraderSettings, Row, Source};
use shotgrade_synth::labels::LabelledPhoto;
use shotgrade_synth::labels::{Part, load_labelled};
use shotgrade_train::baseline::{BaselineSettings, LinearBaseline};
use shotgrade_train::eval::{
    BackgroundSplit, EvalSizes, LadderFamilies, eval_background, eval_experience, eval_position,
};
use shotgrade_train::metrics::ClassMetrics;
use shotgrade_train::real_metrics::{Mean, RealOutcome, RealScores, score_real};

use crate::cli::{EvalArgs, EvalTarget, LadderFamiliesArg, RealPartArg, SplitArg};

fn print_classes(title: &str, m: &ClassMetrics) {
    let names = ["white", "black", "solid", "lifestyle", "cluttered"];
    println!(
        "{title}: accuracy {:.4} over {} images",
        m.accuracy, m.count
    );
    println!(
        "  {:<10} {:>9} {:>7}   confusion (rows truth, columns predicted)",
        "class", "precision", "recall"
    );
    for (i, name) in names.iter().enumerate() {
        let row: Vec<String> = m.confusion[i].iter().map(|v| format!("{v:>5}")).collect();
        println!(
            "  {:<10} {:>9.3} {:>7.3}   {}",
            name,
            m.precision[i],
            m.recall[i],
            row.join("")
        );
    }
}

/// One graded photo of `eval real`, for the JSON report.
#[derive(serde::Serialize)]
struct RealPhotoResult {
    path: String,
    source: String,
    truth: Option<String>,
    predicted: Option<String>,
    /// The border-statistics baseline's class.
    baseline: Option<String>,
    iou: Option<f32>,
    /// The `cut_off` label, and what the grader saw: the borders its box touches and the
    /// detector's subject probability (whole product in frame).
    cut_off: bool,
    touches: Vec<String>,
    subject_probability: Option<f32>,
    error: Option<String>,
}

fn real_part(arg: RealPartArg) -> Part {
    match arg {
        RealPartArg::Train => Part::Train,
        RealPartArg::Validation => Part::Validation,
        RealPartArg::Test => Part::Test,
    }
}

/// The border band's statistics of each photo (`None` for one that does not decode).
fn border_statistics(args: &EvalArgs, photos: &[&LabelledPhoto]) -> Vec<Option<Vec<f32>>> {
    use rayon::prelude::*;
    let limits = shotgrade::image::Limits::default();
    photos
        .par_iter()
        .map(|p| {
            shotgrade::image::load_path(&args.assets.join(&p.path), &limits)
                .ok()
                .map(|img| shotgrade::image::backdrop_statistics(&img.rgb).to_vec())
        })
        .collect()
}

/// The trivial baseline's class for each of `photos`: a linear classifier over the border
/// band's statistics alone, fitted on the labelled `train` photos of `all`.
fn baseline_classes(
    args: &EvalArgs,
    all: &[LabelledPhoto],
    photos: &[&LabelledPhoto],
) -> Result<Vec<Option<BackgroundClass>>> {
    let train: Vec<&LabelledPhoto> = all
        .iter()
        .filter(|p| p.part == Part::Train && p.background.is_some())
        .collect();
    let examples: Vec<(Vec<f32>, usize)> = border_statistics(args, &train)
        .into_iter()
        .zip(&train)
        .filter_map(|(x, p)| Some((x?, p.background?.index())))
        .collect();
    let baseline = LinearBaseline::fit(
        &examples,
        BACKGROUND_CLASSES.len(),
        &BaselineSettings::default(),
    )
    .context("no decodable labelled photo in the train part to fit the baseline on")?;
    Ok(border_statistics(args, photos)
        .into_iter()
        .map(|x| x.map(|x| BACKGROUND_CLASSES[baseline.predict(&x)]))
        .collect())
}

/// Errors on the photos whose label is not `white` (a photo without a prediction counts).
fn non_white_errors(outcomes: &[RealOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| o.truth_class.is_some_and(|c| c != BackgroundClass::White))
        .filter(|o| o.predicted_class != o.truth_class)
        .count()
}

/// The grader and the baseline on one part of the real photos.
struct RealEval {
    scores: RealScores,
    baseline: RealScores,
    non_white_errors: (usize, usize),
    photos: Vec<RealPhotoResult>,
}

/// Grades the labelled real photos of one part with the weights folder, as `score` would, and
/// the border-statistics baseline beside it.
fn eval_real(args: &EvalArgs) -> Result<RealEval> {
    let part = real_part(args.part);
    let all = load_labelled(&args.labels)
        .with_context(|| format!("cannot load the labels in {}", args.labels.display()))?;
    let photos: Vec<&LabelledPhoto> = all.iter().filter(|p| p.part == part).collect();
    anyhow::ensure!(
        !photos.is_empty(),
        "no labelled photos in the {} part",
        part.as_str()
    );
    let device = Device::flex();
    let models = Models::load_dir(&args.weights, &device)
        .with_context(|| format!("cannot load the weights in {}", args.weights.display()))?;
    let settings = GraderSettings {
        mask_product: args.product_mask,
        snap_box: if args.no_box_snap {
            None
        } else {
            GraderSettings::default().snap_box
        },
        ..GraderSettings::default()
    };
    let grader = Grader::new(models, settings)?;
    let sources: Vec<Source> = photos
        .iter()
        .map(|p| Source::File(args.assets.join(&p.path)))
        .collect();
    let rows = grader.grade(&sources, &GradeOptions::default());
    let mut outcomes = Vec::with_capacity(photos.len());
    let mut results = Vec::with_capacity(photos.len());
    for (photo, row) in photos.iter().zip(&rows) {
        let mut outcome = RealOutcome {
            source: photo.source.clone(),
            truth_class: photo.background,
            predicted_class: None,
            truth_box: photo.bbox,
            predicted_box: None,
            fills_frame: false,
            on_model: photo.person == shotgrade_synth::labels::Person::Worn,
            truth_cut_off: photo.cut_off,
            predicted_cut_off: None,
        };
        let mut error = None;
        let main = match row {
            Row::Scored(s) => s.position.main.as_ref(),
            Row::Error(_) => None,
        };
        match row {
            Row::Scored(s) => {
                outcome.predicted_class = Some(s.background.class);
                outcome.predicted_box = s.position.main.as_ref().map(|m| m.bbox);
                outcome.fills_frame = photo.fills_frame(s.image.width, s.image.height);
                outcome.predicted_cut_off =
                    Some(s.reasons.iter().any(|r| r.code == "product_cut_off"));
            }
            Row::Error(e) => error = Some(e.error.message.clone()),
        }
        results.push(RealPhotoResult {
            path: photo.path.clone(),
            source: photo.source.clone(),
            truth: photo.background.map(|c| c.name().to_string()),
            predicted: outcome.predicted_class.map(|c| c.name().to_string()),
            iou: photo.bbox.map(|t| {
                outcome
                    .predicted_box
                    .map_or(0.0, |p| shotgrade::core::iou(&p, &t))
            }),
            baseline: None,
            cut_off: photo.cut_off,
            touches: main.map(|m| m.touches.clone()).unwrap_or_default(),
            subject_probability: main.map(|m| m.subject_probability),
            error,
        });
        outcomes.push(outcome);
    }
    let baseline = baseline_classes(args, &all, &photos)?;
    let baseline_outcomes: Vec<RealOutcome> = outcomes
        .iter()
        .zip(&baseline)
        .map(|(o, b)| RealOutcome {
            predicted_class: *b,
            predicted_box: None,
            predicted_cut_off: None,
            ..o.clone()
        })
        .collect();
    for (r, b) in results.iter_mut().zip(&baseline) {
        r.baseline = b.map(|c| c.name().to_string());
    }
    Ok(RealEval {
        scores: score_real(&outcomes),
        baseline: score_real(&baseline_outcomes),
        non_white_errors: (
            non_white_errors(&outcomes),
            non_white_errors(&baseline_outcomes),
        ),
        photos: results,
    })
}

/// The grader beside the baseline: per source and per class, and the errors on non-white
/// backdrops.
fn print_against_baseline(part: &str, e: &RealEval) {
    let pct = |x: &Mean| format!("{:5.1} %", 100.0 * x.mean);
    println!(
        "real {part}, background: the grader against the border-statistics baseline (a linear \
         classifier over the border band's {} statistics, fitted on the train part)",
        shotgrade::image::BACKDROP_FEATURES
    );
    println!(
        "  {:<14} {:>7} {:>9} {:>9}",
        "source", "photos", "grader", "baseline"
    );
    println!(
        "  {:<14} {:>7} {:>9} {:>9}",
        "all",
        e.scores.background_accuracy.count,
        pct(&e.scores.background_accuracy),
        pct(&e.baseline.background_accuracy)
    );
    for (source, s) in &e.scores.per_source {
        if let Some(b) = e.baseline.per_source.get(source) {
            println!(
                "  {:<14} {:>7} {:>9} {:>9}",
                source,
                s.background_accuracy.count,
                pct(&s.background_accuracy),
                pct(&b.background_accuracy)
            );
        }
    }
    println!(
        "  {:<14} {:>7} {:>9} {:>9}   (recall)",
        "class", "photos", "grader", "baseline"
    );
    for (i, class) in BACKGROUND_CLASSES.iter().enumerate() {
        let truth: u32 = e.scores.background.confusion[i].iter().sum();
        println!(
            "  {:<14} {:>7} {:>8.1}% {:>8.1}%",
            class.name(),
            truth,
            100.0 * e.scores.background.recall[i],
            100.0 * e.baseline.background.recall[i]
        );
    }
    let (grader, baseline) = e.non_white_errors;
    println!(
        "  errors on non-white backdrops: grader {grader}, baseline {baseline} (bar: at most half \
         the baseline's)"
    );
}

fn print_real(part: &str, r: &RealScores) {
    let m = |x: &Mean| format!("{:.3} ({})", x.mean, x.count);
    println!(
        "real {part}: {} photos, {} errors; background accuracy {}",
        r.photos,
        r.errors,
        m(&r.background_accuracy)
    );
    println!(
        "  {:<10} {:>7} {:>16} {:>16}",
        "source", "photos", "background", "main-box IoU"
    );
    for (source, s) in &r.per_source {
        println!(
            "  {:<10} {:>7} {:>16} {:>16}",
            source,
            s.photos,
            m(&s.background_accuracy),
            m(&s.box_iou)
        );
    }
    let b = &r.boxes;
    println!(
        "  main-box IoU: white {}, non-white {}, frame-filling {}, on-model non-white {}; IoU ≥ 0.5 on {}",
        m(&b.white),
        m(&b.non_white),
        m(&b.frame_filling),
        m(&b.on_model_non_white),
        m(&b.hit_rate_50)
    );
    let c = &r.cut_off;
    println!(
        "  cut-off (the product_cut_off reason) against the by-eye label: precision {:.3} ({} called), recall {:.3} ({} labelled) over {} photos",
        c.precision, c.predicted, c.recall, c.labelled, c.photos
    );
    print_classes(&format!("real {part}, background"), &r.background);
}

pub fn run(args: EvalArgs) -> Result<()> {
    let sizes = EvalSizes {
        synthetic: args.synthetic,
        ladder_photos: args.ladder_photos,
        ladder_families: match args.ladder_families {
            LadderFamiliesArg::Test => LadderFamilies::Test,
            LadderFamiliesArg::Validation => LadderFamilies::Validation,
        },
        background_split: match args.background_split {
            SplitArg::Test => BackgroundSplit::Test,
            SplitArg::Validation => BackgroundSplit::Validation,
        },
    };
    let mut report = serde_json::Map::new();
    let all = args.target == EvalTarget::All;
    if !all && args.target != EvalTarget::Background && !args.snapshot.is_empty() {
        anyhow::bail!("--snapshot adds background networks; evaluate `background` or `all`");
    }
    let path = |name: &str| args.weights.join(format!("{name}.safetensors"));
    if all || args.target == EvalTarget::Background {
        eprintln!("evaluating background…");
        let mut files = vec![path("background")];
        files.extend(args.snapshot.iter().cloned());
        let r = eval_background(&files, &args.assets, sizes)?;
        if files.len() > 1 {
            println!("background: snapshot ensemble of {} networks", files.len());
        }
        if r.second_stage {
            println!("background: network and its second stage (white against off-white)");
        }
        let split = match sizes.background_split {
            BackgroundSplit::Test => "background, synthetic test",
            BackgroundSplit::Validation => "background, synthetic validation (160-640 px)",
        };
        print_classes(split, &r.synthetic);
        print_classes("background, real (grocery/val + grocery/iconic)", &r.real);
        report.insert("background".into(), serde_json::to_value(&r)?);
    }
    if all || args.target == EvalTarget::Position {
        eprintln!("evaluating position…");
        let part = real_part(args.part);
        let r = eval_position(&path("position"), &args.assets, &args.labels, part, sizes)?;
        let s = &r.synthetic;
        println!(
            "position, synthetic test: mAP@0.5 {:.4}, mAP@0.5:0.95 {:.4}, subject accuracy {:.4}, mean IoU {:.4} ({} images)",
            s.map_50, s.map_50_95, s.subject_accuracy, s.mean_iou, s.count
        );
        println!(
            "position, real {} photos: mean IoU {:.4} of the top detection vs the box drawn by eye ({} photos)",
            r.real.part, r.real.mean_iou, r.real.photos
        );
        for (whose, f) in [
            ("the network's boxes", &r.frame_filling),
            ("snapped as graded", &r.frame_filling_snapped),
        ] {
            println!(
                "position, frame-filling probes (cut-outs spanning 85-98 % of a white frame), {whose}: span error {:.2} points on average, within 5 points on {:.3}, mean IoU {:.3} ({} probes)",
                f.mean_span_error, f.within_5_points, f.mean_iou, f.probes
            );
        }
        report.insert("position".into(), serde_json::to_value(&r)?);
    }
    if all || args.target == EvalTarget::Experience {
        eprintln!("evaluating experience…");
        let r = eval_experience(&path("experience"), &args.assets, sizes)?;
        let s = &r.synthetic;
        println!(
            "experience, synthetic pairs: noise SRCC {:.4}, PLCC {:.4}, aesthetic SRCC {:.4}, clean>degraded {:.4} ({} pairs)",
            s.noise_srcc, s.noise_plcc, s.aesthetic_srcc, s.pair_accuracy, s.pairs
        );
        for l in &r.ladder {
            println!(
                "experience, real ladder {:<15} mean SRCC(level, noise) {:+.4}, clean>middle {:.4}",
                l.distortion, l.mean_srcc_noise, l.pair_accuracy_middle
            );
        }
        println!(
            "experience, real ladder overall: mean SRCC {:+.4}, clean>middle {:.4} ({} photos of the {:?} product families)",
            r.ladder_mean_srcc_noise,
            r.ladder_pair_accuracy_middle,
            r.ladder_photos,
            r.ladder_families
        );
        report.insert("experience".into(), serde_json::to_value(&r)?);
    }
    if args.target == EvalTarget::Real {
        eprintln!("evaluating the grader on the labelled real photos…");
        let e = eval_real(&args)?;
        let part = real_part(args.part).as_str();
        print_real(part, &e.scores);
        print_against_baseline(part, &e);
        report.insert(
            "real".into(),
            serde_json::json!({
                "part": part,
                "scores": e.scores,
                "baseline": e.baseline,
                "non_white_errors": { "grader": e.non_white_errors.0, "baseline": e.non_white_errors.1 },
                "photos": e.photos,
            }),
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
