//! Stage 1 network G1: partially occluded image → estimated (amodal) texture map
//! (the method's reading: `docs/method.md`, "Stage 1: G1").
//!
//! A small U-Net built from [`crate::nets::blocks`]. The same architecture, as a separate
//! instance, is the *extraction network* (unoccluded image → texture map) that labels
//! photos without 3D ground truth; [`Stage1Config::extraction_tiny`] and
//! [`Stage1Config::extraction`] name those instances.
//!
//! Outputs ([`Stage1Output`]):
//! - `part_logits` `[B, 25, H, W]`: class 0 = background, 1..=24 = body parts;
//! - `uv` `[B, 2, H, W]`: sigmoid, in 0..1, the U and V chart coordinates;
//! - `albedo` `[B, 3, H, W]`: sigmoid, in 0..1, surface colour RGB.
//!
//! [`Stage1Output::texture_map`] packs them into the 6-channel texture-map tensor of the
//! shared crate's layout (`unveil_shared::texture`): `I/24, U, V, R, G, B`.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use unveil_shared::hole::HoleInput;

use crate::nets::blocks::{
    upsample_nearest, ConvBlock, ConvBlockConfig, Down, DownConfig, Head, HeadConfig, Up, UpConfig,
};
use crate::nets::{check_dims, ShapeError};

pub use unveil_shared::texture::{CH_ALBEDO, CH_I, NUM_PARTS, TEXTURE_CHANNELS};
/// First of the two UV channels of the texture-map tensor.
pub const CH_UV: usize = unveil_shared::texture::CH_U;
/// Number of part classes, background included.
pub const NUM_PART_CLASSES: usize = NUM_PARTS + 1;

/// Configuration of G1 (and of the extraction network, which shares the architecture).
#[derive(Config, Debug)]
pub struct Stage1Config {
    /// Channels of the first level; level `i` has `base_width * 2^i` channels.
    pub base_width: usize,
    /// Number of downsampling levels; input H and W must be multiples of `2^depth`.
    pub depth: usize,
    /// Side of the square training images this configuration is meant for (the network
    /// itself is fully convolutional and takes any size that is a multiple of `2^depth`).
    pub image_size: usize,
    /// Input channels (3: RGB in [-1, 1]; 4 with the hole plane).
    #[config(default = 3)]
    pub in_channels: usize,
    /// How the image input carries the hole (G1 only; the extractor sees clean images).
    /// `in_channels` must be its [`HoleInput::image_channels`].
    #[config(default = "HoleInput::Absent")]
    pub hole: HoleInput,
    /// The U-Net runs at 1/`downscale` of its image's resolution: the image is averaged
    /// over `downscale`² blocks on the way in and the outputs are repeated back (nearest)
    /// on the way out. At 2 every layer costs a quarter; the texture map is smooth
    /// (parts, chart coordinates, colour), and each layer sees twice as much of the body.
    /// `None` (what run files written before this option hold) means 1.
    pub downscale: Option<usize>,
}

impl Default for Stage1Config {
    /// The `default` preset: 128x128 input, width 8, 4 levels (8x8 bottleneck of 128
    /// channels). Narrow on purpose: a U-Net's cost per level is about constant
    /// (`H·W·9·w²`), so width 8 is ~0.2 GMAC per frame, which leaves room for G2 within
    /// the camera's 40 ms budget on one core, and trains ~16x faster than width 32.
    fn default() -> Self {
        Self::new(8, 4, 128)
    }
}

impl Stage1Config {
    /// The `tiny` preset: 64x64 input, width 8, 3 levels; for tests and smoke runs.
    pub fn tiny() -> Self {
        Self::new(8, 3, 64)
    }

    /// The extraction network at the `tiny` preset (same architecture, own weights).
    pub fn extraction_tiny() -> Self {
        Self::tiny()
    }

    /// The extraction network at the `default` preset.
    pub fn extraction() -> Self {
        Self::default()
    }

    /// Input H and W must be multiples of this.
    pub fn size_multiple(&self) -> usize {
        self.downscale_factor() << self.depth
    }

    /// [`downscale`](Self::downscale), at least 1.
    pub fn downscale_factor(&self) -> usize {
        self.downscale.unwrap_or(1).max(1)
    }

    /// Build G1 on `device` with burn's default (lazy, RNG-drawn) initialisation; wrap in
    /// [`crate::nets::blocks::seeded_init`] for a reproducible start.
    pub fn init(&self, device: &Device) -> Stage1Net {
        let width = |level: usize| self.base_width << level;
        let stem = ConvBlockConfig::new(self.in_channels, width(0)).init(device);
        let mut down = Vec::with_capacity(self.depth);
        let mut down_conv = Vec::with_capacity(self.depth);
        let mut up = Vec::with_capacity(self.depth);
        let mut up_conv = Vec::with_capacity(self.depth);
        for level in 0..self.depth {
            down.push(DownConfig::new(width(level), width(level + 1)).init(device));
            down_conv.push(ConvBlockConfig::new(width(level + 1), width(level + 1)).init(device));
        }
        // Decoder stored outermost-last: up[k] goes from level depth-k to depth-k-1.
        for level in (0..self.depth).rev() {
            up.push(UpConfig::new(width(level + 1), width(level)).init(device));
            up_conv.push(ConvBlockConfig::new(2 * width(level), width(level)).init(device));
        }
        Stage1Net {
            stem,
            down,
            down_conv,
            up,
            up_conv,
            part_head: HeadConfig::new(width(0), NUM_PART_CLASSES).init(device),
            uv_head: HeadConfig::new(width(0), 2).init(device),
            albedo_head: HeadConfig::new(width(0), 3).init(device),
            in_channels: self.in_channels,
            depth: self.depth,
            hole: self.hole,
            downscale: self.downscale_factor(),
        }
    }

    /// The same configuration reading its image with `hole` (sets `in_channels` to match).
    pub fn with_hole_input(mut self, hole: HoleInput) -> Self {
        self.hole = hole;
        self.in_channels = hole.image_channels();
        self
    }
}

/// G1: a U-Net with `depth` stride-2 levels, concat skip connections and three 1x1
/// heads (part logits, UV, albedo).
///
/// Layer order (input to output): `stem` (ConvBlock) → for each level `Down` then
/// `ConvBlock` → for each level, deepest first, `Up`, concat with the encoder feature of
/// the same size, `ConvBlock` → heads. Fields are crate-visible for the ONNX exporter.
#[derive(Module, Debug)]
pub struct Stage1Net {
    pub(crate) stem: ConvBlock,
    pub(crate) down: Vec<Down>,
    pub(crate) down_conv: Vec<ConvBlock>,
    pub(crate) up: Vec<Up>,
    pub(crate) up_conv: Vec<ConvBlock>,
    pub(crate) part_head: Head,
    pub(crate) uv_head: Head,
    pub(crate) albedo_head: Head,
    pub(crate) in_channels: usize,
    pub(crate) depth: usize,
    /// How the image input carries the hole (configuration, not a weight).
    #[module(skip)]
    pub(crate) hole: HoleInput,
    /// See [`Stage1Config::downscale`] (configuration, not a weight; at least 1).
    #[module(skip)]
    pub(crate) downscale: usize,
}

/// The three outputs of G1.
#[derive(Debug, Clone)]
pub struct Stage1Output {
    /// `[B, 25, H, W]` unnormalised part scores (0 = background).
    pub part_logits: Tensor<4>,
    /// `[B, 2, H, W]` U and V in 0..1 (sigmoid).
    pub uv: Tensor<4>,
    /// `[B, 3, H, W]` albedo RGB in 0..1 (sigmoid).
    pub albedo: Tensor<4>,
}

impl Stage1Net {
    /// How this network's image input carries the hole.
    pub fn hole(&self) -> HoleInput {
        self.hole
    }

    /// Check that `dims` (`[B, C, H, W]`) is an input this network takes.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ShapeError> {
        check_dims(dims, self.in_channels, self.downscale << self.depth)
    }

    /// [`forward`](Self::forward) after [`check_input`](Self::check_input).
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Stage1Output, ShapeError> {
        self.check_input(x.dims())?;
        Ok(self.forward(x))
    }

    /// `x`: `[B, 3, H, W]` image in [-1, 1], H and W multiples of `downscale · 2^depth`
    /// (unchecked here: a wrong shape panics inside burn; use [`try_forward`](Self::try_forward)
    /// for untrusted input). The outputs are `[B, ·, H, W]` whatever the downscale.
    pub fn forward(&self, x: Tensor<4>) -> Stage1Output {
        let d = self.downscale;
        if d <= 1 {
            return self.forward_native(x);
        }
        let out = self.forward_native(avg_pool2d(x, AvgPoolOptions::new([d, d])));
        Stage1Output {
            part_logits: upsample_nearest(out.part_logits, d),
            uv: upsample_nearest(out.uv, d),
            albedo: upsample_nearest(out.albedo, d),
        }
    }

    /// The U-Net at its own resolution: `[B, 3, h, w]` → outputs `[B, ·, h, w]`.
    fn forward_native(&self, x: Tensor<4>) -> Stage1Output {
        let mut skips = Vec::with_capacity(self.depth + 1);
        let mut h = self.stem.forward(x); // [B, w, H, W]
        for (down, conv) in self.down.iter().zip(&self.down_conv) {
            skips.push(h.clone());
            h = conv.forward(down.forward(h)); // [B, 2c, H/2, W/2]
        }
        // Deepest decoder level first, paired with the deepest skip.
        for ((up, conv), skip) in self
            .up
            .iter()
            .zip(&self.up_conv)
            .zip(skips.into_iter().rev())
        {
            let h_up = up.forward(h); // [B, c, 2H', 2W']
            h = conv.forward(Tensor::cat(vec![h_up, skip], 1)); // [B, c, 2H', 2W']
        }
        Stage1Output {
            part_logits: self.part_head.forward(h.clone()),
            uv: sigmoid(self.uv_head.forward(h.clone())),
            albedo: sigmoid(self.albedo_head.forward(h)),
        }
    }
}

impl Stage1Output {
    /// Hard part labels `[B, H, W]` (0 = background), decided in two steps: a pixel is
    /// subject when the parts together are more likely than background
    /// (`p(bg) < 0.5`, i.e. `Σ_parts exp(logit_part − logit_bg) > 1`), and then its label is
    /// the most likely part. A plain argmax over all 25 classes calls a pixel background
    /// whenever no *single* part beats it, which early in training is almost every pixel
    /// of the subject: 24 parts share the subject's probability mass.
    ///
    /// The sum needs no max shift: only its comparison with 1 matters, and an overflow to
    /// +inf (or underflow to 0) still compares the right way. It also saves the exported
    /// graph a channel-wise max, which tract runs as a slow strided reduction.
    pub fn part_labels(&self) -> Tensor<3, Int> {
        self.part_labels_4d().squeeze_dim::<3>(1)
    }

    /// [`part_labels`](Self::part_labels) keeping the channel axis: `[B, 1, H, W]`.
    fn part_labels_4d(&self) -> Tensor<4, Int> {
        let background = self.part_logits.clone().narrow(1, 0, 1); // [B, 1, H, W]
        let parts = self.part_logits.clone().narrow(1, 1, NUM_PARTS); // [B, 24, H, W]
        let best = parts.clone().argmax(1).add_scalar(1); // [B, 1, H, W]
        let odds = parts.sub(background).exp().sum_dim(1); // p(subject) / p(bg)
        best.mask_fill(odds.lower_equal_elem(1.0), 0)
    }

    /// The 6-channel texture-map tensor `[B, 6, H, W]` in the shared layout:
    /// channel 0 = argmax part / 24, 1..3 = U, V, 3..6 = albedo RGB; U, V and albedo are
    /// set to 0 where the predicted part is 0 (background), as in a rendered ground truth.
    ///
    /// Not differentiable through the part channel (argmax); G1 is frozen in stage 2.
    pub fn texture_map(&self) -> Tensor<4> {
        let labels = self.part_labels_4d(); // [B, 1, H, W] Int
        let subject = labels.clone().greater_elem(0).float(); // [B, 1, H, W]
        let part = labels.float().div_scalar(NUM_PARTS as f32);
        Tensor::cat(
            vec![
                part,
                self.uv.clone().mul(subject.clone()),
                self.albedo.clone().mul(subject),
            ],
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn tiny_output_shapes() {
        let dev = device();
        let net = Stage1Config::tiny().init(&dev);
        let out = net.forward(Tensor::<4>::zeros([2, 3, 64, 64], &dev));
        assert_eq!(out.part_logits.dims(), [2, 25, 64, 64]);
        assert_eq!(out.uv.dims(), [2, 2, 64, 64]);
        assert_eq!(out.albedo.dims(), [2, 3, 64, 64]);
        assert_eq!(out.texture_map().dims(), [2, 6, 64, 64]);
        let uv: Vec<f32> = out.uv.into_data().try_to_vec().unwrap();
        assert!(uv.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn default_preset_is_128() {
        let cfg = Stage1Config::default();
        assert_eq!(cfg.image_size, 128);
        assert_eq!(128 % cfg.size_multiple(), 0);
        let dev = device();
        let net = cfg.init(&dev);
        let out = net.forward(Tensor::<4>::zeros([1, 3, 128, 128], &dev));
        assert_eq!(out.part_logits.dims(), [1, 25, 128, 128]);
    }

    /// At downscale 2 the U-Net sees each 2x2 block's mean and every output pixel repeats
    /// its block's: on an image already constant in 2x2 blocks that is exactly the
    /// full-resolution network run on the small image, upsampled.
    #[test]
    fn downscale_runs_the_net_on_block_means() {
        let dev = device();
        let cfg = Stage1Config::tiny().with_downscale(Some(2));
        assert_eq!(cfg.size_multiple(), 16);
        let half = crate::nets::blocks::seeded_init(cfg.init(&dev), 7);
        let mut full = half.clone();
        full.downscale = 1;
        let small = Tensor::<4>::random(
            [1, 3, 16, 24],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );
        let out = half.forward(upsample_nearest(small.clone(), 2));
        let expected = full.forward(small);
        assert_eq!(out.part_logits.dims(), [1, 25, 32, 48]);
        for (a, b) in [
            (out.part_logits, expected.part_logits),
            (out.uv, expected.uv),
            (out.albedo, expected.albedo),
        ] {
            let diff: f32 = (a - upsample_nearest(b, 2)).abs().max().into_scalar();
            assert!(diff < 1e-5, "{diff}");
        }
        // 24 is a multiple of 8 (the native net's) but not of 16.
        let bad = half.try_forward(Tensor::<4>::zeros([1, 3, 24, 32], &dev));
        assert!(matches!(bad, Err(ShapeError::Size { multiple: 16, .. })));
    }

    /// Run files written before the option existed hold no `downscale`: full resolution.
    #[test]
    fn config_without_downscale_reads_as_full_resolution() {
        let old = r#"{"base_width": 8, "depth": 4, "image_size": 128, "in_channels": 4,
            "hole": "Telea"}"#;
        let cfg: Stage1Config = serde_json::from_str(old).unwrap();
        assert_eq!((cfg.downscale, cfg.downscale_factor()), (None, 1));
        assert_eq!(cfg.size_multiple(), 16);
    }

    #[test]
    fn try_forward_rejects_bad_shapes() {
        let dev = device();
        let net = Stage1Config::tiny().init(&dev);
        let bad_c = net.try_forward(Tensor::<4>::zeros([1, 4, 64, 64], &dev));
        assert_eq!(
            bad_c.err(),
            Some(ShapeError::Channels {
                expected: 3,
                actual: 4
            })
        );
        let bad_size = net.try_forward(Tensor::<4>::zeros([1, 3, 60, 64], &dev));
        assert!(matches!(
            bad_size,
            Err(ShapeError::Size { multiple: 8, .. })
        ));
        assert!(net
            .try_forward(Tensor::<4>::zeros([1, 3, 16, 24], &dev))
            .is_ok());
    }

    #[test]
    fn texture_map_packs_and_masks() {
        let dev = device();
        // Two pixels: pixel 0 argmax = class 0 (background), pixel 1 argmax = class 12.
        let mut logits = vec![0.0f32; 25 * 2];
        logits[0] = 5.0; // class 0, pixel 0
        logits[12 * 2 + 1] = 5.0; // class 12, pixel 1
        let out = Stage1Output {
            part_logits: Tensor::from_data(TensorData::new(logits, [1, 25, 1, 2]), &dev),
            uv: Tensor::from_floats([[[[0.3, 0.4]], [[0.5, 0.6]]]], &dev),
            albedo: Tensor::from_floats([[[[0.1, 0.2]], [[0.3, 0.4]], [[0.5, 1.0]]]], &dev),
        };
        let t: Vec<f32> = out.texture_map().into_data().try_to_vec().unwrap();
        // Layout [1, 6, 1, 2]: channel-major, two pixels per channel.
        let expected = [0.0, 0.5, 0.0, 0.4, 0.0, 0.6, 0.0, 0.2, 0.0, 0.4, 0.0, 1.0];
        for (a, e) in t.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{t:?}");
        }
        let labels = labels_of(&out);
        assert_eq!(labels, vec![0, 12]);
    }

    /// The hard part labels of `out`, flattened.
    fn labels_of(out: &Stage1Output) -> Vec<i64> {
        out.part_labels()
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn subject_when_parts_together_beat_background() {
        let dev = device();
        // One pixel: background logit 2 beats every single part (0, and 0.5 for part 5),
        // but p(bg) = e^2 / (e^2 + 23 + e^0.5) ≈ 0.23 < 0.5: subject, part 5.
        // A second pixel where background really dominates: logit 4 → p(bg) ≈ 0.69.
        let mut logits = vec![0.0f32; 25 * 2];
        logits[0] = 2.0;
        logits[5 * 2] = 0.5;
        logits[1] = 4.0;
        let out = Stage1Output {
            part_logits: Tensor::from_data(TensorData::new(logits, [1, 25, 1, 2]), &dev),
            uv: Tensor::zeros([1, 2, 1, 2], &dev),
            albedo: Tensor::zeros([1, 3, 1, 2], &dev),
        };
        let labels = labels_of(&out);
        assert_eq!(labels, vec![5, 0]);
    }
}
