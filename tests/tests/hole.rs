//! The device pipeline on a hole-aware model folder (exported from seeded random weights):
//! it changes hidden pixels only, leaves a frame alone when nothing is hidden, and feeds
//! both graphs the shared crate's 4-plane input, allocating nothing around tract.

use std::sync::Arc;

use unveil_device::alloc_count::CountingAlloc;
use unveil_device::model::Model;
use unveil_device::pipeline::Pipeline;
use unveil_host::export::{self, ExportSpec, Precision};
use unveil_host::nets::blocks::seeded_init;
use unveil_host::nets::stage1::Stage1Config;
use unveil_host::nets::stage2::Stage2Config;
use unveil_host::train::cpu_device;
use unveil_shared::hole::HoleInput;
use unveil_shared::manifest::Condition;
use unveil_shared::{ImageU8, Mask};

const SIZE: usize = 64;

/// Counts the pipeline's own allocations per stage (one test in this binary, so nothing
/// else allocates while it measures).
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn model(hole: HoleInput, dir: &std::path::Path) -> Arc<Model> {
    let dev = cpu_device();
    let g1 = seeded_init(Stage1Config::tiny().with_hole_input(hole).init(&dev), 41);
    let g2 = seeded_init(
        Stage2Config::tiny()
            .with_condition(Condition::Texture)
            .with_hole(hole)
            .init(&dev),
        42,
    );
    let spec = ExportSpec {
        name: "hole".into(),
        height: SIZE,
        width: SIZE,
        condition: Condition::Texture,
        hole,
        training_config_sha256: [0; 32],
    };
    let m = export::export_folder(dir, &g1, &g2, &spec, Precision::Float32, || {}).expect("export");
    assert_eq!(m.hole, hole);
    Arc::new(Model::load(dir).expect("device loads the folder"))
}

fn frame(channels: usize) -> ImageU8 {
    let data = (0..SIZE * SIZE * channels)
        .map(|i| ((i * 37) ^ (i >> 7)) as u8)
        .collect();
    ImageU8::from_vec(SIZE, SIZE, channels, data).expect("frame")
}

#[test]
fn hole_aware_pipeline_changes_hidden_pixels_only() {
    for hole in [HoleInput::Telea, HoleInput::Zeroed] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = Pipeline::new(model(hole, dir.path())).expect("pipeline");
        let mask = Mask::from_fn(SIZE, SIZE, |i| {
            (20..30).contains(&(i % SIZE)) && i / SIZE > 8
        });
        for channels in [3, 4] {
            let f = frame(channels);
            p.restore(&f, Some(&mask)).expect("restore");
            // Steady state: the pre-fill (Telea included) and the paste allocate nothing.
            let report = p.restore(&f, Some(&mask)).expect("restore");
            assert_eq!(report.allocations[0], 0, "{hole:?}: preprocess allocated");
            assert_eq!(report.allocations[4], 0, "{hole:?}: composite allocated");
            let out = p.output();
            let mut changed = 0;
            for i in 0..SIZE * SIZE {
                let (got, want) = (
                    &out.data[3 * i..3 * i + 3],
                    &f.data[channels * i..channels * i + 3],
                );
                if mask.data[i] == 0 {
                    assert_eq!(got, want, "{hole:?}: visible pixel {i} changed");
                } else if got != want {
                    changed += 1;
                }
            }
            assert!(
                changed > mask.count() / 2,
                "{hole:?}: only {changed} hidden pixels restored"
            );
            assert!(p.texture().is_some_and(|t| t.len() == 6 * SIZE * SIZE));
            // No mask: nothing is hidden, so nothing changes.
            p.restore(&f, None).expect("restore");
            let rgb: Vec<u8> = f
                .data
                .chunks(channels)
                .flat_map(|px| px[..3].to_vec())
                .collect();
            assert_eq!(
                p.output().data,
                rgb,
                "{hole:?}: an unmasked frame was changed"
            );
        }
        let small = Mask::new(8, 8);
        assert!(
            p.restore(&frame(3), Some(&small)).is_err(),
            "mask of another size"
        );
    }
}
