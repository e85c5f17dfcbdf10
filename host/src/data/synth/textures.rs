//! Procedural per-part surface colour (albedo) defined on the *quantised* chart
//! coordinates, so that looking the texture up through a stored IUV map reproduces the
//! rendered albedo bit for bit.

use rand::Rng;
use unveil_shared::rng::Rng as Pcg;
use unveil_shared::NUM_PARTS;

use super::body::part;

/// Integer hash (lowbias32 style) of a lattice point; stable across platforms.
#[inline]
pub(crate) fn hash3(x: u32, y: u32, key: u32) -> u32 {
    let mut h =
        x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ key.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^= h >> 16;
    h
}

/// Hash to [0, 1).
#[inline]
pub(crate) fn hash_unit(x: u32, y: u32, key: u32) -> f32 {
    (hash3(x, y, key) >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[inline]
fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Value noise in [0, 1) at chart position (x, y) in lattice units, periodic with
/// `period` cells in x so it is continuous across the chart seam at u = 0 / 1.
#[inline]
fn value_noise(x: f32, y: f32, period: u32, key: u32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (tx, ty) = (smooth(x - xf), smooth(y - yf));
    let period = period.max(1);
    let ix0 = (xf.max(0.0) as u32) % period;
    let ix1 = (ix0 + 1) % period;
    let iy0 = yf.max(0.0) as u32;
    let iy1 = iy0 + 1;
    let a = hash_unit(ix0, iy0, key);
    let b = hash_unit(ix1, iy0, key);
    let c = hash_unit(ix0, iy1, key);
    let d = hash_unit(ix1, iy1, key);
    let top = a + (b - a) * tx;
    let bot = c + (d - c) * tx;
    top + (bot - top) * ty
}

#[inline]
fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t + 0.5) as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

#[inline]
fn shade(a: [u8; 3], k: f32) -> [u8; 3] {
    let f = |x: u8| (x as f32 * k + 0.5).clamp(0.0, 255.0) as u8;
    [f(a[0]), f(a[1]), f(a[2])]
}

/// The layout of a part's colours on its chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    /// Colour `a` only.
    Solid,
    /// Bands of `b` over `a`; phase = `pu`·u + `pv`·v with integer `pu`, so bands meet
    /// themselves across the seam.
    Stripes { pu: u8, pv: f32, duty: f32 },
    /// Checkerboard with `nu` (even) cells around and `nv` along.
    Checks { nu: u8, nv: u8 },
    /// Two-octave value noise blending `a` and `b` (camouflage, heather, denim wash).
    Noise { nu: u8, nv: u8, key: u32 },
    /// Dots of `b` on `a` on an `nu` x `nv` grid.
    Dots { nu: u8, nv: u8, radius: f32 },
    /// Skin `a` with faint mottling.
    Skin { key: u32 },
    /// Skin `a` with eyes and mouth `b` facing front (u = 0.5), so views read as front
    /// or back.
    Face { key: u32 },
    /// Hair: streaks running along the part, between `a` and `b`.
    Hair { key: u32 },
}

/// Albedo of one part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartTexture {
    pub pattern: Pattern,
    pub a: [u8; 3],
    pub b: [u8; 3],
}

impl PartTexture {
    pub const fn solid(a: [u8; 3]) -> Self {
        Self {
            pattern: Pattern::Solid,
            a,
            b: a,
        }
    }

    /// Colour at quantised chart coordinates (`value / 65535`, as stored in `IuvMap`).
    #[inline]
    pub fn sample(&self, u: u16, v: u16) -> [u8; 3] {
        let uf = u as f32 * (1.0 / 65535.0);
        let vf = v as f32 * (1.0 / 65535.0);
        match self.pattern {
            Pattern::Solid => self.a,
            Pattern::Stripes { pu, pv, duty } => {
                let t = pu as f32 * uf + pv * vf;
                if t - t.floor() < duty {
                    self.b
                } else {
                    self.a
                }
            }
            Pattern::Checks { nu, nv } => {
                let cu = (uf * nu as f32) as u32 % nu.max(1) as u32;
                let cv = (vf * nv as f32) as u32;
                if (cu + cv).is_multiple_of(2) {
                    self.a
                } else {
                    self.b
                }
            }
            Pattern::Noise { nu, nv, key } => {
                let n1 = value_noise(uf * nu as f32, vf * nv as f32, nu as u32, key);
                let n2 = value_noise(
                    uf * 2.0 * nu as f32,
                    vf * 2.0 * nv as f32,
                    2 * nu as u32,
                    key ^ 0x5bd1,
                );
                let n = 0.65 * n1 + 0.35 * n2;
                mix(self.a, self.b, (n - 0.25) * 2.0)
            }
            Pattern::Dots { nu, nv, radius } => {
                let x = uf * nu as f32;
                let y = vf * nv as f32;
                let dx = x - x.floor() - 0.5;
                let dy = y - y.floor() - 0.5;
                if dx * dx + dy * dy < radius * radius {
                    self.b
                } else {
                    self.a
                }
            }
            Pattern::Skin { key } => skin(self.a, uf, vf, key),
            Pattern::Face { key } => {
                // Eyes at v = 0.5 (u = 0.5 ± 0.055), mouth at v = 0.31, brows above eyes.
                let du = uf - 0.5;
                let e = ((du.abs() - 0.055) / 0.02).powi(2) + ((vf - 0.5) / 0.028).powi(2);
                if e < 1.0 {
                    return self.b;
                }
                let brow = ((du.abs() - 0.055) / 0.03).powi(2) + ((vf - 0.565) / 0.012).powi(2);
                if brow < 1.0 {
                    return shade(self.b, 1.3);
                }
                let m = (du / 0.045).powi(2) + ((vf - 0.31) / 0.014).powi(2);
                if m < 1.0 {
                    return mix(self.a, [150, 40, 50], 0.6);
                }
                skin(self.a, uf, vf, key)
            }
            Pattern::Hair { key } => {
                let n = value_noise(uf * 28.0, vf * 3.0, 28, key);
                mix(self.a, self.b, n)
            }
        }
    }
}

#[inline]
fn skin(a: [u8; 3], uf: f32, vf: f32, key: u32) -> [u8; 3] {
    let n = value_noise(uf * 8.0, vf * 6.0, 8, key);
    shade(a, 0.94 + 0.12 * n)
}

const SKIN_TONES: [[u8; 3]; 8] = [
    [255, 224, 196],
    [241, 194, 167],
    [234, 192, 134],
    [224, 172, 138],
    [198, 134, 99],
    [161, 102, 72],
    [120, 76, 52],
    [87, 57, 41],
];

const HAIR_COLOURS: [[u8; 3]; 7] = [
    [20, 18, 18],
    [55, 35, 25],
    [95, 65, 40],
    [130, 60, 30],
    [200, 170, 110],
    [165, 165, 165],
    [45, 40, 38],
];

const CLOTHES: [[u8; 3]; 20] = [
    [30, 40, 80],
    [25, 25, 28],
    [235, 235, 230],
    [128, 128, 130],
    [60, 62, 66],
    [180, 30, 35],
    [60, 90, 140],
    [110, 140, 180],
    [190, 170, 120],
    [95, 100, 50],
    [40, 120, 60],
    [110, 30, 45],
    [230, 190, 40],
    [230, 140, 170],
    [110, 75, 45],
    [220, 200, 170],
    [20, 120, 130],
    [230, 120, 30],
    [100, 60, 130],
    [130, 180, 220],
];

fn jitter(rng: &mut Pcg, c: [u8; 3], amount: i32) -> [u8; 3] {
    c.map(|x| (x as i32 + rng.random_range(-amount..=amount)).clamp(0, 255) as u8)
}

fn cloth_colour(rng: &mut Pcg) -> [u8; 3] {
    if rng.random::<f32>() < 0.25 {
        [rng.random(), rng.random(), rng.random()]
    } else {
        let c = CLOTHES[rng.random_range(0..CLOTHES.len())];
        jitter(rng, c, 15)
    }
}

/// A random garment texture: a pattern with two colours.
fn garment(rng: &mut Pcg) -> PartTexture {
    let a = cloth_colour(rng);
    let b = if rng.random::<f32>() < 0.5 {
        cloth_colour(rng)
    } else {
        shade(
            a,
            if rng.random::<bool>() {
                rng.random_range(0.4..0.75)
            } else {
                rng.random_range(1.3..1.8)
            },
        )
    };
    let key = rng.random::<u32>();
    let pattern = match rng.random_range(0..100) {
        0..35 => Pattern::Solid,
        35..57 => {
            let (pu, pv) = match rng.random_range(0..3) {
                0 => (0, rng.random_range(3.0..14.0f32)), // rings
                1 => (rng.random_range(4..16u8), 0.0),    // lengthwise
                _ => (rng.random_range(2..8u8), rng.random_range(2.0..8.0f32)), // helix
            };
            Pattern::Stripes {
                pu,
                pv,
                duty: rng.random_range(0.2..0.6),
            }
        }
        57..70 => Pattern::Checks {
            nu: 2 * rng.random_range(2..8u8),
            nv: rng.random_range(3..14u8),
        },
        70..88 => Pattern::Noise {
            nu: rng.random_range(3..10u8),
            nv: rng.random_range(3..10u8),
            key,
        },
        _ => Pattern::Dots {
            nu: rng.random_range(4..14u8),
            nv: rng.random_range(4..14u8),
            radius: rng.random_range(0.15..0.4),
        },
    };
    PartTexture { pattern, a, b }
}

/// Textures for all 24 parts (index `part - 1`): skin on head, neck and hands, hair (or a
/// hat), a top garment over torso and arms (sleeve length varies), a bottom garment over
/// pelvis and legs (trousers or shorts), shoes or bare feet. Left and right parts share a
/// garment, as clothes do.
pub fn wardrobe(rng: &mut Pcg) -> [PartTexture; NUM_PARTS] {
    let tone = SKIN_TONES[rng.random_range(0..SKIN_TONES.len())];
    let skin_tone = jitter(rng, tone, 10);
    let skin_t = PartTexture {
        pattern: Pattern::Skin { key: rng.random() },
        a: skin_tone,
        b: skin_tone,
    };
    let eyes = jitter(rng, [40, 30, 28], 15);
    let face = PartTexture {
        pattern: Pattern::Face { key: rng.random() },
        a: skin_tone,
        b: eyes,
    };
    let hair = if rng.random::<f32>() < 0.12 {
        garment(rng) // a hat or hood
    } else {
        let hc = HAIR_COLOURS[rng.random_range(0..HAIR_COLOURS.len())];
        let base = jitter(rng, hc, 12);
        PartTexture {
            pattern: Pattern::Hair { key: rng.random() },
            a: base,
            b: shade(base, 1.5),
        }
    };
    let top = garment(rng);
    let bottom = garment(rng);
    let shoes = if rng.random::<f32>() < 0.15 {
        skin_t
    } else if rng.random::<f32>() < 0.7 {
        PartTexture::solid(jitter(rng, [40, 36, 34], 30))
    } else {
        garment(rng)
    };
    let sleeves = rng.random_range(0..10); // 0-1 sleeveless, 2-5 short, 6-9 long
    let upper_arm = if sleeves < 2 { skin_t } else { top };
    let forearm = if sleeves < 6 { skin_t } else { top };
    let shorts = rng.random::<f32>() < 0.3;
    let shin = if shorts { skin_t } else { bottom };
    let knee = if shorts && rng.random::<bool>() {
        skin_t
    } else {
        bottom
    };
    let neck = if rng.random::<f32>() < 0.1 {
        top
    } else {
        skin_t
    };
    let hands = if rng.random::<f32>() < 0.05 {
        garment(rng)
    } else {
        skin_t
    };
    let abdomen = if rng.random::<f32>() < 0.75 {
        top
    } else {
        bottom
    };

    let mut t = [skin_t; NUM_PARTS];
    let mut set = |p: u8, tex: PartTexture| t[p as usize - 1] = tex;
    set(part::HEAD, face);
    set(part::HAIR, hair);
    set(part::NECK, neck);
    set(part::CHEST, top);
    set(part::ABDOMEN, abdomen);
    set(part::PELVIS, bottom);
    for (l, r, tex) in [
        (
            part::L_SHOULDER,
            part::R_SHOULDER,
            if sleeves < 2 { skin_t } else { top },
        ),
        (part::L_UPPER_ARM, part::R_UPPER_ARM, upper_arm),
        (part::L_FOREARM, part::R_FOREARM, forearm),
        (part::L_HAND, part::R_HAND, hands),
        (part::L_HIP, part::R_HIP, bottom),
        (part::L_THIGH, part::R_THIGH, bottom),
        (part::L_KNEE, part::R_KNEE, knee),
        (part::L_SHIN, part::R_SHIN, shin),
        (part::L_FOOT, part::R_FOOT, shoes),
    ] {
        set(l, tex);
        set(r, tex);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_continuous_across_the_seam() {
        let mut rng = unveil_shared::rng::stream(1, 2);
        for _ in 0..50 {
            let t = garment(&mut rng);
            if matches!(t.pattern, Pattern::Noise { .. }) {
                for v in [0u16, 1000, 30000, 65535] {
                    let a = t.sample(0, v);
                    let b = t.sample(65535, v);
                    let d = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (*x as i32 - y as i32).abs())
                        .max();
                    assert!(d.unwrap_or(0) <= 2, "{t:?} at v={v}: {a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn sample_is_a_pure_function() {
        let mut rng = unveil_shared::rng::stream(3, 4);
        let w = wardrobe(&mut rng);
        for t in &w {
            for (u, v) in [(0, 0), (12345, 54321), (65535, 65535)] {
                assert_eq!(t.sample(u, v), t.sample(u, v));
            }
        }
    }
}
