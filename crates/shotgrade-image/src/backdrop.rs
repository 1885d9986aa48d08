//! Statistics of an image's border band — the backdrop as a packshot shows it — for the
//! background model's second stage, which decides `white` against an off-white `solid`.
//!
//! Why a second stage: the background network sees a 64-px thumbnail (and per-block medians),
//! and its most common error is calling an off-white backdrop (a flat 245, say) white, or a
//! white one under noise and JPEG solid. The class boundary is a level — every channel at 250
//! or more — and the evidence for it is in the native border pixels: their distribution (a
//! spike at 245 against a clipped spread up to 255) and the image's noise. A small classifier
//! over these numbers separates the two classes better than the network does (models/HISTORY.md,
//! "A second stage for white against off-white").

use image::RgbImage;

/// Length of the vector [`backdrop_statistics`] returns.
pub const BACKDROP_FEATURES: usize = 19;

/// Percentiles of the band's darkest-channel values that the statistics hold.
const PERCENTILES: [f32; 7] = [0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95];

/// Width of the border band: 2 % of the shorter side, at least one pixel — the band the loader
/// measures `border_rgb` on.
pub fn border_band_width(width: u32, height: u32) -> u32 {
    ((width.min(height) as f32 * 0.02).round() as u32).max(1)
}

/// Calls `f` on every pixel of the border band once (rows at the top and bottom, then the
/// columns at the sides between them), without visiting the interior.
pub fn for_border_band(rgb: &RgbImage, mut f: impl FnMut([u8; 3])) {
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let band = border_band_width(w, h);
    for y in 0..h {
        let full_row = y < band || y + band >= h;
        if full_row || 2 * band >= w {
            for x in 0..w {
                f(rgb.get_pixel(x, y).0);
            }
        } else {
            for x in (0..band).chain(w - band..w) {
                f(rgb.get_pixel(x, y).0);
            }
        }
    }
}

/// Counts of the values 0–255, and their order statistics.
struct Histogram {
    counts: [u32; 256],
    total: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: [0; 256],
            total: 0,
        }
    }

    fn add(&mut self, v: u8) {
        self.counts[v as usize] += 1;
        self.total += 1;
    }

    /// The value of rank `ceil(q · n)` (nearest rank), 0 for an empty histogram.
    fn quantile(&self, q: f32) -> u8 {
        let rank = ((q as f64 * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (v, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return v as u8;
            }
        }
        0
    }

    /// Mean and standard deviation.
    fn moments(&self) -> (f32, f32) {
        if self.total == 0 {
            return (0.0, 0.0);
        }
        let n = self.total as f64;
        let (mut s, mut s2) = (0f64, 0f64);
        for (v, &c) in self.counts.iter().enumerate() {
            let (v, c) = (v as f64, f64::from(c));
            s += v * c;
            s2 += v * v * c;
        }
        let mean = s / n;
        (mean as f32, (s2 / n - mean * mean).max(0.0).sqrt() as f32)
    }

    /// Share of the values at `v` or above.
    fn share_from(&self, v: u8) -> f32 {
        let above: u64 = self.counts[v as usize..]
            .iter()
            .map(|&c| u64::from(c))
            .sum();
        above as f32 / self.total.max(1) as f32
    }
}

/// The backdrop statistics of `rgb`, each scaled to about `[0, 1]`:
///
/// * 0–6: percentiles 5, 10, 25, 50, 75, 90, 95 of the border band's darkest channel
///   (`min(R, G, B)`, the channel the `white` definition hinges on), / 255;
/// * 7, 8: share of band pixels whose darkest channel is ≥ 250 (white by definition) and = 255;
/// * 9, 10: mean / 255 and standard deviation / 64 of the darkest channel;
/// * 11–13: median of R, G and B over the band / 255; 14–16: their standard deviations / 64;
/// * 17, 18: mean and median absolute difference of horizontally adjacent grey values over the
///   whole image (every row up to 512 rows, then evenly spaced ones) / 32 — how noisy the
///   photo is, which says how far noise and JPEG may have pulled a white backdrop down.
pub fn backdrop_statistics(rgb: &RgbImage) -> [f32; BACKDROP_FEATURES] {
    let mut darkest = Histogram::new();
    let mut channels = [Histogram::new(), Histogram::new(), Histogram::new()];
    for_border_band(rgb, |p| {
        darkest.add(p[0].min(p[1]).min(p[2]));
        for (h, v) in channels.iter_mut().zip(p) {
            h.add(v);
        }
    });
    let mut out = [0f32; BACKDROP_FEATURES];
    for (o, q) in out.iter_mut().zip(PERCENTILES) {
        *o = f32::from(darkest.quantile(q)) / 255.0;
    }
    out[7] = darkest.share_from(250);
    out[8] = darkest.share_from(255);
    let (mean, sd) = darkest.moments();
    out[9] = mean / 255.0;
    out[10] = sd / 64.0;
    for (c, h) in channels.iter().enumerate() {
        out[11 + c] = f32::from(h.quantile(0.5)) / 255.0;
        out[14 + c] = h.moments().1 / 64.0;
    }
    let steps = horizontal_steps(rgb);
    out[17] = steps.moments().0 / 32.0;
    out[18] = f32::from(steps.quantile(0.5)) / 32.0;
    out
}

/// Histogram of `|grey(x + 1, y) − grey(x, y)|` over the image's rows (at most ~512 of them,
/// evenly spaced), grey being the mean of R, G and B.
fn horizontal_steps(rgb: &RgbImage) -> Histogram {
    let (w, h) = rgb.dimensions();
    let mut steps = Histogram::new();
    if w < 2 {
        return steps;
    }
    let stride = (h / 512).max(1) as usize;
    // Rows of the raw buffer rather than `get_pixel`: this runs over every graded photo.
    for row in rgb.as_raw().chunks_exact(3 * w as usize).step_by(stride) {
        let mut greys = row
            .chunks_exact(3)
            .map(|p| (u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3);
        let Some(mut last) = greys.next() else {
            continue;
        };
        for g in greys {
            steps.add(g.abs_diff(last) as u8);
            last = g;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use proptest::prelude::*;

    #[test]
    fn a_flat_off_white_backdrop() {
        let img = RgbImage::from_pixel(120, 80, Rgb([245, 246, 247]));
        let s = backdrop_statistics(&img);
        for &p in &s[..7] {
            assert!((p - 245.0 / 255.0).abs() < 1e-6, "{s:?}");
        }
        assert_eq!((s[7], s[8]), (0.0, 0.0));
        assert!((s[9] - 245.0 / 255.0).abs() < 1e-6);
        assert_eq!(s[10], 0.0);
        assert!((s[12] - 246.0 / 255.0).abs() < 1e-6);
        assert_eq!((s[14], s[17], s[18]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn a_white_packshot_ignores_the_product_inside() {
        let mut img = RgbImage::from_pixel(100, 100, Rgb([255, 255, 255]));
        for y in 10..90 {
            for x in 10..90 {
                img.put_pixel(x, y, Rgb([20, 40, 60]));
            }
        }
        let s = backdrop_statistics(&img);
        assert_eq!((s[0], s[6], s[7], s[8]), (1.0, 1.0, 1.0, 1.0));
        // The product's two edges per row are the only steps: grey 40 → 255 and back.
        assert!(s[17] > 0.0 && s[18] == 0.0, "{s:?}");
    }

    #[test]
    fn the_band_is_two_percent_and_every_pixel_once() {
        assert_eq!(border_band_width(1000, 600), 12);
        assert_eq!(border_band_width(10, 10), 1);
        for (w, h) in [(100, 50), (3, 9), (1, 1), (2, 40)] {
            let img = RgbImage::new(w, h);
            let mut n = 0u32;
            for_border_band(&img, |_| n += 1);
            let b = border_band_width(w, h);
            let inner = w.saturating_sub(2 * b) * h.saturating_sub(2 * b);
            assert_eq!(n, w * h - inner, "{w}×{h}");
        }
    }

    proptest! {
        /// Whatever the pixels: finite, in range, percentiles in order.
        #[test]
        fn statistics_are_bounded_and_ordered(
            w in 1u32..40, h in 1u32..40, seed in any::<u64>(),
        ) {
            let mut state = seed;
            let img = RgbImage::from_fn(w, h, |_, _| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let b = state.to_le_bytes();
                Rgb([b[5], b[6], b[7]])
            });
            let s = backdrop_statistics(&img);
            for v in s {
                prop_assert!(v.is_finite() && (0.0..=8.0).contains(&v), "{s:?}");
            }
            prop_assert!(s[..7].windows(2).all(|p| p[0] <= p[1]), "{s:?}");
            prop_assert!(s[8] <= s[7]);
        }
    }
}
