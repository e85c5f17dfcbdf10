//! The pipeline against fixture model folders: values checked against running the two
//! plans by hand, mask semantics, every condition kind, and refusal of bad folders.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use unveil_device::bench::test_frame;
use unveil_device::fixture::Fixture;
use unveil_device::model::{Model, ModelError};
use unveil_device::pipeline::{floats, Pipeline, PipelineError};
use unveil_shared::manifest::{Condition, ManifestError, MANIFEST_BIN};
use unveil_shared::texture::silhouette_plane;
use unveil_shared::{ImageError, ImageU8, Mask, Normalisation};

fn folder(fixture: Fixture) -> (tempfile::TempDir, Arc<Model>) {
    let dir = tempfile::tempdir().unwrap();
    fixture.write(dir.path()).unwrap();
    let model = Arc::new(Model::load(dir.path()).unwrap());
    (dir, model)
}

/// The pipeline's result computed independently: plain `plan.run`, shared conversions.
fn reference(model: &Model, frame: &ImageU8) -> ImageU8 {
    let (w, h) = model.size();
    let norm = Normalisation::default();
    let x = Tensor::from_shape(&[1, 3, h, w], &frame.to_chw(&norm)).unwrap();
    let tex = model.stage1.run(tvec![x.clone().into()]).unwrap().remove(0);
    let cond: Option<TValue> = match model.manifest.condition {
        Condition::Texture => Some(tex),
        Condition::Silhouette => {
            let mut plane = vec![0.0; w * h];
            silhouette_plane(floats(&tex).unwrap(), &mut plane);
            Some(Tensor::from_shape(&[1, 1, h, w], &plane).unwrap().into())
        }
        Condition::None => None,
        Condition::Truth => unreachable!("no manifest carries the oracle condition"),
    };
    let inputs = match (cond, model.stage2_condition_input) {
        (Some(c), Some(0)) => tvec![c, x.into()],
        (Some(c), _) => tvec![x.into(), c],
        (None, _) => tvec![x.into()],
    };
    let out = model.stage2.run(inputs).unwrap();
    ImageU8::from_chw(w, h, floats(&out[0]).unwrap(), &norm).unwrap()
}

#[test]
fn every_condition_matches_the_plans_run_by_hand() {
    for condition in [Condition::Texture, Condition::Silhouette, Condition::None] {
        let (_dir, model) = folder(Fixture {
            condition,
            ..Fixture::tiny()
        });
        let mut pipeline = Pipeline::new(model.clone()).unwrap();
        for seed in 0..3 {
            let frame = test_frame(32, 32, seed);
            pipeline.restore(&frame, None).unwrap();
            let want = reference(&model, &frame);
            assert_eq!(pipeline.output(), &want, "{condition:?} seed {seed}");
            // A restored frame is not the input passed through.
            assert_ne!(pipeline.output().data, frame.data);
        }
    }
}

#[test]
fn fixture_silhouette_is_not_trivial() {
    // The fixture's G1 gives both subject and background pixels, so the silhouette test
    // above exercises a condition that varies across the frame.
    let (_dir, model) = folder(Fixture::tiny());
    let x = Tensor::from_shape(
        &[1, 3, 32, 32],
        &test_frame(32, 32, 1).to_chw(&Normalisation::default()),
    )
    .unwrap();
    let tex = model.stage1.run(tvec![x.into()]).unwrap().remove(0);
    let plane = &floats(&tex).unwrap()[..32 * 32];
    let on = plane.iter().filter(|&&v| v > 0.0).count();
    assert!(on > 0 && on < plane.len(), "{on} of {}", plane.len());
}

#[test]
fn mask_keeps_unmasked_pixels_and_grey_input_works() {
    let (_dir, model) = folder(Fixture::tiny());
    let mut pipeline = Pipeline::new(model.clone()).unwrap();
    let frame = test_frame(32, 32, 4);
    let full = {
        pipeline.restore(&frame, None).unwrap();
        pipeline.output().clone()
    };
    let mask = Mask::from_fn(32, 32, |i| (i % 32) < 10);
    pipeline.restore(&frame, Some(&mask)).unwrap();
    let out = pipeline.output();
    for i in 0..32 * 32 {
        let want = if mask.data[i] == 1 {
            full.pixel(i)
        } else {
            frame.pixel(i)
        };
        assert_eq!(out.pixel(i), want, "pixel {i}");
    }

    // Grey frames are replicated to RGB, like the shared conversion says.
    let grey =
        ImageU8::from_vec(32, 32, 1, frame.data.iter().step_by(3).copied().collect()).unwrap();
    let rgb = ImageU8::from_vec(
        32,
        32,
        3,
        grey.data.iter().flat_map(|&g| [g, g, g]).collect(),
    )
    .unwrap();
    pipeline.restore(&grey, None).unwrap();
    let from_grey = pipeline.output().clone();
    pipeline.restore(&rgb, None).unwrap();
    assert_eq!(&from_grey, pipeline.output());
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let (_dir, model) = folder(Fixture::tiny());
    let mut pipeline = Pipeline::new(model).unwrap();
    let wrong = ImageU8::new(16, 32, 3);
    assert!(matches!(
        pipeline.restore(&wrong, None),
        Err(PipelineError::Frame(ImageError::Shape { .. }))
    ));
    let mut short = ImageU8::new(32, 32, 3);
    short.data.pop();
    assert!(matches!(
        pipeline.restore(&short, None),
        Err(PipelineError::Frame(ImageError::BufferSize { .. }))
    ));
    let two = ImageU8 {
        width: 32,
        height: 32,
        channels: 2,
        data: vec![0; 2048],
    };
    assert!(matches!(
        pipeline.restore(&two, None),
        Err(PipelineError::Frame(ImageError::Channels(2)))
    ));
    let frame = test_frame(32, 32, 0);
    let err = pipeline
        .restore(&frame, Some(&Mask::new(8, 8)))
        .unwrap_err();
    assert_eq!(err.to_string(), "mask is 8x8, frame is 32x32");
    // Still works afterwards.
    assert!(pipeline.restore(&frame, None).is_ok());
}

#[test]
fn int8_fixture_runs_close_to_f32() {
    let (_d1, f32_model) = folder(Fixture::tiny());
    let (_d2, int8_model) = folder(Fixture {
        int8: true,
        ..Fixture::tiny()
    });
    let frame = test_frame(32, 32, 2);
    let mut a = Pipeline::new(f32_model).unwrap();
    let mut b = Pipeline::new(int8_model).unwrap();
    a.restore(&frame, None).unwrap();
    b.restore(&frame, None).unwrap();
    let max_diff = a
        .output()
        .data
        .iter()
        .zip(&b.output().data)
        .map(|(x, y)| x.abs_diff(*y))
        .max();
    // Quantisation error, but the same function.
    assert!(matches!(max_diff, Some(1..=24)), "max diff {max_diff:?}");
}

fn load_err(dir: &Path) -> String {
    let err: ModelError = Model::load(dir).unwrap_err();
    err.to_string()
}

#[test]
fn bad_folders_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        load_err(dir.path()).starts_with("cannot read"),
        "{}",
        load_err(dir.path())
    );

    // Tampered graph: the hash catches it before parsing.
    Fixture::tiny().write(dir.path()).unwrap();
    let stage2 = dir.path().join("stage2.onnx");
    let mut bytes = std::fs::read(&stage2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&stage2, &bytes).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Manifest {
            source: ManifestError::Hash { .. },
            ..
        })
    ));

    // Truncated manifest.
    Fixture::tiny().write(dir.path()).unwrap();
    let manifest = dir.path().join(MANIFEST_BIN);
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Manifest {
            source: ManifestError::Corrupt | ManifestError::Checksum,
            ..
        })
    ));

    // Garbage graph with a matching hash: a parse error, not a panic.
    let mut m = Fixture::tiny().write(dir.path()).unwrap();
    std::fs::write(dir.path().join("stage1.onnx"), b"\x08\x01garbage").unwrap();
    m.models[0].sha256 = unveil_shared::manifest::sha256(b"\x08\x01garbage");
    std::fs::write(&manifest, m.to_bytes().unwrap()).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Graph { .. } | ModelError::Contract { .. })
    ));

    // Graphs built for another size than the manifest states.
    let mut m = Fixture::tiny().write(dir.path()).unwrap();
    m.width = 48;
    std::fs::write(&manifest, m.to_bytes().unwrap()).unwrap();
    assert!(Model::load(dir.path()).is_err());

    // A texture-conditioned G2 under a manifest that says "no condition".
    let mut m = Fixture::tiny().write(dir.path()).unwrap();
    m.condition = Condition::None;
    std::fs::write(&manifest, m.to_bytes().unwrap()).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("unexpected input \"condition\""), "{msg}");
}

/// A folder's files held in memory load as the same model: `infer` on the prepared input
/// gives the restored planes `restore` gives, and a file missing from memory or changed
/// in it is refused as the folder loader refuses it.
#[test]
fn a_model_from_memory_runs_like_its_folder() {
    let (dir, model) = folder(Fixture::tiny());
    let files: Vec<(String, Vec<u8>)> = model
        .manifest
        .models
        .iter()
        .map(|m| {
            (
                m.file.clone(),
                std::fs::read(dir.path().join(&m.file)).unwrap(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(f, b)| (f.as_str(), b.as_slice()))
        .collect();
    let memory = Arc::new(Model::from_memory(model.manifest.clone(), &refs).unwrap());
    let frame = test_frame(32, 32, 4);
    let mut from_folder = Pipeline::new(model.clone()).unwrap();
    from_folder.restore(&frame, None).unwrap();
    let mut from_memory = Pipeline::new(memory).unwrap();
    let chw = frame.to_chw(&Normalisation::default());
    let (texture, outputs) = from_memory.infer(&chw).unwrap();
    assert_eq!(texture.len(), 6 * 32 * 32);
    assert_eq!(outputs[3].len(), 32 * 32, "alpha is one plane");
    let restored = ImageU8::from_chw(32, 32, &outputs[0], &Normalisation::default()).unwrap();
    assert_eq!(&restored, from_folder.output());
    // A wrong input length is an error, not a panic.
    assert!(matches!(
        from_memory.infer(&chw[1..]),
        Err(PipelineError::Frame(ImageError::BufferSize { .. }))
    ));

    let missing = Model::from_memory(model.manifest.clone(), &refs[..1]).unwrap_err();
    assert!(matches!(missing, ModelError::Read { .. }), "{missing}");
    let mut changed = files[1].1.clone();
    changed[100] ^= 1;
    let tampered = [refs[0], (refs[1].0, changed.as_slice())];
    assert!(matches!(
        Model::from_memory(model.manifest.clone(), &tampered),
        Err(ModelError::Manifest {
            source: ManifestError::Hash { .. },
            ..
        })
    ));
}
