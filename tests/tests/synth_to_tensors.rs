//! Across crates: the host's synthetic data, the shared occlusion generator and the shared
//! tensor conventions fit together the way the trainer will use them.

use unveil_host::data::dataset::{self, Dataset, DatasetManifest, MANIFEST_VERSION};
use unveil_host::data::synth::{render_sample, SynthConfig};
use unveil_shared::occlusion::{occlude, OcclusionMode, OcclusionSpec};
use unveil_shared::texture::{CH_I, NUM_PARTS, TEXTURE_CHANNELS};
use unveil_shared::Normalisation;

#[test]
fn sample_from_disk_becomes_training_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::new(64).unwrap();
    let sample = render_sample(&cfg, 11, 0).unwrap();
    let entry = dataset::write_sample(tmp.path(), &sample).unwrap();
    let manifest = DatasetManifest {
        version: MANIFEST_VERSION,
        generator: "e2e".into(),
        size: 64,
        seed: 11,
        subject: "procedural".into(),
        backgrounds: "procedural".into(),
        samples: vec![entry],
    };
    dataset::write_manifest(tmp.path(), &manifest).unwrap();
    let loaded = Dataset::open(tmp.path()).unwrap().get(0).unwrap();

    // The method's own occlusion: hide part of the subject with noise.
    let spec = OcclusionSpec::new("subject-noise".parse::<OcclusionMode>().unwrap());
    let occ = occlude(&loaded.image, Some(&loaded.mask), &spec, 5).unwrap();
    assert!(occ.mask.count() > 0);
    for i in 0..occ.mask.data.len() {
        if occ.mask.data[i] == 1 {
            assert_eq!(
                loaded.mask.data[i], 1,
                "subject mode hid a background pixel"
            );
        } else {
            assert_eq!(occ.image.pixel(i), loaded.image.pixel(i));
        }
    }

    // Network inputs: occluded image in [-1, 1], texture map with the shared layout.
    let x = occ.image.to_chw(&Normalisation::default());
    assert_eq!(x.len(), 3 * 64 * 64);
    assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
    let t = loaded.iuv.texture_tensor(&loaded.albedo).unwrap();
    assert_eq!(t.len(), TEXTURE_CHANNELS * 64 * 64);
    let n = 64 * 64;
    for i in 0..n {
        let part = (t[CH_I * n + i] * NUM_PARTS as f32).round() as u8;
        assert_eq!(part, loaded.iuv.part[i]);
        assert_eq!(part > 0, loaded.mask.data[i] == 1);
    }
}
