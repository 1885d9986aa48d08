//! `shotgrade report` and the `--overlays` / `--report` options of `score`.

use anyhow::{Context, Result, bail};
use image::RgbImage;
use rayon::prelude::*;
use shotgrade::image::{Limits, load_path};
use shotgrade::{Row, ScoredRow};
use shotgrade_report::{Entry, ReportSettings, draw_overlay, render, shrink, thumbnail_data_uri};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::cli::ReportArgs;

/// Longer side of overlay files; larger photos are scaled down to it.
const OVERLAY_MAX_SIDE: u32 = 2048;

/// Reads result rows from a JSONL file (as written by `score --format jsonl`).
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open results file {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a shotgrade result row (write results with `shotgrade score --format jsonl`)",
                path.display(),
                i + 1
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes the HTML report of `rows` read back from a results file; thumbnails come from the
/// files the rows name, when they can still be read (`images: false` skips them).
pub fn write_report(
    rows: &[Row],
    out: &Path,
    settings: &ReportSettings,
    images: bool,
) -> Result<()> {
    let limits = Limits::default();
    let thumbnails: Vec<Option<String>> = rows
        .par_iter()
        .map(|row| match row {
            Row::Scored(s) if images => load_path(Path::new(&s.path), &limits)
                .ok()
                .and_then(|img| thumbnail_data_uri(&img.rgb, s).ok()),
            _ => None,
        })
        .collect();
    let missing = rows
        .iter()
        .zip(&thumbnails)
        .filter(|(r, t)| r.is_ok() && t.is_none())
        .count();
    if images && missing > 0 {
        eprintln!(
            "note: {missing} scored images could not be read again; their cards have no picture"
        );
    }
    let entries: Vec<Entry> = rows
        .iter()
        .zip(thumbnails)
        .map(|(row, thumbnail)| Entry { row, thumbnail })
        .collect();
    write_entries(&entries, out, settings)
}

/// Writes the HTML report of rows whose thumbnails are already made.
pub fn write_report_with_thumbnails(
    rows: &[(Row, Option<String>)],
    out: &Path,
    settings: &ReportSettings,
) -> Result<()> {
    let entries: Vec<Entry> = rows
        .iter()
        .map(|(row, thumbnail)| Entry {
            row,
            thumbnail: thumbnail.clone(),
        })
        .collect();
    write_entries(&entries, out, settings)
}

fn write_entries(entries: &[Entry], out: &Path, settings: &ReportSettings) -> Result<()> {
    std::fs::write(out, render(entries, settings))
        .with_context(|| format!("cannot write report {}", out.display()))
}

/// `shotgrade report RESULTS.jsonl --out report.html`
pub fn run(args: ReportArgs) -> Result<()> {
    let rows = read_rows(&args.results)?;
    if rows.is_empty() {
        bail!("{} holds no result rows", args.results.display());
    }
    let settings = ReportSettings {
        title: args.title.unwrap_or_else(|| "shotgrade report".into()),
        source: format!("{} · {} images", args.results.display(), rows.len()),
    };
    write_report(&rows, &args.out, &settings, !args.no_images)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// File name of a photo's overlay: its path with separators flattened, so photos with the same
/// name in different folders do not collide.
pub fn overlay_file_name(path: &str) -> String {
    let flat: String = path
        .trim_start_matches("./")
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    format!("{flat}.overlay.jpg")
}

/// Writes the annotated copy of a scored photo (`rgb`: its decoded pixels) into `dir`.
pub fn write_overlay(dir: &Path, row: &ScoredRow, rgb: &RgbImage) -> Result<PathBuf> {
    let mut canvas = shrink(rgb, OVERLAY_MAX_SIDE);
    draw_overlay(&mut canvas, row);
    let out = dir.join(overlay_file_name(&row.path));
    canvas
        .save_with_format(&out, image::ImageFormat::Jpeg)
        .with_context(|| format!("cannot write overlay {}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_names_are_flat_and_distinct() {
        assert_eq!(overlay_file_name("./a/b.jpg"), "a_b.jpg.overlay.jpg");
        assert_ne!(overlay_file_name("x/p.jpg"), overlay_file_name("y/p.jpg"));
        assert!(!overlay_file_name("/abs/path.png").contains('/'));
    }
}
