//! The canvas occluders are drawn on.

use super::*;

// Canvas: shapes are rasterised into a pending set first, so a shape that would overshoot
// the coverage maximum can be rejected without having touched the image.

pub(crate) const FREE: u8 = 0;
pub(crate) const HIDDEN: u8 = 1;
pub(crate) const PENDING: u8 = 2;

pub(crate) struct Canvas<'a> {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) rgb: &'a mut [u8],
    /// FREE / HIDDEN / PENDING per pixel.
    pub(crate) state: Vec<u8>,
    pub(crate) hidden: usize,
    pub(crate) pending: Vec<usize>,
}

impl<'a> Canvas<'a> {
    pub(crate) fn new(w: usize, h: usize, rgb: &'a mut [u8]) -> Self {
        Self {
            w,
            h,
            rgb,
            state: alloc::vec![FREE; w * h],
            hidden: 0,
            pending: Vec::new(),
        }
    }

    pub(crate) fn into_mask(self) -> Vec<u8> {
        // Nothing is pending here, but map defensively so the mask is strictly 0/1.
        self.state
            .into_iter()
            .map(|s| (s == HIDDEN) as u8)
            .collect()
    }

    #[inline]
    pub(crate) fn plot_index(&mut self, i: usize) {
        if self.state[i] == FREE {
            self.state[i] = PENDING;
            self.pending.push(i);
        }
    }

    /// Pixels `x0..x1` of row `y`, clipped to the canvas.
    pub(crate) fn span(&mut self, y: isize, x0: isize, x1: isize) {
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

    pub(crate) fn fits(&self, max: usize) -> bool {
        self.hidden + self.pending.len() <= max
    }

    pub(crate) fn reject(&mut self) {
        for &i in &self.pending {
            self.state[i] = FREE;
        }
        self.pending.clear();
    }

    pub(crate) fn accept(&mut self, paint: &Paint, rng: &mut Rng) {
        for &i in &self.pending {
            self.state[i] = HIDDEN;
            let c = paint.colour(i % self.w, i / self.w, rng);
            self.rgb[3 * i..3 * i + 3].copy_from_slice(&c);
        }
        self.hidden += self.pending.len();
        self.pending.clear();
    }

    /// Clamp a float coordinate range to `0..=limit` pixel indices.
    pub(crate) fn clamp_range(lo: f32, hi: f32, limit: usize) -> (usize, usize) {
        let l = limit as f32;
        (
            libm::floorf(lo).clamp(0.0, l) as usize,
            libm::ceilf(hi).clamp(0.0, l) as usize,
        )
    }

    /// Pixels whose centres lie within `r` of segment `a`-`b` (a round-capped thick line).
    pub(crate) fn capsule(&mut self, a: (f32, f32), b: (f32, f32), r: f32) {
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
    pub(crate) fn polygon(&mut self, pts: &[(f32, f32)]) {
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
    pub(crate) fn glyph(&mut self, bitmap: &[u8; font::GLYPH_H], x0: isize, y0: isize, s: usize) {
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
    pub(crate) fn grow_to(
        &mut self,
        target: usize,
        paint: &Paint,
        centres: &Centres,
        rng: &mut Rng,
    ) {
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
