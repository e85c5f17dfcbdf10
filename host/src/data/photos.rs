//! Real photos as held-out samples: the synthetic renders are exact but they are ours, so
//! restoration is also scored on photographs nobody trained on. A photo has no subject
//! model, so only the texture-free planes exist: the image (and, with no subject in it,
//! the background) is the truth; the silhouette and texture map are empty.
//!
//! Sample `k` is a seeded square crop of photo `k mod P` (a side between half and all of
//! the photo's short side, at a seeded place), resized to the network's size: a handful
//! of photos gives many different views, and the same `(seed, k)` gives the same pixels.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng as _;
use unveil_shared::texture::IuvMap;
use unveil_shared::{rng, ImageU8, Mask};

use crate::data::dataset;
use crate::data::label::{self, LabelError};
use crate::data::synth::{Sample, SampleParams};

/// Sub-stream tag of the crops (apart from the occlusion streams of the same seed).
const CROP_STREAM: u64 = 0x5048_4f54_4f00_0000;

/// Smallest crop side, as a fraction of the photo's short side.
const MIN_CROP: f64 = 0.5;

/// The decoded photos of a folder and how to cut samples from them.
#[derive(Debug)]
pub struct Photos {
    pub files: Vec<PathBuf>,
    images: Vec<ImageU8>,
    size: usize,
    seed: u64,
    count: usize,
}

impl Photos {
    /// Every PNG/JPEG of `dir` (sorted by name), decoded once: a corrupt or unreadable
    /// photo is an error naming it, before any scoring starts.
    pub fn open(dir: &Path, size: usize, seed: u64, count: usize) -> Result<Arc<Self>, LabelError> {
        let files = label::image_files(dir)?;
        let images = files
            .iter()
            .map(|f| dataset::read_rgb8(f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Self {
            files,
            images,
            size,
            seed,
            count,
        }))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Sample `index`: its crop of photo `index mod P` at the network's size.
    pub fn get(&self, index: usize) -> Result<Sample, unveil_shared::ImageError> {
        let photo = &self.images[index % self.images.len()];
        let short = photo.width.min(photo.height);
        let mut r = rng::stream(self.seed, CROP_STREAM ^ index as u64);
        let lo = ((short as f64 * MIN_CROP).round() as usize).clamp(1, short);
        let side = r.random_range(lo..=short);
        let x0 = r.random_range(0..=photo.width - side);
        let y0 = r.random_range(0..=photo.height - side);
        let image = label::crop_square(photo, x0, y0, side, self.size)?;
        let n = self.size;
        Ok(Sample {
            background: image.clone(),
            image,
            mask: Mask::new(n, n),
            iuv: IuvMap::new(n, n),
            albedo: ImageU8::new(n, n, 3),
            params: SampleParams {
                seed: self.seed,
                index: index as u64,
                subject: "photo".into(),
                ..SampleParams::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40x24 photo whose pixel values encode their coordinates.
    fn write_photo(dir: &Path, name: &str) {
        let (w, h) = (40usize, 24usize);
        let data = (0..w * h)
            .flat_map(|i| [(i % w) as u8 * 6, (i / w) as u8 * 10, 7])
            .collect();
        let img = ImageU8::from_vec(w, h, 3, data).unwrap();
        dataset::write_rgb8(&dir.join(name), &img).unwrap();
    }

    #[test]
    fn crops_are_seeded_squares_of_each_photo_in_turn() {
        let tmp = tempfile::tempdir().unwrap();
        write_photo(tmp.path(), "a.png");
        write_photo(tmp.path(), "b.png");
        let photos = Photos::open(tmp.path(), 16, 5, 6).unwrap();
        assert_eq!((photos.len(), photos.size()), (6, 16));
        let s = photos.get(3).unwrap();
        assert_eq!(
            (s.image.width, s.image.height, s.image.channels),
            (16, 16, 3)
        );
        // No subject: empty silhouette and texture map, the photo is its own background.
        assert!(s.mask.data.iter().all(|&m| m == 0));
        assert!(s.iuv.part.iter().all(|&p| p == 0));
        assert_eq!(s.background, s.image);
        // The same (seed, index) gives the same pixels; other indices other crops.
        assert_eq!(photos.get(3).unwrap().image, s.image);
        let crops: Vec<_> = (0..6).map(|k| photos.get(k).unwrap().image).collect();
        assert!(crops.windows(2).any(|w| w[0] != w[1]));
        // A crop never leaves the photo: blue is 7 everywhere, and within the 40x24
        // coordinate ramps green stays ≤ 23·10.
        assert!(s.image.data.chunks(3).all(|p| p[2] == 7 && p[1] <= 230));
    }

    #[test]
    fn a_corrupt_photo_or_an_empty_folder_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Photos::open(tmp.path(), 16, 5, 6).unwrap_err();
        assert!(e.to_string().contains("holds no PNG or JPEG"), "{e}");
        std::fs::write(tmp.path().join("bad.jpg"), b"\xff\xd8 not a jpeg").unwrap();
        let e = Photos::open(tmp.path(), 16, 5, 6).unwrap_err();
        assert!(e.to_string().contains("bad.jpg"), "{e}");
    }
}
