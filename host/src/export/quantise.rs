//! Static int8 quantisation of convolutions: symmetric int8 weights (one scale per
//! convolution, or per output channel), per-tensor asymmetric uint8 activations from
//! calibrated ranges.
//!
//! Each convolution becomes `QuantizeLinear → QLinearConv → DequantizeLinear`, everything
//! else stays f32. `QLinearConv` rather than the QDQ pattern (`DequantizeLinear` on the
//! weights feeding a float `Conv`), because tract 0.23 folds a QDQ weight back into an
//! f32 constant and runs a float convolution, while it lowers `QLinearConv` to its integer
//! matrix-multiply kernels (see `unveil inspect`). Stock runtimes run `QLinearConv` too.
//!
//! Per-tensor weight scales are the default because of what tract does with the output
//! requantisation `y = round(acc · x_scale · w_scale / y_scale) + y_zero`: with a scalar
//! factor it fuses the scaling, zero point, clamp and cast into the integer matrix
//! product's store; with a per-channel factor it runs them (and a zero-point correction
//! pass) as seven separate elementwise passes over the `i32` accumulator, which made the
//! int8 graphs ~2.5x slower.

use serde::{Deserialize, Serialize};

use unveil_shared::manifest::WeightScales;

use unveil_device::onnx::{ConvWeights, GraphBuilder};

/// Smallest scale written, so that an all-zero tensor or channel still has a valid one.
const MIN_SCALE: f32 = 1e-8;

/// An observed value range of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

/// Calibrated ranges of one convolution's input and (pre-activation) output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConvRanges {
    pub input: Range,
    pub output: Range,
}

/// Per-tensor uint8 quantisation parameters: `x ≈ scale · (q − zero)`.
///
/// Asymmetric uint8 rather than symmetric int8: after LeakyReLU most of a tensor's range is
/// positive, and a symmetric code wastes about one bit on it. On a trained G1 that bit is
/// worth ~7 dB of UV/albedo PSNR against f32 (24.5 → 31.2 dB, min/max ranges), for ~8%
/// more run time in tract (its zero-point corrections).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero: u8,
}

impl QParams {
    /// Parameters covering `range` widened to include 0, so that 0 (the convolution's
    /// zero padding) is exactly representable.
    pub fn from_range(range: Range) -> Self {
        let lo = range.min.min(0.0);
        let hi = range.max.max(0.0);
        let scale = ((hi - lo) / 255.0).max(MIN_SCALE);
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        Self { scale, zero }
    }

    /// `x` quantised as `QuantizeLinear` does (round half to even, saturate).
    pub fn quantize(&self, x: f32) -> u8 {
        ((x / self.scale).round_ties_even() + f32::from(self.zero)).clamp(0.0, 255.0) as u8
    }

    pub fn dequantize(&self, q: u8) -> f32 {
        self.scale * (f32::from(q) - f32::from(self.zero))
    }
}

/// A quantised activation in the graph: the `u8` tensor and its parameter constants.
#[derive(Debug, Clone)]
pub struct QTensor {
    pub name: String,
    pub scale_name: String,
    pub zero_name: String,
    pub params: QParams,
}

/// Symmetric int8 weights and the matching `i32` bias.
#[derive(Debug, Clone, PartialEq)]
pub struct QWeights {
    pub weight: Vec<i8>,
    /// One scale ([`WeightScales::PerTensor`]) or one per output channel.
    pub scales: Vec<f32>,
    pub bias: Vec<i32>,
}

/// Symmetric int8 scale for weights peaking at `peak` (`peak / 127`); an all-zero tensor
/// or channel gets scale 1, so that its bias stays representable.
fn weight_scale(peak: f32) -> f32 {
    if peak > 0.0 {
        peak / 127.0
    } else {
        1.0
    }
}

fn peak_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Quantise `w` with zero point 0 and scale `max|w| / 127`, taken over the whole tensor or
/// per output channel as `granularity` says, and its bias at scale `x_scale · w_scale`,
/// as `QLinearConv` requires.
pub fn quantise_weights(w: &ConvWeights, x_scale: f32, granularity: WeightScales) -> QWeights {
    let fan_in = w.fan_in().max(1);
    let scales: Vec<f32> = match granularity {
        WeightScales::PerTensor => vec![weight_scale(peak_abs(&w.weight))],
        WeightScales::PerChannel => w
            .weight
            .chunks(fan_in)
            .map(|channel| weight_scale(peak_abs(channel)))
            .collect(),
    };
    let mut weight = Vec::with_capacity(w.weight.len());
    let mut bias = Vec::with_capacity(w.out_channels());
    for (c, channel) in w.weight.chunks(fan_in).enumerate() {
        let scale = if scales.len() == 1 {
            scales[0]
        } else {
            scales[c]
        };
        weight.extend(
            channel
                .iter()
                .map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8),
        );
        let b = w.bias.get(c).copied().unwrap_or(0.0);
        let q = (f64::from(b) / (f64::from(x_scale) * f64::from(scale))).round();
        bias.push(q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32);
    }
    QWeights {
        weight,
        scales,
        bias,
    }
}

/// Write `QuantizeLinear(x)` with parameters from `range`.
pub fn quantize_activation(g: &mut GraphBuilder, x: &str, range: Range) -> QTensor {
    let params = QParams::from_range(range);
    let scale_name = g.const_f32("x_scale", &[], &[params.scale]);
    let zero_name = g.const_u8("x_zero", &[], &[params.zero]);
    let name = g.quantize(x, &scale_name, &zero_name);
    QTensor {
        name,
        scale_name,
        zero_name,
        params,
    }
}

/// Write `QLinearConv(x) → DequantizeLinear`; returns the f32 output (pre-activation).
pub fn qconv(
    g: &mut GraphBuilder,
    x: &QTensor,
    w: &ConvWeights,
    output: Range,
    granularity: WeightScales,
) -> String {
    let q = quantise_weights(w, x.params.scale, granularity);
    let y = QParams::from_range(output);
    let y_scale = g.const_f32("y_scale", &[], &[y.scale]);
    let y_zero = g.const_u8("y_zero", &[], &[y.zero]);
    let yq = g.qlinear_conv(
        &x.name,
        &x.scale_name,
        &x.zero_name,
        w,
        &q.weight,
        &q.scales,
        &q.bias,
        &y_scale,
        &y_zero,
    );
    g.dequantize(&yq, &y_scale, &y_zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_params_cover_the_range_and_keep_zero_exact() {
        let p = QParams::from_range(Range {
            min: -1.0,
            max: 3.0,
        });
        assert!((p.scale - 4.0 / 255.0).abs() < 1e-9);
        assert_eq!(p.zero, 64); // round(1 / (4/255)) = round(63.75)
        assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
        assert_eq!(p.quantize(-1.0), 0);
        assert_eq!(p.quantize(3.0), 255);
        assert_eq!(p.quantize(10.0), 255, "saturates");
        // A range that excludes 0 is widened to include it.
        let q = QParams::from_range(Range { min: 2.0, max: 4.0 });
        assert_eq!(q.zero, 0);
        assert!((q.scale - 4.0 / 255.0).abs() < 1e-9);
        // A constant tensor still gets a positive scale.
        assert!(QParams::from_range(Range { min: 0.0, max: 0.0 }).scale > 0.0);
    }

    #[test]
    fn weights_per_channel_symmetric_with_bias_at_product_scale() {
        let w = ConvWeights {
            weight: vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0],
            shape: [2, 3, 1, 1],
            bias: vec![0.1, -0.2],
            stride: [1, 1],
            pads: [0; 4],
        };
        let q = quantise_weights(&w, 0.01, WeightScales::PerChannel);
        assert_eq!(q.weight, vec![64, -127, 32, 0, 0, 0]); // 0.5·127 = 63.5 → 64 (even)
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        // 0.1 / (0.01 / 127) = 1270.
        assert_eq!(q.bias[0], 1270);
        // An all-zero channel keeps its bias: scale 1, -0.2 / 0.01 = -20.
        assert_eq!(q.scales[1], 1.0);
        assert_eq!(q.bias[1], -20);
    }

    #[test]
    fn per_tensor_weights_share_one_scale() {
        let w = ConvWeights {
            weight: vec![0.5, -1.0, 0.25, 0.0, 0.1, -0.05],
            shape: [2, 3, 1, 1],
            bias: vec![0.1, -0.2],
            stride: [1, 1],
            pads: [0; 4],
        };
        let q = quantise_weights(&w, 0.01, WeightScales::PerTensor);
        // One scale from the tensor's peak |−1.0|: 1/127 for both channels.
        assert_eq!(q.scales.len(), 1);
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        // 0.1·127 = 12.7 → 13; −0.05·127 = −6.35 → −6.
        assert_eq!(q.weight, vec![64, -127, 32, 0, 13, -6]);
        // Both biases at 0.01/127: 1270 and −2540.
        assert_eq!(q.bias, vec![1270, -2540]);
    }
}
