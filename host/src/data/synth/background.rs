//! Background plates: cheap procedural families (so the networks never learn one plate
//! type) and random crops of user photos.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use unveil_shared::rng::Rng as Pcg;
use unveil_shared::ImageU8;

use super::textures::{hash3, hash_unit};
use super::{BackgroundSource, SynthError};

/// Longest short side kept for a user photo; larger photos are downscaled once at load
/// (with a proper area filter), which bounds both memory and per-sample crop cost.
const MAX_PHOTO_SIDE: u32 = 1024;

/// Procedural family names, as recorded in `SampleParams::background`.
pub const FAMILIES: [&str; 6] = ["gradient", "tiles", "clouds", "stripes", "bokeh", "flat"];

/// Render a `size` x `size` RGB plate; returns it with the family name used.
pub fn render(source: &BackgroundSource, size: usize, rng: &mut Pcg) -> (ImageU8, String) {
    if let BackgroundSource::Photos(photos) = source {
        if !photos.is_empty() {
            let i = rng.random_range(0..photos.len());
            if let Some(img) = photo_crop(&photos[i], size, rng) {
                return (img, format!("photo:{i}"));
            }
        }
    }
    let family = rng.random_range(0..FAMILIES.len());
    let mut img = ImageU8::new(size, size, 3);
    match family {
        0 => gradient(&mut img, rng),
        1 => tiles(&mut img, rng),
        2 => clouds(&mut img, rng),
        3 => stripes(&mut img, rng),
        4 => bokeh(&mut img, rng),
        _ => flat(&mut img, rng),
    }
    (img, FAMILIES[family].to_string())
}

/// A random colour with random saturation: real scenes are mostly muted, but the
/// networks must also cope with vivid ones.
fn colour(rng: &mut Pcg) -> [f32; 3] {
    let c: [f32; 3] = [
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
    ];
    let grey = (c[0] + c[1] + c[2]) / 3.0;
    let sat = rng.random_range(0.1..1.0f32);
    c.map(|x| grey + (x - grey) * sat)
}

/// A colour near `c` (same hue family), for plausible two-tone scenes.
fn near(rng: &mut Pcg, c: [f32; 3], spread: f32) -> [f32; 3] {
    c.map(|x| (x + rng.random_range(-spread..spread)).clamp(0.0, 255.0))
}

#[inline]
fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

#[inline]
fn put(img: &mut ImageU8, i: usize, c: [f32; 3]) {
    let px = &mut img.data[i * 3..i * 3 + 3];
    for k in 0..3 {
        px[k] = (c[k] + 0.5).clamp(0.0, 255.0) as u8;
    }
}

/// Per-pixel sensor-like grain in [-amp, amp].
#[inline]
fn grain(x: usize, y: usize, key: u32, amp: f32) -> f32 {
    if amp == 0.0 {
        return 0.0;
    }
    (hash_unit(x as u32, y as u32, key) - 0.5) * 2.0 * amp
}

fn add_grain(c: [f32; 3], g: f32) -> [f32; 3] {
    [c[0] + g, c[1] + g, c[2] + g]
}

/// Sky gradient above a horizon, floor gradient below (an outdoor or studio scene).
fn gradient(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let sky_top = colour(rng);
    let sky_low = near(rng, sky_top, 90.0);
    let floor_near = colour(rng);
    let floor_far = near(rng, floor_near, 70.0);
    let horizon = rng.random_range(0.25..0.8f32) * h as f32;
    let tilt = rng.random_range(-0.15..0.15f32);
    let key = rng.random::<u32>();
    let amp = rng.random_range(0.0..6.0f32);
    for y in 0..h {
        for x in 0..w {
            let hy = horizon + tilt * (x as f32 - w as f32 / 2.0);
            let yf = y as f32;
            let c = if yf < hy {
                lerp3(sky_top, sky_low, (yf / hy.max(1.0)).clamp(0.0, 1.0))
            } else {
                lerp3(
                    floor_far,
                    floor_near,
                    ((yf - hy) / (h as f32 - hy).max(1.0)).clamp(0.0, 1.0),
                )
            };
            put(img, y * w + x, add_grain(c, grain(x, y, key, amp)));
        }
    }
}

/// Tiles: a perspective floor under a wall, or a flat rotated tiling with grout lines.
fn tiles(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let a = colour(rng);
    let b = if rng.random::<bool>() {
        near(rng, a, 60.0)
    } else {
        colour(rng)
    };
    let grout = near(rng, [128.0; 3], 100.0);
    let key = rng.random::<u32>();
    let s = w as f32;
    if rng.random::<bool>() {
        // Perspective floor: pixel row y below the horizon sees floor depth k / (y - horizon).
        let wall = colour(rng);
        let wall2 = near(rng, wall, 50.0);
        let horizon = rng.random_range(0.2..0.6f32) * h as f32;
        let tile = rng.random_range(0.15..0.5f32);
        let shift = rng.random_range(0.0..10.0f32);
        let mean = lerp3(a, b, 0.5);
        for y in 0..h {
            let dy = y as f32 + 0.5 - horizon;
            for x in 0..w {
                let c = if dy <= 0.0 {
                    lerp3(wall, wall2, (y as f32 / horizon.max(1.0)).clamp(0.0, 1.0))
                } else {
                    // Camera 1 unit above the floor, focal length `s` pixels.
                    let z = s / dy;
                    let fx = (x as f32 + 0.5 - s / 2.0) / dy;
                    let cx = ((fx / tile + shift).floor() as i64) & 1;
                    let cz = ((z / tile).floor() as i64) & 1;
                    let c = if cx ^ cz == 0 { a } else { b };
                    // Fade to the mean colour near the horizon, where tiles alias.
                    lerp3(mean, c, (dy / (0.15 * h as f32)).clamp(0.0, 1.0))
                };
                put(img, y * w + x, c);
            }
        }
    } else {
        let size = rng.random_range(0.06..0.3f32) * s;
        let gw = rng.random_range(0.0..0.12f32);
        let (sn, cs) = rng.random_range(-0.6..0.6f32).sin_cos();
        let checker = rng.random::<bool>();
        let amp = rng.random_range(0.0..5.0f32);
        for y in 0..h {
            for x in 0..w {
                let px = x as f32 * cs - y as f32 * sn;
                let py = x as f32 * sn + y as f32 * cs;
                let (tx, ty) = (px / size, py / size);
                let (fx, fy) = (tx - tx.floor(), ty - ty.floor());
                let c = if fx < gw || fy < gw {
                    grout
                } else if checker && ((tx.floor() as i64 + ty.floor() as i64) & 1) == 1 {
                    b
                } else {
                    // Per-tile shade variation, like real ceramic.
                    let v = hash_unit(tx.floor() as i32 as u32, ty.floor() as i32 as u32, key);
                    lerp3(a, b, v * 0.3)
                };
                put(img, y * w + x, add_grain(c, grain(x, y, key ^ 1, amp)));
            }
        }
    }
}

/// Lattice of random values for value noise, sized for `cells` cells across the plate.
struct Lattice {
    n: usize,
    v: Vec<f32>,
}

impl Lattice {
    fn new(rng: &mut Pcg, cells: usize) -> Self {
        let n = cells + 2;
        Self {
            n,
            v: (0..n * n).map(|_| rng.random::<f32>()).collect(),
        }
    }

    /// Smooth value noise at (x, y) in cell units, 0 <= x, y <= cells.
    #[inline]
    fn at(&self, x: f32, y: f32) -> f32 {
        let (ix, iy) = (x as usize, y as usize);
        let (ix, iy) = (ix.min(self.n - 2), iy.min(self.n - 2));
        let (tx, ty) = (x - ix as f32, y - iy as f32);
        let (tx, ty) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
        let r0 = iy * self.n + ix;
        let r1 = r0 + self.n;
        let top = self.v[r0] + (self.v[r0 + 1] - self.v[r0]) * tx;
        let bot = self.v[r1] + (self.v[r1 + 1] - self.v[r1]) * tx;
        top + (bot - top) * ty
    }
}

/// Value-noise clouds / plaster / foliage blur between two or three colours.
fn clouds(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let a = colour(rng);
    let b = if rng.random::<bool>() {
        near(rng, a, 120.0)
    } else {
        colour(rng)
    };
    let c3 = colour(rng);
    let three = rng.random::<f32>() < 0.3;
    let base = rng.random_range(2..6usize);
    let octaves: Vec<(Lattice, usize, f32)> = (0..3u32)
        .map(|o| {
            (
                Lattice::new(rng, base << o),
                base << o,
                0.5f32.powi(o as i32),
            )
        })
        .collect();
    let norm: f32 = octaves.iter().map(|o| o.2).sum();
    let contrast = rng.random_range(1.0..2.5f32);
    let inv = 1.0 / w.max(h) as f32;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 * inv, y as f32 * inv);
            let mut n = 0.0;
            for (lat, cells, amp) in &octaves {
                n += amp * lat.at(fx * *cells as f32, fy * *cells as f32);
            }
            let t = ((n / norm - 0.5) * contrast + 0.5).clamp(0.0, 1.0);
            let c = if three {
                if t < 0.5 {
                    lerp3(a, b, t * 2.0)
                } else {
                    lerp3(b, c3, t * 2.0 - 1.0)
                }
            } else {
                lerp3(a, b, t)
            };
            put(img, y * w + x, c);
        }
    }
}

/// Wallpaper: stripes at an angle, sometimes with a dot motif.
fn stripes(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let cols: Vec<[f32; 3]> = (0..rng.random_range(2..4)).map(|_| colour(rng)).collect();
    let period = rng.random_range(0.04..0.3f32) * w as f32;
    let ang = if rng.random::<bool>() {
        0.0
    } else {
        rng.random_range(-1.2..1.2f32)
    };
    let (sn, cs) = ang.sin_cos();
    let dots = rng.random::<f32>() < 0.35;
    let dot_col = colour(rng);
    let dot_r = rng.random_range(0.1..0.3f32);
    let soft = rng.random_range(0.0..0.3f32);
    let key = rng.random::<u32>();
    let amp = rng.random_range(0.0..5.0f32);
    let n = cols.len() as f32;
    for y in 0..h {
        for x in 0..w {
            let t = (x as f32 * cs + y as f32 * sn) / period;
            let k = ((t.floor() as i64).rem_euclid(cols.len() as i64)) as usize;
            let f = t - t.floor();
            let mut c = cols[k];
            if soft > 0.0 && f > 1.0 - soft {
                let next = cols[(k + 1) % cols.len()];
                c = lerp3(c, next, (f - (1.0 - soft)) / soft);
            }
            if dots {
                let q = period / n.max(1.0);
                let (dx, dy) = (x as f32 / q, y as f32 / q);
                let (ex, ey) = (dx - dx.floor() - 0.5, dy - dy.floor() - 0.5);
                if ex * ex + ey * ey < dot_r * dot_r {
                    c = dot_col;
                }
            }
            put(img, y * w + x, add_grain(c, grain(x, y, key, amp)));
        }
    }
}

/// Out-of-focus lights: soft discs blended over a gradient.
fn bokeh(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let top = colour(rng);
    let bottom = near(rng, top, 80.0);
    let mut buf: Vec<[f32; 3]> = Vec::with_capacity(w * h);
    for y in 0..h {
        let c = lerp3(top, bottom, y as f32 / h as f32);
        buf.extend(std::iter::repeat_n(c, w));
    }
    let s = w.max(h) as f32;
    let tint = colour(rng);
    for _ in 0..rng.random_range(8..40) {
        let cx = rng.random_range(-0.1..1.1f32) * w as f32;
        let cy = rng.random_range(-0.1..1.1f32) * h as f32;
        let r = rng.random_range(0.02..0.2f32) * s;
        let col = near(rng, tint, 120.0);
        let alpha = rng.random_range(0.15..0.7f32);
        let edge = r * rng.random_range(0.1..0.5f32) + 0.5;
        let x0 = ((cx - r - 1.0).floor().max(0.0)) as usize;
        let x1 = ((cx + r + 1.0).ceil().max(0.0) as usize).min(w);
        let y0 = ((cy - r - 1.0).floor().max(0.0)) as usize;
        let y1 = ((cy + r + 1.0).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                let a = ((r - d) / edge).clamp(0.0, 1.0) * alpha;
                if a > 0.0 {
                    let p = &mut buf[y * w + x];
                    *p = lerp3(*p, col, a);
                }
            }
        }
    }
    for (i, c) in buf.into_iter().enumerate() {
        put(img, i, c);
    }
}

/// Flat colour with grain: the hardest case for "find the subject by texture".
fn flat(img: &mut ImageU8, rng: &mut Pcg) {
    let (w, h) = (img.width, img.height);
    let c = colour(rng);
    let key = rng.random::<u32>();
    let amp = rng.random_range(0.0..14.0f32);
    let chroma = rng.random::<bool>();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let px = if chroma {
                let hsh = hash3(x as u32, y as u32, key);
                let g = |k: u32| (((hsh >> (k * 8)) & 0xff) as f32 / 255.0 - 0.5) * 2.0 * amp;
                [c[0] + g(0), c[1] + g(1), c[2] + g(2)]
            } else {
                add_grain(c, grain(x, y, key, amp))
            };
            put(img, i, px);
        }
    }
}

/// Random square crop (35-100 % of the short side), optional mirror, resized to `size`.
/// Large crops are box-averaged by an integer factor first so the bilinear resize never
/// skips source pixels (which would alias).
fn photo_crop(photo: &ImageU8, size: usize, rng: &mut Pcg) -> Option<ImageU8> {
    let short = photo.width.min(photo.height);
    if short == 0 || photo.channels != 3 {
        return None;
    }
    let side = ((short as f32 * rng.random_range(0.35..1.0f32)) as usize).clamp(1, short);
    let x0 = rng.random_range(0..=photo.width - side);
    let y0 = rng.random_range(0..=photo.height - side);
    let mirror = rng.random::<bool>();
    let k = (side / size).max(1);
    let out_side = side / k;
    let mut data = vec![0u8; out_side * out_side * 3];
    let norm = 1.0 / (k * k) as f32;
    for oy in 0..out_side {
        for ox in 0..out_side {
            let mut acc = [0.0f32; 3];
            for dy in 0..k {
                let row = (y0 + oy * k + dy) * photo.width;
                for dx in 0..k {
                    let sx = x0 + ox * k + dx;
                    let p = &photo.data[(row + sx) * 3..(row + sx) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += p[c] as f32;
                    }
                }
            }
            let tx = if mirror { out_side - 1 - ox } else { ox };
            for c in 0..3 {
                data[(oy * out_side + tx) * 3 + c] = (acc[c] * norm + 0.5) as u8;
            }
        }
    }
    let crop = ImageU8::from_vec(out_side, out_side, 3, data).ok()?;
    crop.resize_bilinear(size, size).ok()
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

/// Decode every PNG/JPEG in `dir` (sorted by name, so indices are reproducible). Any
/// unreadable image is an error naming it: silently skipping would change the data set.
pub fn load_backgrounds(dir: &Path) -> Result<BackgroundSource, SynthError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SynthError::Background {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| SynthError::Background {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let p = e.path();
        if p.is_file() && is_image(&p) {
            paths.push(p);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(SynthError::NoBackgrounds(dir.to_path_buf()));
    }
    let mut photos = Vec::with_capacity(paths.len());
    for p in paths {
        let err = |reason: String| SynthError::Background {
            path: p.clone(),
            reason,
        };
        let img = image::ImageReader::open(&p)
            .map_err(|e| err(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| err(e.to_string()))?
            .decode()
            .map_err(|e| err(e.to_string()))?;
        let mut rgb = img.to_rgb8();
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err(err("image is empty".into()));
        }
        let short = w.min(h);
        if short > MAX_PHOTO_SIDE {
            let f = MAX_PHOTO_SIDE as f32 / short as f32;
            let (nw, nh) = (
                ((w as f32 * f) as u32).max(1),
                ((h as f32 * f) as u32).max(1),
            );
            rgb = image::imageops::resize(&rgb, nw, nh, image::imageops::FilterType::Triangle);
        }
        let (w, h) = rgb.dimensions();
        let photo = ImageU8::from_vec(w as usize, h as usize, 3, rgb.into_raw())
            .map_err(|e| err(e.to_string()))?;
        photos.push(photo);
    }
    Ok(BackgroundSource::Photos(Arc::new(photos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders_deterministically() {
        let mut seen = std::collections::HashSet::new();
        for s in 0..60 {
            let a = render(
                &BackgroundSource::Procedural,
                48,
                &mut unveil_shared::rng::stream(s, 9),
            );
            let b = render(
                &BackgroundSource::Procedural,
                48,
                &mut unveil_shared::rng::stream(s, 9),
            );
            assert_eq!(a, b);
            assert_eq!(a.0.data.len(), 48 * 48 * 3);
            seen.insert(a.1);
        }
        assert_eq!(seen.len(), FAMILIES.len(), "{seen:?}");
    }

    #[test]
    fn photo_folder_loads_and_crops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        img.save(dir.path().join("a.PNG")).expect("save");
        img.save(dir.path().join("b.jpg")).expect("save");
        std::fs::write(dir.path().join("notes.txt"), b"not an image").expect("write");
        let src = load_backgrounds(dir.path()).expect("load");
        let BackgroundSource::Photos(p) = &src else {
            panic!("not photos")
        };
        assert_eq!(p.len(), 2);
        let (plate, name) = render(&src, 64, &mut unveil_shared::rng::stream(1, 1));
        assert!(name.starts_with("photo:"));
        assert_eq!((plate.width, plate.height), (64, 64));
        // Blue channel is constant 7 in the source (JPEG may drift slightly).
        assert!(plate.data.chunks(3).all(|px| px[2] < 20));
    }

    #[test]
    fn corrupt_photo_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = image::RgbImage::new(20, 20);
        img.save(dir.path().join("good.png")).expect("save");
        std::fs::write(dir.path().join("broken.png"), b"\x89PNG\r\n\x1a\ngarbage").expect("write");
        match load_backgrounds(dir.path()) {
            Err(SynthError::Background { path, .. }) => assert!(path.ends_with("broken.png")),
            other => panic!("expected a background error, got {other:?}"),
        }
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            load_backgrounds(empty.path()),
            Err(SynthError::NoBackgrounds(_))
        ));
    }
}
