//! Small, valid model folders that follow the manifest's graph contract, built directly as
//! ONNX protobuf.
//!
//! They exist so the runtime, its tests and the hardware-in-the-loop suite can run without
//! trained weights: the graphs use the same operators as the real exports (Conv, Relu,
//! Sigmoid, Tanh, Concat, the compositor's Mul/Sub/Add, and for int8 the exporter's
//! QuantizeLinear → QLinearConv → DequantizeLinear), written by the exporter's own
//! [`crate::onnx`] writer, with weights drawn deterministically from a seed.

use std::fs;
use std::io;
use std::path::Path;

use tract_onnx::pb::{self, tensor_proto::DataType};
use unveil_shared::manifest::{
    io as names, sha256, Calibration, Condition, Manifest, ModelFile, Quantisation, Role,
    WeightScales, MANIFEST_BIN, MANIFEST_VERSION,
};
use unveil_shared::rng::mix;
use unveil_shared::texture::{NUM_PARTS, TEXTURE_CHANNELS};
use unveil_shared::Normalisation;

use crate::onnx::{encode, ConvWeights, GraphBuilder};

/// What kind of fixture folder to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fixture {
    /// Input width and height (multiples of 16, as the manifest requires).
    pub width: u16,
    pub height: u16,
    pub condition: Condition,
    /// Hidden channels of each graph's first convolution.
    pub hidden: usize,
    /// int8 convolutions (QLinearConv between QuantizeLinear and DequantizeLinear, as the
    /// exporter writes them).
    pub int8: bool,
    pub seed: u64,
}

impl Fixture {
    /// A 32×32 texture-conditioned f32 fixture with 4 hidden channels.
    pub fn tiny() -> Self {
        Self {
            width: 32,
            height: 32,
            condition: Condition::Texture,
            hidden: 4,
            int8: false,
            seed: 1,
        }
    }

    /// Write `stage1.onnx`, `stage2.onnx` and `manifest.bin` into `dir` (created if needed)
    /// and return the manifest.
    pub fn write(&self, dir: &Path) -> io::Result<Manifest> {
        fs::create_dir_all(dir)?;
        let stage1 = encode(&self.stage1());
        let stage2 = encode(&self.stage2());
        fs::write(dir.join("stage1.onnx"), &stage1)?;
        fs::write(dir.join("stage2.onnx"), &stage2)?;
        let quantisation = if self.int8 {
            Quantisation::Int8 {
                calibration: Calibration::MinMax,
                samples: 0,
                weights: WeightScales::PerTensor,
            }
        } else {
            Quantisation::Float32
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            name: format!("fixture-{}", self.seed),
            width: self.width,
            height: self.height,
            normalisation: Normalisation::default(),
            texture_channels: TEXTURE_CHANNELS as u8,
            num_parts: NUM_PARTS as u8,
            condition: self.condition,
            quantisation,
            models: vec![
                ModelFile {
                    role: Role::Stage1,
                    file: "stage1.onnx".into(),
                    sha256: sha256(&stage1),
                },
                ModelFile {
                    role: Role::Stage2,
                    file: "stage2.onnx".into(),
                    sha256: sha256(&stage2),
                },
            ],
            training_config_sha256: [0; 32],
            hole: unveil_shared::hole::HoleInput::Absent,
        };
        let bytes = manifest
            .to_bytes()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        fs::write(dir.join(MANIFEST_BIN), bytes)?;
        Ok(manifest)
    }

    /// Add an occlusion detector to the folder [`write`](Self::write) made: `occlusion.onnx`,
    /// one 1x1 convolution whose logit is 50 × (the normalised red plane minus
    /// `threshold`), so a region of pixels redder than that with a core well above it
    /// reads as hidden and nothing else does; the manifest is
    /// rewritten with its entry.
    pub fn add_detector(&self, dir: &Path, threshold: f32) -> io::Result<Manifest> {
        let mut b = GraphBuilder::new();
        let image = b.input(names::IMAGE, DataType::Float, &self.dims(3));
        // Steep, so a pure-red pixel clears the shared seed level and its fringe the
        // hidden one (see `Mask::set_from_logits`).
        let gain = 50.0;
        let conv = ConvWeights {
            weight: vec![gain, 0.0, 0.0],
            shape: [1, 3, 1, 1],
            bias: vec![-gain * threshold],
            stride: [1, 1],
            pads: [0; 4],
        };
        let logits = b.conv(&image, &conv);
        b.output(
            &logits,
            names::OCCLUSION,
            DataType::Float,
            Some(&self.dims(1)),
        );
        let bytes = encode(&b.finish("occlusion", "unveil-device fixture"));
        fs::write(dir.join("occlusion.onnx"), &bytes)?;
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut manifest =
            Manifest::from_bytes(&fs::read(dir.join(MANIFEST_BIN))?).map_err(invalid)?;
        manifest.models.push(ModelFile {
            role: Role::Occlusion,
            file: "occlusion.onnx".into(),
            sha256: sha256(&bytes),
        });
        fs::write(
            dir.join(MANIFEST_BIN),
            manifest.to_bytes().map_err(invalid)?,
        )?;
        Ok(manifest)
    }

    /// G1: image → Conv → Relu → Conv → Relu → texture (non-negative, so channel 0 is
    /// exactly zero on some pixels and the silhouette condition is not trivial).
    pub fn stage1(&self) -> pb::ModelProto {
        let mut g = Layers::new(self, 1);
        let image = g.b.input(names::IMAGE, DataType::Float, &self.dims(3));
        let h = g.conv(&image, 3, self.hidden, ConvInit::Centred);
        let h = g.b.relu(&h);
        let t = g.conv(&h, self.hidden, TEXTURE_CHANNELS, ConvInit::ShiftedDown);
        let t = g.b.relu(&t);
        let dims = self.dims(TEXTURE_CHANNELS);
        g.b.output(&t, names::TEXTURE, DataType::Float, Some(&dims));
        g.b.finish("stage1", "unveil-device fixture")
    }

    /// G2: [image, condition] → Concat → Conv → Relu → fg (Tanh), bg (Tanh), alpha
    /// (Sigmoid) → restored = alpha·fg + (1 − alpha)·bg.
    pub fn stage2(&self) -> pb::ModelProto {
        let mut g = Layers::new(self, 2);
        let c = self.condition.channels();
        let image = g.b.input(names::IMAGE, DataType::Float, &self.dims(3));
        let x = if c > 0 {
            let condition = g.b.input(names::CONDITION, DataType::Float, &self.dims(c));
            g.b.concat(&[&image, &condition], 1)
        } else {
            image
        };
        let h = g.conv(&x, 3 + c, self.hidden, ConvInit::Centred);
        let h = g.b.relu(&h);
        let fg = g.conv(&h, self.hidden, 3, ConvInit::Centred);
        let fg = g.b.tanh(&fg);
        let bg = g.conv(&h, self.hidden, 3, ConvInit::Centred);
        let bg = g.b.tanh(&bg);
        let alpha = g.conv(&h, self.hidden, 1, ConvInit::Centred);
        let alpha = g.b.sigmoid(&alpha);
        let one = g.b.const_f32("one", &[], &[1.0]);
        let afg = g.b.mul(&alpha, &fg);
        let inv = g.b.sub(&one, &alpha);
        let abg = g.b.mul(&inv, &bg);
        let restored = g.b.add(&afg, &abg);
        for (x, name, ch) in [
            (&restored, names::RESTORED, 3),
            (&fg, names::FOREGROUND, 3),
            (&bg, names::BACKGROUND, 3),
            (&alpha, names::ALPHA, 1),
        ] {
            g.b.output(x, name, DataType::Float, Some(&self.dims(ch)));
        }
        g.b.finish("stage2", "unveil-device fixture")
    }

    /// `[1, channels, height, width]`.
    fn dims(&self, channels: usize) -> [usize; 4] {
        [
            1,
            channels,
            usize::from(self.height),
            usize::from(self.width),
        ]
    }
}

#[derive(Clone, Copy)]
enum ConvInit {
    Centred,
    /// Negative bias, so a good share of the Relu outputs are exactly zero.
    ShiftedDown,
}

/// Activations of int8 fixtures are quantised over this fixed range, ±4.
const INT8_RANGE: f32 = 4.0;

/// The shared [`GraphBuilder`] plus the fixture's seeded weights.
struct Layers<'a> {
    fixture: &'a Fixture,
    b: GraphBuilder,
    stream: u64,
    counter: u64,
}

impl<'a> Layers<'a> {
    fn new(fixture: &'a Fixture, stream: u64) -> Self {
        Self {
            fixture,
            b: GraphBuilder::new(),
            stream,
            counter: 0,
        }
    }

    /// Deterministic weight in `[-scale, scale)`.
    fn weight(&mut self, scale: f32) -> f32 {
        self.counter += 1;
        let bits = mix(self.fixture.seed ^ (self.stream << 48) ^ self.counter) >> 40;
        (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    /// 3×3 same-padded convolution of `x` (`cin` channels) to `cout` channels. In int8
    /// mode it is what the exporter ships: QuantizeLinear (uint8) → QLinearConv (int8
    /// weights, one scale, i32 bias) → DequantizeLinear.
    fn conv(&mut self, x: &str, cin: usize, cout: usize, init: ConvInit) -> String {
        let scale = 1.0 / ((cin * 9) as f32).sqrt();
        let w = ConvWeights {
            weight: (0..cout * cin * 9).map(|_| self.weight(scale)).collect(),
            shape: [cout, cin, 3, 3],
            bias: (0..cout)
                .map(|_| match init {
                    ConvInit::Centred => self.weight(0.1),
                    ConvInit::ShiftedDown => self.weight(0.2) - 0.1,
                })
                .collect(),
            stride: [1, 1],
            pads: [1, 1, 1, 1],
        };
        if !self.fixture.int8 {
            return self.b.conv(x, &w);
        }
        let w_scale = w.weight.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        let w_q: Vec<i8> = w
            .weight
            .iter()
            .map(|v| (v / w_scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        let a_scale = 2.0 * INT8_RANGE / 255.0;
        let bias_q: Vec<i32> = w
            .bias
            .iter()
            .map(|b| (b / (a_scale * w_scale)).round() as i32)
            .collect();
        let s = self.b.const_f32("act_scale", &[], &[a_scale]);
        let z = self.b.const_u8("act_zero", &[], &[128]);
        let q = self.b.quantize(x, &s, &z);
        let y = self
            .b
            .qlinear_conv(&q, &s, &z, &w, &w_q, &[w_scale], &bias_q, &s, &z);
        self.b.dequantize(&y, &s, &z)
    }
}
