//! Rectangles, brush strokes and objects.

use super::*;

// Rectangles, strokes, objects: add shapes until the target count is reached.

#[derive(Clone, Copy, Debug)]
pub(crate) enum ShapeMode {
    Rectangles,
    Strokes(StrokeWidth),
    Objects,
}

pub(crate) const MAX_STROKE_PTS: usize = 10;
pub(crate) const MAX_POLY: usize = 16;
/// Shapes proposed before giving up and growing the mask instead.
pub(crate) const MAX_SHAPES: usize = 64;
/// Times a shape is shrunk after overshooting the maximum, and by how much.
pub(crate) const RETRIES: usize = 10;
pub(crate) const SHRINK: f32 = 0.6;
/// Smallest brush radius, so that thin strokes on small images stay connected.
pub(crate) const MIN_RADIUS: f32 = 0.75;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
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
    pub(crate) fn raster(&self, canvas: &mut Canvas, s: f32) {
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
    pub(crate) fn random(
        mode: ShapeMode,
        rng: &mut Rng,
        centres: &Centres,
        area: f32,
    ) -> (Self, Paint) {
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

pub(crate) fn shapes(
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
