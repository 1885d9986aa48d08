//! `shotgrade eval`.

use anyhow::{Context, Result};
use shotgrade::models::{Device, Models};
use shotgrade::{GradeOptions, Grader, GraderSettings, Row, Source};
use shotgrade_synth::labels::{Part, load_labelled};
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
    iou: Option<f32>,
    error: Option<String>,
}

fn real_part(arg: RealPartArg) -> Part {
    match arg {
        RealPartArg::Train => Part::Train,
        RealPartArg::Validation => Part::Validation,
        RealPartArg::Test => Part::Test,
    }
}

/// Grades the labelled real photos of one part with the weights folder, as `score` would.
fn eval_real(args: &EvalArgs) -> Result<(RealScores, Vec<RealPhotoResult>)> {
    let part = real_part(args.part);
    let photos: Vec<_> = load_labelled(&args.labels)
        .with_context(|| format!("cannot load the labels in {}", args.labels.display()))?
        .into_iter()
        .filter(|p| p.part == part)
        .collect();
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
        };
        let mut error = None;
        match row {
            Row::Scored(s) => {
                outcome.predicted_class = Some(s.background.class);
                outcome.predicted_box = s.position.main.as_ref().map(|m| m.bbox);
                outcome.fills_frame = photo.fills_frame(s.image.width, s.image.height);
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
            error,
        });
        outcomes.push(outcome);
    }
    Ok((score_real(&outcomes), results))
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
        let r = eval_position(&path("position"), &args.assets, sizes)?;
        let s = &r.synthetic;
        println!(
            "position, synthetic test: mAP@0.5 {:.4}, mAP@0.5:0.95 {:.4}, subject accuracy {:.4}, mean IoU {:.4} ({} images)",
            s.map_50, s.map_50_95, s.subject_accuracy, s.mean_iou, s.count
        );
        println!(
            "position, real magento2 white: mean IoU {:.4} vs non-white box ({} photos)",
            r.real_white_mean_iou, r.real_white_photos
        );
        let f = &r.frame_filling;
        println!(
            "position, frame-filling probes (cut-outs spanning 85-98 % of a white frame): span error {:.2} points on average, within 5 points on {:.3} ({} probes)",
            f.mean_span_error, f.within_5_points, f.probes
        );
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
        let (scores, photos) = eval_real(&args)?;
        let part = real_part(args.part).as_str();
        print_real(part, &scores);
        report.insert(
            "real".into(),
            serde_json::json!({ "part": part, "scores": scores, "photos": photos }),
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
