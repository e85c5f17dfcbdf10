//! Contact sheets: grids of equally sized tiles, for looking at data and results.

use unveil_shared::texture::NUM_PARTS;
use unveil_shared::{ImageU8, IuvMap, Mask};

/// Gap between tiles, in pixels.
pub const GAP: usize = 2;
/// Colour of the gaps and of missing tiles.
const BACKDROP: [u8; 3] = [32, 32, 32];

/// The IUV map as the usual false-colour picture: R = part index, G = U, B = V.
pub fn iuv_rgb(iuv: &IuvMap) -> ImageU8 {
    let mut out = ImageU8::new(iuv.width, iuv.height, 3);
    for i in 0..iuv.width * iuv.height {
        if iuv.part[i] == 0 {
            continue;
        }
        let px = out.pixel_mut(i);
        px[0] = (iuv.part[i] as usize * 255 / NUM_PARTS) as u8;
        px[1] = (iuv.u[i] >> 8) as u8;
        px[2] = (iuv.v[i] >> 8) as u8;
    }
    out
}

/// A mask as a white-on-black RGB tile.
pub fn mask_rgb(mask: &Mask) -> ImageU8 {
    let grey = mask.to_grey();
    let mut out = ImageU8::new(mask.width, mask.height, 3);
    for (i, g) in grey.into_iter().enumerate() {
        out.pixel_mut(i).fill(g);
    }
    out
}

/// Lay out `rows` of RGB tiles in a grid. Tiles may differ in size; each cell is as large
/// as the largest tile, and short rows are padded with the backdrop.
pub fn compose(rows: &[Vec<ImageU8>]) -> ImageU8 {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cell_w = rows.iter().flatten().map(|t| t.width).max().unwrap_or(1);
    let cell_h = rows.iter().flatten().map(|t| t.height).max().unwrap_or(1);
    let width = (cols.max(1)) * (cell_w + GAP) + GAP;
    let height = rows.len().max(1) * (cell_h + GAP) + GAP;
    let mut out = ImageU8::new(width, height, 3);
    for px in out.data.chunks_exact_mut(3) {
        px.copy_from_slice(&BACKDROP);
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let (x0, y0) = (GAP + c * (cell_w + GAP), GAP + r * (cell_h + GAP));
            for y in 0..tile.height {
                for x in 0..tile.width {
                    let src = tile.pixel(y * tile.width + x);
                    let dst = out.pixel_mut((y0 + y) * width + x0 + x);
                    if tile.channels == 1 {
                        dst.fill(src[0]);
                    } else {
                        dst.copy_from_slice(&src[..3]);
                    }
                }
            }
        }
    }
    out
}

/// Draw `text` (upper-cased; characters outside the bitmap font are skipped as spaces) into
/// an RGB image with its top-left corner at `(x, y)`, clipped at the borders. Returns the
/// x just past the last glyph, so labels can be chained.
pub fn draw_text(
    img: &mut ImageU8,
    x: usize,
    y: usize,
    text: &str,
    colour: [u8; 3],
    scale: usize,
) -> usize {
    use unveil_shared::font::{glyph, ink, ADVANCE, GLYPH_H, GLYPH_W};
    let scale = scale.max(1);
    let mut pen = x;
    for c in text.chars() {
        if let Some(bitmap) = glyph(c.to_ascii_uppercase()) {
            for gy in 0..GLYPH_H * scale {
                for gx in 0..GLYPH_W * scale {
                    let (px, py) = (pen + gx, y + gy);
                    if px < img.width && py < img.height && ink(bitmap, gx / scale, gy / scale) {
                        img.pixel_mut(py * img.width + px)[..3].copy_from_slice(&colour);
                    }
                }
            }
        }
        pen += ADVANCE * scale;
    }
    pen
}

/// A strip of column titles, one per `cell_w + GAP` cell, to put above a [`compose`]d sheet.
pub fn header(titles: &[&str], cell_w: usize) -> ImageU8 {
    let height = unveil_shared::font::GLYPH_H + 2 * GAP + 2;
    let width = titles.len().max(1) * (cell_w + GAP) + GAP;
    let mut out = ImageU8::new(width, height, 3);
    for px in out.data.chunks_exact_mut(3) {
        px.copy_from_slice(&BACKDROP);
    }
    for (i, title) in titles.iter().enumerate() {
        draw_text(
            &mut out,
            GAP + i * (cell_w + GAP) + 1,
            GAP + 1,
            title,
            [230, 230, 230],
            1,
        );
    }
    out
}

/// Stack RGB images vertically (left-aligned, backdrop where narrower).
pub fn stack(parts: &[ImageU8]) -> ImageU8 {
    let width = parts.iter().map(|p| p.width).max().unwrap_or(1);
    let height = parts.iter().map(|p| p.height).sum::<usize>().max(1);
    let mut out = ImageU8::new(width, height, 3);
    for px in out.data.chunks_exact_mut(3) {
        px.copy_from_slice(&BACKDROP);
    }
    let mut y0 = 0;
    for p in parts {
        for y in 0..p.height {
            for x in 0..p.width {
                let src = p.pixel(y * p.width + x);
                let dst = out.pixel_mut((y0 + y) * width + x);
                if p.channels == 1 {
                    dst.fill(src[0]);
                } else {
                    dst.copy_from_slice(&src[..3]);
                }
            }
        }
        y0 += p.height;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_places_tiles() {
        let a = ImageU8::from_vec(2, 1, 3, vec![10, 10, 10, 20, 20, 20]).unwrap();
        let b = ImageU8::from_vec(1, 1, 1, vec![99]).unwrap();
        let sheet = compose(&[vec![a, b]]);
        assert_eq!(
            (sheet.width, sheet.height),
            (2 * (2 + GAP) + GAP, 1 + 2 * GAP)
        );
        let at = |x: usize, y: usize| sheet.pixel(y * sheet.width + x).to_vec();
        assert_eq!(at(GAP, GAP), vec![10; 3]);
        assert_eq!(at(GAP + 1, GAP), vec![20; 3]);
        assert_eq!(at(2 * GAP + 2, GAP), vec![99; 3]);
        assert_eq!(at(0, 0), BACKDROP.to_vec());
        // The cell of the narrower tile is padded with backdrop.
        assert_eq!(at(2 * GAP + 3, GAP), BACKDROP.to_vec());
    }

    #[test]
    fn text_is_drawn_from_the_font() {
        let mut img = ImageU8::new(20, 9, 3);
        let end = draw_text(&mut img, 1, 1, "i", [255, 0, 0], 1);
        assert_eq!(end, 1 + unveil_shared::font::ADVANCE);
        let bitmap = unveil_shared::font::glyph('I').unwrap();
        for y in 0..unveil_shared::font::GLYPH_H {
            for x in 0..unveil_shared::font::GLYPH_W {
                let red = img.pixel((y + 1) * 20 + x + 1)[0] == 255;
                assert_eq!(red, unveil_shared::font::ink(bitmap, x, y), "({x},{y})");
            }
        }
        // Clipped at the border without panicking.
        draw_text(&mut img, 18, 7, "WIDE TEXT", [1, 2, 3], 3);
    }

    #[test]
    fn stack_and_header_sizes() {
        let a = ImageU8::new(4, 2, 3);
        let b = ImageU8::new(6, 3, 1);
        let s = stack(&[a, b]);
        assert_eq!((s.width, s.height), (6, 5));
        assert_eq!(s.pixel(5)[..], BACKDROP[..], "narrow row padded");
        let h = header(&["A", "B"], 10);
        assert_eq!(h.width, 2 * (10 + GAP) + GAP);
    }

    #[test]
    fn iuv_colours() {
        let mut iuv = IuvMap::new(2, 1);
        iuv.part[1] = 24;
        iuv.u[1] = 0xFF00;
        iuv.v[1] = 0x1234;
        let rgb = iuv_rgb(&iuv);
        assert_eq!(rgb.data, vec![0, 0, 0, 255, 255, 0x12]);
    }
}
