//! Writers for the four output formats. All of them stream: a row is written as soon as it is
//! known, so a run over millions of files needs no memory for its results.

use anyhow::Result;
use shotgrade::Row;
use shotgrade::core::Status;
use std::io::Write;

use crate::cli::Format;

/// Writes rows in one format.
pub trait RowWriter {
    fn write_row(&mut self, row: &Row) -> Result<()>;
    fn finish(&mut self) -> Result<()>;
}

pub fn writer(format: Format, out: Box<dyn Write>) -> Box<dyn RowWriter> {
    match format {
        Format::Jsonl => Box::new(Jsonl(out)),
        Format::Json => Box::new(JsonArray { out, rows: 0 }),
        Format::Csv => Box::new(Csv {
            out: csv::Writer::from_writer(out),
            header: false,
        }),
        Format::Table => Box::new(Table { out, header: false }),
    }
}

struct Jsonl(Box<dyn Write>);

impl RowWriter for Jsonl {
    fn write_row(&mut self, row: &Row) -> Result<()> {
        serde_json::to_writer(&mut self.0, row)?;
        self.0.write_all(b"\n")?;
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(self.0.flush()?)
    }
}

struct JsonArray {
    out: Box<dyn Write>,
    rows: usize,
}

impl RowWriter for JsonArray {
    fn write_row(&mut self, row: &Row) -> Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer_pretty(&mut self.out, row)?;
        self.rows += 1;
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"[]\n" } else { b"\n]\n" })?;
        Ok(self.out.flush()?)
    }
}

/// CSV columns, in order.
pub const CSV_COLUMNS: [&str; 30] = [
    "path",
    "status",
    "scene",
    "total",
    "background",
    "position",
    "visual",
    "aesthetic",
    "noise",
    "background_class",
    "background_probability",
    "position_category",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "fill",
    "width",
    "height",
    "format",
    "has_alpha",
    "transparent_fraction",
    "error_kind",
    "error_message",
    "reasons",
    "profile",
    "profile_status",
    "profile_failed",
    "profile_warned",
    "jpeg_quality",
];

struct Csv {
    out: csv::Writer<Box<dyn Write>>,
    header: bool,
}

fn num(v: f32) -> String {
    format!("{v:.2}")
}

impl RowWriter for Csv {
    fn write_row(&mut self, row: &Row) -> Result<()> {
        if !self.header {
            self.out.write_record(CSV_COLUMNS)?;
            self.header = true;
        }
        let record: Vec<String> = match row {
            Row::Error(e) => {
                let mut r = vec![String::new(); CSV_COLUMNS.len()];
                r[0] = e.path.clone();
                r[1] = e.status.to_string();
                r[22] = e.error.kind.to_string();
                r[23] = e.error.message.clone();
                r
            }
            Row::Scored(s) => {
                let profile = s.profile.as_ref();
                let checks = |status: Status| {
                    profile
                        .map(|p| {
                            p.with_status(status)
                                .map(|c| c.check.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()
                };
                let main = s.position.main.as_ref();
                let coord = |f: fn(&shotgrade::core::BBox) -> f32| {
                    main.map(|m| num(f(&m.bbox))).unwrap_or_default()
                };
                vec![
                    s.path.clone(),
                    s.status.to_string(),
                    s.scene.clone(),
                    num(s.scores.total),
                    num(s.scores.background),
                    num(s.scores.position),
                    num(s.scores.visual),
                    num(s.scores.aesthetic),
                    num(s.scores.noise),
                    s.background.class.to_string(),
                    format!("{:.4}", s.background.probability),
                    main.map(|m| {
                        serde_json::to_value(m.category)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    })
                    .unwrap_or_else(|| "none".into()),
                    coord(|b| b.x0),
                    coord(|b| b.y0),
                    coord(|b| b.x1),
                    coord(|b| b.y1),
                    main.map(|m| format!("{:.4}", m.fill)).unwrap_or_default(),
                    s.image.width.to_string(),
                    s.image.height.to_string(),
                    s.image.format.clone(),
                    s.image.has_alpha.to_string(),
                    format!("{:.4}", s.image.transparent_fraction),
                    String::new(),
                    String::new(),
                    s.reasons
                        .iter()
                        .map(|r| r.message.as_str())
                        .collect::<Vec<_>>()
                        .join(" | "),
                    profile.map(|p| p.name.clone()).unwrap_or_default(),
                    profile.map(|p| p.status.to_string()).unwrap_or_default(),
                    checks(Status::Fail),
                    checks(Status::Warn),
                    s.image
                        .jpeg_quality
                        .map(|q| q.to_string())
                        .unwrap_or_default(),
                ]
            }
        };
        self.out.write_record(&record)?;
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}

/// Reasons shown under a table row, besides the top one on the row itself.
const TABLE_EXTRA_REASONS: usize = 2;

struct Table {
    out: Box<dyn Write>,
    header: bool,
}

impl RowWriter for Table {
    fn write_row(&mut self, row: &Row) -> Result<()> {
        if !self.header {
            writeln!(
                self.out,
                "{:>5} {:>4} {:>4} {:>4}  {:<10} {:<40} TOP REASON",
                "TOTAL", "BG", "POS", "VIS", "BACKGROUND", "PATH"
            )?;
            self.header = true;
        }
        match row {
            Row::Scored(s) => {
                let reason = s.reasons.first().map(|r| r.message.as_str()).unwrap_or("—");
                writeln!(
                    self.out,
                    "{:>5.1} {:>4.0} {:>4.0} {:>4.0}  {:<10} {:<40} {}",
                    s.scores.total,
                    s.scores.background,
                    s.scores.position,
                    s.scores.visual,
                    s.background.class.to_string(),
                    s.path,
                    reason
                )?;
                // The next reasons and the profile's verdict on indented lines below the row.
                for r in s.reasons.iter().skip(1).take(TABLE_EXTRA_REASONS) {
                    writeln!(self.out, "{:>72}{}", "· ", r.message)?;
                }
                if let Some(p) = &s.profile {
                    let worst: Vec<String> = p
                        .with_status(Status::Fail)
                        .chain(p.with_status(Status::Warn))
                        .map(|c| format!("{} {}: {}", c.status, c.check, c.measured))
                        .collect();
                    writeln!(
                        self.out,
                        "{:>72}{} {}{}",
                        "· ",
                        p.name,
                        p.status.to_string().to_uppercase(),
                        if worst.is_empty() {
                            String::new()
                        } else {
                            format!(" — {}", worst.join("; "))
                        }
                    )?;
                }
            }
            Row::Error(e) => {
                writeln!(
                    self.out,
                    "{:>5} {:>4} {:>4} {:>4}  {:<10} {:<40} {}: {}",
                    "ERR",
                    "",
                    "",
                    "",
                    "",
                    e.path,
                    e.error.kind.as_str(),
                    e.error.message
                )?;
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}
