//! Activation ranges for static int8 quantisation, observed by running the f32 graph with
//! every convolution's input and output exposed ([`super::emit::Numerics::Probe`]) in tract.

use unveil_shared::manifest::Calibration;

use super::quantise::{ConvRanges, Range};
use super::runtime::Runner;
use super::ExportError;

/// Running statistics of one tensor over the calibration samples.
#[derive(Debug, Clone)]
pub struct Observer {
    method: Calibration,
    min: f32,
    max: f32,
    /// Sum over samples of the per-sample percentile of |x| (percentile method only).
    percentile_sum: f64,
    samples: usize,
    scratch: Vec<f32>,
}

impl Observer {
    pub fn new(method: Calibration) -> Self {
        Self {
            method,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            percentile_sum: 0.0,
            samples: 0,
            scratch: Vec::new(),
        }
    }

    /// Record one sample's values (NaNs are ignored).
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        if let Calibration::Percentile(p) = self.method {
            self.scratch.clear();
            self.scratch
                .extend(values.iter().filter(|v| !v.is_nan()).map(|v| v.abs()));
            if !self.scratch.is_empty() {
                let n = self.scratch.len();
                let rank = ((f64::from(p.clamp(0.0, 100.0)) / 100.0 * n as f64).ceil() as usize)
                    .clamp(1, n);
                let (_, v, _) = self
                    .scratch
                    .select_nth_unstable_by(rank - 1, f32::total_cmp);
                self.percentile_sum += f64::from(*v);
            }
        }
        self.samples += 1;
    }

    /// The range to quantise to: `[min, max]`, or for the percentile method the mean
    /// over samples of each sample's percentile `p` of |x|, clipped to `[min, max]` (so
    /// a one-signed tensor keeps its sign).
    pub fn range(&self) -> Range {
        if self.samples == 0 || self.min > self.max {
            return Range { min: 0.0, max: 0.0 };
        }
        match self.method {
            Calibration::MinMax => Range {
                min: self.min,
                max: self.max,
            },
            Calibration::Percentile(_) => {
                let p = (self.percentile_sum / self.samples as f64) as f32;
                Range {
                    min: self.min.max(-p),
                    max: self.max.min(p),
                }
            }
        }
    }
}

/// Run `probe_graph` on every input set of `samples` and return each convolution's input
/// and output ranges, in emission order. `probe_outputs[n]` = the graph-output indices of
/// convolution n's input and output. `on_outputs` sees every sample's graph outputs (to
/// keep a contract output, and for progress).
pub fn collect_ranges<I>(
    probe_graph: &Runner,
    probe_outputs: &[(usize, usize)],
    samples: I,
    method: Calibration,
    mut on_outputs: impl FnMut(Vec<Vec<f32>>),
) -> Result<Vec<ConvRanges>, ExportError>
where
    I: IntoIterator<Item = Result<Vec<Vec<f32>>, ExportError>>,
{
    let mut observers: Vec<(Observer, Observer)> = probe_outputs
        .iter()
        .map(|_| (Observer::new(method), Observer::new(method)))
        .collect();
    let mut count = 0usize;
    for inputs in samples {
        let inputs = inputs?;
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let outputs = probe_graph.run(&refs)?;
        for ((input, output), obs) in probe_outputs.iter().zip(&mut observers) {
            let get = |i: usize| {
                outputs.get(i).ok_or_else(|| {
                    ExportError::Run(format!(
                        "probe output {i} missing ({} outputs)",
                        outputs.len()
                    ))
                })
            };
            obs.0.observe(get(*input)?);
            obs.1.observe(get(*output)?);
        }
        count += 1;
        on_outputs(outputs);
    }
    if count == 0 {
        return Err(ExportError::NoCalibrationSamples);
    }
    Ok(observers
        .iter()
        .map(|(i, o)| ConvRanges {
            input: i.range(),
            output: o.range(),
        })
        .collect())
}

/// `count` occluded calibration images (CHW, normalised to [-1, 1]) from `source`, hidden
/// the method's way (`subject-noise`) from `seed`, as the training loader makes them, in
/// the graphs' image-input form for `hole`.
pub fn calibration_images(
    source: crate::data::SampleSource,
    count: usize,
    seed: u64,
    hole: unveil_shared::hole::HoleInput,
    mut on_sample: impl FnMut(),
) -> Result<Vec<Vec<f32>>, ExportError> {
    use unveil_shared::occlusion::{Fill, OcclusionMode, OcclusionSpec};
    let device = crate::train::cpu_device();
    let loader = crate::data::Loader::new(
        source,
        OcclusionSpec::new(OcclusionMode::Subject { fill: Fill::Noise }),
        seed,
    )?
    .with_telea(hole == unveil_shared::hole::HoleInput::Telea);
    (0..count)
        .map(|k| {
            let batch = loader.batch(k, 1, &device)?;
            let image = batch
                .hole_input(hole)?
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| ExportError::Input(format!("{e:?}")))?;
            on_sample();
            Ok(image)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_tracks_extremes_over_samples() {
        let mut o = Observer::new(Calibration::MinMax);
        o.observe(&[0.5, -2.0, 1.0]);
        o.observe(&[3.0, f32::NAN, 0.0]);
        assert_eq!(
            o.range(),
            Range {
                min: -2.0,
                max: 3.0
            }
        );
    }

    #[test]
    fn percentile_ignores_rare_outliers_and_keeps_sign() {
        let mut o = Observer::new(Calibration::Percentile(99.0));
        // 1000 values in [0, 0.999], one outlier of 100: the 99th percentile of |x| is 0.989.
        let mut v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        v.push(100.0);
        o.observe(&v);
        let r = o.range();
        assert_eq!(r.min, 0.0, "a non-negative tensor stays non-negative");
        assert!((r.max - 0.990).abs() < 2e-3, "{r:?}");
    }
}
