//! A tiny 5x7 bitmap font (A-Z, 0-9, a little punctuation).
//!
//! Our own, so that text occluders need no font files or system fonts and render
//! identically on host and device; the exact bitmap also lets tests check that a text
//! occluder's mask is precisely the glyph pixels drawn.

/// Glyph width in pixels at scale 1.
pub const GLYPH_W: usize = 5;
/// Glyph height in pixels at scale 1.
pub const GLYPH_H: usize = 7;
/// Horizontal advance at scale 1: one blank column between glyphs.
pub const ADVANCE: usize = GLYPH_W + 1;

/// Every character with a glyph, in table order (space draws nothing).
pub const CHARSET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!? ";

/// One row per byte, top to bottom; bit 4 is the leftmost column.
type Bitmap = [u8; GLYPH_H];

#[rustfmt::skip]
const GLYPHS: [Bitmap; 41] = [
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // X
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // Z
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // 2
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // 9
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // -
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // .
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // !
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // ?
    [0; GLYPH_H], // space
];

/// The bitmap of `c` (ASCII letters in either case), or `None` if the font lacks it.
pub fn glyph(c: char) -> Option<&'static [u8; GLYPH_H]> {
    let c = c.to_ascii_uppercase();
    CHARSET
        .chars()
        .position(|g| g == c)
        .and_then(|i| GLYPHS.get(i))
}

/// Whether column `x`, row `y` of a glyph is ink (out-of-range coordinates are not).
#[inline]
pub fn ink(bitmap: &[u8; GLYPH_H], x: usize, y: usize) -> bool {
    x < GLYPH_W && y < GLYPH_H && (bitmap[y] >> (GLYPH_W - 1 - x)) & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_charset() {
        assert_eq!(CHARSET.chars().count(), GLYPHS.len());
        for c in CHARSET.chars() {
            let g = glyph(c).unwrap();
            assert!(g.iter().all(|&row| row < 1 << GLYPH_W), "{c}");
            // Every glyph but space has ink, and no two glyphs are the same.
            assert_eq!(c == ' ', g.iter().all(|&r| r == 0), "{c}");
            for d in CHARSET.chars().filter(|&d| d != c) {
                assert_ne!(g, glyph(d).unwrap(), "{c} vs {d}");
            }
        }
        assert_eq!(glyph('a'), glyph('A'));
        assert!(glyph('~').is_none());
    }

    #[test]
    fn ink_reads_bits_left_to_right() {
        let l = glyph('L').unwrap();
        assert!(ink(l, 0, 0) && !ink(l, 1, 0) && ink(l, 4, 6));
        assert!(!ink(l, 5, 6) && !ink(l, 0, 7));
    }
}
