//! Lowering of burn layers to ONNX nodes, one impl per block kind, in one of three
//! numeric modes (float, float with calibration probes, int8).

use std::collections::HashMap;

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use tract_onnx::pb;

use super::quantise::{self, ConvRanges};
use super::ExportError;
use unveil_device::onnx::{ConvWeights, GraphBuilder};
use unveil_shared::manifest::WeightScales;

use crate::nets::blocks::{ConvBlock, Down, Head, Up};

/// How convolutions are written.
#[derive(Debug, Clone, Copy)]
pub enum Numerics<'a> {
    /// `Conv` in f32.
    Float,
    /// `Conv` in f32, and every convolution's input and output also exposed as a graph
    /// output, so that a runtime can observe their ranges.
    Probe,
    /// `QuantizeLinear → QLinearConv → DequantizeLinear`, with the activation ranges of
    /// the n-th convolution at index n (in the order the exporter emits them), and weight
    /// scales of this granularity.
    Int8(&'a [ConvRanges], WeightScales),
}

/// The graph outputs exposing one convolution's input and output in a
/// [`Numerics::Probe`] graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub input: String,
    pub output: String,
}

/// A [`GraphBuilder`] plus the numeric mode and per-graph bookkeeping.
pub struct Emitter<'a> {
    pub g: GraphBuilder,
    numerics: Numerics<'a>,
    /// Convolutions emitted so far (the index of the next one's ranges).
    convs: usize,
    probes: Vec<Probe>,
    /// Quantised twins of f32 tensors already quantised (a tensor read by two
    /// convolutions is quantised once).
    quantised: HashMap<String, quantise::QTensor>,
    /// Inside [`Emitter::full_resolution`]: convolutions stay f32.
    full_resolution: bool,
}

impl<'a> Emitter<'a> {
    pub fn new(numerics: Numerics<'a>) -> Self {
        Self {
            g: GraphBuilder::new(),
            numerics,
            convs: 0,
            probes: Vec::new(),
            quantised: HashMap::new(),
            full_resolution: false,
        }
    }

    /// Run `f` with its convolutions kept in f32 even in int8 mode; for the layers at the
    /// input's full resolution. There, few channels meet many pixels: tract's int8
    /// convolution first copies every 3x3 patch into a packed buffer (cost per input
    /// value, whatever the channel count), which at 8–16 channels costs more than its
    /// whole f32 direct convolution. These layers also write the outputs, so f32 there
    /// keeps the int8 model closer to f32. They hold under 1 % of the weights.
    pub fn full_resolution<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.full_resolution, true);
        let out = f(self);
        self.full_resolution = outer;
        out
    }

    /// A 2D convolution of `x` with `conv`'s weights, in this emitter's numeric mode.
    pub fn conv(&mut self, x: &str, conv: &Conv2d) -> Result<String, ExportError> {
        self.conv_with(x, conv, false, true)
    }

    /// A convolution that stays f32 even in int8 mode: the output heads, whose rounding
    /// lands directly in the outputs (an int8 step in the part logits flips the argmax
    /// between similar parts) and whose 1x1 products are too small for int8 to pay off.
    pub fn conv_f32(&mut self, x: &str, conv: &Conv2d) -> Result<String, ExportError> {
        self.conv_with(x, conv, false, false)
    }

    /// [`conv`](Self::conv) of `x` upsampled ×2 (nearest). In f32 it is written as one
    /// `ConvTranspose` on `x` ([`GraphBuilder::conv_upsampled2x`]), so the upsampled
    /// tensor never exists.
    pub fn conv_upsampled(&mut self, x: &str, conv: &Conv2d) -> Result<String, ExportError> {
        self.conv_with(x, conv, true, true)
    }

    /// Every convolution is counted (and probed), so that the n-th calibrated range
    /// belongs to the n-th convolution whichever of them are quantised.
    fn conv_with(
        &mut self,
        x: &str,
        conv: &Conv2d,
        upsample: bool,
        quantise: bool,
    ) -> Result<String, ExportError> {
        let w = conv_weights(conv)?;
        let index = self.convs;
        self.convs += 1;
        let (ranges, weights) = match self.numerics {
            Numerics::Int8(ranges, weights) if quantise && !self.full_resolution => {
                (ranges, weights)
            }
            _ => {
                let y = if upsample {
                    self.g.conv_upsampled2x(x, &w)
                } else {
                    self.g.conv(x, &w)
                };
                // A probe of `x` stands for the upsampled input: both hold the same values.
                if let Numerics::Probe = self.numerics {
                    let input = self.g.probe(x);
                    let output = self.g.probe(&y);
                    self.probes.push(Probe { input, output });
                }
                return Ok(y);
            }
        };
        let r = ranges.get(index).ok_or(ExportError::CalibrationMismatch {
            expected: index + 1,
            found: ranges.len(),
        })?;
        // Int8 keeps the literal form: ONNX has no quantised `ConvTranspose`. The
        // upsampling stays in f32: tract resamples f32 with a fast path and 8-bit tensors
        // with a generic one that is ~90x slower.
        let x = if upsample {
            self.g.resize_nearest(x, 2)
        } else {
            x.to_string()
        };
        let qx = match self.quantised.get(&x) {
            Some(q) => q.clone(),
            None => {
                let q = quantise::quantize_activation(&mut self.g, &x, r.input);
                self.quantised.insert(x.clone(), q.clone());
                q
            }
        };
        Ok(quantise::qconv(&mut self.g, &qx, &w, r.output, weights))
    }

    /// The finished model and, in [`Numerics::Probe`] mode, its probes in emission order.
    /// In [`Numerics::Int8`] mode every calibrated range must have been used.
    pub fn finish(
        self,
        name: &str,
        doc: &str,
    ) -> Result<(pb::ModelProto, Vec<Probe>), ExportError> {
        if let Numerics::Int8(ranges, _) = self.numerics {
            if ranges.len() != self.convs {
                return Err(ExportError::CalibrationMismatch {
                    expected: self.convs,
                    found: ranges.len(),
                });
            }
        }
        Ok((self.g.finish(name, doc), self.probes))
    }
}

/// A block that lowers to ONNX nodes: `x` in, output tensor name out.
pub trait Emit {
    fn emit(&self, e: &mut Emitter, x: &str) -> Result<String, ExportError>;
}

impl Emit for ConvBlock {
    fn emit(&self, e: &mut Emitter, x: &str) -> Result<String, ExportError> {
        let (conv, slope) = self.parts();
        let y = e.conv(x, conv)?;
        Ok(e.g.leaky_relu(&y, slope as f32))
    }
}

impl Emit for Down {
    fn emit(&self, e: &mut Emitter, x: &str) -> Result<String, ExportError> {
        let (conv, slope) = self.parts();
        let y = e.conv(x, conv)?;
        Ok(e.g.leaky_relu(&y, slope as f32))
    }
}

impl Emit for Up {
    fn emit(&self, e: &mut Emitter, x: &str) -> Result<String, ExportError> {
        let (conv, slope) = self.parts();
        let y = e.conv_upsampled(x, conv)?;
        Ok(e.g.leaky_relu(&y, slope as f32))
    }
}

impl Emit for Head {
    fn emit(&self, e: &mut Emitter, x: &str) -> Result<String, ExportError> {
        e.conv_f32(x, self.conv())
    }
}

/// The U-Net encoder both generators share: `stem`, then per level `Down` and
/// `ConvBlock`. Returns the bottleneck and the skips (features before each `Down`,
/// shallowest first).
pub fn encoder(
    e: &mut Emitter,
    x: &str,
    stem: &ConvBlock,
    down: &[Down],
    down_conv: &[ConvBlock],
) -> Result<(String, Vec<String>), ExportError> {
    let mut h = e.full_resolution(|e| stem.emit(e, x))?;
    let mut skips = Vec::with_capacity(down.len());
    for (d, c) in down.iter().zip(down_conv) {
        skips.push(h.clone());
        let y = d.emit(e, &h)?;
        h = c.emit(e, &y)?;
    }
    Ok((h, skips))
}

/// A decoder: per level `Up`, concat with the skip of the same size (deepest skip first)
/// when `skips` is given, then `ConvBlock`.
pub fn decoder(
    e: &mut Emitter,
    z: &str,
    up: &[Up],
    conv: &[ConvBlock],
    skips: Option<&[String]>,
) -> Result<String, ExportError> {
    let mut h = z.to_string();
    for (level, (u, c)) in up.iter().zip(conv).enumerate() {
        let step = |e: &mut Emitter| -> Result<String, ExportError> {
            let h_up = u.emit(e, &h)?;
            let joined = match skips {
                Some(s) => {
                    let skip = s
                        .len()
                        .checked_sub(level + 1)
                        .and_then(|i| s.get(i))
                        .ok_or(ExportError::Architecture(format!(
                            "decoder level {level} has no encoder skip ({} skips)",
                            s.len()
                        )))?;
                    e.g.concat(&[&h_up, skip], 1)
                }
                None => h_up,
            };
            c.emit(e, &joined)
        };
        // The last level upsamples back to the input's resolution.
        h = if level + 1 == up.len() {
            e.full_resolution(step)?
        } else {
            step(e)?
        };
    }
    Ok(h)
}

/// A burn `Conv2d`'s weights in ONNX layout; refuses what the exporter does not write
/// (groups, dilation, `Same` padding).
pub fn conv_weights(conv: &Conv2d) -> Result<ConvWeights, ExportError> {
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return Err(ExportError::Architecture(format!(
            "convolution with groups {} / dilation {:?} is not exported",
            conv.groups, conv.dilation
        )));
    }
    let pads = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => {
            return Err(ExportError::Architecture(
                "`Same` convolution padding is not exported".into(),
            ))
        }
    };
    let weight_tensor = conv.weight.val();
    let shape: [usize; 4] = weight_tensor.dims();
    let weight = to_vec(weight_tensor.into_data())?;
    let bias = match &conv.bias {
        Some(b) => to_vec(b.val().into_data())?,
        None => vec![0.0; shape[0]],
    };
    Ok(ConvWeights {
        weight,
        shape,
        bias,
        stride: conv.stride,
        pads,
    })
}

fn to_vec(data: TensorData) -> Result<Vec<f32>, ExportError> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ExportError::Weights(format!("{e:?}")))
}
