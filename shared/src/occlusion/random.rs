//! Random helpers of the occlusion generator.

use super::*;

// Random helpers. Written out rather than `random_range` on floats, which panics on an
// empty range; `usize` goes through `u64` so results do not depend on the platform.

pub(crate) fn below(rng: &mut Rng, n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rng.random_range(0..n as u64) as usize
    }
}

pub(crate) fn uni(rng: &mut Rng, a: f32, b: f32) -> f32 {
    a + (b - a) * rng.random::<f32>()
}

pub(crate) fn rgb(rng: &mut Rng) -> [u8; 3] {
    let v: u32 = rng.random();
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

/// Target pixel count, drawn uniformly from the coverage range, with its bounds.
pub(crate) struct Counts {
    pub(crate) max: usize,
    pub(crate) target: usize,
}

pub(crate) fn counts(coverage: (f32, f32), total: usize, rng: &mut Rng) -> Counts {
    let (lo, hi) = coverage_counts(coverage, total);
    let frac = uni(rng, coverage.0, coverage.1) as f64;
    let target = (libm::round(frac * total as f64) as usize).clamp(lo, hi);
    Counts { max: hi, target }
}

/// Where to put an occluder: mostly over the subject (occluding empty background teaches
/// the networks little), otherwise anywhere.
pub(crate) struct Centres<'a> {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) subject: &'a [usize],
}

pub(crate) const SUBJECT_BIAS: f32 = 0.75;

impl Centres<'_> {
    pub(crate) fn pick(&self, rng: &mut Rng) -> (f32, f32) {
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
