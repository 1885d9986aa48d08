//! People cut off their studio backdrops, to be composited onto scenes, textures and plain
//! backdrops: the on-model photos the labelled set holds are almost all on white or a grey
//! sweep, so without these composites no training photo shows a model in a room or against a
//! loud pattern.
//!
//! The matte is a flood fill of the backdrop from the photo's border: a pixel joins the
//! backdrop when it is close to the neighbour it was reached from (so a sweep's gradient and
//! vignette are followed) and not too far from the border band's median colour (so the fill
//! does not leak through a soft edge into the person). Holes enclosed by the person (between
//! an arm and the body) keep their backdrop pixels: telling a white shirt from a white gap by
//! colour alone is not reliable, and a small patch of studio backdrop does not change what a
//! scene's class is.

use crate::assets::Cutout;
use crate::labels::{LabelledPhoto, Part, Person, load_labelled};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use shotgrade_core::{BBox, BackgroundClass};
use std::collections::VecDeque;
use std::path::Path;

/// How the backdrop is told from the person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatteSettings {
    /// Longest side the photo is matted (and the cut-out kept) at.
    pub max_side: u32,
    /// Largest colour step (Euclidean, 8-bit RGB) between neighbouring backdrop pixels.
    pub step_tolerance: f32,
    /// Largest distance of a backdrop pixel from the border band's median colour.
    pub backdrop_tolerance: f32,
    /// Least share of the border band within `backdrop_tolerance` of its median: below it the
    /// backdrop is not plain enough to matte.
    pub plain_border_share: f32,
    /// The person's share of the photo must lie in this range (else the fill failed).
    pub person_share: (f32, f32),
    /// Least opaque share of the product's box: below it the fill ate the product (a white
    /// shirt on a white backdrop).
    pub product_opaque_share: f32,
}

impl Default for MatteSettings {
    fn default() -> Self {
        MatteSettings {
            max_side: 480,
            step_tolerance: 6.0,
            backdrop_tolerance: 48.0,
            plain_border_share: 0.6,
            person_share: (0.03, 0.9),
            product_opaque_share: 0.6,
        }
    }
}

/// A person (or any subject) cut off a plain backdrop.
#[derive(Debug, Clone)]
pub struct Matte {
    /// The subject on a transparent backdrop, cropped to its opaque pixels.
    pub image: RgbaImage,
    /// `box_in_photo` (given to [`matte_plain_backdrop`]) in the cut-out's pixels.
    pub product: Option<BBox>,
}

fn distance(a: &Rgb<u8>, b: &[f32; 3]) -> f32 {
    (0..3)
        .map(|i| (f32::from(a.0[i]) - b[i]).powi(2))
        .sum::<f32>()
        .sqrt()
}

/// The median of each channel over the border band the loader measures
/// (`shotgrade_image::for_border_band`), and the band's pixels.
fn border_median(img: &RgbImage) -> ([f32; 3], Vec<Rgb<u8>>) {
    let mut pixels = Vec::new();
    shotgrade_image::for_border_band(img, |p| pixels.push(Rgb(p)));
    let mut median = [0.0f32; 3];
    for (c, m) in median.iter_mut().enumerate() {
        let mut v: Vec<u8> = pixels.iter().map(|p| p.0[c]).collect();
        v.sort_unstable();
        *m = f32::from(v.get(v.len() / 2).copied().unwrap_or(255));
    }
    (median, pixels)
}

/// Cuts the subject of `photo` off its plain backdrop; `None` when the border is not a plain
/// backdrop or the fill leaves too little or too much of the photo. `box_in_photo` (the
/// labelled product box, in `photo`'s pixels) is carried into the cut-out's pixels.
pub fn matte_plain_backdrop(
    photo: &RgbImage,
    box_in_photo: Option<BBox>,
    settings: &MatteSettings,
) -> Option<Matte> {
    let (pw, ph) = photo.dimensions();
    if pw < 16 || ph < 16 {
        return None;
    }
    let scale = (settings.max_side as f32 / pw.max(ph) as f32).min(1.0);
    let (w, h) = (
        ((pw as f32 * scale).round() as u32).max(1),
        ((ph as f32 * scale).round() as u32).max(1),
    );
    let img = if scale < 1.0 {
        image::imageops::resize(photo, w, h, image::imageops::FilterType::Triangle)
    } else {
        photo.clone()
    };
    let (median, band_pixels) = border_median(&img);
    let plain = band_pixels
        .iter()
        .filter(|p| distance(p, &median) <= settings.backdrop_tolerance)
        .count() as f32
        / band_pixels.len().max(1) as f32;
    if plain < settings.plain_border_share {
        return None;
    }

    let index = |x: u32, y: u32| (y * w + x) as usize;
    let mut backdrop = vec![false; (w * h) as usize];
    let mut queue = VecDeque::new();
    for y in 0..h {
        for x in 0..w {
            let on_border = x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            if on_border && distance(img.get_pixel(x, y), &median) <= settings.backdrop_tolerance {
                backdrop[index(x, y)] = true;
                queue.push_back((x, y));
            }
        }
    }
    while let Some((x, y)) = queue.pop_front() {
        let here = img.get_pixel(x, y);
        let here = [
            f32::from(here.0[0]),
            f32::from(here.0[1]),
            f32::from(here.0[2]),
        ];
        let neighbours = [
            (x.wrapping_sub(1), y),
            (x + 1, y),
            (x, y.wrapping_sub(1)),
            (x, y + 1),
        ];
        for (nx, ny) in neighbours {
            if nx >= w || ny >= h || backdrop[index(nx, ny)] {
                continue;
            }
            let p = img.get_pixel(nx, ny);
            if distance(p, &here) <= settings.step_tolerance
                && distance(p, &median) <= settings.backdrop_tolerance
            {
                backdrop[index(nx, ny)] = true;
                queue.push_back((nx, ny));
            }
        }
    }

    let subject = backdrop.iter().filter(|b| !**b).count() as f32 / backdrop.len() as f32;
    if subject < settings.person_share.0 || subject > settings.person_share.1 {
        return None;
    }
    if let Some(b) = box_in_photo {
        let (bx0, by0) = (
            (b.x0 * scale).max(0.0) as u32,
            (b.y0 * scale).max(0.0) as u32,
        );
        let (bx1, by1) = (
            ((b.x1 * scale).ceil() as u32).min(w),
            ((b.y1 * scale).ceil() as u32).min(h),
        );
        let inside = (by0..by1)
            .flat_map(|y| (bx0..bx1).map(move |x| (x, y)))
            .filter(|&(x, y)| !backdrop[index(x, y)])
            .count() as f32;
        let area = (bx1.saturating_sub(bx0) * by1.saturating_sub(by0)) as f32;
        if area == 0.0 || inside / area < settings.product_opaque_share {
            return None;
        }
    }
    // A one-pixel feather: each pixel's alpha is the subject's share of its 3×3 neighbourhood,
    // so the cut edge blends into the new backdrop instead of showing a stair of old pixels.
    let mut out = RgbaImage::new(w, h);
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let mut inside = 0u32;
            let mut total = 0u32;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 {
                        total += 1;
                        inside += u32::from(!backdrop[index(nx as u32, ny as u32)]);
                    }
                }
            }
            let alpha = if backdrop[index(x, y)] {
                // Backdrop pixels next to the subject stay see-through: their colour is the
                // old backdrop's.
                0
            } else {
                (255 * inside / total.max(1)) as u8
            };
            let p = img.get_pixel(x, y);
            out.put_pixel(x, y, Rgba([p.0[0], p.0[1], p.0[2], alpha]));
            if alpha >= 128 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let image = image::imageops::crop_imm(&out, x0, y0, x1 - x0, y1 - y0).to_image();
    let product = box_in_photo.and_then(|b| {
        let mapped = BBox::new(
            b.x0 * scale - x0 as f32,
            b.y0 * scale - y0 as f32,
            b.x1 * scale - x0 as f32,
            b.y1 * scale - y0 as f32,
        )
        .clamp_to((x1 - x0) as f32, (y1 - y0) as f32);
        (mapped.area() > 0.0).then_some(mapped)
    });
    Some(Matte { image, product })
}

/// What [`people_cutouts`] made and left out.
#[derive(Debug, Clone, Default)]
pub struct PeopleCutouts {
    pub cutouts: Vec<Cutout>,
    /// On-model photos of the part on a plain backdrop that could not be read or matted.
    pub skipped: Vec<String>,
}

/// Cut-outs of the people in the on-model photos of `part` (people wearing or holding the
/// product on a white, black or solid backdrop), with the labelled product box carried into
/// each cut-out (`Cutout::product`). Only ever called with `Part::Train`: a matte is a
/// training photo's pixels.
pub fn people_cutouts(
    labels: &Path,
    assets: &Path,
    part: Part,
    settings: &MatteSettings,
) -> Result<PeopleCutouts, crate::labels::LabelError> {
    let photos: Vec<LabelledPhoto> = load_labelled(labels)?
        .into_iter()
        .filter(|p| {
            p.part == part
                && p.person != Person::None
                // A frame or a circular crop added on top is not the backdrop.
                && p.overlays.is_empty()
                && matches!(
                    p.background,
                    Some(BackgroundClass::White | BackgroundClass::Solid | BackgroundClass::Black)
                )
        })
        .collect();
    let mut out = PeopleCutouts::default();
    for p in photos {
        // The hardened loader turns the photo as EXIF says: labelled boxes are in those pixels.
        let matte =
            shotgrade_image::load_path(&assets.join(&p.path), &shotgrade_image::Limits::default())
                .ok()
                .and_then(|img| matte_plain_backdrop(&img.rgb, p.bbox, settings));
        let Some(matte) = matte else {
            out.skipped.push(p.path.clone());
            continue;
        };
        let (w, h) = matte.image.dimensions();
        out.cutouts.push(Cutout {
            opaque: BBox::new(0.0, 0.0, w as f32, h as f32),
            image: matte.image,
            product: matte.product,
            source: format!("people/{}", p.source),
            category: "person".into(),
            stem: Path::new(&p.path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey sweep darkening towards the bottom with a red "person" in the middle.
    fn sweep_with_subject() -> RgbImage {
        RgbImage::from_fn(200, 300, |x, y| {
            if (70..130).contains(&x) && (60..260).contains(&y) {
                Rgb([200, 30, 40])
            } else {
                let v = 220 - (y / 10) as u8;
                Rgb([v, v, v])
            }
        })
    }

    #[test]
    fn the_fill_follows_a_gradient_and_stops_at_the_subject() {
        let photo = sweep_with_subject();
        let matte = matte_plain_backdrop(
            &photo,
            Some(BBox::new(70.0, 100.0, 130.0, 200.0)),
            &MatteSettings::default(),
        )
        .expect("a plain sweep mattes");
        // Cropped to the subject (60 × 200), feathered edge included.
        assert_eq!(matte.image.dimensions(), (60, 200));
        // The subject's inside is opaque; the product box moved with the crop.
        assert_eq!(matte.image.get_pixel(30, 100).0[3], 255);
        let b = matte.product.expect("box carried");
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0.0, 40.0, 60.0, 140.0));
    }

    #[test]
    fn a_product_eaten_by_the_fill_is_refused() {
        // A white shirt on a white backdrop: the fill runs through it.
        let photo = RgbImage::from_fn(200, 300, |x, y| {
            if (70..130).contains(&x) && (60..100).contains(&y) {
                Rgb([200, 160, 140]) // a face
            } else {
                Rgb([252, 252, 252])
            }
        });
        let shirt = Some(BBox::new(60.0, 100.0, 140.0, 220.0));
        assert!(matte_plain_backdrop(&photo, shirt, &MatteSettings::default()).is_none());
    }

    #[test]
    fn busy_borders_are_not_matted() {
        let noisy = RgbImage::from_fn(100, 100, |x, y| {
            let v = ((x * 37 + y * 91) % 256) as u8;
            Rgb([v, 255 - v, v / 2])
        });
        assert!(matte_plain_backdrop(&noisy, None, &MatteSettings::default()).is_none());
    }

    #[test]
    fn an_empty_backdrop_is_not_a_person() {
        let plain = RgbImage::from_pixel(100, 100, Rgb([240, 240, 240]));
        assert!(matte_plain_backdrop(&plain, None, &MatteSettings::default()).is_none());
    }

    #[test]
    fn a_downscaled_matte_scales_the_box() {
        let photo = image::imageops::resize(
            &sweep_with_subject(),
            800,
            1200,
            image::imageops::FilterType::Nearest,
        );
        let matte = matte_plain_backdrop(
            &photo,
            Some(BBox::new(280.0, 400.0, 520.0, 800.0)),
            &MatteSettings::default(),
        )
        .expect("mattes");
        let (w, h) = matte.image.dimensions();
        assert!(h <= 480 && w <= 480);
        let b = matte.product.expect("box");
        // 0.4 × the photo's box, moved by the crop (the subject starts at x = 112, y = 96).
        assert!((b.y0 - (160.0 - 96.0)).abs() <= 2.0, "{b:?}");
        assert!((b.x1 - b.x0 - 96.0).abs() <= 2.0, "{b:?}");
    }
}
