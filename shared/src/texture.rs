//! Texture-map layout: the image-aligned, amodal surface description of the subject.
//!
//! The texture map has two planes (see the design notes): surface coordinates as a
//! DensePose-style IUV map, and surface colour (albedo) looked up at those coordinates.
//! As a network tensor it is [`TEXTURE_CHANNELS`] channels, in this order:
//!
//! | channel | meaning | range |
//! |---|---|---|
//! | 0 | part index I / [`NUM_PARTS`] (0 = no subject) | 0..=1 |
//! | 1 | U inside the part's chart | 0..=1 |
//! | 2 | V inside the part's chart | 0..=1 |
//! | 3..6 | albedo R, G, B | 0..=1 |

use alloc::vec;
use alloc::vec::Vec;

use crate::image::{ImageError, ImageU8, Mask};

/// Number of body parts; part indices run 1..=NUM_PARTS, 0 is background.
pub const NUM_PARTS: usize = 24;
/// Channels of the texture-map tensor (I, U, V, albedo RGB).
pub const TEXTURE_CHANNELS: usize = 6;
/// Channel index of each texture-map plane inside the tensor.
pub const CH_I: usize = 0;
pub const CH_U: usize = 1;
pub const CH_V: usize = 2;
pub const CH_ALBEDO: usize = 3;

/// Image-aligned surface coordinates. U and V are stored as 16-bit fixed point
/// (`value / 65535`), because 8 bits would alias fine texture detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IuvMap {
    pub width: usize,
    pub height: usize,
    /// Part index per pixel, 0 = background.
    pub part: Vec<u8>,
    pub u: Vec<u16>,
    pub v: Vec<u16>,
}

impl IuvMap {
    pub fn new(width: usize, height: usize) -> Self {
        let n = width * height;
        Self {
            width,
            height,
            part: vec![0; n],
            u: vec![0; n],
            v: vec![0; n],
        }
    }

    /// Build from planes, checking that all three have `width * height` entries and that
    /// part indices are in range.
    pub fn from_planes(
        width: usize,
        height: usize,
        part: Vec<u8>,
        u: Vec<u16>,
        v: Vec<u16>,
    ) -> Result<Self, ImageError> {
        let n = width.checked_mul(height).ok_or(ImageError::TooLarge)?;
        for len in [part.len(), u.len(), v.len()] {
            if len != n {
                return Err(ImageError::BufferSize {
                    expected: n,
                    actual: len,
                });
            }
        }
        if let Some(&p) = part.iter().find(|&&p| p as usize > NUM_PARTS) {
            return Err(ImageError::PartIndex(p));
        }
        Ok(Self {
            width,
            height,
            part,
            u,
            v,
        })
    }

    /// Silhouette of the subject: `part > 0`.
    pub fn silhouette(&self) -> Mask {
        Mask::from_fn(self.width, self.height, |i| self.part[i] > 0)
    }

    /// Fixed-point UV → [0, 1].
    pub fn uv_f32(&self, i: usize) -> (f32, f32) {
        (self.u[i] as f32 / 65535.0, self.v[i] as f32 / 65535.0)
    }

    /// The texture-map tensor (CHW, [`TEXTURE_CHANNELS`] channels, see module docs).
    pub fn texture_tensor(&self, albedo: &ImageU8) -> Result<Vec<f32>, ImageError> {
        albedo.expect_shape(self.width, self.height, 3)?;
        let n = self.width * self.height;
        let mut out = vec![0.0f32; TEXTURE_CHANNELS * n];
        for i in 0..n {
            out[CH_I * n + i] = self.part[i] as f32 / NUM_PARTS as f32;
            let (u, v) = self.uv_f32(i);
            out[CH_U * n + i] = u;
            out[CH_V * n + i] = v;
            for c in 0..3 {
                out[(CH_ALBEDO + c) * n + i] = albedo.data[i * 3 + c] as f32 / 255.0;
            }
        }
        Ok(out)
    }
}

/// The 2D silhouette condition of the stage-2 ablation from a texture-map tensor
/// (`[TEXTURE_CHANNELS, H, W]`, CHW): `out[p] = 1` where the part channel is above 0
/// (any body part), else 0. `out` holds `H·W` values; extra entries on either side are
/// ignored. Host export, host evaluation and the device all derive it here, so the
/// silhouette G2 was trained on is the one the camera feeds it.
pub fn silhouette_plane(texture: &[f32], out: &mut [f32]) {
    let plane = texture.len() / TEXTURE_CHANNELS;
    let part = &texture[CH_I * plane..(CH_I + 1) * plane];
    for (o, &p) in out.iter_mut().zip(part) {
        *o = if p > 0.0 { 1.0 } else { 0.0 };
    }
}

/// Quantise a [0, 1] coordinate to the 16-bit fixed point used in [`IuvMap`].
pub fn quantise_uv(x: f32) -> u16 {
    (x.clamp(0.0, 1.0) * 65535.0 + 0.5) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silhouette_plane_marks_part_pixels() {
        // 2 pixels: part 0 (U set, must not matter) and part 3.
        let mut t = vec![0.0f32; TEXTURE_CHANNELS * 2];
        t[1] = 3.0 / NUM_PARTS as f32;
        t[2] = 0.7;
        let mut out = [9.0f32; 2];
        silhouette_plane(&t, &mut out);
        assert_eq!(out, [0.0, 1.0]);
    }

    #[test]
    fn tensor_layout_matches_docs() {
        let mut iuv = IuvMap::new(2, 1);
        iuv.part[1] = 12;
        iuv.u[1] = 65535;
        iuv.v[1] = quantise_uv(0.5);
        let albedo = ImageU8::from_vec(2, 1, 3, vec![0, 0, 0, 255, 0, 51]).unwrap();
        let t = iuv.texture_tensor(&albedo).unwrap();
        assert_eq!(t.len(), 12);
        assert_eq!(t[CH_I * 2 + 1], 0.5);
        assert_eq!(t[CH_U * 2 + 1], 1.0);
        assert!((t[CH_V * 2 + 1] - 0.5).abs() < 1e-4);
        assert_eq!(t[CH_ALBEDO * 2 + 1], 1.0);
        assert_eq!(t[(CH_ALBEDO + 2) * 2 + 1], 0.2);
        assert_eq!(t[CH_I * 2], 0.0);
    }

    #[test]
    fn from_planes_rejects_bad_input() {
        assert!(IuvMap::from_planes(2, 2, vec![0; 3], vec![0; 4], vec![0; 4]).is_err());
        assert!(IuvMap::from_planes(1, 1, vec![25], vec![0], vec![0]).is_err());
        assert!(IuvMap::from_planes(1, 1, vec![24], vec![0], vec![0]).is_ok());
    }
}
