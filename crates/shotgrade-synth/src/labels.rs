//! The real photos labelled by eye (`data/real`, see its `GUIDE.md`): one CSV per labelling
//! batch in `labels/`, and `split.csv`, which puts every labelled photo in one part by product
//! family. Every issue that trains or measures on real photos reads them through here, so
//! that no part other than `train` is ever trained on by accident.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use shotgrade_core::{BBox, BackgroundClass};

/// Where a labelled photo may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// May be trained on, matted and tuned on.
    Train,
    /// Chooses between models and checkpoints.
    Validation,
    /// Reported on; nothing is chosen by it.
    Test,
}

impl Part {
    pub fn parse(s: &str) -> Option<Part> {
        match s {
            "train" => Some(Part::Train),
            "validation" => Some(Part::Validation),
            "test" => Some(Part::Test),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Validation => "validation",
            Part::Test => "test",
        }
    }
}

/// Whether a person carries the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    None,
    /// Worn by a model (or feet, hands, a head wearing it).
    Worn,
    /// Held in a hand.
    Held,
}

/// One photo's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPhoto {
    /// As in `real/index.csv`, relative to the asset folder (`real/bagisto/1_1.jpg`).
    pub path: String,
    /// The asset folder the photo comes from (`bagisto`, `magento2`, `grocery`, …).
    pub source: String,
    pub family: String,
    pub part: Part,
    /// `None` when no backdrop is visible at all (left out of background accuracy).
    pub background: Option<BackgroundClass>,
    pub person: Person,
    pub cut_off: bool,
    /// Kinds of overlay added on top of the photo (`text`, `border`, …); empty for none.
    pub overlays: Vec<String>,
    /// The main product's box in the photo's own pixels, where one was drawn.
    pub bbox: Option<BBox>,
}

impl LabelledPhoto {
    /// The box spans at least 85 % of the frame's width or height: a product that fills the
    /// frame (the case the issue of 2026-12 found the detector boxing a print inside).
    pub fn fills_frame(&self, width: u32, height: u32) -> bool {
        self.bbox.is_some_and(|b| {
            (b.x1 - b.x0) >= 0.85 * width as f32 || (b.y1 - b.y0) >= 0.85 * height as f32
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}, row for {photo}: {message}")]
    Value {
        path: String,
        photo: String,
        message: String,
    },
    #[error("{0}")]
    Split(String),
}

#[derive(Deserialize)]
struct LabelRow {
    path: String,
    background: String,
    person: String,
    cut_off: String,
    overlay: String,
    #[serde(rename = "box")]
    bbox: String,
}

#[derive(Deserialize)]
struct SplitRow {
    path: String,
    source: String,
    family: String,
    part: String,
}

fn rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, LabelError> {
    let err = |e: &dyn std::fmt::Display| LabelError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    csv::Reader::from_path(path)
        .map_err(|e| err(&e))?
        .deserialize()
        .map(|r| r.map_err(|e| err(&e)))
        .collect()
}

fn parse_box(s: &str) -> Result<Option<BBox>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let v: Vec<f32> = s
        .split_whitespace()
        .map(|t| {
            t.parse::<f32>()
                .map_err(|e| format!("box value {t:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    match v[..] {
        [x0, y0, x1, y1] if x0 < x1 && y0 < y1 && x0 >= 0.0 && y0 >= 0.0 => {
            Ok(Some(BBox { x0, y0, x1, y1 }))
        }
        _ => Err(format!(
            "box must be `x0 y0 x1 y1` with x0 < x1, y0 < y1, got {s:?}"
        )),
    }
}

fn parse_row(row: LabelRow, split: &SplitRow) -> Result<LabelledPhoto, String> {
    let background = match row.background.as_str() {
        "none" => None,
        other => {
            Some(BackgroundClass::parse(other).ok_or(format!("unknown background {other:?}"))?)
        }
    };
    let person = match row.person.as_str() {
        "none" => Person::None,
        "worn" => Person::Worn,
        "held" => Person::Held,
        other => return Err(format!("unknown person {other:?}")),
    };
    let cut_off = match row.cut_off.as_str() {
        "yes" => true,
        "no" => false,
        other => return Err(format!("cut_off must be yes or no, got {other:?}")),
    };
    let overlays = match row.overlay.as_str() {
        "none" | "" => Vec::new(),
        kinds => kinds.split('+').map(str::to_string).collect(),
    };
    Ok(LabelledPhoto {
        path: row.path,
        source: split.source.clone(),
        family: split.family.clone(),
        part: Part::parse(&split.part).ok_or(format!("unknown part {:?}", split.part))?,
        background,
        person,
        cut_off,
        overlays,
        bbox: parse_box(&row.bbox)?,
    })
}

/// Every labelled photo of `dir` (`data/real`), joined with its part of the split, sorted by
/// path. Fails when a photo is labelled twice, or labelled but not in the split (run
/// `scripts/real_split.py`), or a value is not one the guide allows.
pub fn load_labelled(dir: &Path) -> Result<Vec<LabelledPhoto>, LabelError> {
    let split_path = dir.join("split.csv");
    let split: BTreeMap<String, SplitRow> = rows::<SplitRow>(&split_path)?
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    let label_dir = dir.join("labels");
    let mut files: Vec<_> = std::fs::read_dir(&label_dir)
        .map_err(|e| LabelError::Read {
            path: label_dir.display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let mut photos: BTreeMap<String, LabelledPhoto> = BTreeMap::new();
    for file in files {
        for row in rows::<LabelRow>(&file)? {
            let photo_path = row.path.clone();
            let value_err = |message: String| LabelError::Value {
                path: file.display().to_string(),
                photo: photo_path.clone(),
                message,
            };
            let Some(s) = split.get(&row.path) else {
                return Err(value_err(format!(
                    "not in {}: run scripts/real_split.py",
                    split_path.display()
                )));
            };
            let photo = parse_row(row, s).map_err(value_err)?;
            if photos.insert(photo_path.clone(), photo).is_some() {
                return Err(LabelError::Split(format!("{photo_path} is labelled twice")));
            }
        }
    }
    if let Some(extra) = split.keys().find(|p| !photos.contains_key(*p)) {
        return Err(LabelError::Split(format!(
            "{extra} is in {} but has no labels",
            split_path.display()
        )));
    }
    Ok(photos.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    const HEADER: &str = "path,background,person,cut_off,overlay,box,box_method,note\n";

    fn set(labels: &str, split: &str) -> Result<Vec<LabelledPhoto>, LabelError> {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "labels/a.csv", &format!("{HEADER}{labels}"));
        write(
            dir.path(),
            "split.csv",
            &format!("path,source,family,part\n{split}"),
        );
        load_labelled(dir.path())
    }

    #[test]
    fn rows_join_their_part_and_parse_every_column() {
        let photos = set(
            "real/x/1_1.jpg,solid,worn,yes,text+border,10 20 110 220,eye,a note\n\
             real/x/2_1.jpg,none,none,no,none,,,\n",
            "real/x/1_1.jpg,x,1,test\nreal/x/2_1.jpg,x,2,train\n",
        )
        .unwrap();
        assert_eq!(photos.len(), 2);
        let a = &photos[0];
        assert_eq!(a.background, Some(BackgroundClass::Solid));
        assert_eq!(a.person, Person::Worn);
        assert!(a.cut_off);
        assert_eq!(a.overlays, ["text", "border"]);
        assert_eq!(a.part, Part::Test);
        assert_eq!(a.bbox.map(|b| (b.x0, b.y1)), Some((10.0, 220.0)));
        assert!(a.fills_frame(110, 240)); // 200 of 240 px tall: 83 %, but 100 of 110 wide
        assert!(!a.fills_frame(400, 400));
        let b = &photos[1];
        assert_eq!((b.background, b.bbox, b.part), (None, None, Part::Train));
        assert!(b.overlays.is_empty());
    }

    #[test]
    fn bad_values_and_split_mismatches_are_refused_with_the_photo_named() {
        let split = "real/x/1.jpg,x,1,test\n";
        for (labels, needle) in [
            (
                "real/x/1.jpg,purple,none,no,none,,,\n",
                "unknown background",
            ),
            ("real/x/1.jpg,white,some,no,none,,,\n", "unknown person"),
            ("real/x/1.jpg,white,none,maybe,none,,,\n", "cut_off"),
            ("real/x/1.jpg,white,none,no,none,5 5 1 9,eye,\n", "x0 < x1"),
            (
                "real/x/1.jpg,white,none,no,none,1 2 3,eye,\n",
                "x0 y0 x1 y1",
            ),
            ("real/x/9.jpg,white,none,no,none,,,\n", "real_split.py"),
            (
                "real/x/1.jpg,white,none,no,none,,,\nreal/x/1.jpg,white,none,no,none,,,\n",
                "twice",
            ),
        ] {
            let e = set(labels, split).unwrap_err().to_string();
            assert!(e.contains(needle), "{labels:?}: {e}");
        }
        let e = set(
            "real/x/1.jpg,white,none,no,none,,,\n",
            "real/x/1.jpg,x,1,test\nreal/x/2.jpg,x,2,test\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("real/x/2.jpg") && e.contains("no labels"), "{e}");
    }

    #[test]
    fn the_committed_set_loads_and_keeps_families_in_one_part() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/real");
        let photos = load_labelled(&dir).unwrap();
        assert!(photos.len() >= 800, "{} photos", photos.len());
        let mut part_of: BTreeMap<(&str, &str), Part> = BTreeMap::new();
        for p in &photos {
            let seen = part_of.entry((&p.source, &p.family)).or_insert(p.part);
            assert_eq!(*seen, p.part, "family {} of {} split", p.family, p.source);
        }
    }
}
