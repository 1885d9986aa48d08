//! `shotgrade score`.

use anyhow::{Context, Result};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shotgrade::image::Limits;
use shotgrade::{GradeOptions, Grader, GraderSettings, Row, ScoredRow, Source};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Format, ScoreArgs};
use crate::output;

/// Extensions searched for inside folders.
const IMAGE_EXTENSIONS: [&str; 12] = [
    "jpg", "jpeg", "jfif", "png", "webp", "avif", "heic", "heif", "gif", "bmp", "tif", "tiff",
];

/// Loader limits from the command line.
fn limits_from(args: &ScoreArgs) -> Result<Limits> {
    anyhow::ensure!(args.max_file_mb > 0.0, "--max-file-mb must be positive");
    anyhow::ensure!(
        args.max_megapixels > 0.0,
        "--max-megapixels must be positive"
    );
    anyhow::ensure!(args.max_side > 0, "--max-side must be positive");
    Ok(Limits {
        max_file_bytes: (args.max_file_mb * 1_000_000.0) as u64,
        max_pixels: (args.max_megapixels * 1_000_000.0) as u64,
        max_side: args.max_side,
    })
}

/// One input as the user named it: a file to read, or a problem found while listing.
enum Input {
    File(PathBuf),
    Unreadable(PathBuf, String),
}

/// Expands folders recursively (sorted, so output order is stable) and keeps files as named.
fn collect_inputs(paths: &[PathBuf], all_files: bool) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => walk(path, all_files, &mut inputs),
            Ok(_) => inputs.push(Input::File(path.clone())),
            Err(e) => inputs.push(Input::Unreadable(
                path.clone(),
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }
    inputs
}

fn walk(dir: &Path, all_files: bool, inputs: &mut Vec<Input>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            inputs.push(Input::Unreadable(
                dir.to_path_buf(),
                format!("cannot list folder {}: {e}", dir.display()),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, all_files, inputs);
        } else if all_files
            || path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            inputs.push(Input::File(path));
        }
    }
}

pub fn run(args: ScoreArgs) -> Result<ExitCode> {
    if let Some(jobs) = args.jobs {
        anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let scoring = crate::info::load_scoring_config(args.config.as_deref())?;
    let limits = limits_from(&args)?;
    let models = crate::info::load_models(&args.weights)?;
    let settings = GraderSettings {
        limits,
        scoring,
        batch_size: args.batch_size,
        profiles: crate::info::load_profiles(&args.profiles)?,
        ..GraderSettings::default()
    };
    let grader = Grader::new(models, settings)?;
    let options = GradeOptions {
        scene: Some(grader.resolve_scene(args.scene.as_deref())?),
        profile: args.profile.clone(),
    };
    grader.check_options(&options)?;

    let inputs = collect_inputs(&args.paths, args.all_files);
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Jsonl
    });
    let out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut writer = output::writer(format, out);

    let progress = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar =
            ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images · {per_sec} · ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };

    if let Some(dir) = &args.overlays {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create overlay folder {}", dir.display()))?;
    }
    // Rows (and their thumbnails) are kept for the HTML report only when one is asked for.
    let mut kept: Vec<(Row, Option<String>)> = Vec::new();
    let want_report = args.report.is_some();
    // Overlays and thumbnails are drawn from the pixels the grader already decoded.
    let extras = |row: &ScoredRow, rgb: &RgbImage| ImageExtras {
        overlay: args
            .overlays
            .as_deref()
            .map(|dir| crate::report::write_overlay(dir, row, rgb)),
        thumbnail: want_report
            .then(|| shotgrade_report::thumbnail_data_uri(rgb, row).ok())
            .flatten(),
    };
    let mut failed = 0usize;
    for chunk in inputs.chunks(args.batch_size.max(1)) {
        let sources: Vec<Source> = chunk
            .iter()
            .filter_map(|i| match i {
                Input::File(p) => Some(Source::File(p.clone())),
                Input::Unreadable(..) => None,
            })
            .collect();
        let mut graded = if args.overlays.is_some() || want_report {
            grader.grade_with(&sources, &options, extras)
        } else {
            grader
                .grade(&sources, &options)
                .into_iter()
                .map(|row| (row, None))
                .collect()
        }
        .into_iter();
        for input in chunk {
            let (row, extra) = match input {
                Input::File(p) => graded.next().unwrap_or_else(|| {
                    (
                        Row::error(
                            p.display().to_string(),
                            shotgrade::ErrorKind::Internal,
                            "no result".into(),
                        ),
                        None,
                    )
                }),
                Input::Unreadable(p, message) => (
                    Row::error(
                        p.display().to_string(),
                        shotgrade::ErrorKind::Io,
                        message.clone(),
                    ),
                    None,
                ),
            };
            if !row.is_ok() {
                failed += 1;
            }
            writer.write_row(&row).context("cannot write output")?;
            let (overlay, thumbnail) = match extra {
                Some(ImageExtras { overlay, thumbnail }) => (overlay, thumbnail),
                None => (None, None),
            };
            if let Some(Err(e)) = overlay {
                eprintln!("warning: {e:#}");
            }
            if want_report {
                kept.push((row, thumbnail));
            }
        }
        progress.inc(chunk.len() as u64);
    }
    writer.finish().context("cannot write output")?;
    progress.finish_and_clear();
    if let Some(path) = &args.report {
        let settings = shotgrade_report::ReportSettings {
            title: "shotgrade report".into(),
            source: format!(
                "{} inputs · scene {}{}",
                inputs.len(),
                options.scene.as_deref().unwrap_or("default"),
                options
                    .profile
                    .as_deref()
                    .map(|p| format!(" · profile {p}"))
                    .unwrap_or_default()
            ),
        };
        crate::report::write_report_with_thumbnails(&kept, path, &settings)?;
    }
    if failed > 0 {
        eprintln!("{failed} of {} inputs could not be scored", inputs.len());
        return Ok(ExitCode::from(crate::EXIT_SOME_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--overlays` and `--report` make of one scored image while it is decoded.
struct ImageExtras {
    /// Where the overlay was written, or why it could not be.
    overlay: Option<Result<std::path::PathBuf>>,
    /// The report thumbnail as a `data:` URI.
    thumbnail: Option<String>,
}
