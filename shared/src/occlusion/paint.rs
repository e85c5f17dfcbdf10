//! What goes into hidden pixels.

use super::*;

// Paint: what goes into hidden pixels.

#[derive(Clone, Copy, Debug)]
pub(crate) enum Paint {
    Noise,
    Flat([u8; 3]),
    /// Stripes across the grating's direction, `c0` for the first `duty` of each period.
    Stripes(Grating, f32),
    /// A checkerboard of the grating's period, turned to its direction.
    Checks(Grating),
    /// Per-pixel random mix of two colours.
    Speckle {
        c0: [u8; 3],
        c1: [u8; 3],
    },
}

/// Two colours laid out along a direction (`cos`, `sin`) with a period in pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grating {
    c0: [u8; 3],
    c1: [u8; 3],
    cos: f32,
    sin: f32,
    period: f32,
}

impl Paint {
    pub(crate) fn colour(&self, x: usize, y: usize, rng: &mut Rng) -> [u8; 3] {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        match *self {
            Paint::Noise => rgb(rng),
            Paint::Flat(c) => c,
            Paint::Stripes(g, duty) => {
                let t = (px * g.cos + py * g.sin) / g.period;
                if t - libm::floorf(t) < duty {
                    g.c0
                } else {
                    g.c1
                }
            }
            Paint::Checks(g) => {
                let u = libm::floorf((px * g.cos + py * g.sin) / g.period) as i64;
                let v = libm::floorf((py * g.cos - px * g.sin) / g.period) as i64;
                if (u + v) & 1 == 0 {
                    g.c0
                } else {
                    g.c1
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
        let grating = Grating {
            c0,
            c1,
            cos,
            sin,
            period,
        };
        match below(rng, 4) {
            0 => Paint::Stripes(grating, uni(rng, 0.3, 0.7)),
            1 => Paint::Checks(grating),
            2 => Paint::Speckle { c0, c1 },
            _ => Paint::Flat(c0),
        }
    }
}
