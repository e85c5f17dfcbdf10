//! Overlaid text.

use super::*;

// Text.

/// Strings tried before giving up (text has no fallback that keeps the mask glyph-exact).
pub(crate) const MAX_STRINGS: usize = 256;
pub(crate) const MAX_TEXT_LEN: usize = 12;

/// Random strings of glyphs, added glyph by glyph; a glyph that would overshoot the maximum
/// ends its string and lowers the scale of later ones (at scale 1, only `.` and `-`).
pub(crate) fn text(canvas: &mut Canvas, centres: &Centres, coverage: (f32, f32), rng: &mut Rng) {
    let c = counts(coverage, canvas.w * canvas.h, rng);
    let charset = font::CHARSET.as_bytes();
    let mut max_scale = (canvas.w.min(canvas.h) / 24).clamp(1, 4);
    let mut tiny = false;
    for _ in 0..MAX_STRINGS {
        if canvas.hidden >= c.target {
            break;
        }
        let s = 1 + below(rng, max_scale);
        let len = 1 + below(rng, MAX_TEXT_LEN);
        let paint = Paint::Flat(rgb(rng));
        let (cx, cy) = centres.pick(rng);
        let advance = (font::ADVANCE * s) as f32;
        let x0 = libm::floorf(cx - advance * len as f32 / 2.0) as isize;
        let y0 = libm::floorf(cy - (font::GLYPH_H * s) as f32 / 2.0) as isize;
        for k in 0..len {
            let ch = if tiny {
                b".-"[below(rng, 2)]
            } else {
                charset[below(rng, charset.len())]
            };
            let Some(bitmap) = font::glyph(ch as char) else {
                continue;
            };
            canvas.glyph(bitmap, x0 + (k * font::ADVANCE * s) as isize, y0, s);
            if canvas.fits(c.max) {
                canvas.accept(&paint, rng);
            } else {
                canvas.reject();
                if s > 1 {
                    max_scale = s - 1;
                } else {
                    tiny = true;
                }
                break;
            }
            if canvas.hidden >= c.target {
                break;
            }
        }
    }
}
