//! Snapping the detector's box to the product's own pixels on a plain backdrop.
//!
//! Why: the detector sees the photo at 128 px, and on products that fill the frame it boxes
//! too little — a decoration printed on a packshot instead of the packshot, an edge a few
//! points inside the product's — so fill is understated and a compliant photo fails a
//! marketplace's fill rule (models/README.md, limitations). On a plain backdrop the pixels say
//! exactly where the product ends: wherever they stop differing from the backdrop's colour.
//! The detector still decides *which* object is the product: only foreground regions that
//! touch its box count, so a caption or a second product elsewhere in the frame stays out, and
//! the snapped box replaces the detector's only when the two agree roughly. On busy backdrops
//! nothing changes: the border must be mostly backdrop-coloured for the pixels to be trusted.

use image::RgbImage;
use shotgrade_core::{BBox, Detection, iou};

/// How boxes are snapped. The grid, tolerance, step and agreement were chosen on the real
/// `validation` part and frame-filling probes of training cut-outs (models/HISTORY.md,
/// `examples/snap_sweep.rs` in shotgrade-cli); the drift and plain-border share by earlier
/// sweeps of the same kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapSettings {
    /// Longest side of the grid the photo is sampled on (each cell the mean of 2 × 2 source
    /// pixels): box edges land within one cell, 0.6 % of the side at 160.
    pub grid_side: u32,
    /// The backdrop's colour is the median of the border ring; a ring cell within this many
    /// levels of it (every channel) is plain backdrop and seeds the fill.
    pub tolerance: u8,
    /// The backdrop spreads from the ring to neighbouring cells that differ from it by at most
    /// this much (every channel): gradients, vignettes and soft shadows change a few levels
    /// per cell and are filled, a product's edge is a step and stops the fill.
    pub step: u8,
    /// Nor does the fill go further than this from the backdrop's colour (every channel): a
    /// bound on how far a long, soft gradient may lead it (160 stops it only near the opposite
    /// end of the scale; 64 and 96 measured the same).
    pub max_drift: u8,
    /// Share of the border ring that must be plain backdrop for the pixels to be trusted.
    pub min_plain_border: f32,
    /// The snapped box replaces the detector's only when their IoU is at least this. High on
    /// purpose: a model is foreground joined to the outfit the detector boxes, and snapping
    /// would box the whole person; the detector's box is rarely far off a packshot's.
    pub min_agreement: f32,
    /// Foreground regions smaller than this share of the grid (dust, JPEG ringing) are ignored.
    pub min_region_share: f32,
}

impl Default for SnapSettings {
    fn default() -> Self {
        SnapSettings {
            grid_side: 160,
            tolerance: 32,
            step: 8,
            max_drift: 160,
            min_plain_border: 0.5,
            min_agreement: 0.8,
            min_region_share: 0.0005,
        }
    }
}

/// The photo sampled on a grid of at most `grid_side` cells on its longer side.
struct Grid {
    width: usize,
    height: usize,
    /// Source pixels per grid cell.
    scale: f32,
    pixels: Vec<[u8; 3]>,
}

impl Grid {
    /// Each cell is the mean of the 2 × 2 source pixels at its centre: enough to calm JPEG
    /// noise, and four reads a cell on any photo.
    fn sample(rgb: &RgbImage, grid_side: u32) -> Option<Grid> {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if w == 0 || h == 0 || grid_side == 0 {
            return None;
        }
        let scale = (w.max(h) as f32 / grid_side as f32).max(1.0);
        let width = ((w as f32 / scale).round() as usize).max(1);
        let height = ((h as f32 / scale).round() as usize).max(1);
        let at = |g: usize, limit: usize| (((g as f32 + 0.5) * scale) as usize).min(limit - 1);
        let columns: Vec<(usize, usize)> = (0..width)
            .map(|gx| {
                let x = at(gx, w);
                (3 * x, 3 * (x + 1).min(w - 1))
            })
            .collect();
        let raw = rgb.as_raw();
        let mut pixels = Vec::with_capacity(width * height);
        for gy in 0..height {
            let y = at(gy, h);
            let rows = [y * w * 3, (y + 1).min(h - 1) * w * 3];
            for &(x0, x1) in &columns {
                let mut cell = [0u8; 3];
                for (c, v) in cell.iter_mut().enumerate() {
                    let sum = u16::from(raw[rows[0] + x0 + c])
                        + u16::from(raw[rows[0] + x1 + c])
                        + u16::from(raw[rows[1] + x0 + c])
                        + u16::from(raw[rows[1] + x1 + c]);
                    *v = ((sum + 2) / 4) as u8;
                }
                pixels.push(cell);
            }
        }
        Some(Grid {
            width,
            height,
            scale,
            pixels,
        })
    }

    /// Indexes of the ring of cells along the border, `band` cells wide, each once.
    fn ring(&self, band: usize) -> Vec<usize> {
        let (w, h) = (self.width, self.height);
        let mut cells = Vec::new();
        for y in 0..h {
            if y < band || y + band >= h || 2 * band >= w {
                cells.extend(y * w..(y + 1) * w);
            } else {
                cells.extend(y * w..y * w + band);
                cells.extend((y + 1) * w - band..(y + 1) * w);
            }
        }
        cells
    }

    /// Calls `f` on the 8 neighbours of cell `i` inside the grid.
    #[inline]
    fn for_neighbours(&self, i: usize, mut f: impl FnMut(usize)) {
        let (w, h) = (self.width, self.height);
        let (x, y) = (i % w, i / w);
        let (x0, x1) = (x.saturating_sub(1), (x + 1).min(w - 1));
        let (y0, y1) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for ny in y0..=y1 {
            for nx in x0..=x1 {
                let j = ny * w + nx;
                if j != i {
                    f(j);
                }
            }
        }
    }
}

/// Per-channel median of `pixels`.
fn median_colour(pixels: impl Iterator<Item = [u8; 3]>) -> Option<[u8; 3]> {
    let mut counts = [[0u32; 256]; 3];
    let mut n = 0u32;
    for p in pixels {
        for c in 0..3 {
            counts[c][p[c] as usize] += 1;
        }
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let mut out = [0u8; 3];
    for c in 0..3 {
        let mut seen = 0;
        for (v, &k) in counts[c].iter().enumerate() {
            seen += k;
            if 2 * seen >= n {
                out[c] = v as u8;
                break;
            }
        }
    }
    Some(out)
}

/// Largest difference between two colours over the channels.
#[inline]
fn distance(a: [u8; 3], b: [u8; 3]) -> u8 {
    a[0].abs_diff(b[0])
        .max(a[1].abs_diff(b[1]))
        .max(a[2].abs_diff(b[2]))
}

/// The box of the foreground regions (8-connected) that reach into `detected`, in source
/// pixels; `None` when the backdrop is not plain, nothing reaches the box, or the result
/// disagrees with the detector (see the module docs and [`SnapSettings`]).
pub fn snap_to_backdrop(rgb: &RgbImage, detected: &BBox, settings: &SnapSettings) -> Option<BBox> {
    let corners = [detected.x0, detected.y0, detected.x1, detected.y1];
    if !corners.iter().all(|v| v.is_finite()) {
        return None;
    }
    let grid = Grid::sample(rgb, settings.grid_side)?;
    let (gw, gh) = (grid.width, grid.height);
    let band = ((gw.min(gh) as f32 * 0.02).round() as usize).max(1);
    let ring = grid.ring(band);
    let backdrop = median_colour(ring.iter().map(|&i| grid.pixels[i]))?;
    let plain: Vec<usize> = ring
        .iter()
        .copied()
        .filter(|&i| distance(grid.pixels[i], backdrop) <= settings.tolerance)
        .collect();
    if (plain.len() as f32) < settings.min_plain_border * ring.len() as f32 {
        return None;
    }

    // The backdrop: filled from the plain ring cells through small steps.
    let mut is_backdrop = vec![false; gw * gh];
    let mut stack = plain;
    for &i in &stack {
        is_backdrop[i] = true;
    }
    while let Some(i) = stack.pop() {
        let here = grid.pixels[i];
        grid.for_neighbours(i, |j| {
            let p = grid.pixels[j];
            if !is_backdrop[j]
                && distance(p, here) <= settings.step
                && distance(p, backdrop) <= settings.max_drift
            {
                is_backdrop[j] = true;
                stack.push(j);
            }
        });
    }

    // The detector's box on the grid: the cells it covers (at least one).
    let s = grid.scale;
    // A box's end is exclusive: an end on a cell boundary does not take in the next cell.
    let to_cell = |v: f32, n: usize| ((v / s).floor().max(0.0) as usize).min(n - 1);
    let to_last_cell = |v: f32, n: usize| ((v / s).ceil().max(1.0) as usize - 1).min(n - 1);
    let (bx0, by0) = (to_cell(detected.x0, gw), to_cell(detected.y0, gh));
    let (bx1, by1) = (
        to_last_cell(detected.x1, gw).max(bx0),
        to_last_cell(detected.y1, gh).max(by0),
    );

    // Foreground regions that reach into the detector's box: their extent and size.
    let min_cells = (settings.min_region_share * (gw * gh) as f32).ceil() as usize;
    // Every region that reaches into the box has a cell in it: search from those only.
    let mut seen = is_backdrop;
    let mut union: Option<[usize; 4]> = None;
    for start in (by0..=by1).flat_map(|y| (bx0..=bx1).map(move |x| y * gw + x)) {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (gw, gh, 0, 0);
        let mut cells = 0usize;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % gw, i / gw);
            cells += 1;
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            grid.for_neighbours(i, |j| {
                if !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            });
        }
        if cells >= min_cells {
            union = Some(match union {
                None => [x0, y0, x1, y1],
                Some(u) => [u[0].min(x0), u[1].min(y0), u[2].max(x1), u[3].max(y1)],
            });
        }
    }
    let [x0, y0, x1, y1] = union?;
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    // Grid cells back to source pixels; a region on the last cell runs to the frame's edge.
    let start = |cell: usize, limit: f32| {
        if cell == 0 {
            0.0
        } else {
            (cell as f32 * s).min(limit)
        }
    };
    let end = |cell: usize, n: usize, limit: f32| {
        if cell + 1 >= n {
            limit
        } else {
            ((cell + 1) as f32 * s).min(limit)
        }
    };
    let snapped = BBox::new(start(x0, w), start(y0, h), end(x1, gw, w), end(y1, gh, h));
    (iou(&snapped, detected) >= settings.min_agreement).then_some(snapped)
}

/// Snaps the first (most probable) of `detections` — the main product — with
/// [`snap_to_backdrop`], then drops the others that now overlap it by more than `nms_iou`, as
/// NMS would have: a second box on the same product, which the grown box takes in, must not
/// count as another product.
pub fn snap_main_detection(
    rgb: &RgbImage,
    detections: &mut Vec<Detection>,
    settings: &SnapSettings,
    nms_iou: f32,
) {
    let Some(main) = detections.first_mut() else {
        return;
    };
    let Some(snapped) = snap_to_backdrop(rgb, &main.bbox, settings) else {
        return;
    };
    main.bbox = snapped;
    let mut index = 0;
    detections.retain(|d| {
        index += 1;
        index == 1 || iou(&d.bbox, &snapped) <= nms_iou
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A `w × h` photo of `backdrop` with filled rectangles `[x0, y0, x1, y1)` of colours.
    fn photo(w: u32, h: u32, backdrop: [u8; 3], rects: &[([u32; 4], [u8; 3])]) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            rects
                .iter()
                .rev()
                .find(|(r, _)| (r[0]..r[2]).contains(&x) && (r[1]..r[3]).contains(&y))
                .map_or(Rgb(backdrop), |(_, c)| Rgb(*c))
        })
    }

    fn close(a: &BBox, b: &BBox, tol: f32) -> bool {
        (a.x0 - b.x0).abs() <= tol
            && (a.y0 - b.y0).abs() <= tol
            && (a.x1 - b.x1).abs() <= tol
            && (a.y1 - b.y1).abs() <= tol
    }

    #[test]
    fn a_box_on_a_printed_decoration_grows_to_the_whole_product() {
        // A 1000 × 1000 white frame, a grey product spanning 94 % of it with a dark print.
        let image = photo(
            1000,
            1000,
            [255; 3],
            &[
                ([30, 30, 970, 970], [200, 190, 180]),
                ([300, 300, 700, 700], [20, 40, 160]),
            ],
        );
        let detected = BBox::new(150.0, 150.0, 830.0, 830.0);
        // IoU 0.52 with the product: below the default agreement, which keeps the box.
        assert_eq!(
            snap_to_backdrop(&image, &detected, &SnapSettings::default()),
            None
        );
        let settings = SnapSettings {
            min_agreement: 0.5,
            ..SnapSettings::default()
        };
        let snapped = snap_to_backdrop(&image, &detected, &settings).unwrap();
        let truth = BBox::new(30.0, 30.0, 970.0, 970.0);
        assert!(close(&snapped, &truth, 4.0), "{snapped:?}");
        // A detector a few points short on every side snaps with the defaults.
        let near = BBox::new(60.0, 50.0, 930.0, 950.0);
        let snapped = snap_to_backdrop(&image, &near, &SnapSettings::default()).unwrap();
        assert!(close(&snapped, &truth, 4.0), "{snapped:?}");
    }

    #[test]
    fn captions_and_specks_away_from_the_box_stay_out() {
        let image = photo(
            800,
            600,
            [250, 248, 245],
            &[
                ([200, 100, 600, 500], [90, 60, 40]),
                // A caption in a corner and a speck of dust.
                ([20, 540, 180, 580], [0, 0, 0]),
                ([700, 50, 708, 58], [0, 0, 0]),
            ],
        );
        let detected = BBox::new(210.0, 120.0, 580.0, 490.0);
        let snapped = snap_to_backdrop(&image, &detected, &SnapSettings::default()).unwrap();
        assert!(
            close(&snapped, &BBox::new(200.0, 100.0, 600.0, 500.0), 4.0),
            "{snapped:?}"
        );
    }

    #[test]
    fn a_product_touching_the_frame_runs_to_its_edge() {
        // 401 × 301: the grid's cells do not divide the frame evenly.
        let image = photo(401, 301, [255; 3], &[([100, 40, 401, 301], [10, 10, 10])]);
        let detected = BBox::new(110.0, 50.0, 390.0, 290.0);
        // The product covers 40 % of the border ring.
        let settings = SnapSettings {
            min_plain_border: 0.55,
            ..SnapSettings::default()
        };
        let snapped = snap_to_backdrop(&image, &detected, &settings).unwrap();
        assert_eq!((snapped.x1, snapped.y1), (401.0, 301.0));
        assert!(close(&snapped, &BBox::new(100.0, 40.0, 401.0, 301.0), 3.0));
    }

    #[test]
    fn busy_backdrops_and_disagreeing_boxes_leave_the_detector_alone() {
        // A checkerboard backdrop: the border is not plain.
        let busy = RgbImage::from_fn(300, 300, |x, y| {
            if (x / 10 + y / 10) % 2 == 0 {
                Rgb([255, 255, 255])
            } else {
                Rgb([0, 0, 0])
            }
        });
        let b = BBox::new(100.0, 100.0, 200.0, 200.0);
        assert_eq!(snap_to_backdrop(&busy, &b, &SnapSettings::default()), None);
        // The only object is far larger than the detector's box: they disagree.
        let image = photo(500, 500, [255; 3], &[([10, 10, 490, 490], [0, 0, 0])]);
        let small = BBox::new(200.0, 200.0, 260.0, 260.0);
        assert_eq!(
            snap_to_backdrop(&image, &small, &SnapSettings::default()),
            None
        );
        // Nothing but backdrop.
        let empty = photo(200, 200, [255; 3], &[]);
        assert_eq!(snap_to_backdrop(&empty, &b, &SnapSettings::default()), None);
    }

    #[test]
    fn vignettes_and_soft_shadows_are_backdrop() {
        // A grey sweep darkening towards the corners, a product with a soft shadow beside it.
        let image = RgbImage::from_fn(600, 600, |x, y| {
            let (dx, dy) = (x as f32 - 300.0, y as f32 - 300.0);
            let vignette = 230.0 - 60.0 * (dx * dx + dy * dy).sqrt() / 424.0;
            let shadow = if (400..520).contains(&x) && (420..460).contains(&y) {
                let t = (x as f32 - 400.0) / 120.0;
                25.0 * (1.0 - t)
            } else {
                0.0
            };
            if (200..400).contains(&x) && (150..460).contains(&y) {
                Rgb([150, 30, 30])
            } else {
                let v = (vignette - shadow) as u8;
                Rgb([v, v, v])
            }
        });
        let detected = BBox::new(195.0, 160.0, 410.0, 455.0);
        let snapped = snap_to_backdrop(&image, &detected, &SnapSettings::default()).unwrap();
        assert!(
            close(&snapped, &BBox::new(200.0, 150.0, 400.0, 460.0), 5.0),
            "{snapped:?}"
        );
    }

    #[test]
    fn a_second_box_on_the_grown_product_is_dropped_others_stay() {
        let image = photo(
            1000,
            1000,
            [255; 3],
            &[
                ([100, 100, 700, 900], [90, 60, 40]),
                ([800, 700, 950, 950], [20, 120, 40]),
            ],
        );
        let detection = |b: BBox, p: f32| Detection {
            bbox: b,
            probability: p,
            subject_probability: 0.9,
        };
        let mut found = vec![
            // The main box, a little short of the product.
            detection(BBox::new(130.0, 140.0, 690.0, 880.0), 0.9),
            // Another box on the same product, which NMS kept (IoU 0.47 with the main box) and
            // the snapped box takes in (IoU 0.53).
            detection(BBox::new(100.0, 100.0, 700.0, 520.0), 0.6),
            // The second product.
            detection(BBox::new(800.0, 700.0, 950.0, 950.0), 0.5),
        ];
        assert!(iou(&found[0].bbox, &found[1].bbox) < 0.5);
        snap_main_detection(&image, &mut found, &SnapSettings::default(), 0.5);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(close(
            &found[0].bbox,
            &BBox::new(100.0, 100.0, 700.0, 900.0),
            8.0
        ));
        assert_eq!(found[1].probability, 0.5);
        // Nothing to snap: nothing changes.
        let mut none: Vec<Detection> = Vec::new();
        snap_main_detection(&image, &mut none, &SnapSettings::default(), 0.5);
        assert!(none.is_empty());
    }

    #[test]
    fn degenerate_inputs_are_refused_without_panicking() {
        let b = BBox::new(0.0, 0.0, 1.0, 1.0);
        assert_eq!(
            snap_to_backdrop(&RgbImage::new(0, 0), &b, &SnapSettings::default()),
            None
        );
        let one = photo(1, 1, [255; 3], &[]);
        let far = BBox {
            x0: -50.0,
            y0: 1e9,
            x1: f32::NAN,
            y1: 3.0,
        };
        assert_eq!(snap_to_backdrop(&one, &far, &SnapSettings::default()), None);
        let tiny = photo(3, 2, [255; 3], &[([1, 0, 2, 2], [0, 0, 0])]);
        let _ = snap_to_backdrop(&tiny, &b, &SnapSettings::default());
    }
}
