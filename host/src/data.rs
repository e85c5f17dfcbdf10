//! Training data: samples from a data-set folder (or rendered on the fly), occluded afresh
//! on every visit, batched into tensors.
//!
//! The stream is a pure function of `(seed, step)`: sample `k = step · batch + j` is
//! position `k mod len` of epoch `k / len`'s seeded shuffle, occluded with seed
//! `derive(seed, k)`. A resumed run therefore needs only the step count to continue the
//! exact stream an uninterrupted run would have seen.

use std::sync::Mutex;

use burn::prelude::*;
use rand::Rng as _;
use rayon::prelude::*;
use unveil_shared::occlusion::{occlude, OcclusionError, OcclusionSpec};
use unveil_shared::texture::TEXTURE_CHANNELS;
use unveil_shared::{rng, ImageError, Mask, Normalisation};

use crate::dataset::{Dataset, DatasetError};
use crate::synth::{render_sample, Sample, SynthConfig, SynthError};
use crate::train::{Batch, BatchSource, TrainError};

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
    #[error("the data source holds no samples")]
    Empty,
    #[error("batch size must be at least 1")]
    BatchSize,
}

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
}

impl SampleSource {
    pub fn len(&self) -> usize {
        match self {
            Self::Folder(d) => d.len(),
            Self::Generated { count, .. } => *count,
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
        }
    }

    pub fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(match self {
            Self::Folder(d) => d.get(index)?,
            Self::Generated { cfg, seed, .. } => render_sample(cfg, *seed, index as u64)?,
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
}

/// One sample as planar buffers, before batching.
struct Planes {
    clean: Vec<f32>,
    occluded: Vec<f32>,
    texture: Vec<f32>,
    mask: Vec<f32>,
    hidden: Vec<f32>,
    background: Vec<f32>,
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
            shuffle: Mutex::new(None),
        })
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

    fn planes(&self, k: u64) -> Result<Planes, DataError> {
        let sample = self.source.get(self.index_at(k))?;
        let norm = Normalisation::default();
        let occ = occlude(
            &sample.image,
            Some(&sample.mask),
            &self.occlusion,
            rng::derive(self.seed, k),
        )?;
        Ok(Planes {
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
        if batch_size == 0 {
            return Err(DataError::BatchSize);
        }
        let first = step as u64 * batch_size as u64;
        let planes = (0..batch_size as u64)
            .into_par_iter()
            .map(|j| self.planes(first + j))
            .collect::<Result<Vec<_>, _>>()?;
        let s = self.source.size();
        let stack = |channels: usize, pick: &dyn Fn(&Planes) -> &Vec<f32>| {
            let mut data = Vec::with_capacity(batch_size * channels * s * s);
            for p in &planes {
                data.extend_from_slice(pick(p));
            }
            Tensor::<4>::from_data(TensorData::new(data, [batch_size, channels, s, s]), device)
        };
        Ok(SampleBatch {
            clean: stack(3, &|p| &p.clean),
            occluded: stack(3, &|p| &p.occluded),
            texture: stack(TEXTURE_CHANNELS, &|p| &p.texture),
            mask: stack(1, &|p| &p.mask),
            hidden: stack(1, &|p| &p.hidden),
            background: stack(3, &|p| &p.background),
        })
    }
}

/// Which network a stream of batches trains: picks input and target from a [`SampleBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Extraction network: clean image → texture map.
    Extractor,
    /// Silhouette network S: clean image → silhouette.
    Silhouette,
    /// G1: occluded image → texture map.
    Stage1,
}

impl Task {
    pub fn pick(self, b: SampleBatch) -> Batch {
        match self {
            Self::Extractor => Batch {
                input: b.clean,
                target: b.texture,
            },
            Self::Silhouette => Batch {
                input: b.clean,
                target: b.mask,
            },
            Self::Stage1 => Batch {
                input: b.occluded,
                target: b.texture,
            },
        }
    }
}

/// A [`Loader`] read in order from step `step` on, for one [`Task`].
pub struct TaskStream<'a> {
    pub loader: &'a Loader,
    pub task: Task,
    pub step: usize,
}

impl BatchSource for TaskStream<'_> {
    fn next_batch(&mut self, batch_size: usize, device: &Device) -> Result<Batch, TrainError> {
        let b = self
            .loader
            .batch(self.step, batch_size, device)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        self.step += 1;
        Ok(self.task.pick(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unveil_shared::occlusion::OcclusionMode;

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
