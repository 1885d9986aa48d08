//! The training compositor: a backdrop of a chosen class, a product cut-out placed at a chosen
//! scale and position, an optional degradation — and every label computed exactly.
//!
//! Definitions (also in the model card):
//! * **subject** — the product occupies the subject position: at least 85 % of its area is in
//!   the frame, its visible box covers at least 8 % of the frame, and its centre lies in the
//!   middle half of the frame on both axes (centre offset ≤ 0.5).
//! * **noise label** (cleanliness, 0–100) — `100 · (1 − damage)` with
//!   `damage = 1 − (1 − d_noise)(1 − d_blur)(1 − d_jpeg)`, `d_noise = min(1, σ / 32)`,
//!   `d_blur = min(1, r / 5)` (box-blur radius, applied twice), `d_jpeg = clamp((90 − q) / 80, 0, 1)`
//!   (quality 90 and above is clean; every lower quality costs something, so the quality 60 of a
//!   typical over-compressed upload is already damage 0.375).
//! * **aesthetic label** (0–100) — `100 · (0.35 composition + 0.20 harmony + 0.25 contrast +
//!   0.20 sharpness)`, × 0.75 on cluttered backgrounds; composition from fill, centring and
//!   margins, harmony from the hues of product and backdrop, contrast from their colour
//!   distance, sharpness = 1 − damage.

use image::{Rgb, RgbImage, RgbaImage};
use serde::{Deserialize, Serialize};
use shotgrade_core::{BACKGROUND_CLASSES, BBox, BackgroundClass};

use crate::assets::Assets;
use crate::render::{self, Backdrop, Degradation, ProductShape, Scene};
use crate::rng::SplitMix64;

/// Sizes and probabilities of the compositor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComposeSettings {
    /// Range of the longer output side, in pixels.
    pub min_side: u32,
    pub max_side: u32,
    /// Chance that a sample is degraded (noise, blur and/or strong JPEG).
    pub degrade_probability: f32,
    /// Chance that a `white` or `solid` backdrop is drawn flat right at the boundary between
    /// the two classes (every channel ≥ 250): white 250–252, or light grey 243–249 for
    /// `solid`. A training-only emphasis: the regular draws put a flat grey within seven levels
    /// of the boundary in ~3 % of `solid` images, and those are the undamaged ones the
    /// background network still calls white. 0 (the default) is the distribution of the test
    /// and validation sets, and draws exactly what it drew before the setting existed.
    pub boundary_share: f32,
}

impl Default for ComposeSettings {
    fn default() -> Self {
        ComposeSettings {
            min_side: 320,
            max_side: 640,
            degrade_probability: 0.5,
            boundary_share: 0.0,
        }
    }
}

/// Where the product was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Centred,
    OffCentre,
    CutOff,
}

/// The product's labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductLabel {
    /// Visible box in image pixels.
    pub bbox: BBox,
    pub subject: bool,
    pub placement: Placement,
    /// Share of the product's area inside the frame.
    pub visible_fraction: f32,
    /// Visible box area / image area.
    pub fill: f32,
    /// 0 centred … 1 centre on the border.
    pub centre_offset: f32,
}

/// What was done to the pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DegradationLabel {
    pub noise_sigma: f32,
    pub blur_radius: u32,
    /// Quality of the final JPEG encoding (≥ 90 counts as clean, see [`damage`]).
    pub jpeg_quality: u8,
}

/// The aesthetic indexes and the resulting label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AestheticLabel {
    pub composition: f32,
    pub harmony: f32,
    pub contrast: f32,
    pub sharpness: f32,
    pub score: f32,
}

/// Every label of one composite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub background: BackgroundClass,
    pub product: Option<ProductLabel>,
    pub degradation: DegradationLabel,
    /// Cleanliness label, 0–100.
    pub noise: f32,
    pub aesthetic: AestheticLabel,
}

/// One composite: the image as it would be uploaded (JPEG round trip included) and its labels.
#[derive(Debug, Clone)]
pub struct Sample {
    pub image: RgbImage,
    pub label: Label,
}

/// Inputs to the aesthetic label that come from the clean composite.
#[derive(Debug, Clone, Copy)]
struct CleanIndexes {
    composition: f32,
    harmony: f32,
    contrast: f32,
}

/// A clean composite and what the labels need, before any degradation.
#[derive(Debug, Clone)]
pub struct Clean {
    image: RgbImage,
    seed: u64,
    background: BackgroundClass,
    product: Option<ProductLabel>,
    indexes: CleanIndexes,
}

/// JPEG quality from which an encoding counts as clean.
pub const CLEAN_JPEG_QUALITY: f32 = 90.0;

/// Degradation damage in `[0, 1]`, per the module docs.
pub fn damage(d: &DegradationLabel) -> f32 {
    let noise = (d.noise_sigma / 32.0).clamp(0.0, 1.0);
    let blur = (d.blur_radius as f32 / 5.0).clamp(0.0, 1.0);
    let jpeg = ((CLEAN_JPEG_QUALITY - d.jpeg_quality as f32) / (CLEAN_JPEG_QUALITY - 10.0))
        .clamp(0.0, 1.0);
    1.0 - (1.0 - noise) * (1.0 - blur) * (1.0 - jpeg)
}

fn pick<'a, T>(items: &'a [T], rng: &mut SplitMix64) -> &'a T {
    &items[(rng.next_u64() % items.len() as u64) as usize]
}

/// A random crop of `src` with the aspect of `w × h`, resized to `w × h`.
fn crop_to(src: &RgbImage, w: u32, h: u32, rng: &mut SplitMix64) -> RgbImage {
    let (sw, sh) = (src.width() as f32, src.height() as f32);
    let aspect = w as f32 / h as f32;
    let (mut cw, mut ch) = if sw / sh > aspect {
        (sh * aspect, sh)
    } else {
        (sw, sw / aspect)
    };
    let zoom = rng.range(0.5, 1.0);
    cw = (cw * zoom).max(8.0);
    ch = (ch * zoom).max(8.0);
    let x = rng.range(0.0, (sw - cw).max(0.0)) as u32;
    let y = rng.range(0.0, (sh - ch).max(0.0)) as u32;
    let view = image::imageops::crop_imm(
        src,
        x,
        y,
        (cw as u32).min(src.width() - x),
        (ch as u32).min(src.height() - y),
    )
    .to_image();
    let mut out = image::imageops::resize(&view, w, h, image::imageops::FilterType::Triangle);
    if rng.unit() < 0.5 {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

fn random_colour(rng: &mut SplitMix64) -> [u8; 3] {
    [0; 3].map(|_| rng.range(0.0, 256.0) as u8)
}

/// A colour that is neither white (all ≥ 250) nor black (all ≤ 20) by the class definition.
fn solid_colour(rng: &mut SplitMix64) -> [u8; 3] {
    loop {
        let c = match rng.next_u64() % 4 {
            0 => [rng.range(225.0, 250.0) as u8; 3], // off-white / light grey
            1 => [rng.range(30.0, 225.0) as u8; 3],  // grey
            _ => random_colour(rng),                 // a colour
        };
        if !(c.iter().all(|&v| v >= 250) || c.iter().all(|&v| v <= 20)) {
            return c;
        }
    }
}

fn procedural(backdrop: Backdrop, w: u32, h: u32, seed: u64) -> RgbImage {
    render::render(&Scene {
        width: w,
        height: h,
        backdrop,
        product: None,
        shadow: false,
        degradation: Degradation::default(),
        seed,
    })
}

/// Alpha-composites `cutout` so that its opaque box lands on `target`.
fn paste_cutout(canvas: &mut RgbImage, cutout: &crate::assets::Cutout, target: &BBox) {
    let o = cutout.opaque;
    let sx = target.width() / o.width().max(1.0);
    let sy = target.height() / o.height().max(1.0);
    let (cw, ch) = cutout.image.dimensions();
    let (nw, nh) = (
        ((cw as f32 * sx).round() as u32).max(1),
        ((ch as f32 * sy).round() as u32).max(1),
    );
    if nw > 8 * canvas.width().max(1) || nh > 8 * canvas.height().max(1) {
        return;
    }
    let scaled: RgbaImage =
        image::imageops::resize(&cutout.image, nw, nh, image::imageops::FilterType::Triangle);
    let left = (target.x0 - o.x0 * sx).round() as i64;
    let top = (target.y0 - o.y0 * sy).round() as i64;
    let (w, h) = (canvas.width() as i64, canvas.height() as i64);
    for (x, y, p) in scaled.enumerate_pixels() {
        let (cx, cy) = (left + x as i64, top + y as i64);
        if cx < 0 || cy < 0 || cx >= w || cy >= h || p.0[3] == 0 {
            continue;
        }
        let a = p.0[3] as f32 / 255.0;
        let dst = canvas.get_pixel_mut(cx as u32, cy as u32);
        for i in 0..3 {
            dst.0[i] = crate::render::round_u8(p.0[i] as f32 * a + dst.0[i] as f32 * (1.0 - a));
        }
    }
}

/// Whether to draw a flat backdrop at the white/solid boundary
/// ([`ComposeSettings::boundary_share`]). Draws nothing from `rng` when the share is 0, so that
/// every other composite stays as it was.
fn at_boundary(share: f32, rng: &mut SplitMix64) -> bool {
    share > 0.0 && rng.unit() < share
}

fn backdrop_for(
    class: BackgroundClass,
    assets: &Assets,
    (w, h): (u32, u32),
    boundary_share: f32,
    rng: &mut SplitMix64,
) -> RgbImage {
    let seed = rng.next_u64();
    match class {
        BackgroundClass::White if at_boundary(boundary_share, rng) => {
            RgbImage::from_pixel(w, h, Rgb([rng.range(250.0, 253.0) as u8; 3]))
        }
        BackgroundClass::Solid if at_boundary(boundary_share, rng) => {
            RgbImage::from_pixel(w, h, Rgb([rng.range(243.0, 250.0) as u8; 3]))
        }
        BackgroundClass::White => {
            let v = if rng.unit() < 0.7 {
                255
            } else {
                rng.range(250.0, 256.0) as u8
            };
            RgbImage::from_pixel(w, h, Rgb([v; 3]))
        }
        BackgroundClass::Black => {
            let (a, b) = (rng.range(0.0, 21.0) as u8, rng.range(0.0, 21.0) as u8);
            procedural(
                Backdrop::Gradient {
                    top: [a; 3],
                    bottom: [b; 3],
                },
                w,
                h,
                seed,
            )
        }
        BackgroundClass::Solid => match rng.next_u64() % 5 {
            0 | 1 => RgbImage::from_pixel(w, h, Rgb(solid_colour(rng))),
            2 => procedural(
                Backdrop::Gradient {
                    top: solid_colour(rng),
                    bottom: solid_colour(rng),
                },
                w,
                h,
                seed,
            ),
            3 => procedural(
                Backdrop::Vignette {
                    centre: solid_colour(rng),
                    edge: solid_colour(rng),
                },
                w,
                h,
                seed,
            ),
            _ => crop_to(pick(&assets.backgrounds.plain, rng), w, h, rng),
        },
        BackgroundClass::Lifestyle => {
            if rng.unit() < 0.75 {
                crop_to(pick(&assets.backgrounds.scenes, rng), w, h, rng)
            } else {
                let wall = [
                    rng.range(150.0, 240.0) as u8,
                    rng.range(140.0, 230.0) as u8,
                    rng.range(120.0, 220.0) as u8,
                ];
                let table = [
                    rng.range(90.0, 180.0) as u8,
                    rng.range(60.0, 130.0) as u8,
                    rng.range(30.0, 90.0) as u8,
                ];
                procedural(Backdrop::Room { wall, table }, w, h, seed)
            }
        }
        BackgroundClass::Cluttered => match rng.next_u64() % 5 {
            0 | 1 => crop_to(pick(&assets.backgrounds.busy, rng), w, h, rng),
            2 => procedural(
                Backdrop::Clutter {
                    objects: 20 + (rng.next_u64() % 30) as u32,
                },
                w,
                h,
                seed,
            ),
            _ => {
                // Many products strewn over a random base: clutter that looks like products.
                let mut canvas = if rng.unit() < 0.5 {
                    crop_to(pick(&assets.backgrounds.scenes, rng), w, h, rng)
                } else {
                    RgbImage::from_pixel(w, h, Rgb(random_colour(rng)))
                };
                let n = 12 + rng.next_u64() % 20;
                for _ in 0..n {
                    let c = pick(&assets.cutouts, rng);
                    let side = rng.range(0.12, 0.35) * w.min(h) as f32;
                    let aspect = c.opaque.width() / c.opaque.height().max(1.0);
                    let (bw, bh) = if aspect > 1.0 {
                        (side, side / aspect)
                    } else {
                        (side * aspect, side)
                    };
                    let b = BBox::from_center(
                        rng.range(0.0, w as f32),
                        rng.range(0.0, h as f32),
                        bw,
                        bh,
                    );
                    paste_cutout(&mut canvas, c, &b);
                }
                canvas
            }
        },
    }
}

/// Mean colour of the pixels in `inner` and of a ring around it (within the image).
fn mean_colours(img: &RgbImage, inner: &BBox) -> ([f32; 3], [f32; 3]) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let margin = 0.15 * inner.width().max(inner.height()).max(8.0);
    let outer = BBox::new(
        inner.x0 - margin,
        inner.y0 - margin,
        inner.x1 + margin,
        inner.y1 + margin,
    )
    .clamp_to(w, h);
    let (mut a, mut na, mut b, mut nb) = ([0f32; 3], 0f32, [0f32; 3], 0f32);
    let step = ((outer.width() * outer.height() / 20_000.0).sqrt().max(1.0)) as usize;
    for y in (outer.y0 as u32..outer.y1 as u32).step_by(step) {
        for x in (outer.x0 as u32..outer.x1 as u32).step_by(step) {
            let p = img.get_pixel(x, y).0;
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let inside = fx >= inner.x0 && fx < inner.x1 && fy >= inner.y0 && fy < inner.y1;
            let (acc, n) = if inside {
                (&mut a, &mut na)
            } else {
                (&mut b, &mut nb)
            };
            for i in 0..3 {
                acc[i] += p[i] as f32;
            }
            *n += 1.0;
        }
    }
    (a.map(|v| v / na.max(1.0)), b.map(|v| v / nb.max(1.0)))
}

/// Hue in degrees and saturation in `[0, 1]` of an RGB colour.
fn hue_saturation(c: [f32; 3]) -> (f32, f32) {
    let [r, g, b] = c.map(|v| v / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    if delta < 1e-6 {
        return (0.0, s);
    }
    let h = if max == r {
        60.0 * (((g - b) / delta).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    (h, s)
}

fn harmony(product: [f32; 3], backdrop: [f32; 3], class: BackgroundClass) -> f32 {
    let (hp, _) = hue_saturation(product);
    let (hb, sb) = hue_saturation(backdrop);
    let base = if sb < 0.15 {
        1.0 // neutral backdrops go with everything
    } else {
        let d = (hp - hb).abs();
        let d = d.min(360.0 - d);
        if d < 40.0 {
            0.9 // analogous
        } else if (150.0..=210.0).contains(&d) {
            0.85 // complementary
        } else {
            0.55
        }
    };
    if class == BackgroundClass::Cluttered {
        base * 0.6
    } else {
        base
    }
}

fn composition(p: &ProductLabel) -> f32 {
    let fill_q = if p.fill < 0.35 {
        ((p.fill - 0.03) / 0.32).clamp(0.0, 1.0)
    } else if p.fill <= 0.9 {
        1.0
    } else {
        1.0 - 4.0 * (p.fill - 0.9)
    };
    let centre_q = 1.0 - ((p.centre_offset - 0.08) / 0.52).clamp(0.0, 1.0);
    let margin_q = p.visible_fraction.powi(2);
    0.5 * fill_q + 0.3 * centre_q + 0.2 * margin_q
}

/// The first draws of a composite: its size and background class.
fn frame(rng: &mut SplitMix64, settings: &ComposeSettings) -> (u32, u32, BackgroundClass) {
    let long = rng.range(settings.min_side as f32, settings.max_side as f32 + 1.0) as u32;
    let aspect = if rng.unit() < 0.4 {
        1.0
    } else {
        rng.range(0.6, 1.6)
    };
    let (w, h) = if aspect >= 1.0 {
        (long, ((long as f32 / aspect) as u32).max(16))
    } else {
        (((long as f32 * aspect) as u32).max(16), long)
    };
    (w, h, BACKGROUND_CLASSES[(rng.next_u64() % 5) as usize])
}

/// The background class the composite of `seed` will have, without rendering it — for sets
/// of one or two classes (the background model's second stage trains on `white` and `solid`
/// only), which would otherwise render and discard most composites.
pub fn background_class(seed: u64, settings: &ComposeSettings) -> BackgroundClass {
    frame(&mut SplitMix64::new(seed), settings).2
}

/// Composes one clean sample (no degradation) from a seed.
pub fn compose_clean(assets: &Assets, seed: u64, settings: &ComposeSettings) -> Clean {
    let mut rng = SplitMix64::new(seed);
    let (w, h, class) = frame(&mut rng, settings);
    let mut image = backdrop_for(class, assets, (w, h), settings.boundary_share, &mut rng);

    // Scale: area share of the whole product.
    let u = rng.unit();
    let fill_target = if u < 0.3 {
        rng.range(0.03, 0.2)
    } else if u < 0.8 {
        rng.range(0.2, 0.8)
    } else {
        rng.range(0.8, 0.98)
    };
    let placement = match rng.next_u64() % 20 {
        0..=7 => Placement::Centred,
        8..=14 => Placement::OffCentre,
        _ => Placement::CutOff,
    };
    let procedural_product = rng.unit() < 0.15;
    let cutout = pick(&assets.cutouts, &mut rng).clone();
    let product_aspect = if procedural_product {
        rng.range(0.4, 1.6)
    } else {
        cutout.opaque.width() / cutout.opaque.height().max(1.0)
    };
    let (fw, fh) = (w as f32, h as f32);
    let mut pw = (fill_target * fw * fh * product_aspect).sqrt();
    let mut ph = pw / product_aspect;
    if placement != Placement::CutOff {
        let shrink = (fw / pw).min(fh / ph).min(1.0);
        pw *= shrink;
        ph *= shrink;
    }
    let (cx, cy) = match placement {
        Placement::Centred => (
            fw / 2.0 + rng.range(-0.03, 0.03) * fw,
            fh / 2.0 + rng.range(-0.03, 0.03) * fh,
        ),
        Placement::OffCentre => (
            rng.range(pw / 2.0, (fw - pw / 2.0).max(pw / 2.0 + 0.01)),
            rng.range(ph / 2.0, (fh - ph / 2.0).max(ph / 2.0 + 0.01)),
        ),
        Placement::CutOff => {
            let out = rng.range(0.15, 0.5);
            match rng.next_u64() % 4 {
                0 => (pw * (0.5 - out), rng.range(0.0, fh)),
                1 => (fw - pw * (0.5 - out), rng.range(0.0, fh)),
                2 => (rng.range(0.0, fw), ph * (0.5 - out)),
                _ => (rng.range(0.0, fw), fh - ph * (0.5 - out)),
            }
        }
    };
    let full = BBox::from_center(cx, cy, pw, ph);
    if matches!(
        class,
        BackgroundClass::White | BackgroundClass::Solid | BackgroundClass::Black
    ) && rng.unit() < 0.5
    {
        render::draw_shadow(&mut image, &full);
    }
    if procedural_product {
        let shape = [
            ProductShape::Carton,
            ProductShape::Bottle,
            ProductShape::Ball,
        ][(rng.next_u64() % 3) as usize];
        let colour = random_colour(&mut rng);
        render::draw_product(&mut image, shape, &full, colour, &mut rng);
    } else {
        paste_cutout(&mut image, &cutout, &full);
    }

    // A person wearing the product: the product is the outfit's box inside the cut-out.
    let full = match (procedural_product, cutout.product) {
        (false, Some(p)) => {
            let o = cutout.opaque;
            let (sx, sy) = (
                full.width() / o.width().max(1.0),
                full.height() / o.height().max(1.0),
            );
            BBox::new(
                full.x0 + (p.x0 - o.x0) * sx,
                full.y0 + (p.y0 - o.y0) * sy,
                full.x0 + (p.x1 - o.x0) * sx,
                full.y0 + (p.y1 - o.y0) * sy,
            )
        }
        _ => full,
    };
    let visible = full.clamp_to(fw, fh);
    let visible_fraction = visible.area() / full.area().max(1e-6);
    let fill = visible.area() / (fw * fh);
    let (vx, vy) = visible.center();
    let centre_offset = ((vx / fw - 0.5).abs().max((vy / fh - 0.5).abs()) * 2.0).min(1.0);
    let product = ProductLabel {
        bbox: visible,
        subject: visible_fraction >= 0.85 && fill >= 0.08 && centre_offset <= 0.5,
        placement,
        visible_fraction,
        fill,
        centre_offset,
    };
    let (inside, ring) = mean_colours(&image, &visible);
    let distance = ((0..3).map(|i| (inside[i] - ring[i]).powi(2)).sum::<f32>()).sqrt();
    let indexes = CleanIndexes {
        composition: composition(&product),
        harmony: harmony(inside, ring, class),
        contrast: (distance / 200.0).clamp(0.0, 1.0).sqrt(),
    };
    Clean {
        image,
        seed,
        background: class,
        product: Some(product),
        indexes,
    }
}

impl Clean {
    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    /// The sample after `degradation` and a JPEG round trip at `degradation.jpeg_quality`,
    /// with all labels.
    pub fn finish(&self, degradation: DegradationLabel, rng_seed: u64) -> Sample {
        let mut image = self.image.clone();
        let mut rng = SplitMix64::new(rng_seed);
        render::degrade(
            &mut image,
            &Degradation {
                noise_sigma: degradation.noise_sigma,
                blur_radius: degradation.blur_radius,
            },
            &mut rng,
        );
        let image = jpeg_round_trip(&image, degradation.jpeg_quality);
        let d = damage(&degradation);
        let sharpness = 1.0 - d;
        let i = self.indexes;
        let mut score = 100.0
            * (0.35 * i.composition + 0.20 * i.harmony + 0.25 * i.contrast + 0.20 * sharpness);
        if self.background == BackgroundClass::Cluttered {
            score *= 0.75;
        }
        Sample {
            label: Label {
                seed: self.seed,
                width: image.width(),
                height: image.height(),
                background: self.background,
                product: self.product.clone(),
                degradation,
                noise: 100.0 * (1.0 - d),
                aesthetic: AestheticLabel {
                    composition: i.composition,
                    harmony: i.harmony,
                    contrast: i.contrast,
                    sharpness,
                    score,
                },
            },
            image,
        }
    }
}

/// Encodes and decodes as JPEG, as an upload would be.
pub fn jpeg_round_trip(img: &RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    let encoded =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100))
            .encode_image(img);
    match encoded
        .ok()
        .and_then(|_| image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).ok())
    {
        Some(decoded) => decoded.to_rgb8(),
        None => img.clone(),
    }
}

/// A random degradation: clean (mild JPEG 85–95) with probability `1 − p`, otherwise one to
/// three of noise, blur and strong JPEG (quality 5–60).
pub fn random_degradation(rng: &mut SplitMix64, p: f32) -> DegradationLabel {
    let mild = rng.range(85.0, 96.0) as u8;
    if rng.unit() >= p {
        return DegradationLabel {
            noise_sigma: 0.0,
            blur_radius: 0,
            jpeg_quality: mild,
        };
    }
    random_damage(rng, mild, &DamageKinds::COMPOSITOR)
}

/// Which damage [`random_damage`] may draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DamageKinds {
    /// JPEG qualities drawn for JPEG damage, `[low, high)`; `None`: no JPEG damage.
    pub jpeg: Option<(f32, f32)>,
    /// Share of JPEG draws taken from `[low, LOW_JPEG_TOP)` instead: the very low qualities,
    /// whose flat 8×8 blocks a network can mistake for a clean, smooth surface. 0 draws
    /// uniformly (and leaves the random stream as it was).
    pub low_jpeg_share: f32,
    /// Share of damaged copies that get exactly one *mild* damage instead ([`MILD_NOISE`],
    /// [`MILD_BLUR_MAX`], [`MILD_JPEG`]): the first rungs of a distortion ladder, which uniform
    /// draws over the whole ranges rarely produce, so a network never learns that faint noise
    /// is damage rather than crispness. 0 leaves the random stream as it was.
    pub mild_share: f32,
}

/// Gaussian σ range `[low, high)` of a mild damage.
pub const MILD_NOISE: (f32, f32) = (2.0, 10.0);
/// Largest box-blur radius of a mild damage (radius 1 or 2).
pub const MILD_BLUR_MAX: u32 = 2;
/// JPEG quality range `[low, high)` of a mild damage.
pub const MILD_JPEG: (f32, f32) = (45.0, 85.0);

/// Upper end of the "very low" JPEG qualities of [`DamageKinds::low_jpeg_share`].
pub const LOW_JPEG_TOP: f32 = 20.0;

impl DamageKinds {
    /// The compositor's menu: noise, blur and strong JPEG (5–60).
    pub const COMPOSITOR: DamageKinds = DamageKinds {
        jpeg: Some((5.0, 60.0)),
        low_jpeg_share: 0.0,
        mild_share: 0.0,
    };
    /// The experience training's menu: JPEG over the whole damaged range (5–90), so the noise
    /// head also learns the moderate qualities real uploads have.
    pub const EXPERIENCE: DamageKinds = DamageKinds {
        jpeg: Some((5.0, CLEAN_JPEG_QUALITY)),
        low_jpeg_share: 0.0,
        mild_share: 0.0,
    };
    /// Noise and blur only: for real photos, which are already JPEG-compressed at an unknown
    /// quality, so JPEG damage on them has no reliable label.
    pub const PIXELS: DamageKinds = DamageKinds {
        jpeg: None,
        low_jpeg_share: 0.0,
        mild_share: 0.0,
    };
}

/// A damaged copy's degradation: one to three of noise (σ 2–40), blur (radius 1–5) and, when
/// `kinds` allows it, JPEG; `base_quality` is the JPEG quality when no JPEG damage is drawn.
pub fn random_damage(
    rng: &mut SplitMix64,
    base_quality: u8,
    kinds: &DamageKinds,
) -> DegradationLabel {
    let mut d = DegradationLabel {
        noise_sigma: 0.0,
        blur_radius: 0,
        jpeg_quality: base_quality,
    };
    if kinds.mild_share > 0.0 && rng.unit() < kinds.mild_share {
        let choices = if kinds.jpeg.is_some() { 3 } else { 2 };
        match rng.next_u64() % choices {
            0 => d.noise_sigma = rng.range(MILD_NOISE.0, MILD_NOISE.1),
            1 => d.blur_radius = 1 + (rng.next_u64() % MILD_BLUR_MAX as u64) as u32,
            _ => d.jpeg_quality = rng.range(MILD_JPEG.0, MILD_JPEG.1) as u8,
        }
        return d;
    }
    let mask = match kinds.jpeg {
        Some(_) => 1 + rng.next_u64() % 7, // bit mask over {noise, blur, jpeg}, never empty
        None => 1 + rng.next_u64() % 3,    // over {noise, blur}
    };
    if mask & 1 != 0 {
        d.noise_sigma = rng.range(2.0, 40.0);
    }
    if mask & 2 != 0 {
        d.blur_radius = 1 + (rng.next_u64() % 5) as u32;
    }
    if let (true, Some((low, high))) = (mask & 4 != 0, kinds.jpeg) {
        let top = if kinds.low_jpeg_share > 0.0 && rng.unit() < kinds.low_jpeg_share {
            LOW_JPEG_TOP.min(high)
        } else {
            high
        };
        d.jpeg_quality = rng.range(low, top) as u8;
    }
    d
}

/// One full sample from a seed: a clean composite, randomly degraded.
pub fn compose(assets: &Assets, seed: u64, settings: &ComposeSettings) -> Sample {
    let clean = compose_clean(assets, seed, settings);
    let mut rng = SplitMix64::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let d = random_degradation(&mut rng, settings.degrade_probability);
    clean.finish(d, rng.next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::{BackgroundPools, Cutout};

    /// A tiny in-memory asset set: one red square cut-out, plain backgrounds.
    fn assets() -> Assets {
        let mut cut = RgbaImage::from_pixel(40, 20, image::Rgba([0, 0, 0, 0]));
        for x in 10..30 {
            for y in 5..15 {
                cut.put_pixel(x, y, image::Rgba([220, 20, 20, 255]));
            }
        }
        let grey = RgbImage::from_pixel(64, 64, Rgb([120, 120, 120]));
        Assets {
            cutouts: vec![Cutout {
                image: cut,
                opaque: BBox::new(10.0, 5.0, 30.0, 15.0),
                product: None,
                source: "test".into(),
                category: "box".into(),
                stem: "red".into(),
            }],
            backgrounds: BackgroundPools {
                scenes: vec![grey.clone()],
                plain: vec![grey.clone()],
                busy: vec![grey],
            },
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = assets();
        let s = ComposeSettings::default();
        let (x, y) = (compose(&a, 42, &s), compose(&a, 42, &s));
        assert_eq!(x.image, y.image);
        assert_eq!(x.label, y.label);
    }

    /// The class is known before rendering, and it is the class of the composite.
    #[test]
    fn background_class_is_the_composites_class() {
        let a = assets();
        let s = ComposeSettings {
            min_side: 64,
            max_side: 128,
            ..ComposeSettings::default()
        };
        let mut seen = std::collections::HashSet::new();
        for seed in 0..60 {
            let class = background_class(seed, &s);
            assert_eq!(class, compose(&a, seed, &s).label.background, "seed {seed}");
            seen.insert(class);
        }
        assert_eq!(seen.len(), 5, "60 seeds draw every class");
    }

    #[test]
    fn labels_are_consistent_over_many_seeds() {
        let a = assets();
        let s = ComposeSettings {
            min_side: 64,
            max_side: 128,
            degrade_probability: 0.5,
            ..ComposeSettings::default()
        };
        let mut classes = std::collections::HashSet::new();
        for seed in 0..200 {
            let sample = compose(&a, seed, &s);
            let l = &sample.label;
            classes.insert(l.background);
            assert_eq!((l.width, l.height), sample.image.dimensions());
            let p = l.product.as_ref().expect("product");
            assert!(
                p.bbox.x0 >= 0.0
                    && p.bbox.y0 >= 0.0
                    && p.bbox.x1 <= l.width as f32
                    && p.bbox.y1 <= l.height as f32
            );
            assert!((0.0..=1.0).contains(&p.fill) && (0.0..=1.0).contains(&p.visible_fraction));
            if p.subject {
                assert!(p.visible_fraction >= 0.85 && p.fill >= 0.08 && p.centre_offset <= 0.5);
            }
            if p.placement == Placement::CutOff {
                assert!(p.visible_fraction < 0.9, "{p:?}");
            }
            assert!((0.0..=100.0).contains(&l.noise) && (0.0..=100.0).contains(&l.aesthetic.score));
            if l.degradation.noise_sigma == 0.0
                && l.degradation.blur_radius == 0
                && l.degradation.jpeg_quality >= 90
            {
                assert_eq!(l.noise, 100.0);
            }
        }
        assert_eq!(classes.len(), 5, "all classes drawn");
    }

    #[test]
    fn boundary_share_draws_flat_backdrops_at_the_white_solid_boundary() {
        let a = assets();
        let mut rng = SplitMix64::new(7);
        for _ in 0..20 {
            let white = backdrop_for(BackgroundClass::White, &a, (16, 8), 1.0, &mut rng);
            let solid = backdrop_for(BackgroundClass::Solid, &a, (16, 8), 1.0, &mut rng);
            let (w, s) = (white.get_pixel(0, 0).0, solid.get_pixel(0, 0).0);
            assert!(white.pixels().all(|p| p.0 == w) && solid.pixels().all(|p| p.0 == s));
            assert!(
                w[0] == w[1] && w[1] == w[2] && (250..=252).contains(&w[0]),
                "{w:?}"
            );
            assert!(
                s[0] == s[1] && s[1] == s[2] && (243..=249).contains(&s[0]),
                "{s:?}"
            );
        }
        // The other classes ignore the share.
        let mut with = SplitMix64::new(9);
        let mut without = SplitMix64::new(9);
        let black = backdrop_for(BackgroundClass::Black, &a, (16, 8), 1.0, &mut with);
        assert_eq!(
            black,
            backdrop_for(BackgroundClass::Black, &a, (16, 8), 0.0, &mut without)
        );
    }

    #[test]
    fn zero_boundary_share_draws_nothing_extra() {
        // The test and validation sets depend on it: their composites must not change.
        let mut rng = SplitMix64::new(3);
        let before = rng.clone().next_u64();
        assert!(!at_boundary(0.0, &mut rng));
        assert_eq!(rng.next_u64(), before);
    }

    #[test]
    fn product_pixels_land_in_the_labelled_box() {
        let a = assets();
        let s = ComposeSettings {
            min_side: 200,
            max_side: 200,
            degrade_probability: 0.0,
            ..ComposeSettings::default()
        };
        let clean = (0..50)
            .map(|seed| compose_clean(&a, seed, &s))
            .find(|c| c.background == BackgroundClass::White)
            .expect("a white one");
        let b = clean.product.as_ref().expect("product").bbox;
        let (cx, cy) = b.center();
        let p = clean.image.get_pixel(cx as u32, cy as u32).0;
        assert!(
            p[0] > 150 && p[1] < 120,
            "centre of the box is the product: {p:?}"
        );
    }

    #[test]
    fn degradation_lowers_the_noise_label_monotonically() {
        let levels = [0.0f32, 8.0, 16.0, 24.0, 32.0];
        let labels: Vec<f32> = levels
            .iter()
            .map(|&s| {
                100.0
                    * (1.0
                        - damage(&DegradationLabel {
                            noise_sigma: s,
                            blur_radius: 0,
                            jpeg_quality: 90,
                        }))
            })
            .collect();
        assert!(labels.windows(2).all(|w| w[0] > w[1]), "{labels:?}");
        assert_eq!(
            damage(&DegradationLabel {
                noise_sigma: 0.0,
                blur_radius: 0,
                jpeg_quality: 90
            }),
            0.0
        );
        let jpeg: Vec<f32> = [95u8, 90, 75, 60, 35, 15, 10, 5]
            .iter()
            .map(|&q| {
                damage(&DegradationLabel {
                    noise_sigma: 0.0,
                    blur_radius: 0,
                    jpeg_quality: q,
                })
            })
            .collect();
        assert_eq!(&jpeg[..2], &[0.0, 0.0], "quality 90 and above is clean");
        assert!(jpeg[1..7].windows(2).all(|w| w[0] < w[1]), "{jpeg:?}");
        assert_eq!(jpeg[6], 1.0);
        assert_eq!(jpeg[7], 1.0);
    }

    #[test]
    fn damage_is_never_empty_and_respects_the_menu() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..500 {
            let d = random_damage(&mut rng, 93, &DamageKinds::PIXELS);
            assert_eq!(d.jpeg_quality, 93, "no JPEG damage on the pixel menu");
            assert!(d.noise_sigma > 0.0 || d.blur_radius > 0);
            let d = random_damage(&mut rng, 93, &DamageKinds::EXPERIENCE);
            assert!(damage(&d) > 0.0, "{d:?}");
            assert!((5..90).contains(&d.jpeg_quality) || d.jpeg_quality == 93);
        }
    }

    #[test]
    fn mild_share_draws_one_mild_damage() {
        let mild = DamageKinds {
            mild_share: 1.0,
            ..DamageKinds::EXPERIENCE
        };
        let mut rng = SplitMix64::new(5);
        let mut kinds_seen = [0; 3];
        for _ in 0..300 {
            let d = random_damage(&mut rng, 93, &mild);
            let noise = d.noise_sigma > 0.0;
            let blur = d.blur_radius > 0;
            let jpeg = d.jpeg_quality != 93;
            assert_eq!(
                [noise, blur, jpeg].iter().filter(|&&k| k).count(),
                1,
                "{d:?}"
            );
            assert!(!noise || (2.0..10.0).contains(&d.noise_sigma), "{d:?}");
            assert!(d.blur_radius <= 2, "{d:?}");
            assert!(!jpeg || (45..85).contains(&d.jpeg_quality), "{d:?}");
            // Mild, but still damage: the label must rank it below the clean copy.
            assert!(damage(&d) > 0.0, "{d:?}");
            for (seen, hit) in kinds_seen.iter_mut().zip([noise, blur, jpeg]) {
                *seen += hit as usize;
            }
        }
        assert!(kinds_seen.iter().all(|&n| n > 60), "{kinds_seen:?}");
        // Without JPEG on the menu, mild damage is noise or blur.
        let pixels = DamageKinds {
            mild_share: 1.0,
            ..DamageKinds::PIXELS
        };
        for _ in 0..50 {
            assert_eq!(random_damage(&mut rng, 93, &pixels).jpeg_quality, 93);
        }
        // A share of 0 leaves the stream untouched: these are the draws of the code before mild
        // damage existed (commit b51f635), which the earlier runs were trained on.
        let mut rng = SplitMix64::new(9);
        let before = [
            (30.526405, 4, 93),
            (11.977029, 0, 93),
            (0.0, 4, 93),
            (0.0, 0, 23),
        ];
        for (sigma, radius, quality) in before {
            let d = random_damage(&mut rng, 93, &DamageKinds::EXPERIENCE);
            assert!((d.noise_sigma - sigma).abs() < 1e-4, "{d:?}");
            assert_eq!((d.blur_radius, d.jpeg_quality), (radius, quality), "{d:?}");
        }
    }

    #[test]
    fn low_jpeg_share_moves_jpeg_draws_to_the_lowest_qualities() {
        let low = DamageKinds {
            low_jpeg_share: 1.0,
            ..DamageKinds::EXPERIENCE
        };
        let mut rng = SplitMix64::new(11);
        let mut drawn = 0;
        for _ in 0..300 {
            let d = random_damage(&mut rng, 93, &low);
            if d.jpeg_quality != 93 {
                drawn += 1;
                assert!((5..20).contains(&d.jpeg_quality), "{d:?}");
            }
        }
        assert!(drawn > 100, "JPEG is drawn in about 4 of 7 cases: {drawn}");
        // Half the draws low: both very low and higher qualities appear.
        let half = DamageKinds {
            low_jpeg_share: 0.5,
            ..DamageKinds::EXPERIENCE
        };
        let qualities: Vec<u8> = (0..300)
            .map(|_| random_damage(&mut rng, 93, &half).jpeg_quality)
            .filter(|&q| q != 93)
            .collect();
        let very_low = qualities.iter().filter(|&&q| q < 20).count();
        assert!(
            very_low > qualities.len() / 3 && very_low < qualities.len(),
            "{very_low} of {}",
            qualities.len()
        );
    }
}
