//! Texture-map ground truth for photos without a 3D model: the trained extraction network
//! predicts the planes of each unoccluded photo, and the result is written as an ordinary
//! data-set folder, so training reads labelled photos through the same path as renders.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use unveil_shared::{ImageU8, Mask, Normalisation};

use crate::data::dataset::{self, DatasetError, DatasetManifest, SampleEntry, MANIFEST_VERSION};
use crate::data::synth::{Sample, SampleParams};
use crate::eval::texture_to_planes;
use crate::nets::stage1::Stage1Net;

/// Why labelling stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{0} holds no PNG or JPEG images")]
    NoImages(PathBuf),
    #[error("cannot read back the network output: {0}")]
    Read(String),
}

/// The image files of `dir`, sorted by name (so sample numbers are reproducible).
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, LabelError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LabelError::Io {
        path: dir.into(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LabelError::NoImages(dir.into()));
    }
    Ok(files)
}

/// Centre-crop to a square and resize to `size`, as the camera pipeline frames its input.
pub fn square(img: &ImageU8, size: usize) -> Result<ImageU8, unveil_shared::ImageError> {
    let side = img.width.min(img.height);
    crop_square(
        img,
        (img.width - side) / 2,
        (img.height - side) / 2,
        side,
        size,
    )
}

/// The `side`×`side` square of `img` at `(x0, y0)`, resized to `size`. The square must lie
/// inside the image.
pub fn crop_square(
    img: &ImageU8,
    x0: usize,
    y0: usize,
    side: usize,
    size: usize,
) -> Result<ImageU8, unveil_shared::ImageError> {
    let mut crop = ImageU8::new(side, side, img.channels);
    for y in 0..side {
        let src = ((y0 + y) * img.width + x0) * img.channels;
        let dst = y * side * img.channels;
        crop.data[dst..dst + side * img.channels]
            .copy_from_slice(&img.data[src..src + side * img.channels]);
    }
    crop.resize_bilinear(size, size)
}

/// Label every photo of `images` with `extractor` at `size` pixels and write a data set to
/// `out`. The background plane is the photo itself: a photo has no empty plate.
pub fn label_folder(
    extractor: &Stage1Net,
    images: &Path,
    out: &Path,
    size: usize,
    device: &Device,
    on_image: impl Fn(),
) -> Result<DatasetManifest, LabelError> {
    let files = image_files(images)?;
    std::fs::create_dir_all(out).map_err(|source| LabelError::Io {
        path: out.into(),
        source,
    })?;
    let norm = Normalisation::default();
    let mut samples: Vec<SampleEntry> = Vec::with_capacity(files.len());
    for (index, path) in files.iter().enumerate() {
        let photo = dataset::read_rgb8(path)?;
        let image = square(&photo, size).map_err(|source| DatasetError::Plane {
            path: path.clone(),
            source,
        })?;
        let x = Tensor::<4>::from_data(
            TensorData::new(image.to_chw(&norm), [1, 3, size, size]),
            device,
        );
        let texture = extractor.forward(x).texture_map();
        let t = texture
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| LabelError::Read(format!("{e:?}")))?;
        let (iuv, albedo) = texture_to_planes(&t, size);
        let mask: Mask = iuv.silhouette();
        let params = SampleParams {
            index: index as u64,
            subject: format!(
                "photo:{}",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
            background: "photo".into(),
            coverage: mask.coverage(),
            ..SampleParams::default()
        };
        let sample = Sample {
            background: image.clone(),
            image,
            mask,
            iuv,
            albedo,
            params,
        };
        samples.push(dataset::write_sample(out, &sample)?);
        on_image();
    }
    let manifest = DatasetManifest {
        version: MANIFEST_VERSION,
        generator: format!("unveil {} label", env!("CARGO_PKG_VERSION")),
        size,
        seed: 0,
        subject: format!("labelled photos from {}", images.display()),
        backgrounds: "the photos themselves".into(),
        samples,
    };
    dataset::write_manifest(out, &manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_crops_the_centre() {
        // 4x2 grey image with columns 0, 1, 2, 3: the centre square is columns 1..3.
        let img = ImageU8::from_vec(4, 2, 1, vec![0, 1, 2, 3, 0, 1, 2, 3]).unwrap();
        let s = square(&img, 2).unwrap();
        assert_eq!(s.data, vec![1, 2, 1, 2]);
    }

    #[test]
    fn labelled_folder_reads_back_as_a_data_set() {
        let dev = crate::train::cpu_device();
        let g1 = crate::nets::blocks::seeded_init(
            crate::nets::stage1::Stage1Config::tiny().init(&dev),
            1,
        );
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir(&photos).unwrap();
        let sample = crate::data::synth::render_sample(
            &crate::data::synth::SynthConfig::new(80).unwrap(),
            1,
            0,
        )
        .unwrap();
        dataset::write_rgb8(&photos.join("a.png"), &sample.image).unwrap();
        std::fs::write(photos.join("notes.txt"), b"ignored").unwrap();
        let out = tmp.path().join("out");
        let m = label_folder(&g1, &photos, &out, 64, &dev, || ()).unwrap();
        assert_eq!(m.samples.len(), 1);
        let data = dataset::Dataset::open(&out).unwrap();
        let s = data.get(0).unwrap();
        assert_eq!(s.image.width, 64);
        assert_eq!(s.mask, s.iuv.silhouette());
        // A corrupt photo is an error naming it, and an empty folder says so.
        std::fs::write(photos.join("b.png"), b"\x89PNG broken").unwrap();
        let err = label_folder(&g1, &photos, &out, 64, &dev, || ()).unwrap_err();
        assert!(err.to_string().contains("b.png"), "{err}");
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(
            label_folder(&g1, &empty, &out, 64, &dev, || ()),
            Err(LabelError::NoImages(_))
        ));
    }
}
