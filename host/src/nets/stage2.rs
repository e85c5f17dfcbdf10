//! Stage 2: the restoration generator G2 (split latent, two decoders, compositor); its
//! adversary is [`super::discriminator`]. How this maps to the method's Fig. 3, and the
//! decisions it leaves open (channel split, alpha matte, residual decoders):
//! `docs/method.md`, "Stage 2: G2".
//!
//! G2 takes the occluded image concatenated with a *condition* (the texture map from the
//! frozen G1, or an ablation: a 2D silhouette, or nothing; see [`Condition`]):
//!
//! 1. encoder: `stem` then `depth` × (`Down`, `ConvBlock`) → bottleneck `[B, n, H/2^d, W/2^d]`;
//! 2. split along channels: `Z1 = channels 0..n/2`, `Z2 = channels n/2..n`;
//! 3. foreground decoder `Z1 →` RGB (tanh) + alpha (sigmoid), no skips: the subject must
//!    come from the latent, not be copied from the occluded input;
//! 4. background decoder `Z2 →` RGB (tanh), with U-Net skips (concat) from the encoder
//!    levels of the same size: the visible background is mostly copied;
//! 5. compositor `ŷ = α·y_f + (1 − α)·y_b`.
//!
//! RGB outputs are in the input's normalisation ([-1, 1]), so `ŷ` compares with `x` directly.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};

use crate::nets::blocks::{
    zeroed, ConvBlock, ConvBlockConfig, Down, DownConfig, Head, HeadConfig, Up, UpConfig,
};
use crate::nets::stage1::{Stage1Output, CH_I};
use crate::nets::{check_dims, ShapeError};

pub use unveil_shared::hole::HoleInput;
pub use unveil_shared::manifest::Condition;

/// Configuration of G2.
#[derive(Config, Debug)]
pub struct Stage2Config {
    /// Channels of the first level; level `i` has `base_width * 2^i` channels.
    pub base_width: usize,
    /// Number of downsampling levels; input H and W must be multiples of `2^depth`.
    pub depth: usize,
    /// Side of the square training images this configuration is meant for.
    pub image_size: usize,
    /// What G2 is conditioned on besides the occluded image.
    #[config(default = "Condition::Texture")]
    pub condition: Condition,
    /// How the image input carries the hole: absent (the patent-literal 3 planes), or
    /// pre-filled RGB plus a hole plane (see [`unveil_shared::hole`]).
    #[config(default = "HoleInput::Absent")]
    pub hole: HoleInput,
}

impl Default for Stage2Config {
    /// The `default` preset: 128x128, width 8, 4 levels (8x8 bottleneck of 128 channels,
    /// split 64 / 64): ~0.3 GMAC per frame, sized with G1 for the camera's frame budget.
    fn default() -> Self {
        Self::new(8, 4, 128)
    }
}

impl Stage2Config {
    /// The `tiny` preset: 64x64, width 8, 3 levels.
    pub fn tiny() -> Self {
        Self::new(8, 3, 64)
    }

    /// Input channels: the image input's (3, or 4 with the hole plane) + the condition's.
    pub fn in_channels(&self) -> usize {
        self.hole.image_channels() + self.condition.channels()
    }

    /// Build G2 on `device` (burn's default init; wrap in [`crate::nets::blocks::seeded_init`]).
    pub fn init(&self, device: &Device) -> Stage2Net {
        let width = |level: usize| self.base_width << level;
        let latent = width(self.depth);
        let half = latent / 2;
        let mut down = Vec::with_capacity(self.depth);
        let mut down_conv = Vec::with_capacity(self.depth);
        for level in 0..self.depth {
            down.push(DownConfig::new(width(level), width(level + 1)).init(device));
            down_conv.push(ConvBlockConfig::new(width(level + 1), width(level + 1)).init(device));
        }
        // Both decoders are stored deepest level first. Their first `Up` reads a half of
        // the latent (`half` channels) instead of the full bottleneck.
        let (mut fg_up, mut fg_conv, mut bg_up, mut bg_conv) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for level in (0..self.depth).rev() {
            let from = if level + 1 == self.depth {
                half
            } else {
                width(level + 1)
            };
            fg_up.push(UpConfig::new(from, width(level)).init(device));
            fg_conv.push(ConvBlockConfig::new(width(level), width(level)).init(device));
            bg_up.push(UpConfig::new(from, width(level)).init(device));
            bg_conv.push(ConvBlockConfig::new(2 * width(level), width(level)).init(device));
        }
        Stage2Net {
            stem: ConvBlockConfig::new(self.in_channels(), width(0)).init(device),
            down,
            down_conv,
            fg_up,
            fg_conv,
            fg_head: HeadConfig::new(width(0), 4).init(device),
            bg_up,
            bg_conv,
            bg_head: HeadConfig::new(width(0), 3).init(device),
            in_channels: self.in_channels(),
            depth: self.depth,
            hole: self.hole,
        }
    }
}

/// G2 (see the module docs). Fields are crate-visible for the ONNX exporter.
#[derive(Module, Debug)]
pub struct Stage2Net {
    pub(crate) stem: ConvBlock,
    pub(crate) down: Vec<Down>,
    pub(crate) down_conv: Vec<ConvBlock>,
    pub(crate) fg_up: Vec<Up>,
    pub(crate) fg_conv: Vec<ConvBlock>,
    /// 1x1 → 4 channels: RGB (tanh) then alpha (sigmoid).
    pub(crate) fg_head: Head,
    pub(crate) bg_up: Vec<Up>,
    pub(crate) bg_conv: Vec<ConvBlock>,
    pub(crate) bg_head: Head,
    pub(crate) in_channels: usize,
    pub(crate) depth: usize,
    /// How the image input carries the hole (configuration, not a weight).
    #[module(skip)]
    pub(crate) hole: HoleInput,
}

/// The encoder's result: the bottleneck and the skips for the background decoder.
#[derive(Debug, Clone)]
pub struct Latent {
    /// `[B, n, H/2^d, W/2^d]`.
    pub z: Tensor<4>,
    /// Encoder features before each `Down`, shallowest first: level `l` is
    /// `[B, w·2^l, H/2^l, W/2^l]`.
    pub skips: Vec<Tensor<4>>,
}

impl Latent {
    /// `(Z1, Z2)`: the first and second half of the bottleneck's channels.
    pub fn split(&self) -> (Tensor<4>, Tensor<4>) {
        let n = self.z.dims()[1];
        (
            self.z.clone().narrow(1, 0, n / 2),
            self.z.clone().narrow(1, n / 2, n - n / 2),
        )
    }
}

/// Everything G2 produces.
#[derive(Debug, Clone)]
pub struct Stage2Output {
    /// `[B, 3, H, W]` the composited estimate ŷ of the clean image, in [-1, 1].
    pub restored: Tensor<4>,
    /// `[B, 3, H, W]` foreground y_f, in [-1, 1].
    pub foreground: Tensor<4>,
    /// `[B, 1, H, W]` alpha matte α, in 0..1.
    pub alpha: Tensor<4>,
    /// `[B, 3, H, W]` background y_b, in [-1, 1].
    pub background: Tensor<4>,
}

/// `ŷ = α·y_f + (1 − α)·y_b` (`alpha` `[B, 1, H, W]` broadcast over the RGB channels).
pub fn composite(foreground: Tensor<4>, background: Tensor<4>, alpha: Tensor<4>) -> Tensor<4> {
    let one_minus = alpha.clone().neg().add_scalar(1.0);
    foreground.mul(alpha).add(background.mul(one_minus))
}

impl Stage2Net {
    /// How this G2's image input carries the hole.
    pub fn hole(&self) -> HoleInput {
        self.hole
    }

    /// Check that `dims` (`[B, C, H, W]`, image and condition concatenated) fits G2.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ShapeError> {
        check_dims(dims, self.in_channels, 1 << self.depth)
    }

    /// Encoder: `[B, 3 + c, H, W]` → [`Latent`].
    pub fn encode(&self, x: Tensor<4>) -> Latent {
        let mut skips = Vec::with_capacity(self.depth);
        let mut h = self.stem.forward(x); // [B, w, H, W]
        for (down, conv) in self.down.iter().zip(&self.down_conv) {
            skips.push(h.clone());
            h = conv.forward(down.forward(h)); // [B, 2c, H/2, W/2]
        }
        Latent { z: h, skips }
    }

    /// The same G2 with both output heads zeroed. A G2 that reads the hole then outputs
    /// its pre-filled input exactly (see [`forward`](Self::forward)), so training starts
    /// from the classical fill and every step is a change to it.
    pub fn residual_start(self) -> Self {
        Self {
            fg_head: zeroed(self.fg_head),
            bg_head: zeroed(self.bg_head),
            ..self
        }
    }

    /// Foreground decoder: `Z1` `[B, n/2, h, w]` → (y_f `[B, 3, H, W]`, α `[B, 1, H, W]`).
    pub fn decode_foreground(&self, z1: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut h = z1;
        for (up, conv) in self.fg_up.iter().zip(&self.fg_conv) {
            h = conv.forward(up.forward(h)); // [B, c, 2h, 2w]
        }
        let out = self.fg_head.forward(h); // [B, 4, H, W]
        (
            tanh(out.clone().narrow(1, 0, 3)),
            sigmoid(out.narrow(1, 3, 1)),
        )
    }

    /// Background decoder: `Z2` `[B, n/2, h, w]` and the encoder skips → y_b `[B, 3, H, W]`.
    pub fn decode_background(&self, z2: Tensor<4>, skips: &[Tensor<4>]) -> Tensor<4> {
        let mut h = z2;
        for ((up, conv), skip) in self.bg_up.iter().zip(&self.bg_conv).zip(skips.iter().rev()) {
            let h_up = up.forward(h); // [B, c, 2h, 2w]
            h = conv.forward(Tensor::cat(vec![h_up, skip.clone()], 1)); // [B, c, 2h, 2w]
        }
        tanh(self.bg_head.forward(h))
    }

    /// `x`: `[B, 3 + c, H, W]` (occluded image in [-1, 1] concatenated with the condition).
    /// Unchecked; see [`try_forward`](Self::try_forward).
    ///
    /// With a hole input (4 image planes), both decoders are residual: their tanh output
    /// is added to the pre-filled RGB (planes 0..3 of `x`) and clamped to [-1, 1], so y_f,
    /// y_b and ŷ stay images and every loss keeps its meaning.
    pub fn forward(&self, x: Tensor<4>) -> Stage2Output {
        let base = (self.hole != HoleInput::Absent).then(|| x.clone().narrow(1, 0, 3));
        let latent = self.encode(x);
        let (z1, z2) = latent.split();
        let (foreground, alpha) = self.decode_foreground(z1);
        let background = self.decode_background(z2, &latent.skips);
        let (foreground, background) = match base {
            Some(b) => (
                b.clone().add(foreground).clamp(-1.0, 1.0),
                b.add(background).clamp(-1.0, 1.0),
            ),
            None => (foreground, background),
        };
        Stage2Output {
            restored: composite(foreground.clone(), background.clone(), alpha.clone()),
            foreground,
            alpha,
            background,
        }
    }

    /// [`forward`](Self::forward) after [`check_input`](Self::check_input).
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Stage2Output, ShapeError> {
        self.check_input(x.dims())?;
        Ok(self.forward(x))
    }
}

/// The condition tensor for G2 from G1's output on the occluded image:
/// - `Texture`: the 6-channel texture map;
/// - `Silhouette`: a 1-channel 0/1 mask, subject wherever the texture map's part index is
///   above 0: the same amodal prediction collapsed to 2D, so the ablation isolates what
///   the 3D surface information adds;
/// - `None`: `None`;
/// - `Truth` (the oracle): `truth`, the renderer's exact texture map `[B, 6, H, W]` of the
///   batch (`None` when the caller has none, which G2's input width then refuses).
pub fn condition_tensor(
    condition: Condition,
    g1: &Stage1Output,
    truth: Option<&Tensor<4>>,
) -> Option<Tensor<4>> {
    match condition {
        Condition::Texture => Some(g1.texture_map()),
        Condition::Silhouette => Some(silhouette_from_texture(g1.texture_map())),
        Condition::None => None,
        Condition::Truth => truth.cloned(),
    }
}

/// `[B, 6, H, W]` texture map → `[B, 1, H, W]` 0/1 silhouette (part index > 0).
pub fn silhouette_from_texture(texture: Tensor<4>) -> Tensor<4> {
    texture.narrow(1, CH_I, 1).greater_elem(0.0).float()
}

/// G2's input: the image input (the occluded image, or its hole-aware form) with the
/// condition (if any) concatenated on channels.
pub fn stage2_input(image: Tensor<4>, condition: Option<Tensor<4>>) -> Tensor<4> {
    match condition {
        Some(c) => Tensor::cat(vec![image, c], 1),
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::blocks::seeded_init;
    use crate::test_util::device;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn input(dev: &Device, c: usize, seed: u64) -> Tensor<4> {
        let n = c * 64 * 64;
        let data: Vec<f32> = (0..n)
            .map(|i| (((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(data, [1, c, 64, 64]), dev)
    }

    #[test]
    fn shapes_and_ranges() {
        let dev = device();
        for condition in [Condition::Texture, Condition::Silhouette, Condition::None] {
            let cfg = Stage2Config::tiny().with_condition(condition);
            let net = seeded_init(cfg.init(&dev), 1);
            let out = net.forward(input(&dev, cfg.in_channels(), 3));
            assert_eq!(out.restored.dims(), [1, 3, 64, 64]);
            assert_eq!(out.foreground.dims(), [1, 3, 64, 64]);
            assert_eq!(out.background.dims(), [1, 3, 64, 64]);
            assert_eq!(out.alpha.dims(), [1, 1, 64, 64]);
            assert!(values(out.alpha).iter().all(|a| (0.0..=1.0).contains(a)));
            assert!(values(out.restored)
                .iter()
                .all(|a| (-1.0..=1.0).contains(a)));
        }
        let net = Stage2Config::tiny().init(&dev);
        assert_eq!(
            net.try_forward(input(&dev, 3, 0)).err(),
            Some(ShapeError::Channels {
                expected: 9,
                actual: 3
            })
        );
    }

    /// A hole-aware G2 after `residual_start` returns its pre-filled RGB exactly (y_f,
    /// y_b and ŷ), whatever the hole plane and condition say; its decoders then add a
    /// clamped change: a pre-fill of 0.9 plus a head pushed to tanh → 1 stays at 1.
    #[test]
    fn residual_g2_starts_at_its_prefill() {
        let dev = device();
        let cfg = Stage2Config::tiny().with_hole(HoleInput::Telea);
        assert_eq!(cfg.in_channels(), 4 + 6);
        let g = seeded_init(cfg.init(&dev), 5).residual_start();
        let x = Tensor::<4>::random(
            [2, 10, 64, 64],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );
        let rgb = values(x.clone().narrow(1, 0, 3));
        let out = g.forward(x.clone());
        assert_eq!(values(out.restored), rgb);
        assert_eq!(values(out.foreground), rgb);
        assert_eq!(values(out.background), rgb);
        // Push the background head's bias far up: y_b = clamp(x + tanh(big)) = clamp(x + 1).
        let g = Stage2Net {
            bg_head: crate::nets::blocks::HeadConfig::new(8, 3).init(&dev),
            ..g
        };
        let g = g.map(&mut BiasTo(50.0));
        let bg = values(g.forward(x).background);
        for (b, r) in bg.iter().zip(&rgb) {
            assert!((b - (r + 1.0).min(1.0)).abs() < 1e-5, "{b} vs {r}");
        }
    }

    /// Sets every bias of the background head to a constant, zeroing its weights.
    struct BiasTo(f32);
    impl burn::module::ModuleMapper for BiasTo {
        fn map_float<const D: usize>(
            &mut self,
            p: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let (shape, device, id) = (p.lazy_shape(), p.lazy_device(), p.id);
            let v = if shape.as_slice() == [3] { self.0 } else { 0.0 };
            let t = if v == 0.0 {
                p.val()
            } else {
                Tensor::<D>::full(shape, v, &device)
            };
            p.transform_for_load(t, id)
        }
    }

    #[test]
    fn compositor_blends_by_alpha() {
        let dev = device();
        let fg = Tensor::<4>::from_floats([[[[1.0, 1.0, 1.0]]]], &dev);
        let bg = Tensor::<4>::from_floats([[[[-1.0, 0.5, 0.0]]]], &dev);
        let alpha = Tensor::<4>::from_floats([[[[0.0, 1.0, 0.25]]]], &dev);
        let y = values(composite(fg, bg, alpha));
        assert_eq!(y, vec![-1.0, 1.0, 0.25]);
    }

    /// The split really separates the decoders: perturbing Z2 leaves y_f and α unchanged,
    /// perturbing Z1 leaves y_b unchanged (and each perturbation does move its own output).
    #[test]
    fn split_latent_separates_foreground_and_background() {
        let dev = device();
        let cfg = Stage2Config::tiny();
        let net = seeded_init(cfg.init(&dev), 5);
        let latent = net.encode(input(&dev, cfg.in_channels(), 7));
        let (z1, z2) = latent.split();
        assert_eq!(z1.dims()[1], 32);
        assert_eq!(z2.dims()[1], 32);
        let noise = |t: &Tensor<4>| {
            t.clone()
                .add(input(&dev, 32, 11).narrow(2, 0, 8).narrow(3, 0, 8))
        };

        let (fg, alpha) = net.decode_foreground(z1.clone());
        let bg = net.decode_background(z2.clone(), &latent.skips);
        // Perturb Z2: foreground path untouched, background moves.
        let (fg2, alpha2) = net.decode_foreground(z1.clone());
        let bg2 = net.decode_background(noise(&z2), &latent.skips);
        assert_eq!(values(fg.clone()), values(fg2));
        assert_eq!(values(alpha.clone()), values(alpha2));
        assert!(max_abs_diff(&values(bg.clone()), &values(bg2)) > 1e-4);
        // Perturb Z1: background untouched, foreground moves.
        let (fg3, _) = net.decode_foreground(noise(&z1));
        let bg3 = net.decode_background(z2, &latent.skips);
        assert_eq!(values(bg), values(bg3));
        assert!(max_abs_diff(&values(fg), &values(fg3)) > 1e-4);
    }

    #[test]
    fn silhouette_condition_is_subject_mask() {
        let dev = device();
        // Part index channel: 0, 1/24, 0, 1 → mask 0, 1, 0, 1.
        let mut data = vec![0.0f32; 6 * 4];
        data[1] = 1.0 / 24.0;
        data[3] = 1.0;
        data[4] = 0.7; // U (channel 1) of background pixel 0 must not matter
        let t = Tensor::<4>::from_data(TensorData::new(data, [1, 6, 2, 2]), &dev);
        assert_eq!(values(silhouette_from_texture(t)), vec![0.0, 1.0, 0.0, 1.0]);
    }
}
