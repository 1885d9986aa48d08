//! Procedural rendering of product photos with exact labels.

use image::{Rgb, RgbImage};
use shotgrade_core::{BBox, BackgroundClass};

use crate::rng::SplitMix64;

/// What stands behind the product.
#[derive(Debug, Clone, PartialEq)]
pub enum Backdrop {
    /// One flat colour.
    Uniform([u8; 3]),
    /// A vertical gradient, top colour to bottom colour (a studio sweep).
    Gradient { top: [u8; 3], bottom: [u8; 3] },
    /// A colour brightest in the centre, darker at the corners.
    Vignette { centre: [u8; 3], edge: [u8; 3] },
    /// Many overlapping objects of random colours: competing clutter.
    Clutter { objects: u32 },
    /// A wall above a wooden table: a simple lifestyle setting.
    Room { wall: [u8; 3], table: [u8; 3] },
}

impl Backdrop {
    /// The background class this backdrop is, by definition: uniform colours with every
    /// channel ≥ 250 are `white`, with every channel ≤ 20 `black`, any other uniform or graded
    /// colour `solid`.
    pub fn class(&self) -> BackgroundClass {
        match self {
            Backdrop::Uniform(c) if c.iter().all(|&v| v >= 250) => BackgroundClass::White,
            Backdrop::Uniform(c) if c.iter().all(|&v| v <= 20) => BackgroundClass::Black,
            Backdrop::Uniform(_) | Backdrop::Gradient { .. } | Backdrop::Vignette { .. } => {
                BackgroundClass::Solid
            }
            Backdrop::Clutter { .. } => BackgroundClass::Cluttered,
            Backdrop::Room { .. } => BackgroundClass::Lifestyle,
        }
    }
}

/// The product's silhouette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductShape {
    /// A carton or box with rounded corners and a label band.
    Carton,
    /// A bottle: a body with a narrower neck and a cap.
    Bottle,
    /// A ball or fruit-like round object.
    Ball,
}

/// Damage applied after rendering.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Degradation {
    /// Standard deviation of additive Gaussian noise, in 0–255 units.
    pub noise_sigma: f32,
    /// Radius of a box blur applied twice (≈ Gaussian), in pixels.
    pub blur_radius: u32,
}

/// Everything needed to render one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub backdrop: Backdrop,
    /// The product, its box in pixels (may extend past the frame: cut off) and its colour.
    pub product: Option<(ProductShape, BBox, [u8; 3])>,
    /// Soft floor shadow under the product.
    pub shadow: bool,
    pub degradation: Degradation,
    pub seed: u64,
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| a[i] as f32 * (1.0 - t) + b[i] as f32 * t)
}

fn to_u8(c: [f32; 3]) -> Rgb<u8> {
    Rgb(c.map(round_u8))
}

/// Rounds to the nearest byte (halves up), saturating at 0 and 255; NaN gives 0.
///
/// Written as add-and-truncate because `f32::round` is a call into libm on baseline x86-64
/// (no SSE4.1): it was 7 % of an experience training step, which renders and degrades every
/// pixel of ~50 images. The two agree on every value that is not within 2⁻²⁴ of a half.
#[inline]
pub(crate) fn round_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

/// Signed distance to a rounded rectangle centred at the origin with half-size `(hx, hy)`.
fn sd_round_rect(px: f32, py: f32, hx: f32, hy: f32, r: f32) -> f32 {
    let qx = px.abs() - hx + r;
    let qy = py.abs() - hy + r;
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

/// Signed distance (approximate, in pixels) to an axis-aligned ellipse at the origin.
fn sd_ellipse(px: f32, py: f32, rx: f32, ry: f32) -> f32 {
    let k = ((px / rx).powi(2) + (py / ry).powi(2)).sqrt();
    (k - 1.0) * rx.min(ry)
}

/// Signed distance of a product shape inside its box; negative inside.
fn product_sd(shape: ProductShape, b: &BBox, x: f32, y: f32) -> f32 {
    let (cx, cy) = b.center();
    let (hx, hy) = (b.width() / 2.0, b.height() / 2.0);
    match shape {
        ProductShape::Carton => sd_round_rect(x - cx, y - cy, hx, hy, 0.08 * hx.min(hy)),
        ProductShape::Ball => sd_ellipse(x - cx, y - cy, hx, hy),
        ProductShape::Bottle => {
            let neck_h = 0.28 * b.height();
            let body_cy = b.y0 + neck_h + (b.height() - neck_h) / 2.0;
            let body = sd_round_rect(
                x - cx,
                y - body_cy,
                hx,
                (b.height() - neck_h) / 2.0,
                0.25 * hx,
            );
            let neck = sd_round_rect(
                x - cx,
                y - (b.y0 + neck_h / 2.0 + 1.0),
                0.32 * hx,
                neck_h / 2.0 + 1.0,
                0.1 * hx,
            );
            body.min(neck)
        }
    }
}

fn backdrop_pixel(backdrop: &Backdrop, x: u32, y: u32, w: u32, h: u32) -> [f32; 3] {
    let (fx, fy) = (x as f32 / w.max(1) as f32, y as f32 / h.max(1) as f32);
    match backdrop {
        Backdrop::Uniform(c) => c.map(|v| v as f32),
        Backdrop::Gradient { top, bottom } => mix(*top, *bottom, fy),
        Backdrop::Vignette { centre, edge } => {
            let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt() * std::f32::consts::SQRT_2;
            mix(*centre, *edge, d * d)
        }
        Backdrop::Room { wall, table } => {
            let horizon = 0.58;
            if fy < horizon {
                mix(
                    *wall,
                    [wall[0] / 2, wall[1] / 2, wall[2] / 2],
                    (fx - 0.5).abs() * 0.6 + fy * 0.2,
                )
            } else {
                // Wood: stripes along x with a slow wave.
                let grain = ((fy * 90.0 + (fx * 7.0).sin() * 2.0).sin() * 0.5 + 0.5) * 0.25;
                mix(
                    *table,
                    [table[0] / 3, table[1] / 3, table[2] / 3],
                    grain + (fy - horizon) * 0.3,
                )
            }
        }
        Backdrop::Clutter { .. } => [128.0; 3],
    }
}

/// Renders a scene.
pub fn render(scene: &Scene) -> RgbImage {
    let (w, h) = (scene.width.max(1), scene.height.max(1));
    let mut rng = SplitMix64::new(scene.seed);
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        to_u8(backdrop_pixel(&scene.backdrop, x, y, w, h))
    });

    match &scene.backdrop {
        Backdrop::Clutter { objects } => draw_clutter(&mut img, *objects, &mut rng),
        Backdrop::Room { .. } => draw_room_props(&mut img, &mut rng),
        _ => {}
    }

    if let Some((shape, bbox, colour)) = &scene.product {
        if scene.shadow {
            draw_shadow(&mut img, bbox);
        }
        draw_product(&mut img, *shape, bbox, *colour, &mut rng);
    }
    degrade(&mut img, &scene.degradation, &mut rng);
    img
}

fn blend_pixel(img: &mut RgbImage, x: u32, y: u32, c: [f32; 3], alpha: f32) {
    let p = img.get_pixel_mut(x, y);
    let a = alpha.clamp(0.0, 1.0);
    *p = to_u8([0, 1, 2].map(|i| p.0[i] as f32 * (1.0 - a) + c[i] * a));
}

/// Visits the pixels of `b` that lie in the image.
fn for_pixels_in(img: &RgbImage, b: &BBox, mut f: impl FnMut(u32, u32)) {
    let (w, h) = img.dimensions();
    let x0 = b.x0.floor().max(0.0) as u32;
    let y0 = b.y0.floor().max(0.0) as u32;
    let x1 = (b.x1.ceil().max(0.0) as u32).min(w);
    let y1 = (b.y1.ceil().max(0.0) as u32).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            f(x, y);
        }
    }
}

/// Darkens a soft ellipse under the bottom edge of `b`: a floor shadow.
pub fn draw_shadow(img: &mut RgbImage, b: &BBox) {
    let (cx, _) = b.center();
    let (rx, ry) = (b.width() * 0.55, (b.height() * 0.06).max(3.0));
    let cy = b.y1;
    let area = BBox::new(cx - rx * 1.5, cy - ry * 2.0, cx + rx * 1.5, cy + ry * 2.5);
    let mut updates = Vec::new();
    for_pixels_in(img, &area, |x, y| {
        let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
        let strength = 0.35 * (-d).exp();
        if strength > 0.004 {
            updates.push((x, y, strength));
        }
    });
    for (x, y, s) in updates {
        blend_pixel(img, x, y, [0.0; 3], s);
    }
}

/// Draws a shaded procedural product filling `b` (clipped to the image).
pub fn draw_product(
    img: &mut RgbImage,
    shape: ProductShape,
    b: &BBox,
    colour: [u8; 3],
    rng: &mut SplitMix64,
) {
    let label = [
        255 - colour[0],
        255 - colour[1] / 2,
        200u8.saturating_sub(colour[2] / 2),
    ];
    let band = (rng.range(0.35, 0.55), rng.range(0.12, 0.25));
    let mut updates = Vec::new();
    for_pixels_in(
        img,
        &BBox::new(b.x0 - 1.0, b.y0 - 1.0, b.x1 + 1.0, b.y1 + 1.0),
        |x, y| {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let coverage = (0.5 - product_sd(shape, b, px, py)).clamp(0.0, 1.0);
            if coverage <= 0.0 {
                return;
            }
            let u = (px - b.x0) / b.width().max(1.0);
            let v = (py - b.y0) / b.height().max(1.0);
            let base = if shape != ProductShape::Ball && (v - band.0).abs() < band.1 / 2.0 {
                label
            } else {
                colour
            };
            // Light from the upper left: brighter there, a highlight stripe, darker to the right.
            let shade = 1.15 - 0.45 * u - 0.15 * v + 0.25 * (-((u - 0.25) * 9.0).powi(2)).exp();
            let c = base.map(|c| c as f32 * shade);
            updates.push((x, y, c, coverage));
        },
    );
    for (x, y, c, a) in updates {
        blend_pixel(img, x, y, c, a);
    }
}

fn random_colour(rng: &mut SplitMix64) -> [u8; 3] {
    [0; 3].map(|_| rng.range(20.0, 240.0) as u8)
}

fn draw_clutter(img: &mut RgbImage, objects: u32, rng: &mut SplitMix64) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let base = random_colour(rng);
    for p in img.pixels_mut() {
        *p = Rgb(base);
    }
    for _ in 0..objects {
        let (cx, cy) = (rng.range(0.0, w), rng.range(0.0, h));
        let (sw, sh) = (rng.range(0.04, 0.3) * w, rng.range(0.04, 0.3) * h);
        let shape = match rng.next_u64() % 3 {
            0 => ProductShape::Carton,
            1 => ProductShape::Bottle,
            _ => ProductShape::Ball,
        };
        draw_product(
            img,
            shape,
            &BBox::from_center(cx, cy, sw, sh),
            random_colour(rng),
            rng,
        );
    }
}

fn draw_room_props(img: &mut RgbImage, rng: &mut SplitMix64) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    // A plant pot and a window frame: context, not competition.
    let side = if rng.unit() < 0.5 { 0.12 } else { 0.88 };
    let pot = BBox::from_center(side * w, 0.62 * h, 0.12 * w, 0.2 * h);
    draw_product(img, ProductShape::Carton, &pot, [150, 80, 50], rng);
    let leaves = BBox::from_center(side * w, 0.42 * h, 0.2 * w, 0.25 * h);
    draw_product(img, ProductShape::Ball, &leaves, [40, 120, 50], rng);
    let window = BBox::from_center((1.0 - side) * w, 0.25 * h, 0.22 * w, 0.3 * h);
    draw_product(img, ProductShape::Carton, &window, [220, 230, 245], rng);
}

/// Applies blur (two box-blur passes), then Gaussian noise.
pub fn degrade(img: &mut RgbImage, d: &Degradation, rng: &mut SplitMix64) {
    for _ in 0..2 {
        if d.blur_radius > 0 {
            box_blur(img, d.blur_radius);
        }
    }
    if d.noise_sigma > 0.0 {
        for p in img.pixels_mut() {
            for c in p.0.iter_mut() {
                *c = round_u8(*c as f32 + rng.normal() * d.noise_sigma);
            }
        }
    }
}

/// Separable box blur with edge clamping: a horizontal pass, then a vertical one.
fn box_blur(img: &mut RgbImage, r: u32) {
    let horizontal = blur_pass(img, r, true);
    *img = blur_pass(&horizontal, r, false);
}

/// One box-blur pass of radius `r` along rows (`horizontal`) or columns: each output pixel is
/// the mean of the `2r + 1` pixels around it, the border pixel repeated past the edge.
///
/// A running sum makes it O(1) per pixel whatever the radius (the direct sum was the largest
/// single cost of an experience training step). The sums are integers, so the result is the
/// same, bit for bit, as summing each window afresh (tested against that).
fn blur_pass(src: &RgbImage, r: u32, horizontal: bool) -> RgbImage {
    let (w, h) = src.dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut out = RgbImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return out;
    }
    let r = r as i64;
    let n = (2 * r + 1) as f32;
    let s = src.as_raw();
    let d = &mut *out;
    if horizontal {
        let last = w as i64 - 1;
        for (row_in, row_out) in s.chunks_exact(w * 3).zip(d.chunks_exact_mut(w * 3)) {
            let px = |x: i64, c: usize| row_in[x.clamp(0, last) as usize * 3 + c] as u32;
            let mut acc = [0u32; 3];
            for (c, a) in acc.iter_mut().enumerate() {
                *a = (-r..=r).map(|x| px(x, c)).sum();
            }
            for x in 0..w {
                for c in 0..3 {
                    row_out[x * 3 + c] = round_u8(acc[c] as f32 / n);
                    let xi = x as i64;
                    acc[c] = acc[c] + px(xi + r + 1, c) - px(xi - r, c);
                }
            }
        }
    } else {
        let last = h as i64 - 1;
        let stride = w * 3;
        let row = |y: i64| {
            let y = y.clamp(0, last) as usize;
            &s[y * stride..(y + 1) * stride]
        };
        let mut acc = vec![0u32; stride];
        for y in -r..=r {
            for (a, &v) in acc.iter_mut().zip(row(y)) {
                *a += v as u32;
            }
        }
        for (y, row_out) in d.chunks_exact_mut(stride).enumerate() {
            for (o, &a) in row_out.iter_mut().zip(&acc) {
                *o = round_u8(a as f32 / n);
            }
            let y = y as i64;
            for ((a, &add), &sub) in acc.iter_mut().zip(row(y + r + 1)).zip(row(y - r)) {
                *a = *a + add as u32 - sub as u32;
            }
        }
    }
    out
}

/// The photos bundled in `examples/`: `(file name, scene)`. Names ending in `.png` are written
/// with a transparent background (the backdrop is replaced by alpha 0).
pub fn example_scenes() -> Vec<(&'static str, Scene)> {
    let s = |width,
             height,
             backdrop,
             product: Option<(ProductShape, BBox, [u8; 3])>,
             degradation,
             seed| Scene {
        width,
        height,
        backdrop,
        product,
        shadow: true,
        degradation,
        seed,
    };
    let clean = Degradation::default();
    let white = Backdrop::Uniform([255; 3]);
    let centred = |w: f32, h: f32, fill_w: f32, fill_h: f32| {
        BBox::from_center(w / 2.0, h / 2.0, w * fill_w, h * fill_h)
    };
    let red = [200, 40, 40];
    vec![
        (
            "white_centred.jpg",
            s(
                1000,
                1000,
                white.clone(),
                Some((
                    ProductShape::Bottle,
                    centred(1000.0, 1000.0, 0.45, 0.8),
                    [30, 90, 170],
                )),
                clean,
                1,
            ),
        ),
        (
            "white_small.jpg",
            s(
                1000,
                1000,
                white.clone(),
                Some((
                    ProductShape::Carton,
                    centred(1000.0, 1000.0, 0.16, 0.22),
                    red,
                )),
                clean,
                2,
            ),
        ),
        (
            "white_cut_off.jpg",
            s(
                1000,
                1000,
                white.clone(),
                Some((
                    ProductShape::Carton,
                    BBox::new(-250.0, 200.0, 450.0, 850.0),
                    [230, 160, 20],
                )),
                clean,
                3,
            ),
        ),
        (
            "white_off_centre.jpg",
            s(
                1000,
                800,
                white.clone(),
                Some((
                    ProductShape::Ball,
                    BBox::new(640.0, 40.0, 960.0, 360.0),
                    [240, 120, 30],
                )),
                clean,
                4,
            ),
        ),
        (
            "grey_backdrop.jpg",
            s(
                1000,
                1000,
                Backdrop::Uniform([231; 3]),
                Some((
                    ProductShape::Bottle,
                    centred(1000.0, 1000.0, 0.4, 0.78),
                    [20, 130, 60],
                )),
                clean,
                5,
            ),
        ),
        (
            "black_backdrop.jpg",
            s(
                1000,
                1000,
                Backdrop::Uniform([8; 3]),
                Some((
                    ProductShape::Carton,
                    centred(1000.0, 1000.0, 0.6, 0.7),
                    [220, 200, 60],
                )),
                clean,
                6,
            ),
        ),
        (
            "colour_gradient.jpg",
            s(
                1200,
                800,
                Backdrop::Gradient {
                    top: [250, 215, 200],
                    bottom: [215, 120, 110],
                },
                Some((
                    ProductShape::Ball,
                    centred(1200.0, 800.0, 0.45, 0.7),
                    [250, 240, 90],
                )),
                clean,
                7,
            ),
        ),
        (
            "lifestyle_room.jpg",
            s(
                1200,
                900,
                Backdrop::Room {
                    wall: [205, 190, 170],
                    table: [150, 105, 60],
                },
                Some((
                    ProductShape::Bottle,
                    BBox::new(480.0, 250.0, 720.0, 760.0),
                    [60, 60, 150],
                )),
                clean,
                8,
            ),
        ),
        (
            "cluttered.jpg",
            s(
                1000,
                1000,
                Backdrop::Clutter { objects: 40 },
                Some((
                    ProductShape::Carton,
                    centred(1000.0, 1000.0, 0.3, 0.35),
                    red,
                )),
                clean,
                9,
            ),
        ),
        (
            "noisy_white.jpg",
            s(
                800,
                800,
                white.clone(),
                Some((
                    ProductShape::Bottle,
                    centred(800.0, 800.0, 0.45, 0.8),
                    [30, 90, 170],
                )),
                Degradation {
                    noise_sigma: 18.0,
                    blur_radius: 0,
                },
                10,
            ),
        ),
        (
            "blurred_white.jpg",
            s(
                1000,
                1000,
                white.clone(),
                Some((
                    ProductShape::Carton,
                    centred(1000.0, 1000.0, 0.55, 0.7),
                    [120, 40, 140],
                )),
                Degradation {
                    noise_sigma: 0.0,
                    blur_radius: 6,
                },
                11,
            ),
        ),
        (
            "transparent_cutout.png",
            s(
                800,
                800,
                white,
                Some((
                    ProductShape::Ball,
                    centred(800.0, 800.0, 0.7, 0.7),
                    [200, 60, 90],
                )),
                clean,
                12,
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The box blur summed window by window, as first written: the reference the running-sum
    /// pass must match bit for bit.
    fn blur_pass_direct(src: &RgbImage, r: u32, horizontal: bool) -> RgbImage {
        let (w, h) = src.dimensions();
        let r = r as i64;
        let n = (2 * r + 1) as f32;
        RgbImage::from_fn(w, h, |x, y| {
            let mut acc = [0f32; 3];
            for d in -r..=r {
                let (sx, sy) = if horizontal {
                    ((x as i64 + d).clamp(0, w as i64 - 1) as u32, y)
                } else {
                    (x, (y as i64 + d).clamp(0, h as i64 - 1) as u32)
                };
                let p = src.get_pixel(sx, sy).0;
                for i in 0..3 {
                    acc[i] += p[i] as f32;
                }
            }
            Rgb(acc.map(|v| (v / n).round().clamp(0.0, 255.0) as u8))
        })
    }

    #[test]
    fn running_sum_blur_matches_the_direct_sum() {
        let mut rng = SplitMix64::new(3);
        // Sizes below, at and above the window, so clamping at both edges is exercised.
        for (w, h) in [(1, 1), (2, 7), (9, 4), (37, 23)] {
            let img = RgbImage::from_fn(w, h, |_, _| {
                Rgb([0, 1, 2].map(|_| (rng.range(0.0, 256.0) as u32).min(255) as u8))
            });
            for r in [1, 2, 5, 12] {
                for horizontal in [true, false] {
                    assert_eq!(
                        blur_pass(&img, r, horizontal),
                        blur_pass_direct(&img, r, horizontal),
                        "{w}x{h} r {r} horizontal {horizontal}"
                    );
                }
            }
        }
    }

    #[test]
    fn round_u8_rounds_halves_up_and_saturates() {
        assert_eq!(round_u8(-3.0), 0);
        assert_eq!(round_u8(0.49), 0);
        assert_eq!(round_u8(0.5), 1);
        assert_eq!(round_u8(127.5), 128);
        assert_eq!(round_u8(254.6), 255);
        assert_eq!(round_u8(300.0), 255);
        assert_eq!(round_u8(f32::NAN), 0);
    }

    #[test]
    fn backdrop_classes_follow_the_definition() {
        assert_eq!(Backdrop::Uniform([255; 3]).class(), BackgroundClass::White);
        assert_eq!(
            Backdrop::Uniform([250, 251, 252]).class(),
            BackgroundClass::White
        );
        assert_eq!(
            Backdrop::Uniform([249, 255, 255]).class(),
            BackgroundClass::Solid
        );
        assert_eq!(
            Backdrop::Uniform([20, 0, 5]).class(),
            BackgroundClass::Black
        );
        assert_eq!(
            Backdrop::Clutter { objects: 3 }.class(),
            BackgroundClass::Cluttered
        );
        assert_eq!(
            Backdrop::Room {
                wall: [1; 3],
                table: [2; 3]
            }
            .class(),
            BackgroundClass::Lifestyle
        );
    }

    #[test]
    fn product_lands_in_its_box_and_backdrop_stays_exact() {
        let scene = Scene {
            width: 200,
            height: 100,
            backdrop: Backdrop::Uniform([255; 3]),
            product: Some((
                ProductShape::Carton,
                BBox::new(50.0, 20.0, 150.0, 80.0),
                [10, 10, 200],
            )),
            shadow: false,
            degradation: Degradation::default(),
            seed: 1,
        };
        let img = render(&scene);
        assert_eq!(img.get_pixel(5, 5).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(195, 95).0, [255, 255, 255]);
        assert_ne!(img.get_pixel(100, 50).0, [255, 255, 255]);
        // Every non-white pixel is inside the box (1 px of anti-aliasing allowed).
        for (x, y, p) in img.enumerate_pixels() {
            if p.0 != [255, 255, 255] {
                assert!(
                    (49..=151).contains(&x) && (19..=81).contains(&y),
                    "({x},{y})"
                );
            }
        }
        assert_eq!(render(&scene), img, "deterministic");
    }

    #[test]
    fn noise_and_blur_change_pixels() {
        let mut scene = example_scenes().remove(0).1;
        scene.width = 120;
        scene.height = 120;
        scene.product = Some((
            ProductShape::Carton,
            BBox::new(30.0, 30.0, 90.0, 90.0),
            [0, 0, 0],
        ));
        let clean = render(&scene);
        scene.degradation.noise_sigma = 20.0;
        let noisy = render(&scene);
        let diff: u64 = clean
            .pixels()
            .zip(noisy.pixels())
            .map(|(a, b)| a.0[0].abs_diff(b.0[0]) as u64)
            .sum();
        assert!(diff > 120 * 120 * 5, "{diff}");
        scene.degradation = Degradation {
            noise_sigma: 0.0,
            blur_radius: 4,
        };
        let blurred = render(&scene);
        // The hard product edge becomes a ramp.
        let edge = blurred.get_pixel(30, 33).0[0];
        assert!(edge > 40 && edge < 220, "{edge}");
    }
}
