//! Procedural articulated subjects rendered with exact texture-map ground truth.
//!
//! A sample is rendered by a software rasteriser, so the IUV coordinates and albedo of
//! every subject pixel are known exactly — no 3D fitting is needed for the ground truth
//! (why this stands in for the method's extraction model: `docs/method.md`, "Data and
//! ground truth").

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use unveil_shared::{ImageU8, IuvMap, Mask};

pub mod background;
pub mod body;
mod math;
pub mod mesh;
pub mod obj;
pub mod raster;
pub mod textures;

use rand::Rng;
use unveil_shared::rng::{self, Rng as Pcg};
use unveil_shared::texture::quantise_uv;
use unveil_shared::NUM_PARTS;

pub use background::load_backgrounds;
pub use body::{Body, PART_NAMES};
pub use obj::{load_obj, UserMesh};
pub use textures::PartTexture;

use math::{add, dot, normalize_or, scale, sub, Vec3};
use mesh::Mesh;
use raster::{Camera, Raster, ScreenVertex};

/// What can go wrong while preparing or rendering a sample.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("image size must be between 16 and 4096 pixels, got {0}")]
    Size(usize),
    #[error("cannot read mesh {path}: {reason}")]
    Mesh { path: PathBuf, reason: String },
    #[error("cannot read background {path}: {reason}")]
    Background { path: PathBuf, reason: String },
    #[error("background folder {0} holds no readable images")]
    NoBackgrounds(PathBuf),
}

/// Where backgrounds come from.
#[derive(Clone, Debug, Default)]
pub enum BackgroundSource {
    /// Procedural families (gradients, tiles, noise, …), chosen per sample.
    #[default]
    Procedural,
    /// User photos, decoded once; each sample takes a random crop.
    Photos(Arc<Vec<ImageU8>>),
}

/// Which subject is rendered.
#[derive(Clone, Debug, Default)]
pub enum SubjectSource {
    /// The 24-part procedural human-like body.
    #[default]
    Procedural,
    /// A user mesh with UVs (see `obj`), posed only by camera yaw/distance.
    Mesh(Arc<UserMesh>),
}

/// Settings shared by every sample of a data set.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Square output size in pixels.
    pub size: usize,
    pub background: BackgroundSource,
    pub subject: SubjectSource,
}

/// One rendered sample; all images are `size x size`.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Lit subject over the background plate (RGB).
    pub image: ImageU8,
    /// The same plate with no subject (RGB).
    pub background: ImageU8,
    /// Subject silhouette; equals `iuv.part > 0` exactly.
    pub mask: Mask,
    /// Part index and surface coordinates of the visible subject surface.
    pub iuv: IuvMap,
    /// Unlit surface colour (RGB), black where there is no subject.
    pub albedo: ImageU8,
    /// The random choices that produced it, for the manifest.
    pub params: SampleParams,
}

/// Sub-stream tags: each random decision of a sample draws from its own stream, so that
/// changing e.g. the background code never changes the pose of sample 17.
mod purpose {
    pub const BODY: u64 = 1;
    pub const TEXTURE: u64 = 2;
    pub const CAMERA: u64 = 3;
    pub const LIGHT: u64 = 4;
    pub const BACKGROUND: u64 = 5;
}

impl SynthConfig {
    /// Procedural subject over procedural backgrounds at `size` x `size` pixels.
    pub fn new(size: usize) -> Result<Self, SynthError> {
        if !(16..=4096).contains(&size) {
            return Err(SynthError::Size(size));
        }
        Ok(Self {
            size,
            background: BackgroundSource::default(),
            subject: SubjectSource::default(),
        })
    }
}

/// The random choices behind one sample (small; stored in the data set manifest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleParams {
    pub seed: u64,
    pub index: u64,
    /// "procedural" or "mesh".
    pub subject: String,
    /// Pose family of the procedural body ("stand", "walk", …); empty for meshes.
    pub pose: String,
    /// Body height in metres and torso girth factor (1 = average); 0 for meshes.
    pub height_m: f32,
    pub girth: f32,
    /// Camera orbit about the subject: yaw 0 = in front of the subject, 180 = behind;
    /// pitch > 0 looks down.
    pub yaw_deg: f32,
    pub pitch_deg: f32,
    pub roll_deg: f32,
    pub fov_deg: f32,
    /// Camera distance in units of the subject's largest bounding-box side.
    pub distance: f32,
    /// Targeted fraction of the image height filled by the subject (> 1 crops it).
    pub fill: f32,
    /// Unit direction towards the light (world space, Y up).
    pub light_dir: [f32; 3],
    pub ambient: f32,
    pub diffuse: f32,
    /// Background family, or "photo:<index>" into the sorted photo folder.
    pub background: String,
    /// Fraction of pixels covered by the subject.
    pub coverage: f32,
}

/// A subject's appearance, regenerable from `(seed, index)` alone: the body shape and
/// pose (used when the subject is procedural) and the per-part albedo textures.
#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub body: Body,
    pub textures: [PartTexture; NUM_PARTS],
}

impl Subject {
    pub fn new(seed: u64, index: u64) -> Self {
        let key = rng::derive(seed, index);
        let body = Body::random(&mut rng::stream(key, purpose::BODY));
        let textures = textures::wardrobe(&mut rng::stream(key, purpose::TEXTURE));
        Self { body, textures }
    }

    /// Albedo at a stored IUV entry; black for part 0 or out-of-range parts.
    #[inline]
    pub fn albedo_at(&self, part: u8, u: u16, v: u16) -> [u8; 3] {
        match (part as usize)
            .checked_sub(1)
            .and_then(|i| self.textures.get(i))
        {
            Some(t) => t.sample(u, v),
            None => [0; 3],
        }
    }
}

/// Camera choice, in the ranges the data set should cover.
#[derive(Clone, Copy, Debug, PartialEq)]
struct View {
    yaw: f32,
    pitch: f32,
    roll: f32,
    fov: f32,
    fill: f32,
    /// Extra margin allowed outside the image, as a fraction of its size (crops).
    overhang: f32,
    /// Position of the subject inside the horizontal/vertical room left (0..1).
    place: [f32; 2],
}

impl View {
    fn random(rng: &mut Pcg) -> Self {
        let cut = rng.random::<f32>() < 0.1;
        Self {
            yaw: rng.random_range(0.0..360.0),
            pitch: rng.random_range(-10.0..35.0),
            roll: rng.random_range(-7.0..7.0),
            fov: rng.random_range(25.0..60.0),
            fill: if cut {
                rng.random_range(0.85..1.05)
            } else {
                rng.random_range(0.5..0.9)
            },
            overhang: if cut {
                rng.random_range(0.02..0.1)
            } else {
                0.0
            },
            place: [rng.random(), rng.random()],
        }
    }
}

/// Place the camera so that `points` fill `view.fill` of the image height (and at most
/// 95 % of its width), then shift the principal point to put the subject at a random
/// spot that keeps it in frame (or crops it slightly when `overhang` > 0).
fn frame(points: &[Vec3], view: &View, size: usize) -> (Camera, f32) {
    let half = size as f32 / 2.0;
    if points.is_empty() {
        return (
            Camera::look_at([0.0, 0.0, 1.0], [0.0; 3], 0.0, half, half, half),
            1.0,
        );
    }
    let (mut lo, mut hi) = ([f32::MAX; 3], [f32::MIN; 3]);
    for p in points {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let target = scale(add(lo, hi), 0.5);
    let extent = (0..3).map(|k| hi[k] - lo[k]).fold(1e-6f32, f32::max);
    let (yaw, pitch) = (view.yaw.to_radians(), view.pitch.to_radians());
    let dir = [
        yaw.sin() * pitch.cos(),
        pitch.sin(),
        yaw.cos() * pitch.cos(),
    ];
    let t = (view.fov.to_radians() / 2.0).tan();
    let focal = half / t;
    let orient = Camera::look_at(
        add(target, dir),
        target,
        view.roll.to_radians(),
        focal,
        half,
        half,
    );
    let (ky, kx) = (view.fill * t, 0.95 * t.max(view.fill * t));
    let mut dist = 0.0f32;
    let mut nearest = f32::MIN;
    for &p in points {
        let r = sub(p, target);
        let (x, y, z) = (
            dot(r, orient.right),
            dot(r, orient.up),
            dot(r, orient.forward),
        );
        dist = dist.max(y.abs() / ky - z).max(x.abs() / kx - z);
        nearest = nearest.max(-z);
    }
    dist = dist.max(nearest + 0.05 * extent);
    let mut cam = orient;
    cam.position = sub(target, scale(orient.forward, dist));
    cam.near = 1e-4 * dist;
    // Projected extent relative to the principal point, then place it.
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &p in points {
        let [x, y, z] = cam.to_camera(p);
        let (sx, sy) = (focal * x / z, -focal * y / z);
        x0 = x0.min(sx);
        x1 = x1.max(sx);
        y0 = y0.min(sy);
        y1 = y1.max(sy);
    }
    let s = size as f32;
    // One pixel of air around uncropped subjects, so "touches the border" means "cropped".
    let m = view.overhang * s - 1.0;
    let place = |lo: f32, hi: f32, a: f32| {
        if lo > hi {
            (lo + hi) / 2.0
        } else {
            lo + (hi - lo) * a
        }
    };
    cam.cx = place(-x0 - m, s - x1 + m, view.place[0]);
    cam.cy = place(-y0 - m, s - y1 + m, view.place[1]);
    (cam, dist / extent.max(1e-6))
}

/// Buffers reused across samples on one thread, so steady-state rendering does not
/// allocate per triangle or per pixel.
#[derive(Default)]
struct Scratch {
    mesh: Mesh,
    verts: Vec<ScreenVertex>,
    raster: Raster,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Render sample `index` of the data set with seed `seed`. Deterministic: the same
/// `(cfg, seed, index)` gives identical bytes on any thread, in any order.
pub fn render_sample(cfg: &SynthConfig, seed: u64, index: u64) -> Result<Sample, SynthError> {
    render_impl(cfg, seed, index, None)
}

fn render_impl(
    cfg: &SynthConfig,
    seed: u64,
    index: u64,
    view: Option<View>,
) -> Result<Sample, SynthError> {
    let size = cfg.size;
    if !(16..=4096).contains(&size) {
        return Err(SynthError::Size(size));
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut scratch) => Ok(render_into(cfg, seed, index, view, &mut scratch)),
        // Only reachable if rendering re-entered itself; fall back to fresh buffers.
        Err(_) => Ok(render_into(cfg, seed, index, view, &mut Scratch::default())),
    })
}

fn render_into(
    cfg: &SynthConfig,
    seed: u64,
    index: u64,
    view: Option<View>,
    scratch: &mut Scratch,
) -> Sample {
    let size = cfg.size;
    let key = rng::derive(seed, index);
    let subject = Subject::new(seed, index);
    let view = view.unwrap_or_else(|| View::random(&mut rng::stream(key, purpose::CAMERA)));

    let Scratch {
        mesh: body_mesh,
        verts,
        raster,
    } = scratch;
    let (mesh, cull, kind): (&Mesh, bool, &str) = match &cfg.subject {
        SubjectSource::Procedural => {
            body_mesh.clear();
            subject.body.build_mesh(body_mesh);
            (body_mesh, true, "procedural")
        }
        // User meshes may be open or inconsistently wound: draw both sides.
        SubjectSource::Mesh(m) => (&m.mesh, false, "mesh"),
    };
    let (cam, distance) = match &cfg.subject {
        SubjectSource::Procedural => frame(&mesh.positions, &view, size),
        SubjectSource::Mesh(m) => {
            let (lo, hi) = m.bounds;
            let corners: Vec<Vec3> = (0..8)
                .map(|c| {
                    [
                        if c & 1 == 0 { lo[0] } else { hi[0] },
                        if c & 2 == 0 { lo[1] } else { hi[1] },
                        if c & 4 == 0 { lo[2] } else { hi[2] },
                    ]
                })
                .collect();
            frame(&corners, &view, size)
        }
    };

    verts.clear();
    verts.extend(mesh.positions.iter().map(|&p| cam.project(p)));
    raster.reset(size, size);
    raster.draw(verts, &mesh.triangles, cull);

    // Light from the camera's side of the subject (never from straight behind, which
    // would leave the visible surface lit by ambient only).
    let mut lrng = rng::stream(key, purpose::LIGHT);
    let lc = [
        lrng.random_range(-0.8..0.8f32),
        lrng.random_range(-0.1..1.0f32),
        lrng.random_range(0.3..1.0f32),
    ];
    let light = normalize_or(
        add(
            add(scale(cam.right, lc[0]), scale(cam.up, lc[1])),
            scale(cam.forward, -lc[2]),
        ),
        scale(cam.forward, -1.0),
    );
    let ambient = lrng.random_range(0.35..0.6f32);
    let diffuse = lrng.random_range(0.35..0.75f32);
    let tint = [
        lrng.random_range(0.92..1.08f32),
        1.0,
        lrng.random_range(0.92..1.08f32),
    ];

    let (background, bg_name) = background::render(
        &cfg.background,
        size,
        &mut rng::stream(key, purpose::BACKGROUND),
    );
    let mut image = background.clone();
    let mut albedo = ImageU8::new(size, size, 3);
    let mut iuv = IuvMap::new(size, size);
    let mut mask = Mask::new(size, size);
    for i in 0..size * size {
        let Some(frag) = raster.fragment(i) else {
            continue;
        };
        let Some(surf) = raster::surface(mesh, &frag) else {
            continue;
        };
        if surf.part == 0 || surf.part as usize > NUM_PARTS {
            continue;
        }
        let (u, v) = (quantise_uv(surf.u), quantise_uv(surf.v));
        iuv.part[i] = surf.part;
        iuv.u[i] = u;
        iuv.v[i] = v;
        mask.data[i] = 1;
        let a = subject.albedo_at(surf.part, u, v);
        albedo.data[i * 3..i * 3 + 3].copy_from_slice(&a);
        let k = ambient + diffuse * dot(surf.normal, light).max(0.0);
        for c in 0..3 {
            image.data[i * 3 + c] = (a[c] as f32 * k * tint[c] + 0.5).min(255.0) as u8;
        }
    }

    let coverage = mask.coverage();
    let (pose, height_m, girth) = match cfg.subject {
        SubjectSource::Procedural => {
            let b = &subject.body;
            (
                b.family.name().to_string(),
                b.props.height,
                b.props.torso_girth,
            )
        }
        SubjectSource::Mesh(_) => (String::new(), 0.0, 0.0),
    };
    let params = SampleParams {
        seed,
        index,
        subject: kind.to_string(),
        pose,
        height_m,
        girth,
        yaw_deg: view.yaw,
        pitch_deg: view.pitch,
        roll_deg: view.roll,
        fov_deg: view.fov,
        distance,
        fill: view.fill,
        light_dir: light,
        ambient,
        diffuse,
        background: bg_name,
        coverage,
    };
    Sample {
        image,
        background,
        mask,
        iuv,
        albedo,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn cfg(size: usize) -> SynthConfig {
        SynthConfig::new(size).expect("size")
    }

    #[test]
    fn config_validates_size() {
        assert!(matches!(SynthConfig::new(15), Err(SynthError::Size(15))));
        assert!(matches!(
            SynthConfig::new(4097),
            Err(SynthError::Size(4097))
        ));
        assert!(SynthConfig::new(16).is_ok() && SynthConfig::new(4096).is_ok());
    }

    #[test]
    fn mask_albedo_and_background_are_consistent() {
        let c = cfg(128);
        for index in 0..20 {
            let s = render_sample(&c, 11, index).expect("render");
            // (a) mask is exactly the silhouette of the IUV map; the subject is there.
            assert_eq!(s.mask, s.iuv.silhouette(), "index {index}");
            let cov = s.mask.coverage();
            assert!(
                (0.02..0.7).contains(&cov),
                "index {index}: coverage {cov} {:?}",
                s.params
            );
            assert_eq!(s.params.coverage, cov);
            let subject = Subject::new(11, index);
            for i in 0..128 * 128 {
                let px = &s.image.data[i * 3..i * 3 + 3];
                let alb = &s.albedo.data[i * 3..i * 3 + 3];
                if s.mask.data[i] == 0 {
                    // (c) no subject: the plate, untouched; albedo black; I = U = V = 0.
                    assert_eq!(px, &s.background.data[i * 3..i * 3 + 3]);
                    assert_eq!(alb, &[0, 0, 0]);
                    assert_eq!((s.iuv.u[i], s.iuv.v[i]), (0, 0));
                } else {
                    // (b) the texture looked up through the stored IUV reproduces albedo.
                    let want = subject.albedo_at(s.iuv.part[i], s.iuv.u[i], s.iuv.v[i]);
                    assert_eq!(alb, &want, "index {index} pixel {i}");
                }
            }
        }
    }

    #[test]
    fn rendering_is_deterministic_and_seed_dependent() {
        let c = cfg(64);
        let a = render_sample(&c, 3, 7).expect("render");
        let b = render_sample(&c, 3, 7).expect("render");
        assert_eq!(a.image, b.image);
        assert_eq!(a.background, b.background);
        assert_eq!(
            (&a.mask, &a.iuv, &a.albedo, &a.params),
            (&b.mask, &b.iuv, &b.albedo, &b.params)
        );
        let other_seed = render_sample(&c, 4, 7).expect("render");
        let other_index = render_sample(&c, 3, 8).expect("render");
        assert_ne!(a.image, other_seed.image);
        assert_ne!(a.image, other_index.image);
        // Independent of thread and order: render in parallel, in reverse.
        use rayon::prelude::*;
        let par: Vec<Sample> = (0..8u64)
            .rev()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|i| render_sample(&c, 3, i).expect("render"))
            .collect();
        for (k, s) in par.iter().enumerate() {
            let i = 7 - k as u64;
            let seq = render_sample(&c, 3, i).expect("render");
            assert_eq!(s.image, seq.image);
            assert_eq!(s.iuv, seq.iuv);
        }
    }

    #[test]
    fn framing_fills_most_of_the_height_and_rarely_crops() {
        let c = cfg(64);
        let n = 200;
        let mut heights = Vec::with_capacity(n);
        let mut cropped = 0;
        for index in 0..n as u64 {
            let s = render_sample(&c, 21, index).expect("render");
            let rows: Vec<usize> = (0..64)
                .filter(|y| s.mask.data[y * 64..(y + 1) * 64].contains(&1))
                .collect();
            let cols: Vec<usize> = (0..64)
                .filter(|x| (0..64).any(|y| s.mask.data[y * 64 + x] == 1))
                .collect();
            let (Some(y0), Some(y1)) = (rows.first(), rows.last()) else {
                panic!("index {index}: empty")
            };
            heights.push((y1 - y0 + 1) as f32 / 64.0);
            let touches = |v: &[usize]| v.first() == Some(&0) || v.last() == Some(&63);
            if touches(&rows) || touches(&cols) {
                cropped += 1;
            }
        }
        heights.sort_by(f32::total_cmp);
        let (p10, p50, p90) = (heights[n / 10], heights[n / 2], heights[n * 9 / 10]);
        println!(
            "subject height fraction p10 {p10} p50 {p50} p90 {p90}; {cropped}/{n} touch the border"
        );
        assert!(
            p10 > 0.3 && p50 > 0.5 && p50 < 0.9 && p90 <= 1.0,
            "{p10} {p50} {p90}"
        );
        assert!(cropped < n / 5, "{cropped} of {n} samples touch the border");
    }

    #[test]
    fn params_round_trip_through_json() {
        let s = render_sample(&cfg(32), 1, 2).expect("render");
        let json = serde_json::to_string(&s.params).expect("json");
        let back: SampleParams = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, s.params);
    }

    #[test]
    fn all_parts_appear_and_sides_are_right_for_a_frontal_camera() {
        let c = cfg(128);
        let mut seen = [false; NUM_PARTS + 1];
        for index in 0..20 {
            let s = render_sample(&c, 5, index).expect("render");
            for &p in &s.iuv.part {
                seen[p as usize] = true;
            }
        }
        let missing: Vec<&str> = (1..=NUM_PARTS)
            .filter(|&p| !seen[p])
            .map(|p| PART_NAMES[p - 1])
            .collect();
        assert!(missing.is_empty(), "parts never visible: {missing:?}");

        // Camera in front of the subject, level: the subject's left is on image right,
        // the head above the feet.
        let front = View {
            yaw: 0.0,
            pitch: 0.0,
            roll: 0.0,
            fov: 40.0,
            fill: 0.8,
            overhang: 0.0,
            place: [0.5, 0.5],
        };
        for index in 0..20 {
            let s = render_impl(&c, 6, index, Some(front)).expect("render");
            let mut sum = [(0.0f64, 0usize); 2]; // [left, right] x sums
            let (mut head_y, mut feet_y) = ((0.0f64, 0usize), (0.0f64, 0usize));
            for (i, &p) in s.iuv.part.iter().enumerate() {
                let (x, y) = ((i % 128) as f64, (i / 128) as f64);
                if let Some(left) = body::part::side(p) {
                    let e = &mut sum[if left { 0 } else { 1 }];
                    e.0 += x;
                    e.1 += 1;
                }
                if p == body::part::HEAD {
                    head_y = (head_y.0 + y, head_y.1 + 1);
                }
                if p == body::part::L_FOOT || p == body::part::R_FOOT {
                    feet_y = (feet_y.0 + y, feet_y.1 + 1);
                }
            }
            let mean = |(s, n): (f64, usize)| s / n.max(1) as f64;
            assert!(sum[0].1 > 0 && sum[1].1 > 0);
            assert!(
                mean(sum[0]) > mean(sum[1]),
                "index {index}: left parts not on image right ({:?})",
                s.params.pose
            );
            if head_y.1 > 0 && feet_y.1 > 0 {
                assert!(
                    mean(head_y) < mean(feet_y),
                    "index {index}: head below feet"
                );
            }
        }
    }

    #[test]
    fn user_mesh_renders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cube.obj");
        std::fs::write(&path, obj::tests::CUBE_OBJ).expect("write");
        let mut c = cfg(64);
        c.subject = SubjectSource::Mesh(Arc::new(load_obj(&path).expect("load")));
        for index in 0..5 {
            let s = render_sample(&c, 1, index).expect("render");
            assert!(s.mask.count() > 100, "cube covers {} px", s.mask.count());
            assert_eq!(s.mask, s.iuv.silhouette());
            assert!(s.iuv.part.iter().all(|&p| p <= 1));
            assert_eq!(s.params.subject, "mesh");
            let subject = Subject::new(1, index);
            for i in 0..64 * 64 {
                if s.mask.data[i] != 0 {
                    let want = subject.albedo_at(s.iuv.part[i], s.iuv.u[i], s.iuv.v[i]);
                    assert_eq!(&s.albedo.data[i * 3..i * 3 + 3], &want);
                }
            }
        }
    }

    /// Writes contact sheets (image | albedo | parts | UV | background) to
    /// /tmp/unveil_synth_preview for eyeballing: `cargo test -p unveil-host preview -- --ignored`.
    #[test]
    #[ignore]
    fn preview() {
        let dir = std::path::Path::new("/tmp/unveil_synth_preview");
        std::fs::create_dir_all(dir).expect("mkdir");
        let env = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let size = env("PREVIEW_SIZE", 128);
        let mut c = cfg(size);
        // PREVIEW_OBJ=<file.obj>, PREVIEW_BACKGROUNDS=<folder>: preview user assets.
        if let Ok(p) = std::env::var("PREVIEW_OBJ") {
            c.subject =
                SubjectSource::Mesh(Arc::new(load_obj(std::path::Path::new(&p)).expect("obj")));
        }
        if let Ok(p) = std::env::var("PREVIEW_BACKGROUNDS") {
            c.background = load_backgrounds(std::path::Path::new(&p)).expect("backgrounds");
        }
        let scale_up = env("PREVIEW_SCALE", 2);
        let rows = env("PREVIEW_ROWS", 8);
        let first = env("PREVIEW_FIRST", 0) as u64;
        let cols = 5;
        let (w, h) = (size * cols * scale_up, size * rows * scale_up);
        let mut sheet = image::RgbImage::new(w as u32, h as u32);
        for r in 0..rows {
            // PREVIEW_FRONT=1: level frontal camera, to check faces and sides.
            let view = (env("PREVIEW_FRONT", 0) == 1).then_some(View {
                yaw: 0.0,
                pitch: 0.0,
                roll: 0.0,
                fov: 40.0,
                fill: 0.9,
                overhang: 0.0,
                place: [0.5, 0.5],
            });
            let s = render_impl(&c, 42, first + r as u64, view).expect("render");
            println!("{r}: {:?}", s.params);
            for i in 0..size * size {
                let p = s.iuv.part[i] as usize;
                let hue = |k: usize| ((p * [97, 57, 151][k] + 40 * k) % 256) as u8;
                let panels: [[u8; 3]; 5] = [
                    [
                        s.image.data[i * 3],
                        s.image.data[i * 3 + 1],
                        s.image.data[i * 3 + 2],
                    ],
                    [
                        s.albedo.data[i * 3],
                        s.albedo.data[i * 3 + 1],
                        s.albedo.data[i * 3 + 2],
                    ],
                    if p == 0 {
                        [0; 3]
                    } else {
                        [hue(0), hue(1), hue(2)]
                    },
                    if p == 0 {
                        [0; 3]
                    } else {
                        [(s.iuv.u[i] >> 8) as u8, (s.iuv.v[i] >> 8) as u8, 128]
                    },
                    [
                        s.background.data[i * 3],
                        s.background.data[i * 3 + 1],
                        s.background.data[i * 3 + 2],
                    ],
                ];
                let (x, y) = (i % size, i / size);
                for (k, px) in panels.iter().enumerate() {
                    for dy in 0..scale_up {
                        for dx in 0..scale_up {
                            let sx = ((k * size + x) * scale_up + dx) as u32;
                            let sy = ((r * size + y) * scale_up + dy) as u32;
                            sheet.put_pixel(sx, sy, image::Rgb(*px));
                        }
                    }
                }
            }
        }
        sheet.save(dir.join("sheet.png")).expect("save");
    }

    /// A 6 x 4 grid of lit images (seed from PREVIEW_SEED) in /tmp/unveil_synth_preview.
    #[test]
    #[ignore]
    fn preview_grid() {
        let seed = std::env::var("PREVIEW_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1u64);
        let dir = std::path::Path::new("/tmp/unveil_synth_preview");
        std::fs::create_dir_all(dir).expect("mkdir");
        let size = 128;
        let c = cfg(size);
        let (cols, rows) = (6, 4);
        let mut sheet = image::RgbImage::new((size * cols) as u32, (size * rows) as u32);
        for k in 0..cols * rows {
            let s = render_sample(&c, seed, k as u64).expect("render");
            println!(
                "{k}: {} {} yaw {:.0} cov {:.3}",
                s.params.pose, s.params.background, s.params.yaw_deg, s.params.coverage
            );
            for i in 0..size * size {
                let px = [
                    s.image.data[i * 3],
                    s.image.data[i * 3 + 1],
                    s.image.data[i * 3 + 2],
                ];
                let (x, y) = ((k % cols) * size + i % size, (k / cols) * size + i / size);
                sheet.put_pixel(x as u32, y as u32, image::Rgb(px));
            }
        }
        sheet.save(dir.join("grid.png")).expect("save");
    }
}
