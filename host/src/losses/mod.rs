//! Losses and distances: stage 1 (G1), the silhouette network, and stage 2 (G2 and D).
//! L1–L5 against the method's paragraphs: `docs/method.md`, "The losses".
//!
//! ## Which "L2" is which
//!
//! The method (KR 10-2023-0036213) writes the stage-1 loss as `L1 = ||u − û||₂`. Two readings exist, and both
//! are here with explicit names:
//!
//! - [`l2_norm_loss`]: the literal norm. Per sample, `sqrt(Σ (a − b)²)` over every
//!   element of the sample; then the mean over the batch. Used as a *reported metric*
//!   (see [`texture_l2_distance`]).
//! - [`mse`] / [`masked_mse`]: the squared L2 distance averaged per element,
//!   `Σ (a − b)² / N`. This is what the stage-1 *training* loss uses, because
//!   1. it has the same minimiser per sample as the norm (`sqrt` is monotone) but a
//!      gradient that shrinks as the error does, instead of a constant-magnitude gradient
//!      that is undefined at zero;
//!   2. it does not scale with the image size (`||·||₂` grows as `sqrt(H·W)`), so the loss
//!      weights in [`Stage1LossConfig`] mean the same at 64x64 and 128x128;
//!   3. it is the usual meaning of "L2 loss" in image-to-image training.
//!
//! ## The stage-1 loss ([`Stage1LossConfig::forward`])
//!
//! The ground truth `u` is the texture-map tensor `[B, 6, H, W]` of the shared layout
//! (`I/24, U, V, R, G, B`). The part index is *categorical*: an L2 distance on `I/24`
//! would call part 12 "closer" to part 13 than to part 1, which means nothing. So:
//!
//! `total = w_part · CE(part_logits, I) + w_uv · MSE_mask(uv, UV) + w_albedo · MSE_mask(albedo, RGB)`
//!
//! - `CE`: cross-entropy over the 25 classes, a weighted mean over *all* pixels
//!   (background is a class: G1 must learn the amodal silhouette) in which each subject
//!   pixel counts `subject_weight` times. The subject covers ~10 % of a frame, so with
//!   equal weights "background everywhere, a blob of any part on the subject" is already a
//!   low loss and the 24 part classes barely move; weighting the subject up makes the
//!   parts, not the outline, what the loss is about;
//! - `MSE_mask`: squared error averaged over the subject pixels of the *ground truth*
//!   (`I > 0`) and the channels; U, V and albedo are undefined on background.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};

use burn::tensor::module::unfold4d;
use burn::tensor::ops::UnfoldOptions;
use unveil_shared::patches::{nearest_background_windows, PatchError, WindowGrid};
use unveil_shared::Mask;

use crate::nets::silhouette::Silhouette;
use crate::nets::stage1::{Stage1Output, CH_ALBEDO, CH_I, CH_UV, NUM_PARTS, TEXTURE_CHANNELS};

/// Inputs of a loss whose shapes do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LossShapeError {
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    Mismatch {
        what: &'static str,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("background-patch windows: {0}")]
    Patch(#[from] PatchError),
    #[error("cannot read the subject masks back: {0}")]
    Read(String),
}

fn expect_dims(
    what: &'static str,
    expected: &[usize],
    actual: &[usize],
) -> Result<(), LossShapeError> {
    if expected == actual {
        Ok(())
    } else {
        Err(LossShapeError::Mismatch {
            what,
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        })
    }
}

/// The true L2 norm of the difference, per sample, averaged over the batch:
/// `mean_b sqrt(Σ_{c,h,w} (a − b)²)`. Shapes `[B, ...]` (equal); returns `[1]`.
///
/// A `1e-12` inside the square root keeps the gradient finite when `a == b`
/// (it shifts the value by at most `1e-6`).
pub fn l2_norm_loss<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    let diff = a.sub(b);
    let dims = diff.dims();
    let batch = dims[0];
    let per_sample_len: usize = dims[1..].iter().product();
    let per_sample = diff.square().reshape([batch, per_sample_len]).sum_dim(1); // [B, 1]
    per_sample.add_scalar(1e-12).sqrt().mean()
}

/// Mean squared error over all elements: `Σ (a − b)² / N`. Returns `[1]`.
pub fn mse<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    a.sub(b).square().mean()
}

/// Mean squared error over the pixels where `mask` is 1.
///
/// `a`, `b`: `[B, C, H, W]`; `mask`: `[B, 1, H, W]` with values in {0, 1} (broadcast over
/// channels). Returns `Σ mask·(a − b)² / (C · Σ mask)`, i.e. the mean over the masked
/// elements; 0 when the mask is empty.
pub fn masked_mse(a: Tensor<4>, b: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    let channels = a.dims()[1] as f32;
    let sq = a.sub(b).square().mul(mask.clone());
    let count = mask.sum().mul_scalar(channels).clamp_min(1.0);
    sq.sum().div(count)
}

/// Floor added to each image's hidden MSE in [`hidden_log_mse`] (in the [-1, 1] range's
/// units): a perfect image then scores ln(1e-4) instead of −∞, a cap near 46 dB PSNR.
pub const HIDDEN_LOG_FLOOR: f32 = 1e-4;

/// Mean over the images that have a hidden pixel of `ln(mse_i + HIDDEN_LOG_FLOOR)`, where
/// `mse_i` is [`masked_mse`] of image `i` alone (0 when no image has one).
///
/// Why: the score we report is the mean over images of each one's hidden PSNR, which is
/// `−(10 / ln 10) · ln(mse_i)` plus a constant. [`masked_mse`] pools all hidden pixels of a
/// batch, so an image with a thin text hole (a few hundred pixels) weighs almost nothing
/// beside a large one; in this term every image counts once, and in proportion to how
/// much its own PSNR moves. `a`, `b`: `[B, C, H, W]`; `mask`: `[B, 1, H, W]` 0/1.
pub fn hidden_log_mse(a: Tensor<4>, b: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    let [batch, channels, _, _] = a.dims();
    let sq = a.sub(b).square().mul(mask.clone()); // [B, C, H, W]
    let per_image = sq.reshape([batch as i32, -1]).sum_dim(1); // [B, 1]
    let pixels = mask.reshape([batch as i32, -1]).sum_dim(1); // [B, 1]
    let has = pixels.clone().greater_elem(0.0).float(); // [B, 1]
    let mse = per_image.div(pixels.mul_scalar(channels as f32).clamp_min(1.0));
    let logs = mse.add_scalar(HIDDEN_LOG_FLOOR).log().mul(has.clone());
    logs.sum().div(has.sum().clamp_min(1.0))
}

/// Per-pixel cross-entropy with logits, averaged over all pixels.
///
/// `logits`: `[B, K, H, W]`; `targets`: `[B, H, W]`, class indices in `0..K` (an index out
/// of range panics inside burn; build targets with [`part_targets`], which clamps).
/// Returns `[1]`: `mean_{b,h,w} −log softmax(logits)[targets]`.
pub fn cross_entropy_2d(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    pixel_cross_entropy(logits, targets).mean()
}

/// Per-pixel cross-entropy with logits: `[B, K, H, W]`, `[B, H, W]` → `[B, 1, H, W]`.
fn pixel_cross_entropy(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<4> {
    let log_p = log_softmax(logits, 1); // [B, K, H, W]
    log_p.gather(1, targets.unsqueeze_dim::<4>(1)).neg()
}

/// [`cross_entropy_2d`] as a weighted mean: `Σ w·ce / Σ w` with `weights` `[B, 1, H, W]`
/// (non-negative; an all-zero weight map gives 0).
pub fn weighted_cross_entropy_2d(
    logits: Tensor<4>,
    targets: Tensor<3, Int>,
    weights: Tensor<4>,
) -> Tensor<1> {
    let total = weights.clone().sum().clamp_min(1e-12);
    pixel_cross_entropy(logits, targets)
        .mul(weights)
        .sum()
        .div(total)
}

/// Binary cross-entropy with logits, averaged over all elements, in the numerically stable
/// form `max(x, 0) − x·t + log(1 + exp(−|x|))`. `targets` in [0, 1]. Returns `[1]`.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    softplus(logits.clone()).sub(logits.mul(targets)).mean()
}

/// `ln(1 + eˣ)` in the stable form `max(x, 0) + ln(1 + e^−|x|)`: the BCE of a logit
/// whose target is 0.
fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let tail = x.clone().abs().neg().exp().log1p();
    relu(x).add(tail)
}

/// Share of each image's pixels that [`hard_negative_bce`] reads: blind restoration must
/// rewrite at most 1 % of an intact frame, so the 1 % most confident false alarms are the
/// ones that decide it.
pub const HARD_NEGATIVE_SHARE: f64 = 0.01;

/// Hard-negative mining for a mask network on intact images: for each image whose
/// target is empty, the BCE (target 0) of its `k` highest logits; the mean over those
/// images' picks, 0 when the batch has none. `logits`, `targets` `[B, C, H, W]`; returns
/// `[1]`.
///
/// Plain BCE averages a detector's rare, confident false alarms (a striped shirt read
/// as an occluder) away among millions of easy pixels; this term gives each intact
/// image's worst `k` pixels the weight of a whole batch. Occluded images are left out:
/// their hardest negatives are the pixels just outside the occluder, and pushing those
/// down shrinks every detection (tried: IoU fell from 0.6 to 0.0–0.3). `k` is clamped to
/// 1..=C·H·W.
pub fn hard_negative_bce(logits: Tensor<4>, targets: Tensor<4>, k: usize) -> Tensor<1> {
    let [b, c, h, w] = logits.dims();
    let n = c * h * w;
    let k = k.clamp(1, n);
    // [B, 1]: 1 for an image with no positive pixel.
    let intact = targets.reshape([b, n]).max_dim(1).lower_elem(0.5).float();
    let count = intact.clone().sum().clamp_min(1.0);
    let per_image = softplus(logits.reshape([b, n]).topk(k, 1)).mean_dim(1); // [B, 1]
    per_image.mul(intact).sum().div(count)
}

/// Part-class targets `[B, H, W]` (0..=24) from a texture-map tensor `[B, 6, H, W]`:
/// `round(I/24 · 24)`, clamped to the valid range.
pub fn part_targets(texture: Tensor<4>) -> Tensor<3, Int> {
    texture
        .narrow(1, CH_I, 1)
        .mul_scalar(NUM_PARTS as f32)
        .round()
        .clamp(0.0, NUM_PARTS as f32)
        .int()
        .squeeze_dim::<3>(1)
}

/// Ground-truth subject mask `[B, 1, H, W]` (1 where the part index is > 0) of a
/// texture-map tensor.
pub fn subject_mask(texture: Tensor<4>) -> Tensor<4> {
    texture
        .narrow(1, CH_I, 1)
        .greater_elem(0.5 / NUM_PARTS as f32)
        .float()
}

/// The method's literal `||u − û||₂` on the 6-channel texture-map tensors
/// (`[B, 6, H, W]` each), per sample, averaged over the batch: a metric for reports, not the
/// training loss (see the module docs).
pub fn texture_l2_distance(predicted: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    l2_norm_loss(predicted, target)
}

/// Weights of the stage-1 loss terms.
#[derive(Config, Debug)]
pub struct Stage1LossConfig {
    /// Weight of the part cross-entropy.
    #[config(default = 1.0)]
    pub part_weight: f32,
    /// How many times a ground-truth subject pixel counts in the part cross-entropy,
    /// against 1 for a background pixel (see the module docs).
    #[config(default = 4.0)]
    pub subject_weight: f32,
    /// Weight of the masked UV mean squared error.
    #[config(default = 1.0)]
    pub uv_weight: f32,
    /// Weight of the masked albedo mean squared error.
    #[config(default = 1.0)]
    pub albedo_weight: f32,
}

impl Default for Stage1LossConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The stage-1 loss and its terms (each `[1]`; the terms are unweighted).
#[derive(Debug, Clone)]
pub struct Stage1Loss {
    /// Weighted sum; what to call `backward` on.
    pub total: Tensor<1>,
    /// Cross-entropy of the part logits.
    pub part: Tensor<1>,
    /// Masked MSE of U, V.
    pub uv: Tensor<1>,
    /// Masked MSE of the albedo.
    pub albedo: Tensor<1>,
}

impl Stage1LossConfig {
    /// The stage-1 loss of G1's output against the ground-truth texture map `target`
    /// (`[B, 6, H, W]`, shared layout). See the module docs for the definition.
    pub fn forward(
        &self,
        pred: &Stage1Output,
        target: Tensor<4>,
    ) -> Result<Stage1Loss, LossShapeError> {
        let [b, c, h, w] = target.dims();
        expect_dims("texture map", &[b, TEXTURE_CHANNELS, h, w], &[b, c, h, w])?;
        expect_dims(
            "part logits",
            &[b, NUM_PARTS + 1, h, w],
            &pred.part_logits.dims(),
        )?;
        expect_dims("uv", &[b, 2, h, w], &pred.uv.dims())?;
        expect_dims("albedo", &[b, 3, h, w], &pred.albedo.dims())?;

        let mask = subject_mask(target.clone());
        let weights = mask
            .clone()
            .mul_scalar(self.subject_weight - 1.0)
            .add_scalar(1.0);
        let part = weighted_cross_entropy_2d(
            pred.part_logits.clone(),
            part_targets(target.clone()),
            weights,
        );
        let uv = masked_mse(
            pred.uv.clone(),
            target.clone().narrow(1, CH_UV, 2),
            mask.clone(),
        );
        let albedo = masked_mse(pred.albedo.clone(), target.narrow(1, CH_ALBEDO, 3), mask);
        let total = part
            .clone()
            .mul_scalar(self.part_weight)
            .add(uv.clone().mul_scalar(self.uv_weight))
            .add(albedo.clone().mul_scalar(self.albedo_weight));
        Ok(Stage1Loss {
            total,
            part,
            uv,
            albedo,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Stage 2 (G2): L2 reconstruction, L3 adversarial, L4 silhouette features, L5 background
// patches. As in stage 1, each "||·||₂" is trained as the squared distance averaged per
// element (same minimiser, size-independent weights; see the module docs).
// ---------------------------------------------------------------------------------------

/// L2, reconstruction: `mean (x − ŷ)²` over `[B, 3, H, W]`.
pub fn reconstruction_loss(clean: Tensor<4>, restored: Tensor<4>) -> Tensor<1> {
    mse(restored, clean)
}

/// Matte supervision (beyond the method): `mean (α − m)²` of the alpha matte `α` against
/// the subject mask `m`, both `[B, 1, H, W]` in 0..1.
pub fn matte_loss(alpha: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    mse(alpha, mask)
}

/// L3 for D: `−log D(x) − log(1 − D(ŷ))` with `D = sigmoid(logits)`, each term averaged
/// over D's patch logits. Pass `fake_logits` computed on a *detached* ŷ.
pub fn discriminator_loss(real_logits: Tensor<4>, fake_logits: Tensor<4>) -> Tensor<1> {
    let ones = real_logits.ones_like();
    let zeros = fake_logits.zeros_like();
    bce_with_logits(real_logits, ones).add(bce_with_logits(fake_logits, zeros))
}

/// L3 for G2, the non-saturating form `−log D(ŷ)` averaged over patches: it has strong
/// gradients exactly when D confidently rejects ŷ, where `log(1 − D(ŷ))` has almost none.
pub fn generator_adversarial_loss(fake_logits: Tensor<4>) -> Tensor<1> {
    let ones = fake_logits.ones_like();
    bce_with_logits(fake_logits, ones)
}

/// L4: `mean (S(y_f) − S(x))²` over the frozen silhouette network's feature layer.
///
/// `s` must be frozen by the caller (`Module::freeze`): the gradient then reaches y_f
/// (and through it G2) but never S's weights. The target side is detached.
pub fn silhouette_feature_loss(
    s: &Silhouette,
    foreground: Tensor<4>,
    clean: Tensor<4>,
) -> Tensor<1> {
    let target = s.features(clean).detach();
    mse(s.features(foreground), target)
}

/// The per-sample window targets of L5, as tensors: built once per batch from the subject
/// masks with [`nearest_background_windows`].
#[derive(Debug, Clone)]
pub struct PatchTargets {
    pub grid: WindowGrid,
    /// `[B, L]` index of the window of x each window of y_b is compared with (0 where none).
    pub index: Tensor<2, Int>,
    /// `[B, L]` 1 where a target exists, 0 where the sample has no background-only window.
    pub weight: Tensor<2>,
}

impl PatchTargets {
    /// Targets for subject masks `[B, 1, H, W]` (values 0/1; read back to the host).
    pub fn from_masks(mask: Tensor<4>, size: usize, stride: usize) -> Result<Self, LossShapeError> {
        let [b, _, h, w] = mask.dims();
        let device = mask.device();
        let grid = WindowGrid::new(w, h, size, stride)?;
        let values: Vec<f32> = mask
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| LossShapeError::Read(format!("{e:?}")))?;
        let (mut index, mut weight) = (Vec::with_capacity(b * grid.len()), Vec::new());
        for sample in values.chunks(h * w).take(b) {
            let m = Mask {
                width: w,
                height: h,
                data: sample.iter().map(|&v| u8::from(v > 0.5)).collect(),
            };
            for target in nearest_background_windows(&m, &grid) {
                index.push(target.map_or(0, i64::from));
                weight.push(if target.is_some() { 1.0f32 } else { 0.0 });
            }
        }
        Ok(Self {
            grid,
            index: Tensor::from_data(TensorData::new(index, [b, grid.len()]), &device),
            weight: Tensor::from_data(TensorData::new(weight, [b, grid.len()]), &device),
        })
    }
}

/// L5, background patches: over the windows of `targets.grid`, `mean (y_b[p] − x[q(p)])²`
/// where `q(p)` is `p` for a background-only window of x and the nearest background-only
/// window otherwise; averaged over the elements of the windows that have a target
/// (0 if none has). `background`, `clean`: `[B, C, H, W]`.
pub fn background_patch_loss(
    background: Tensor<4>,
    clean: Tensor<4>,
    targets: &PatchTargets,
) -> Tensor<1> {
    let g = targets.grid;
    let opts = UnfoldOptions::new([g.stride, g.stride], [0, 0], [1, 1]);
    let y = unfold4d(background, [g.size, g.size], opts.clone()); // [B, C·k², L]
    let x = unfold4d(clean.detach(), [g.size, g.size], opts); // [B, C·k², L]
    let [b, rows, l] = x.dims();
    let index = targets
        .index
        .clone()
        .unsqueeze_dim::<3>(1)
        .expand([b, rows, l]);
    let x_target = x.gather(2, index); // [B, C·k², L]
    let weight = targets.weight.clone().unsqueeze_dim::<3>(1); // [B, 1, L]
    let sq = y.sub(x_target).square().mul(weight.clone());
    let count = weight.sum().mul_scalar(rows as f32).clamp_min(1.0);
    sq.sum().div(count)
}

/// Weights and window geometry of the stage-2 losses (any weight may be 0 to switch its
/// term off; with `adversarial_weight == 0` D is not trained at all).
#[derive(Config, Debug)]
pub struct Stage2LossConfig {
    /// L2, reconstruction.
    #[config(default = 1.0)]
    pub reconstruction_weight: f32,
    /// L3, adversarial (generator side).
    #[config(default = 0.01)]
    pub adversarial_weight: f32,
    /// L4, silhouette features through frozen S.
    #[config(default = 0.1)]
    pub silhouette_weight: f32,
    /// L5, background patches.
    #[config(default = 0.5)]
    pub patch_weight: f32,
    /// L5 window side in pixels.
    #[config(default = 16)]
    pub patch_size: usize,
    /// L5 window stride in pixels.
    #[config(default = 8)]
    pub patch_stride: usize,
    /// Beyond the method (0 = off, the method as written): an extra L2 term over the
    /// occluded pixels alone ([`masked_mse`] with the occlusion mask, the "hole" loss of
    /// inpainting work). The hidden pixels are ~3 % of a frame, so in the whole-image L2
    /// they weigh almost nothing against copying the visible ones.
    #[config(default = 0.0)]
    pub hidden_weight: f32,
    /// Beyond the method (0 = off): [`hidden_log_mse`], the hidden pixels scored per
    /// image on a log scale, as the reported PSNR scores them.
    #[config(default = 0.0)]
    pub hidden_log_weight: f32,
    /// Beyond the method (0 = off): [`matte_loss`], the alpha matte against the subject's
    /// true mask. Nothing in L2–L5 ties α to the subject, and the background decoder's
    /// skips can redraw the subject by themselves, so without it training settles on α ≈ 0
    /// and the foreground path (the only one that sees the condition through the
    /// bottleneck alone) goes unused.
    #[config(default = 0.0)]
    pub matte_weight: f32,
}

impl Default for Stage2LossConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{device, scalar};

    fn t4(data: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(data, shape), &device())
    }

    #[test]
    fn l2_norm_hand_values() {
        // Sample 0: diff [1, 2, 3, 4] → sqrt(30); sample 1: diff [0, 0, 3, 4] → 5.
        let a = t4(vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 3.0, 4.0], [2, 1, 2, 2]);
        let b = Tensor::zeros([2, 1, 2, 2], &device());
        let got = scalar(l2_norm_loss(a, b));
        let want = (30.0f32.sqrt() + 5.0) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn l2_norm_is_not_mse() {
        let a = t4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]);
        let b = t4(vec![1.0, 0.0, 3.0, 2.0], [1, 1, 2, 2]);
        // diff [0, 2, 0, 2]: norm sqrt(8), mse 8/4 = 2.
        assert!((scalar(l2_norm_loss(a.clone(), b.clone())) - 8.0f32.sqrt()).abs() < 1e-5);
        assert!((scalar(mse(a, b)) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn mse_hand_value() {
        let a = t4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]);
        assert!((scalar(mse(a, Tensor::zeros([1, 1, 2, 2], &device()))) - 7.5).abs() < 1e-6);
    }

    #[test]
    fn masked_mse_hand_values() {
        let mask = t4(vec![1.0, 0.0, 0.0, 1.0], [1, 1, 2, 2]);
        let a = t4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]);
        let zeros = Tensor::zeros([1, 1, 2, 2], &device());
        // (1 + 16) / 2
        assert!((scalar(masked_mse(a, zeros, mask.clone())) - 8.5).abs() < 1e-6);
        // Two channels: (1 + 16 + 4 + 4) / (2 · 2)
        let a2 = t4(vec![1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 2.0], [1, 2, 2, 2]);
        let z2 = Tensor::zeros([1, 2, 2, 2], &device());
        assert!((scalar(masked_mse(a2.clone(), z2.clone(), mask)) - 6.25).abs() < 1e-6);
        // Empty mask: 0, not NaN.
        let empty = Tensor::zeros([1, 1, 2, 2], &device());
        assert_eq!(scalar(masked_mse(a2, z2, empty)), 0.0);
    }

    #[test]
    fn hidden_log_mse_hand_values() {
        // Image 0: hidden pixels 0 and 3, diffs 1 and 3 → mse (1 + 9) / 2 = 5.
        // Image 1: one hidden pixel, diff 0.5 → mse 0.25. Image 2: no hidden pixel, left out.
        let a = t4(
            vec![1.0, 7.0, 7.0, 3.0, 0.5, 9.0, 9.0, 9.0, 4.0, 4.0, 4.0, 4.0],
            [3, 1, 2, 2],
        );
        let mask = t4(
            vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [3, 1, 2, 2],
        );
        let zeros = Tensor::zeros([3, 1, 2, 2], &device());
        let f = HIDDEN_LOG_FLOOR;
        let want = ((5.0 + f).ln() + (0.25 + f).ln()) / 2.0;
        let got = scalar(hidden_log_mse(a.clone(), zeros.clone(), mask.clone()));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Unlike the pooled masked_mse ((1 + 9 + 0.25) / 3), each image counts once.
        let pooled = scalar(masked_mse(a.clone(), zeros.clone(), mask.clone()));
        assert!((pooled - 10.25 / 3.0).abs() < 1e-5);
        // A perfect image sits at the floor, and no hidden pixel at all gives 0.
        let exact = scalar(hidden_log_mse(zeros.clone(), zeros.clone(), mask));
        assert!((exact - f.ln()).abs() < 1e-4, "{exact}");
        let none = Tensor::zeros([3, 1, 2, 2], &device());
        assert_eq!(scalar(hidden_log_mse(a, zeros, none)), 0.0);
    }

    #[test]
    fn matte_loss_hand_values() {
        // α (0.25, 1, 0, 0.5) against mask (0, 1, 1, 0): (0.0625 + 0 + 1 + 0.25) / 4.
        let alpha = t4(vec![0.25, 1.0, 0.0, 0.5], [1, 1, 2, 2]);
        let mask = t4(vec![0.0, 1.0, 1.0, 0.0], [1, 1, 2, 2]);
        assert!((scalar(matte_loss(alpha, mask.clone())) - 1.3125 / 4.0).abs() < 1e-6);
        assert_eq!(scalar(matte_loss(mask.clone(), mask)), 0.0);
    }

    #[test]
    fn cross_entropy_hand_values() {
        // Two classes, two pixels: logits (0, 0) target 1 → ln 2;
        // logits (ln 3, 0) target 0 → −ln(3/4).
        let logits = t4(vec![0.0, 3.0f32.ln(), 0.0, 0.0], [1, 2, 1, 2]);
        let targets = Tensor::<3, Int>::from_ints([[[1, 0]]], &device());
        let got = scalar(cross_entropy_2d(logits, targets));
        let want = (2.0f32.ln() - 0.75f32.ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn bce_hand_values() {
        // x=0,t=1 → ln 2; x=2,t=0 → 2 + ln(1+e^−2); x=−3,t=0 → ln(1+e^−3); x=4,t=1 → ln(1+e^−4)
        let x = t4(vec![0.0, 2.0, -3.0, 4.0], [1, 1, 2, 2]);
        let t = t4(vec![1.0, 0.0, 0.0, 1.0], [1, 1, 2, 2]);
        let want = (2.0f32.ln()
            + 2.0
            + (-2.0f32).exp().ln_1p()
            + (-3.0f32).exp().ln_1p()
            + (-4.0f32).exp().ln_1p())
            / 4.0;
        let got = scalar(bce_with_logits(x, t));
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn hard_negative_bce_hand_values() {
        let sp = |x: f32| x.exp().ln_1p();
        // Image 0 has a positive pixel: left out. Image 1 (3, −1, 0, 2) and image 2
        // (−2, 5, −4, 1) are intact: their top 2 are (3, 2) and (5, 1).
        let x = t4(
            vec![
                9.0, 9.0, 9.0, 9.0, 3.0, -1.0, 0.0, 2.0, -2.0, 5.0, -4.0, 1.0,
            ],
            [3, 1, 2, 2],
        );
        let mut t = vec![0.0; 12];
        t[3] = 1.0;
        let t = t4(t, [3, 1, 2, 2]);
        let want = (sp(3.0) + sp(2.0)) / 2.0 / 2.0 + (sp(5.0) + sp(1.0)) / 2.0 / 2.0;
        let got = scalar(hard_negative_bce(x.clone(), t.clone(), 2));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // k = 1: each intact image's worst false alarm alone.
        let got = scalar(hard_negative_bce(x.clone(), t.clone(), 1));
        assert!((got - (sp(3.0) + sp(5.0)) / 2.0).abs() < 1e-5, "{got}");
        // No intact image in the batch: 0, not NaN.
        let only = x.narrow(0, 0, 1);
        assert_eq!(scalar(hard_negative_bce(only, t.narrow(0, 0, 1), 2)), 0.0);
    }

    #[test]
    fn bce_is_stable_for_large_logits() {
        let x = t4(vec![-200.0, 200.0], [1, 1, 1, 2]);
        let t = t4(vec![1.0, 0.0], [1, 1, 1, 2]);
        assert!((scalar(bce_with_logits(x, t)) - 200.0).abs() < 1e-3);
    }

    #[test]
    fn part_targets_round_and_clamp() {
        // I/24 for parts 0, 1, 24 and two malformed values (slightly off, out of range).
        let t = t4(
            vec![0.0, 1.0 / 24.0, 1.0, 12.0 / 24.0 + 0.01, 1.5],
            [1, 1, 1, 5],
        );
        let tex = Tensor::cat(vec![t, Tensor::zeros([1, 5, 1, 5], &device())], 1);
        let p: Vec<i64> = part_targets(tex.clone())
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(p, vec![0, 1, 24, 12, 24]);
        let m: Vec<f32> = subject_mask(tex).into_data().try_to_vec().unwrap();
        assert_eq!(m, vec![0.0, 1.0, 1.0, 1.0, 1.0]);
    }

    /// One subject pixel (part 1) and one background pixel; 25 classes.
    fn stage1_case(uv_bg: f32) -> (Stage1Output, Tensor<4>) {
        let dev = device();
        // Logits all 0 → CE = ln 25 at every pixel regardless of the target.
        let part_logits = Tensor::zeros([1, 25, 1, 2], &dev);
        // Pixel 0: subject; pixel 1: background (its predicted UV must not matter).
        let uv = t4(vec![0.5, uv_bg, 0.25, uv_bg], [1, 2, 1, 2]);
        let albedo = t4(vec![1.0, 0.3, 0.0, 0.3, 0.0, 0.3], [1, 3, 1, 2]);
        #[rustfmt::skip]
        let target = t4(
            vec![
                1.0 / 24.0, 0.0, // I/24
                0.0, 0.0,        // U
                0.75, 0.0,       // V
                0.0, 0.0,        // R
                0.0, 0.0,        // G
                0.0, 0.0,        // B
            ],
            [1, 6, 1, 2],
        );
        (
            Stage1Output {
                part_logits,
                uv,
                albedo,
            },
            target,
        )
    }

    #[test]
    fn stage1_loss_hand_values() {
        let (pred, target) = stage1_case(0.9);
        let cfg = Stage1LossConfig::new()
            .with_part_weight(2.0)
            .with_uv_weight(3.0)
            .with_albedo_weight(4.0);
        let loss = cfg.forward(&pred, target).unwrap();
        let ce = 25.0f32.ln();
        // UV over the one subject pixel: ((0.5−0)² + (0.25−0.75)²) / 2 = 0.25
        // Albedo: ((1−0)² + 0 + 0) / 3
        let (uv, albedo) = (0.25f32, 1.0f32 / 3.0);
        assert!((scalar(loss.part.clone()) - ce).abs() < 1e-5);
        assert!((scalar(loss.uv.clone()) - uv).abs() < 1e-6);
        assert!((scalar(loss.albedo.clone()) - albedo).abs() < 1e-6);
        let want = 2.0 * ce + 3.0 * uv + 4.0 * albedo;
        assert!((scalar(loss.total) - want).abs() < 1e-5);
    }

    #[test]
    fn part_cross_entropy_weights_subject_pixels() {
        let (mut pred, target) = stage1_case(0.0);
        // Subject pixel (part 1): logit 2 on class 1, else 0 → CE = ln(24 + e²) − 2.
        // Background pixel: logits all 0 → CE = ln 25.
        let mut logits = vec![0.0f32; 50];
        logits[2] = 2.0; // class 1, pixel 0 (layout [1, 25, 1, 2])
        pred.part_logits = t4(logits, [1, 25, 1, 2]);
        let subject = (24.0f32 + 2.0f32.exp()).ln() - 2.0;
        let background = 25.0f32.ln();
        let cfg = Stage1LossConfig::new().with_subject_weight(3.0);
        let got = scalar(cfg.forward(&pred, target.clone()).unwrap().part);
        let want = (3.0 * subject + background) / 4.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Weight 1 is the plain mean.
        let cfg = cfg.with_subject_weight(1.0);
        let got = scalar(cfg.forward(&pred, target).unwrap().part);
        assert!((got - (subject + background) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn stage1_loss_ignores_background_uv() {
        let cfg = Stage1LossConfig::new();
        let (p1, t1) = stage1_case(0.9);
        let (p2, t2) = stage1_case(0.1);
        let a = scalar(cfg.forward(&p1, t1).unwrap().total);
        let b = scalar(cfg.forward(&p2, t2).unwrap().total);
        assert_eq!(a, b);
    }

    #[test]
    fn stage1_loss_rejects_mismatched_shapes() {
        let (pred, _) = stage1_case(0.0);
        let wrong = Tensor::zeros([1, 6, 2, 2], &device());
        assert!(Stage1LossConfig::new().forward(&pred, wrong).is_err());
        let not_texture = Tensor::zeros([1, 5, 1, 2], &device());
        assert!(Stage1LossConfig::new().forward(&pred, not_texture).is_err());
    }

    // ----- stage 2 -----

    #[test]
    fn reconstruction_hand_value() {
        let x = t4(vec![1.0, -1.0, 0.5, 0.0], [1, 1, 2, 2]);
        let y = t4(vec![0.0, -1.0, 0.0, 1.0], [1, 1, 2, 2]);
        // (1 + 0 + 0.25 + 1) / 4
        assert!((scalar(reconstruction_loss(x, y)) - 0.5625).abs() < 1e-6);
    }

    #[test]
    fn adversarial_hand_values() {
        let ln2 = std::f32::consts::LN_2;
        let zero = t4(vec![0.0; 4], [1, 1, 2, 2]);
        // D(x) = D(ŷ) = 0.5: −log 0.5 − log 0.5.
        assert!((scalar(discriminator_loss(zero.clone(), zero.clone())) - 2.0 * ln2).abs() < 1e-6);
        // Perfect D: real logit 10, fake −10 → 2·log(1 + e^−10).
        let real = t4(vec![10.0; 4], [1, 1, 2, 2]);
        let fake = t4(vec![-10.0; 4], [1, 1, 2, 2]);
        let want = 2.0 * (1.0 + (-10.0f32).exp()).ln();
        assert!((scalar(discriminator_loss(real, fake.clone())) - want).abs() < 1e-6);
        // Generator: −log σ(0) = ln 2; −log σ(−10) = log(1 + e^10) ≈ 10.0000454.
        assert!((scalar(generator_adversarial_loss(zero)) - ln2).abs() < 1e-6);
        let want = (1.0 + 10.0f32.exp()).ln();
        assert!((scalar(generator_adversarial_loss(fake)) - want).abs() < 1e-4);
    }

    #[test]
    fn silhouette_feature_loss_is_zero_on_equal_inputs_and_grows_with_difference() {
        let dev = device();
        let s = crate::nets::blocks::seeded_init(
            crate::nets::silhouette::SilhouetteConfig::tiny().init(&dev),
            3,
        )
        .freeze();
        let x = t4(
            (0..3 * 16).map(|i| (i as f32 / 24.0) - 1.0).collect(),
            [1, 3, 4, 4],
        );
        assert_eq!(
            scalar(silhouette_feature_loss(&s, x.clone(), x.clone())),
            0.0
        );
        let by_hand = mse(s.features(x.clone().mul_scalar(0.5)), s.features(x.clone()));
        let got = silhouette_feature_loss(&s, x.clone().mul_scalar(0.5), x);
        assert!(scalar(got.clone()) > 0.0);
        assert!((scalar(got) - scalar(by_hand)).abs() < 1e-7);
    }

    /// x is 2x4, two 2x2 windows (stride 2): w0 = [1, 2, 5, 6], w1 = [3, 4, 7, 8]; y_b = 0.
    fn patch_case(mask: Vec<f32>) -> f32 {
        let x = t4(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [1, 1, 2, 4]);
        let targets = PatchTargets::from_masks(t4(mask, [1, 1, 2, 4]), 2, 2).unwrap();
        scalar(background_patch_loss(
            Tensor::zeros([1, 1, 2, 4], &device()),
            x,
            &targets,
        ))
    }

    #[test]
    fn background_patch_loss_hand_values() {
        // No subject: each window against itself: (1+4+25+36 + 9+16+49+64) / 8 = 25.5.
        assert!((patch_case(vec![0.0; 8]) - 25.5).abs() < 1e-5);
        // Subject in w0: both windows compare with w1: 2·(9+16+49+64) / 8 = 34.5.
        let subject_w0 = vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert!((patch_case(subject_w0) - 34.5).abs() < 1e-5);
        // Subject in w1: both compare with w0: 2·(1+4+25+36) / 8 = 16.5.
        let subject_w1 = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        assert!((patch_case(subject_w1) - 16.5).abs() < 1e-5);
        // Subject everywhere: no target anywhere, the term is 0.
        assert_eq!(patch_case(vec![1.0; 8]), 0.0);
    }

    #[test]
    fn patch_targets_reject_windows_larger_than_the_image() {
        let m = Tensor::<4>::zeros([1, 1, 4, 4], &device());
        assert!(PatchTargets::from_masks(m, 8, 2).is_err());
    }
}
