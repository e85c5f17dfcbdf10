//! Training data: samples from a data-set folder (or rendered on the fly), occluded afresh
//! on every visit, batched into tensors.
//!
//! The stream is a pure function of `(seed, step)`: sample `k = step · batch + j` is
//! position `k mod len` of epoch `k / len`'s seeded shuffle, occluded with seed
//! `derive(seed, k)`. A resumed run therefore needs only the step count to continue the
//! exact stream an uninterrupted run would have seen.

pub mod dataset;
pub mod label;
pub mod photos;
pub mod synth;

use std::sync::Mutex;

use burn::prelude::*;
use rand::Rng as _;
use rayon::prelude::*;
use unveil_shared::hole::{HoleInput, TELEA_RADIUS};
use unveil_shared::inpaint;
use unveil_shared::occlusion::{occlude, OcclusionError, OcclusionSpec};
use unveil_shared::texture::TEXTURE_CHANNELS;
use unveil_shared::{rng, ImageError, Mask, Normalisation};

use crate::data::dataset::{Dataset, DatasetError};
use crate::data::synth::{render_sample, Sample, SynthConfig, SynthError};
use crate::train::Batch;

/// Why a batch could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error("occlusion: {0}")]
    Occlusion(#[from] OcclusionError),
    #[error("texture map: {0}")]
    Image(#[from] ImageError),
    #[error(transparent)]
    Photos(#[from] crate::data::label::LabelError),
    #[error("the data source holds no samples")]
    Empty,
    #[error("the samples are {found}x{found}, the network takes {wanted}x{wanted}")]
    Size { found: usize, wanted: usize },
    #[error("batch size must be at least 1")]
    BatchSize,
    #[error("this loader does not pre-fill holes with Telea (build it with_telea)")]
    NoTelea,
}

/// Seed of the held-out samples and their occlusions every evaluation and check uses:
/// far from the small seeds training takes, so no held-out sample was trained on.
pub const HELD_OUT_SEED: u64 = 1_000_003;

/// Where samples come from.
#[derive(Clone, Debug)]
pub enum SampleSource {
    /// A folder written by `unveil synth` or `unveil label`.
    Folder(Dataset),
    /// Samples `0..count` of `seed`, rendered when needed (no disk, same bytes as `synth`).
    Generated {
        cfg: SynthConfig,
        seed: u64,
        count: usize,
    },
    /// Seeded crops of real photos (no subject model: empty silhouette and texture map).
    Photos(std::sync::Arc<photos::Photos>),
}

impl SampleSource {
    /// The samples of the data-set folder `dir` when one is given, otherwise `count`
    /// samples of `seed` rendered at `size` on the fly. Either way they must be
    /// `size`×`size`: the one check every consumer (training, evaluation, calibration)
    /// needs, made once.
    pub fn folder_or_generated(
        dir: Option<&std::path::Path>,
        size: usize,
        seed: u64,
        count: usize,
    ) -> Result<Self, DataError> {
        let source = match dir {
            Some(dir) => Self::Folder(Dataset::open(dir)?),
            None if count == 0 => return Err(DataError::Empty),
            None => Self::Generated {
                cfg: SynthConfig::new(size)?,
                seed,
                count,
            },
        };
        if source.size() != size {
            return Err(DataError::Size {
                found: source.size(),
                wanted: size,
            });
        }
        Ok(source)
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Folder(d) => d.len(),
            Self::Generated { count, .. } => *count,
            Self::Photos(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Square image size of every sample.
    pub fn size(&self) -> usize {
        match self {
            Self::Folder(d) => d.size(),
            Self::Generated { cfg, .. } => cfg.size,
            Self::Photos(p) => p.size(),
        }
    }

    pub fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(match self {
            Self::Folder(d) => d.get(index)?,
            Self::Generated { cfg, seed, .. } => render_sample(cfg, *seed, index as u64)?,
            Self::Photos(p) => p.get(index)?,
        })
    }
}

/// Everything a stage may need of a batch, as tensors on one device.
#[derive(Clone, Debug)]
pub struct SampleBatch {
    /// `[B, 3, S, S]` clean image x, normalised to [-1, 1].
    pub clean: Tensor<4>,
    /// `[B, 3, S, S]` the occluded copy, normalised to [-1, 1].
    pub occluded: Tensor<4>,
    /// `[B, 6, S, S]` ground-truth texture map (shared layout).
    pub texture: Tensor<4>,
    /// `[B, 1, S, S]` subject silhouette, 0/1.
    pub mask: Tensor<4>,
    /// `[B, 1, S, S]` pixels hidden by the occlusion, 0/1.
    pub hidden: Tensor<4>,
    /// `[B, 3, S, S]` background plate, normalised to [-1, 1].
    pub background: Tensor<4>,
    /// `[B, 3, S, S]` the occluded copy with its hidden pixels filled by Telea's
    /// inpainting (the shared crate's, as on the device); only from a loader built
    /// [`with_telea`](Loader::with_telea).
    pub telea: Option<Tensor<4>>,
}

impl SampleBatch {
    /// The networks' image input for `hole` (see [`unveil_shared::hole`]): `[B, 3, S, S]`
    /// (the occluded image) for [`HoleInput::Absent`], otherwise `[B, 4, S, S]` (pre-filled
    /// RGB, then the hole plane). The batched twin of
    /// [`unveil_shared::hole::write_hole_input`]; a test holds them equal.
    pub fn hole_input(&self, hole: HoleInput) -> Result<Tensor<4>, DataError> {
        let rgb = match hole {
            HoleInput::Absent => return Ok(self.occluded.clone()),
            HoleInput::Zeroed => self
                .occluded
                .clone()
                .mul(self.hidden.clone().neg().add_scalar(1.0)),
            HoleInput::Telea => self.telea.clone().ok_or(DataError::NoTelea)?,
        };
        Ok(Tensor::cat(vec![rgb, self.hidden.clone()], 1))
    }
}

fn mask_f32(m: &Mask) -> Vec<f32> {
    m.data.iter().map(|&v| v as f32).collect()
}

/// The seeded, endless, epoch-shuffled stream of occluded samples.
#[derive(Debug)]
pub struct Loader {
    pub source: SampleSource,
    pub occlusion: OcclusionSpec,
    pub seed: u64,
    /// Also fill each occluded copy's holes with Telea ([`SampleBatch::telea`]).
    pub telea: bool,
    /// The last epoch's permutation, so consecutive batches don't reshuffle.
    shuffle: Mutex<Option<(u64, Vec<usize>)>>,
}

impl Loader {
    pub fn new(
        source: SampleSource,
        occlusion: OcclusionSpec,
        seed: u64,
    ) -> Result<Self, DataError> {
        if source.is_empty() {
            return Err(DataError::Empty);
        }
        occlusion.validate()?;
        Ok(Self {
            source,
            occlusion,
            seed,
            telea: false,
            shuffle: Mutex::new(None),
        })
    }

    /// The same stream, with [`SampleBatch::telea`] filled in.
    pub fn with_telea(mut self, telea: bool) -> Self {
        self.telea = telea;
        self
    }

    /// Sample index at stream position `k`.
    fn index_at(&self, k: u64) -> usize {
        let len = self.source.len() as u64;
        let (epoch, pos) = (k / len, (k % len) as usize);
        let mut cache = self.shuffle.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut perm: Vec<usize> = (0..len as usize).collect();
            let mut r = rng::stream(self.seed, 0x5348_5546_0000_0000 ^ epoch);
            for i in (1..perm.len()).rev() {
                perm.swap(i, r.random_range(0..=i));
            }
            *cache = Some((epoch, perm));
        }
        cache.as_ref().map_or(pos, |(_, p)| p[pos])
    }

    /// Stream position `k` as a one-sample batch.
    fn planes(&self, k: u64) -> Result<HostBatch, DataError> {
        let sample = self.source.get(self.index_at(k))?;
        let norm = Normalisation::default();
        let occ = occlude(
            &sample.image,
            Some(&sample.mask),
            &self.occlusion,
            rng::derive(self.seed, k),
        )?;
        let telea = if self.telea {
            Some(inpaint::telea(&occ.image, &occ.mask, TELEA_RADIUS)?.to_chw(&norm))
        } else {
            None
        };
        Ok(HostBatch {
            batch_size: 1,
            size: self.source.size(),
            telea,
            clean: sample.image.to_chw(&norm),
            occluded: occ.image.to_chw(&norm),
            texture: sample.iuv.texture_tensor(&sample.albedo)?,
            mask: mask_f32(&sample.mask),
            hidden: mask_f32(&occ.mask),
            background: sample.background.to_chw(&norm),
        })
    }

    /// Batch number `step` of the stream (samples decoded and occluded in parallel).
    pub fn batch(
        &self,
        step: usize,
        batch_size: usize,
        device: &Device,
    ) -> Result<SampleBatch, DataError> {
        Ok(self.prepare(step, batch_size)?.to_device(device))
    }

    /// The CPU half of [`batch`](Self::batch): batch `step` rendered, occluded and
    /// stacked, not yet on a device. The trainer prepares batch `k + 1` on another thread
    /// while step `k` runs.
    pub fn prepare(&self, step: usize, batch_size: usize) -> Result<HostBatch, DataError> {
        if batch_size == 0 {
            return Err(DataError::BatchSize);
        }
        let first = step as u64 * batch_size as u64;
        let planes = (0..batch_size as u64)
            .into_par_iter()
            .map(|j| self.planes(first + j))
            .collect::<Result<Vec<_>, _>>()?;
        let stack = |pick: &dyn Fn(&HostBatch) -> &Vec<f32>| {
            planes
                .iter()
                .flat_map(|p| pick(p).iter().copied())
                .collect::<Vec<f32>>()
        };
        let telea = match planes
            .iter()
            .map(|p| p.telea.as_ref())
            .collect::<Option<Vec<_>>>()
        {
            Some(fills) if self.telea => Some(fills.into_iter().flatten().copied().collect()),
            _ => None,
        };
        Ok(HostBatch {
            batch_size,
            size: self.source.size(),
            clean: stack(&|p| &p.clean),
            occluded: stack(&|p| &p.occluded),
            texture: stack(&|p| &p.texture),
            mask: stack(&|p| &p.mask),
            hidden: stack(&|p| &p.hidden),
            background: stack(&|p| &p.background),
            telea,
        })
    }
}

/// A [`SampleBatch`] as planar host buffers (`[B, C, S, S]` each, row-major).
#[derive(Clone, Debug)]
pub struct HostBatch {
    pub batch_size: usize,
    pub size: usize,
    clean: Vec<f32>,
    occluded: Vec<f32>,
    texture: Vec<f32>,
    mask: Vec<f32>,
    hidden: Vec<f32>,
    background: Vec<f32>,
    telea: Option<Vec<f32>>,
}

impl HostBatch {
    /// The tensors on `device`.
    pub fn to_device(self, device: &Device) -> SampleBatch {
        let (b, s) = (self.batch_size, self.size);
        let tensor = |data: Vec<f32>, channels: usize| {
            Tensor::<4>::from_data(TensorData::new(data, [b, channels, s, s]), device)
        };
        SampleBatch {
            clean: tensor(self.clean, 3),
            occluded: tensor(self.occluded, 3),
            texture: tensor(self.texture, TEXTURE_CHANNELS),
            mask: tensor(self.mask, 1),
            hidden: tensor(self.hidden, 1),
            background: tensor(self.background, 3),
            telea: self.telea.map(|t| tensor(t, 3)),
        }
    }
}

/// Which network a stream of batches trains: picks input and target from a [`SampleBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Extraction network: clean image → texture map.
    Extractor,
    /// Silhouette network S: clean image → silhouette.
    Silhouette,
    /// G1: occluded image (in its hole-aware form) → texture map.
    Stage1(HoleInput),
    /// Occlusion detector: occluded image → the occluder's exact mask. The last quarter of
    /// every batch is shown unoccluded with an empty mask, so that the detector learns to
    /// leave an intact frame alone (blind restoration must not touch it).
    Occlusion,
}

/// Of a batch of `batch` samples, how many [`Task::Occlusion`] shows unoccluded.
pub const fn clean_share(batch: usize) -> usize {
    batch / 4
}

impl Task {
    pub fn pick(self, b: SampleBatch) -> Result<Batch, DataError> {
        Ok(match self {
            Self::Extractor => Batch {
                input: b.clean,
                target: b.texture,
            },
            Self::Silhouette => Batch {
                input: b.clean,
                target: b.mask,
            },
            Self::Stage1(hole) => Batch {
                input: b.hole_input(hole)?,
                target: b.texture,
            },
            Self::Occlusion => {
                let n = b.occluded.dims()[0];
                let (clean, kept) = (clean_share(n), n - clean_share(n));
                if clean == 0 {
                    Batch {
                        input: b.occluded,
                        target: b.hidden,
                    }
                } else {
                    let empty = b.hidden.clone().narrow(0, kept, clean).zeros_like();
                    Batch {
                        input: Tensor::cat(
                            vec![
                                b.occluded.narrow(0, 0, kept),
                                b.clean.narrow(0, kept, clean),
                            ],
                            0,
                        ),
                        target: Tensor::cat(vec![b.hidden.narrow(0, 0, kept), empty], 0),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unveil_shared::occlusion::OcclusionMode;
    use unveil_shared::ImageU8;

    fn loader(count: usize) -> Loader {
        let source = SampleSource::Generated {
            cfg: SynthConfig::new(32).unwrap(),
            seed: 4,
            count,
        };
        Loader::new(
            source,
            OcclusionSpec::new(OcclusionMode::Subject {
                fill: unveil_shared::occlusion::Fill::Zero,
            }),
            9,
        )
        .unwrap()
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn occlusion_task_shows_the_last_quarter_clean_with_an_empty_mask() {
        let dev = crate::train::cpu_device();
        let b = loader(8).batch(0, 8, &dev).unwrap();
        let (occluded, clean, hidden) = (
            values(b.occluded.clone()),
            values(b.clean.clone()),
            values(b.hidden.clone()),
        );
        let picked = Task::Occlusion.pick(b).unwrap();
        let (input, target) = (values(picked.input), values(picked.target));
        let (img, plane) = (3 * 32 * 32, 32 * 32);
        assert_eq!(clean_share(8), 2);
        // Samples 0..6: the occluded image and its true mask, as rendered.
        assert_eq!(input[..6 * img], occluded[..6 * img]);
        assert_eq!(target[..6 * plane], hidden[..6 * plane]);
        assert!(target[..6 * plane].contains(&1.0));
        // Samples 6 and 7: the clean image, nothing hidden.
        assert_eq!(input[6 * img..], clean[6 * img..]);
        assert!(target[6 * plane..].iter().all(|&v| v == 0.0));
        // A batch too small to spare a clean sample is all occluded.
        let one = loader(8).batch(0, 3, &dev).unwrap();
        let occ = values(one.occluded.clone());
        assert_eq!(values(Task::Occlusion.pick(one).unwrap().input), occ);
    }

    #[test]
    fn every_epoch_visits_every_sample_once() {
        let l = loader(5);
        for epoch in 0..3u64 {
            let mut seen: Vec<usize> = (0..5).map(|p| l.index_at(epoch * 5 + p)).collect();
            seen.sort();
            assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        }
        let e0: Vec<_> = (0..5).map(|p| l.index_at(p)).collect();
        let e1: Vec<_> = (5..10).map(|p| l.index_at(p)).collect();
        assert_ne!(e0, e1, "each epoch is shuffled anew");
    }

    #[test]
    fn batches_are_deterministic_and_occlusion_is_fresh() {
        let dev = crate::train::cpu_device();
        let l = loader(2);
        let a = l.batch(0, 2, &dev).unwrap();
        let b = l.batch(0, 2, &dev).unwrap();
        assert_eq!(values(a.occluded.clone()), values(b.occluded));
        // Step 1 revisits the same two samples (len 2) with new occlusions.
        let c = l.batch(1, 2, &dev).unwrap();
        let sum = |t: Tensor<4>| values(t).iter().sum::<f32>();
        assert_eq!(
            sum(a.clean.clone()),
            sum(c.clean.clone()),
            "same samples, other order"
        );
        assert_ne!(values(a.hidden.clone()), values(c.hidden));
        assert_eq!(a.texture.dims(), [2, TEXTURE_CHANNELS, 32, 32]);
        // Hidden pixels are subject pixels (subject mode), and the occluded image is zero
        // there (deleted: 0 in u8 is -1 after normalisation).
        let (hidden, mask, occ) = (values(a.hidden), values(a.mask), values(a.occluded));
        let n = 32 * 32;
        for i in 0..2 * n {
            if hidden[i] == 1.0 {
                assert_eq!(mask[i], 1.0);
                let (b, p) = (i / n, i % n);
                for ch in 0..3 {
                    assert_eq!(occ[b * 3 * n + ch * n + p], -1.0);
                }
            }
        }
    }

    /// The batched hole input equals the shared crate's per-frame one (what the device
    /// computes), for every mode, on an occluded sample.
    #[test]
    fn hole_input_matches_the_shared_preprocessing() {
        let dev = crate::train::cpu_device();
        let l = loader(2).with_telea(true);
        let batch = l.batch(0, 1, &dev).unwrap();
        let norm = Normalisation::default();
        let occluded = ImageU8::from_chw(32, 32, &values(batch.occluded.clone()), &norm).unwrap();
        let hidden = values(batch.hidden.clone());
        let mask = Mask::from_fn(32, 32, |i| hidden[i] > 0.5);
        assert!(mask.count() > 0);
        for hole in [HoleInput::Absent, HoleInput::Zeroed, HoleInput::Telea] {
            let mut want = vec![0.0; hole.image_channels() * 32 * 32];
            let mut filled = unveil_shared::hole::HoleScratch::new();
            unveil_shared::hole::write_hole_input(
                &occluded,
                Some(&mask),
                hole,
                &norm,
                &mut filled,
                &mut want,
            )
            .unwrap();
            let got = values(batch.hole_input(hole).unwrap());
            assert_eq!(got.len(), want.len(), "{hole:?}");
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-6, "{hole:?}: {worst}");
        }
        assert!(matches!(
            loader(2)
                .batch(0, 1, &dev)
                .unwrap()
                .hole_input(HoleInput::Telea),
            Err(DataError::NoTelea)
        ));
    }

    #[test]
    fn bad_settings_are_errors() {
        let source = SampleSource::Generated {
            cfg: SynthConfig::new(32).unwrap(),
            seed: 4,
            count: 0,
        };
        assert!(matches!(
            Loader::new(source, OcclusionSpec::new(OcclusionMode::Rectangles), 1),
            Err(DataError::Empty)
        ));
        let l = loader(1);
        assert!(matches!(
            l.batch(0, 0, &crate::train::cpu_device()),
            Err(DataError::BatchSize)
        ));
    }
}
