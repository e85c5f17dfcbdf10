//! Subject mode: hide part of the subject's own region (the method's occlusion).

use super::*;

// Subject mode.

/// Shapes of a hidden subject region. Each is the set of subject pixels with the smallest
/// values of a key function, which makes the hidden count exactly the target.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RegionKind {
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

pub(crate) struct Region {
    pub(crate) kind: RegionKind,
    pub(crate) cx: f32,
    pub(crate) cy: f32,
    pub(crate) cos: f32,
    pub(crate) sin: f32,
    /// Reciprocal semi-axes of the unit shape (aspect only; size comes from the count).
    pub(crate) iax: f32,
    pub(crate) iay: f32,
    /// Blob harmonics k = 2, 3, 4: (amplitude, cos phase, sin phase).
    pub(crate) harmonics: [(f32, f32, f32); 3],
}

impl Region {
    pub(crate) fn random(rng: &mut Rng, centre: (f32, f32)) -> Self {
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
    pub(crate) fn key(&self, x: f32, y: f32) -> f32 {
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
pub(crate) fn subject_regions(
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
