//! Frames at native resolution through the region restorer, on fixture models: visible
//! pixels bit-identical, hidden ones the window pass's, the whole-frame fallback, and bad
//! input refused.

use std::sync::Arc;

use unveil_device::bench::test_frame;
use unveil_device::fixture::Fixture;
use unveil_device::model::Model;
use unveil_device::pipeline::{Pipeline, PipelineError};
use unveil_device::region::{context_window, Rect, RegionRestorer};
use unveil_shared::{ImageError, ImageU8, Mask};

fn pipeline() -> (tempfile::TempDir, Pipeline) {
    let dir = tempfile::tempdir().unwrap();
    Fixture::tiny().write(dir.path()).unwrap();
    let model = Arc::new(Model::load(dir.path()).unwrap());
    (dir, Pipeline::new(model).unwrap())
}

fn holes(w: usize, h: usize, rects: &[Rect]) -> Mask {
    Mask::from_fn(w, h, |i| {
        let (x, y) = (i % w, i / w);
        rects
            .iter()
            .any(|r| (r.x..r.x + r.w).contains(&x) && (r.y..r.y + r.h).contains(&y))
    })
}

/// Pixels where `a` and `b` differ, and whether every one of them is in `mask`.
fn changed(a: &ImageU8, b: &ImageU8, mask: &Mask) -> (usize, bool) {
    let mut n = 0;
    let mut inside = true;
    for i in 0..mask.data.len() {
        if a.data[i * 3..i * 3 + 3] != b.data[i * 3..i * 3 + 3] {
            n += 1;
            inside &= mask.data[i] != 0;
        }
    }
    (n, inside)
}

#[test]
fn visible_pixels_are_bit_identical_and_each_region_gets_its_own_window() {
    let (_dir, mut p) = pipeline();
    let (w, h) = (200, 120);
    let frame = test_frame(w, h, 3);
    let (a, b) = (
        Rect {
            x: 20,
            y: 30,
            w: 12,
            h: 9,
        },
        Rect {
            x: 150,
            y: 80,
            w: 10,
            h: 14,
        },
    );
    let mask = holes(w, h, &[a, b]);
    let mut r = RegionRestorer::new();
    let out = r.restore(&mut p, &frame, &mask).unwrap().clone();
    assert_eq!((out.width, out.height, out.channels), (w, h, 3));
    assert_eq!(r.passes(), 2);
    let (n, inside) = changed(&frame, &out, &mask);
    assert!(inside, "a visible pixel changed");
    assert!(
        n > mask.count() / 2,
        "only {n} of {} hidden pixels changed",
        mask.count()
    );

    // Region a's pixels are exactly its window's pass: crop, resize to the model, restore,
    // resize back (the fixture model is 32x32, so the window is 2 × 12 = 24 px, grown
    // to the model's 32).
    let win = context_window(a, w, h, 32).unwrap();
    assert_eq!(
        win,
        Rect {
            x: 10,
            y: 18,
            w: 32,
            h: 32
        }
    );
    let (mut crop, mut crop_mask) = (ImageU8::default(), Mask::default());
    let (at, size) = ((win.x, win.y), (win.w, win.h));
    unveil_shared::image::crop_with_mask((&frame, &mask), at, size, (&mut crop, &mut crop_mask))
        .unwrap();
    p.restore(&crop, Some(&crop_mask)).unwrap();
    for y in a.y..a.y + a.h {
        for x in a.x..a.x + a.w {
            let (i, j) = ((y * w + x) * 3, ((y - win.y) * 32 + (x - win.x)) * 3);
            assert_eq!(out.data[i..i + 3], p.output().data[j..j + 3], "({x}, {y})");
        }
    }

    // The same frame again: the same result (no state carried between frames).
    assert_eq!(r.restore(&mut p, &frame, &mask).unwrap(), &out);
}

#[test]
fn an_empty_mask_returns_the_frame_unchanged_without_running_the_model() {
    let (_dir, mut p) = pipeline();
    let frame = test_frame(160, 90, 1);
    let mut r = RegionRestorer::new();
    assert_eq!(
        r.restore(&mut p, &frame, &Mask::new(160, 90)).unwrap(),
        &frame
    );
    assert_eq!(r.passes(), 0);
}

#[test]
fn a_region_wider_than_the_frame_is_tall_falls_back_to_one_whole_frame_pass() {
    let (_dir, mut p) = pipeline();
    let (w, h) = (120, 40);
    let frame = test_frame(w, h, 2);
    // 70 px wide > the 40 px of a square window's largest side.
    let mask = holes(
        w,
        h,
        &[Rect {
            x: 20,
            y: 10,
            w: 70,
            h: 8,
        }],
    );
    let mut r = RegionRestorer::new();
    let out = r.restore(&mut p, &frame, &mask).unwrap().clone();
    assert_eq!(r.passes(), 1);
    let (n, inside) = changed(&frame, &out, &mask);
    assert!(inside && n > 0, "{n} changed, all inside: {inside}");
}

#[test]
fn bad_frames_and_masks_are_refused() {
    let (_dir, mut p) = pipeline();
    let mut r = RegionRestorer::new();
    let frame = test_frame(64, 48, 0);
    assert!(matches!(
        r.restore(&mut p, &frame, &Mask::new(48, 64)),
        Err(PipelineError::MaskSize { .. })
    ));
    let grey = ImageU8::new(64, 48, 1);
    assert!(matches!(
        r.restore(&mut p, &grey, &Mask::new(64, 48)),
        Err(PipelineError::Frame(ImageError::Channels(1)))
    ));
    let mut short = frame.clone();
    short.data.truncate(10);
    assert!(matches!(
        r.restore(&mut p, &short, &Mask::new(64, 48)),
        Err(PipelineError::Frame(ImageError::BufferSize { .. }))
    ));
}

/// Blind mode on a fixture detector that flags pure red: a non-square frame's red patch
/// is found and restored, every other pixel comes back bit for bit, and a frame with no
/// red comes back unchanged.
#[test]
fn blind_mode_restores_what_the_detector_finds_and_nothing_else() {
    use unveil_device::serve::{BlindPipeline, Restorer};
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::tiny();
    fixture.write(dir.path()).unwrap();
    fixture.add_detector(dir.path(), 0.9).unwrap();
    let model = Arc::new(Model::load(dir.path()).unwrap());
    assert!(model.detector.is_some());
    let mut p = Pipeline::new(model).unwrap();
    assert!(p.can_detect());
    let (w, h) = (96, 64);
    // Grey-blue frame (red channel ≤ 200), a 16x16 pure-red patch at (40, 24).
    let mut frame = ImageU8::new(w, h, 3);
    for (i, px) in frame.data.chunks_mut(3).enumerate() {
        px.copy_from_slice(&[(i % 200) as u8, 90, 160]);
    }
    let patch = Rect {
        x: 40,
        y: 24,
        w: 16,
        h: 16,
    };
    let intact = frame.clone();
    for y in patch.y..patch.y + patch.h {
        for x in patch.x..patch.x + patch.w {
            frame.data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[255, 0, 0]);
        }
    }
    let mut found = Mask::default();
    p.detect(&frame, &mut found).unwrap();
    assert_eq!((found.width, found.height), (w, h));
    // The patch, found at the 32x32 model size and scaled back in 3x2 blocks: all of it,
    // and nothing more than a block beyond it.
    let grown = Rect {
        x: patch.x - 3,
        y: patch.y - 2,
        w: patch.w + 6,
        h: patch.h + 4,
    };
    let (patch_mask, grown_mask) = (holes(w, h, &[patch]), holes(w, h, &[grown]));
    for i in 0..w * h {
        assert!(
            patch_mask.data[i] <= found.data[i],
            "patch pixel {i} missed"
        );
        assert!(
            found.data[i] <= grown_mask.data[i],
            "pixel {i} flagged off the patch"
        );
    }
    let mut blind = BlindPipeline::new(p);
    let out = blind.restore(&frame).unwrap().clone();
    let (n, inside) = changed(&frame, &out, &found);
    assert!(n > 0 && inside, "{n} pixels changed, all hidden: {inside}");
    // Nothing red: the detector finds nothing and the frame comes back as it came.
    assert_eq!(blind.restore(&intact).unwrap(), &intact);
}
