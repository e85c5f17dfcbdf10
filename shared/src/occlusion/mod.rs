//! Occlusion generator: makes the *partially occluded images* both training stages take as
//! input (the method's terms, KR 10-2023-0036213), plus other occluder families (boxes,
//! brush strokes, text, objects) so that the networks also learn to see through occluders
//! the method allows (`docs/method.md`, "Data and ground truth").
//!
//! The output is a pure function of (image, subject mask, spec, seed): a training sample can
//! be regenerated exactly from its seed, and host and device make identical occlusions. The
//! returned mask is exactly the set of pixels that were overwritten; every other pixel is
//! byte-identical to the input, so losses can be weighted by the mask without surprises.
//!
//! Coverage is controlled by pixel counts, not by shape parameters: a target count is drawn
//! from the requested range and shapes are added until it is met, retrying a shape smaller
//! when it would overshoot the maximum. Subject mode meets its target exactly.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use rand::Rng as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::font;
use crate::image::{ImageU8, Mask};
use crate::rng::{self, Rng};

// The generator in the order a call runs: random draws, the canvas, what paints hidden
// pixels, then one module per occluder family.
mod canvas;
mod paint;
mod random;
mod shapes;
mod subject;
mod text;

use self::canvas::*;
use self::paint::*;
use self::random::*;
use self::shapes::*;
use self::subject::*;
use self::text::*;

/// Smallest image side accepted: below this, shapes and glyphs cannot be placed sensibly.
pub const MIN_SIDE: usize = 8;

/// Random sub-streams (see [`rng::stream`]): one picks the mode in [`OcclusionMode::Mixed`],
/// the other draws the occluders, so the drawing does not depend on whether Mixed was used.
const STREAM_MIXED: u64 = 0x0CC1_0D01;
const STREAM_DRAW: u64 = 0x0CC1_0D02;

/// How a hidden subject region is filled (the method allows either).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    /// Uniform random RGB per pixel.
    Noise,
    /// Delete: every hidden pixel becomes 0.
    Zero,
}

/// Brush width class for [`OcclusionMode::Strokes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrokeWidth {
    Thin,
    Medium,
    Thick,
}

impl StrokeWidth {
    /// Brush width range as a fraction of the shorter image side, so that masks look the
    /// same at every resolution.
    pub const fn fraction(self) -> (f32, f32) {
        match self {
            StrokeWidth::Thin => (0.02, 0.05),
            StrokeWidth::Medium => (0.05, 0.09),
            StrokeWidth::Thick => (0.09, 0.15),
        }
    }
}

/// Which kind of occluder to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcclusionMode {
    /// The method's own: hide part of the subject's region (ellipse, blob, rectangle, band or
    /// half-plane, clipped to the subject mask), filled with noise or deleted.
    Subject { fill: Fill },
    /// Axis-aligned rectangles filled with noise or a flat colour.
    Rectangles,
    /// Free-form brush strokes (random walks of round-capped thick segments), as in
    /// inpainting benchmarks.
    Strokes(StrokeWidth),
    /// Overlaid text in random colours (built-in 5x7 font, scaled 1-4x).
    Text,
    /// Opaque objects: convex or star polygons with a procedural texture.
    Objects,
    /// One of the above, picked from the seed (see [`resolve_mode`]).
    Mixed,
}

/// Every mode, in the order of [`ALL_MODES`].
pub const MODES: [OcclusionMode; 9] = [
    OcclusionMode::Subject { fill: Fill::Noise },
    OcclusionMode::Subject { fill: Fill::Zero },
    OcclusionMode::Rectangles,
    OcclusionMode::Strokes(StrokeWidth::Thin),
    OcclusionMode::Strokes(StrokeWidth::Medium),
    OcclusionMode::Strokes(StrokeWidth::Thick),
    OcclusionMode::Text,
    OcclusionMode::Objects,
    OcclusionMode::Mixed,
];

/// The command-line / config names of [`MODES`].
pub const ALL_MODES: &[&str] = &[
    "subject-noise",
    "subject-zero",
    "rect",
    "strokes-thin",
    "strokes-medium",
    "strokes-thick",
    "text",
    "objects",
    "mixed",
];

/// [`ALL_MODES`] as one string, for error messages.
const MODE_LIST: &str =
    "subject-noise, subject-zero, rect, strokes-thin, strokes-medium, strokes-thick, text, objects, mixed";

impl OcclusionMode {
    /// The name used by `FromStr`, `Display` and serde.
    pub const fn name(self) -> &'static str {
        match self {
            OcclusionMode::Subject { fill: Fill::Noise } => "subject-noise",
            OcclusionMode::Subject { fill: Fill::Zero } => "subject-zero",
            OcclusionMode::Rectangles => "rect",
            OcclusionMode::Strokes(StrokeWidth::Thin) => "strokes-thin",
            OcclusionMode::Strokes(StrokeWidth::Medium) => "strokes-medium",
            OcclusionMode::Strokes(StrokeWidth::Thick) => "strokes-thick",
            OcclusionMode::Text => "text",
            OcclusionMode::Objects => "objects",
            OcclusionMode::Mixed => "mixed",
        }
    }

    /// Default coverage range. Subject mode counts a fraction of the subject's pixels, all
    /// other modes a fraction of the whole image; in Mixed mode the range applies to
    /// whichever mode is drawn.
    pub const fn default_coverage(self) -> (f32, f32) {
        match self {
            OcclusionMode::Subject { .. } => (0.2, 0.5),
            OcclusionMode::Rectangles => (0.05, 0.3),
            OcclusionMode::Strokes(_) => (0.05, 0.35),
            OcclusionMode::Text => (0.03, 0.2),
            OcclusionMode::Objects => (0.05, 0.3),
            OcclusionMode::Mixed => (0.1, 0.3),
        }
    }

    /// Whether the mode cannot work without a non-empty subject mask.
    pub const fn needs_subject(self) -> bool {
        matches!(self, OcclusionMode::Subject { .. })
    }
}

impl fmt::Display for OcclusionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OcclusionMode {
    type Err = OcclusionError;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ALL_MODES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(s))
            .and_then(|i| MODES.get(i).copied())
            .ok_or_else(|| OcclusionError::UnknownMode(String::from(s)))
    }
}

/// Serialised as its name (`"strokes-thin"`) so configs and manifests stay readable.
impl Serialize for OcclusionMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for OcclusionMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What to occlude and how much.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcclusionSpec {
    pub mode: OcclusionMode,
    /// Target range `(min, max)` of the fraction hidden; see
    /// [`OcclusionMode::default_coverage`] for what it is a fraction of.
    pub coverage: (f32, f32),
}

impl OcclusionSpec {
    /// `mode` with its default coverage range.
    pub const fn new(mode: OcclusionMode) -> Self {
        Self {
            mode,
            coverage: mode.default_coverage(),
        }
    }

    pub const fn with_coverage(self, min: f32, max: f32) -> Self {
        Self {
            mode: self.mode,
            coverage: (min, max),
        }
    }

    /// Error unless `0 <= min <= max <= 1` (NaN fails).
    pub fn validate(&self) -> Result<(), OcclusionError> {
        let (min, max) = self.coverage;
        if 0.0 <= min && min <= max && max <= 1.0 {
            Ok(())
        } else {
            Err(OcclusionError::Coverage { min, max })
        }
    }
}

impl Default for OcclusionSpec {
    /// The method's own occlusion.
    fn default() -> Self {
        Self::new(OcclusionMode::Subject { fill: Fill::Noise })
    }
}

/// An occluded copy of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occluded {
    pub image: ImageU8,
    /// 1 exactly where `image` was overwritten.
    pub mask: Mask,
}

/// Everything that can be wrong with an occlusion request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OcclusionError {
    #[error("occlusion needs an RGB image, got {0} channels")]
    Channels(usize),
    #[error("image is {width}x{height}; occlusion needs at least {min}x{min}", min = MIN_SIDE)]
    TooSmall { width: usize, height: usize },
    #[error("image dimensions overflow")]
    TooLarge,
    #[error("image buffer has {actual} bytes, expected {expected}")]
    BufferSize { expected: usize, actual: usize },
    #[error(
        "subject mask is {mask_width}x{mask_height} with {mask_len} bytes, image is {width}x{height}"
    )]
    MaskSize {
        width: usize,
        height: usize,
        mask_width: usize,
        mask_height: usize,
        mask_len: usize,
    },
    #[error("occlusion mode {0} hides part of the subject and needs a subject mask")]
    NoSubject(OcclusionMode),
    #[error("subject mask is empty, so there is no subject to occlude")]
    EmptySubject,
    #[error("coverage range ({min}, {max}) is invalid: need 0 <= min <= max <= 1")]
    Coverage { min: f32, max: f32 },
    #[error("unknown occlusion mode {0:?}; expected one of: {list}", list = MODE_LIST)]
    UnknownMode(String),
}

/// The concrete mode `mode` stands for: itself, or for Mixed one mode drawn uniformly from
/// the others by `seed` (Subject modes only if `has_subject`). Lets callers log what
/// [`occlude`] did with the same arguments.
pub fn resolve_mode(mode: OcclusionMode, has_subject: bool, seed: u64) -> OcclusionMode {
    if mode != OcclusionMode::Mixed {
        return mode;
    }
    // MODES: two subject modes first, Mixed last.
    let choices = if has_subject {
        &MODES[..8]
    } else {
        &MODES[2..8]
    };
    choices[below(&mut rng::stream(seed, STREAM_MIXED), choices.len())]
}

/// The pixel-count bounds `(min, max)` a coverage range means for `total` pixels:
/// `ceil(min * total)..=floor(max * total)`, widened to one pixel if the range is narrower.
/// Products within f32 precision of an integer count as that integer, so that 0.05 of 100
/// pixels is 5, not 6 (0.05f32 is slightly above 0.05).
pub fn coverage_counts(coverage: (f32, f32), total: usize) -> (usize, usize) {
    let t = total as f64;
    let eps = t * 1e-7;
    let lo = (libm::ceil(coverage.0 as f64 * t - eps) as usize).min(total);
    let hi = (libm::floor(coverage.1 as f64 * t + eps) as usize).clamp(lo, total);
    (lo, hi)
}

/// Occlude `image` (RGB, at least [`MIN_SIDE`] square) as `spec` asks. `subject` is the
/// subject's silhouette (non-zero = subject): required by Subject mode, and used by the other
/// modes to place most occluders over the subject, where they matter for training.
pub fn occlude(
    image: &ImageU8,
    subject: Option<&Mask>,
    spec: &OcclusionSpec,
    seed: u64,
) -> Result<Occluded, OcclusionError> {
    spec.validate()?;
    let (w, h) = (image.width, image.height);
    if image.channels != 3 {
        return Err(OcclusionError::Channels(image.channels));
    }
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(OcclusionError::TooSmall {
            width: w,
            height: h,
        });
    }
    let n = w.checked_mul(h).ok_or(OcclusionError::TooLarge)?;
    let bytes = n.checked_mul(3).ok_or(OcclusionError::TooLarge)?;
    if image.data.len() != bytes {
        return Err(OcclusionError::BufferSize {
            expected: bytes,
            actual: image.data.len(),
        });
    }
    if let Some(m) = subject {
        if m.width != w || m.height != h || m.data.len() != n {
            return Err(OcclusionError::MaskSize {
                width: w,
                height: h,
                mask_width: m.width,
                mask_height: m.height,
                mask_len: m.data.len(),
            });
        }
    }
    let subject_px: Vec<usize> = subject
        .map(|m| {
            m.data
                .iter()
                .enumerate()
                .filter(|&(_, &v)| v != 0)
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    let mode = resolve_mode(spec.mode, !subject_px.is_empty(), seed);
    if mode.needs_subject() {
        if subject.is_none() {
            return Err(OcclusionError::NoSubject(mode));
        }
        if subject_px.is_empty() {
            return Err(OcclusionError::EmptySubject);
        }
    }

    let mut out = image.clone();
    let mut rng = rng::stream(seed, STREAM_DRAW);
    let centres = Centres {
        w,
        h,
        subject: &subject_px,
    };
    let mut canvas = Canvas::new(w, h, &mut out.data);
    match mode {
        OcclusionMode::Subject { fill } => {
            subject_regions(&mut canvas, &subject_px, fill, spec.coverage, &mut rng)
        }
        OcclusionMode::Rectangles => shapes(
            &mut canvas,
            &centres,
            ShapeMode::Rectangles,
            spec.coverage,
            &mut rng,
        ),
        OcclusionMode::Strokes(width) => shapes(
            &mut canvas,
            &centres,
            ShapeMode::Strokes(width),
            spec.coverage,
            &mut rng,
        ),
        OcclusionMode::Objects => shapes(
            &mut canvas,
            &centres,
            ShapeMode::Objects,
            spec.coverage,
            &mut rng,
        ),
        OcclusionMode::Text => text(&mut canvas, &centres, spec.coverage, &mut rng),
        // resolve_mode never returns Mixed; drawing nothing is the harmless answer anyway.
        OcclusionMode::Mixed => {}
    }
    let mask = canvas.into_mask();
    Ok(Occluded {
        image: out,
        mask: Mask {
            width: w,
            height: h,
            data: mask,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A textured RGB image and a person-sized upright ellipse as the subject.
    fn scene(w: usize, h: usize) -> (ImageU8, Mask) {
        let data = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let img = ImageU8::from_vec(w, h, 3, data).unwrap();
        let (cx, cy, rx, ry) = (
            w as f32 / 2.0,
            h as f32 / 2.0,
            w as f32 * 0.17,
            h as f32 * 0.43,
        );
        let subject = Mask::from_fn(w, h, |i| {
            let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
            ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0
        });
        (img, subject)
    }

    fn mode(name: &str) -> OcclusionMode {
        name.parse().unwrap()
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let (img, subject) = scene(96, 80);
        for m in MODES {
            let spec = OcclusionSpec::new(m);
            let a = occlude(&img, Some(&subject), &spec, 42).unwrap();
            let b = occlude(&img, Some(&subject), &spec, 42).unwrap();
            assert_eq!(a, b, "{m}");
            let c = occlude(&img, Some(&subject), &spec, 43).unwrap();
            assert_ne!(a.mask, c.mask, "{m}: seeds 42 and 43 gave the same mask");
        }
    }

    #[test]
    fn only_masked_pixels_change() {
        let (img, subject) = scene(128, 128);
        for m in MODES {
            for seed in 0..20 {
                let occ = occlude(&img, Some(&subject), &OcclusionSpec::new(m), seed).unwrap();
                assert_eq!((occ.mask.width, occ.mask.height), (128, 128));
                assert_eq!(occ.image.data.len(), img.data.len());
                for i in 0..img.pixel_count() {
                    match occ.mask.data[i] {
                        0 => assert_eq!(occ.image.pixel(i), img.pixel(i), "{m} seed {seed} px {i}"),
                        1 => {}
                        v => panic!("mask value {v}"),
                    }
                }
                if let OcclusionMode::Subject { fill } = m {
                    for i in 0..img.pixel_count() {
                        if occ.mask.data[i] == 1 {
                            assert_eq!(subject.data[i], 1, "{m} hid background");
                            if fill == Fill::Zero {
                                assert_eq!(occ.image.pixel(i), &[0, 0, 0]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Hidden counts over 50 seeds for `mode` on a `size` square scene, checked against the
    /// exact bounds of [`coverage_counts`]: no tolerance.
    fn check_coverage(m: OcclusionMode, size: usize, coverage: (f32, f32)) {
        let (img, subject) = scene(size, size);
        let spec = OcclusionSpec::new(m).with_coverage(coverage.0, coverage.1);
        let mut seen = (usize::MAX, 0);
        for seed in 0..50 {
            let occ = occlude(&img, Some(&subject), &spec, seed).unwrap();
            let total = match resolve_mode(m, true, seed) {
                OcclusionMode::Subject { .. } => subject.count(),
                _ => size * size,
            };
            let (lo, hi) = coverage_counts(coverage, total);
            let got = occ.mask.count();
            assert!(
                (lo..=hi).contains(&got),
                "{m} {size}px {coverage:?} seed {seed}: {got} not in {lo}..={hi} of {total}"
            );
            seen = (seen.0.min(got), seen.1.max(got));
        }
        // Targets are spread over the range, not stuck at one end.
        let (lo, hi) = coverage_counts(coverage, size * size);
        if hi > lo + 100 && !m.needs_subject() && m != OcclusionMode::Mixed {
            assert!(
                seen.1 - seen.0 > (hi - lo) / 3,
                "{m}: counts {seen:?} barely vary"
            );
        }
    }

    #[test]
    fn coverage_in_range_default_ranges() {
        for m in MODES {
            check_coverage(m, 128, m.default_coverage());
        }
        check_coverage(mode("subject-noise"), 64, (0.2, 0.5));
        check_coverage(mode("subject-zero"), 64, (0.2, 0.5));
    }

    #[test]
    fn coverage_in_range_custom_ranges() {
        for m in MODES {
            for cov in [(0.0, 0.0), (0.1, 0.1), (0.3, 0.32), (0.5, 0.7)] {
                check_coverage(m, 64, cov);
            }
        }
        // Text cannot cover everything (glyphs have gaps), nor can Mixed when it draws text.
        for m in MODES
            .into_iter()
            .filter(|&m| !matches!(m, OcclusionMode::Text | OcclusionMode::Mixed))
        {
            check_coverage(m, 48, (1.0, 1.0));
        }
    }

    #[test]
    fn empty_range_changes_nothing() {
        let (img, subject) = scene(32, 32);
        for m in MODES {
            let occ = occlude(
                &img,
                Some(&subject),
                &OcclusionSpec::new(m).with_coverage(0.0, 0.0),
                3,
            )
            .unwrap();
            assert_eq!(occ.image, img);
            assert_eq!(occ.mask.count(), 0);
        }
    }

    #[test]
    fn small_and_odd_sizes_do_not_panic() {
        for (w, h) in [(8, 8), (9, 13), (8, 200), (200, 8), (31, 17)] {
            let (img, subject) = scene(w, h);
            for m in MODES {
                for seed in 0..10 {
                    let spec = OcclusionSpec::new(m);
                    let occ = occlude(&img, Some(&subject), &spec, seed).unwrap();
                    let total = if resolve_mode(m, true, seed).needs_subject() {
                        subject.count()
                    } else {
                        w * h
                    };
                    // Never above the maximum; text may fall short where no glyph fits.
                    let (_, hi) = coverage_counts(spec.coverage, total);
                    assert!(occ.mask.count() <= hi, "{m} {w}x{h} seed {seed}");
                }
                // Without a subject mask, all but Subject mode still work.
                let r = occlude(&img, None, &OcclusionSpec::new(m), 1);
                assert_eq!(r.is_err(), m.needs_subject(), "{m}");
            }
        }
    }

    #[test]
    fn mixed_uses_several_modes_and_avoids_subject_without_mask() {
        let with: Vec<_> = (0..200)
            .map(|s| resolve_mode(OcclusionMode::Mixed, true, s))
            .collect();
        for m in &MODES[..8] {
            assert!(with.contains(m), "{m} never picked");
        }
        assert!((0..200).all(|s| !resolve_mode(OcclusionMode::Mixed, false, s).needs_subject()));
        assert_eq!(
            resolve_mode(OcclusionMode::Text, true, 5),
            OcclusionMode::Text
        );
    }

    #[test]
    fn errors_not_panics() {
        let (img, subject) = scene(32, 32);
        let spec = OcclusionSpec::default();
        let wrong = Mask::new(31, 32);
        assert!(matches!(
            occlude(&img, Some(&wrong), &spec, 0),
            Err(OcclusionError::MaskSize { .. })
        ));
        let short = Mask {
            width: 32,
            height: 32,
            data: vec![1; 10],
        };
        assert!(matches!(
            occlude(&img, Some(&short), &spec, 0),
            Err(OcclusionError::MaskSize { .. })
        ));
        assert!(matches!(
            occlude(&img, None, &spec, 0),
            Err(OcclusionError::NoSubject(_))
        ));
        let empty = Mask::new(32, 32);
        assert_eq!(
            occlude(&img, Some(&empty), &spec, 0),
            Err(OcclusionError::EmptySubject)
        );
        for (a, b) in [
            (0.5, 0.2),
            (f32::NAN, 0.5),
            (0.1, f32::NAN),
            (-0.1, 0.5),
            (0.5, 1.5),
        ] {
            let bad = spec.with_coverage(a, b);
            assert!(matches!(
                occlude(&img, Some(&subject), &bad, 0),
                Err(OcclusionError::Coverage { .. })
            ));
        }
        let grey = ImageU8::new(32, 32, 1);
        assert_eq!(
            occlude(&grey, Some(&subject), &spec, 0),
            Err(OcclusionError::Channels(1))
        );
        let tiny = ImageU8::new(7, 32, 3);
        let tiny_mask = Mask::from_fn(7, 32, |_| true);
        assert!(matches!(
            occlude(&tiny, Some(&tiny_mask), &spec, 0),
            Err(OcclusionError::TooSmall {
                width: 7,
                height: 32
            })
        ));
        let mut broken = img.clone();
        broken.data.pop();
        assert!(matches!(
            occlude(&broken, Some(&subject), &spec, 0),
            Err(OcclusionError::BufferSize { .. })
        ));
        let huge = ImageU8 {
            width: usize::MAX,
            height: 8,
            channels: 3,
            data: vec![],
        };
        assert_eq!(
            occlude(&huge, None, &OcclusionSpec::new(OcclusionMode::Text), 0),
            Err(OcclusionError::TooLarge)
        );
        // Subject masks with values other than 0/1 count as set.
        let loud = Mask {
            width: 32,
            height: 32,
            data: subject.data.iter().map(|&v| v * 255).collect(),
        };
        let occ = occlude(&img, Some(&loud), &spec, 0).unwrap();
        assert!(occ.mask.count() > 0);
    }

    #[test]
    fn glyph_mask_is_the_bitmap() {
        for (ch, s) in [('A', 1), ('Q', 1), ('7', 2), ('?', 3)] {
            let (w, h) = (24, 24);
            let mut rgb = vec![0u8; w * h * 3];
            let mut canvas = Canvas::new(w, h, &mut rgb);
            let bitmap = font::glyph(ch).unwrap();
            canvas.glyph(bitmap, 2, 3, s);
            canvas.accept(&Paint::Flat([9, 8, 7]), &mut rng::stream(0, 0));
            let mask = canvas.into_mask();
            for y in 0..h {
                for x in 0..w {
                    let inside = x >= 2 && y >= 3;
                    let want = inside && font::ink(bitmap, (x - 2) / s, (y - 3) / s);
                    assert_eq!(mask[y * w + x] == 1, want, "{ch} x{s} at ({x}, {y})");
                    let px = &rgb[3 * (y * w + x)..3 * (y * w + x) + 3];
                    assert_eq!(px, if want { &[9, 8, 7] } else { &[0, 0, 0] });
                }
            }
        }
        // Glyphs are clipped at the borders without panicking.
        let mut rgb = vec![0u8; 8 * 8 * 3];
        let mut canvas = Canvas::new(8, 8, &mut rgb);
        canvas.glyph(font::glyph('W').unwrap(), -3, 5, 4);
        canvas.glyph(font::glyph('W').unwrap(), isize::MIN / 2, isize::MAX / 2, 1);
        assert!(!canvas.pending.is_empty());
    }

    #[test]
    fn text_mask_is_single_colour_glyph_ink() {
        // On a uniform image, every text pixel is some string's flat colour: masked pixels
        // come in few colours, unlike noise.
        let img = ImageU8::from_vec(128, 128, 3, vec![200; 128 * 128 * 3]).unwrap();
        let occ = occlude(&img, None, &OcclusionSpec::new(OcclusionMode::Text), 9).unwrap();
        let mut colours: Vec<&[u8]> = (0..img.pixel_count())
            .filter(|&i| occ.mask.data[i] == 1)
            .map(|i| occ.image.pixel(i))
            .collect();
        let hidden = colours.len();
        colours.sort();
        colours.dedup();
        assert!(hidden > 0 && colours.len() <= MAX_STRINGS && colours.len() * 10 < hidden);
    }

    #[test]
    fn polygon_and_capsule_rasterise_sensibly() {
        let mut rgb = vec![0u8; 32 * 32 * 3];
        let mut canvas = Canvas::new(32, 32, &mut rgb);
        // Axis-aligned square with corners on pixel edges: exactly its 10x10 pixels.
        canvas.polygon(&[(4.0, 4.0), (14.0, 4.0), (14.0, 14.0), (4.0, 14.0)]);
        assert_eq!(canvas.pending.len(), 100);
        canvas.reject();
        // A disc of radius 5 covers about 25 pi pixels.
        canvas.capsule((16.0, 16.0), (16.0, 16.0), 5.0);
        assert!((canvas.pending.len() as f32 - 25.0 * core::f32::consts::PI).abs() < 8.0);
        canvas.reject();
        // Degenerate polygons draw nothing.
        canvas.polygon(&[(1.0, 1.0), (5.0, 5.0)]);
        canvas.polygon(&[(1.0, 1.0), (5.0, 1.0), (9.0, 1.0)]);
        assert!(canvas.pending.is_empty());
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(ALL_MODES.len(), MODES.len());
        assert_eq!(ALL_MODES.join(", "), MODE_LIST);
        for (m, name) in MODES.iter().zip(ALL_MODES) {
            assert_eq!(m.to_string(), *name);
            assert_eq!(name.parse::<OcclusionMode>().unwrap(), *m);
            assert_eq!(name.to_uppercase().parse::<OcclusionMode>().unwrap(), *m);
        }
        let err = "blobs".parse::<OcclusionMode>().unwrap_err();
        assert_eq!(err, OcclusionError::UnknownMode("blobs".into()));
        let msg = err.to_string();
        assert!(ALL_MODES.iter().all(|n| msg.contains(n)), "{msg}");
    }

    #[test]
    fn spec_defaults_validate() {
        for m in MODES {
            let spec = OcclusionSpec::new(m);
            assert!(spec.validate().is_ok());
            assert_eq!(spec.coverage, m.default_coverage());
        }
        assert!(OcclusionSpec::default().mode.needs_subject());
        assert_eq!(coverage_counts((0.05, 0.3), 100), (5, 30));
        assert_eq!(coverage_counts((0.101, 0.109), 100), (11, 11));
        assert_eq!(coverage_counts((1.0, 1.0), 7), (7, 7));
    }
}
