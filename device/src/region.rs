//! Frames at native resolution: restore only the hidden regions, keep every visible pixel.
//!
//! A camera frame (640×480, 1280×720, …) is not the model's square. Squashing the whole
//! frame into it loses the aspect ratio and shrinks a hidden hand to a few pixels, so each
//! hidden region is restored in its own square *context window* instead:
//!
//! 1. the mask's 8-connected components, as bounding boxes, merged while one lies within
//!    the other's margin ([`hidden_regions`]);
//! 2. per region, a square window around it with a margin of half the region's side on
//!    every side (so the hole covers about a quarter of it, as in training), at least the
//!    model's side, clamped to the frame ([`context_window`]);
//! 3. the window resized to the model's input (the mask with the covering resize, so no
//!    hidden pixel is lost), restored by the [`Pipeline`], resized back;
//! 4. pasted into the region's hidden pixels only.
//!
//! Visible pixels are the input's, bit for bit. A region too large for a square window,
//! or a mask of more than [`MAX_REGIONS`] regions, falls back to one downscaled pass over
//! the whole frame, still pasted into the mask only. There is no feather across the mask
//! edge: blending there would mix the occluder's own pixels into the result, and the
//! hole-aware model already reads the visible ring around the hole.
//!
//! Buffers grow to the largest frame seen and are reused, so a steady camera stream
//! allocates nothing here.

use unveil_shared::image::crop_with_mask;
use unveil_shared::{ImageError, ImageU8, Mask};

use crate::pipeline::{FrameReport, Pipeline, PipelineError};

/// More regions than this in one mask (speckle, a noisy matte) are restored in one
/// whole-frame pass instead of window by window.
pub const MAX_REGIONS: usize = 16;

/// A rectangle of pixels: columns `x..x + w`, rows `y..y + h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Rect {
    fn right(&self) -> usize {
        self.x + self.w
    }

    fn bottom(&self) -> usize {
        self.y + self.h
    }

    /// The longer side.
    pub fn side(&self) -> usize {
        self.w.max(self.h)
    }

    /// The smallest rectangle holding both.
    fn union(&self, other: &Rect) -> Rect {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        let (r, b) = (
            self.right().max(other.right()),
            self.bottom().max(other.bottom()),
        );
        Rect {
            x,
            y,
            w: r - x,
            h: b - y,
        }
    }

    /// Pixels between the two along the axis where they are farthest apart (0 when
    /// they touch or overlap).
    fn gap(&self, other: &Rect) -> usize {
        let gx = other
            .x
            .saturating_sub(self.right())
            .max(self.x.saturating_sub(other.right()));
        let gy = other
            .y
            .saturating_sub(self.bottom())
            .max(self.y.saturating_sub(other.bottom()));
        gx.max(gy)
    }
}

/// Scratch of [`hidden_regions`], reused across frames.
#[derive(Debug, Default)]
pub struct RegionScratch {
    seen: Vec<bool>,
    stack: Vec<usize>,
}

/// The bounding boxes of `mask`'s 8-connected components into `out`, then merged while
/// two lie within half the larger one's side of each other (one inside the other's
/// context margin, so one window serves both). Empty for an empty mask.
pub fn hidden_regions(mask: &Mask, scratch: &mut RegionScratch, out: &mut Vec<Rect>) {
    out.clear();
    let (w, h) = (mask.width, mask.height);
    let n = (w * h).min(mask.data.len());
    scratch.seen.clear();
    scratch.seen.resize(n, false);
    for start in 0..n {
        if mask.data[start] == 0 || scratch.seen[start] {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        scratch.seen[start] = true;
        scratch.stack.clear();
        scratch.stack.push(start);
        while let Some(i) = scratch.stack.pop() {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask.data[j] != 0 && !scratch.seen[j] {
                        scratch.seen[j] = true;
                        scratch.stack.push(j);
                    }
                }
            }
        }
        out.push(Rect {
            x: x0,
            y: y0,
            w: x1 - x0 + 1,
            h: y1 - y0 + 1,
        });
    }
    // Merge until no two are close; each merge removes one box, so this ends.
    'again: loop {
        for i in 0..out.len() {
            for j in i + 1..out.len() {
                if out[i].gap(&out[j]) * 2 <= out[i].side().max(out[j].side()) {
                    out[i] = out[i].union(&out[j]);
                    out.swap_remove(j);
                    continue 'again;
                }
            }
        }
        break;
    }
}

/// The square context window of `region` in a `width`×`height` frame for a model of side
/// `model_side`: side twice the region's (at least `model_side`, at most the frame's
/// shorter side), centred on the region and shifted to lie inside the frame. `None` when
/// the region does not fit in any square window of the frame.
pub fn context_window(
    region: Rect,
    width: usize,
    height: usize,
    model_side: usize,
) -> Option<Rect> {
    let limit = width.min(height);
    let side = (2 * region.side()).max(model_side).min(limit);
    if region.w > side || region.h > side || side == 0 {
        return None;
    }
    let place = |start: usize, len: usize, total: usize| {
        let centre = start + len / 2;
        centre.saturating_sub(side / 2).min(total - side)
    };
    Some(Rect {
        x: place(region.x, region.w, width),
        y: place(region.y, region.h, height),
        w: side,
        h: side,
    })
}

/// Restores frames of any size through a [`Pipeline`], region by region (see the module
/// docs). Holds the reusable buffers; one per camera stream.
#[derive(Debug, Default)]
pub struct RegionRestorer {
    scratch: RegionScratch,
    regions: Vec<Rect>,
    /// `(window, region)` of each region this frame, when every region has a window.
    windows: Vec<(Rect, Rect)>,
    /// The window (or the whole frame) cut from the input, and its mask.
    crop: ImageU8,
    crop_mask: Mask,
    /// The same at the model's size.
    small: ImageU8,
    small_mask: Mask,
    /// The pipeline's output resized back to the window.
    back: ImageU8,
    output: ImageU8,
    /// Windows restored in the last frame (0 for an empty mask; 1 for the whole-frame
    /// fallback).
    passes: usize,
    /// The pipeline's reports of the last frame's passes, summed.
    report: FrameReport,
}

impl RegionRestorer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Model runs the last frame took (see the module docs).
    pub fn passes(&self) -> usize {
        self.passes
    }

    /// The pipeline's per-stage times and allocations over the last frame's passes.
    pub fn report(&self) -> &FrameReport {
        &self.report
    }

    /// Restore the hidden pixels of `frame` (RGB, any size) where `mask` (the frame's
    /// size) is set. Every other pixel of the result is the frame's own.
    pub fn restore(
        &mut self,
        pipeline: &mut Pipeline,
        frame: &ImageU8,
        mask: &Mask,
    ) -> Result<&ImageU8, PipelineError> {
        let (w, h) = (frame.width, frame.height);
        if frame.channels != 3 {
            return Err(ImageError::Channels(frame.channels).into());
        }
        if frame.data.len() != w * h * 3 {
            return Err(ImageError::BufferSize {
                expected: w * h * 3,
                actual: frame.data.len(),
            }
            .into());
        }
        if mask.width != w || mask.height != h || mask.data.len() != w * h {
            return Err(PipelineError::MaskSize {
                width: w,
                height: h,
                actual_w: mask.width,
                actual_h: mask.height,
            });
        }
        // Field by field: a derived `clone_from` would allocate a fresh buffer.
        (self.output.width, self.output.height, self.output.channels) = (w, h, 3);
        self.output.data.clear();
        self.output.data.extend_from_slice(&frame.data);
        self.passes = 0;
        self.report = FrameReport::default();
        hidden_regions(mask, &mut self.scratch, &mut self.regions);
        if self.regions.is_empty() {
            return Ok(&self.output);
        }
        let (mw, mh) = pipeline.model().size();
        self.windows.clear();
        if self.regions.len() <= MAX_REGIONS {
            for region in &self.regions {
                match context_window(*region, w, h, mw.max(mh)) {
                    Some(window) => self.windows.push((window, *region)),
                    None => break,
                }
            }
        }
        if self.windows.len() < self.regions.len() {
            let whole = Rect { x: 0, y: 0, w, h };
            return self.pass(pipeline, frame, mask, whole, whole, (mw, mh));
        }
        for k in 0..self.windows.len() {
            let (window, region) = self.windows[k];
            self.pass(pipeline, frame, mask, window, region, (mw, mh))?;
        }
        Ok(&self.output)
    }

    /// Restore `window` of `frame` at the model's size `(mw, mh)` and paste the result
    /// into the hidden pixels of `paste` (inside `window`).
    fn pass(
        &mut self,
        pipeline: &mut Pipeline,
        frame: &ImageU8,
        mask: &Mask,
        window: Rect,
        paste: Rect,
        (mw, mh): (usize, usize),
    ) -> Result<&ImageU8, PipelineError> {
        let (at, size) = ((window.x, window.y), (window.w, window.h));
        let crops = (&mut self.crop, &mut self.crop_mask);
        crop_with_mask((frame, mask), at, size, crops)?;
        (self.small.width, self.small.height) = (mw, mh);
        self.crop.resize_bilinear_into(&mut self.small)?;
        (self.small_mask.width, self.small_mask.height) = (mw, mh);
        self.crop_mask.resize_covering_into(&mut self.small_mask)?;
        let report = pipeline.restore(&self.small, Some(&self.small_mask))?;
        for stage in 0..report.micros.len() {
            self.report.micros[stage] += report.micros[stage];
            self.report.allocations[stage] += report.allocations[stage];
        }
        (self.back.width, self.back.height) = (window.w, window.h);
        pipeline.output().resize_bilinear_into(&mut self.back)?;
        let fw = frame.width;
        for y in paste.y..paste.bottom() {
            for x in paste.x..paste.right() {
                if mask.data[y * fw + x] == 0 {
                    continue;
                }
                let src = ((y - window.y) * window.w + (x - window.x)) * 3;
                let dst = (y * fw + x) * 3;
                self.output.data[dst..dst + 3].copy_from_slice(&self.back.data[src..src + 3]);
            }
        }
        self.passes += 1;
        Ok(&self.output)
    }

    /// The last restored frame.
    pub fn output(&self) -> &ImageU8 {
        &self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_with(w: usize, h: usize, rects: &[Rect]) -> Mask {
        Mask::from_fn(w, h, |i| {
            let (x, y) = (i % w, i / w);
            rects
                .iter()
                .any(|r| (r.x..r.right()).contains(&x) && (r.y..r.bottom()).contains(&y))
        })
    }

    fn rect(x: usize, y: usize, w: usize, h: usize) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn components_are_found_and_close_ones_merged() {
        let mut out = Vec::new();
        let mut scratch = RegionScratch::default();
        // Two 10x10 squares 40 px apart: far (gap 40 > 10 / 2), two regions.
        let far = mask_with(100, 60, &[rect(5, 5, 10, 10), rect(55, 5, 10, 10)]);
        hidden_regions(&far, &mut scratch, &mut out);
        out.sort_by_key(|r| r.x);
        assert_eq!(out, vec![rect(5, 5, 10, 10), rect(55, 5, 10, 10)]);
        // 4 px apart (within half a side): one region covering both.
        let near = mask_with(100, 60, &[rect(5, 5, 10, 10), rect(19, 8, 10, 10)]);
        hidden_regions(&near, &mut scratch, &mut out);
        assert_eq!(out, vec![rect(5, 5, 24, 13)]);
        // Diagonal neighbours are one component (8-connectivity).
        let mut diag = Mask::new(10, 10);
        diag.set(2, 2, true);
        diag.set(3, 3, true);
        diag.set(4, 4, true);
        hidden_regions(&diag, &mut scratch, &mut out);
        assert_eq!(out, vec![rect(2, 2, 3, 3)]);
        hidden_regions(&Mask::new(10, 10), &mut scratch, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn windows_are_square_twice_the_region_and_inside_the_frame() {
        // A 40x20 region in the middle of 640x480: side 80, but at least the model's 128.
        assert_eq!(
            context_window(rect(300, 230, 40, 20), 640, 480, 128),
            Some(rect(256, 176, 128, 128))
        );
        // A 100x60 region: side 200, centred on (350, 260).
        assert_eq!(
            context_window(rect(300, 230, 100, 60), 640, 480, 128),
            Some(rect(250, 160, 200, 200))
        );
        // In a corner: shifted to stay inside.
        assert_eq!(
            context_window(rect(0, 470, 30, 10), 640, 480, 128),
            Some(rect(0, 352, 128, 128))
        );
        // Capped at the shorter side; a region taller than that has no square window.
        assert_eq!(
            context_window(rect(10, 0, 300, 200), 640, 480, 128),
            Some(rect(0, 0, 480, 480))
        );
        assert_eq!(
            context_window(rect(0, 0, 100, 481), 640, 481, 128),
            Some(rect(0, 0, 481, 481))
        );
        assert_eq!(context_window(rect(0, 0, 500, 100), 640, 480, 128), None);
    }
}
