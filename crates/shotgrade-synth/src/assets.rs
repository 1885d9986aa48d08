//! The shared asset folder (`../shared/assets`): product cut-outs, background photos and real
//! product photos, read from their `index.csv` files.

use image::{RgbImage, RgbaImage};
use serde::Deserialize;
use shotgrade_core::{BBox, BackgroundClass};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A problem with the asset folder.
#[derive(Debug, Error)]
pub enum AssetError {
    #[error("cannot read asset index {path}: {message}")]
    Index { path: String, message: String },
    #[error("cannot load asset image {path}: {message}")]
    Image { path: String, message: String },
    #[error("asset folder {0} has no usable {1}")]
    Empty(String, &'static str),
}

/// A product cut-out: RGBA, cropped to the product, with the box of its opaque pixels.
#[derive(Debug, Clone)]
pub struct Cutout {
    pub image: RgbaImage,
    /// Box of pixels with alpha ≥ 128, in cut-out pixels.
    pub opaque: BBox,
    /// The product's box in cut-out pixels where it is not the whole opaque box (a person
    /// wearing the product: the outfit's box); `None` for a cut-out of the product alone.
    pub product: Option<BBox>,
    pub source: String,
    pub category: String,
    /// The file's name without its extension (`Alpro-Fresh-Soy-Milk_Iconic`): some cut-outs
    /// are cut from photos of the labelled real set, whose files share the name.
    pub stem: String,
}

/// Background photos by the class they give a composite.
#[derive(Debug, Clone, Default)]
pub struct BackgroundPools {
    /// Real scenes (interiors, tables, nature): `lifestyle`.
    pub scenes: Vec<RgbImage>,
    /// Paper, canvas, wood textures and smooth wallpapers: `solid`.
    pub plain: Vec<RgbImage>,
    /// Busy patterns: `cluttered`.
    pub busy: Vec<RgbImage>,
}

/// A real photo with its background hint.
#[derive(Debug, Clone)]
pub struct RealPhoto {
    pub path: PathBuf,
    pub source: String,
    pub hint: Option<BackgroundClass>,
}

/// Everything the compositor draws from.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    pub cutouts: Vec<Cutout>,
    pub backgrounds: BackgroundPools,
}

#[derive(Deserialize)]
struct CutoutRow {
    path: String,
    source: String,
    category: String,
}

#[derive(Deserialize)]
struct BackgroundRow {
    path: String,
    pool: String,
}

#[derive(Deserialize)]
struct RealRow {
    path: String,
    source: String,
    background_hint: String,
}

/// Wallpapers in `graphics/` that are smooth enough to be a plain backdrop; the rest are busy.
/// Chosen by looking at each one (see the model card).
const SMOOTH_GRAPHICS: [&str; 4] = [
    "Fossa_by_Jasper_Roks",
    "contents",
    "umang_by_Abhishek_Mudgal",
    "Infinite-Sea_by_Aury88",
];

/// Cut-out sources excluded from training: the `grocery_iconic` cut-outs are matted from the
/// very photos of `real/grocery/iconic`, the real white-background validation set.
pub const HELD_OUT_CUTOUT_SOURCES: [&str; 1] = ["grocery_iconic"];

fn read_index<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, AssetError> {
    let err = |message: String| AssetError::Index {
        path: path.display().to_string(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    reader
        .deserialize()
        .map(|r| r.map_err(|e| err(e.to_string())))
        .collect()
}

fn open(root: &Path, rel: &str) -> Result<image::DynamicImage, AssetError> {
    let path = root.join(rel);
    image::open(&path).map_err(|e| AssetError::Image {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The size that shrinks `w × h` to a longer side of `max_side`, or `None` if it already fits.
fn fitted_size((w, h): (u32, u32), max_side: u32) -> Option<(u32, u32)> {
    if w.max(h) <= max_side {
        return None;
    }
    let s = max_side as f32 / w.max(h) as f32;
    Some((
        ((w as f32 * s).round() as u32).max(1),
        ((h as f32 * s).round() as u32).max(1),
    ))
}

fn opaque_box(img: &RgbaImage) -> Option<BBox> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[3] >= 128 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    (x0 < x1 && y0 < y1).then(|| BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32))
}

/// The cut-outs of the index (longer side ≤ `side`): those of [`HELD_OUT_CUTOUT_SOURCES`]
/// when `held_out`, every other one otherwise.
fn load_cutouts(root: &Path, side: u32, held_out: bool) -> Result<Vec<Cutout>, AssetError> {
    let mut cutouts = Vec::new();
    for row in read_index::<CutoutRow>(&root.join("cutouts/index.csv"))? {
        if HELD_OUT_CUTOUT_SOURCES.contains(&row.source.as_str()) != held_out {
            continue;
        }
        let mut rgba = open(root, &row.path)?.to_rgba8();
        if let Some((w, h)) = fitted_size(rgba.dimensions(), side) {
            rgba = image::imageops::resize(&rgba, w, h, image::imageops::FilterType::Triangle);
        }
        if let Some(opaque) = opaque_box(&rgba) {
            cutouts.push(Cutout {
                image: rgba,
                opaque,
                product: None,
                stem: Path::new(&row.path)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                source: row.source,
                category: row.category,
            });
        }
    }
    Ok(cutouts)
}

/// The cut-outs no training run composes ([`HELD_OUT_CUTOUT_SOURCES`]), longer side ≤ `side`:
/// products for probes that measure a network on objects it never saw.
pub fn held_out_cutouts(root: &Path, side: u32) -> Result<Vec<Cutout>, AssetError> {
    load_cutouts(root, side, true)
}

/// The background photos of the `textures` pool (paper, canvas, wood), longer side ≤ `side`.
pub fn textures(root: &Path, side: u32) -> Result<Vec<RgbImage>, AssetError> {
    let mut out = Vec::new();
    for row in read_index::<BackgroundRow>(&root.join("backgrounds/index.csv"))? {
        if row.pool != "textures" {
            continue;
        }
        let mut rgb = open(root, &row.path)?.to_rgb8();
        if let Some((w, h)) = fitted_size(rgb.dimensions(), side) {
            rgb = image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle);
        }
        out.push(rgb);
    }
    Ok(out)
}

impl Assets {
    /// Loads cut-outs (longer side ≤ `cutout_side`) and backgrounds (≤ `background_side`),
    /// leaving out [`HELD_OUT_CUTOUT_SOURCES`].
    pub fn load(root: &Path, cutout_side: u32, background_side: u32) -> Result<Self, AssetError> {
        let cutouts = load_cutouts(root, cutout_side, false)?;
        let mut backgrounds = BackgroundPools::default();
        for row in read_index::<BackgroundRow>(&root.join("backgrounds/index.csv"))? {
            let Ok(img) = open(root, &row.path) else {
                continue;
            };
            let mut rgb = img.to_rgb8();
            if let Some((w, h)) = fitted_size(rgb.dimensions(), background_side) {
                rgb = image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle);
            }
            let stem = Path::new(&row.path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            match row.pool.as_str() {
                "scenes" => backgrounds.scenes.push(rgb),
                "textures" => backgrounds.plain.push(rgb),
                "graphics" if SMOOTH_GRAPHICS.contains(&stem.as_str()) => {
                    backgrounds.plain.push(rgb)
                }
                "graphics" => backgrounds.busy.push(rgb),
                _ => {}
            }
        }
        let name = root.display().to_string();
        if cutouts.is_empty() {
            return Err(AssetError::Empty(name, "cut-outs"));
        }
        if backgrounds.scenes.is_empty()
            || backgrounds.plain.is_empty()
            || backgrounds.busy.is_empty()
        {
            return Err(AssetError::Empty(
                name,
                "background pools (scenes, textures, graphics)",
            ));
        }
        Ok(Assets {
            cutouts,
            backgrounds,
        })
    }
}

/// Real photos listed in `real/index.csv` whose path starts with one of `prefixes` (e.g.
/// `real/grocery/val`). Hints other than the five classes become `None`.
pub fn real_photos(root: &Path, prefixes: &[&str]) -> Result<Vec<RealPhoto>, AssetError> {
    Ok(read_index::<RealRow>(&root.join("real/index.csv"))?
        .into_iter()
        .filter(|r| prefixes.iter().any(|p| r.path.starts_with(p)))
        .map(|r| RealPhoto {
            path: root.join(&r.path),
            source: r.source,
            hint: BackgroundClass::parse(&r.background_hint),
        })
        .collect())
}

/// The shop photo folders (`real/magento2`, `real/spree`): packshots of 645–800 px, the kind of
/// photo sellers upload. The experience network's distortion ladder is drawn from them.
pub const SHOP_PHOTOS: &[&str] = &["real/magento2", "real/spree"];

/// A shop photo's product family: its file name up to the first `-` or `_` (`mh04-white_main`
/// → `mh04`, `robot-vacuum-pro-white` → `robot`). Colour variants and views of one product share
/// it (it groups a little more than one product, which only makes the split stricter).
pub fn product_family(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    stem.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The shop photos split by product family, so that no product has photos on two sides: the
/// families in sorted order go round-robin to `training` (index % 3 == 0), `validation` (1:
/// the small ladder experience training chooses its checkpoint by) and `test` (2: the
/// distortion ladder of `shotgrade eval`, never trained on or chosen by).
#[derive(Debug, Clone, Default)]
pub struct ShopSplit {
    pub training: Vec<RealPhoto>,
    pub validation: Vec<RealPhoto>,
    pub test: Vec<RealPhoto>,
}

/// Splits the [`SHOP_PHOTOS`] listed in `real/index.csv` (see [`ShopSplit`]); photos keep their
/// index order within each side.
pub fn shop_photo_split(root: &Path) -> Result<ShopSplit, AssetError> {
    Ok(split_by_family(real_photos(root, SHOP_PHOTOS)?))
}

fn split_by_family(photos: Vec<RealPhoto>) -> ShopSplit {
    let mut families: Vec<String> = photos.iter().map(|p| product_family(&p.path)).collect();
    families.sort();
    families.dedup();
    let mut split = ShopSplit::default();
    for photo in photos {
        let family = product_family(&photo.path);
        let side = match families.binary_search(&family).unwrap_or(0) % 3 {
            0 => &mut split.training,
            1 => &mut split.validation,
            _ => &mut split.test,
        };
        side.push(photo);
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_family_groups_colour_variants_and_views() {
        let f = |name: &str| product_family(Path::new(name));
        assert_eq!(f("real/magento2/mh04-white_main.jpg"), "mh04");
        assert_eq!(f("real/magento2/MH04-green_back.jpg"), "mh04");
        assert_eq!(f("real/spree/robot-vacuum-pro-white.jpg"), "robot");
        assert_eq!(f("plain.jpg"), "plain");
    }

    #[test]
    fn shop_split_keeps_every_family_on_one_side() {
        let photo = |name: &str| RealPhoto {
            path: PathBuf::from(format!("real/magento2/{name}.jpg")),
            source: "magento2".into(),
            hint: None,
        };
        let names = [
            "aa-red_main",
            "aa-blue_back",
            "bb-red",
            "cc-1",
            "cc-2",
            "dd_x",
            "ee-y",
            "ff",
            "gg-z",
        ];
        let split = split_by_family(names.iter().map(|n| photo(n)).collect());
        let fams = |v: &[RealPhoto]| -> Vec<String> {
            let set: std::collections::BTreeSet<String> =
                v.iter().map(|p| product_family(&p.path)).collect();
            set.into_iter().collect()
        };
        // Sorted families aa..gg go round-robin: training, validation, test.
        assert_eq!(fams(&split.training), ["aa", "dd", "gg"]);
        assert_eq!(fams(&split.validation), ["bb", "ee"]);
        assert_eq!(fams(&split.test), ["cc", "ff"]);
        assert_eq!(
            split.training.len() + split.validation.len() + split.test.len(),
            names.len()
        );
    }

    #[test]
    fn missing_or_broken_asset_folders_give_clear_errors() {
        let missing = Assets::load(Path::new("/nonexistent/assets"), 64, 64)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/assets/cutouts/index.csv"),
            "{missing}"
        );
        let dir =
            std::env::temp_dir().join(format!("shotgrade-assets-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cutouts")).expect("mkdir");
        std::fs::write(
            dir.join("cutouts/index.csv"),
            "path,source,category\ncutouts/x.png,test,box\n",
        )
        .expect("write");
        let broken = Assets::load(&dir, 64, 64).unwrap_err().to_string();
        assert!(
            broken.contains("cannot load asset image") && broken.contains("x.png"),
            "{broken}"
        );
        assert!(
            real_photos(&dir, &["real/"])
                .unwrap_err()
                .to_string()
                .contains("real/index.csv")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
