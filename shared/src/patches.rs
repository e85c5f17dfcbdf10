//! Sliding windows over an image and, for the background-patch loss (L5), the nearest
//! background-only window of every window.
//!
//! L5 teaches the background decoder what lies *behind* the subject. Where a window of the
//! clean image contains no subject pixels it is its own target; where it does, the target
//! is the nearest window that contains none. The index depends only on the subject mask,
//! so it is computed once per sample, here, on integers. (The method's L5 and our reading
//! of it: `docs/method.md`, "The losses".)

use alloc::vec::Vec;

use crate::image::Mask;

/// Window geometry that cannot be laid over the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("window size {size} and stride {stride} must be at least 1")]
    Zero { size: usize, stride: usize },
    #[error("window size {size} exceeds the {width}x{height} image")]
    TooLarge {
        size: usize,
        width: usize,
        height: usize,
    },
}

/// Square windows of `size` pixels placed every `stride` pixels, row-major, the first at
/// (0, 0); windows that would cross the right or bottom edge are not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGrid {
    pub size: usize,
    pub stride: usize,
    pub cols: usize,
    pub rows: usize,
}

impl WindowGrid {
    pub fn new(
        width: usize,
        height: usize,
        size: usize,
        stride: usize,
    ) -> Result<Self, PatchError> {
        if size == 0 || stride == 0 {
            return Err(PatchError::Zero { size, stride });
        }
        if size > width || size > height {
            return Err(PatchError::TooLarge {
                size,
                width,
                height,
            });
        }
        Ok(Self {
            size,
            stride,
            cols: (width - size) / stride + 1,
            rows: (height - size) / stride + 1,
        })
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.cols * self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Top-left pixel `(x, y)` of window `index`.
    pub fn origin(&self, index: usize) -> (usize, usize) {
        (
            (index % self.cols) * self.stride,
            (index / self.cols) * self.stride,
        )
    }
}

/// For every window of `grid` over `mask`: `Some(index)` of the window L5 compares it
/// with — itself if it holds no subject pixel, else the nearest background-only window
/// (Euclidean distance between window origins; ties go to the lowest index) — or `None`
/// when the whole image has no background-only window.
///
/// Subject pixels are counted with a summed-area table, so the cost is
/// `O(W·H + n_subject · n_background)` window comparisons.
pub fn nearest_background_windows(mask: &Mask, grid: &WindowGrid) -> Vec<Option<u32>> {
    let (w, h) = (mask.width, mask.height);
    // sat[(y)*(w+1) + x] = subject pixels in [0, x) × [0, y).
    let mut sat = alloc::vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(mask.data[y * w + x] != 0);
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let count = |x0: usize, y0: usize, s: usize| {
        let (x1, y1) = ((x0 + s).min(w), (y0 + s).min(h));
        sat[y1 * (w + 1) + x1] + sat[y0 * (w + 1) + x0]
            - sat[y0 * (w + 1) + x1]
            - sat[y1 * (w + 1) + x0]
    };
    let clear: Vec<bool> = (0..grid.len())
        .map(|i| {
            let (x, y) = grid.origin(i);
            count(x, y, grid.size) == 0
        })
        .collect();
    let background: Vec<usize> = (0..grid.len()).filter(|&i| clear[i]).collect();
    (0..grid.len())
        .map(|i| {
            if clear[i] {
                return Some(i as u32);
            }
            let (r, c) = ((i / grid.cols) as i64, (i % grid.cols) as i64);
            background
                .iter()
                .min_by_key(|&&j| {
                    let (dr, dc) = ((j / grid.cols) as i64 - r, (j % grid.cols) as i64 - c);
                    (dr * dr + dc * dc, j)
                })
                .map(|&j| j as u32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse a drawn mask: `#` subject, `.` background.
    fn drawn(rows: &[&str]) -> Mask {
        let h = rows.len();
        let w = rows[0].len();
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
            .collect();
        Mask {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn grid_geometry() {
        let g = WindowGrid::new(8, 6, 4, 2).unwrap();
        assert_eq!((g.cols, g.rows, g.len()), (3, 2, 6));
        assert_eq!(g.origin(4), (2, 2));
        assert_eq!(
            WindowGrid::new(8, 6, 7, 1),
            Err(PatchError::TooLarge {
                size: 7,
                width: 8,
                height: 6
            })
        );
        assert!(WindowGrid::new(8, 8, 0, 1).is_err());
        assert!(WindowGrid::new(8, 8, 2, 0).is_err());
    }

    /// A hand-drawn 8x8 mask with a subject in the middle-left, windows 2x2 stride 2 (a 4x4
    /// grid). Window indices:
    /// ```text
    ///  0  1  2  3
    ///  4  5  6  7
    ///  8  9 10 11
    /// 12 13 14 15
    /// ```
    #[test]
    fn nearest_background_window_on_a_drawn_mask() {
        let mask = drawn(&[
            "........", //
            "........", //
            "..##....", // subject in window 5 (cols 2,3 of rows 2,3)
            ".###....", // and window 4 (col 1 of row 3)
            "##......", // window 8
            "........", //
            "........", //
            "........", //
        ]);
        let g = WindowGrid::new(8, 8, 2, 2).unwrap();
        let nearest = nearest_background_windows(&mask, &g);
        let mut expected: Vec<Option<u32>> = (0..16).map(Some).collect();
        // Window 4 (row 1, col 0): of its distance-1 neighbours 0, 5 and 8 only 0 is clear.
        expected[4] = Some(0);
        // Window 5 (row 1, col 1): distance-1 candidates 1, 6 and 9 are clear (4 is
        // subject) → the lowest index, 1.
        expected[5] = Some(1);
        // Window 8 (row 2, col 0): distance-1 candidates 12 and 9 (4 is subject) → 9.
        expected[8] = Some(9);
        assert_eq!(nearest, expected);
    }

    #[test]
    fn counts_pixels_at_window_edges_and_handles_all_subject() {
        // One subject pixel at the bottom-right corner of window 0 (2x2 windows, stride 1).
        let mask = drawn(&["...", ".#.", "..."]);
        let g = WindowGrid::new(3, 3, 2, 1).unwrap();
        // Every 2x2 window of a 3x3 image contains the centre pixel.
        assert_eq!(nearest_background_windows(&mask, &g), vec![None; 4]);
        let g = WindowGrid::new(3, 3, 1, 1).unwrap();
        let n = nearest_background_windows(&mask, &g);
        assert_eq!(n[4], Some(1), "centre → nearest of 1, 3, 5, 7 is 1");
        assert_eq!(n[0], Some(0));
    }
}
