//! Silhouette network S: image → subject silhouette logit (its role in L4:
//! `docs/method.md`, "The losses").
//!
//! Trained on synthetic masks before stage 2, then frozen. Stage 2's L4 compares
//! `S.features(y_f)` with `S.features(x)`: the activation of the conv layer a third of the
//! way from the input (the method's L4).
//!
//! A U-Net with `depth` stride-2 levels (`w` = `base_width`, level `l` has `w·2^l`
//! channels). Telling the subject from a busy background needs context far wider than a
//! limb, so the encoder goes down to `H/2^depth` (receptive field > 100 px at depth 4);
//! the skips bring the edges back. Layers, in order:
//!
//! | # | layer | output |
//! |---|---|---|
//! | 1 | `stem`: ConvBlock 3→w | `[B, w, H, W]` |
//! | 2 | `down[0]`: Down w→2w | `[B, 2w, H/2, W/2]` |
//! | 3 | `mid`: ConvBlock 2w→2w | `[B, 2w, H/2, W/2]` ← **[`Silhouette::features`]** |
//! | 4… | `down[l]`, l = 1..depth: Down | `[B, w·2^(l+1), H/2^(l+1), W/2^(l+1)]` |
//! | … | `up[k]`: Up, then concat the encoder output of the same size | back to `[B, 2w, H, W]` |
//! | – | `head`: 1x1 conv 2w→1 | `[B, 1, H, W]` logit |
//!
//! At depth 4 that is ten conv layers, so the feature layer (3) sits about a third of the
//! way in. Input H and W must be multiples of `2^depth`.

use burn::prelude::*;

use crate::nets::blocks::{
    ConvBlock, ConvBlockConfig, Down, DownConfig, Head, HeadConfig, Up, UpConfig,
};
use crate::nets::{check_dims, ShapeError};

/// Configuration of the silhouette network.
#[derive(Config, Debug)]
pub struct SilhouetteConfig {
    /// Channels of the first layer.
    #[config(default = 8)]
    pub base_width: usize,
    /// Number of stride-2 levels (at least 1); H and W must be multiples of `2^depth`.
    #[config(default = 4)]
    pub depth: usize,
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
    /// The tiny preset (width 8, 3 levels), for tests.
    pub fn tiny() -> Self {
        Self::new().with_base_width(8).with_depth(3)
    }

    /// Build S on `device` (burn's default init; see [`crate::nets::blocks::seeded_init`]).
    pub fn init(&self, device: &Device) -> Silhouette {
        let depth = self.depth.max(1);
        let width = |level: usize| self.base_width << level;
        let down = (0..depth)
            .map(|l| DownConfig::new(width(l), width(l + 1)).init(device))
            .collect();
        // up[k] brings level depth-k back to level depth-k-1; below the deepest level its
        // input is the previous Up's output concatenated with a skip (twice the width).
        let up = (0..depth)
            .rev()
            .map(|l| {
                let cin = if l + 1 == depth {
                    width(depth)
                } else {
                    2 * width(l + 1)
                };
                UpConfig::new(cin, width(l)).init(device)
            })
            .collect();
        Silhouette {
            stem: ConvBlockConfig::new(self.in_channels, width(0)).init(device),
            mid: ConvBlockConfig::new(width(1), width(1)).init(device),
            down,
            up,
            head: HeadConfig::new(2 * width(0), 1).init(device),
            in_channels: self.in_channels,
        }
    }
}

/// The silhouette CNN (see the module docs for its layers). The blind mode's occlusion
/// detector is this architecture too, trained on occluder masks. Fields are
/// crate-visible for the ONNX exporter.
#[derive(Module, Debug)]
pub struct Silhouette {
    pub(crate) stem: ConvBlock,
    pub(crate) mid: ConvBlock,
    pub(crate) down: Vec<Down>,
    pub(crate) up: Vec<Up>,
    pub(crate) head: Head,
    pub(crate) in_channels: usize,
}

impl Silhouette {
    /// Input H and W must be multiples of this.
    pub fn size_multiple(&self) -> usize {
        1 << self.down.len()
    }

    /// Check that `dims` (`[B, C, H, W]`) is an input this network takes.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ShapeError> {
        check_dims(dims, self.in_channels, self.size_multiple())
    }

    /// `x`: `[B, 3, H, W]` in [-1, 1] → silhouette logit `[B, 1, H, W]`
    /// (sigmoid > 0.5, i.e. logit > 0, means subject).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let e0 = self.stem.forward(x); // [B, w, H, W]
        let e1 = self.features_from_stem(e0.clone()); // [B, 2w, H/2, W/2]
                                                      // skips[l] is the encoder output at level l (H/2^l).
        let mut skips = vec![e0, e1];
        for down in &self.down[1..] {
            let next = down.forward(skips[skips.len() - 1].clone());
            skips.push(next);
        }
        let mut y = skips.pop().expect("depth >= 1 leaves the bottleneck"); // [B, w·2^depth, ..]
        for up in &self.up {
            let skip = skips.pop().expect("one skip per Up");
            y = Tensor::cat(vec![up.forward(y), skip], 1); // [B, 2·w·2^l, H/2^l, W/2^l]
        }
        self.head.forward(y)
    }

    /// [`forward`](Self::forward) after [`check_input`](Self::check_input).
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ShapeError> {
        self.check_input(x.dims())?;
        Ok(self.forward(x))
    }

    /// The L4 feature: output of conv layer 3 (`mid`, after its LeakyReLU):
    /// `[B, 3, H, W]` → `[B, 2w, H/2, W/2]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_from_stem(self.stem.forward(x))
    }

    /// `[B, w, H, W]` (stem output) → `[B, 2w, H/2, W/2]` (layer 3).
    fn features_from_stem(&self, e0: Tensor<4>) -> Tensor<4> {
        self.mid.forward(self.down[0].forward(e0))
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

/// `mask` (`[B, 1, H, W]`, subject > 0.5) eroded by one pixel (3x3 neighbourhood), as
/// logits for [`silhouette_iou`] (+1 subject, −1 not). It calibrates the IoU: with limbs
/// a few pixels wide at 128×128, a silhouette that loses its one-pixel rim scores 0.68 on
/// the default preset's held-out masks, so S's IoU reads against that, not against 1.
pub fn eroded_mask_logits(mask: Tensor<4>) -> Tensor<4> {
    let outside = mask.greater_elem(0.5).float().neg().add_scalar(1.0); // 1 off the subject
    let options = burn::tensor::ops::MaxPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    let grown = burn::tensor::module::max_pool2d(outside, options);
    // Subject where no neighbour is off it: logit 1 − 2·grown.
    grown.mul_scalar(-2.0).add_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{device, scalar};

    #[test]
    fn shapes_and_feature_layer() {
        let dev = device();
        let s = SilhouetteConfig::tiny().init(&dev);
        assert_eq!(s.size_multiple(), 8);
        let x = Tensor::<4>::zeros([2, 3, 16, 24], &dev);
        assert_eq!(s.forward(x.clone()).dims(), [2, 1, 16, 24]);
        assert_eq!(s.features(x).dims(), [2, 16, 8, 12]);
        assert!(s
            .try_forward(Tensor::<4>::zeros([1, 3, 12, 16], &dev))
            .is_err());
        assert!(s
            .try_forward(Tensor::<4>::zeros([1, 1, 16, 16], &dev))
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
    fn eroded_mask_hand_values() {
        let dev = device();
        // A 3x3 block in a 5x5 frame erodes to its centre pixel: IoU 1/9.
        let mut m = [[0.0f32; 5]; 5];
        for row in m.iter_mut().skip(1).take(3) {
            row[1..4].fill(1.0);
        }
        let mask = Tensor::<4>::from_floats([[m]], &dev);
        let eroded = eroded_mask_logits(mask.clone());
        let v: Vec<f32> = eroded.clone().into_data().try_to_vec().unwrap();
        let subject: Vec<usize> = (0..25).filter(|&i| v[i] > 0.0).collect();
        assert_eq!(subject, vec![12]);
        let got = scalar(silhouette_iou(eroded, mask));
        assert!((got - 1.0 / 9.0).abs() < 1e-6, "{got}");
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
