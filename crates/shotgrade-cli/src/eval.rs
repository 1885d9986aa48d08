//! `shotgrade eval`.

use anyhow::{Context, Result};
use shotgrade_train::eval::{
    BackgroundSplit, EvalSizes, LadderFamilies, eval_background, eval_experience, eval_position,
};
use shotgrade_train::metrics::ClassMetrics;

use crate::cli::{EvalArgs, EvalTarget, LadderFamiliesArg, SplitArg};

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
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
