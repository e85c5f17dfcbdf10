//! The hole-aware network input, built the same way by the trainer and the camera (a step
//! beyond the method's text: `docs/method.md`, "Where we go beyond the text").
//!
//! A network that is not told where the hole is can only guess it from the pixels, and
//! then smooths everything (measured: the patent-literal G2 scored like a blur of its
//! input). So G1 and G2 read `[RGB with the hidden pixels pre-filled, hole plane]`: four
//! planes, the hole plane 1 on hidden pixels and 0 elsewhere. [`HoleInput`] says how the
//! hidden pixels are pre-filled; the manifest records it so the device does exactly what
//! training did.

use serde::{Deserialize, Serialize};

use crate::image::{ImageError, ImageU8, Mask, Normalisation};
use crate::inpaint;

/// Telea's neighbourhood radius for the pre-fill (OpenCV's common choice).
pub const TELEA_RADIUS: usize = 5;

/// How a network's image input carries the hole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoleInput {
    /// The patent-literal input: the occluded RGB alone (3 planes), no hole plane.
    #[default]
    Absent,
    /// Hidden pixels set to 0 in normalised units (the LaMa / MI-GAN convention) plus the
    /// hole plane.
    Zeroed,
    /// Hidden pixels pre-filled by Telea's classical inpainting plus the hole plane: the
    /// network starts from the classical answer and learns what it misses.
    Telea,
}

impl HoleInput {
    /// Planes of the image input: 3 without the hole, 4 with it.
    pub const fn image_channels(self) -> usize {
        match self {
            HoleInput::Absent => 3,
            HoleInput::Zeroed | HoleInput::Telea => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            HoleInput::Absent => "absent",
            HoleInput::Zeroed => "zeroed",
            HoleInput::Telea => "telea",
        }
    }
}

/// Unknown `--hole` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hole input {0:?} (expected absent, zeroed or telea)")]
pub struct UnknownHoleInput(pub alloc::string::String);

impl core::str::FromStr for HoleInput {
    type Err = UnknownHoleInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "absent" => Ok(HoleInput::Absent),
            "zeroed" => Ok(HoleInput::Zeroed),
            "telea" => Ok(HoleInput::Telea),
            other => Err(UnknownHoleInput(other.into())),
        }
    }
}

/// Buffers [`write_hole_input`] reuses from frame to frame, so a camera loop allocates
/// nothing once they have grown to the frame size.
#[derive(Debug, Default)]
pub struct HoleScratch {
    /// The frame with its hole pre-filled (Telea only; the last frame's).
    pub filled: ImageU8,
    telea: inpaint::TeleaScratch,
}

impl HoleScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Write the network input for `frame` (grey, RGB or RGBA 8-bit) with hidden pixels
/// `mask` into `out` (planar, `image_channels() · W · H` floats). For
/// [`HoleInput::Telea`], `scratch.filled` receives the pre-filled frame. `mask = None`
/// means nothing is hidden.
pub fn write_hole_input(
    frame: &ImageU8,
    mask: Option<&Mask>,
    hole: HoleInput,
    norm: &Normalisation,
    scratch: &mut HoleScratch,
    out: &mut [f32],
) -> Result<(), ImageError> {
    let n = frame.width * frame.height;
    if out.len() != hole.image_channels() * n {
        return Err(ImageError::BufferSize {
            expected: hole.image_channels() * n,
            actual: out.len(),
        });
    }
    if let Some(m) = mask {
        if m.width != frame.width || m.height != frame.height || m.data.len() != n {
            return Err(ImageError::Shape {
                expected_w: frame.width,
                expected_h: frame.height,
                expected_c: 1,
                actual_w: m.width,
                actual_h: m.height,
                actual_c: 1,
            });
        }
    }
    let hidden = |i: usize| mask.is_some_and(|m| m.data[i] != 0);
    let (rgb, plane) = out.split_at_mut(3 * n);
    match (hole, mask) {
        (HoleInput::Telea, Some(m)) if m.count() > 0 => {
            let HoleScratch { filled, telea } = scratch;
            inpaint::telea_into(frame, m, TELEA_RADIUS, telea, filled)?;
            filled.write_chw(norm, rgb);
        }
        _ => frame.write_chw(norm, rgb),
    }
    if hole == HoleInput::Zeroed {
        for c in 0..3 {
            for (i, v) in rgb[c * n..(c + 1) * n].iter_mut().enumerate() {
                if hidden(i) {
                    *v = 0.0;
                }
            }
        }
    }
    for (i, v) in plane.iter_mut().enumerate() {
        *v = if hidden(i) { 1.0 } else { 0.0 };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn frame() -> ImageU8 {
        let data = (0..4 * 4 * 3).map(|i| (i * 5) as u8).collect();
        ImageU8::from_vec(4, 4, 3, data).unwrap()
    }

    #[test]
    fn absent_is_the_plain_normalised_frame() {
        let (f, norm) = (frame(), Normalisation::default());
        let mut out = vec![9.0; 3 * 16];
        let mut filled = HoleScratch::new();
        write_hole_input(&f, None, HoleInput::Absent, &norm, &mut filled, &mut out).unwrap();
        assert_eq!(out, f.to_chw(&norm));
    }

    #[test]
    fn zeroed_clears_hidden_pixels_and_sets_the_plane() {
        let (f, norm) = (frame(), Normalisation::default());
        let mask = Mask::from_fn(4, 4, |i| i == 5 || i == 6);
        let mut out = vec![9.0; 4 * 16];
        let mut filled = HoleScratch::new();
        write_hole_input(
            &f,
            Some(&mask),
            HoleInput::Zeroed,
            &norm,
            &mut filled,
            &mut out,
        )
        .unwrap();
        let plain = f.to_chw(&norm);
        for c in 0..3 {
            for i in 0..16 {
                let want = if i == 5 || i == 6 {
                    0.0
                } else {
                    plain[c * 16 + i]
                };
                assert_eq!(out[c * 16 + i], want, "c {c} i {i}");
            }
        }
        let plane: Vec<f32> = (0..16).map(|i| (i == 5 || i == 6) as u8 as f32).collect();
        assert_eq!(&out[48..], &plane[..]);
    }

    #[test]
    fn telea_fills_a_flat_frame_with_its_colour() {
        let f = ImageU8::from_vec(8, 8, 3, vec![200; 8 * 8 * 3]).unwrap();
        let norm = Normalisation::default();
        let mask = Mask::from_fn(8, 8, |i| {
            (i % 8) > 2 && (i % 8) < 5 && i / 8 > 2 && i / 8 < 6
        });
        let mut out = vec![0.0; 4 * 64];
        let mut filled = HoleScratch::new();
        write_hole_input(
            &f,
            Some(&mask),
            HoleInput::Telea,
            &norm,
            &mut filled,
            &mut out,
        )
        .unwrap();
        assert_eq!(filled.filled.data, f.data);
        assert_eq!(&out[..192], &f.to_chw(&norm)[..]);
        assert_eq!(
            out[192..].iter().filter(|&&v| v == 1.0).count(),
            mask.count()
        );
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let (f, norm) = (frame(), Normalisation::default());
        let mut filled = HoleScratch::new();
        let mut short = vec![0.0; 3 * 16];
        assert!(matches!(
            write_hole_input(&f, None, HoleInput::Zeroed, &norm, &mut filled, &mut short),
            Err(ImageError::BufferSize { .. })
        ));
        let mut out = vec![0.0; 4 * 16];
        let small = Mask::new(2, 2);
        assert!(write_hole_input(
            &f,
            Some(&small),
            HoleInput::Zeroed,
            &norm,
            &mut filled,
            &mut out
        )
        .is_err());
    }

    #[test]
    fn names_round_trip() {
        for h in [HoleInput::Absent, HoleInput::Zeroed, HoleInput::Telea] {
            assert_eq!(h.name().parse::<HoleInput>().unwrap(), h);
            assert_eq!(
                h.image_channels(),
                if h == HoleInput::Absent { 3 } else { 4 }
            );
        }
        assert!("blur".parse::<HoleInput>().is_err());
    }
}
