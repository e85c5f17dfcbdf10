//! Small, valid model folders that follow the manifest's graph contract, built directly as
//! ONNX protobuf.
//!
//! They exist so the runtime, its tests and the hardware-in-the-loop suite can run without
//! trained weights: the graphs use the same operators as the real exports (Conv, Relu,
//! Sigmoid, Tanh, Concat, the compositor's Mul/Sub/Add, and QDQ pairs for int8), with
//! weights drawn deterministically from a seed.

use std::fs;
use std::io;
use std::path::Path;

use prost::Message as _;
use tract_onnx::pb;
use unveil_shared::manifest::{
    io as names, sha256, Calibration, Condition, Manifest, ModelFile, Quantisation, Role,
    WeightScales, MANIFEST_BIN, MANIFEST_VERSION,
};
use unveil_shared::rng::mix;
use unveil_shared::texture::{NUM_PARTS, TEXTURE_CHANNELS};
use unveil_shared::Normalisation;

/// What kind of fixture folder to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fixture {
    /// Input width and height (multiples of 16, as the manifest requires).
    pub width: u16,
    pub height: u16,
    pub condition: Condition,
    /// Hidden channels of each graph's first convolution.
    pub hidden: usize,
    /// Wrap every convolution in QuantizeLinear/DequantizeLinear (int8 QDQ, as exported).
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
        let stage1 = self.stage1().encode_to_vec();
        let stage2 = self.stage2().encode_to_vec();
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

    /// G1: image → Conv → Relu → Conv → Relu → texture (non-negative, so channel 0 is
    /// exactly zero on some pixels and the silhouette condition is not trivial).
    pub fn stage1(&self) -> pb::ModelProto {
        let mut g = GraphBuilder::new(self, 1);
        g.input(names::IMAGE, 3);
        g.conv_relu(names::IMAGE, "h", 3, self.hidden);
        g.conv(
            "h",
            "t_pre",
            self.hidden,
            TEXTURE_CHANNELS,
            ConvInit::ShiftedDown,
        );
        g.node("Relu", &["t_pre"], names::TEXTURE, vec![]);
        g.output(names::TEXTURE, TEXTURE_CHANNELS);
        g.finish("stage1")
    }

    /// G2: [image, condition] → Concat → Conv → Relu → fg (Tanh), bg (Tanh), alpha
    /// (Sigmoid) → restored = alpha·fg + (1 − alpha)·bg.
    pub fn stage2(&self) -> pb::ModelProto {
        let mut g = GraphBuilder::new(self, 2);
        let c = self.condition.channels();
        g.input(names::IMAGE, 3);
        let x = if c > 0 {
            g.input(names::CONDITION, c);
            let axis = attr_int("axis", 1);
            g.node("Concat", &[names::IMAGE, names::CONDITION], "x", vec![axis]);
            "x"
        } else {
            names::IMAGE
        };
        g.conv_relu(x, "h", 3 + c, self.hidden);
        g.conv("h", "fg_pre", self.hidden, 3, ConvInit::Centred);
        g.node("Tanh", &["fg_pre"], names::FOREGROUND, vec![]);
        g.conv("h", "bg_pre", self.hidden, 3, ConvInit::Centred);
        g.node("Tanh", &["bg_pre"], names::BACKGROUND, vec![]);
        g.conv("h", "a_pre", self.hidden, 1, ConvInit::Centred);
        g.node("Sigmoid", &["a_pre"], names::ALPHA, vec![]);
        g.constant("one", &[], vec![1.0]);
        g.node("Mul", &[names::ALPHA, names::FOREGROUND], "afg", vec![]);
        g.node("Sub", &["one", names::ALPHA], "inv_a", vec![]);
        g.node("Mul", &["inv_a", names::BACKGROUND], "abg", vec![]);
        g.node("Add", &["afg", "abg"], names::RESTORED, vec![]);
        for (name, ch) in [
            (names::RESTORED, 3),
            (names::FOREGROUND, 3),
            (names::BACKGROUND, 3),
            (names::ALPHA, 1),
        ] {
            g.output(name, ch);
        }
        g.finish("stage2")
    }
}

#[derive(Clone, Copy)]
enum ConvInit {
    Centred,
    /// Negative bias, so a good share of the Relu outputs are exactly zero.
    ShiftedDown,
}

struct GraphBuilder<'a> {
    fixture: &'a Fixture,
    graph: pb::GraphProto,
    stream: u64,
    counter: u64,
}

impl<'a> GraphBuilder<'a> {
    fn new(fixture: &'a Fixture, stream: u64) -> Self {
        Self {
            fixture,
            graph: pb::GraphProto::default(),
            stream,
            counter: 0,
        }
    }

    fn value_info(&self, name: &str, channels: usize) -> pb::ValueInfoProto {
        let dims = [
            1,
            channels as i64,
            i64::from(self.fixture.height),
            i64::from(self.fixture.width),
        ];
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                denotation: String::new(),
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| pb::tensor_shape_proto::Dimension {
                                denotation: String::new(),
                                value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                            })
                            .collect(),
                    }),
                })),
            }),
            doc_string: String::new(),
        }
    }

    fn input(&mut self, name: &str, channels: usize) {
        let vi = self.value_info(name, channels);
        self.graph.input.push(vi);
    }

    fn output(&mut self, name: &str, channels: usize) {
        let vi = self.value_info(name, channels);
        self.graph.output.push(vi);
    }

    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) {
        self.graph.node.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
    }

    fn constant(&mut self, name: &str, dims: &[i64], values: Vec<f32>) {
        self.graph.initializer.push(pb::TensorProto {
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: values,
            name: name.into(),
            ..Default::default()
        });
    }

    fn constant_i8(&mut self, name: &str, dims: &[i64], values: &[i8]) {
        self.graph.initializer.push(pb::TensorProto {
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Int8 as i32,
            raw_data: values.iter().map(|&v| v as u8).collect(),
            name: name.into(),
            ..Default::default()
        });
    }

    /// Deterministic weight in `[-scale, scale)`.
    fn weight(&mut self, scale: f32) -> f32 {
        self.counter += 1;
        let bits = mix(self.fixture.seed ^ (self.stream << 48) ^ self.counter) >> 40;
        (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    fn conv_relu(&mut self, input: &str, output: &str, cin: usize, cout: usize) {
        let pre = format!("{output}_pre");
        self.conv(input, &pre, cin, cout, ConvInit::Centred);
        self.node("Relu", &[&pre], output, vec![]);
    }

    /// 3×3 same-padded convolution; in int8 mode its input and weights go through QDQ.
    fn conv(&mut self, input: &str, output: &str, cin: usize, cout: usize, init: ConvInit) {
        let scale = 1.0 / ((cin * 9) as f32).sqrt();
        let weights: Vec<f32> = (0..cout * cin * 9).map(|_| self.weight(scale)).collect();
        let bias: Vec<f32> = (0..cout)
            .map(|_| match init {
                ConvInit::Centred => self.weight(0.1),
                ConvInit::ShiftedDown => self.weight(0.2) - 0.1,
            })
            .collect();
        let (w, b) = (format!("{output}_w"), format!("{output}_b"));
        let w_dims = [cout as i64, cin as i64, 3, 3];
        let x = if self.fixture.int8 {
            // Per-tensor symmetric weights and a fixed activation range of ±4.
            let w_scale = weights.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let q: Vec<i8> = weights
                .iter()
                .map(|v| (v / w_scale).round().clamp(-127.0, 127.0) as i8)
                .collect();
            let (wq, ws, zp) = (
                format!("{output}_wq"),
                format!("{output}_ws"),
                format!("{output}_zp"),
            );
            self.constant_i8(&wq, &w_dims, &q);
            self.constant(&ws, &[], vec![w_scale]);
            self.constant_i8(&zp, &[], &[0]);
            self.node("DequantizeLinear", &[&wq, &ws, &zp], &w, vec![]);
            let (xs, xq, xd) = (
                format!("{output}_xs"),
                format!("{output}_xq"),
                format!("{output}_xd"),
            );
            self.constant(&xs, &[], vec![4.0 / 127.0]);
            self.node("QuantizeLinear", &[input, &xs, &zp], &xq, vec![]);
            self.node("DequantizeLinear", &[&xq, &xs, &zp], &xd, vec![]);
            xd
        } else {
            self.constant(&w, &w_dims, weights);
            input.to_string()
        };
        self.constant(&b, &[cout as i64], bias);
        let pads = attr_ints("pads", &[1, 1, 1, 1]);
        let kernel = attr_ints("kernel_shape", &[3, 3]);
        self.node("Conv", &[&x, &w, &b], output, vec![pads, kernel]);
    }

    fn finish(mut self, name: &str) -> pb::ModelProto {
        self.graph.name = name.into();
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            producer_name: "unveil-device fixture".into(),
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}
