//! The one ONNX graph writer, over tract-onnx's own protobuf types (`tract_onnx::pb`,
//! prost messages): one method per operator kind, so the host's exporter reads like a
//! network's `forward` and never builds protobuf by hand. The device's [`crate::fixture`]
//! graphs use it too, so they have the form the exporter ships.
//!
//! Graphs are opset 13 / IR version 7 (ONNX 1.8): every operator used here exists there
//! with the semantics tract and stock runtimes implement, and opset 13 is the first one
//! where `QLinearConv` takes per-channel weight scales everywhere.

use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// ONNX operator set of every exported graph.
pub const OPSET: i64 = 13;
/// IR version matching [`OPSET`] (ONNX 1.8).
pub const IR_VERSION: i64 = 7;

/// Weights of one 2D convolution, in ONNX layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    /// `[out, in, kh, kw]`, row-major (burn and ONNX share this layout).
    pub weight: Vec<f32>,
    pub shape: [usize; 4],
    /// `[out]`.
    pub bias: Vec<f32>,
    pub stride: [usize; 2],
    /// ONNX order: `[top, left, bottom, right]`.
    pub pads: [usize; 4],
}

impl ConvWeights {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.shape[0]
    }

    /// Weights per output channel (`in · kh · kw`).
    pub fn fan_in(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// The `ConvTranspose` (kernel 4, stride 2, pads 1; weights `[in, out, 4, 4]`) that
    /// computes "nearest ×2 upsampling, then this 3x3, stride-1, pad-1 convolution"
    /// straight from the small input. `None` for any other convolution.
    ///
    /// Why: the upsampled tensor repeats each input pixel 2x2, so a 3x3 window over it
    /// reads only 2x2 distinct input pixels, and the taps that land on the same one can
    /// be summed ahead of time: 16 instead of 36 multiply-adds per input pixel and channel
    /// pair, and the 4x larger upsampled tensor is never built. Per axis, output `2i`
    /// reads input `i − 1` with tap 0 and input `i` with taps 1 + 2; output `2i + 1` reads
    /// `i` with taps 0 + 1 and `i + 1` with tap 2. In the transposed convolution output
    /// `o` reads input `i` through kernel index `o − 2i + 1`, hence the folded kernel
    /// `[t2, t1 + t2, t0 + t1, t0]` per axis. Exact in real arithmetic (f32: ~1e-6).
    pub fn transposed_upsample(&self) -> Option<ConvWeights> {
        let [out, inp, kh, kw] = self.shape;
        if kh != 3 || kw != 3 || self.stride != [1, 1] || self.pads != [1; 4] {
            return None;
        }
        const FOLD: [&[usize]; 4] = [&[2], &[1, 2], &[0, 1], &[0]];
        let mut weight = vec![0.0; inp * out * 16];
        for o in 0..out {
            for i in 0..inp {
                let k = &self.weight[(o * inp + i) * 9..][..9];
                for (r, rows) in FOLD.iter().enumerate() {
                    for (c, cols) in FOLD.iter().enumerate() {
                        weight[((i * out + o) * 4 + r) * 4 + c] = rows
                            .iter()
                            .flat_map(|&a| cols.iter().map(move |&b| k[a * 3 + b]))
                            .sum();
                    }
                }
            }
        }
        Some(ConvWeights {
            weight,
            shape: [inp, out, 4, 4],
            bias: self.bias.clone(),
            stride: [2, 2],
            pads: [1; 4],
        })
    }
}

/// Builds one ONNX graph. Node outputs get fresh, unique names (`{op}_{n}`); graph inputs
/// and outputs get the names the caller gives (the manifest's graph contract).
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    counter: usize,
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh tensor name.
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// Declare a graph input `name` of type `dt` and fixed shape `dims`.
    pub fn input(&mut self, name: &str, dt: DataType, dims: &[usize]) -> String {
        self.inputs.push(value_info(name, dt, Some(dims)));
        name.to_string()
    }

    /// Expose tensor `x` as graph output `name` (through an `Identity` so that the output
    /// name is the contract's, whatever node produced it).
    pub fn output(&mut self, x: &str, name: &str, dt: DataType, dims: Option<&[usize]>) {
        self.nodes.push(node("Identity", &[x], &[name], vec![]));
        self.outputs.push(value_info(name, dt, dims));
    }

    /// Expose tensor `x` as an extra graph output (calibration probes) and return that
    /// output's name; through an `Identity`, so that a graph input can be probed too. The
    /// shape is left to the runtime's inference.
    pub fn probe(&mut self, x: &str) -> String {
        let name = format!("probe_{x}");
        if !self.outputs.iter().any(|o| o.name == name) {
            self.nodes.push(node("Identity", &[x], &[&name], vec![]));
            self.outputs.push(value_info(&name, DataType::Float, None));
        }
        name
    }

    /// Add an initializer and return its name.
    fn constant(&mut self, prefix: &str, tensor: pb::TensorProto) -> String {
        let name = self.fresh(prefix);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            ..tensor
        });
        name
    }

    /// An `f32` initializer of shape `dims`.
    pub fn const_f32(&mut self, prefix: &str, dims: &[usize], data: &[f32]) -> String {
        let t = tensor(
            DataType::Float,
            dims,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        self.constant(prefix, t)
    }

    /// An `i64` initializer of shape `dims`.
    pub fn const_i64(&mut self, prefix: &str, dims: &[usize], data: &[i64]) -> String {
        let t = tensor(
            DataType::Int64,
            dims,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        self.constant(prefix, t)
    }

    /// An `i32` initializer of shape `dims`.
    pub fn const_i32(&mut self, prefix: &str, dims: &[usize], data: &[i32]) -> String {
        let t = tensor(
            DataType::Int32,
            dims,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        self.constant(prefix, t)
    }

    /// An `i8` initializer of shape `dims`.
    pub fn const_i8(&mut self, prefix: &str, dims: &[usize], data: &[i8]) -> String {
        let t = tensor(
            DataType::Int8,
            dims,
            data.iter().map(|&v| v as u8).collect(),
        );
        self.constant(prefix, t)
    }

    /// A `u8` initializer of shape `dims`.
    pub fn const_u8(&mut self, prefix: &str, dims: &[usize], data: &[u8]) -> String {
        let t = tensor(DataType::Uint8, dims, data.to_vec());
        self.constant(prefix, t)
    }

    /// Append a single-output node and return its output name.
    fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<pb::AttributeProto>,
    ) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(node(op_type, inputs, &[&out], attributes));
        out
    }

    /// `Conv` (2D, bias, no groups or dilation).
    pub fn conv(&mut self, x: &str, w: &ConvWeights) -> String {
        let weight = self.const_f32("weight", &w.shape, &w.weight);
        let bias = self.const_f32("bias", &[w.out_channels()], &w.bias);
        let attrs = conv_attributes(w);
        self.op("Conv", &[x, &weight, &bias], attrs)
    }

    /// `QLinearConv`: 8-bit activations and int8 weights with one scale (`w_scales` of
    /// length 1) or one per output channel, `i32` bias at scale `x_scale · w_scale[c]`,
    /// 8-bit output (the zero points' type).
    #[allow(clippy::too_many_arguments)]
    pub fn qlinear_conv(
        &mut self,
        x: &str,
        x_scale: &str,
        x_zero: &str,
        w: &ConvWeights,
        w_q: &[i8],
        w_scales: &[f32],
        bias_q: &[i32],
        y_scale: &str,
        y_zero: &str,
    ) -> String {
        let oc = w.out_channels();
        let weight = self.const_i8("weight_q", &w.shape, w_q);
        // ONNX: a per-tensor scale and zero point are scalars, per-channel ones 1-D.
        let per_channel = w_scales.len() != 1 || oc == 1;
        let dims: &[usize] = if per_channel { &[oc] } else { &[] };
        let w_scale = self.const_f32("weight_scale", dims, w_scales);
        let w_zero = self.const_i8("weight_zero", dims, &vec![0; w_scales.len()]);
        let bias = self.const_i32("bias_q", &[oc], bias_q);
        let attrs = conv_attributes(w);
        self.op(
            "QLinearConv",
            &[
                x, x_scale, x_zero, &weight, &w_scale, &w_zero, y_scale, y_zero, &bias,
            ],
            attrs,
        )
    }

    /// `QuantizeLinear` with a per-tensor scale and zero point (whose type, `u8` or `i8`,
    /// is the output's).
    pub fn quantize(&mut self, x: &str, scale: &str, zero: &str) -> String {
        self.op("QuantizeLinear", &[x, scale, zero], vec![])
    }

    /// `DequantizeLinear` with a per-tensor scale and zero point.
    pub fn dequantize(&mut self, x: &str, scale: &str, zero: &str) -> String {
        self.op("DequantizeLinear", &[x, scale, zero], vec![])
    }

    /// `Relu`.
    pub fn relu(&mut self, x: &str) -> String {
        self.op("Relu", &[x], vec![])
    }

    /// `LeakyRelu` with negative slope `alpha`.
    pub fn leaky_relu(&mut self, x: &str, alpha: f32) -> String {
        self.op("LeakyRelu", &[x], vec![attr_float("alpha", alpha)])
    }

    pub fn sigmoid(&mut self, x: &str) -> String {
        self.op("Sigmoid", &[x], vec![])
    }

    pub fn tanh(&mut self, x: &str) -> String {
        self.op("Tanh", &[x], vec![])
    }

    /// `Clip` to `[min, max]` (opset 11+ form: bounds as inputs).
    pub fn clip(&mut self, x: &str, min: f32, max: f32) -> String {
        let lo = self.const_f32("clip_min", &[], &[min]);
        let hi = self.const_f32("clip_max", &[], &[max]);
        self.op("Clip", &[x, &lo, &hi], vec![])
    }

    pub fn exp(&mut self, x: &str) -> String {
        self.op("Exp", &[x], vec![])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.op("Add", &[a, b], vec![])
    }

    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.op("Sub", &[a, b], vec![])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.op("Mul", &[a, b], vec![])
    }

    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.op("Div", &[a, b], vec![])
    }

    /// `a < b`, elementwise, as a boolean tensor.
    pub fn less(&mut self, a: &str, b: &str) -> String {
        self.op("Less", &[a, b], vec![])
    }

    /// `Cast` to `to`.
    pub fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], vec![attr_int("to", to as i64)])
    }

    /// Nearest-neighbour upsampling by an integer `factor` of the two spatial axes of an
    /// NCHW tensor: output pixel `i` reads input pixel `floor(i / factor)` (`asymmetric` +
    /// `floor`, the same as `unveil_host::nets::blocks::upsample_nearest`).
    pub fn resize_nearest(&mut self, x: &str, factor: usize) -> String {
        let f = factor as f32;
        let scales = self.const_f32("scales", &[4], &[1.0, 1.0, f, f]);
        let attrs = vec![
            attr_string("mode", "nearest"),
            attr_string("coordinate_transformation_mode", "asymmetric"),
            attr_string("nearest_mode", "floor"),
        ];
        self.op("Resize", &[x, "", &scales], attrs)
    }

    /// `AveragePool` over `factor`×`factor` blocks with stride `factor` (no padding): the
    /// input of a network that runs at 1/`factor` of its image's resolution.
    pub fn average_pool(&mut self, x: &str, factor: usize) -> String {
        let k = factor as i64;
        self.op(
            "AveragePool",
            &[x],
            vec![
                attr_ints("kernel_shape", &[k, k]),
                attr_ints("strides", &[k, k]),
            ],
        )
    }

    /// `Conv` with `w` of `x` upsampled ×2 (nearest), i.e. `conv(resize_nearest(x, 2))`,
    /// written as the one `ConvTranspose` of [`ConvWeights::transposed_upsample`]:
    /// 2.25x fewer multiply-adds and no upsampled copy. In tract 1.8–2.3x faster from
    /// 16×16 inputs up and 0.76x at 8×8 (`benches/upsample.rs`); the 8×8 level is the
    /// cheapest, so one form everywhere is kept. Other convolutions than 3x3 / stride 1 /
    /// pad 1 are written literally.
    pub fn conv_upsampled2x(&mut self, x: &str, w: &ConvWeights) -> String {
        match w.transposed_upsample() {
            Some(t) => {
                let weight = self.const_f32("weight_t", &t.shape, &t.weight);
                let bias = self.const_f32("bias", &[t.shape[1]], &t.bias);
                let attrs = conv_attributes(&t);
                self.op("ConvTranspose", &[x, &weight, &bias], attrs)
            }
            None => {
                let up = self.resize_nearest(x, 2);
                self.conv(&up, w)
            }
        }
    }

    /// `Concat` along `axis`.
    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.op("Concat", xs, vec![attr_int("axis", axis)])
    }

    /// Channels `start..start + len` of an NCHW tensor (`Slice` on axis 1).
    pub fn slice_channels(&mut self, x: &str, start: usize, len: usize) -> String {
        let starts = self.const_i64("starts", &[1], &[start as i64]);
        let ends = self.const_i64("ends", &[1], &[(start + len) as i64]);
        let axes = self.const_i64("axes", &[1], &[1]);
        self.op("Slice", &[x, &starts, &ends, &axes], vec![])
    }

    /// Sum over the channel axis, keeping it (opset 13 takes the axes as an input).
    pub fn reduce_sum_channels(&mut self, x: &str) -> String {
        let axes = self.const_i64("axes", &[1], &[1]);
        self.op("ReduceSum", &[x, &axes], vec![attr_int("keepdims", 1)])
    }

    /// Index of the first maximum over the channel axis, kept (`i64` `[B, 1, H, W]`).
    pub fn argmax_channels(&mut self, x: &str) -> String {
        let attrs = vec![attr_int("axis", 1), attr_int("keepdims", 1)];
        self.op("ArgMax", &[x], attrs)
    }

    /// [`argmax_channels`](Self::argmax_channels) of the `channels` channels of `x`, plus
    /// `offset`, as `f32` `[B, 1, H, W]`, written as a running comparison: per channel
    /// `Greater`, `Max` and `Where` on one plane. tract runs `ArgMax` over the channel axis
    /// as a strided reduction that allocates once per pixel (16 384 allocations and ~2 ms
    /// per 128×128 frame); these plane-wise ops vectorise and allocate once each. Ties
    /// keep the first channel, as `ArgMax` does.
    pub fn argmax_channels_unrolled(&mut self, x: &str, channels: usize, offset: f32) -> String {
        let mut best = self.slice_channels(x, 0, 1);
        let mut index = self.const_f32("argmax_0", &[], &[offset]);
        for c in 1..channels {
            let candidate = self.slice_channels(x, c, 1);
            let better = self.op("Greater", &[&candidate, &best], vec![]);
            let label = self.const_f32("argmax_c", &[], &[offset + c as f32]);
            index = self.op("Where", &[&better, &label, &index], vec![]);
            if c + 1 < channels {
                best = self.op("Max", &[&best, &candidate], vec![]);
            }
        }
        index
    }

    /// The finished graph as an ONNX model.
    pub fn finish(self, name: &str, doc: &str) -> pb::ModelProto {
        let graph = pb::GraphProto {
            node: self.nodes,
            name: name.to_string(),
            initializer: self.initializers,
            doc_string: doc.to_string(),
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "unveil".to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(graph),
            ..Default::default()
        }
    }
}

/// Encode a model for writing to disk.
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(model)
}

fn conv_attributes(w: &ConvWeights) -> Vec<pb::AttributeProto> {
    let ints = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    vec![
        attr_ints("kernel_shape", &ints(&w.shape[2..])),
        attr_ints("strides", &ints(&w.stride)),
        attr_ints("pads", &ints(&w.pads)),
    ]
}

fn node(
    op_type: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: outputs.first().map(|s| s.to_string()).unwrap_or_default(),
        op_type: op_type.to_string(),
        attribute,
        ..Default::default()
    }
}

fn tensor(dt: DataType, dims: &[usize], raw_data: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data,
        ..Default::default()
    }
}

fn value_info(name: &str, dt: DataType, dims: Option<&[usize]>) -> pb::ValueInfoProto {
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dt as i32,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: ty as i32,
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        i,
        ..attr(name, AttributeType::Int)
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        ints: ints.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

fn attr_float(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        f,
        ..attr(name, AttributeType::Float)
    }
}

fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::*;

    /// Build a one-input graph with `body`, run it in tract on `x`, return the output.
    fn run_one(
        dims: &[usize],
        x: &[f32],
        body: impl FnOnce(&mut GraphBuilder, &str) -> String,
    ) -> Vec<f32> {
        let mut g = GraphBuilder::new();
        let input = g.input("x", DataType::Float, dims);
        let y = body(&mut g, &input);
        g.output(&y, "y", DataType::Float, None);
        let bytes = encode(&g.finish("test", ""));
        let plan = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .expect("graph loads");
        let input = Tensor::from_shape(dims, x).expect("input shape");
        let out = plan.run(tvec!(input.into())).expect("runs");
        let plain = out[0].try_as_plain_ram().expect("plain tensor");
        plain.as_slice::<f32>().expect("f32 output").to_vec()
    }

    #[test]
    fn conv_with_padding_stride_and_bias() {
        // 3x3 kernel, all ones, bias 0.5, pad 1, stride 2, on a 1-channel 4x4 ramp 0..16.
        let w = ConvWeights {
            weight: vec![1.0; 9],
            shape: [1, 1, 3, 3],
            bias: vec![0.5],
            stride: [2, 2],
            pads: [1, 1, 1, 1],
        };
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let y = run_one(&[1, 1, 4, 4], &x, |g, i| g.conv(i, &w));
        // Output (r, c) sums rows 2r-1..=2r+1, cols 2c-1..=2c+1 (zero outside): (0,0) =
        // 0+1+4+5, (0,1) = 1+2+3+5+6+7, (1,0) = 4+5+8+9+12+13, (1,1) = 5+6+7+9+10+11+13+14+15.
        assert_eq!(y, vec![10.5, 24.5, 51.5, 90.5]);
    }

    #[test]
    fn resize_nearest_repeats_pixels_like_burn() {
        let y = run_one(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0], |g, i| {
            g.resize_nearest(i, 2)
        });
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
    fn resize_nearest_by_three() {
        let y = run_one(&[1, 1, 1, 2], &[1.0, 2.0], |g, i| g.resize_nearest(i, 3));
        assert_eq!(y, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0].repeat(3));
    }

    #[test]
    fn average_pool_means_each_block() {
        // 2x4 ramp 0..8 in 2x2 blocks: (0+1+4+5)/4, (2+3+6+7)/4.
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let y = run_one(&[1, 1, 2, 4], &x, |g, i| g.average_pool(i, 2));
        assert_eq!(y, vec![2.5, 4.5]);
    }

    /// A small deterministic pseudo-random sequence (no RNG crate in this test).
    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn transposed_upsample_folds_taps_by_hand() {
        // One channel, kernel 1..=9 (row-major). Per axis the folded kernel is
        // [t2, t1 + t2, t0 + t1, t0]; its row 0 takes kernel row 2 (7, 8, 9) folded the
        // same way along columns: [9, 8 + 9, 7 + 8, 7]; row 1 takes rows 1 + 2.
        let w = ConvWeights {
            weight: (1..=9).map(|v| v as f32).collect(),
            shape: [1, 1, 3, 3],
            bias: vec![0.25],
            stride: [1, 1],
            pads: [1; 4],
        };
        let t = w.transposed_upsample().expect("3x3 pad 1");
        assert_eq!(t.shape, [1, 1, 4, 4]);
        assert_eq!(&t.weight[..4], &[9.0, 17.0, 15.0, 7.0]);
        assert_eq!(&t.weight[4..8], &[15.0, 28.0, 24.0, 11.0]);
        assert_eq!(
            (t.stride, t.pads, t.bias.as_slice()),
            ([2, 2], [1; 4], &[0.25][..])
        );
        // Weights go from [out, in] to ONNX ConvTranspose's [in, out].
        let two = ConvWeights {
            weight: (0..18).map(|v| v as f32).collect(),
            shape: [2, 1, 3, 3],
            bias: vec![0.0; 2],
            ..w.clone()
        };
        let t2 = two.transposed_upsample().expect("3x3 pad 1");
        assert_eq!(t2.shape, [1, 2, 4, 4]);
        assert_eq!(
            t2.weight[15], 0.0,
            "output 0's t0·t0 is its kernel's first tap"
        );
        assert_eq!(
            t2.weight[31], 9.0,
            "output 1's t0·t0 is its kernel's first tap"
        );
        let strided = ConvWeights {
            stride: [2, 2],
            ..w.clone()
        };
        assert!(strided.transposed_upsample().is_none());
    }

    #[test]
    fn conv_upsampled2x_equals_resize_then_conv() {
        // Non-square, 2 → 3 channels, random weights: the transposed form matches the literal
        // one at every output pixel, borders included.
        let dims = [1, 2, 3, 5];
        let x = pseudo_random(2 * 3 * 5, 7);
        let w = ConvWeights {
            weight: pseudo_random(3 * 2 * 9, 11),
            shape: [3, 2, 3, 3],
            bias: vec![0.1, -0.2, 0.3],
            stride: [1, 1],
            pads: [1; 4],
        };
        let literal = run_one(&dims, &x, |g, i| {
            let up = g.resize_nearest(i, 2);
            g.conv(&up, &w)
        });
        let folded = run_one(&dims, &x, |g, i| g.conv_upsampled2x(i, &w));
        assert_eq!(literal.len(), 3 * 6 * 10);
        assert_eq!(folded.len(), literal.len());
        for (a, b) in literal.iter().zip(&folded) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn slice_concat_leaky_and_channel_reductions() {
        // Two channels, two pixels: [[-1, 2], [3, -4]].
        let x = [-1.0, 2.0, 3.0, -4.0];
        let y = run_one(&[1, 2, 1, 2], &x, |g, i| {
            let second = g.slice_channels(i, 1, 1);
            let leaky = g.leaky_relu(i, 0.2);
            let relu = g.relu(i);
            g.concat(&[&second, &leaky, &relu], 1)
        });
        assert_eq!(y, vec![3.0, -4.0, -0.2, 2.0, 3.0, -0.8, 0.0, 2.0, 3.0, 0.0]);
        let y = run_one(&[1, 2, 1, 2], &x, |g, i| {
            let sum = g.reduce_sum_channels(i);
            let arg = g.argmax_channels(i);
            let arg = g.cast(&arg, DataType::Float);
            let unrolled = g.argmax_channels_unrolled(i, 2, 10.0);
            g.concat(&[&sum, &arg, &unrolled], 1)
        });
        assert_eq!(y, vec![2.0, -2.0, 1.0, 0.0, 11.0, 10.0]);
        // Ties keep the first channel; three channels.
        let x = [1.0, 5.0, 3.0, 5.0, 3.0, 4.0];
        let y = run_one(&[1, 3, 1, 2], &x, |g, i| {
            g.argmax_channels_unrolled(i, 3, 0.0)
        });
        assert_eq!(y, vec![1.0, 0.0]);
    }

    #[test]
    fn quantize_qlinear_conv_dequantize_round_trip() {
        // x in 0..=2.55 step 0.01 (exact on scale 0.01), 1x1 conv weight 1 bias 0: y = x.
        let w = ConvWeights {
            weight: vec![1.0],
            shape: [1, 1, 1, 1],
            bias: vec![0.0],
            stride: [1, 1],
            pads: [0; 4],
        };
        let x: Vec<f32> = (0..4).map(|v| v as f32 * 0.5).collect();
        let y = run_one(&[1, 1, 2, 2], &x, |g, i| {
            let s = g.const_f32("s", &[], &[0.01]);
            let z = g.const_u8("z", &[], &[0]);
            let q = g.quantize(i, &s, &z);
            let yq = g.qlinear_conv(&q, &s, &z, &w, &[127], &[1.0 / 127.0], &[0], &s, &z);
            g.dequantize(&yq, &s, &z)
        });
        for (a, b) in y.iter().zip(&x) {
            assert!((a - b).abs() < 0.011, "{y:?}");
        }
    }

    #[test]
    fn graphs_declare_opset_13_and_ir_7() {
        let mut g = GraphBuilder::new();
        let x = g.input("x", DataType::Float, &[1]);
        g.output(&x, "y", DataType::Float, Some(&[1]));
        let m = g.finish("t", "");
        assert_eq!((m.ir_version, m.opset_import[0].version), (7, 13));
        assert_eq!(
            m.graph.as_ref().map(|g| g.output[0].name.as_str()),
            Some("y")
        );
    }
}
