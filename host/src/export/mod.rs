//! Export of the inference path to ONNX for the device (tract): G1 and G2 as two graphs,
//! f32 or int8, with the shared [`Manifest`].
//!
//! burn can import ONNX but not export it, so the graphs are written here from the
//! weights of our own fixed architectures: [`onnx`] is the protobuf writer (one method per
//! operator kind), [`emit`] lowers each block kind, [`stage1`] and [`stage2`] are the two
//! networks, and [`quantise`] and [`calibrate`] make the int8 variant. Exported graphs
//! run in the device's own `Model` and `Pipeline` ([`pipeline`], [`folder_pipeline`]);
//! [`runtime`] runs only what is not a model: calibration's probe graphs and `inspect`'s
//! per-operator reports.
//!
//! Two graphs rather than one fused graph: the device times and swaps the stages
//! separately (G1 alone for a texture-map preview, G2 re-run without G1 on a static
//! subject), and the ablations (G2 conditioned on a silhouette or on nothing) reuse G1 or
//! drop it without a second export of the same weights.

pub mod calibrate;
pub mod emit;
pub mod inspect;
pub mod occlusion;

pub mod parity;
pub mod quantise;
pub mod runtime;
pub mod stage1;
pub mod stage2;

use std::path::{Path, PathBuf};
use unveil_shared::hole::HoleInput;

use unveil_shared::manifest::{
    self, Calibration, Condition, Manifest, ManifestError, ModelFile, Quantisation, Role,
    WeightScales, MANIFEST_BIN, MANIFEST_JSON, MANIFEST_VERSION,
};
use unveil_shared::texture::{NUM_PARTS, TEXTURE_CHANNELS};
use unveil_shared::Normalisation;

use self::emit::{Numerics, Probe};
use self::quantise::ConvRanges;
use self::runtime::Runner;
use crate::nets::stage1::Stage1Net;
use crate::nets::stage2::Stage2Net;
use crate::nets::ShapeError;
use unveil_device::model::{Model, ModelError};
use unveil_device::onnx;
use unveil_device::pipeline::{Pipeline, PipelineError};

/// File name of G1's graph inside a model folder.
pub const STAGE1_FILE: &str = "stage1.onnx";
/// File name of G2's graph inside a model folder.
pub const STAGE2_FILE: &str = "stage2.onnx";
/// File name of the occlusion detector's graph (blind mode) inside a model folder.
pub const OCCLUSION_FILE: &str = "occlusion.onnx";

/// Everything that can go wrong while exporting or loading an exported model.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("architecture not exportable: {0}")]
    Architecture(String),
    #[error("cannot read the weights: {0}")]
    Weights(String),
    #[error("ONNX graph rejected by tract: {0}")]
    Onnx(String),
    #[error("bad graph input: {0}")]
    Input(String),
    #[error("tract failed to run the graph: {0}")]
    Run(String),
    #[error("calibration has ranges for {found} convolutions, the graph has {expected}")]
    CalibrationMismatch { expected: usize, found: usize },
    #[error("no calibration samples")]
    NoCalibrationSamples,
    #[error("model condition {condition:?} needs {expected} G2 input channels, the network has {actual}")]
    Condition {
        condition: Condition,
        expected: usize,
        actual: usize,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the JSON manifest: {0}")]
    Json(String),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a model folder is, besides its weights.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    /// Model name recorded in the manifest (e.g. `default`).
    pub name: String,
    /// Fixed input size of both graphs.
    pub height: usize,
    pub width: usize,
    /// What G2 is conditioned on.
    pub condition: Condition,
    /// How both graphs' image input carries the hole.
    pub hole: HoleInput,
    /// SHA-256 of the training configurations the weights came from.
    pub training_config_sha256: [u8; 32],
}

/// The two encoded graphs of a model folder.
#[derive(Debug, Clone)]
pub struct Graphs {
    pub stage1: Vec<u8>,
    pub stage2: Vec<u8>,
}

impl Graphs {
    /// Each graph with its role and its file name in a model folder.
    pub fn files(&self) -> [(Role, &'static str, &Vec<u8>); 2] {
        [
            (Role::Stage1, STAGE1_FILE, &self.stage1),
            (Role::Stage2, STAGE2_FILE, &self.stage2),
        ]
    }
}

/// Refuse what no camera can run: the oracle condition needs the renderer's ground truth.
fn exportable(spec: &ExportSpec) -> Result<(), ExportError> {
    if spec.condition == Condition::Truth {
        return Err(ManifestError::OracleCondition.into());
    }
    Ok(())
}

/// G1 and G2 as f32 ONNX.
pub fn export_f32(
    g1: &Stage1Net,
    g2: &Stage2Net,
    spec: &ExportSpec,
) -> Result<Graphs, ExportError> {
    exportable(spec)?;
    let (s1, _) = stage1::stage1_graph(g1, spec.height, spec.width, Numerics::Float)?;
    let (s2, _) =
        stage2::stage2_graph(g2, spec.condition, spec.height, spec.width, Numerics::Float)?;
    Ok(Graphs {
        stage1: onnx::encode(&s1),
        stage2: onnx::encode(&s2),
    })
}

/// Calibrated activation ranges of both graphs.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    pub stage1: Vec<ConvRanges>,
    pub stage2: Vec<ConvRanges>,
}

/// Calibrate both graphs on `images` (occluded images, CHW, normalised like the graph
/// input): G1 on the images, G2 on the images with the condition G1 (f32, in tract)
/// predicts for them. `on_sample` is called once per image and stage (2 × images calls,
/// for progress).
pub fn calibrate(
    g1: &Stage1Net,
    g2: &Stage2Net,
    spec: &ExportSpec,
    images: &[Vec<f32>],
    method: Calibration,
    mut on_sample: impl FnMut(),
) -> Result<Ranges, ExportError> {
    if images.is_empty() {
        return Err(ExportError::NoCalibrationSamples);
    }
    let (h, w) = (spec.height, spec.width);
    let (s1, p1) = stage1::stage1_graph(g1, h, w, Numerics::Probe)?;
    let (s2, p2) = stage2::stage2_graph(g2, spec.condition, h, w, Numerics::Probe)?;
    let (o1, o2) = (probe_outputs(&s1, &p1)?, probe_outputs(&s2, &p2)?);
    let r1 = Runner::load(&onnx::encode(&s1))?;
    let r2 = Runner::load(&onnx::encode(&s2))?;
    // G1's texture maps (its contract output, exposed next to the probes) feed G2.
    let texture_output = output_index(&s1, unveil_shared::manifest::io::TEXTURE)?;
    let mut textures = Vec::with_capacity(images.len());
    let stage1 = calibrate::collect_ranges(
        &r1,
        &o1,
        images.iter().map(|img| Ok(vec![img.clone()])),
        method,
        |mut outputs| {
            if texture_output < outputs.len() {
                textures.push(outputs.swap_remove(texture_output));
            }
            on_sample();
        },
    )?;
    let stage2 = calibrate::collect_ranges(
        &r2,
        &o2,
        images
            .iter()
            .zip(&textures)
            .map(|(img, tex)| Ok(stage2_inputs(spec.condition, img, tex))),
        method,
        |_| on_sample(),
    )?;
    Ok(Ranges { stage1, stage2 })
}

/// G2's graph inputs for `condition`: the image, then the condition planes derived from
/// G1's texture map (all of it, its silhouette by the shared
/// [`unveil_shared::texture::silhouette_plane`] the device uses, or nothing).
pub fn stage2_inputs(condition: Condition, image: &[f32], texture: &[f32]) -> Vec<Vec<f32>> {
    match condition {
        Condition::Texture | Condition::Truth => vec![image.to_vec(), texture.to_vec()],
        Condition::Silhouette => {
            let mut plane = vec![0.0; texture.len() / TEXTURE_CHANNELS];
            unveil_shared::texture::silhouette_plane(texture, &mut plane);
            vec![image.to_vec(), plane]
        }
        Condition::None => vec![image.to_vec()],
    }
}

/// Index of the graph output `name`.
fn output_index(model: &tract_onnx::pb::ModelProto, name: &str) -> Result<usize, ExportError> {
    model
        .graph
        .as_ref()
        .and_then(|g| g.output.iter().position(|o| o.name == name))
        .ok_or_else(|| ExportError::Architecture(format!("{name} is not a graph output")))
}

/// Indices of each probe's input and output among the graph's outputs.
fn probe_outputs(
    model: &tract_onnx::pb::ModelProto,
    probes: &[Probe],
) -> Result<Vec<(usize, usize)>, ExportError> {
    probes
        .iter()
        .map(|p| {
            Ok((
                output_index(model, &p.input)?,
                output_index(model, &p.output)?,
            ))
        })
        .collect()
}

/// G1 and G2 as int8 ONNX from calibrated ranges.
pub fn export_int8(
    g1: &Stage1Net,
    g2: &Stage2Net,
    spec: &ExportSpec,
    ranges: &Ranges,
    weights: WeightScales,
) -> Result<Graphs, ExportError> {
    let (h, w) = (spec.height, spec.width);
    let (s1, _) = stage1::stage1_graph(g1, h, w, Numerics::Int8(&ranges.stage1, weights))?;
    let q2 = Numerics::Int8(&ranges.stage2, weights);
    let (s2, _) = stage2::stage2_graph(g2, spec.condition, h, w, q2)?;
    Ok(Graphs {
        stage1: onnx::encode(&s1),
        stage2: onnx::encode(&s2),
    })
}

/// The manifest of a folder holding `graphs` (validated).
pub fn manifest_of(
    spec: &ExportSpec,
    graphs: &Graphs,
    quantisation: Quantisation,
) -> Result<Manifest, ExportError> {
    exportable(spec)?;
    let size = |v: usize| {
        u16::try_from(v).map_err(|_| ManifestError::Size {
            width: u16::MAX,
            height: u16::MAX,
        })
    };
    let models = graphs
        .files()
        .into_iter()
        .map(|(role, file, bytes)| ModelFile {
            role,
            file: file.to_string(),
            sha256: manifest::sha256(bytes),
        })
        .collect();
    let m = Manifest {
        version: MANIFEST_VERSION,
        name: spec.name.clone(),
        width: size(spec.width)?,
        height: size(spec.height)?,
        normalisation: Normalisation::default(),
        texture_channels: TEXTURE_CHANNELS as u8,
        num_parts: NUM_PARTS as u8,
        condition: spec.condition,
        quantisation,
        models,
        training_config_sha256: spec.training_config_sha256,
        hole: spec.hole,
    };
    m.validate()?;
    Ok(m)
}

/// Write `graphs` and their manifest (`manifest.bin` + `manifest.json`) into `dir`
/// (created if missing); returns the manifest.
pub fn write_folder(
    dir: &Path,
    spec: &ExportSpec,
    graphs: &Graphs,
    quantisation: Quantisation,
) -> Result<Manifest, ExportError> {
    let m = manifest_of(spec, graphs, quantisation)?;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    for (_, file, bytes) in graphs.files() {
        let path = dir.join(file);
        unveil_shared::files::write_atomic(&path, bytes).map_err(io_error(&path))?;
    }
    write_manifest(dir, &m)?;
    Ok(m)
}

/// `graphs` loaded as the device loads a folder (its [`Model`]: manifest, hashes, graph
/// contract) without writing one, in the device's [`Pipeline`]: how the exporter's checks
/// and the parity tests run what they are about to ship.
pub fn pipeline(
    spec: &ExportSpec,
    graphs: &Graphs,
    quantisation: Quantisation,
) -> Result<Pipeline, ExportError> {
    let m = manifest_of(spec, graphs, quantisation)?;
    let files = graphs
        .files()
        .map(|(_, file, bytes)| (file, bytes.as_slice()));
    let model = Model::from_memory(m, &files)?;
    Ok(Pipeline::new(std::sync::Arc::new(model))?)
}

/// The device's [`Pipeline`] on the model folder `dir` (loaded by [`Model::load`]).
pub fn folder_pipeline(dir: &Path) -> Result<Pipeline, ExportError> {
    Ok(Pipeline::new(std::sync::Arc::new(Model::load(dir)?))?)
}

/// Validate `m` and write it as `manifest.json` and `manifest.bin` (last: a folder with
/// a manifest is complete).
fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), ExportError> {
    m.validate()?;
    let json = serde_json::to_string_pretty(m).map_err(|e| ExportError::Json(e.to_string()))?;
    let json_path = dir.join(MANIFEST_JSON);
    unveil_shared::files::write_atomic(&json_path, (json + "\n").as_bytes())
        .map_err(io_error(&json_path))?;
    let bin_path = dir.join(MANIFEST_BIN);
    unveil_shared::files::write_atomic(&bin_path, &m.to_bytes()?).map_err(io_error(&bin_path))
}

/// Add the occlusion detector `net` (f32, at the folder's input size) to the complete
/// model folder `dir`: `occlusion.onnx`, then the manifest rewritten with its entry, so
/// the folder is complete before and after. A detector already there is replaced.
pub fn add_detector(
    dir: &Path,
    net: &crate::nets::silhouette::Silhouette,
) -> Result<Manifest, ExportError> {
    let mut m = unveil_device::model::read_manifest(dir)?;
    let graph = occlusion::occlusion_graph(net, usize::from(m.height), usize::from(m.width))?;
    let bytes = onnx::encode(&graph);
    let path = dir.join(OCCLUSION_FILE);
    unveil_shared::files::write_atomic(&path, &bytes).map_err(io_error(&path))?;
    m.models.retain(|f| f.role != Role::Occlusion);
    m.models.push(ModelFile {
        role: Role::Occlusion,
        file: OCCLUSION_FILE.to_string(),
        sha256: manifest::sha256(&bytes),
    });
    write_manifest(dir, &m)?;
    Ok(m)
}

/// How [`export_folder`] quantises.
#[derive(Debug, Clone)]
pub enum Precision<'a> {
    Float32,
    /// Static int8, calibrated on these occluded images (CHW, normalised).
    Int8 {
        calibration: Calibration,
        weights: WeightScales,
        images: &'a [Vec<f32>],
    },
}

/// Export G1 and G2 into a complete model folder: `stage1.onnx`, `stage2.onnx`,
/// `manifest.bin`, `manifest.json`.
pub fn export_folder(
    dir: &Path,
    g1: &Stage1Net,
    g2: &Stage2Net,
    spec: &ExportSpec,
    precision: Precision,
    on_sample: impl FnMut(),
) -> Result<Manifest, ExportError> {
    exportable(spec)?;
    let image = spec.hole.image_channels();
    if g1.in_channels != image || g1.hole() != spec.hole || g2.hole() != spec.hole {
        return Err(ExportError::Architecture(format!(
            "the model reads its image as {:?} ({image} planes), but G1 reads {} planes ({:?}) \
             and G2 {:?}: both stages must read the same image input",
            spec.hole,
            g1.in_channels,
            g1.hole(),
            g2.hole()
        )));
    }
    let expected = image + spec.condition.channels();
    if g2.in_channels != expected {
        return Err(ExportError::Condition {
            condition: spec.condition,
            expected,
            actual: g2.in_channels,
        });
    }
    match precision {
        Precision::Float32 => {
            write_folder(dir, spec, &export_f32(g1, g2, spec)?, Quantisation::Float32)
        }
        Precision::Int8 {
            calibration,
            weights,
            images,
        } => {
            let ranges = calibrate(g1, g2, spec, images, calibration, on_sample)?;
            let graphs = export_int8(g1, g2, spec, &ranges, weights)?;
            let samples = u32::try_from(images.len()).unwrap_or(u32::MAX);
            write_folder(
                dir,
                spec,
                &graphs,
                Quantisation::Int8 {
                    calibration,
                    samples,
                    weights,
                },
            )
        }
    }
}

/// Load the model folder `dir` the way the device does (it is the device's own
/// [`Model::load`]: manifest, hashes, graph contract), with each stage as a host
/// [`Runner`] for the checks and reports that need every output.
pub fn load_folder(dir: &Path) -> Result<(Model, [Runner; 2]), ExportError> {
    let model = Model::load(dir)?;
    let runners = [
        Runner::from_plan(model.stage1.clone())?,
        Runner::from_plan(model.stage2.clone())?,
    ];
    Ok((model, runners))
}
