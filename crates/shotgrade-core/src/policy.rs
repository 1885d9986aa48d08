//! The scoring policy: from model outputs to sub-scores, the total and reasons.
//!
//! * **Background** (S120): the expected table score under the network's class probabilities,
//!   `Σ p(c) · table[scene][c]`. Using the expectation rather than the top class makes the score
//!   move smoothly when the network hesitates between, say, white and off-white solid.
//! * **Position** (S130, claim 7), from the most probable detection:
//!   `layout = s_f · fill_q + (1 − s_f) · centre_q`, where `fill_q` is 1 inside the ideal fill
//!   band, falls linearly to 0 at `fill_floor` below it and to `fill_at_full_frame` above it, and
//!   `centre_q` is 1 up to `centre_tolerance` of centre offset and falls linearly to 0 at
//!   `centre_zero`;
//!   `raw = 100 · layout · (1 − cut_penalty_per_side · sides_touched) ·
//!   (1 − non_subject_penalty · (1 − p_subject))`;
//!   the coordinate probability `p` then blends towards `uncertain_score`:
//!   `position = c · raw + (1 − c) · uncertain_score` with `c = min(1, p / confident_probability)`.
//!   No detection above `min_probability` gives `no_product_score`.
//! * **Visual** (claim 5): `(w_a · aesthetic + w_n · noise) / (w_a + w_n)`.
//! * **Total** (S150): the weighted mean of the three sub-scores.
//!
//! Every sub-score is clamped to 0–100 and every loss adds a [`Reason`] whose `points` is the
//! loss weighted by that sub-score's share of the total.

use std::collections::BTreeMap;

use crate::config::{ConfigError, PositionPolicy, SceneTable, ScoringConfig};
use crate::report::{
    BackgroundVerdict, ImageFacts, MainProduct, PositionVerdict, Reason, Report, Scores,
};
use crate::types::{BACKGROUND_CLASSES, BackgroundClass, Detection};

/// Deductions smaller than this (in points of the total) get no reason.
const MIN_REASON_POINTS: f32 = 0.25;

/// Below this aesthetic or cleanliness sub-score the visual reasons say "fix this" rather than
/// "room to improve".
const VISUAL_CONCERN: f32 = 70.0;

/// What the three networks said about one image, in original-image coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutputs {
    /// Softmax probabilities in [`BACKGROUND_CLASSES`] order.
    pub background_probabilities: [f32; 5],
    /// Detections after NMS, most probable first.
    pub detections: Vec<Detection>,
    /// Aesthetic head, 0–100.
    pub aesthetic: f32,
    /// Noise (cleanliness) head, 0–100.
    pub noise: f32,
}

/// Scores one image. Fails only for an unknown scene.
pub fn score(
    outputs: &ModelOutputs,
    facts: &ImageFacts,
    scene: &str,
    config: &ScoringConfig,
) -> Result<Report, ConfigError> {
    let table = config.scene(scene)?;
    let w = config.weights;
    let weight_sum = w.background + w.position + w.visual;
    let share = |x: f32| x / weight_sum;
    let mut reasons = Vec::new();

    let background = background_verdict(&outputs.background_probabilities);
    let bg_score = clamp_score(
        BACKGROUND_CLASSES
            .iter()
            .map(|c| background.probabilities[c] * table.score(*c))
            .sum(),
    );
    background_reasons(
        &background,
        bg_score,
        table,
        scene,
        facts,
        share(w.background),
        &mut reasons,
    );

    let (position, pos_score) = position_score(
        &outputs.detections,
        facts,
        &config.position,
        share(w.position),
        &mut reasons,
    );

    let aesthetic = clamp_score(outputs.aesthetic);
    let noise = clamp_score(outputs.noise);
    let vw = config.visual;
    let vis_sum = vw.aesthetic + vw.noise;
    let visual = clamp_score((vw.aesthetic * aesthetic + vw.noise * noise) / vis_sum);
    let vis_share = share(w.visual);
    // Every visual deduction gets a reason; the advice sharpens below `VISUAL_CONCERN`.
    if aesthetic < 100.0 {
        let message = if aesthetic < VISUAL_CONCERN {
            format!(
                "the photo looks unappealing (aesthetic {aesthetic:.0}/100): improve composition, \
                 lighting and contrast between product and background"
            )
        } else {
            format!(
                "aesthetic {aesthetic:.0}/100: composition, colour harmony and product contrast \
                 leave a little room"
            )
        };
        reasons.push(reason(
            "visual",
            "weak_aesthetics",
            message,
            (100.0 - aesthetic) * vw.aesthetic / vis_sum * vis_share,
        ));
    }
    if noise < 100.0 {
        let low_quality = facts.jpeg_quality.filter(|&q| q < LOW_JPEG_QUALITY);
        let message = if let Some(q) = low_quality {
            format!(
                "cleanliness {noise:.0}/100, and the JPEG was saved at quality {q}: export it again \
                 from the original at quality {RECOMMENDED_JPEG_QUALITY} or more"
            )
        } else if noise < VISUAL_CONCERN {
            format!(
                "the photo looks noisy, blurred or over-compressed (cleanliness {noise:.0}/100): \
                 use more light, a steady camera and a higher JPEG quality"
            )
        } else {
            format!(
                "cleanliness {noise:.0}/100: slight noise, softness or compression; a sharper, \
                 better-lit shot or a higher JPEG quality would help"
            )
        };
        reasons.push(reason(
            "visual",
            "noisy_or_blurred",
            message,
            (100.0 - noise) * vw.noise / vis_sum * vis_share,
        ));
    }

    let total = clamp_score(
        share(w.background) * bg_score + share(w.position) * pos_score + vis_share * visual,
    );
    // Crumbs below a quarter point are nothing a seller can act on.
    reasons.retain(|r| r.points >= MIN_REASON_POINTS);
    reasons.sort_by(|a, b| b.points.total_cmp(&a.points));
    Ok(Report {
        scene: scene.to_string(),
        scores: Scores {
            total,
            background: bg_score,
            position: pos_score,
            visual,
            aesthetic,
            noise,
        },
        background,
        position,
        reasons,
        profile: None,
    })
}

/// JPEG quality below which the cleanliness reason names the file's compression: under it,
/// block artefacts are visible on product edges and text.
pub const LOW_JPEG_QUALITY: u8 = 75;
/// The export quality the advice asks for.
pub const RECOMMENDED_JPEG_QUALITY: u8 = 85;

fn clamp_score(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 100.0) }
}

fn reason(component: &str, code: &str, message: String, points: f32) -> Reason {
    Reason {
        component: component.to_string(),
        code: code.to_string(),
        message,
        points: (points.max(0.0) * 10.0).round() / 10.0,
    }
}

/// Normalises the probabilities (defensively: the network's softmax already sums to 1) and
/// picks the most probable class, the first one on ties.
/// The background class and probabilities the report gives for the model's five outputs
/// (cleaned of non-finite values and renormalised).
pub fn background_verdict(probabilities: &[f32; 5]) -> BackgroundVerdict {
    let clean: Vec<f32> = probabilities
        .iter()
        .map(|p| if p.is_finite() { p.max(0.0) } else { 0.0 })
        .collect();
    let sum: f32 = clean.iter().sum();
    let probs: Vec<f32> = if sum > 0.0 {
        clean.iter().map(|p| p / sum).collect()
    } else {
        vec![0.2; 5]
    };
    let mut best = 0;
    for (i, p) in probs.iter().enumerate() {
        if *p > probs[best] {
            best = i;
        }
    }
    BackgroundVerdict {
        class: BACKGROUND_CLASSES[best],
        probability: probs[best],
        probabilities: BACKGROUND_CLASSES
            .iter()
            .copied()
            .zip(probs.iter().copied())
            .collect::<BTreeMap<_, _>>(),
    }
}

fn background_reasons(
    verdict: &BackgroundVerdict,
    score: f32,
    table: &SceneTable,
    scene: &str,
    facts: &ImageFacts,
    share: f32,
    reasons: &mut Vec<Reason>,
) {
    let loss = 100.0 - score;
    if loss <= 0.5 {
        return;
    }
    let best = table.best_class();
    let [r, g, b] = facts.border_rgb;
    let colour = if r.abs_diff(g) <= 6 && g.abs_diff(b) <= 6 {
        format!("grey RGB {r}")
    } else {
        format!("RGB {r},{g},{b}")
    };
    let (code, message) = match verdict.class {
        BackgroundClass::Cluttered => (
            "cluttered_background",
            format!(
                "the background is cluttered and competes with the product; for {scene} products a {best} background scores best"
            ),
        ),
        BackgroundClass::Solid if best == BackgroundClass::White && r.min(g).min(b) >= 200 => (
            "background_not_white",
            format!("the background is light ({colour} at the border), not pure white (RGB 255)"),
        ),
        c => (
            "background_class",
            format!(
                "the background looks {c} ({:.0} % sure, {colour} at the border); for {scene} products a {best} background scores best",
                verdict.probability * 100.0
            ),
        ),
    };
    reasons.push(reason("background", code, message, loss * share));
}

/// Fill quality from the fill share, per the module docs.
fn fill_quality(fill: f32, p: &PositionPolicy) -> f32 {
    if fill <= p.fill_floor {
        0.0
    } else if fill < p.fill_min {
        (fill - p.fill_floor) / (p.fill_min - p.fill_floor)
    } else if fill <= p.fill_max || p.fill_max >= 1.0 {
        1.0
    } else {
        1.0 - (1.0 - p.fill_at_full_frame) * ((fill - p.fill_max) / (1.0 - p.fill_max)).min(1.0)
    }
}

/// Centring quality from the centre offset, per the module docs.
fn centre_quality(offset: f32, p: &PositionPolicy) -> f32 {
    1.0 - ((offset - p.centre_tolerance) / (p.centre_zero - p.centre_tolerance)).clamp(0.0, 1.0)
}

fn position_score(
    detections: &[Detection],
    facts: &ImageFacts,
    p: &PositionPolicy,
    share: f32,
    reasons: &mut Vec<Reason>,
) -> (PositionVerdict, f32) {
    let usable: Vec<&Detection> = detections
        .iter()
        .filter(|d| d.probability >= p.min_probability && d.bbox.is_finite())
        .collect();
    // The first of the most probable: detections come most probable first, and the grader
    // snaps the first one's box to the pixels, so ties must resolve to it.
    let Some(main) = usable.iter().copied().reduce(|best, d| {
        if d.probability.total_cmp(&best.probability).is_gt() {
            d
        } else {
            best
        }
    }) else {
        reasons.push(reason(
            "position",
            "no_product",
            "no product was found: show one product clearly, in the middle of the frame".into(),
            (100.0 - p.no_product_score) * share,
        ));
        return (
            PositionVerdict {
                main: None,
                detections: 0,
                other_products: 0,
            },
            p.no_product_score,
        );
    };

    let (w, h) = (facts.width.max(1) as f32, facts.height.max(1) as f32);
    let bbox = main.bbox.clamp_to(w, h);
    let fill = (bbox.area() / (w * h)).clamp(0.0, 1.0);
    let (cx, cy) = bbox.center();
    let (dx, dy) = ((cx / w - 0.5) * 2.0, (cy / h - 0.5) * 2.0);
    let centre_offset = dx.abs().max(dy.abs()).min(1.0);
    let (mx, my) = (p.edge_margin * w, p.edge_margin * h);
    let touches: Vec<String> = [
        ("left", bbox.x0 <= mx),
        ("top", bbox.y0 <= my),
        ("right", bbox.x1 >= w - mx),
        ("bottom", bbox.y1 >= h - my),
    ]
    .into_iter()
    .filter(|(_, t)| *t)
    .map(|(s, _)| s.to_string())
    .collect();

    let fill_q = fill_quality(fill, p);
    let centre_q = centre_quality(centre_offset, p);
    let layout = p.fill_share * fill_q + (1.0 - p.fill_share) * centre_q;
    // Touching the frame is cut off only where the detector doubts the product is whole.
    let cut_off = !touches.is_empty() && main.subject_probability < p.cut_off_below_subject;
    let cut_sides = if cut_off { touches.len() } else { 0 };
    let cut_factor = (1.0 - p.cut_penalty_per_side * cut_sides as f32).max(0.0);
    let subject_factor =
        1.0 - p.non_subject_penalty * (1.0 - main.subject_probability.clamp(0.0, 1.0));
    let raw = 100.0 * layout * cut_factor * subject_factor;
    let confidence = (main.probability / p.confident_probability).clamp(0.0, 1.0);
    let score = clamp_score(confidence * raw + (1.0 - confidence) * p.uncertain_score);

    // Attribute the loss to its causes, in proportion to each factor's own loss, so the points
    // of the position reasons add up to the position loss.
    let scale = share * (100.0 - score).max(0.0);
    let losses = [
        p.fill_share * (1.0 - fill_q),
        (1.0 - p.fill_share) * (1.0 - centre_q),
        1.0 - cut_factor,
        1.0 - subject_factor,
        1.0 - confidence,
    ];
    let total_loss: f32 = losses.iter().sum::<f32>().max(1e-6);
    let part = |i: usize| scale * losses[i] / total_loss;
    let pct = |x: f32| x * 100.0;
    if fill_q < 1.0 {
        let (code, msg) = if fill < p.fill_min {
            (
                "product_small",
                format!(
                    "the product fills {:.0} % of the frame; aim for {:.0}–{:.0} %: crop closer or shoot nearer",
                    pct(fill),
                    pct(p.fill_min),
                    pct(p.fill_max)
                ),
            )
        } else {
            (
                "product_too_large",
                format!(
                    "the product fills {:.0} % of the frame; aim for {:.0}–{:.0} % and leave a margin",
                    pct(fill),
                    pct(p.fill_min),
                    pct(p.fill_max)
                ),
            )
        };
        reasons.push(reason("position", code, msg, part(0)));
    }
    if centre_q < 1.0 {
        let horizontal = if dx < 0.0 { "left" } else { "right" };
        let vertical = if dy < 0.0 { "top" } else { "bottom" };
        let side = if dx.abs() >= dy.abs() {
            horizontal
        } else {
            vertical
        };
        reasons.push(reason(
            "position",
            "off_centre",
            format!(
                "the product sits {:.0} % off centre towards the {side}: centre it in the frame",
                pct(centre_offset) / 2.0
            ),
            part(1),
        ));
    }
    if cut_off {
        reasons.push(reason(
            "position",
            "product_cut_off",
            format!(
                "the product touches the {} border{}: show the whole product with a margin",
                touches.join(" and "),
                if touches.len() > 1 { "s" } else { "" }
            ),
            part(2),
        ));
    }
    if subject_factor < 1.0 {
        let sure = pct(main.subject_probability);
        let message = if main.subject_probability < 0.5 {
            format!(
                "the product does not hold the subject position ({sure:.0} % sure it does): make it the clear main subject"
            )
        } else {
            format!(
                "the product is probably the main subject ({sure:.0} % sure): a clearer, more central placement removes the doubt"
            )
        };
        reasons.push(reason("position", "not_main_subject", message, part(3)));
    }
    if confidence < 1.0 {
        reasons.push(reason(
            "position",
            "product_unclear",
            format!(
                "the product is hard to make out ({:.0} % detection confidence): separate it from the background",
                pct(main.probability)
            ),
            part(4),
        ));
    }
    let verdict = PositionVerdict {
        main: Some(MainProduct {
            category: main.category(),
            bbox,
            probability: main.probability,
            subject_probability: main.subject_probability,
            fill,
            centre_offset,
            touches,
        }),
        detections: usable.len(),
        other_products: usable
            .iter()
            .filter(|d| !std::ptr::eq(**d, main) && d.bbox.area() >= 0.25 * main.bbox.area())
            .count(),
    };
    (verdict, score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;
    use proptest::prelude::*;

    fn facts(w: u32, h: u32) -> ImageFacts {
        ImageFacts {
            width: w,
            height: h,
            format: "jpeg".into(),
            file_bytes: 1000,
            has_alpha: false,
            transparent_fraction: 0.0,
            border_rgb: [255, 255, 255],
            border_pure_white_fraction: 1.0,
            border_near_white_fraction: 1.0,
            jpeg_quality: Some(92),
        }
    }

    fn outputs(
        bg: [f32; 5],
        boxes: &[(BBox, f32, f32)],
        aesthetic: f32,
        noise: f32,
    ) -> ModelOutputs {
        ModelOutputs {
            background_probabilities: bg,
            detections: boxes
                .iter()
                .map(|&(bbox, probability, subject_probability)| Detection {
                    bbox,
                    probability,
                    subject_probability,
                })
                .collect(),
            aesthetic,
            noise,
        }
    }

    const WHITE: [f32; 5] = [1.0, 0.0, 0.0, 0.0, 0.0];
    const CLUTTER: [f32; 5] = [0.0, 0.0, 0.0, 0.0, 1.0];

    fn run(o: &ModelOutputs, scene: &str) -> Report {
        score(o, &facts(1000, 1000), scene, &ScoringConfig::default()).expect("scene exists")
    }

    #[test]
    fn perfect_packshot_scores_100_without_reasons() {
        let o = outputs(
            WHITE,
            &[(BBox::new(150.0, 150.0, 850.0, 850.0), 0.95, 0.99)],
            100.0,
            100.0,
        );
        let r = run(&o, "electronics");
        assert!(r.scores.total > 99.0, "{:?}", r.scores);
        assert!(r.reasons.is_empty(), "{:?}", r.reasons);
    }

    #[test]
    fn cleanliness_reason_names_a_low_jpeg_quality_only() {
        let o = outputs(
            WHITE,
            &[(BBox::new(150.0, 150.0, 850.0, 850.0), 0.95, 0.99)],
            95.0,
            60.0,
        );
        let message = |quality: Option<u8>| {
            let facts = ImageFacts {
                jpeg_quality: quality,
                ..facts(1000, 1000)
            };
            let r = score(&o, &facts, "general", &ScoringConfig::default()).expect("scene");
            r.reasons
                .iter()
                .find(|r| r.code == "noisy_or_blurred")
                .map(|r| r.message.clone())
                .expect("a cleanliness reason")
        };
        let low = message(Some(40));
        assert!(
            low.contains("quality 40") && low.contains("85 or more"),
            "{low}"
        );
        for quality in [Some(92), Some(LOW_JPEG_QUALITY), None] {
            let m = message(quality);
            assert!(!m.contains("saved at quality"), "{quality:?}: {m}");
        }
    }

    #[test]
    fn scene_changes_background_score() {
        let lifestyle = outputs([0.0, 0.0, 0.0, 1.0, 0.0], &[], 80.0, 80.0);
        assert!(
            run(&lifestyle, "food").scores.background
                > run(&lifestyle, "electronics").scores.background
        );
    }

    #[test]
    fn a_whole_product_touching_the_frame_is_not_called_cut_off() {
        // A garment laid to the bottom edge, the detector sure it is whole and the subject.
        let whole = outputs(
            WHITE,
            &[(BBox::new(200.0, 300.0, 800.0, 1000.0), 0.9, 0.9)],
            80.0,
            90.0,
        );
        let r = run(&whole, "general");
        let main = r.position.main.as_ref().expect("main");
        assert_eq!(main.touches, vec!["bottom".to_string()]);
        assert!(!r.reasons.iter().any(|r| r.code == "product_cut_off"));
        // The same box with the detector doubting it is whole: cut off, and it costs.
        let doubted = outputs(
            WHITE,
            &[(BBox::new(200.0, 300.0, 800.0, 1000.0), 0.9, 0.3)],
            80.0,
            90.0,
        );
        let d = run(&doubted, "general");
        assert!(d.reasons.iter().any(|r| r.code == "product_cut_off"));
        assert!(d.scores.position < r.scores.position);
    }

    #[test]
    fn small_off_centre_cut_off_product_loses_with_reasons() {
        let o = outputs(
            CLUTTER,
            &[(BBox::new(0.0, 700.0, 120.0, 1000.0), 0.9, 0.2)],
            40.0,
            30.0,
        );
        let r = run(&o, "general");
        let codes: Vec<&str> = r.reasons.iter().map(|r| r.code.as_str()).collect();
        for code in [
            "cluttered_background",
            "product_small",
            "off_centre",
            "product_cut_off",
            "not_main_subject",
            "weak_aesthetics",
            "noisy_or_blurred",
        ] {
            assert!(codes.contains(&code), "missing {code} in {codes:?}");
        }
        let cut = r
            .reasons
            .iter()
            .find(|r| r.code == "product_cut_off")
            .unwrap();
        assert!(
            cut.message.contains("left and bottom borders"),
            "{}",
            cut.message
        );
        assert!(r.scores.total < 40.0);
        // The reasons' points explain the whole loss.
        let lost: f32 = r.reasons.iter().map(|r| r.points).sum();
        assert!(
            (lost - (100.0 - r.scores.total)).abs() < 1.0,
            "{lost} vs {}",
            r.scores.total
        );
    }

    #[test]
    fn no_detection_gives_no_product_score() {
        let r = run(
            &outputs(
                WHITE,
                &[(BBox::new(0.0, 0.0, 10.0, 10.0), 0.1, 0.9)],
                90.0,
                90.0,
            ),
            "general",
        );
        assert_eq!(r.scores.position, 10.0);
        assert!(r.position.main.is_none());
        assert_eq!(r.reasons[0].code, "no_product");
    }

    #[test]
    fn light_grey_backdrop_is_named_with_its_colour() {
        let o = outputs([0.0, 0.0, 1.0, 0.0, 0.0], &[], 90.0, 90.0);
        let mut f = facts(1000, 1000);
        f.border_rgb = [231, 231, 231];
        let r = score(&o, &f, "electronics", &ScoringConfig::default()).unwrap();
        let bg = r
            .reasons
            .iter()
            .find(|r| r.component == "background")
            .unwrap();
        assert_eq!(bg.code, "background_not_white");
        assert!(bg.message.contains("grey RGB 231"), "{}", bg.message);
    }

    #[test]
    fn unknown_scene_is_an_error() {
        let o = outputs(WHITE, &[], 90.0, 90.0);
        assert!(score(&o, &facts(10, 10), "cars", &ScoringConfig::default()).is_err());
    }

    fn any_outputs() -> impl Strategy<Value = ModelOutputs> {
        let prob = prop_oneof![Just(f32::NAN), -1f32..2.0];
        (
            proptest::array::uniform5(prob),
            proptest::collection::vec(
                (
                    -100f32..1200.0,
                    -100f32..1200.0,
                    0f32..1300.0,
                    0f32..1300.0,
                    -0.5f32..1.5,
                    -0.5f32..1.5,
                ),
                0..5,
            ),
            -50f32..150.0,
            -50f32..150.0,
        )
            .prop_map(|(bg, boxes, a, n)| ModelOutputs {
                background_probabilities: bg,
                detections: boxes
                    .into_iter()
                    .map(|(x, y, w, h, p, s)| Detection {
                        bbox: BBox::new(x, y, x + w, y + h),
                        probability: p,
                        subject_probability: s,
                    })
                    .collect(),
                aesthetic: a,
                noise: n,
            })
    }

    proptest! {
        #[test]
        fn all_scores_within_0_100(o in any_outputs(), w in 1u32..4000, h in 1u32..4000) {
            let r = score(&o, &facts(w, h), "general", &ScoringConfig::default()).unwrap();
            let s = r.scores;
            for v in [s.total, s.background, s.position, s.visual, s.aesthetic, s.noise] {
                prop_assert!((0.0..=100.0).contains(&v), "{s:?}");
            }
            for reason in &r.reasons {
                prop_assert!(reason.points >= 0.0 && !reason.message.is_empty());
            }
        }

        #[test]
        fn reasons_account_for_the_whole_loss(o in any_outputs(), w in 50u32..3000, h in 50u32..3000) {
            let r = score(&o, &facts(w, h), "general", &ScoringConfig::default()).unwrap();
            let explained: f32 = r.reasons.iter().map(|x| x.points).sum();
            let lost = 100.0 - r.scores.total;
            // Rounding to 0.1 per reason, dropped crumbs below MIN_REASON_POINTS and a
            // background loss of at most 0.5 × its share leave a small gap; anything larger is
            // an unexplained deduction.
            prop_assert!((explained - lost).abs() <= 2.0, "explained {explained} of {lost}: {:?}", r.reasons);
        }

        #[test]
        fn total_is_monotone_in_each_visual_head(o in any_outputs(), delta in 0f32..50.0) {
            let base = run(&o, "general").scores.total;
            let mut better = o.clone();
            better.noise = o.noise.clamp(0.0, 100.0) + delta;
            prop_assert!(run(&better, "general").scores.total >= base - 1e-3);
            let mut nicer = o.clone();
            nicer.aesthetic = o.aesthetic.clamp(0.0, 100.0) + delta;
            prop_assert!(run(&nicer, "general").scores.total >= base - 1e-3);
        }

        #[test]
        fn shifting_probability_towards_white_never_lowers_electronics_background(
            o in any_outputs(), k in 0f32..1.0,
        ) {
            let mut probs = o.background_probabilities.map(|p| if p.is_finite() { p.max(0.0) } else { 0.0 });
            let sum: f32 = probs.iter().sum();
            prop_assume!(sum > 0.0);
            probs.iter_mut().for_each(|p| *p /= sum);
            let before = run(&ModelOutputs { background_probabilities: probs, ..o.clone() }, "electronics").scores.background;
            let mut moved = probs.map(|p| p * (1.0 - k));
            moved[0] += k;
            let after = run(&ModelOutputs { background_probabilities: moved, ..o }, "electronics").scores.background;
            prop_assert!(after >= before - 1e-3);
        }

        #[test]
        fn centring_a_product_never_lowers_position(
            x in 0f32..800.0, y in 0f32..800.0, side in 100f32..600.0, p in 0.3f32..1.0, s in 0f32..1.0,
        ) {
            let b = BBox::new(x, y, (x + side).min(1000.0), (y + side).min(1000.0));
            let centred = BBox::from_center(500.0, 500.0, b.width(), b.height());
            let off = run(&outputs(WHITE, &[(b, p, s)], 80.0, 80.0), "general").scores.position;
            let on = run(&outputs(WHITE, &[(centred, p, s)], 80.0, 80.0), "general").scores.position;
            prop_assert!(on >= off - 1e-3, "{on} < {off}");
        }
    }
}
