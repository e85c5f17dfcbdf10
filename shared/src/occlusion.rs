//! Occlusion generator: makes the *partially occluded images* both training stages take as
//! input (the method's terms, KR 10-2023-0036213), plus other occluder families (boxes,
//! brush strokes, text, objects) so that the networks also learn to see through occluders
//! the method allows.
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

// ---------------------------------------------------------------------------------------
// Random helpers. Written out rather than `random_range` on floats, which panics on an
// empty range; `usize` goes through `u64` so results do not depend on the platform.

fn below(rng: &mut Rng, n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rng.random_range(0..n as u64) as usize
    }
}

fn uni(rng: &mut Rng, a: f32, b: f32) -> f32 {
    a + (b - a) * rng.random::<f32>()
}

fn rgb(rng: &mut Rng) -> [u8; 3] {
    let v: u32 = rng.random();
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

/// Target pixel count, drawn uniformly from the coverage range, with its bounds.
struct Counts {
    max: usize,
    target: usize,
}

fn counts(coverage: (f32, f32), total: usize, rng: &mut Rng) -> Counts {
    let (lo, hi) = coverage_counts(coverage, total);
    let frac = uni(rng, coverage.0, coverage.1) as f64;
    let target = (libm::round(frac * total as f64) as usize).clamp(lo, hi);
    Counts { max: hi, target }
}

/// Where to put an occluder: mostly over the subject (occluding empty background teaches
/// the networks little), otherwise anywhere.
struct Centres<'a> {
    w: usize,
    h: usize,
    subject: &'a [usize],
}

const SUBJECT_BIAS: f32 = 0.75;

impl Centres<'_> {
    fn pick(&self, rng: &mut Rng) -> (f32, f32) {
        if !self.subject.is_empty() && rng.random::<f32>() < SUBJECT_BIAS {
            let i = self.subject[below(rng, self.subject.len())];
            let (x, y) = ((i % self.w) as f32, (i / self.w) as f32);
            (x + rng.random::<f32>(), y + rng.random::<f32>())
        } else {
            (
                rng.random::<f32>() * self.w as f32,
                rng.random::<f32>() * self.h as f32,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// Canvas: shapes are rasterised into a pending set first, so a shape that would overshoot
// the coverage maximum can be rejected without having touched the image.

const FREE: u8 = 0;
const HIDDEN: u8 = 1;
const PENDING: u8 = 2;

struct Canvas<'a> {
    w: usize,
    h: usize,
    rgb: &'a mut [u8],
    /// FREE / HIDDEN / PENDING per pixel.
    state: Vec<u8>,
    hidden: usize,
    pending: Vec<usize>,
}

impl<'a> Canvas<'a> {
    fn new(w: usize, h: usize, rgb: &'a mut [u8]) -> Self {
        Self {
            w,
            h,
            rgb,
            state: alloc::vec![FREE; w * h],
            hidden: 0,
            pending: Vec::new(),
        }
    }

    fn into_mask(self) -> Vec<u8> {
        // Nothing is pending here, but map defensively so the mask is strictly 0/1.
        self.state
            .into_iter()
            .map(|s| (s == HIDDEN) as u8)
            .collect()
    }

    #[inline]
    fn plot_index(&mut self, i: usize) {
        if self.state[i] == FREE {
            self.state[i] = PENDING;
            self.pending.push(i);
        }
    }

    /// Pixels `x0..x1` of row `y`, clipped to the canvas.
    fn span(&mut self, y: isize, x0: isize, x1: isize) {
        if y < 0 || y as usize >= self.h {
            return;
        }
        let x0 = x0.max(0) as usize;
        let x1 = x1.clamp(0, self.w as isize) as usize;
        let row = y as usize * self.w;
        for x in x0..x1 {
            self.plot_index(row + x);
        }
    }

    fn fits(&self, max: usize) -> bool {
        self.hidden + self.pending.len() <= max
    }

    fn reject(&mut self) {
        for &i in &self.pending {
            self.state[i] = FREE;
        }
        self.pending.clear();
    }

    fn accept(&mut self, paint: &Paint, rng: &mut Rng) {
        for &i in &self.pending {
            self.state[i] = HIDDEN;
            let c = paint.colour(i % self.w, i / self.w, rng);
            self.rgb[3 * i..3 * i + 3].copy_from_slice(&c);
        }
        self.hidden += self.pending.len();
        self.pending.clear();
    }

    /// Clamp a float coordinate range to `0..=limit` pixel indices.
    fn clamp_range(lo: f32, hi: f32, limit: usize) -> (usize, usize) {
        let l = limit as f32;
        (
            libm::floorf(lo).clamp(0.0, l) as usize,
            libm::ceilf(hi).clamp(0.0, l) as usize,
        )
    }

    /// Pixels whose centres lie within `r` of segment `a`-`b` (a round-capped thick line).
    fn capsule(&mut self, a: (f32, f32), b: (f32, f32), r: f32) {
        let (x0, x1) = Self::clamp_range(a.0.min(b.0) - r, a.0.max(b.0) + r, self.w);
        let (y0, y1) = Self::clamp_range(a.1.min(b.1) - r, a.1.max(b.1) + r, self.h);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let inv = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
        let r2 = r * r;
        for y in y0..y1 {
            let py = y as f32 + 0.5 - a.1;
            for x in x0..x1 {
                let px = x as f32 + 0.5 - a.0;
                let t = ((px * dx + py * dy) * inv).clamp(0.0, 1.0);
                let (ex, ey) = (px - t * dx, py - t * dy);
                if ex * ex + ey * ey <= r2 {
                    self.plot_index(y * self.w + x);
                }
            }
        }
    }

    /// Even-odd scanline fill of a polygon, sampling pixel centres.
    fn polygon(&mut self, pts: &[(f32, f32)]) {
        let n = pts.len();
        if !(3..=MAX_POLY).contains(&n) {
            return;
        }
        let (lo, hi) = pts.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        let (y0, y1) = Self::clamp_range(lo, hi, self.h);
        let mut xs = [0f32; MAX_POLY];
        for y in y0..y1 {
            let yc = y as f32 + 0.5;
            let mut m = 0;
            for (k, &(ax, ay)) in pts.iter().enumerate() {
                let (bx, by) = pts[(k + 1) % n];
                if (ay <= yc) != (by <= yc) {
                    xs[m] = ax + (yc - ay) * (bx - ax) / (by - ay);
                    m += 1;
                }
            }
            let xs = &mut xs[..m];
            xs.sort_unstable_by(f32::total_cmp);
            for pair in xs.chunks_exact(2) {
                // Centres x + 0.5 in [a, b): x from ceil(a - 0.5) to ceil(b - 0.5).
                let xa = libm::ceilf(pair[0] - 0.5).clamp(-1.0, self.w as f32) as isize;
                let xb = libm::ceilf(pair[1] - 0.5).clamp(-1.0, self.w as f32) as isize;
                self.span(y as isize, xa, xb);
            }
        }
    }

    /// Glyph `bitmap` with its top-left corner at `(x0, y0)`, each bit an `s`x`s` block.
    fn glyph(&mut self, bitmap: &[u8; font::GLYPH_H], x0: isize, y0: isize, s: usize) {
        let si = s as isize;
        for gy in 0..font::GLYPH_H {
            for gx in 0..font::GLYPH_W {
                if font::ink(bitmap, gx, gy) {
                    let x = x0 + gx as isize * si;
                    for dy in 0..si {
                        self.span(y0 + gy as isize * si + dy, x, x + si);
                    }
                }
            }
        }
    }

    /// Safety net when shapes alone fell short of `target`: grow the hidden region outwards
    /// (breadth-first, 4-connected) one pixel at a time until it reaches `target` exactly.
    fn grow_to(&mut self, target: usize, paint: &Paint, centres: &Centres, rng: &mut Rng) {
        if self.hidden >= target {
            return;
        }
        if self.hidden == 0 {
            let (x, y) = centres.pick(rng);
            let (x, y) = ((x as usize).min(self.w - 1), (y as usize).min(self.h - 1));
            self.plot_index(y * self.w + x);
        }
        let mut queue: Vec<usize> = (0..self.state.len())
            .filter(|&i| self.state[i] != FREE)
            .collect();
        let mut head = 0;
        while self.hidden + self.pending.len() < target && head < queue.len() {
            let i = queue[head];
            head += 1;
            let (x, y) = (i % self.w, i / self.w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < self.w).then_some(i + 1),
                (y > 0).then(|| i - self.w),
                (y + 1 < self.h).then_some(i + self.w),
            ];
            for j in neighbours.into_iter().flatten() {
                if self.hidden + self.pending.len() >= target {
                    break;
                }
                if self.state[j] == FREE {
                    self.plot_index(j);
                    queue.push(j);
                }
            }
        }
        self.accept(paint, rng);
    }
}

// ---------------------------------------------------------------------------------------
// Paint: what goes into hidden pixels.

#[derive(Clone, Copy, Debug)]
enum Paint {
    Noise,
    Flat([u8; 3]),
    Stripes {
        c0: [u8; 3],
        c1: [u8; 3],
        cos: f32,
        sin: f32,
        period: f32,
        duty: f32,
    },
    Checks {
        c0: [u8; 3],
        c1: [u8; 3],
        cos: f32,
        sin: f32,
        period: f32,
    },
    /// Per-pixel random mix of two colours.
    Speckle {
        c0: [u8; 3],
        c1: [u8; 3],
    },
}

impl Paint {
    fn colour(&self, x: usize, y: usize, rng: &mut Rng) -> [u8; 3] {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        match *self {
            Paint::Noise => rgb(rng),
            Paint::Flat(c) => c,
            Paint::Stripes {
                c0,
                c1,
                cos,
                sin,
                period,
                duty,
            } => {
                let t = (px * cos + py * sin) / period;
                if t - libm::floorf(t) < duty {
                    c0
                } else {
                    c1
                }
            }
            Paint::Checks {
                c0,
                c1,
                cos,
                sin,
                period,
            } => {
                let u = libm::floorf((px * cos + py * sin) / period) as i64;
                let v = libm::floorf((py * cos - px * sin) / period) as i64;
                if (u + v) & 1 == 0 {
                    c0
                } else {
                    c1
                }
            }
            Paint::Speckle { c0, c1 } => {
                let t = rng.random::<u8>() as u16;
                core::array::from_fn(|k| {
                    ((c0[k] as u16 * (255 - t) + c1[k] as u16 * t) / 255) as u8
                })
            }
        }
    }

    /// A procedural texture for object occluders, its scale tied to the image size.
    fn texture(rng: &mut Rng, side: f32) -> Self {
        let (c0, c1) = (rgb(rng), rgb(rng));
        let angle = uni(rng, 0.0, core::f32::consts::PI);
        let (sin, cos) = (libm::sinf(angle), libm::cosf(angle));
        let period = (side * uni(rng, 0.02, 0.08)).max(2.0);
        match below(rng, 4) {
            0 => Paint::Stripes {
                c0,
                c1,
                cos,
                sin,
                period,
                duty: uni(rng, 0.3, 0.7),
            },
            1 => Paint::Checks {
                c0,
                c1,
                cos,
                sin,
                period,
            },
            2 => Paint::Speckle { c0, c1 },
            _ => Paint::Flat(c0),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Subject mode.

/// Shapes of a hidden subject region. Each is the set of subject pixels with the smallest
/// values of a key function, which makes the hidden count exactly the target.
#[derive(Clone, Copy, Debug)]
enum RegionKind {
    Ellipse,
    /// Ellipse with a wobbly, low-frequency radius.
    Blob,
    /// Axis-aligned rectangle.
    Rect,
    /// Everything on one side of a line (e.g. a table in front of the legs).
    HalfPlane,
    /// A straight bar across the subject.
    Band,
}

struct Region {
    kind: RegionKind,
    cx: f32,
    cy: f32,
    cos: f32,
    sin: f32,
    /// Reciprocal semi-axes of the unit shape (aspect only; size comes from the count).
    iax: f32,
    iay: f32,
    /// Blob harmonics k = 2, 3, 4: (amplitude, cos phase, sin phase).
    harmonics: [(f32, f32, f32); 3],
}

impl Region {
    fn random(rng: &mut Rng, centre: (f32, f32)) -> Self {
        let kind = match below(rng, 8) {
            0 | 1 => RegionKind::Ellipse,
            2 | 3 => RegionKind::Blob,
            4 => RegionKind::Rect,
            5 | 6 => RegionKind::HalfPlane,
            _ => RegionKind::Band,
        };
        let angle = match kind {
            RegionKind::Rect => 0.0,
            _ => uni(rng, 0.0, 2.0 * core::f32::consts::PI),
        };
        let aspect = libm::expf(uni(rng, -0.9, 0.9));
        let (ax, ay) = (libm::sqrtf(aspect), 1.0 / libm::sqrtf(aspect));
        let harmonics = core::array::from_fn(|_| {
            let phase = uni(rng, 0.0, 2.0 * core::f32::consts::PI);
            (uni(rng, 0.0, 0.2), libm::cosf(phase), libm::sinf(phase))
        });
        Self {
            kind,
            cx: centre.0,
            cy: centre.1,
            cos: libm::cosf(angle),
            sin: libm::sinf(angle),
            iax: 1.0 / ax,
            iay: 1.0 / ay,
            harmonics,
        }
    }

    /// Smaller = hidden first.
    fn key(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = dx * self.cos + dy * self.sin;
        let v = dy * self.cos - dx * self.sin;
        let (eu, ev) = (u * self.iax, v * self.iay);
        match self.kind {
            RegionKind::HalfPlane => u,
            RegionKind::Band => u.abs(),
            RegionKind::Rect => eu.abs().max(ev.abs()),
            RegionKind::Ellipse => eu * eu + ev * ev,
            RegionKind::Blob => {
                let d = libm::sqrtf(eu * eu + ev * ev);
                if d == 0.0 {
                    return 0.0;
                }
                // Powers of the unit direction z = e^{i phi} give cos/sin(k phi) without atan2.
                let z = (eu / d, ev / d);
                let mut zk = z;
                let mut r = 1.0;
                for &(amp, cp, sp) in &self.harmonics {
                    zk = (zk.0 * z.0 - zk.1 * z.1, zk.0 * z.1 + zk.1 * z.0);
                    r += amp * (zk.1 * cp + zk.0 * sp);
                }
                d / r
            }
        }
    }
}

/// Hide exactly the target number of subject pixels, as 1-3 regions.
fn subject_regions(
    canvas: &mut Canvas,
    subject: &[usize],
    fill: Fill,
    coverage: (f32, f32),
    rng: &mut Rng,
) {
    let target = counts(coverage, subject.len(), rng).target;
    let regions = match rng.random::<f32>() {
        p if p < 0.6 => 1,
        p if p < 0.85 => 2,
        _ => 3,
    };
    let weights: [f32; 3] = core::array::from_fn(|_| uni(rng, 0.3, 1.0));
    let total: f32 = weights[..regions].iter().sum();
    let mut parts = [0usize; 3];
    for r in 1..regions {
        parts[r] = (target as f32 * weights[r] / total) as usize;
    }
    parts[0] = target.saturating_sub(parts[1] + parts[2]);

    let w = canvas.w;
    let mut remaining: Vec<usize> = subject.to_vec();
    let mut keyed: Vec<(f32, usize)> = Vec::with_capacity(subject.len());
    for &part in &parts[..regions] {
        let part = part.min(remaining.len());
        if part == 0 {
            continue;
        }
        let c = remaining[below(rng, remaining.len())];
        let centre = ((c % w) as f32 + 0.5, (c / w) as f32 + 0.5);
        let region = Region::random(rng, centre);
        keyed.clear();
        keyed.extend(
            remaining
                .iter()
                .map(|&i| (region.key((i % w) as f32 + 0.5, (i / w) as f32 + 0.5), i)),
        );
        if part < keyed.len() {
            // Ties broken by index, so the chosen set does not depend on the select algorithm.
            keyed.select_nth_unstable_by(part, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        for &(_, i) in &keyed[..part] {
            canvas.plot_index(i);
        }
        remaining.clear();
        remaining.extend(keyed[part..].iter().map(|&(_, i)| i));
    }
    let paint = match fill {
        Fill::Noise => Paint::Noise,
        Fill::Zero => Paint::Flat([0; 3]),
    };
    canvas.accept(&paint, rng);
}

// ---------------------------------------------------------------------------------------
// Rectangles, strokes, objects: add shapes until the target count is reached.

#[derive(Clone, Copy, Debug)]
enum ShapeMode {
    Rectangles,
    Strokes(StrokeWidth),
    Objects,
}

const MAX_STROKE_PTS: usize = 10;
const MAX_POLY: usize = 16;
/// Shapes proposed before giving up and growing the mask instead.
const MAX_SHAPES: usize = 64;
/// Times a shape is shrunk after overshooting the maximum, and by how much.
const RETRIES: usize = 10;
const SHRINK: f32 = 0.6;
/// Smallest brush radius, so that thin strokes on small images stay connected.
const MIN_RADIUS: f32 = 0.75;

#[derive(Clone, Copy, Debug)]
enum Shape {
    Rect {
        cx: f32,
        cy: f32,
        hw: f32,
        hh: f32,
    },
    /// Absolute points; shrinking scales them towards the first.
    Stroke {
        pts: [(f32, f32); MAX_STROKE_PTS],
        n: usize,
        r: f32,
    },
    /// Points relative to the centre.
    Polygon {
        cx: f32,
        cy: f32,
        pts: [(f32, f32); MAX_POLY],
        n: usize,
    },
}

impl Shape {
    fn raster(&self, canvas: &mut Canvas, s: f32) {
        match *self {
            Shape::Rect { cx, cy, hw, hh } => {
                let (hw, hh) = (hw * s, hh * s);
                let x0 = libm::roundf(cx - hw) as isize;
                let x1 = (libm::roundf(cx + hw) as isize).max(x0 + 1);
                let y0 = libm::roundf(cy - hh) as isize;
                let y1 = (libm::roundf(cy + hh) as isize).max(y0 + 1);
                for y in y0.max(0)..y1.min(canvas.h as isize) {
                    canvas.span(y, x0, x1);
                }
            }
            Shape::Stroke { pts, n, r } => {
                let n = n.clamp(1, MAX_STROKE_PTS);
                let p0 = pts[0];
                let at = |k: usize| (p0.0 + s * (pts[k].0 - p0.0), p0.1 + s * (pts[k].1 - p0.1));
                let r = (r * libm::sqrtf(s)).max(MIN_RADIUS);
                if n == 1 {
                    canvas.capsule(p0, p0, r);
                }
                for k in 1..n {
                    canvas.capsule(at(k - 1), at(k), r);
                }
            }
            Shape::Polygon { cx, cy, pts, n } => {
                let mut abs = [(0f32, 0f32); MAX_POLY];
                let n = n.min(MAX_POLY);
                for (a, p) in abs.iter_mut().zip(&pts[..n]) {
                    *a = (cx + s * p.0, cy + s * p.1);
                }
                canvas.polygon(&abs[..n]);
            }
        }
    }

    /// A random shape of mode `mode` meant to add about `area` pixels (strokes ignore it:
    /// their size is a property of the mode).
    fn random(mode: ShapeMode, rng: &mut Rng, centres: &Centres, area: f32) -> (Self, Paint) {
        let (w, h) = (centres.w as f32, centres.h as f32);
        let side = w.min(h);
        let (cx, cy) = centres.pick(rng);
        match mode {
            ShapeMode::Rectangles => {
                let aspect = libm::expf(uni(rng, -1.1, 1.1));
                let hw = (libm::sqrtf(area * aspect) / 2.0).clamp(0.5, w / 2.0);
                let hh = (libm::sqrtf(area / aspect) / 2.0).clamp(0.5, h / 2.0);
                let paint = if rng.random::<bool>() {
                    Paint::Noise
                } else {
                    Paint::Flat(rgb(rng))
                };
                (Shape::Rect { cx, cy, hw, hh }, paint)
            }
            ShapeMode::Strokes(width) => {
                let (lo, hi) = width.fraction();
                let r = side * uni(rng, lo, hi) / 2.0;
                let n = 4 + below(rng, MAX_STROKE_PTS - 3);
                let mut pts = [(cx, cy); MAX_STROKE_PTS];
                let mut angle = uni(rng, 0.0, 2.0 * core::f32::consts::PI);
                for k in 1..n {
                    angle += uni(rng, -1.2, 1.2);
                    let len = side * uni(rng, 0.05, 0.18);
                    let (px, py) = pts[k - 1];
                    let (mut dx, mut dy) = (len * libm::cosf(angle), len * libm::sinf(angle));
                    // Bounce off the borders so strokes stay in the picture.
                    if !(0.0..=w).contains(&(px + dx)) {
                        dx = -dx;
                        angle = core::f32::consts::PI - angle;
                    }
                    if !(0.0..=h).contains(&(py + dy)) {
                        dy = -dy;
                        angle = -angle;
                    }
                    pts[k] = ((px + dx).clamp(0.0, w), (py + dy).clamp(0.0, h));
                }
                let paint = if rng.random::<f32>() < 0.6 {
                    Paint::Noise
                } else {
                    Paint::Flat(rgb(rng))
                };
                (Shape::Stroke { pts, n, r }, paint)
            }
            ShapeMode::Objects => {
                let star = rng.random::<bool>();
                // Mean area of the polygon relative to pi * R^2.
                let fill = if star { 0.45 } else { 0.75 };
                let radius = libm::sqrtf(area / (fill * core::f32::consts::PI)).min(0.6 * side);
                let aspect = libm::sqrtf(libm::expf(uni(rng, -0.7, 0.7)));
                let tilt = uni(rng, 0.0, 2.0 * core::f32::consts::PI);
                let (ts, tc) = (libm::sinf(tilt), libm::cosf(tilt));
                let mut pts = [(0f32, 0f32); MAX_POLY];
                let n = if star {
                    2 * (4 + below(rng, 4))
                } else {
                    5 + below(rng, 8)
                };
                let step = 2.0 * core::f32::consts::PI / n as f32;
                let inner = uni(rng, 0.35, 0.6);
                let phase = uni(rng, 0.0, step);
                for (k, p) in pts[..n].iter_mut().enumerate() {
                    // Convex: points on an ellipse at jittered, increasing angles.
                    // Star: regular angles, alternating outer and inner radii.
                    let (a, rad) = if star {
                        (
                            phase + k as f32 * step,
                            if k % 2 == 0 { 1.0 } else { inner },
                        )
                    } else {
                        (phase + (k as f32 + uni(rng, -0.35, 0.35)) * step, 1.0)
                    };
                    let (x, y) = (
                        radius * rad * libm::cosf(a) * aspect,
                        radius * rad * libm::sinf(a) / aspect,
                    );
                    *p = (x * tc - y * ts, x * ts + y * tc);
                }
                (Shape::Polygon { cx, cy, pts, n }, Paint::texture(rng, side))
            }
        }
    }
}

fn shapes(
    canvas: &mut Canvas,
    centres: &Centres,
    mode: ShapeMode,
    coverage: (f32, f32),
    rng: &mut Rng,
) {
    let c = counts(coverage, canvas.w * canvas.h, rng);
    // How many shapes the target is split between (more may follow where they overlap).
    let planned = match mode {
        ShapeMode::Rectangles => 1 + below(rng, 4),
        ShapeMode::Objects => 1 + below(rng, 3),
        ShapeMode::Strokes(_) => 1,
    };
    let mut placed = 0;
    let mut last = Paint::Noise;
    for _ in 0..MAX_SHAPES {
        if canvas.hidden >= c.target {
            break;
        }
        let need = (c.target - canvas.hidden) as f32;
        let area = need / planned.saturating_sub(placed).max(1) as f32 * uni(rng, 0.7, 1.4);
        let (shape, paint) = Shape::random(mode, rng, centres, area);
        let mut s = 1.0;
        for _ in 0..RETRIES {
            shape.raster(canvas, s);
            if canvas.pending.is_empty() {
                break;
            }
            if canvas.fits(c.max) {
                canvas.accept(&paint, rng);
                last = paint;
                placed += 1;
                break;
            }
            canvas.reject();
            s *= SHRINK;
        }
        canvas.reject();
    }
    canvas.grow_to(c.target, &last, centres, rng);
}

// ---------------------------------------------------------------------------------------
// Text.

/// Strings tried before giving up (text has no fallback that keeps the mask glyph-exact).
const MAX_STRINGS: usize = 256;
const MAX_TEXT_LEN: usize = 12;

/// Random strings of glyphs, added glyph by glyph; a glyph that would overshoot the maximum
/// ends its string and lowers the scale of later ones (at scale 1, only `.` and `-`).
fn text(canvas: &mut Canvas, centres: &Centres, coverage: (f32, f32), rng: &mut Rng) {
    let c = counts(coverage, canvas.w * canvas.h, rng);
    let charset = font::CHARSET.as_bytes();
    let mut max_scale = (canvas.w.min(canvas.h) / 24).clamp(1, 4);
    let mut tiny = false;
    for _ in 0..MAX_STRINGS {
        if canvas.hidden >= c.target {
            break;
        }
        let s = 1 + below(rng, max_scale);
        let len = 1 + below(rng, MAX_TEXT_LEN);
        let paint = Paint::Flat(rgb(rng));
        let (cx, cy) = centres.pick(rng);
        let advance = (font::ADVANCE * s) as f32;
        let x0 = libm::floorf(cx - advance * len as f32 / 2.0) as isize;
        let y0 = libm::floorf(cy - (font::GLYPH_H * s) as f32 / 2.0) as isize;
        for k in 0..len {
            let ch = if tiny {
                b".-"[below(rng, 2)]
            } else {
                charset[below(rng, charset.len())]
            };
            let Some(bitmap) = font::glyph(ch as char) else {
                continue;
            };
            canvas.glyph(bitmap, x0 + (k * font::ADVANCE * s) as isize, y0, s);
            if canvas.fits(c.max) {
                canvas.accept(&paint, rng);
            } else {
                canvas.reject();
                if s > 1 {
                    max_scale = s - 1;
                } else {
                    tiny = true;
                }
                break;
            }
            if canvas.hidden >= c.target {
                break;
            }
        }
    }
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
