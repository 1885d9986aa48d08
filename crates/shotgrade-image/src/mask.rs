//! Hiding the main product from the background network, so that its class is read from the
//! backdrop: on the real photos, garments that fill the frame and patterned products were
//! classed by their own texture (`lifestyle`, `cluttered`) instead of the white or grey behind
//! them.

/// Share of the input that must lie outside the box for masking to leave a backdrop to read;
/// with less, the input is left as it is.
pub const MIN_BACKDROP_SHARE: f32 = 0.08;

/// Fills the box `[x0, y0, x1, y1]` (fractions of the image's width and height) in every plane
/// of a `planes × side × side` input with that plane's median outside the box — the backdrop's
/// typical value, so the masked input looks like a backdrop with nothing on it. Returns whether
/// it masked: not when the box covers so much that less than [`MIN_BACKDROP_SHARE`] is left,
/// or when the input has another size.
pub fn mask_box(input: &mut [f32], planes: usize, side: usize, bbox: [f32; 4]) -> bool {
    mask_box_within(input, planes, side, bbox, [0.0, 0.0, 1.0, 1.0])
}

/// [`mask_box`] for an input whose photo covers only `region` (fractions of the input; a
/// letterboxed photo between its padding): the median and the share left are taken over the
/// photo's pixels outside the box, never over the padding.
pub fn mask_box_within(
    input: &mut [f32],
    planes: usize,
    side: usize,
    bbox: [f32; 4],
    region: [f32; 4],
) -> bool {
    if side == 0 || input.len() != planes * side * side {
        return false;
    }
    let to_px = |v: f32, round_up: bool| {
        let p = v.clamp(0.0, 1.0) * side as f32;
        (if round_up { p.ceil() } else { p.floor() }) as usize
    };
    let (x0, y0) = (to_px(bbox[0], false), to_px(bbox[1], false));
    let (x1, y1) = (to_px(bbox[2], true), to_px(bbox[3], true));
    let (rx0, ry0) = (to_px(region[0], false), to_px(region[1], false));
    let (rx1, ry1) = (to_px(region[2], true), to_px(region[3], true));
    if x1 <= x0 || y1 <= y0 || rx1 <= rx0 || ry1 <= ry0 {
        return false;
    }
    let in_region = |i: usize| {
        let (x, y) = (i % side, i / side);
        (rx0..rx1).contains(&x) && (ry0..ry1).contains(&y)
    };
    let in_box = |i: usize| {
        let (x, y) = (i % side, i / side);
        (x0..x1).contains(&x) && (y0..y1).contains(&y)
    };
    let photo = (rx1 - rx0) * (ry1 - ry0);
    let outside = (0..side * side)
        .filter(|&i| in_region(i) && !in_box(i))
        .count();
    if outside == 0 || (outside as f32) < MIN_BACKDROP_SHARE * photo as f32 {
        return false;
    }
    for plane in input.chunks_exact_mut(side * side) {
        let mut rest: Vec<f32> = plane
            .iter()
            .enumerate()
            .filter(|&(i, _)| in_region(i) && !in_box(i))
            .map(|(_, &v)| v)
            .collect();
        let mid = rest.len() / 2;
        let (_, &mut median, _) = rest.select_nth_unstable_by(mid, f32::total_cmp);
        for (i, v) in plane.iter_mut().enumerate() {
            if in_box(i) && in_region(i) {
                *v = median;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 4 × 4 planes: a backdrop of 0.9 (plane 0) and 0.2 (plane 1) with a 2 × 2 product of
    /// 0.1 / 0.7 in the middle.
    fn input() -> Vec<f32> {
        let mut v = Vec::new();
        for (bg, fg) in [(0.9, 0.1), (0.2, 0.7)] {
            for i in 0..16 {
                let (x, y) = (i % 4, i / 4);
                v.push(if (1..3).contains(&x) && (1..3).contains(&y) {
                    fg
                } else {
                    bg
                });
            }
        }
        v
    }

    #[test]
    fn the_box_takes_each_planes_backdrop_value() {
        let mut v = input();
        assert!(mask_box(&mut v, 2, 4, [0.25, 0.25, 0.75, 0.75]));
        assert!(v[..16].iter().all(|&x| x == 0.9), "{v:?}");
        assert!(v[16..].iter().all(|&x| x == 0.2), "{v:?}");
    }

    #[test]
    fn box_edges_round_outwards_so_the_product_is_covered() {
        let mut v = input();
        // A box a little inside the product's pixels still hides all of them.
        assert!(mask_box(&mut v, 2, 4, [0.3, 0.3, 0.7, 0.7]));
        assert!(v[..16].iter().all(|&x| x == 0.9));
    }

    /// A letterboxed input: white padding rows above and below a dark photo. The box takes the
    /// photo's backdrop, not the padding's white, and the padding stays as it is.
    #[test]
    fn within_a_region_the_padding_neither_votes_nor_is_painted() {
        // 4 × 4, rows 0 and 3 padding (1.0), rows 1–2 the photo: backdrop 0.2, product 0.6.
        let mut v: Vec<f32> = (0..16)
            .map(|i| match (i % 4, i / 4) {
                (_, 0) | (_, 3) => 1.0,
                (1, _) | (2, _) => 0.6,
                _ => 0.2,
            })
            .collect();
        let before = v.clone();
        assert!(mask_box_within(
            &mut v,
            1,
            4,
            [0.25, 0.0, 0.75, 1.0],
            [0.0, 0.25, 1.0, 0.75]
        ));
        for (i, (a, b)) in v.iter().zip(&before).enumerate() {
            let (x, y) = (i % 4, i / 4);
            let expected = if (1..3).contains(&y) && (1..3).contains(&x) {
                0.2
            } else {
                *b
            };
            assert_eq!(*a, expected, "pixel {x},{y}");
        }
        // A box over the whole photo leaves nothing of it to read: no masking.
        assert!(!mask_box_within(
            &mut v,
            1,
            4,
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 0.25, 1.0, 0.75]
        ));
    }

    #[test]
    fn a_box_over_nearly_everything_or_a_wrong_size_leaves_the_input_alone() {
        let mut v = input();
        assert!(!mask_box(&mut v, 2, 4, [0.0, 0.0, 1.0, 0.99]));
        assert!(!mask_box(&mut v, 3, 4, [0.25, 0.25, 0.75, 0.75]));
        assert!(!mask_box(&mut v, 2, 4, [0.6, 0.6, 0.4, 0.4]));
        assert_eq!(v, input());
    }
}
