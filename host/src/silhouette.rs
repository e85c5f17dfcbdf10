//! Silhouette network S: image → subject silhouette logit.
//!
//! Trained on synthetic masks before stage 2, then frozen. Stage 2's L4 compares
//! `S.features(y_f)` with `S.features(x)`: the activation of the conv layer a third of the
//! way from the input (METHOD.md, L4).
//!
//! Architecture (six 3x3 conv layers, then a 1x1 head; `w` = `base_width`):
//!
//! | # | layer | output |
//! |---|---|---|
//! | 1 | `enc1`: ConvBlock 3→w | `[B, w, H, W]` |
//! | 2 | `enc2`: Down w→2w | `[B, 2w, H/2, W/2]` ← **[`Silhouette::features`]** (layer 2 of 6) |
//! | 3 | `enc3`: ConvBlock 2w→2w | `[B, 2w, H/2, W/2]` |
//! | 4 | `enc4`: Down 2w→4w | `[B, 4w, H/4, W/4]` |
//! | 5 | `dec1`: Up 4w→2w, concat `enc3` | `[B, 4w, H/2, W/2]` |
//! | 6 | `dec2`: Up 4w→w, concat `enc1` | `[B, 2w, H, W]` |
//! | – | `head`: 1x1 conv 2w→1 | `[B, 1, H, W]` logit |
//!
//! Input H and W must be multiples of 4.

use burn::prelude::*;

use crate::blocks::{ConvBlock, ConvBlockConfig, Down, DownConfig, Head, HeadConfig, Up, UpConfig};
use crate::stage1::{check_dims, ShapeError};

/// Configuration of the silhouette network.
#[derive(Config, Debug)]
pub struct SilhouetteConfig {
    /// Channels of the first layer.
    #[config(default = 8)]
    pub base_width: usize,
    /// Input channels (3: RGB in [-1, 1]).
    #[config(default = 3)]
    pub in_channels: usize,
}

impl Default for SilhouetteConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SilhouetteConfig {
    /// The tiny preset (width 8), for tests.
    pub fn tiny() -> Self {
        Self::new().with_base_width(8)
    }

    /// Build S on `device` (burn's default init; see [`crate::blocks::seeded_init`]).
    pub fn init(&self, device: &Device) -> Silhouette {
        let w = self.base_width;
        Silhouette {
            enc1: ConvBlockConfig::new(self.in_channels, w).init(device),
            enc2: DownConfig::new(w, 2 * w).init(device),
            enc3: ConvBlockConfig::new(2 * w, 2 * w).init(device),
            enc4: DownConfig::new(2 * w, 4 * w).init(device),
            dec1: UpConfig::new(4 * w, 2 * w).init(device),
            dec2: UpConfig::new(4 * w, w).init(device),
            head: HeadConfig::new(2 * w, 1).init(device),
            in_channels: self.in_channels,
        }
    }
}

/// The silhouette CNN (see the module docs for its layers).
#[derive(Module, Debug)]
pub struct Silhouette {
    enc1: ConvBlock,
    enc2: Down,
    enc3: ConvBlock,
    enc4: Down,
    dec1: Up,
    dec2: Up,
    head: Head,
    in_channels: usize,
}

impl Silhouette {
    /// Input H and W must be multiples of this.
    pub const SIZE_MULTIPLE: usize = 4;

    /// Check that `dims` (`[B, C, H, W]`) is an input this network takes.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ShapeError> {
        check_dims(dims, self.in_channels, Self::SIZE_MULTIPLE)
    }

    /// `x`: `[B, 3, H, W]` in [-1, 1] → silhouette logit `[B, 1, H, W]`
    /// (sigmoid > 0.5, i.e. logit > 0, means subject).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let e1 = self.enc1.forward(x); // [B, w, H, W]
        let e2 = self.enc2.forward(e1.clone()); // [B, 2w, H/2, W/2]
        let e3 = self.enc3.forward(e2); // [B, 2w, H/2, W/2]
        let e4 = self.enc4.forward(e3.clone()); // [B, 4w, H/4, W/4]
        let d1 = Tensor::cat(vec![self.dec1.forward(e4), e3], 1); // [B, 4w, H/2, W/2]
        let d2 = Tensor::cat(vec![self.dec2.forward(d1), e1], 1); // [B, 2w, H, W]
        self.head.forward(d2)
    }

    /// [`forward`](Self::forward) after [`check_input`](Self::check_input).
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ShapeError> {
        self.check_input(x.dims())?;
        Ok(self.forward(x))
    }

    /// The L4 feature: output of layer 2 of the six conv layers (`enc2`, the first
    /// stride-2 conv, after its LeakyReLU): `[B, 3, H, W]` → `[B, 2w, H/2, W/2]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.enc2.forward(self.enc1.forward(x))
    }
}

/// Mean per-sample intersection-over-union of the predicted silhouette (`logits > 0`) and
/// the target mask (`target > 0.5`). `logits`, `target`: `[B, 1, H, W]`. A sample whose
/// prediction and target are both empty scores 1. Returns `[1]`.
pub fn silhouette_iou(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let [batch, c, h, w] = logits.dims();
    let n = c * h * w;
    let pred = logits.greater_elem(0.0).float().reshape([batch, n]);
    let truth = target.greater_elem(0.5).float().reshape([batch, n]);
    let inter = pred.clone().mul(truth.clone()).sum_dim(1); // [B, 1]
    let union = pred.add(truth).sum_dim(1).sub(inter.clone()); // [B, 1]
    let empty = union.clone().equal_elem(0.0);
    let iou = inter.div(union.clamp_min(1.0)).mask_fill(empty, 1.0);
    iou.mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{device, scalar};

    #[test]
    fn shapes_and_feature_layer() {
        let dev = device();
        let s = SilhouetteConfig::tiny().init(&dev);
        let x = Tensor::<4>::zeros([2, 3, 16, 12], &dev);
        assert_eq!(s.forward(x.clone()).dims(), [2, 1, 16, 12]);
        assert_eq!(s.features(x).dims(), [2, 16, 8, 6]);
        assert!(s
            .try_forward(Tensor::<4>::zeros([1, 3, 10, 12], &dev))
            .is_err());
        assert!(s
            .try_forward(Tensor::<4>::zeros([1, 1, 12, 12], &dev))
            .is_err());
    }

    #[test]
    fn iou_hand_values() {
        let dev = device();
        // Sample 0: pred {0, 1}, truth {1, 2} → 1/3. Sample 1: both empty → 1.
        let logits = Tensor::<4>::from_floats(
            [[[[3.0, 0.5, -1.0, -2.0]]], [[[-1.0, -1.0, -1.0, -1.0]]]],
            &dev,
        );
        let target =
            Tensor::<4>::from_floats([[[[0.0, 1.0, 1.0, 0.0]]], [[[0.0, 0.0, 0.0, 0.0]]]], &dev);
        let got = scalar(silhouette_iou(logits, target));
        assert!((got - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-6, "{got}");
    }

    #[test]
    fn iou_perfect_and_disjoint() {
        let dev = device();
        let target = Tensor::<4>::from_floats([[[[1.0, 0.0], [0.0, 1.0]]]], &dev);
        let perfect = target.clone().mul_scalar(2.0).sub_scalar(1.0);
        assert_eq!(scalar(silhouette_iou(perfect.clone(), target.clone())), 1.0);
        assert_eq!(scalar(silhouette_iou(perfect.neg(), target)), 0.0);
    }
}
