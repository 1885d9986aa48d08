//! Resizing decoded images into the networks' input tensors.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use shotgrade_core::Letterbox;

/// Grey used to pad letterboxed inputs (the usual detector convention, 114/255): distinct from
/// both white and black backdrops, so padding never looks like background.
pub const LETTERBOX_FILL: u8 = 114;

/// Input side lengths of the three networks (all inputs are square).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Background model: side of its square RGB input.
    pub background: u32,
    /// How the photo becomes the background model's input ([`BackgroundView`]).
    pub background_view: BackgroundView,
    /// The background input's per-block planes after the RGB image ([`push_block_planes`]),
    /// or `None` for the plain `3 × S × S` input. Set from the background network's config.
    pub background_blocks: Option<BlockPlanes>,
    /// Whether the background model's second stage wants the image's
    /// [`backdrop_statistics`](crate::backdrop_statistics) ([`NetInputs::backdrop`]). Set from
    /// the background model's config.
    pub backdrop: bool,
    /// Position network: letterboxed RGB.
    pub position: u32,
    /// Experience network: the squash-resized image (global view, for aesthetics) and a
    /// native-resolution centre crop (detail view, for noise and blur) side by side, so the
    /// input is `3 × S × 2S`.
    pub experience: u32,
}

/// How the background model sees the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackgroundView {
    /// Squash-resized to the square, aspect ignored (the from-scratch networks).
    #[default]
    Squash,
    /// Scaled to fit, aspect kept, centred on white padding: how the pretrained trunk's head
    /// was fitted (an ImageNet trunk has seen objects in their proportions; white padding
    /// reads as the white margin a packshot would have, not as a grey bar).
    LetterboxWhite,
}

/// Per-block statistics of native pixels appended to the background input
/// ([`push_block_planes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPlanes {
    /// Block side, in input pixels.
    pub cell: u32,
    /// Besides the three median planes, three spread planes (interquartile range).
    pub spread: bool,
}

impl BlockPlanes {
    /// Planes appended: three medians, and three spreads with [`Self::spread`].
    pub fn count(&self) -> u32 {
        if self.spread { 6 } else { 3 }
    }
}

/// One image's inputs, channel-major (`C × H × W`) `f32` in `[0, 1]`.
#[derive(Debug, Clone)]
pub struct NetInputs {
    pub background: Vec<f32>,
    /// [`backdrop_statistics`](crate::backdrop_statistics) with [`InputSpec::backdrop`],
    /// otherwise empty.
    pub backdrop: Vec<f32>,
    pub position: Vec<f32>,
    /// How the position input maps back to the original image.
    pub letterbox: Letterbox,
    pub experience: Vec<f32>,
}

/// Resizes images into network inputs. Holds `fast_image_resize` scratch buffers: keep one
/// per thread and reuse it.
pub struct Preprocessor {
    spec: InputSpec,
    resizer: Resizer,
    options: ResizeOptions,
}

impl Preprocessor {
    pub fn new(spec: InputSpec) -> Self {
        Preprocessor {
            spec,
            resizer: Resizer::new(),
            // Convolution filters widen with the scale factor, so downscaling averages (no
            // aliasing) — the same look a person gets from a thumbnail.
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        }
    }

    pub fn spec(&self) -> InputSpec {
        self.spec
    }

    /// Resizes `src` to exactly `width × height`, ignoring its aspect ratio.
    pub fn squash(&mut self, src: &RgbImage, width: u32, height: u32) -> RgbImage {
        if src.dimensions() == (width, height) {
            return src.clone();
        }
        let mut dst = Image::new(width, height, PixelType::U8x3);
        match ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3) {
            Ok(view) if self.resizer.resize(&view, &mut dst, &self.options).is_ok() => {
                RgbImage::from_raw(width, height, dst.into_vec())
                    .unwrap_or_else(|| RgbImage::new(width, height))
            }
            // Both cannot fail for a well-formed RgbImage and a non-empty target; fall back to
            // the image crate rather than panic on a library surprise.
            _ => image::imageops::resize(src, width, height, image::imageops::FilterType::Triangle),
        }
    }

    /// Scales `src` to fit a `size × size` canvas, aspect kept, centred on grey padding.
    pub fn letterbox(&mut self, src: &RgbImage, size: u32) -> (RgbImage, Letterbox) {
        self.letterbox_on(src, size, LETTERBOX_FILL)
    }

    /// [`Self::letterbox`] on padding of grey level `fill`.
    pub fn letterbox_on(&mut self, src: &RgbImage, size: u32, fill: u8) -> (RgbImage, Letterbox) {
        let lb = Letterbox::new(src.width(), src.height(), size);
        let scaled = self.squash(src, lb.scaled_width, lb.scaled_height);
        let mut canvas = RgbImage::from_pixel(size, size, image::Rgb([fill; 3]));
        image::imageops::replace(&mut canvas, &scaled, lb.pad_x as i64, lb.pad_y as i64);
        (canvas, lb)
    }

    /// The detail view of the experience network: a `size × size` crop from the image centre at
    /// native resolution, so noise, blur and compression artefacts are seen as they are, not
    /// averaged away by downscaling. Images smaller than `size` are squashed instead.
    ///
    /// The crop starts on the JPEG block grid ([`JPEG_GRID`]): block edges then fall at the same
    /// places of the network's input in every image, so compression artefacts look the same to
    /// it whatever the image's size, rather than at one of 256 phases.
    pub fn detail_crop(&mut self, src: &RgbImage, size: u32) -> RgbImage {
        let (w, h) = src.dimensions();
        if w < size || h < size {
            return self.squash(src, size, size);
        }
        let (x, y) = (on_jpeg_grid((w - size) / 2), on_jpeg_grid((h - size) / 2));
        image::imageops::crop_imm(src, x, y, size, size).to_image()
    }

    /// The background model's input: `3 × S × S` as [`InputSpec::background_view`] says; with
    /// [`InputSpec::background_blocks`] followed by the block planes ([`push_block_planes`]):
    /// `6 × S × S` with the medians, `9 × S × S` with the spreads too.
    pub fn background_input(&mut self, src: &RgbImage) -> Vec<f32> {
        let side = self.spec.background;
        let planes = 3 + self.spec.background_blocks.map_or(0, |b| b.count());
        let mut out = Vec::with_capacity((planes * side * side) as usize);
        let view = match self.spec.background_view {
            BackgroundView::Squash => self.squash(src, side, side),
            BackgroundView::LetterboxWhite => self.letterbox_on(src, side, 255).0,
        };
        push_chw(&view, &mut out);
        if let Some(blocks) = self.spec.background_blocks {
            push_block_planes(src, side, blocks, &mut out);
        }
        out
    }

    /// The background model's second-stage input: the image's
    /// [`backdrop_statistics`](crate::backdrop_statistics) if [`InputSpec::backdrop`] asks for
    /// them, else empty.
    pub fn backdrop_input(&self, src: &RgbImage) -> Vec<f32> {
        if self.spec.backdrop {
            crate::backdrop_statistics(src).to_vec()
        } else {
            Vec::new()
        }
    }

    /// The position network's input (letterboxed, `3 × S × S`) and its transform.
    pub fn position_input(&mut self, src: &RgbImage) -> (Vec<f32>, Letterbox) {
        let side = self.spec.position;
        let (canvas, letterbox) = self.letterbox(src, side);
        let mut out = Vec::with_capacity((3 * side * side) as usize);
        push_chw(&canvas, &mut out);
        (out, letterbox)
    }

    /// The experience network's input: the squash-resized image and the native-resolution
    /// detail crop side by side, `3 × S × 2S`.
    pub fn experience_input(&mut self, src: &RgbImage) -> Vec<f32> {
        let side = self.spec.experience;
        let mut pair = RgbImage::new(2 * side, side);
        image::imageops::replace(&mut pair, &self.squash(src, side, side), 0, 0);
        image::imageops::replace(&mut pair, &self.detail_crop(src, side), side as i64, 0);
        let mut out = Vec::with_capacity((6 * side * side) as usize);
        push_chw(&pair, &mut out);
        out
    }

    /// All three networks' inputs for one image.
    pub fn prepare(&mut self, src: &RgbImage) -> NetInputs {
        let (position, letterbox) = self.position_input(src);
        NetInputs {
            background: self.background_input(src),
            backdrop: self.backdrop_input(src),
            position,
            letterbox,
            experience: self.experience_input(src),
        }
    }
}

/// Side of a JPEG minimum coded unit with 4:2:0 chroma subsampling (two 8-px luma blocks):
/// crops that start at a multiple of it keep the file's block grid where the encoder put it.
pub const JPEG_GRID: u32 = 16;

/// `offset` rounded down to the JPEG block grid.
pub fn on_jpeg_grid(offset: u32) -> u32 {
    offset - offset % JPEG_GRID
}

/// Appends `side × side` planes of per-block statistics: in every `cell × cell` block, over the
/// source pixels that nearest-neighbour sampling of `src` to `side × side` picks for the block
/// (one native pixel per output pixel), each channel's median (R, G, B planes in `[0, 1]`) and,
/// with [`BlockPlanes::spread`], each channel's interquartile range (three more planes).
///
/// Why the median: the squash-resized view averages, and averaging is fooled exactly where the
/// background classes meet. Gaussian noise on a white (255) backdrop is clipped at 255, so a
/// thumbnail of it averages to ~247 under σ = 20 — the level of an off-white `solid` backdrop —
/// while the median of native pixels stays at ~255: at least half the noisy pixels are clipped
/// there. The median of untouched pixels is also blind to the few product pixels that stray into
/// a border block.
///
/// Why the spread: the median alone cannot tell a flat off-white backdrop of 246 from a white
/// one that noise and JPEG pulled down to a median of 246; the flat one's native pixels spread
/// over a level or two, the noisy one's over tens of levels — texture the thumbnail averages
/// away.
pub fn push_block_planes(src: &RgbImage, side: u32, blocks: BlockPlanes, out: &mut Vec<f32>) {
    let plane = (side * side) as usize;
    let start = out.len();
    out.resize(start + blocks.count() as usize * plane, 0.0);
    let (w, h) = src.dimensions();
    let cell = blocks.cell;
    if w == 0 || h == 0 || side == 0 || cell == 0 {
        return;
    }
    // Centre of output pixel `i` of `side`, mapped to a source index of `len`.
    let nearest = |i: u32, len: u32| {
        (((2 * u64::from(i) + 1) * u64::from(len)) / (2 * u64::from(side))).min(u64::from(len) - 1)
            as u32
    };
    let mut samples: [Vec<u8>; 3] = Default::default();
    for by in (0..side).step_by(cell as usize) {
        let rows = by..(by + cell).min(side);
        for bx in (0..side).step_by(cell as usize) {
            let cols = bx..(bx + cell).min(side);
            samples.iter_mut().for_each(Vec::clear);
            for y in rows.clone() {
                let sy = nearest(y, h);
                for x in cols.clone() {
                    let p = src.get_pixel(nearest(x, w), sy).0;
                    for (c, s) in samples.iter_mut().enumerate() {
                        s.push(p[c]);
                    }
                }
            }
            let mut fill = |index: usize, value: f32| {
                let channel = &mut out[start + index * plane..start + (index + 1) * plane];
                for y in rows.clone() {
                    let row = (y * side) as usize;
                    channel[row + cols.start as usize..row + cols.end as usize].fill(value);
                }
            };
            for (c, s) in samples.iter_mut().enumerate() {
                // Ranks n/4, n/2 and 3n/4 by selection, not a sort: the grader runs this per
                // image. Selecting the median partitions the block, so the quartiles are
                // selected within its halves.
                let (n, mid) = (s.len(), s.len() / 2);
                let (lower, median, upper) = s.select_nth_unstable(mid);
                let median = *median;
                fill(c, median as f32 / 255.0);
                if blocks.spread {
                    let q1 = if n / 4 < mid {
                        *lower.select_nth_unstable(n / 4).1
                    } else {
                        median
                    };
                    let q3 = match (3 * n / 4).checked_sub(mid + 1) {
                        Some(rank) => *upper.select_nth_unstable(rank).1,
                        None => median,
                    };
                    fill(3 + c, (q3 - q1) as f32 / 255.0);
                }
            }
        }
    }
}

/// Appends `img` as channel-major `f32` in `[0, 1]`.
pub fn push_chw(img: &RgbImage, out: &mut Vec<f32>) {
    let plane = (img.width() * img.height()) as usize;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    let (r, rest) = out[start..].split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, p) in img.pixels().enumerate() {
        r[i] = p.0[0] as f32 / 255.0;
        g[i] = p.0[1] as f32 / 255.0;
        b[i] = p.0[2] as f32 / 255.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const SPEC: InputSpec = InputSpec {
        background: 32,
        background_view: BackgroundView::Squash,
        background_blocks: None,
        backdrop: false,
        position: 64,
        experience: 48,
    };

    #[test]
    fn shapes_of_all_inputs() {
        let img = RgbImage::from_pixel(300, 100, Rgb([255, 0, 0]));
        let inputs = Preprocessor::new(SPEC).prepare(&img);
        assert_eq!(inputs.background.len(), 3 * 32 * 32);
        assert_eq!(inputs.position.len(), 3 * 64 * 64);
        assert_eq!(inputs.experience.len(), 3 * 48 * 96);
        assert!(inputs.background.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    /// The trunk's view: aspect kept, white padding, the photo centred.
    #[test]
    fn letterbox_white_view_pads_with_white() {
        let img = RgbImage::from_pixel(300, 100, Rgb([255, 0, 0]));
        let spec = InputSpec {
            background_view: BackgroundView::LetterboxWhite,
            ..SPEC
        };
        let input = Preprocessor::new(spec).background_input(&img);
        let plane = 32 * 32;
        let at = |c: usize, x: usize, y: usize| input[c * plane + y * 32 + x];
        // Top padding rows are white in every channel, the centre row is the red photo.
        assert_eq!([at(0, 16, 0), at(1, 16, 0), at(2, 16, 0)], [1.0; 3]);
        assert_eq!(
            [at(0, 16, 16), at(1, 16, 16), at(2, 16, 16)],
            [1.0, 0.0, 0.0]
        );
        assert_eq!(input.len(), 3 * plane);
    }

    /// Golden test of the median planes: a white backdrop under clipped noise keeps median 255
    /// while its thumbnail darkens; each block carries its own median; a stray dark pixel in a
    /// block does not move it.
    #[test]
    fn median_planes_see_through_clipped_noise() {
        let (w, h) = (256u32, 128u32);
        // Left half: white with "noise" that darkens every third pixel by 60 (the clipped half
        // of the noise pushes nothing above 255). Right half: off-white 240, one black pixel.
        let img = RgbImage::from_fn(w, h, |x, y| {
            if x < w / 2 {
                Rgb([if (x + y) % 3 == 0 { 195 } else { 255 }; 3])
            } else if (x, y) == (204, 62) {
                Rgb([0; 3])
            } else {
                Rgb([240; 3])
            }
        });
        let spec = InputSpec {
            background_blocks: Some(BlockPlanes {
                cell: 8,
                spread: false,
            }),
            ..SPEC
        };
        let input = Preprocessor::new(spec).background_input(&img);
        let plane = 32 * 32;
        assert_eq!(input.len(), 6 * plane);
        for c in 0..3 {
            let medians = &input[(3 + c) * plane..(4 + c) * plane];
            for y in 0..32 {
                for x in 0..32 {
                    let want = if x < 16 { 1.0 } else { 240.0 / 255.0 };
                    assert!((medians[y * 32 + x] - want).abs() < 1e-6, "({x}, {y}) c{c}");
                }
            }
        }
        // The averaging thumbnail of the noisy white half is darker than 250.
        let thumb_left = input[..plane]
            .chunks(32)
            .map(|row| row[..16].iter().sum::<f32>() / 16.0)
            .sum::<f32>()
            / 32.0;
        assert!(
            thumb_left * 255.0 < 240.0,
            "thumbnail {}",
            thumb_left * 255.0
        );
    }

    /// Golden test of the spread planes: a flat off-white block spreads over nothing, a white
    /// one with every third pixel darkened by 60 over those 60 levels — although the medians of
    /// a noisier white could match the flat one's.
    #[test]
    fn spread_planes_tell_a_flat_backdrop_from_a_noisy_one() {
        let img = RgbImage::from_fn(64, 32, |x, y| {
            if x >= 32 {
                Rgb([246, 247, 248])
            } else if (x + y) % 3 == 0 {
                Rgb([195; 3])
            } else {
                Rgb([255; 3])
            }
        });
        let spec = InputSpec {
            background_blocks: Some(BlockPlanes {
                cell: 16,
                spread: true,
            }),
            ..SPEC
        };
        let input = Preprocessor::new(spec).background_input(&img);
        let plane = 32 * 32;
        assert_eq!(input.len(), 9 * plane);
        for c in 0..3 {
            let medians = &input[(3 + c) * plane..(4 + c) * plane];
            let spreads = &input[(6 + c) * plane..(7 + c) * plane];
            for y in 0..32 {
                for x in 0..32 {
                    let (median, spread) = if x < 16 {
                        (255.0, 60.0)
                    } else {
                        (246.0 + c as f32, 0.0)
                    };
                    let i = y * 32 + x;
                    assert!(
                        (medians[i] * 255.0 - median).abs() < 1e-3,
                        "({x}, {y}) c{c}"
                    );
                    assert!(
                        (spreads[i] * 255.0 - spread).abs() < 1e-3,
                        "({x}, {y}) c{c}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// The selections give each block's sorted ranks n/2, n/4 and 3n/4 — down to blocks of
        /// one pixel. An image of the input's size samples every pixel once, so a block's
        /// samples are its pixels.
        #[test]
        fn block_planes_match_sorted_ranks(
            side in 1u32..24,
            cell in 1u32..9,
            pixels in proptest::collection::vec(proptest::prelude::any::<u8>(), 3 * 24 * 24),
        ) {
            let img = RgbImage::from_fn(side, side, |x, y| {
                let i = 3 * (y * side + x) as usize;
                Rgb([pixels[i], pixels[i + 1], pixels[i + 2]])
            });
            let mut out = Vec::new();
            push_block_planes(&img, side, BlockPlanes { cell, spread: true }, &mut out);
            let plane = (side * side) as usize;
            proptest::prop_assert_eq!(out.len(), 6 * plane);
            for y in 0..side {
                for x in 0..side {
                    let (bx, by) = (x - x % cell, y - y % cell);
                    for c in 0..3 {
                        let mut block: Vec<u8> = (by..(by + cell).min(side))
                            .flat_map(|v| (bx..(bx + cell).min(side)).map(move |u| (u, v)))
                            .map(|(u, v)| img.get_pixel(u, v).0[c])
                            .collect();
                        block.sort_unstable();
                        let n = block.len();
                        let i = (y * side + x) as usize;
                        proptest::prop_assert_eq!(out[c * plane + i], block[n / 2] as f32 / 255.0);
                        proptest::prop_assert_eq!(
                            out[(3 + c) * plane + i],
                            (block[3 * n / 4] - block[n / 4]) as f32 / 255.0
                        );
                    }
                }
            }
        }
    }

    /// Blocks that do not divide the side, and images smaller than the input, still fill every
    /// plane value with a source colour.
    #[test]
    fn median_planes_cover_ragged_blocks_and_small_images() {
        let img = RgbImage::from_fn(5, 3, |x, _| Rgb([(x * 50) as u8, 7, 9]));
        let mut out = Vec::new();
        let blocks = BlockPlanes {
            cell: 6,
            spread: false,
        };
        push_block_planes(&img, 20, blocks, &mut out);
        assert_eq!(out.len(), 3 * 400);
        let reds: Vec<u8> = (0..5).map(|x| (x * 50) as u8).collect();
        assert!(
            out[..400]
                .iter()
                .all(|v| reds.iter().any(|r| (*r as f32 / 255.0 - v).abs() < 1e-6))
        );
        assert!(out[400..800].iter().all(|v| (v - 7.0 / 255.0).abs() < 1e-6));
    }

    /// Golden test: a uniform colour survives resizing exactly, and the letterbox puts the
    /// image where its transform says, grey elsewhere.
    #[test]
    fn letterbox_places_image_and_padding() {
        let img = RgbImage::from_pixel(200, 100, Rgb([10, 200, 30]));
        let mut pre = Preprocessor::new(SPEC);
        let (canvas, lb) = pre.letterbox(&img, 64);
        assert_eq!(
            (lb.scaled_width, lb.scaled_height, lb.pad_x, lb.pad_y),
            (64, 32, 0, 16)
        );
        assert_eq!(canvas.get_pixel(32, 5).0, [LETTERBOX_FILL; 3]);
        assert_eq!(canvas.get_pixel(32, 60).0, [LETTERBOX_FILL; 3]);
        assert_eq!(canvas.get_pixel(32, 32).0, [10, 200, 30]);
        assert_eq!(canvas.get_pixel(0, 16).0, [10, 200, 30]);
    }

    /// Golden test with tolerance: a left-black / right-white image keeps its halves after a
    /// 4× downscale, with at most one blended column at the edge.
    #[test]
    fn squash_keeps_layout_within_tolerance() {
        let mut img = RgbImage::from_pixel(400, 100, Rgb([255, 255, 255]));
        for x in 0..200 {
            for y in 0..100 {
                img.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
        let out = Preprocessor::new(SPEC).squash(&img, 100, 25);
        for y in 0..25 {
            for x in 0..100 {
                let v = out.get_pixel(x, y).0[0] as i32;
                let expected = if x < 50 { 0 } else { 255 };
                if x != 49 && x != 50 {
                    assert!((v - expected).abs() <= 2, "({x},{y}) = {v}");
                }
            }
        }
    }

    #[test]
    fn detail_crop_is_native_resolution_centre() {
        // Centre offset (100 − 10) / 2 = 45 starts on the block grid at 32.
        let mut img = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
        img.put_pixel(37, 37, Rgb([255, 255, 255]));
        let crop = Preprocessor::new(SPEC).detail_crop(&img, 10);
        assert_eq!(crop.dimensions(), (10, 10));
        assert_eq!(crop.get_pixel(5, 5).0, [255, 255, 255]);
        // 800 px: (800 − 160) / 2 = 320 is on the grid already.
        let mut big = RgbImage::from_pixel(800, 800, Rgb([0, 0, 0]));
        big.put_pixel(320, 320, Rgb([255, 255, 255]));
        assert_eq!(
            Preprocessor::new(SPEC)
                .detail_crop(&big, 160)
                .get_pixel(0, 0)
                .0,
            [255, 255, 255]
        );
        let small = RgbImage::from_pixel(5, 5, Rgb([9, 9, 9]));
        assert_eq!(
            Preprocessor::new(SPEC)
                .detail_crop(&small, 10)
                .get_pixel(3, 3)
                .0,
            [9, 9, 9]
        );
    }

    #[test]
    fn offsets_round_down_to_the_jpeg_grid() {
        assert_eq!(on_jpeg_grid(0), 0);
        assert_eq!(on_jpeg_grid(15), 0);
        assert_eq!(on_jpeg_grid(16), 16);
        assert_eq!(on_jpeg_grid(242), 240);
    }

    #[test]
    fn one_pixel_image_prepares() {
        let img = RgbImage::from_pixel(1, 1, Rgb([7, 8, 9]));
        let inputs = Preprocessor::new(SPEC).prepare(&img);
        assert_eq!(inputs.position.len(), 3 * 64 * 64);
        assert_eq!(inputs.letterbox.scaled_width, 64);
    }
}
