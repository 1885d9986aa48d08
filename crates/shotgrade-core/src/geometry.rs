//! Boxes, overlap, non-maximum suppression and the letterbox mapping between an original image
//! and the square input of the position network.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixel coordinates, corners `(x0, y0)` (inclusive) to `(x1, y1)`
/// (exclusive), so a box covering a whole `w × h` image is `(0, 0, w, h)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    /// A box from its corners; corners given in the wrong order are swapped.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        BBox {
            x0: x0.min(x1),
            y0: y0.min(y1),
            x1: x0.max(x1),
            y1: y0.max(y1),
        }
    }

    /// A box from its centre and size.
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// The part of the box inside a `width × height` frame.
    pub fn clamp_to(&self, width: f32, height: f32) -> BBox {
        BBox {
            x0: self.x0.clamp(0.0, width),
            y0: self.y0.clamp(0.0, height),
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
        }
    }

    /// Whether all four coordinates are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.x0.is_finite() && self.y0.is_finite() && self.x1.is_finite() && self.y1.is_finite()
    }
}

/// Intersection over union of two boxes, in `[0, 1]`; 0 when either box is empty.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let ix = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let iy = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 || !union.is_finite() {
        return 0.0;
    }
    (inter / union).clamp(0.0, 1.0)
}

/// The letterbox transform: the source image scaled by `scale` (aspect kept) and centred on a
/// `size × size` canvas with padding `pad_x`, `pad_y`. The position network sees the canvas; the
/// inverse maps its boxes back to original pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub source_width: u32,
    pub source_height: u32,
    pub size: u32,
    pub scale: f32,
    /// Width and height of the scaled image on the canvas.
    pub scaled_width: u32,
    pub scaled_height: u32,
    pub pad_x: u32,
    pub pad_y: u32,
}

impl Letterbox {
    /// The transform for a `source_width × source_height` image onto a `size × size` canvas.
    /// Zero-sized sources are treated as 1 px so the transform is always defined.
    pub fn new(source_width: u32, source_height: u32, size: u32) -> Self {
        let (sw, sh) = (source_width.max(1), source_height.max(1));
        let scale = size as f32 / sw.max(sh) as f32;
        let scaled_width = ((sw as f32 * scale).round() as u32).clamp(1, size);
        let scaled_height = ((sh as f32 * scale).round() as u32).clamp(1, size);
        Letterbox {
            source_width: sw,
            source_height: sh,
            size,
            scale,
            scaled_width,
            scaled_height,
            pad_x: (size - scaled_width) / 2,
            pad_y: (size - scaled_height) / 2,
        }
    }

    /// Maps a box from canvas pixels back to original-image pixels, clamped to the image.
    pub fn to_source(&self, b: &BBox) -> BBox {
        let sx = self.source_width as f32 / self.scaled_width as f32;
        let sy = self.source_height as f32 / self.scaled_height as f32;
        BBox::new(
            (b.x0 - self.pad_x as f32) * sx,
            (b.y0 - self.pad_y as f32) * sy,
            (b.x1 - self.pad_x as f32) * sx,
            (b.y1 - self.pad_y as f32) * sy,
        )
        .clamp_to(self.source_width as f32, self.source_height as f32)
    }

    /// Maps a box from original-image pixels onto the canvas (used to make training targets).
    pub fn to_canvas(&self, b: &BBox) -> BBox {
        let sx = self.scaled_width as f32 / self.source_width as f32;
        let sy = self.scaled_height as f32 / self.source_height as f32;
        BBox::new(
            b.x0 * sx + self.pad_x as f32,
            b.y0 * sy + self.pad_y as f32,
            b.x1 * sx + self.pad_x as f32,
            b.y1 * sy + self.pad_y as f32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iou_known_values() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &BBox::new(10.0, 10.0, 20.0, 20.0)), 0.0);
        let half = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((iou(&a, &half) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou(&a, &BBox::new(3.0, 3.0, 3.0, 9.0)), 0.0);
    }

    #[test]
    fn letterbox_landscape_round_trip() {
        let lb = Letterbox::new(1000, 500, 256);
        assert_eq!((lb.scaled_width, lb.scaled_height), (256, 128));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 64));
        let b = BBox::new(100.0, 50.0, 900.0, 450.0);
        let back = lb.to_source(&lb.to_canvas(&b));
        for (p, q) in [
            (back.x0, b.x0),
            (back.y0, b.y0),
            (back.x1, b.x1),
            (back.y1, b.y1),
        ] {
            assert!((p - q).abs() < 0.5, "{back:?} vs {b:?}");
        }
        // Padding maps outside the image and is clamped away.
        let pad = lb.to_source(&BBox::new(0.0, 0.0, 256.0, 64.0));
        assert_eq!(pad.area(), 0.0);
    }

    fn any_box() -> impl Strategy<Value = BBox> {
        (-50f32..500.0, -50f32..500.0, 0f32..400.0, 0f32..400.0)
            .prop_map(|(x, y, w, h)| BBox::new(x, y, x + w, y + h))
    }

    proptest! {
        #[test]
        fn iou_in_unit_interval_and_symmetric(a in any_box(), b in any_box()) {
            let v = iou(&a, &b);
            prop_assert!((0.0..=1.0).contains(&v));
            prop_assert!((v - iou(&b, &a)).abs() < 1e-6);
        }

        #[test]
        fn letterbox_inverse_stays_in_image(
            w in 1u32..5000, h in 1u32..5000, b in any_box(),
        ) {
            let lb = Letterbox::new(w, h, 256);
            prop_assert!(lb.pad_x * 2 + lb.scaled_width <= 256);
            prop_assert!(lb.pad_y * 2 + lb.scaled_height <= 256);
            let s = lb.to_source(&b);
            prop_assert!(s.x0 >= 0.0 && s.y0 >= 0.0);
            prop_assert!(s.x1 <= w as f32 && s.y1 <= h as f32);
        }
    }
}
