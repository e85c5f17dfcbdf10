//! Classical inpainting baselines: Telea's fast-marching method and a ring-mean fill.
//!
//! They give the networks a cheap, deterministic pre-fill (see [`crate::hole`]) and give
//! the evaluation peers that need no weights. Both run on the camera too, so they are
//! `no_std` + `alloc`, deterministic (same bytes on host and device), and never touch a
//! visible pixel: only hidden pixels are written, and hidden input values are never read.
//!
//! Telea (A. Telea, "An Image Inpainting Technique Based on the Fast Marching Method",
//! J. Graphics Tools 9(1), 2004) fills the hole from its boundary inwards, in order of
//! the distance `T` to the boundary that a fast-marching pass computes. Each pixel `p`
//! is the weighted first-order extrapolation of the already-known pixels `q` within
//! `radius`:
//!
//! ```text
//! I(p) = Σ w(p,q) · (I(q) + ∇I(q)·(p − q)) / Σ w(p,q)
//! w    = dir · dst · lev,  dir = |(p − q)/|p − q| · N(p)|,  dst = 1/|p − q|²,
//!        lev = 1/(1 + |T(q) − T(p)|),  N = ∇T/|∇T|.
//! ```
//!
//! As in OpenCV's `INPAINT_TELEA`, `T` is also marched outwards (negated) over the known
//! ring the neighbourhood can reach, so that `lev` separates known pixels by their
//! distance from the front too; `dir` is taken as an absolute value with a tiny floor; the
//! neighbourhood is the disc `|p − q| ≤ radius` with `radius` at least 1; pixels are
//! filled when the front first reaches them. With the gradient term dropped this matches
//! OpenCV 5.0 to 38–43 dB on the fixtures of `tests/telea_opencv.rs`.
//!
//! Where we differ from OpenCV, on purpose: `∇I(q)` in the Taylor step is slope-limited
//! (see `limited_slope`) where OpenCV adds a normalised, at most ±1.4-level nudge, so
//! smooth and textured regions extrapolate (+5.7 and +2.8 dB on those fixtures) while
//! hard edges do not overshoot (within 0.4 dB of OpenCV there); the image edge is simply absent (no padding is read); results round to
//! nearest, so a flat image comes back exact (OpenCV's is off by up to 2 levels).

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::image::{ImageError, ImageU8, Mask};

/// "Not reached" distance; also what hidden pixels hold until the march reaches them.
const INF: f32 = 1.0e6;

// Per-pixel state. Inner march: INSIDE (hidden, unreached) → BAND (in the heap, already
// filled) → KNOWN (frozen). Outer march over known pixels: FAR → TRIAL → KNOWN.
const KNOWN: u8 = 0;
const BAND: u8 = 1;
const INSIDE: u8 = 2;
const FAR: u8 = 3;
const TRIAL: u8 = 4;

/// Heap entry: smallest `t` first, ties in insertion order (deterministic, and the same
/// FIFO order as OpenCV's list-based queue).
#[derive(Clone, Copy, Debug)]
struct Node {
    t: f32,
    seq: usize,
    idx: usize,
}

impl Ord for Node {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Node {}

/// One neighbourhood offset `q − p` with the geometry of `p − q` precomputed.
#[derive(Clone, Copy, Debug)]
struct Tap {
    dx: isize,
    dy: isize,
    /// `p − q`, x and y.
    rx: f32,
    ry: f32,
    inv_len: f32,
    inv_len2: f32,
}

/// Working buffers for [`telea_into`], kept between calls so that a steady-state loop
/// (the camera's) allocates nothing once they have grown to the frame size.
#[derive(Clone, Debug, Default)]
pub struct TeleaScratch {
    flag: Vec<u8>,
    t: Vec<f32>,
    heap: BinaryHeap<Node>,
    seq: usize,
    disc: Vec<Tap>,
    disc_radius: usize,
    acc: Vec<f32>,
    /// Per pixel and channel, the limited slopes `(gx, gy)` of the Taylor step, computed
    /// when a pixel is first used as a tap and kept until a pixel within two of it along
    /// an axis is filled (the only event that changes them). A known pixel serves up to
    /// ~80 hidden ones, so this removes most of the fill's work without changing a bit.
    slope: Vec<f32>,
    /// Which of a pixel's cached slopes are current: [`SLOPE_X`], [`SLOPE_Y`].
    slope_ok: Vec<u8>,
}

/// [`TeleaScratch::slope_ok`] bits: a fill along a row changes only the x slopes of the
/// pixels beside it, one along a column only their y slopes.
const SLOPE_X: u8 = 1;
const SLOPE_Y: u8 = 2;

impl TeleaScratch {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, idx: usize, t: f32) {
        self.heap.push(Node {
            t,
            seq: self.seq,
            idx,
        });
        self.seq += 1;
    }

    /// The disc `0 < |d| ≤ radius`, row-major.
    fn build_disc(&mut self, radius: usize) {
        if self.disc_radius == radius && !self.disc.is_empty() {
            return;
        }
        self.disc.clear();
        let r = radius as isize;
        for dy in -r..=r {
            for dx in -r..=r {
                let d2 = dx * dx + dy * dy;
                if d2 == 0 || d2 > r * r {
                    continue;
                }
                let len2 = d2 as f32;
                self.disc.push(Tap {
                    dx,
                    dy,
                    rx: -dx as f32,
                    ry: -dy as f32,
                    inv_len: 1.0 / libm::sqrtf(len2),
                    inv_len2: 1.0 / len2,
                });
            }
        }
        self.disc_radius = radius;
    }
}

/// Errors unless `image` is consistent and `mask` has its width and height.
fn check(image: &ImageU8, mask: &Mask) -> Result<usize, ImageError> {
    let n = image
        .width
        .checked_mul(image.height)
        .ok_or(ImageError::TooLarge)?;
    let len = n.checked_mul(image.channels).ok_or(ImageError::TooLarge)?;
    if image.data.len() != len {
        return Err(ImageError::BufferSize {
            expected: len,
            actual: image.data.len(),
        });
    }
    if mask.width != image.width || mask.height != image.height {
        return Err(ImageError::Shape {
            expected_w: image.width,
            expected_h: image.height,
            expected_c: 1,
            actual_w: mask.width,
            actual_h: mask.height,
            actual_c: 1,
        });
    }
    if mask.data.len() != n {
        return Err(ImageError::BufferSize {
            expected: n,
            actual: mask.data.len(),
        });
    }
    Ok(n)
}

/// Telea inpainting of the hidden pixels of `image` (`mask` 1 = hidden) with neighbourhood
/// `radius` (OpenCV's `inpaintRadius`; 0 is taken as 1). Visible pixels are returned
/// unchanged; an all-hidden image, having nothing to propagate, comes back black.
pub fn telea(image: &ImageU8, mask: &Mask, radius: usize) -> Result<ImageU8, ImageError> {
    let mut out = ImageU8 {
        width: 0,
        height: 0,
        channels: 0,
        data: Vec::new(),
    };
    telea_into(image, mask, radius, &mut TeleaScratch::new(), &mut out)?;
    Ok(out)
}

/// [`telea`] into `out` (overwritten with `image`'s shape, its allocation reused), with
/// the working buffers in `scratch`.
pub fn telea_into(
    image: &ImageU8,
    mask: &Mask,
    radius: usize,
    scratch: &mut TeleaScratch,
    out: &mut ImageU8,
) -> Result<(), ImageError> {
    let n = check(image, mask)?;
    out.width = image.width;
    out.height = image.height;
    out.channels = image.channels;
    out.data.clear();
    out.data.extend_from_slice(&image.data);
    if !mask.data.iter().any(|&m| m != 0) {
        return Ok(());
    }
    let (w, h, c) = (image.width, image.height, image.channels);
    // A disc wider than the image reaches nothing more.
    let radius = radius.clamp(1, w.max(h));
    scratch.build_disc(radius);
    scratch.acc.clear();
    scratch.acc.resize(c, 0.0);
    scratch.heap.clear();
    scratch.seq = 0;

    // Band: known pixels 4-adjacent to the hole, T = 0.
    scratch.flag.clear();
    scratch.flag.resize(n, FAR);
    scratch.t.clear();
    scratch.t.resize(n, INF);
    scratch.slope.clear();
    scratch.slope.resize(2 * c * n, 0.0);
    scratch.slope_ok.clear();
    scratch.slope_ok.resize(n, 0);
    let hidden = |i: usize| mask.data[i] != 0;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if hidden(i) {
                scratch.flag[i] = INSIDE;
            } else if (y > 0 && hidden(i - w))
                || (x > 0 && hidden(i - 1))
                || (y + 1 < h && hidden(i + w))
                || (x + 1 < w && hidden(i + 1))
            {
                scratch.flag[i] = BAND;
                scratch.t[i] = 0.0;
            }
        }
    }
    let band: usize = scratch.flag.iter().filter(|&&f| f == BAND).count();
    if band == 0 {
        // Everything is hidden: nothing to propagate from.
        out.data.fill(0);
        return Ok(());
    }

    march_outside(scratch, w, h, radius);
    march_inside(scratch, w, h, c, out);

    // Unreachable while any pixel is visible (the grid is 4-connected), kept as a guard.
    for (i, &f) in scratch.flag.iter().enumerate() {
        if f == INSIDE {
            out.data[i * c..(i + 1) * c].fill(0);
        }
    }
    Ok(())
}

/// Fast-marching update at `i` from its four neighbours' `t` (unavailable ones hold
/// [`INF`]): the upwind solution of |∇T| = 1 on the grid.
fn solve(t: &[f32], w: usize, h: usize, i: usize) -> f32 {
    let (x, y) = (i % w, i / w);
    let up = if y > 0 { t[i - w] } else { INF };
    let down = if y + 1 < h { t[i + w] } else { INF };
    let left = if x > 0 { t[i - 1] } else { INF };
    let right = if x + 1 < w { t[i + 1] } else { INF };
    // The two-neighbour solution is monotone in both, so the best of the four quadrants
    // uses the smaller value on each axis.
    let a = up.min(down);
    let b = left.min(right);
    let d = a - b;
    let s = if d.abs() >= 1.0 {
        1.0 + a.min(b)
    } else {
        0.5 * (a + b + libm::sqrtf(2.0 - d * d))
    };
    s.min(INF)
}

/// 4-neighbours of `i` in the order up, left, down, right.
fn neighbours(i: usize, w: usize, h: usize) -> [Option<usize>; 4] {
    let (x, y) = (i % w, i / w);
    [
        (y > 0).then(|| i - w),
        (x > 0).then(|| i - 1),
        (y + 1 < h).then(|| i + w),
        (x + 1 < w).then(|| i + 1),
    ]
}

/// Distance from the band over the known pixels, stored negated, as far as any
/// neighbourhood of a hidden pixel can reach (farther pixels get the limit).
fn march_outside(s: &mut TeleaScratch, w: usize, h: usize, radius: usize) {
    // The grid distance overestimates the Euclidean one a little; 2r + 2 is ample.
    let limit = 2.0 * radius as f32 + 2.0;
    for i in 0..s.flag.len() {
        if s.flag[i] == BAND {
            s.push(i, 0.0);
        }
    }
    while let Some(node) = s.heap.pop() {
        if node.t > limit {
            break;
        }
        let i = node.idx;
        match s.flag[i] {
            BAND => {}
            TRIAL if node.t <= s.t[i] => s.flag[i] = KNOWN,
            _ => continue,
        }
        for v in neighbours(i, w, h).into_iter().flatten() {
            if matches!(s.flag[v], FAR | TRIAL) {
                let tv = solve(&s.t, w, h, v);
                if tv < s.t[v] {
                    s.t[v] = tv;
                    s.flag[v] = TRIAL;
                    s.push(v, tv);
                }
            }
        }
    }
    s.heap.clear();
    for (f, t) in s.flag.iter_mut().zip(s.t.iter_mut()) {
        if matches!(*f, FAR | TRIAL | KNOWN) {
            *t = -t.min(limit);
            *f = KNOWN;
        }
    }
}

/// The march into the hole: each hidden pixel is filled when the front first reaches it.
fn march_inside(s: &mut TeleaScratch, w: usize, h: usize, c: usize, out: &mut ImageU8) {
    for i in 0..s.flag.len() {
        if s.flag[i] == BAND {
            s.push(i, 0.0);
        }
    }
    while let Some(node) = s.heap.pop() {
        let i = node.idx;
        if s.flag[i] != BAND || node.t > s.t[i] {
            continue;
        }
        s.flag[i] = KNOWN;
        for v in neighbours(i, w, h).into_iter().flatten() {
            match s.flag[v] {
                INSIDE => {
                    let tv = solve(&s.t, w, h, v);
                    s.t[v] = tv;
                    // Away from the edge every disc tap and its neighbours are in the
                    // image: the specialised copy drops the bounds checks.
                    let (x, y) = (v % w, v / w);
                    let margin = s.disc_radius + 2;
                    if x >= margin && y >= margin && x + margin < w && y + margin < h {
                        fill_pixel::<true>(s, w, h, c, v, out);
                    } else {
                        fill_pixel::<false>(s, w, h, c, v, out);
                    }
                    s.flag[v] = BAND;
                    invalidate_slopes(&mut s.slope_ok, w, h, v);
                    s.push(v, tv);
                }
                BAND => {
                    let tv = solve(&s.t, w, h, v);
                    if tv < s.t[v] {
                        s.t[v] = tv;
                        s.push(v, tv);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Central difference where both sides are available, one-sided where one is, else 0.
#[inline]
fn diff(centre: f32, lo: Option<f32>, hi: Option<f32>) -> f32 {
    match (lo, hi) {
        (Some(a), Some(b)) => 0.5 * (b - a),
        (None, Some(b)) => b - centre,
        (Some(a), None) => centre - a,
        (None, None) => 0.0,
    }
}

/// Telea's estimate for hidden pixel `p` (still flagged INSIDE, so it is not its own
/// neighbour) from the non-INSIDE pixels of its disc.
fn fill_pixel<const INTERIOR: bool>(
    s: &mut TeleaScratch,
    w: usize,
    h: usize,
    c: usize,
    p: usize,
    out: &mut ImageU8,
) {
    let (px, py) = ((p % w) as isize, (p / w) as isize);
    let TeleaScratch {
        flag,
        t,
        disc,
        acc,
        slope,
        slope_ok,
        ..
    } = s;
    let (flag, t) = (&*flag, &*t);
    let at = |x: isize, y: isize| -> Option<usize> {
        if INTERIOR || (x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h) {
            let i = y as usize * w + x as usize;
            (flag[i] != INSIDE).then_some(i)
        } else {
            None
        }
    };

    // Front normal N = ∇T / |∇T| at p.
    let tp = t[p];
    let gtx = diff(
        tp,
        at(px - 1, py).map(|i| t[i]),
        at(px + 1, py).map(|i| t[i]),
    );
    let gty = diff(
        tp,
        at(px, py - 1).map(|i| t[i]),
        at(px, py + 1).map(|i| t[i]),
    );
    let gn = libm::sqrtf(gtx * gtx + gty * gty);
    let (nx, ny) = if gn > 1e-6 {
        (gtx / gn, gty / gn)
    } else {
        (0.0, 0.0)
    };
    let isotropic = gn <= 1e-6;

    acc.fill(0.0);
    let mut sum_w = 0.0f32;
    let data = &out.data;
    for tap in disc.iter() {
        let (qx, qy) = (px + tap.dx, py + tap.dy);
        let Some(q) = at(qx, qy) else { continue };
        let dir = if isotropic {
            1.0
        } else {
            let d = (tap.rx * nx + tap.ry * ny).abs() * tap.inv_len;
            // Pixels level with the front along its tangent carry (almost) nothing.
            if d <= 0.01 {
                1e-6
            } else {
                d
            }
        };
        let lev = 1.0 / (1.0 + (t[q] - tp).abs());
        let wq = dir * tap.inv_len2 * lev;
        sum_w += wq;
        let slopes = &mut slope[2 * c * q..2 * c * (q + 1)];
        let stale = !slope_ok[q] & (SLOPE_X | SLOPE_Y);
        if stale != 0 {
            tap_slopes(flag, data, w, h, c, q, stale, slopes);
            slope_ok[q] = SLOPE_X | SLOPE_Y;
        }
        let values = &data[q * c..(q + 1) * c];
        for ((a, &v), g) in acc.iter_mut().zip(values).zip(slopes.chunks_exact(2)) {
            *a += wq * (v as f32 + g[0] * tap.rx + g[1] * tap.ry);
        }
    }
    let dst = &mut out.data[p * c..(p + 1) * c];
    for (o, &a) in dst.iter_mut().zip(acc.iter()) {
        // sum_w > 0: the neighbour that reached p is in its disc with a positive weight.
        *o = round_u8(a / sum_w);
    }
}

/// The limited slopes `(gx, gy)` of each channel at known pixel `q` into `out`
/// (`2 · c` floats), from the pixels available now within two of it along each axis;
/// only the axes in `axes` ([`SLOPE_X`], [`SLOPE_Y`]).
#[allow(clippy::too_many_arguments)]
fn tap_slopes(
    flag: &[u8],
    data: &[u8],
    w: usize,
    h: usize,
    c: usize,
    q: usize,
    axes: u8,
    out: &mut [f32],
) {
    let (qx, qy) = ((q % w) as isize, (q / w) as isize);
    let at = |x: isize, y: isize| -> Option<usize> {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let i = y as usize * w + x as usize;
            (flag[i] != INSIDE).then_some(i)
        } else {
            None
        }
    };
    // The second neighbour on a side only matters when the first is there.
    if axes & SLOPE_X != 0 {
        let (l, r) = (at(qx - 1, qy), at(qx + 1, qy));
        let (l2, r2) = (l.and(at(qx - 2, qy)), r.and(at(qx + 2, qy)));
        for (ch, g) in out.chunks_exact_mut(2).enumerate() {
            let v = |i: usize| data[i * c + ch] as f32;
            g[0] = limited_slope(v(q), [l2.map(v), l.map(v), r.map(v), r2.map(v)]);
        }
    }
    if axes & SLOPE_Y != 0 {
        let (u, d) = (at(qx, qy - 1), at(qx, qy + 1));
        let (u2, d2) = (u.and(at(qx, qy - 2)), d.and(at(qx, qy + 2)));
        for (ch, g) in out.chunks_exact_mut(2).enumerate() {
            let v = |i: usize| data[i * c + ch] as f32;
            g[1] = limited_slope(v(q), [u2.map(v), u.map(v), d.map(v), d2.map(v)]);
        }
    }
}

/// Forget the cached slopes that pixel `v`, just filled, takes part in: those of the
/// pixels within two of it along each axis.
fn invalidate_slopes(slope_ok: &mut [u8], w: usize, h: usize, v: usize) {
    let (x, y) = (v % w, v / w);
    for k in 1..=2 {
        if x >= k {
            slope_ok[v - k] &= !SLOPE_X;
        }
        if x + k < w {
            slope_ok[v + k] &= !SLOPE_X;
        }
        if y >= k {
            slope_ok[v - k * w] &= !SLOPE_Y;
        }
        if y + k < h {
            slope_ok[v + k * w] &= !SLOPE_Y;
        }
    }
}

/// Slope of the image at `c` for the Taylor step, from the values two and one pixels
/// before it and one and two after (`None`: outside or still hidden). With both direct
/// neighbours: monotonized central (the TVD limiter), i.e. the central difference capped
/// at twice either one-sided difference; zero at an extremum. With one side only (at the
/// hole's edge, where nothing on the far side can limit it): that side's two successive
/// differences, only if they agree within 25% (a locally linear run), else zero. A plain
/// difference across a hard edge would be extrapolated up to `radius` pixels and
/// overshoot (measured: −2 to −3 dB on the edge fixtures).
#[inline]
fn limited_slope(c: f32, [lo2, lo, hi, hi2]: [Option<f32>; 4]) -> f32 {
    let limited = |d1: f32, d2: f32, central: bool| -> f32 {
        if d1 * d2 <= 0.0 {
            return 0.0;
        }
        let m = if central {
            (2.0 * d1.abs())
                .min(2.0 * d2.abs())
                .min(0.5 * (d1 + d2).abs())
        } else if (d1 - d2).abs() <= 0.25 * d1.abs().max(d2.abs()) {
            d1.abs().min(d2.abs())
        } else {
            return 0.0;
        };
        if d1 > 0.0 {
            m
        } else {
            -m
        }
    };
    match (lo2, lo, hi, hi2) {
        (_, Some(a), Some(b), _) => limited(c - a, b - c, true),
        (Some(a2), Some(a), None, _) => limited(a - a2, c - a, false),
        (_, None, Some(b), Some(b2)) => limited(b - c, b2 - b, false),
        _ => 0.0,
    }
}

#[inline]
fn round_u8(v: f32) -> u8 {
    libm::floorf(v + 0.5).clamp(0.0, 255.0) as u8
}

/// The simplest peer: every hidden pixel gets one colour, the mean of the visible pixels
/// within `ring` pixels (Chebyshev, i.e. a square dilation of the hole; 0 is taken as 1)
/// of any hidden pixel. Visible pixels are unchanged; an all-hidden image comes back black.
pub fn ring_mean(image: &ImageU8, mask: &Mask, ring: usize) -> Result<ImageU8, ImageError> {
    let n = check(image, mask)?;
    let mut out = image.clone();
    let (w, h, c) = (image.width, image.height, image.channels);
    if n == 0 || !mask.data.iter().any(|&m| m != 0) {
        return Ok(out);
    }
    let ring = ring.clamp(1, w.max(h));
    // Square dilation, separably: distance to the nearest hidden pixel along the row,
    // then along the column of the row-dilated set.
    let mut near = alloc::vec![false; n];
    for y in 0..h {
        let row = &mask.data[y * w..(y + 1) * w];
        let mut last: Option<usize> = None;
        for x in 0..w {
            if row[x] != 0 {
                last = Some(x);
            }
            near[y * w + x] = last.is_some_and(|l| x - l <= ring);
        }
        let mut next: Option<usize> = None;
        for x in (0..w).rev() {
            if row[x] != 0 {
                next = Some(x);
            }
            near[y * w + x] |= next.is_some_and(|nx| nx - x <= ring);
        }
    }
    let mut dilated = alloc::vec![false; n];
    for x in 0..w {
        let mut last: Option<usize> = None;
        for y in 0..h {
            if near[y * w + x] {
                last = Some(y);
            }
            dilated[y * w + x] = last.is_some_and(|l| y - l <= ring);
        }
        let mut next: Option<usize> = None;
        for y in (0..h).rev() {
            if near[y * w + x] {
                next = Some(y);
            }
            dilated[y * w + x] |= next.is_some_and(|ny| ny - y <= ring);
        }
    }
    let mut sum = alloc::vec![0u64; c];
    let mut count = 0u64;
    for (i, (&near_hole, &m)) in dilated.iter().zip(&mask.data).enumerate() {
        if near_hole && m == 0 {
            count += 1;
            for (s, &v) in sum.iter_mut().zip(image.pixel(i)) {
                *s += v as u64;
            }
        }
    }
    let fill: Vec<u8> = if count == 0 {
        alloc::vec![0; c]
    } else {
        sum.iter()
            .map(|&s| ((s + count / 2) / count) as u8)
            .collect()
    };
    for i in 0..n {
        if mask.data[i] != 0 {
            out.data[i * c..(i + 1) * c].copy_from_slice(&fill);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn img(w: usize, h: usize, c: usize, f: impl Fn(usize, usize, usize) -> u8) -> ImageU8 {
        let mut data = Vec::with_capacity(w * h * c);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    data.push(f(x, y, ch));
                }
            }
        }
        ImageU8::from_vec(w, h, c, data).unwrap()
    }

    fn rect(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Mask {
        Mask::from_fn(w, h, |i| {
            let (x, y) = (i % w, i / w);
            x >= x0 && x < x1 && y >= y0 && y < y1
        })
    }

    fn assert_visible_kept(a: &ImageU8, b: &ImageU8, mask: &Mask) {
        let c = a.channels;
        for i in 0..mask.data.len() {
            if mask.data[i] == 0 {
                assert_eq!(
                    a.data[i * c..(i + 1) * c],
                    b.data[i * c..(i + 1) * c],
                    "pixel {i}"
                );
            }
        }
    }

    #[test]
    fn constant_image_is_restored_exactly() {
        // Odd values too: a +0.5 rounding bias (OpenCV's) would turn 201 into 202.
        for (c, v) in [(1, 201u8), (3, 7), (4, 255)] {
            let im = img(20, 16, c, |_, _, ch| v.wrapping_add(ch as u8 * 10));
            let mask = rect(20, 16, 5, 4, 14, 11);
            for radius in [1, 3, 5, 9] {
                let out = telea(&im, &mask, radius).unwrap();
                assert_eq!(out, im, "c {c} radius {radius}");
            }
        }
    }

    #[test]
    fn horizontal_ramp_is_restored_within_two_levels() {
        let im = img(40, 20, 3, |x, _, ch| (20 + 5 * x + ch) as u8);
        let mask = rect(40, 20, 16, 7, 22, 13);
        let out = telea(&im, &mask, 5).unwrap();
        for i in 0..mask.data.len() {
            if mask.data[i] != 0 {
                for ch in 0..3 {
                    let (a, b) = (out.data[i * 3 + ch] as i32, im.data[i * 3 + ch] as i32);
                    assert!((a - b).abs() <= 2, "pixel {i} ch {ch}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn one_pixel_hole_takes_its_neighbours_mean() {
        // 3x3, centre hidden, radius 1: only the 4-neighbours count, all equally (T is
        // flat around a one-pixel hole, so no direction is preferred).
        #[rustfmt::skip]
        let data = vec![
            0,  10, 0,
            50, 99, 90,
            0, 200, 0,
        ];
        let im = ImageU8::from_vec(3, 3, 1, data).unwrap();
        let mask = Mask::from_fn(3, 3, |i| i == 4);
        let v = telea(&im, &mask, 1).unwrap().data[4];
        assert_eq!(v, 88, "mean of 10, 50, 90, 200 is 87.5");
        // Larger radius (corners now count too): still within the known range.
        let v = telea(&im, &mask, 5).unwrap().data[4];
        assert!(v <= 200, "{v}");
    }

    #[test]
    fn visible_pixels_and_hidden_inputs() {
        let im = img(24, 18, 3, |x, y, ch| {
            ((x * 37 + y * 11 + ch * 5) % 256) as u8
        });
        let mask = Mask::from_fn(24, 18, |i| {
            (i * 7919) % 5 == 0 || (i % 24 > 8 && i % 24 < 13)
        });
        let out = telea(&im, &mask, 5).unwrap();
        assert_visible_kept(&out, &im, &mask);
        // Hidden pixels' input values are never read.
        let mut other = im.clone();
        for i in 0..mask.data.len() {
            if mask.data[i] != 0 {
                other.pixel_mut(i).fill(123);
            }
        }
        assert_eq!(telea(&other, &mask, 5).unwrap(), out);
    }

    #[test]
    fn channels_are_independent() {
        // Weights depend only on geometry, so a 4-channel fill equals four 1-channel fills.
        let im = img(17, 13, 4, |x, y, ch| {
            ((x * x + 3 * y + 60 * ch) % 256) as u8
        });
        let mask = Mask::from_fn(17, 13, |i| (i / 17 + i % 17) % 6 < 2);
        let out = telea(&im, &mask, 4).unwrap();
        for ch in 0..4 {
            let plane = img(17, 13, 1, |x, y, _| im.data[(y * 17 + x) * 4 + ch]);
            let got = telea(&plane, &mask, 4).unwrap();
            for i in 0..17 * 13 {
                assert_eq!(got.data[i], out.data[i * 4 + ch], "pixel {i} ch {ch}");
            }
        }
    }

    #[test]
    fn holes_on_the_border() {
        let w = 16;
        // Each side, each corner, and a full-height column.
        let masks = [
            rect(w, 12, 0, 0, 4, 3),
            rect(w, 12, 12, 9, 16, 12),
            rect(w, 12, 0, 4, 16, 6),
            rect(w, 12, 7, 0, 9, 12),
            rect(w, 12, 3, 10, 8, 12),
        ];
        let flat = img(w, 12, 3, |_, _, ch| 40 + ch as u8);
        let ramp = img(w, 12, 1, |_, y, _| (10 + 8 * y) as u8);
        for (k, mask) in masks.iter().enumerate() {
            assert_eq!(telea(&flat, mask, 5).unwrap(), flat, "mask {k}");
            let out = telea(&ramp, mask, 3).unwrap();
            assert_visible_kept(&out, &ramp, mask);
            for i in 0..mask.data.len() {
                let (a, b) = (out.data[i] as i32, ramp.data[i] as i32);
                assert!((a - b).abs() <= 8, "mask {k} pixel {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn empty_and_full_masks() {
        let im = img(9, 7, 3, |x, y, ch| (x * 20 + y + ch) as u8);
        assert_eq!(telea(&im, &Mask::new(9, 7), 5).unwrap(), im);
        assert_eq!(ring_mean(&im, &Mask::new(9, 7), 2).unwrap(), im);
        let all = Mask::from_fn(9, 7, |_| true);
        assert_eq!(telea(&im, &all, 5).unwrap(), ImageU8::new(9, 7, 3));
        assert_eq!(ring_mean(&im, &all, 2).unwrap(), ImageU8::new(9, 7, 3));
        // 1x1 images.
        let one = ImageU8::from_vec(1, 1, 1, vec![77]).unwrap();
        assert_eq!(
            telea(&one, &Mask::from_fn(1, 1, |_| true), 0).unwrap().data,
            vec![0]
        );
        assert_eq!(telea(&one, &Mask::new(1, 1), 0).unwrap(), one);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let im = ImageU8::new(8, 6, 3);
        let err = telea(&im, &Mask::new(6, 8), 5).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Shape {
                    expected_w: 8,
                    actual_w: 6,
                    ..
                }
            ),
            "{err}"
        );
        assert!(ring_mean(&im, &Mask::new(8, 5), 1).is_err());
        let mut short = Mask::new(8, 6);
        short.data.pop();
        assert!(matches!(
            telea(&im, &short, 5),
            Err(ImageError::BufferSize { .. })
        ));
        let mut bad = im.clone();
        bad.data.pop();
        assert!(matches!(
            telea(&bad, &Mask::new(8, 6), 5),
            Err(ImageError::BufferSize { .. })
        ));
    }

    #[test]
    fn scratch_reuse_matches_fresh_calls() {
        let mut scratch = TeleaScratch::new();
        let mut out = ImageU8::new(1, 1, 1);
        for (w, h, c, radius) in [(20, 14, 3, 5), (9, 30, 1, 2), (20, 14, 4, 5), (5, 5, 3, 7)] {
            let im = img(w, h, c, |x, y, ch| {
                ((x * 13 + y * 29 + ch * 71) % 256) as u8
            });
            let mask = Mask::from_fn(w, h, |i| (i * 31) % 7 < 2);
            telea_into(&im, &mask, radius, &mut scratch, &mut out).unwrap();
            assert_eq!(out, telea(&im, &mask, radius).unwrap());
        }
    }

    /// The exact bytes Telea returns on a fixed set of images and holes (smooth, textured,
    /// thin strokes, speckle, holes on the border; 1, 3 and 4 channels; radii 2, 5 and 9),
    /// as one CRC-32. Speed work on the march must leave it unchanged: the networks were
    /// trained on these pre-fills.
    #[test]
    fn golden_digest_of_fixed_cases() {
        let mut crc = crate::link::CRC.digest();
        let hash = |x: usize, y: usize, k: usize| -> u32 {
            let mut z = (x as u32).wrapping_mul(0x9E37_79B1) ^ (y as u32).wrapping_mul(0x85EB_CA77);
            z ^= (k as u32).wrapping_mul(0xC2B2_AE3D);
            z ^= z >> 15;
            z = z.wrapping_mul(0x2C1B_3C6D);
            z ^ (z >> 12)
        };
        let cases: [(usize, usize, usize, usize); 4] = [
            (128, 128, 3, 5),
            (37, 23, 1, 2),
            (64, 48, 4, 9),
            (96, 80, 3, 5),
        ];
        for (k, &(w, h, c, radius)) in cases.iter().enumerate() {
            let im = img(w, h, c, |x, y, ch| {
                let smooth = (x * 255 / w + y * 128 / h + ch * 40) as u32;
                let noise = hash(x, y, k * 8 + ch) % 24;
                ((smooth + noise) % 256) as u8
            });
            let masks = [
                rect(w, h, w / 4, h / 5, w / 2, 4 * h / 5),
                Mask::from_fn(w, h, |i| {
                    let (x, y) = ((i % w) as isize, (i / w) as isize);
                    let (cx, cy) = (w as isize / 2, h as isize / 3);
                    (x - cx) * (x - cx) + (y - cy) * (y - cy) < (h as isize / 3).pow(2)
                }),
                Mask::from_fn(w, h, |i| {
                    let (x, y) = (i % w, i / w);
                    (x + 2 * y) % 17 < 2 || (3 * x + y) % 29 == 0
                }),
                Mask::from_fn(w, h, |i| hash(i % w, i / w, 99 + k) % 5 == 0),
                rect(w, h, 0, h / 2, w / 3, h),
            ];
            for mask in &masks {
                let out = telea(&im, mask, radius).unwrap();
                crc.update(&out.data);
            }
        }
        assert_eq!(crc.finalize(), 868_998_961, "golden digest changed");
    }

    #[test]
    fn ring_mean_known_values() {
        // 5x5 grey, centre hidden: ring 1 is the 8 neighbours, ring 2 the whole rest.
        let im = img(5, 5, 1, |x, y, _| (10 * (y * 5 + x)) as u8);
        let mask = Mask::from_fn(5, 5, |i| i == 12);
        let one = ring_mean(&im, &mask, 1).unwrap();
        // Neighbours 6,7,8,11,13,16,17,18 → mean 12 → 120.
        assert_eq!(one.data[12], 120);
        assert_visible_kept(&one, &im, &mask);
        let two = ring_mean(&im, &mask, 2).unwrap();
        // All 24 others: (0 + … + 240 − 120) / 24 = 120 as well; use a corner hole.
        assert_eq!(two.data[12], 120);
        let corner = Mask::from_fn(5, 5, |i| i == 0);
        // Ring 1 around (0,0): pixels 1, 5, 6 → (10 + 50 + 60) / 3 = 40.
        assert_eq!(ring_mean(&im, &corner, 1).unwrap().data[0], 40);
        // Ring 0 is taken as 1.
        assert_eq!(ring_mean(&im, &corner, 0).unwrap().data[0], 40);
        // Two holes share one global mean: (1,0)'s ring and (4,4)'s ring.
        let two_holes = Mask::from_fn(5, 5, |i| i == 0 || i == 24);
        let out = ring_mean(&im, &two_holes, 1).unwrap();
        // Rings: {1, 5, 6} and {18, 19, 23} → (10+50+60+180+190+230)/6 = 120.
        assert_eq!((out.data[0], out.data[24]), (120, 120));
    }

    #[test]
    fn ring_mean_rounds_per_channel() {
        let im = img(3, 1, 3, |x, _, ch| {
            [[0, 1, 255], [0, 0, 0], [1, 2, 254]][x][ch]
        });
        let mask = Mask::from_fn(3, 1, |i| i == 1);
        let out = ring_mean(&im, &mask, 1).unwrap();
        // (0+1)/2 = 0.5 → 1, (1+2)/2 = 1.5 → 2, (255+254)/2 = 254.5 → 255.
        assert_eq!(out.pixel(1), &[1, 2, 255]);
    }

    fn case() -> impl Strategy<Value = (ImageU8, Mask, usize)> {
        (
            1usize..24,
            1usize..24,
            prop_oneof![Just(1usize), Just(3), Just(4)],
            0u8..=100,
        )
            .prop_flat_map(|(w, h, c, density)| {
                (
                    proptest::collection::vec(any::<u8>(), w * h * c),
                    proptest::collection::vec(0u8..100, w * h),
                    0usize..9,
                )
                    .prop_map(move |(data, noise, radius)| {
                        let image = ImageU8::from_vec(w, h, c, data).unwrap();
                        let mask = Mask::from_fn(w, h, |i| noise[i] < density);
                        (image, mask, radius)
                    })
            })
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_visible_pixels((image, mask, radius) in case()) {
            let out = telea(&image, &mask, radius).unwrap();
            prop_assert_eq!(out.data.len(), image.data.len());
            assert_visible_kept(&out, &image, &mask);
            let out = ring_mean(&image, &mask, radius).unwrap();
            assert_visible_kept(&out, &image, &mask);
        }
    }
}
