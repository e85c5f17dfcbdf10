//! What goes into hidden pixels.

use super::*;

// Paint: what goes into hidden pixels.

#[derive(Clone, Copy, Debug)]
pub(crate) enum Paint {
    Noise,
    Flat([u8; 3]),
    Stripes {
        c0: [u8; 3],
        c1: [u8; 3],
        cos: f32,
        sin: f32,
        period: f32,
        duty: f32,
    },
    Checks {
        c0: [u8; 3],
        c1: [u8; 3],
        cos: f32,
        sin: f32,
        period: f32,
    },
    /// Per-pixel random mix of two colours.
    Speckle {
        c0: [u8; 3],
        c1: [u8; 3],
    },
}

impl Paint {
    pub(crate) fn colour(&self, x: usize, y: usize, rng: &mut Rng) -> [u8; 3] {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        match *self {
            Paint::Noise => rgb(rng),
            Paint::Flat(c) => c,
            Paint::Stripes {
                c0,
                c1,
                cos,
                sin,
                period,
                duty,
            } => {
                let t = (px * cos + py * sin) / period;
                if t - libm::floorf(t) < duty {
                    c0
                } else {
                    c1
                }
            }
            Paint::Checks {
                c0,
                c1,
                cos,
                sin,
                period,
            } => {
                let u = libm::floorf((px * cos + py * sin) / period) as i64;
                let v = libm::floorf((py * cos - px * sin) / period) as i64;
                if (u + v) & 1 == 0 {
                    c0
                } else {
                    c1
                }
            }
            Paint::Speckle { c0, c1 } => {
                let t = rng.random::<u8>() as u16;
                core::array::from_fn(|k| {
                    ((c0[k] as u16 * (255 - t) + c1[k] as u16 * t) / 255) as u8
                })
            }
        }
    }

    /// A procedural texture for object occluders, its scale tied to the image size.
    pub(crate) fn texture(rng: &mut Rng, side: f32) -> Self {
        let (c0, c1) = (rgb(rng), rgb(rng));
        let angle = uni(rng, 0.0, core::f32::consts::PI);
        let (sin, cos) = (libm::sinf(angle), libm::cosf(angle));
        let period = (side * uni(rng, 0.02, 0.08)).max(2.0);
        match below(rng, 4) {
            0 => Paint::Stripes {
                c0,
                c1,
                cos,
                sin,
                period,
                duty: uni(rng, 0.3, 0.7),
            },
            1 => Paint::Checks {
                c0,
                c1,
                cos,
                sin,
                period,
            },
            2 => Paint::Speckle { c0, c1 },
            _ => Paint::Flat(c0),
        }
    }
}
