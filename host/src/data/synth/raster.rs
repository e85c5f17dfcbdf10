//! Software rasteriser: perspective camera, fixed-point edge functions with a strict
//! ownership rule for shared edges (no cracks, no double coverage), a z-buffer, and
//! deferred attribute resolution (attributes are interpolated once per final pixel, not
//! per overdrawn fragment).

use super::math::{add, cross, dot, normalize_or, scale, sub, Vec3};

/// Sub-pixel precision of vertex positions (1/256 px): fine enough that snapping is
/// invisible, coarse enough that edge functions fit easily in `i64`.
const SUBPIXEL_BITS: u32 = 8;
const ONE: i64 = 1 << SUBPIXEL_BITS;
const HALF: i64 = ONE / 2;
/// Triangles reaching further than this outside the image (in pixels) are dropped rather
/// than risk fixed-point overflow; framed subjects never come close.
const GUARD_PX: f32 = 1.0e6;

/// Marks "no triangle" in the triangle-id buffer.
pub const NO_TRIANGLE: u32 = u32::MAX;
/// Set in a stored triangle id when the fragment came from a back face.
const BACK_BIT: u32 = 1 << 31;

/// A pinhole camera. World to camera: x along `right`, y along `up`, depth along `forward`;
/// image x grows right and y grows down, principal point `(cx, cy)` in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    pub position: Vec3,
    pub right: Vec3,
    pub up: Vec3,
    pub forward: Vec3,
    /// Focal length in pixels.
    pub focal: f32,
    pub cx: f32,
    pub cy: f32,
    /// Nearest visible depth; geometry closer than this is dropped.
    pub near: f32,
}

impl Camera {
    /// Camera at `position` looking at `target`, world +Y up, rolled by `roll` radians
    /// about the viewing axis.
    pub fn look_at(position: Vec3, target: Vec3, roll: f32, focal: f32, cx: f32, cy: f32) -> Self {
        let forward = normalize_or(sub(target, position), [0.0, 0.0, -1.0]);
        let right0 = normalize_or(cross(forward, [0.0, 1.0, 0.0]), [1.0, 0.0, 0.0]);
        let up0 = cross(right0, forward);
        let (s, c) = roll.sin_cos();
        let right = add(scale(right0, c), scale(up0, s));
        let up = sub(scale(up0, c), scale(right0, s));
        Self {
            position,
            right,
            up,
            forward,
            focal,
            cx,
            cy,
            near: 1e-3,
        }
    }

    /// Camera-space coordinates of a world point.
    #[inline]
    pub fn to_camera(&self, p: Vec3) -> Vec3 {
        let d = sub(p, self.position);
        [dot(d, self.right), dot(d, self.up), dot(d, self.forward)]
    }

    /// Pixel position and reciprocal depth; `inv_z` is 0 behind the near plane.
    #[inline]
    pub fn project(&self, p: Vec3) -> ScreenVertex {
        let [x, y, z] = self.to_camera(p);
        if z < self.near {
            return ScreenVertex {
                x: 0.0,
                y: 0.0,
                inv_z: 0.0,
            };
        }
        let iz = 1.0 / z;
        ScreenVertex {
            x: self.cx + self.focal * x * iz,
            y: self.cy - self.focal * y * iz,
            inv_z: iz,
        }
    }
}

/// A projected vertex.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScreenVertex {
    pub x: f32,
    pub y: f32,
    /// 1 / camera depth; interpolates linearly in screen space.
    pub inv_z: f32,
}

/// The nearest surface at one pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fragment {
    pub tri: usize,
    /// Perspective-correct barycentric weights of the triangle's three vertices.
    pub bary: [f32; 3],
    /// Whether the triangle faced away from the camera (two-sided meshes only).
    pub back: bool,
    /// Camera depth.
    pub depth: f32,
}

/// Per-pixel surface attributes resolved from a fragment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Surface {
    pub part: u8,
    pub u: f32,
    pub v: f32,
    pub depth: f32,
    /// Unit normal, flipped towards the camera for back faces.
    pub normal: Vec3,
}

/// Z-buffer and visibility buffer of one image.
#[derive(Clone, Debug, Default)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    inv_z: Vec<f32>,
    tri: Vec<u32>,
    bary: Vec<[f32; 2]>,
}

impl Raster {
    pub fn new(width: usize, height: usize) -> Self {
        let mut r = Self::default();
        r.reset(width, height);
        r
    }

    /// Clear for a new image, reusing the allocations.
    pub fn reset(&mut self, width: usize, height: usize) {
        let n = width * height;
        self.width = width;
        self.height = height;
        self.inv_z.clear();
        self.inv_z.resize(n, 0.0);
        self.tri.clear();
        self.tri.resize(n, NO_TRIANGLE);
        self.bary.clear();
        self.bary.resize(n, [0.0; 2]);
    }

    /// Rasterise triangles (indices into `verts`) with depth test; the stored triangle id
    /// is the index into `tris`. With `cull_back`, faces pointing away are skipped (valid
    /// for closed meshes wound counter-clockwise seen from outside).
    pub fn draw(&mut self, verts: &[ScreenVertex], tris: &[[u32; 3]], cull_back: bool) {
        let (w, h) = (self.width, self.height);
        for (t, idx) in tris.iter().enumerate() {
            let (Some(a), Some(b), Some(c)) = (
                verts.get(idx[0] as usize),
                verts.get(idx[1] as usize),
                verts.get(idx[2] as usize),
            ) else {
                continue;
            };
            if a.inv_z <= 0.0 || b.inv_z <= 0.0 || c.inv_z <= 0.0 {
                continue;
            }
            let iz = [a.inv_z, b.inv_z, c.inv_z];
            let inv_z = &mut self.inv_z;
            let tri = &mut self.tri;
            let bary = &mut self.bary;
            cover_triangle(
                [[a.x, a.y], [b.x, b.y], [c.x, c.y]],
                w,
                h,
                cull_back,
                |x, y, l, back| {
                    let i = y * w + x;
                    let z = l[0] * iz[0] + l[1] * iz[1] + l[2] * iz[2];
                    if z > inv_z[i] {
                        inv_z[i] = z;
                        tri[i] = t as u32 | if back { BACK_BIT } else { 0 };
                        let r = 1.0 / z;
                        bary[i] = [l[1] * iz[1] * r, l[2] * iz[2] * r];
                    }
                },
            );
        }
    }

    /// The visible fragment at row-major pixel `i`, if any.
    #[inline]
    pub fn fragment(&self, i: usize) -> Option<Fragment> {
        let t = *self.tri.get(i)?;
        if t == NO_TRIANGLE {
            return None;
        }
        let [b1, b2] = self.bary[i];
        Some(Fragment {
            tri: (t & !BACK_BIT) as usize,
            bary: [1.0 - b1 - b2, b1, b2],
            back: t & BACK_BIT != 0,
            depth: 1.0 / self.inv_z[i],
        })
    }
}

/// Interpolate a mesh's attributes at a fragment: part, U, V (clamped to [0, 1]), depth
/// and unit normal.
#[inline]
pub fn surface(mesh: &super::mesh::Mesh, f: &Fragment) -> Option<Surface> {
    let idx = mesh.triangles.get(f.tri)?;
    let part = *mesh.tri_part.get(f.tri)?;
    let mut uv = [0.0f32; 2];
    let mut n = [0.0f32; 3];
    for (k, &vi) in idx.iter().enumerate() {
        let w = f.bary[k];
        let t = mesh.uvs.get(vi as usize)?;
        let nv = mesh.normals.get(vi as usize)?;
        uv[0] += w * t[0];
        uv[1] += w * t[1];
        n = add(n, scale(*nv, w));
    }
    let mut normal = normalize_or(n, [0.0, 0.0, 1.0]);
    if f.back {
        normal = scale(normal, -1.0);
    }
    Some(Surface {
        part,
        u: uv[0].clamp(0.0, 1.0),
        v: uv[1].clamp(0.0, 1.0),
        depth: f.depth,
        normal,
    })
}

/// Edge function of edge a->b at p (twice the signed area of a, b, p; y grows down).
#[inline]
fn edge(a: [i64; 2], b: [i64; 2], p: [i64; 2]) -> i64 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

/// Whether pixel centres exactly on edge a->b belong to this triangle. The rule is
/// antisymmetric in the edge direction, and the two triangles sharing an edge traverse it
/// in opposite directions (after orientation is normalised), so exactly one owns it.
#[inline]
fn owns(a: [i64; 2], b: [i64; 2]) -> bool {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    dy > 0 || (dy == 0 && dx < 0)
}

/// Call `f(x, y, bary, back)` for every pixel centre `(x + 0.5, y + 0.5)` covered by the
/// triangle with pixel-space corners `p`, with screen-space barycentric weights in the
/// order of `p`. `back` is true for triangles that are clockwise on screen, i.e. whose
/// counter-clockwise-from-outside winding points away from the camera; they are skipped
/// when `cull_back` is set. Degenerate triangles cover nothing.
pub fn cover_triangle(
    p: [[f32; 2]; 3],
    width: usize,
    height: usize,
    cull_back: bool,
    mut f: impl FnMut(usize, usize, [f32; 3], bool),
) {
    if width == 0 || height == 0 {
        return;
    }
    let mut q = [[0i64; 2]; 3];
    for (qi, pi) in q.iter_mut().zip(p.iter()) {
        for k in 0..2 {
            let c = pi[k];
            if !c.is_finite() || c.abs() > GUARD_PX {
                return;
            }
            qi[k] = (c * ONE as f32).round() as i64;
        }
    }
    let area = edge(q[0], q[1], q[2]);
    if area == 0 {
        return;
    }
    // Counter-clockwise in a y-up world reads as negative area on a y-down screen.
    let back = area > 0;
    if back && cull_back {
        return;
    }
    // Normalise to positive area by swapping vertices 1 and 2; `order` maps back.
    let (order, area) = if area < 0 {
        ([0usize, 2, 1], -area)
    } else {
        ([0usize, 1, 2], area)
    };
    let v = [q[order[0]], q[order[1]], q[order[2]]];

    let min_x = v.iter().map(|c| c[0]).min().unwrap_or(0);
    let max_x = v.iter().map(|c| c[0]).max().unwrap_or(0);
    let min_y = v.iter().map(|c| c[1]).min().unwrap_or(0);
    let max_y = v.iter().map(|c| c[1]).max().unwrap_or(0);
    // Pixel x covers centre x*ONE + HALF; first centre >= min, last centre <= max.
    let x0 = (min_x - HALF + ONE - 1).div_euclid(ONE).max(0);
    let x1 = (max_x - HALF).div_euclid(ONE).min(width as i64 - 1);
    let y0 = (min_y - HALF + ONE - 1).div_euclid(ONE).max(0);
    let y1 = (max_y - HALF).div_euclid(ONE).min(height as i64 - 1);
    if x0 > x1 || y0 > y1 {
        return;
    }

    // Edge i is opposite vertex i.
    let edges = [(v[1], v[2]), (v[2], v[0]), (v[0], v[1])];
    let start = [x0 * ONE + HALF, y0 * ONE + HALF];
    let mut row = [0i64; 3];
    let mut step_x = [0i64; 3];
    let mut step_y = [0i64; 3];
    let mut bias = [0i64; 3];
    for (k, &(a, b)) in edges.iter().enumerate() {
        bias[k] = if owns(a, b) { 0 } else { 1 };
        row[k] = edge(a, b, start) - bias[k];
        step_x[k] = -(b[1] - a[1]) * ONE;
        step_y[k] = (b[0] - a[0]) * ONE;
    }
    let inv_area = 1.0 / area as f32;
    for y in y0..=y1 {
        let mut w = row;
        for x in x0..=x1 {
            if (w[0] | w[1] | w[2]) >= 0 {
                let l = [
                    (w[0] + bias[0]) as f32 * inv_area,
                    (w[1] + bias[1]) as f32 * inv_area,
                    (w[2] + bias[2]) as f32 * inv_area,
                ];
                let mut out = [0.0f32; 3];
                for k in 0..3 {
                    out[order[k]] = l[k];
                }
                f(x as usize, y as usize, out, back);
            }
            for k in 0..3 {
                w[k] += step_x[k];
            }
        }
        for k in 0..3 {
            row[k] += step_y[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::mesh::Mesh;
    use super::*;

    #[test]
    fn axis_aligned_quad_covers_exact_pixels_once() {
        // Square from (2, 3) to (10, 9) as two triangles: 8 x 6 pixel centres inside.
        let quad = [[2.0, 3.0], [10.0, 3.0], [10.0, 9.0], [2.0, 9.0]];
        let mut hits = vec![0u32; 16 * 16];
        for tri in [[0, 1, 2], [0, 2, 3]] {
            let p = tri.map(|i| quad[i]);
            cover_triangle(p, 16, 16, false, |x, y, _, _| hits[y * 16 + x] += 1);
        }
        assert_eq!(hits.iter().sum::<u32>(), 48);
        assert!(hits.iter().all(|&h| h <= 1));
        for y in 3..9 {
            for x in 2..10 {
                assert_eq!(hits[y * 16 + x], 1, "pixel {x},{y}");
            }
        }
    }

    #[test]
    fn fan_has_no_cracks_or_overlaps() {
        // A 12-gon fan around an off-grid centre, with vertices exactly on pixel centres
        // and edges: every pixel inside is covered exactly once.
        let c = [16.5, 15.25];
        let pts: Vec<[f32; 2]> = (0..12)
            .map(|k| {
                let a = k as f32 * std::f32::consts::TAU / 12.0;
                [c[0] + 11.0 * a.cos(), c[1] + 11.0 * a.sin()]
            })
            .collect();
        let mut hits = vec![0u32; 32 * 32];
        for k in 0..12 {
            let p = [c, pts[k], pts[(k + 1) % 12]];
            cover_triangle(p, 32, 32, false, |x, y, _, _| hits[y * 32 + x] += 1);
        }
        assert!(hits.iter().all(|&h| h <= 1), "double coverage");
        // Pixels well inside the polygon are all hit.
        for y in 0..32 {
            for x in 0..32 {
                let d = ((x as f32 + 0.5 - c[0]).powi(2) + (y as f32 + 0.5 - c[1]).powi(2)).sqrt();
                if d < 9.0 {
                    assert_eq!(hits[y * 32 + x], 1, "crack at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn screen_barycentrics_are_exact_at_known_pixels() {
        // Right triangle with corners on pixel centres; weights at interior centres are
        // simple fractions.
        let p = [[0.5, 0.5], [8.5, 0.5], [0.5, 8.5]];
        let mut seen = 0;
        cover_triangle(p, 16, 16, false, |x, y, l, _| {
            let want = match (x, y) {
                (1, 1) => [0.75, 0.125, 0.125],
                (4, 2) => [0.25, 0.5, 0.25],
                _ => return,
            };
            assert_eq!(l, want, "pixel {x},{y}");
            seen += 1;
        });
        assert_eq!(seen, 2);
        // 21 centres lie strictly inside, 45 including the edges; the fill rule keeps some
        // edges only.
        let mut n = 0;
        cover_triangle(p, 16, 16, false, |_, _, _, _| n += 1);
        assert!((21..45).contains(&n), "{n}");
    }

    #[test]
    fn tilted_quad_interpolates_perspective_correct_uv() {
        // A 2x2 quad in the plane z = 4 + 0.8*y (tilted away at the top), u along x, v
        // along y, seen by a camera at the origin looking down +z.
        let cam = Camera {
            position: [0.0, 0.0, 0.0],
            right: [1.0, 0.0, 0.0],
            up: [0.0, 1.0, 0.0],
            forward: [0.0, 0.0, 1.0],
            focal: 40.0,
            cx: 32.0,
            cy: 32.0,
            near: 0.01,
        };
        let plane_z = |y: f32| 4.0 + 0.8 * y;
        let corners = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
        let mesh = Mesh {
            positions: corners.iter().map(|&[x, y]| [x, y, plane_z(y)]).collect(),
            normals: vec![[0.0, 0.0, -1.0]; 4],
            uvs: corners
                .iter()
                .map(|&[x, y]| [(x + 1.0) / 2.0, (y + 1.0) / 2.0])
                .collect(),
            triangles: vec![[0, 1, 2], [0, 2, 3]],
            tri_part: vec![5, 5],
        };
        let verts: Vec<ScreenVertex> = mesh.positions.iter().map(|&p| cam.project(p)).collect();
        let mut r = Raster::new(64, 64);
        r.draw(&verts, &mesh.triangles, false);
        let mut checked = 0;
        let mut max_err = 0.0f32;
        for py in 0..64 {
            for px in 0..64 {
                let Some(f) = r.fragment(py * 64 + px) else {
                    continue;
                };
                let s = surface(&mesh, &f).expect("surface");
                // Analytic: ray (dx, dy, 1) meets z = 4 + 0.8 y at t = 4 / (1 - 0.8 dy).
                let dx = (px as f32 + 0.5 - 32.0) / 40.0;
                let dy = -(py as f32 + 0.5 - 32.0) / 40.0;
                let t = 4.0 / (1.0 - 0.8 * dy);
                let (x, y) = (dx * t, dy * t);
                let (u, v) = ((x + 1.0) / 2.0, (y + 1.0) / 2.0);
                max_err = max_err.max((s.u - u).abs()).max((s.v - v).abs());
                assert!((s.depth - t).abs() < 2e-3 * t, "depth {} vs {t}", s.depth);
                assert_eq!(s.part, 5);
                checked += 1;
            }
        }
        assert!(checked > 200, "quad covered only {checked} pixels");
        // Screen-linear (affine) interpolation would be off by ~0.05 here.
        assert!(max_err < 2e-3, "max uv error {max_err}");
    }

    #[test]
    fn culling_keeps_the_visible_surface_of_a_closed_mesh() {
        use super::super::mesh::{push_capsule, Capsule};
        let mut mesh = Mesh::default();
        let cap = Capsule {
            start: [0.0, -0.5, 0.0],
            end: [0.0, 0.5, 0.0],
            r0: 0.4,
            r1: 0.3,
            ex: 1.0,
            ez: 0.7,
            cap: 1.0,
            bulge: 0.1,
            back: [0.0, 0.0, -1.0],
        };
        push_capsule(&mut mesh, 1, &cap);
        let cam = Camera::look_at([1.5, 0.8, 3.0], [0.0, 0.0, 0.0], 0.1, 50.0, 32.0, 32.0);
        let verts: Vec<ScreenVertex> = mesh.positions.iter().map(|&p| cam.project(p)).collect();
        let mut culled = Raster::new(64, 64);
        culled.draw(&verts, &mesh.triangles, true);
        let mut both = Raster::new(64, 64);
        both.draw(&verts, &mesh.triangles, false);
        let mut covered = 0;
        let mut differ = 0;
        for i in 0..64 * 64 {
            match (culled.fragment(i), both.fragment(i)) {
                (Some(a), Some(b)) => {
                    covered += 1;
                    assert!(!a.back && !b.back, "back face visible at {i}");
                    assert!((a.depth - b.depth).abs() < 1e-4);
                }
                (None, None) => {}
                _ => differ += 1,
            }
        }
        assert!(covered > 150, "covered {covered}");
        assert!(differ <= 2, "{differ} silhouette pixels differ");
    }
}
