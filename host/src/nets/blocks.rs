//! Shared convolution blocks for the Unveil networks.
//!
//! Every block uses only operations that map one-to-one onto ONNX operators that tract
//! runs: `Conv` (with bias), `LeakyRelu`, `Resize` (nearest, exact ×2) and, in the networks
//! that use these blocks, `Concat`. No normalisation layer: nothing to fold at export time,
//! and the behaviour in training and inference is identical.
//!
//! | block | ONNX | shape |
//! |---|---|---|
//! | [`ConvBlock`] | `Conv(3x3, pad 1)` → `LeakyRelu` | `[B, Cin, H, W]` → `[B, Cout, H, W]` |
//! | [`Down`] | `Conv(3x3, stride 2, pad 1)` → `LeakyRelu` | `[B, Cin, H, W]` → `[B, Cout, H/2, W/2]` |
//! | [`Up`] | `Resize(nearest, ×2)` → `Conv(3x3, pad 1)` → `LeakyRelu`; in f32 the first two are written as one `ConvTranspose(4x4, stride 2)` with the same output | `[B, Cin, H, W]` → `[B, Cout, 2H, 2W]` |
//! | [`Head`] | `Conv(1x1)` | `[B, Cin, H, W]` → `[B, Cout, H, W]` |

use burn::module::{ModuleMapper, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::interpolate::{Interpolate2dConfig, InterpolateMode};
use burn::nn::{LeakyRelu, LeakyReluConfig, PaddingConfig2d};
use burn::prelude::*;
use rand::Rng as _;

/// Default negative slope of every LeakyReLU in these blocks.
pub const LEAKY_SLOPE: f64 = 0.2;

/// Configuration of a [`ConvBlock`]: 3x3 convolution (stride 1, padding 1) + LeakyReLU.
#[derive(Config, Debug)]
pub struct ConvBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// LeakyReLU negative slope.
    #[config(default = "LEAKY_SLOPE")]
    pub negative_slope: f64,
}

/// 3x3 convolution (stride 1, padding 1, bias) followed by LeakyReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    act: LeakyRelu,
}

impl ConvBlockConfig {
    /// Build the block on `device` (burn's lazy default init; see [`seeded_init`]).
    pub fn init(&self, device: &Device) -> ConvBlock {
        ConvBlock {
            conv: conv3x3(self.in_channels, self.out_channels, 1, device),
            act: leaky(self.negative_slope),
        }
    }
}

impl ConvBlock {
    /// The convolution and LeakyReLU slope, for the ONNX exporter.
    pub(crate) fn parts(&self) -> (&Conv2d, f64) {
        (&self.conv, self.act.negative_slope)
    }

    /// `[B, Cin, H, W]` → `[B, Cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act.forward(self.conv.forward(x))
    }
}

/// Configuration of a [`Down`] block: stride-2 3x3 convolution + LeakyReLU.
#[derive(Config, Debug)]
pub struct DownConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// LeakyReLU negative slope.
    #[config(default = "LEAKY_SLOPE")]
    pub negative_slope: f64,
}

/// Downsampling: 3x3 convolution with stride 2 and padding 1, then LeakyReLU.
/// Halves H and W (exactly, for even H and W).
#[derive(Module, Debug)]
pub struct Down {
    conv: Conv2d,
    act: LeakyRelu,
}

impl DownConfig {
    /// Build the block on `device`.
    pub fn init(&self, device: &Device) -> Down {
        Down {
            conv: conv3x3(self.in_channels, self.out_channels, 2, device),
            act: leaky(self.negative_slope),
        }
    }
}

impl Down {
    /// The convolution and LeakyReLU slope, for the ONNX exporter.
    pub(crate) fn parts(&self) -> (&Conv2d, f64) {
        (&self.conv, self.act.negative_slope)
    }

    /// `[B, Cin, H, W]` → `[B, Cout, H/2, W/2]` (H and W even).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act.forward(self.conv.forward(x))
    }
}

/// Configuration of an [`Up`] block: nearest ×2 upsample + 3x3 convolution + LeakyReLU.
#[derive(Config, Debug)]
pub struct UpConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// LeakyReLU negative slope.
    #[config(default = "LEAKY_SLOPE")]
    pub negative_slope: f64,
}

/// Upsampling without transposed convolution (no checkerboard artefacts, trivial to
/// export): nearest-neighbour ×2 (each pixel repeated into a 2x2 square), then a 3x3
/// convolution (padding 1) and LeakyReLU.
///
/// The exporter writes the f32 form as one `ConvTranspose` whose kernel sums the taps
/// that read the same input pixel (`unveil_device::onnx::ConvWeights::transposed_upsample`):
/// the same function, 2.25x fewer multiply-adds, and the plain structure stays for training.
///
/// For an exact ×2 the nearest resize is the same under ONNX `Resize` with either
/// `asymmetric`/`floor` or the default `half_pixel`/`round_prefer_floor`: output pixel
/// `i` reads input pixel `i / 2` (see [`upsample_nearest`]).
#[derive(Module, Debug)]
pub struct Up {
    conv: Conv2d,
    act: LeakyRelu,
}

impl UpConfig {
    /// Build the block on `device`.
    pub fn init(&self, device: &Device) -> Up {
        Up {
            conv: conv3x3(self.in_channels, self.out_channels, 1, device),
            act: leaky(self.negative_slope),
        }
    }
}

impl Up {
    /// The convolution and LeakyReLU slope, for the ONNX exporter.
    pub(crate) fn parts(&self) -> (&Conv2d, f64) {
        (&self.conv, self.act.negative_slope)
    }

    /// `[B, Cin, H, W]` → `[B, Cout, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act.forward(self.conv.forward(upsample_nearest(x, 2)))
    }
}

/// Configuration of a [`Head`]: a 1x1 convolution with bias, no activation.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
}

/// Output projection: 1x1 convolution with bias and no activation (the caller applies
/// sigmoid / softmax as the output's meaning requires).
#[derive(Module, Debug)]
pub struct Head {
    conv: Conv2d,
}

impl HeadConfig {
    /// Build the head on `device`.
    pub fn init(&self, device: &Device) -> Head {
        Head {
            conv: Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1]).init(device),
        }
    }
}

impl Head {
    /// The 1x1 convolution, for the ONNX exporter.
    pub(crate) fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// `[B, Cin, H, W]` → `[B, Cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// Nearest-neighbour upsampling by an integer `factor`: `[B, C, H, W]` →
/// `[B, C, factor·H, factor·W]`, output `(y, x)` = input `(y / factor, x / factor)`
/// (integer division), i.e. each pixel repeated into a `factor`² square.
pub fn upsample_nearest(x: Tensor<4>, factor: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let options = Interpolate2dConfig::new()
        .with_output_size(Some([factor * h, factor * w]))
        .with_mode(InterpolateMode::Nearest)
        .with_align_corners(false)
        .init();
    options.forward(x)
}

/// Re-initialise every float parameter of `module` from `seed`, independently of burn's
/// RNG. For a layer whose weight has fan-in `f` (`in · kh · kw` for a conv), values are
/// uniform in `[-b, b)` with
///
/// - weights of a conv followed by LeakyReLU (slope `a`): He's `b = sqrt(6 / ((1 + a²) f))`,
///   which keeps the activations' scale from layer to layer. burn's default (and
///   PyTorch's), `b = 1/sqrt(f)`, shrinks it ~2.4x per layer with no normalisation layer
///   to undo that: after the nine layers down a U-Net's encoder the deep path carried
///   ~1e-4 of the signal, and G1 learned only a mean silhouette from its biases and
///   shallow skips;
/// - weights of an output head (a module whose name ends in `head`, no activation after
///   it): `b = 1/sqrt(f)`, so that outputs start small and sigmoid/tanh start unsaturated;
/// - biases: `b = 1/sqrt(f)` with the fan-in of the weight before them.
///
/// Each parameter gets its own generator, seeded from `seed` and the parameter's module
/// path (`"stem.conv.weight"`), so the result depends only on `seed` and the architecture:
/// not on thread interleaving (burn's NdArray RNG is process-global), not on the backend
/// (CPU and GPU start from the same weights), and not on burn's lazy-initialisation order.
/// Lazy parameters are replaced without ever running their own initialiser. Parameter ids
/// are kept.
pub fn seeded_init<M: Module>(module: M, seed: u64) -> M {
    module.map(&mut SeededInit {
        seed,
        path: Vec::new(),
        last_fan_in: None,
    })
}

struct SeededInit {
    seed: u64,
    path: Vec<String>,
    last_fan_in: Option<usize>,
}

impl ModuleMapper for SeededInit {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape = param.lazy_shape();
        let dims = shape.as_slice().to_vec();
        let is_weight = dims.len() >= 2;
        let fan_in = if is_weight {
            // Weight [out, in, k...]: fan-in = in · Π k. Remembered for the bias that follows.
            let f = dims[1..].iter().product::<usize>().max(1);
            self.last_fan_in = Some(f);
            f
        } else {
            self.last_fan_in
                .unwrap_or_else(|| dims.iter().product::<usize>().max(1))
        };
        let is_head = self.path.iter().any(|m| m.ends_with("head"));
        let bound = if is_weight && !is_head {
            let slope = LEAKY_SLOPE as f32;
            (6.0 / ((1.0 + slope * slope) * fan_in as f32)).sqrt()
        } else {
            1.0 / (fan_in as f32).sqrt()
        };
        let path = self.path.join(".");
        let mut rng = unveil_shared::rng::stream(self.seed, fnv1a(path.as_bytes()));
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
        let device = param.lazy_device();
        let id = param.id;
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
        param.transform_for_load(tensor, id)
    }
}

/// `module` with every float parameter set to 0 (ids kept). A zeroed output head makes a
/// residual network start as the identity of what it adds to.
pub fn zeroed<M: Module>(module: M) -> M {
    module.map(&mut Zeroed)
}

struct Zeroed;

impl ModuleMapper for Zeroed {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (shape, device, id) = (param.lazy_shape(), param.lazy_device(), param.id);
        param.transform_for_load(Tensor::<D>::zeros(shape, &device), id)
    }
}

/// FNV-1a hash of a byte string (stable across platforms and Rust versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn conv3x3(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn leaky(negative_slope: f64) -> LeakyRelu {
    LeakyReluConfig::new()
        .with_negative_slope(negative_slope)
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn shapes() {
        let dev = device();
        let x = Tensor::<4>::zeros([2, 3, 8, 12], &dev);
        assert_eq!(
            ConvBlockConfig::new(3, 5)
                .init(&dev)
                .forward(x.clone())
                .dims(),
            [2, 5, 8, 12]
        );
        assert_eq!(
            DownConfig::new(3, 7).init(&dev).forward(x.clone()).dims(),
            [2, 7, 4, 6]
        );
        assert_eq!(
            UpConfig::new(3, 4).init(&dev).forward(x.clone()).dims(),
            [2, 4, 16, 24]
        );
        assert_eq!(
            HeadConfig::new(3, 9).init(&dev).forward(x).dims(),
            [2, 9, 8, 12]
        );
    }

    #[test]
    fn upsample_repeats_each_pixel_into_a_2x2_square() {
        let dev = device();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &dev);
        let y: Vec<f32> = upsample_nearest(x, 2).into_data().try_to_vec().unwrap();
        #[rustfmt::skip]
        let expected = vec![
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(y, expected);
    }

    #[test]
    fn upsample_odd_size_also_repeats() {
        // 3 → 6: output i reads input i / 2, for every i.
        let dev = device();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0, 3.0]]]], &dev);
        let y: Vec<f32> = upsample_nearest(x, 2).into_data().try_to_vec().unwrap();
        assert_eq!(
            y,
            vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
    }

    #[test]
    fn upsample_by_three_repeats_into_3x3_squares() {
        let dev = device();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0]]]], &dev);
        let y: Vec<f32> = upsample_nearest(x, 3).into_data().try_to_vec().unwrap();
        let row = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
        assert_eq!(y, row.repeat(3));
    }

    fn values<M: Module>(m: &M) -> Vec<f32> {
        crate::test_util::param_values(m)
    }

    #[test]
    fn seeded_init_depends_only_on_seed() {
        let dev = device();
        let cfg = ConvBlockConfig::new(4, 6);
        let a = seeded_init(cfg.init(&dev), 7);
        // Draw from burn's global RNG in between: must not matter.
        let _noise = Tensor::<2>::random([64, 64], burn::tensor::Distribution::Default, &dev);
        let b = seeded_init(cfg.init(&dev), 7);
        let c = seeded_init(cfg.init(&dev), 8);
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        // Weights (a conv before LeakyReLU 0.2, fan-in 4·3·3 = 36): He bound
        // sqrt(6 / (1.04 · 36)) = 0.4003; the 6 biases: 1/sqrt(36) = 1/6.
        let v = values(&a);
        assert_eq!(v.len(), 6 * 4 * 9 + 6);
        let (weights, biases) = v.split_at(6 * 4 * 9);
        let max_abs = |xs: &[f32]| xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let he = (6.0f32 / (1.04 * 36.0)).sqrt();
        assert!(max_abs(weights) <= he && max_abs(weights) > 0.95 * he);
        assert!(max_abs(biases) <= 1.0 / 6.0, "{biases:?}");
    }

    #[test]
    fn seeded_init_keeps_heads_small() {
        let dev = device();
        #[derive(Module, Debug)]
        struct Net {
            out_head: Head,
        }
        // A 1x1 head, fan-in 16: weights and bias within 1/4.
        let net = Net {
            out_head: HeadConfig::new(16, 8).init(&dev),
        };
        let v = values(&seeded_init(net, 3));
        assert_eq!(v.len(), 16 * 8 + 8);
        assert!(v.iter().all(|x| x.abs() <= 0.25), "{v:?}");
        assert!(v.iter().any(|x| x.abs() > 0.2));
    }

    #[test]
    fn seeded_init_keeps_autodiff() {
        let dev = device().autodiff();
        let block = seeded_init(HeadConfig::new(2, 1).init(&dev), 1);
        let x = Tensor::<4>::ones([1, 2, 1, 1], &dev);
        let grads = block.forward(x).sum().backward();
        let g = block.conv.weight.val().grad(&grads);
        assert!(g.is_some(), "re-initialised weights must still be tracked");
    }

    #[test]
    fn leaky_relu_slope_is_applied() {
        // A 1x1 "block" whose conv we overwrite: weight 1, bias 0 → output = leaky(x).
        let dev = device();
        let block = ConvBlockConfig::new(1, 1).init(&dev);
        let weight = Tensor::<4>::zeros([1, 1, 3, 3], &dev).slice_assign(
            [0..1, 0..1, 1..2, 1..2],
            Tensor::<4>::ones([1, 1, 1, 1], &dev),
        );
        let block = ConvBlock {
            conv: Conv2d {
                weight: Param::from_tensor(weight),
                bias: Some(Param::from_tensor(Tensor::<1>::zeros([1], &dev))),
                ..block.conv
            },
            act: block.act,
        };
        let x = Tensor::<4>::from_floats([[[[-1.0, 2.0]]]], &dev);
        let y: Vec<f32> = block.forward(x).into_data().try_to_vec().unwrap();
        assert!(
            (y[0] + 0.2).abs() < 1e-6 && (y[1] - 2.0).abs() < 1e-6,
            "{y:?}"
        );
    }
}
