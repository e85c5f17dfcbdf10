//! Blind restoration with the shipped models (`models/default-f32` and its occlusion
//! detector), as the device runs it: on intact images, held-out synthetic ones and a
//! real non-square photo, it changes at most 1 % of any image's pixels, and 0.5 % or
//! less on average.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use unveil_device::model::Model;
use unveil_device::pipeline::Pipeline;
use unveil_device::region::RegionRestorer;
use unveil_device::source;
use unveil_host::data::synth::{render_sample, SynthConfig};
use unveil_host::data::HELD_OUT_SEED;
use unveil_shared::ImageU8;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Share of the pixels of `a` that differ in `b`.
fn changed_share(a: &ImageU8, b: &ImageU8) -> f64 {
    let n = a.pixel_count();
    let changed = (0..n).filter(|&i| a.pixel(i) != b.pixel(i)).count();
    changed as f64 / n as f64
}

fn shipped() -> Pipeline {
    let model = Model::load(&root().join("models/default-f32")).expect("shipped model");
    assert!(
        model.detector.is_some(),
        "models/default-f32 ships no detector"
    );
    Pipeline::new(Arc::new(model)).expect("pipeline")
}

#[test]
fn blind_restoration_leaves_intact_images_nearly_alone() {
    let mut pipeline = shipped();
    let mut regions = RegionRestorer::new();
    let mut images: Vec<(String, ImageU8)> = Vec::new();
    let cfg = SynthConfig::new(128).expect("config");
    for index in 0..8 {
        let sample = render_sample(&cfg, HELD_OUT_SEED, index).expect("render");
        images.push((format!("synthetic {index}"), sample.image));
    }
    let photo = root().join("tests/photos/chelsea.png");
    let img = source::load_rgb(&photo, 4).expect("photo");
    assert_ne!(img.width, img.height, "a non-square photo");
    images.push(("chelsea.png (385x256)".into(), img));
    let (mut worst, mut total, mut over) = (0.0f64, 0.0f64, 0);
    for (name, img) in &images {
        let out = source::restore_image(&mut pipeline, &mut regions, img, None, Path::new(name))
            .expect("restore");
        assert_eq!((out.width, out.height), (img.width, img.height));
        let share = changed_share(img, &out);
        eprintln!("{name}: {:.3} % of the pixels changed", 100.0 * share);
        worst = worst.max(share);
        total += share;
        over += usize::from(share > 0.01);
    }
    let mean = total / images.len() as f64;
    assert!(
        mean <= 0.005,
        "intact images: {:.2} % rewritten on average",
        100.0 * mean
    );
    assert!(
        over == 0 && worst <= 0.01,
        "{over} intact images had more than 1 % rewritten (worst {:.2} %)",
        100.0 * worst
    );
}
