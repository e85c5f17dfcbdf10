//! Triangle meshes with per-part UV charts, and the tapered capsules the body is made of.

use std::f32::consts::{FRAC_PI_2, PI, TAU};

use super::math::{add, cross, dot, normalize_or, scale, sub, Vec3};

/// Segments around a capsule. 12 keeps limbs round at 128 px while staying cheap.
pub const SEGMENTS: usize = 12;
/// Rings per rounded end cap (pole excluded from the count of bands, included in rings).
const CAP_RINGS: usize = 3;
/// Interior rings along the capsule's straight part; lets bulges (calves, chest) show.
const BODY_RINGS: usize = 3;
/// Total rings of one capsule: pole-to-equator on each end, plus the interior.
const RINGS: usize = 2 * (CAP_RINGS + 1) + BODY_RINGS;

/// An indexed triangle mesh. Attributes are per vertex; part index is per triangle, so
/// adjacent parts never blend their charts.
#[derive(Clone, Debug, Default)]
pub struct Mesh {
    pub positions: Vec<Vec3>,
    pub normals: Vec<Vec3>,
    /// Chart coordinates in [0, 1].
    pub uvs: Vec<[f32; 2]>,
    /// Counter-clockwise when seen from outside (outward normal = (b-a)x(c-a)).
    pub triangles: Vec<[u32; 3]>,
    /// Part index 1..=24 of each triangle.
    pub tri_part: Vec<u8>,
}

impl Mesh {
    pub fn clear(&mut self) {
        self.positions.clear();
        self.normals.clear();
        self.uvs.clear();
        self.triangles.clear();
        self.tri_part.clear();
    }

    /// Axis-aligned bounds `(min, max)`; `None` for an empty mesh.
    pub fn bounds(&self) -> Option<(Vec3, Vec3)> {
        let first = *self.positions.first()?;
        let mut lo = first;
        let mut hi = first;
        for p in &self.positions {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        Some((lo, hi))
    }
}

/// One tapered, optionally elliptical capsule in world space.
#[derive(Clone, Copy, Debug)]
pub struct Capsule {
    /// Centre of the first end cap's equator (v grows from here).
    pub start: Vec3,
    /// Centre of the second end cap's equator.
    pub end: Vec3,
    /// Radius at `start` and at `end`.
    pub r0: f32,
    pub r1: f32,
    /// Cross-section scale along the side direction and along the back direction.
    pub ex: f32,
    pub ez: f32,
    /// Axial length of the end caps as a fraction of the radius (1 = hemispheres); flat
    /// caps keep the torso from bulging above the shoulders.
    pub cap: f32,
    /// Extra radius at mid-length as a fraction (muscle bulge).
    pub bulge: f32,
    /// Direction of the chart seam (u = 0): the part's back, so seams hide like clothing.
    pub back: Vec3,
}

/// Append a capsule as part `part`. u = angle around the axis / 2π starting at `back`
/// (so u = 0.5 faces front); v = arc length along the profile, 0 at the `start` pole.
/// Seam vertices are duplicated so every triangle's u stays inside [0, 1].
pub fn push_capsule(mesh: &mut Mesh, part: u8, c: &Capsule) {
    let axis_vec = sub(c.end, c.start);
    let len = dot(axis_vec, axis_vec).sqrt();
    let axis = normalize_or(axis_vec, [0.0, 1.0, 0.0]);
    let mut back = sub(c.back, scale(axis, dot(c.back, axis)));
    let fallback = if axis[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    };
    if dot(back, back) < 1e-10 {
        back = sub(fallback, scale(axis, dot(fallback, axis)));
    }
    let back = normalize_or(back, fallback);
    let side = cross(axis, back);
    let cap = c.cap.max(0.2);

    // Profile: (axial position, radius, axial normal, radial normal) per ring.
    let mut prof = [(0.0f32, 0.0f32, 0.0f32, 0.0f32); RINGS];
    let mut k = 0;
    for j in 0..=CAP_RINGS {
        let th = FRAC_PI_2 * j as f32 / CAP_RINGS as f32;
        let (s, co) = th.sin_cos();
        prof[k] = (-cap * c.r0 * co, c.r0 * s, -co / cap, s);
        k += 1;
    }
    let dr = c.r1 - c.r0;
    for j in 1..=BODY_RINGS {
        let t = j as f32 / (BODY_RINGS + 1) as f32;
        let base = c.r0 + dr * t;
        let (sb, cb) = (PI * t).sin_cos();
        let rho = base * (1.0 + c.bulge * sb);
        let drho_dt = dr * (1.0 + c.bulge * sb) + base * c.bulge * PI * cb;
        prof[k] = (len * t, rho, -drho_dt / len.max(1e-6), 1.0);
        k += 1;
    }
    for j in (0..=CAP_RINGS).rev() {
        let th = FRAC_PI_2 * j as f32 / CAP_RINGS as f32;
        let (s, co) = th.sin_cos();
        prof[k] = (len + cap * c.r1 * co, c.r1 * s, co / cap, s);
        k += 1;
    }
    // v from arc length along the profile, so texture density is even along the part.
    let mut vs = [0.0f32; RINGS];
    for i in 1..RINGS {
        let da = prof[i].0 - prof[i - 1].0;
        let dr = prof[i].1 - prof[i - 1].1;
        vs[i] = vs[i - 1] + (da * da + dr * dr).sqrt();
    }
    let total = vs[RINGS - 1].max(1e-9);

    let base = mesh.positions.len() as u32;
    let mut ring_dirs = [([0.0f32; 3], [0.0f32; 3]); SEGMENTS + 1];
    for (j, rd) in ring_dirs.iter_mut().enumerate() {
        // Angle from the seam; the last column repeats the first position with u = 1.
        let (s, co) = (TAU * (j % SEGMENTS) as f32 / SEGMENTS as f32).sin_cos();
        let pos_dir = add(scale(back, co * c.ez), scale(side, s * c.ex));
        let nrm_dir = add(
            scale(back, co / c.ez.max(1e-3)),
            scale(side, s / c.ex.max(1e-3)),
        );
        *rd = (pos_dir, nrm_dir);
    }
    for (i, &(a, rho, na, nr)) in prof.iter().enumerate() {
        let centre = add(c.start, scale(axis, a));
        let v = vs[i] / total;
        for (j, &(pd, nd)) in ring_dirs.iter().enumerate() {
            mesh.positions.push(add(centre, scale(pd, rho)));
            mesh.normals
                .push(normalize_or(add(scale(axis, na), scale(nd, nr)), axis));
            mesh.uvs.push([j as f32 / SEGMENTS as f32, v]);
        }
    }

    // u grows from back towards `side` = axis x back and v along the axis, so
    // (du x dv) points outwards: (k,j) -> (k,j+1) -> (k+1,j+1) is counter-clockwise.
    // Pole rings collapse to a point, so one triangle of each pole quad is skipped.
    let row = (SEGMENTS + 1) as u32;
    for k in 0..RINGS as u32 - 1 {
        for j in 0..SEGMENTS as u32 {
            let a = base + k * row + j;
            let b = a + 1;
            let cc = a + row + 1;
            let d = a + row;
            if k != 0 {
                mesh.triangles.push([a, b, cc]);
                mesh.tri_part.push(part);
            }
            if k + 2 != RINGS as u32 {
                mesh.triangles.push([a, cc, d]);
                mesh.tri_part.push(part);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_capsule() -> Capsule {
        Capsule {
            start: [0.0, 0.0, 0.0],
            end: [0.0, 1.0, 0.0],
            r0: 0.3,
            r1: 0.2,
            ex: 1.2,
            ez: 0.8,
            cap: 0.7,
            bulge: 0.1,
            back: [0.0, 0.0, -1.0],
        }
    }

    #[test]
    fn capsule_triangles_face_outwards_and_uv_spans_chart() {
        let mut m = Mesh::default();
        push_capsule(&mut m, 3, &test_capsule());
        assert_eq!(m.triangles.len(), SEGMENTS * (RINGS - 1) * 2 - 2 * SEGMENTS);
        assert!(m.tri_part.iter().all(|&p| p == 3));
        let centre = [0.0, 0.5, 0.0];
        for t in &m.triangles {
            let [a, b, c] = t.map(|i| m.positions[i as usize]);
            let n = cross(sub(b, a), sub(c, a));
            let mid = scale(add(add(a, b), c), 1.0 / 3.0);
            assert!(dot(n, sub(mid, centre)) > 0.0, "inward triangle {t:?}");
            // Vertex normals agree with the face.
            for i in t {
                assert!(dot(m.normals[*i as usize], n) > 0.0);
            }
        }
        let (umin, umax) = m.uvs.iter().fold((1.0f32, 0.0f32), |(lo, hi), uv| {
            (lo.min(uv[0]), hi.max(uv[0]))
        });
        assert_eq!((umin, umax), (0.0, 1.0));
        assert_eq!(m.uvs.first().map(|uv| uv[1]), Some(0.0));
        assert_eq!(m.uvs.last().map(|uv| uv[1]), Some(1.0));
    }

    #[test]
    fn seam_faces_back() {
        let mut m = Mesh::default();
        push_capsule(&mut m, 1, &test_capsule());
        // A mid-ring vertex with u = 0 lies on the back (-z); u = 0.5 on the front.
        let row = SEGMENTS + 1;
        let mid = (RINGS / 2) * row;
        assert!(m.positions[mid][2] < -0.1);
        assert!(m.positions[mid + SEGMENTS / 2][2] > 0.1);
    }
}
