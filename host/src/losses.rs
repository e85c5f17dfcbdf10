//! Losses and distances for stage 1 (and reused by the silhouette network and stage 2).
//!
//! ## Which "L2" is which
//!
//! METHOD.md writes the stage-1 loss as `L1 = ||u − û||₂`. Two readings exist, and both
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
//! - `CE`: cross-entropy over the 25 classes, averaged over *all* pixels (background is a
//!   class: G1 must learn the amodal silhouette);
//! - `MSE_mask`: squared error averaged over the subject pixels of the *ground truth*
//!   (`I > 0`) and the channels; U, V and albedo are undefined on background.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};

use crate::stage1::{Stage1Output, CH_ALBEDO, CH_I, CH_UV, NUM_PARTS, TEXTURE_CHANNELS};

/// Inputs of a loss whose shapes do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LossShapeError {
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    Mismatch {
        what: &'static str,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
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

/// Per-pixel cross-entropy with logits, averaged over all pixels.
///
/// `logits`: `[B, K, H, W]`; `targets`: `[B, H, W]`, class indices in `0..K` (an index out
/// of range panics inside burn; build targets with [`part_targets`], which clamps).
/// Returns `[1]`: `mean_{b,h,w} −log softmax(logits)[targets]`.
pub fn cross_entropy_2d(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    let log_p = log_softmax(logits, 1); // [B, K, H, W]
    log_p.gather(1, targets.unsqueeze_dim::<4>(1)).neg().mean()
}

/// Binary cross-entropy with logits, averaged over all elements, in the numerically stable
/// form `max(x, 0) − x·t + log(1 + exp(−|x|))`. `targets` in [0, 1]. Returns `[1]`.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    relu(logits.clone())
        .sub(logits.mul(targets))
        .add(softplus_neg_abs)
        .mean()
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

/// The literal `||u − û||₂` of METHOD.md on the 6-channel texture-map tensors
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
        let part = cross_entropy_2d(pred.part_logits.clone(), part_targets(target.clone()));
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
}
