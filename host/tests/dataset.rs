//! Writing a data set and reading it back: exact round trip and clear errors.

use std::fs;

use unveil_host::data::dataset::{
    self, Dataset, DatasetError, DatasetManifest, Provenance, MANIFEST_FILE, MANIFEST_VERSION,
};
use unveil_host::data::synth::{render_sample, SynthConfig};

fn write_set(dir: &std::path::Path, count: u64, size: usize) -> DatasetManifest {
    let cfg = SynthConfig::new(size).unwrap();
    dataset::synthesize(dir, &cfg, 3, count, &Provenance::default(), || ()).unwrap()
}

#[test]
fn round_trip_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path(), 3, 48);
    let data = Dataset::open(tmp.path()).unwrap();
    assert_eq!(data.len(), 3);
    let cfg = SynthConfig::new(48).unwrap();
    for i in 0..3 {
        let want = render_sample(&cfg, 3, i as u64).unwrap();
        let got = data.get(i).unwrap();
        assert_eq!(got.image, want.image);
        assert_eq!(got.background, want.background);
        assert_eq!(got.mask, want.mask);
        assert_eq!(got.iuv, want.iuv, "16-bit IUV must survive PNG exactly");
        assert_eq!(got.albedo, want.albedo);
        assert_eq!(got.params, want.params);
    }
    assert!(matches!(
        data.get(3),
        Err(DatasetError::Index { index: 3, len: 3 })
    ));
}

#[test]
fn bad_folders_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(matches!(
        Dataset::open(dir),
        Err(DatasetError::NoManifest(_))
    ));

    let mut manifest = write_set(dir, 1, 32);
    // Corrupt manifest.
    fs::write(dir.join(MANIFEST_FILE), b"{ not json").unwrap();
    assert!(matches!(
        Dataset::open(dir),
        Err(DatasetError::Manifest { .. })
    ));
    // Unknown field.
    fs::write(dir.join(MANIFEST_FILE), br#"{"version":1,"surprise":true}"#).unwrap();
    assert!(matches!(
        Dataset::open(dir),
        Err(DatasetError::Manifest { .. })
    ));
    // Other version.
    manifest.version = 99;
    dataset::write_manifest(dir, &manifest).unwrap();
    let err = Dataset::open(dir).unwrap_err();
    assert!(
        matches!(err, DatasetError::Version { found: 99, .. }),
        "{err}"
    );
    // No samples.
    manifest.version = MANIFEST_VERSION;
    let entries = std::mem::take(&mut manifest.samples);
    dataset::write_manifest(dir, &manifest).unwrap();
    assert!(matches!(Dataset::open(dir), Err(DatasetError::Empty(_))));
    manifest.samples = entries;
    dataset::write_manifest(dir, &manifest).unwrap();

    // A plane of the wrong size.
    let data = Dataset::open(dir).unwrap();
    let small = unveil_shared::ImageU8::new(8, 8, 3);
    dataset::write_rgb8(&dir.join("00000_albedo.png"), &small).unwrap();
    let err = data.get(0).unwrap_err();
    assert!(matches!(err, DatasetError::Size { .. }), "{err}");
    assert!(err.to_string().contains("00000_albedo.png"), "{err}");
    // A truncated plane.
    let bytes = fs::read(dir.join("00000_image.png")).unwrap();
    fs::write(dir.join("00000_image.png"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(data.get(0), Err(DatasetError::Decode { .. })));
    // A missing plane.
    fs::remove_file(dir.join("00000_image.png")).unwrap();
    assert!(matches!(data.get(0), Err(DatasetError::Io { .. })));
}
