//! The restoration pipeline: frame (+ hole mask) → G1 → condition → G2 → restored frame.
//!
//! A model that reads the hole (manifest `hole` other than `Absent`) gets the frame with
//! its hidden pixels pre-filled plus the hole plane, built by the shared
//! [`write_hole_input`], exactly as in training; without a mask nothing is hidden.
//!
//! All buffers (the input tensor, the silhouette condition, the output image) are
//! allocated once in [`Pipeline::new`] and reused, so the code around tract allocates
//! nothing per frame. tract itself allocates each operator's output tensor on every run;
//! [`FrameReport::allocations`] counts both sides per stage (see `alloc_count`).
//!
//! Preprocessing is the shared crate's ([`ImageU8::write_chw`], [`ImageU8::read_chw`]), the
//! same code the trainer used, so the device cannot drift from the host's normalisation.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::SimpleState;
use unveil_shared::hole::{write_hole_input, HoleInput, HoleScratch};
use unveil_shared::manifest::Condition;
use unveil_shared::texture::silhouette_plane;
use unveil_shared::{ImageError, ImageU8, Mask, Normalisation};

use crate::alloc_count;
use crate::model::{Model, Plan};

/// Names of the timed stages, in the order of [`FrameReport`]'s arrays.
pub const STAGES: [&str; 5] = ["preprocess", "stage1", "condition", "stage2", "composite"];

/// Why a frame could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("frame: {0}")]
    Frame(#[from] ImageError),
    #[error("mask is {actual_w}x{actual_h}, frame is {width}x{height}")]
    MaskSize {
        width: usize,
        height: usize,
        actual_w: usize,
        actual_h: usize,
    },
    #[error("inference failed in {stage}: {reason}")]
    Inference { stage: &'static str, reason: String },
}

/// Per-stage cost of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameReport {
    /// Wall time per stage in microseconds, indexed like [`STAGES`].
    pub micros: [u32; 5],
    /// Heap allocations per stage (zero unless `alloc_count::CountingAlloc` is installed).
    pub allocations: [u64; 5],
}

impl FrameReport {
    pub fn total_micros(&self) -> u32 {
        self.micros.iter().sum()
    }
}

/// One restoration pipeline with its pre-allocated buffers. Not `Sync`: one per thread.
pub struct Pipeline {
    model: Arc<Model>,
    stage1: TypedSimpleState,
    stage2: TypedSimpleState,
    /// `[1, C, H, W]` (`C` = the manifest's image planes); shared with tract by reference
    /// count during a run, exclusive after.
    image: Arc<Tensor>,
    /// The hole pre-fill's buffers (Telea models; sized on the first masked frame).
    hole: HoleScratch,
    /// G1's last texture map, kept for callers that show it.
    texture: Option<TValue>,
    /// `[1, 1, H, W]` silhouette for [`Condition::Silhouette`].
    silhouette: Option<Arc<Tensor>>,
    norm: Normalisation,
    output: ImageU8,
    /// The occlusion detector, when the model folder ships one (blind mode).
    detector: Option<Detector>,
}

/// The occlusion detector's tract state and buffers (see [`Pipeline::detect`]).
struct Detector {
    state: TypedSimpleState,
    /// `[1, 3, H, W]` at the model's size.
    input: Arc<Tensor>,
    /// The frame resized to the model's size.
    small: ImageU8,
    /// The thresholded logits at the model's size.
    small_mask: Mask,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("model", &self.model.dir)
            .finish_non_exhaustive()
    }
}

fn inference(stage: &'static str) -> impl Fn(TractError) -> PipelineError {
    move |e| PipelineError::Inference {
        stage,
        reason: format!("{e:#}"),
    }
}

fn spawn(plan: &Plan, stage: &'static str) -> Result<TypedSimpleState, PipelineError> {
    SimpleState::new(plan).map_err(inference(stage))
}

impl Pipeline {
    pub fn new(model: Arc<Model>) -> Result<Self, PipelineError> {
        let (w, h) = model.size();
        let norm = model.manifest.normalisation;
        let silhouette = (model.manifest.condition == Condition::Silhouette)
            .then(|| Arc::new(Tensor::zero::<f32>(&[1, 1, h, w]).unwrap_or_default()));
        let detector = match &model.detector {
            Some(plan) => Some(Detector {
                state: spawn(plan, "detector")?,
                input: Arc::new(Tensor::zero::<f32>(&[1, 3, h, w]).map_err(inference("setup"))?),
                small: ImageU8::new(w, h, 3),
                small_mask: Mask::new(w, h),
            }),
            None => None,
        };
        Ok(Self {
            detector,
            stage1: spawn(&model.stage1, "stage1")?,
            stage2: spawn(&model.stage2, "stage2")?,
            image: Arc::new(
                Tensor::zero::<f32>(&[1, model.manifest.hole.image_channels(), h, w])
                    .map_err(inference("setup"))?,
            ),
            hole: HoleScratch::new(),
            texture: None,
            silhouette,
            norm,
            output: ImageU8::new(w, h, 3),
            model,
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Drop all per-run state and start from fresh tract states (the watchdog's reset).
    pub fn reset(&mut self) -> Result<(), PipelineError> {
        *self = Self::new(self.model.clone())?;
        Ok(())
    }

    /// The last restored frame (RGB8, model size).
    pub fn output(&self) -> &ImageU8 {
        &self.output
    }

    /// G1's texture map of the last frame (`[6, H, W]` planes, shared layout), if the
    /// model's condition needed G1.
    pub fn texture(&self) -> Option<&[f32]> {
        self.texture.as_deref().and_then(|t| floats(t).ok())
    }

    /// Whether the model folder ships an occlusion detector (blind restoration).
    pub fn can_detect(&self) -> bool {
        self.detector.is_some()
    }

    /// Blind mode: the occlusion detector's hole mask of `frame` (RGB, any size) into
    /// `mask`, at the frame's size. The frame is resized to the model's input, the
    /// detector's logits thresholded there (the shared [`Mask::set_from_logits`]) and the
    /// mask scaled back covering (a pixel is hidden wherever its model-size pixel is).
    /// A model without a detector leaves `mask` empty: nothing is known to be hidden.
    pub fn detect(&mut self, frame: &ImageU8, mask: &mut Mask) -> Result<(), PipelineError> {
        if frame.channels != 3 {
            return Err(ImageError::Channels(frame.channels).into());
        }
        let expected = frame.width * frame.height * 3;
        if frame.data.len() != expected {
            return Err(ImageError::BufferSize {
                expected,
                actual: frame.data.len(),
            }
            .into());
        }
        (mask.width, mask.height) = (frame.width, frame.height);
        let Some(d) = self.detector.as_mut() else {
            mask.data.clear();
            mask.data.resize(frame.width * frame.height, 0);
            return Ok(());
        };
        frame.resize_bilinear_into(&mut d.small)?;
        let (small, norm) = (&d.small, &self.norm);
        fill_input(&mut d.input, "detector", |chw| {
            small.write_chw(norm, chw);
            Ok(())
        })?;
        let outputs = d
            .state
            .run(tvec![TValue::from_const(d.input.clone())])
            .map_err(inference("detector"))?;
        let logits = outputs.first().ok_or_else(|| PipelineError::Inference {
            stage: "detector",
            reason: "no outputs".into(),
        })?;
        d.small_mask
            .set_from_logits(floats(logits).map_err(inference("detector"))?)?;
        drop(outputs);
        d.small_mask.resize_covering_into(mask)?;
        Ok(())
    }

    /// Restore `frame` (model size; grey, RGB or RGBA). With `mask`, only pixels where the
    /// mask is set take the restored value; the rest keep the input's.
    pub fn restore(
        &mut self,
        frame: &ImageU8,
        mask: Option<&Mask>,
    ) -> Result<FrameReport, PipelineError> {
        let (w, h) = self.model.size();
        frame.expect_shape(w, h, frame.channels)?;
        if !matches!(frame.channels, 1 | 3 | 4) {
            return Err(ImageError::Channels(frame.channels).into());
        }
        // The fields are public: a hand-built frame may not hold what its shape says.
        if frame.data.len() != w * h * frame.channels {
            return Err(ImageError::BufferSize {
                expected: w * h * frame.channels,
                actual: frame.data.len(),
            }
            .into());
        }
        if let Some(m) = mask {
            if m.width != w || m.height != h || m.data.len() != w * h {
                return Err(PipelineError::MaskSize {
                    width: w,
                    height: h,
                    actual_w: m.width,
                    actual_h: m.height,
                });
            }
        }

        let mut report = FrameReport::default();
        let mut clock = StageClock::start();

        // Preprocess straight into the input tensor (exclusive again after the last run).
        let (hole, norm, scratch) = (self.model.manifest.hole, &self.norm, &mut self.hole);
        fill_input(&mut self.image, "preprocess", |chw| {
            Ok(write_hole_input(frame, mask, hole, norm, scratch, chw)?)
        })?;
        clock.lap(&mut report, 0);

        let outputs = self.run_networks(&mut report, &mut clock)?;

        // Back to RGB8, then keep the input wherever the mask says so.
        let restored = outputs.first().ok_or_else(|| PipelineError::Inference {
            stage: "stage2",
            reason: "no outputs".into(),
        })?;
        let restored = floats(restored).map_err(inference("composite"))?;
        self.output.read_chw(restored, &self.norm)?;
        drop(outputs);
        match mask {
            Some(mask) => keep_unmasked(frame, mask, &mut self.output),
            // A model that reads the hole was told nothing is hidden: do no harm.
            None if self.model.manifest.hole != HoleInput::Absent => {
                keep_all(frame, &mut self.output)
            }
            None => {}
        }
        clock.lap(&mut report, 4);
        Ok(report)
    }

    /// G1, the condition and G2 on the input tensor as preprocessing left it: G2's
    /// outputs in the contract's order ([`crate::model::STAGE2_OUTPUTS`]).
    fn run_networks(
        &mut self,
        report: &mut FrameReport,
        clock: &mut StageClock,
    ) -> Result<TVec<TValue>, PipelineError> {
        // G1.
        let texture = if self.model.manifest.condition == Condition::None {
            None
        } else {
            let input = TValue::from_const(self.image.clone());
            let mut out = self.stage1.run(tvec![input]).map_err(inference("stage1"))?;
            Some(out.swap_remove(0))
        };
        clock.lap(report, 1);

        // Condition: G1's texture as is, or its silhouette (the shared derivation: part
        // channel above 0), written into the pre-allocated plane.
        self.texture = texture.clone();
        let condition = match (self.model.manifest.condition, texture) {
            (Condition::Silhouette, Some(texture)) => {
                let sil = self
                    .silhouette
                    .as_mut()
                    .and_then(Arc::get_mut)
                    .ok_or_else(|| PipelineError::Inference {
                        stage: "condition",
                        reason: "silhouette tensor missing or shared".into(),
                    })?;
                let tex = floats(&texture).map_err(inference("condition"))?;
                let mut view = sil.try_as_plain_ram_mut().map_err(inference("condition"))?;
                let out = view.as_slice_mut::<f32>().map_err(inference("condition"))?;
                silhouette_plane(tex, out);
                self.silhouette.clone().map(TValue::from_const)
            }
            (_, texture) => texture,
        };
        clock.lap(report, 2);

        // G2; its inputs in the graph's own order.
        let image = TValue::from_const(self.image.clone());
        let inputs = match (condition, self.model.stage2_condition_input) {
            (Some(c), Some(0)) => tvec![c, image],
            (Some(c), Some(_)) => tvec![image, c],
            _ => tvec![image],
        };
        let outputs = self.stage2.run(inputs).map_err(inference("stage2"))?;
        clock.lap(report, 3);
        Ok(outputs)
    }

    /// The networks alone on an input already prepared (`[C, H, W]` planes, normalised,
    /// with the hole plane when the model reads the hole): G1's texture map (empty for a
    /// model without a condition) and G2's `restored`, `foreground`, `background` and
    /// `alpha`, flattened. The host compares these with burn, through this one device
    /// path; frames go through [`restore`](Self::restore). Allocates its results.
    pub fn infer(&mut self, image: &[f32]) -> Result<(Vec<f32>, [Vec<f32>; 4]), PipelineError> {
        fill_input(&mut self.image, "preprocess", |chw| {
            if chw.len() != image.len() {
                return Err(PipelineError::Frame(ImageError::BufferSize {
                    expected: chw.len(),
                    actual: image.len(),
                }));
            }
            chw.copy_from_slice(image);
            Ok(())
        })?;
        let (mut report, mut clock) = (FrameReport::default(), StageClock::start());
        let outputs = self.run_networks(&mut report, &mut clock)?;
        let flat = |t: &TValue| -> Result<Vec<f32>, PipelineError> {
            Ok(floats(t).map_err(inference("stage2"))?.to_vec())
        };
        let mut planes: [Vec<f32>; 4] = Default::default();
        for (plane, t) in planes.iter_mut().zip(outputs.iter()) {
            *plane = flat(t)?;
        }
        drop(outputs);
        Ok((
            self.texture().map(<[f32]>::to_vec).unwrap_or_default(),
            planes,
        ))
    }
}

/// Let `fill` write the elements of the f32 input tensor `t`, which must be exclusive
/// again (tract holds no reference to it between runs).
fn fill_input(
    t: &mut Arc<Tensor>,
    stage: &'static str,
    fill: impl FnOnce(&mut [f32]) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let tensor = Arc::get_mut(t).ok_or_else(|| PipelineError::Inference {
        stage,
        reason: "input tensor still shared".into(),
    })?;
    let mut view = tensor.try_as_plain_ram_mut().map_err(inference(stage))?;
    fill(view.as_slice_mut::<f32>().map_err(inference(stage))?)
}

/// A plain f32 tensor's elements.
pub fn floats(t: &Tensor) -> TractResult<&[f32]> {
    t.try_as_plain_ram()?.as_slice::<f32>()
}

/// Copy every input pixel (as RGB) into `out` (RGB, same size).
pub fn keep_all(frame: &ImageU8, out: &mut ImageU8) {
    let c = frame.channels;
    for (dst, src) in out.data.chunks_exact_mut(3).zip(frame.data.chunks_exact(c)) {
        if c == 1 {
            dst.fill(src[0]);
        } else {
            dst.copy_from_slice(&src[..3]);
        }
    }
}

/// Copy the input's pixels (as RGB) back into `out` (RGB, same size) wherever `mask` is
/// not set.
pub fn keep_unmasked(frame: &ImageU8, mask: &Mask, out: &mut ImageU8) {
    let c = frame.channels;
    for ((dst, src), &m) in out
        .data
        .chunks_exact_mut(3)
        .zip(frame.data.chunks_exact(c))
        .zip(&mask.data)
    {
        if m == 0 {
            if c == 1 {
                dst.fill(src[0]);
            } else {
                dst.copy_from_slice(&src[..3]);
            }
        }
    }
}

/// Lap timer that also attributes allocations to stages.
struct StageClock {
    at: Instant,
    allocs: u64,
}

impl StageClock {
    fn start() -> Self {
        Self {
            at: Instant::now(),
            allocs: alloc_count::allocations(),
        }
    }

    fn lap(&mut self, report: &mut FrameReport, stage: usize) {
        let now = Instant::now();
        let allocs = alloc_count::allocations();
        let us = now.duration_since(self.at).as_micros();
        report.micros[stage] = u32::try_from(us).unwrap_or(u32::MAX);
        report.allocations[stage] = allocs - self.allocs;
        self.at = now;
        self.allocs = allocs;
    }
}
