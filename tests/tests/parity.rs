//! The exported graphs against burn and against each other, on seeded random weights of
//! the `tiny` architectures (no training needed):
//! - burn forward vs tract on the f32 ONNX: max |diff| ≤ 1e-4 on every output, for every
//!   condition;
//! - int8 vs f32, both in tract: PSNR of `restored` ≥ 40 dB;
//! - tract's optimised int8 graph runs integer matrix-product kernels, the f32 graph none;
//! - corrupt or truncated ONNX, a wrong hash, a wrong version: clear errors, no panic.

use unveil_device::model::ModelError;
use unveil_device::pipeline::Pipeline;
use unveil_host::export::runtime::Runner;
use unveil_host::export::{self, parity, ExportError, ExportSpec, Graphs, Precision};
use unveil_host::nets::blocks::seeded_init;
use unveil_host::nets::stage1::{Stage1Config, Stage1Net};
use unveil_host::nets::stage2::{Stage2Config, Stage2Net};
use unveil_host::train::cpu_device;
use unveil_shared::hole::HoleInput;
use unveil_shared::manifest::{
    Calibration, Condition, Manifest, ManifestError, Quantisation, WeightScales, MANIFEST_BIN,
    MANIFEST_JSON,
};

const SIZE: usize = 64;

fn spec(condition: Condition) -> ExportSpec {
    ExportSpec {
        name: "parity".into(),
        height: SIZE,
        width: SIZE,
        condition,
        hole: HoleInput::Absent,
        training_config_sha256: [0; 32],
    }
}

/// Seeded random G1 and G2 at the `tiny` preset.
fn nets(condition: Condition) -> (Stage1Net, Stage2Net) {
    let dev = cpu_device();
    let g1 = seeded_init(Stage1Config::tiny().init(&dev), 11);
    let g2 = seeded_init(
        Stage2Config::tiny().with_condition(condition).init(&dev),
        12,
    );
    (g1, g2)
}

/// A deterministic test image in [-1, 1]: smooth gradients plus a hashed texture.
fn image(seed: u64) -> Vec<f32> {
    (0..3 * SIZE * SIZE)
        .map(|i| {
            let (c, y, x) = (i / (SIZE * SIZE), (i / SIZE) % SIZE, i % SIZE);
            let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            let noise = (h % 1000) as f32 / 1000.0 - 0.5;
            let smooth = ((x + 2 * y + 17 * c) as f32 * 0.05 + seed as f32).sin();
            (0.7 * smooth + 0.5 * noise).clamp(-1.0, 1.0)
        })
        .collect()
}

/// `graphs` in the device's own pipeline, loaded from memory as the exporter's checks load
/// them (manifest, hashes, graph contract).
fn load(spec: &ExportSpec, graphs: &Graphs, quantisation: Quantisation) -> Pipeline {
    export::pipeline(spec, graphs, quantisation).expect("the graphs load in the device's Model")
}

/// The int8 label of [`int8_and_f32`]'s graphs.
const INT8: Quantisation = Quantisation::Int8 {
    calibration: Calibration::MinMax,
    samples: 8,
    weights: WeightScales::PerTensor,
};

/// The optimised graph of `plan` (a stage of a loaded model), for its operator list.
fn runner(plan: &unveil_device::model::Plan) -> Runner {
    Runner::from_plan(plan.clone()).expect("plan")
}

#[test]
fn f32_graphs_match_burn_within_1e4_for_every_condition() {
    let names = ["texture", "restored", "foreground", "background", "alpha"];
    for condition in [Condition::Texture, Condition::Silhouette, Condition::None] {
        let (g1, g2) = nets(condition);
        let graphs = export::export_f32(&g1, &g2, &spec(condition)).expect("export");
        let mut p = load(&spec(condition), &graphs, Quantisation::Float32);
        for seed in [1, 2] {
            let img = image(seed);
            let (bt, bo) =
                parity::burn_pipeline(&g1, &g2, condition, &img, SIZE, SIZE, &cpu_device())
                    .expect("burn forward");
            let (tt, to) = parity::tract_pipeline(&mut p, &img).expect("tract run");
            // A model without a condition never runs G1 on the device.
            let skip = usize::from(condition == Condition::None);
            assert_eq!(tt.is_empty(), skip == 1, "{condition:?}: G1 ran or did not");
            let burn = std::iter::once(&bt).chain(bo.iter()).skip(skip);
            let tract = std::iter::once(&tt).chain(to.iter()).skip(skip);
            for ((name, b), t) in names.iter().skip(skip).zip(burn).zip(tract) {
                let d = parity::max_abs_diff(b, t);
                println!("{condition:?} seed {seed}: {name} max |burn - tract| = {d:.2e}");
                assert!(
                    d <= 1e-4,
                    "{condition:?} seed {seed}: {name} max |diff| {d}"
                );
            }
            assert_eq!(to[3].len(), SIZE * SIZE);
            if skip == 1 {
                continue;
            }
            // The texture map's part channel holds labels k/24 and some subject pixels.
            let plane = &tt[..SIZE * SIZE];
            assert!(plane
                .iter()
                .all(|p| ((p * 24.0).round() - p * 24.0).abs() < 1e-4));
            assert!(
                plane.iter().any(|&p| p > 0.0),
                "random G1 labels no subject pixel"
            );
        }
    }
}

/// Hole-aware graphs (both stages read RGB with the hole pre-filled plus the hole plane),
/// with a G1 at half resolution (`AveragePool` in, `Resize` out): burn and tract agree
/// within 1e-4 on the shared crate's own hole input, f32 and int8 export, and the
/// device's model loader takes the 4-plane contract.
#[test]
fn hole_aware_graphs_match_burn_within_1e4() {
    use unveil_shared::{ImageU8, Mask, Normalisation};
    let dev = cpu_device();
    let hole = HoleInput::Telea;
    let condition = Condition::Texture;
    let g1 = seeded_init(
        Stage1Config::tiny()
            .with_hole_input(hole)
            .with_downscale(Some(2))
            .init(&dev),
        31,
    );
    let g2 = seeded_init(
        Stage2Config::tiny()
            .with_condition(condition)
            .with_hole(hole)
            .init(&dev),
        32,
    );
    let spec = ExportSpec {
        hole,
        ..spec(condition)
    };
    let graphs = export::export_f32(&g1, &g2, &spec).expect("export");
    let mut p = load(&spec, &graphs, Quantisation::Float32);
    assert_eq!(
        runner(&p.model().stage1).input_shapes(),
        &[vec![1, 4, SIZE, SIZE]]
    );
    let norm = Normalisation::default();
    let frame = ImageU8::from_chw(SIZE, SIZE, &image(3), &norm).expect("frame");
    let mask = Mask::from_fn(SIZE, SIZE, |i| (i % SIZE) / 8 == 3 && i / SIZE > 10);
    let mut input = vec![0.0; 4 * SIZE * SIZE];
    let mut filled = unveil_shared::hole::HoleScratch::new();
    unveil_shared::hole::write_hole_input(
        &frame,
        Some(&mask),
        hole,
        &norm,
        &mut filled,
        &mut input,
    )
    .expect("hole input");
    let (bt, bo) =
        parity::burn_pipeline(&g1, &g2, condition, &input, SIZE, SIZE, &dev).expect("burn forward");
    let (tt, to) = parity::tract_pipeline(&mut p, &input).expect("tract run");
    for (name, (b, t)) in ["texture", "restored", "foreground", "background", "alpha"]
        .iter()
        .zip(
            std::iter::once(&bt)
                .chain(bo.iter())
                .zip(std::iter::once(&tt).chain(to.iter())),
        )
    {
        let d = parity::max_abs_diff(b, t);
        println!("hole-aware: {name} max |burn - tract| = {d:.2e}");
        assert!(d <= 1e-4, "{name}: max |diff| {d}");
    }
    let calib: Vec<Vec<f32>> = vec![input.clone(); 2];
    let ranges =
        export::calibrate(&g1, &g2, &spec, &calib, Calibration::MinMax, || {}).expect("calibrate");
    export::export_int8(&g1, &g2, &spec, &ranges, WeightScales::PerTensor).expect("int8");
    // A G2 that reads the hole with a G1 that does not is refused.
    let plain = seeded_init(Stage1Config::tiny().init(&dev), 31);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = export::export_folder(dir.path(), &plain, &g2, &spec, Precision::Float32, || {})
        .expect_err("mixed hole inputs");
    assert!(err.to_string().contains("same image input"), "{err}");
}

/// Int8 graphs calibrated on 8 images; compared with f32 on 2 other images.
fn int8_and_f32(condition: Condition) -> (Graphs, Graphs) {
    let (g1, g2) = nets(condition);
    let spec = spec(condition);
    let calib: Vec<Vec<f32>> = (100..108).map(image).collect();
    let ranges =
        export::calibrate(&g1, &g2, &spec, &calib, Calibration::MinMax, || {}).expect("calibrate");
    assert_eq!(
        ranges.stage1.len(),
        1 + 2 * 3 + 2 * 3 + 3,
        "G1 convolutions"
    );
    let int8 = export::export_int8(&g1, &g2, &spec, &ranges, WeightScales::PerTensor)
        .expect("int8 export");
    let f32 = export::export_f32(&g1, &g2, &spec).expect("f32 export");
    (int8, f32)
}

#[test]
fn int8_restored_within_40db_of_f32_and_runs_integer_kernels() {
    let condition = Condition::Texture;
    let (int8, f32) = int8_and_f32(condition);
    assert!(
        int8.stage2.len() * 2 < f32.stage2.len(),
        "int8 G2 {} bytes vs f32 {}",
        int8.stage2.len(),
        f32.stage2.len()
    );
    let mut q = load(&spec(condition), &int8, INT8);
    let mut f = load(&spec(condition), &f32, Quantisation::Float32);
    for seed in [7, 8] {
        let img = image(seed);
        let (_, qo) = parity::tract_pipeline(&mut q, &img).expect("int8 run");
        let (_, fo) = parity::tract_pipeline(&mut f, &img).expect("f32 run");
        let psnr = parity::psnr_signed(&qo[0], &fo[0], None).unwrap_or(0.0);
        println!("seed {seed}: restored int8 vs f32 PSNR {psnr:.2} dB");
        assert!(
            psnr >= 40.0,
            "seed {seed}: restored int8 vs f32 PSNR {psnr:.2} dB"
        );
    }
    let (qm, fm) = (q.model().clone(), f.model().clone());
    for (plan, float_plan) in [(&qm.stage1, &fm.stage1), (&qm.stage2, &fm.stage2)] {
        let (runner, float) = (runner(plan), runner(float_plan));
        let ops = runner.optimised_ops().expect("ops");
        let integer = ops.iter().filter(|o| o.is_integer_matmul()).count();
        assert!(
            integer >= 10,
            "int8 graph has {integer} integer matmuls: {ops:#?}"
        );
        let float_ops = float.optimised_ops().expect("ops");
        assert_eq!(
            float_ops.iter().filter(|o| o.is_integer_matmul()).count(),
            0
        );
    }
}

#[test]
fn truncated_or_corrupt_onnx_is_an_error_not_a_panic() {
    let (g1, g2) = nets(Condition::Texture);
    let graphs = export::export_f32(&g1, &g2, &spec(Condition::Texture)).expect("export");
    let bytes = &graphs.stage1;
    for len in [0, 1, 10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let r = Runner::load(&bytes[..len]);
        assert!(
            matches!(r, Err(ExportError::Onnx(_))),
            "prefix {len}: {r:?}"
        );
    }
    // Overwrite stretches of the graph (not the weights' raw bytes, which stay valid
    // protobuf) with garbage: every load must return, most with an error.
    let mut errors = 0;
    for (k, at) in (0..bytes.len()).step_by(bytes.len() / 16 + 1).enumerate() {
        let mut bad = bytes.clone();
        for b in bad.iter_mut().skip(at).take(24) {
            *b = 0xA5 ^ (k as u8);
        }
        if Runner::load(&bad).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0, "no corruption was detected");
    assert!(matches!(
        Runner::load(b"not an onnx file"),
        Err(ExportError::Onnx(_))
    ));
}

#[test]
fn model_folder_round_trips_and_refuses_wrong_hash_and_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (g1, g2) = nets(Condition::Texture);
    let spec = spec(Condition::Texture);
    let m = export::export_folder(dir.path(), &g1, &g2, &spec, Precision::Float32, || {})
        .expect("export folder");
    assert_eq!(m.quantisation, Quantisation::Float32);
    assert_eq!((m.width, m.height), (SIZE as u16, SIZE as u16));
    let (loaded, [stage1, stage2]) = export::load_folder(dir.path()).expect("loads");
    assert_eq!(loaded.manifest, m);
    assert_eq!(stage1.input_shapes(), &[vec![1, 3, SIZE, SIZE]]);
    assert_eq!(
        stage2.input_shapes(),
        &[vec![1, 3, SIZE, SIZE], vec![1, 6, SIZE, SIZE]]
    );
    // The JSON twin holds the same value.
    let json = std::fs::read_to_string(dir.path().join(MANIFEST_JSON)).expect("json");
    let twin: Manifest = serde_json::from_str(&json).expect("json parses");
    assert_eq!(twin, m);

    // One flipped byte in a graph: the hash check names the file.
    let path = dir.path().join(export::STAGE2_FILE);
    let original = std::fs::read(&path).expect("read");
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&path, &bad).expect("write");
    match export::load_folder(dir.path()) {
        Err(ExportError::Model(ModelError::Manifest {
            source: ManifestError::Hash { file },
            ..
        })) => assert_eq!(file, "stage2.onnx"),
        other => panic!("expected a hash error, got {other:?}"),
    }
    std::fs::write(&path, &original).expect("write");

    // A manifest from another version.
    let bin = dir.path().join(MANIFEST_BIN);
    let mut newer = m.clone();
    newer.version += 1;
    // `to_bytes` does not validate, so it encodes the newer version as is.
    std::fs::write(&bin, newer.to_bytes().expect("encode")).expect("write");
    assert!(matches!(
        export::load_folder(dir.path()),
        Err(ExportError::Model(ModelError::Manifest {
            source: ManifestError::Version { found },
            ..
        })) if found == m.version + 1
    ));
    // Truncated manifest.
    let good = m.to_bytes().expect("encode");
    std::fs::write(&bin, &good[..good.len() / 2]).expect("write");
    assert!(matches!(
        export::load_folder(dir.path()),
        Err(ExportError::Model(ModelError::Manifest {
            source: ManifestError::Corrupt | ManifestError::Checksum,
            ..
        }))
    ));
    // Missing manifest: an I/O error naming the file.
    std::fs::remove_file(&bin).expect("remove");
    let err = export::load_folder(dir.path()).expect_err("no manifest");
    assert!(err.to_string().contains(MANIFEST_BIN), "{err}");
}

/// The shipped int8 model against its f32 twin on the occluded pixels of 64 held-out
/// samples (the method's occlusion): PSNR against the clean image within 0.3 dB.
/// Needs trained models (`models/default`, `models/default-f32`; see models/README.md),
/// so it is ignored in the normal run: `cargo test -p unveil-tests --test parity -- --ignored`.
#[test]
#[ignore = "needs the trained models in models/"]
fn shipped_int8_occluded_region_psnr_within_0_3_db_of_f32() {
    use unveil_host::data::synth::SynthConfig;
    use unveil_host::data::{Loader, SampleSource};
    use unveil_shared::occlusion::{Fill, OcclusionMode, OcclusionSpec};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut f = export::folder_pipeline(&root.join("default-f32")).expect("default-f32 loads");
    let mut q = export::folder_pipeline(&root.join("default")).expect("models/default loads");
    let manifest = q.model().manifest.clone();
    let size = usize::from(manifest.width);
    let source = SampleSource::Generated {
        cfg: SynthConfig::new(size).expect("size"),
        seed: unveil_host::data::HELD_OUT_SEED,
        count: 64,
    };
    let spec = OcclusionSpec::new(OcclusionMode::Subject { fill: Fill::Noise });
    let loader = Loader::new(source, spec, unveil_host::data::HELD_OUT_SEED)
        .expect("loader")
        .with_telea(true);
    let r = parity::occluded_psnr(&mut f, &mut q, manifest.hole, &loader, 64).expect("runs");
    println!(
        "occluded-region PSNR: f32 {:.2} dB, int8 {:.2} dB",
        r.f32_db, r.int8_db
    );
    assert!((r.f32_db - r.int8_db).abs() <= 0.3, "{r:?}");
}

/// The oracle condition (the renderer's texture map) trains and evaluates on the host
/// only: exporting it is refused before any file is written.
#[test]
fn the_oracle_condition_is_never_exported() {
    let (g1, g2) = nets(Condition::Truth);
    let spec = spec(Condition::Truth);
    assert!(matches!(
        export::export_f32(&g1, &g2, &spec),
        Err(export::ExportError::Manifest(
            ManifestError::OracleCondition
        ))
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("oracle");
    let graphs = Graphs {
        stage1: Vec::new(),
        stage2: Vec::new(),
    };
    assert!(export::write_folder(&folder, &spec, &graphs, Quantisation::Float32).is_err());
    assert!(!folder.exists(), "nothing may be written");
}
