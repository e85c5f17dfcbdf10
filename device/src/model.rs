//! Loading an exported model folder: manifest first, then each ONNX file checked against
//! its hash and the graph contract, then optimised into a tract plan once.
//!
//! Everything that can be wrong with a folder (missing files, a newer manifest, a tampered
//! or truncated graph, names or shapes that do not match the contract) is an error here,
//! before the first frame, rather than wrong pixels later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use unveil_shared::manifest::{io as names, Condition, Manifest, ManifestError, Role};
use unveil_shared::manifest::{MANIFEST_BIN, MAX_MANIFEST_LEN};
use unveil_shared::texture::TEXTURE_CHANNELS;

/// An optimised, runnable tract graph.
pub type Plan = Arc<TypedRunnableModel>;

/// Why a model folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Manifest {
        path: PathBuf,
        source: ManifestError,
    },
    #[error("{file} is not a usable ONNX graph: {reason}")]
    Graph { file: String, reason: String },
    #[error("{file} does not follow the graph contract: {reason}")]
    Contract { file: String, reason: String },
}

/// A verified model folder with both stages compiled.
pub struct Model {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub stage1: Plan,
    pub stage2: Plan,
    /// Position of the `condition` input among G2's inputs (`None` without a condition);
    /// the image is the other one.
    pub stage2_condition_input: Option<usize>,
    /// The occlusion detector of blind restoration (`image`, 3 planes → `occlusion`
    /// logits), when the folder ships one.
    pub detector: Option<Plan>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

/// G2's outputs, in the order the plan returns them.
pub const STAGE2_OUTPUTS: [&str; 4] = [
    names::RESTORED,
    names::FOREGROUND,
    names::BACKGROUND,
    names::ALPHA,
];

impl Model {
    /// Load `dir`: read and validate `manifest.bin`, verify every file's SHA-256, check the
    /// graphs' input/output names and shapes, and optimise them.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let manifest = read_manifest(dir)?;
        Self::assemble(manifest, dir, |file| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|source| ModelError::Read { path, source })
        })
    }

    /// A model from a manifest and its files held in memory (`(file name, bytes)`), with
    /// every check of [`load`](Self::load) but the folder: what the exporter runs before
    /// it writes one. `dir` reads `<memory>`.
    pub fn from_memory(manifest: Manifest, files: &[(&str, &[u8])]) -> Result<Self, ModelError> {
        manifest.validate().map_err(|source| ModelError::Manifest {
            path: PathBuf::from(MEMORY),
            source,
        })?;
        Self::assemble(manifest, Path::new(MEMORY), |file| {
            files
                .iter()
                .find(|(name, _)| *name == file)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| ModelError::Read {
                    path: Path::new(MEMORY).join(file),
                    source: std::io::ErrorKind::NotFound.into(),
                })
        })
    }

    /// Verify and compile the graphs `manifest` lists, each read by `read` from its file
    /// name (`dir` names the source in errors).
    fn assemble(
        manifest: Manifest,
        dir: &Path,
        read: impl Fn(&str) -> Result<Vec<u8>, ModelError>,
    ) -> Result<Self, ModelError> {
        let read_verified = |role| read_verified(dir, &manifest, role, &read);
        let (w, h) = (usize::from(manifest.width), usize::from(manifest.height));
        let c = manifest.condition.channels();
        let planes = manifest.hole.image_channels();

        let stage1 = {
            let (file, proto) = read_verified(Role::Stage1)?;
            let inputs = [(names::IMAGE, planes)];
            let outputs = [(names::TEXTURE, TEXTURE_CHANNELS)];
            compile(&file, proto, &inputs, &outputs, w, h)?.0
        };
        let (stage2, stage2_condition_input) = {
            let (file, proto) = read_verified(Role::Stage2)?;
            let mut inputs = vec![(names::IMAGE, planes)];
            if manifest.condition != Condition::None {
                inputs.push((names::CONDITION, c));
            }
            let outputs = [
                (names::RESTORED, 3),
                (names::FOREGROUND, 3),
                (names::BACKGROUND, 3),
                (names::ALPHA, 1),
            ];
            let (plan, order) = compile(&file, proto, &inputs, &outputs, w, h)?;
            let cond = order.iter().position(|&i| i == 1);
            (plan, cond)
        };
        let detector = match manifest.model(Role::Occlusion) {
            None => None,
            Some(_) => {
                let (file, proto) = read_verified(Role::Occlusion)?;
                let inputs = [(names::IMAGE, 3)];
                let outputs = [(names::OCCLUSION, 1)];
                Some(compile(&file, proto, &inputs, &outputs, w, h)?.0)
            }
        };
        Ok(Self {
            manifest,
            dir: dir.to_path_buf(),
            stage1,
            stage2,
            stage2_condition_input,
            detector,
        })
    }

    /// Model input width and height.
    pub fn size(&self) -> (usize, usize) {
        (
            usize::from(self.manifest.width),
            usize::from(self.manifest.height),
        )
    }
}

/// Read and validate `dir`'s `manifest.bin` alone: what a caller choosing between folders
/// needs, without compiling any graph.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ModelError> {
    let path = dir.join(MANIFEST_BIN);
    let bytes = read_limited(&path, MAX_MANIFEST_LEN as u64 + 1)?;
    Manifest::from_bytes(&bytes).map_err(|source| ModelError::Manifest { path, source })
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ModelError> {
    use std::io::Read;
    let err = |source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
}

/// What [`Model::from_memory`] reports as its folder.
const MEMORY: &str = "<memory>";

/// Read the file for `role` and check its hash before anything parses it.
fn read_verified(
    dir: &Path,
    manifest: &Manifest,
    role: Role,
    read: impl Fn(&str) -> Result<Vec<u8>, ModelError>,
) -> Result<(String, tract_onnx::pb::ModelProto), ModelError> {
    let entry = manifest.model(role).ok_or_else(|| ModelError::Manifest {
        path: dir.join(MANIFEST_BIN),
        source: ManifestError::MissingModel(role),
    })?;
    let path = dir.join(&entry.file);
    let bytes = read(&entry.file)?;
    Manifest::verify(entry, &bytes).map_err(|source| ModelError::Manifest {
        path: path.clone(),
        source,
    })?;
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| ModelError::Graph {
            file: entry.file.clone(),
            reason: format!("{e:#}"),
        })?;
    Ok((entry.file.clone(), proto))
}

/// Fix the input facts, order the outputs as `outputs`, check every shape, optimise.
///
/// Returns the plan and, for each graph input in order, its index in `inputs`.
fn compile(
    file: &str,
    proto: tract_onnx::pb::ModelProto,
    inputs: &[(&str, usize)],
    outputs: &[(&str, usize)],
    w: usize,
    h: usize,
) -> Result<(Plan, Vec<usize>), ModelError> {
    let graph_err = |e: TractError| ModelError::Graph {
        file: file.to_string(),
        reason: format!("{e:#}"),
    };
    let contract = |reason: String| ModelError::Contract {
        file: file.to_string(),
        reason,
    };
    let mut model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .map_err(graph_err)?;

    let graph_inputs: Vec<String> = model
        .input_outlets()
        .map_err(graph_err)?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    let mut order = Vec::with_capacity(graph_inputs.len());
    for name in &graph_inputs {
        let ix = inputs
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| contract(format!("unexpected input {name:?}")))?;
        order.push(ix);
    }
    for (name, _) in inputs {
        if !graph_inputs.iter().any(|g| g == name) {
            return Err(contract(format!("missing input {name:?}")));
        }
    }
    for (slot, &ix) in order.iter().enumerate() {
        let shape = [1, inputs[ix].1, h, w];
        // Declared sizes must agree with the manifest; symbolic ones are fixed here.
        let declared = &model.input_fact(slot).map_err(graph_err)?.shape;
        let dims: Vec<Option<usize>> = declared
            .dims()
            .map(|d| {
                d.concretize()
                    .and_then(|d| d.as_i64())
                    .and_then(|d| usize::try_from(d).ok())
            })
            .collect();
        let rank_ok = declared.is_open() || dims.len() == 4;
        if !rank_ok
            || dims
                .iter()
                .zip(shape)
                .any(|(d, want)| d.is_some_and(|d| d != want))
        {
            return Err(contract(format!(
                "input {:?} is declared {declared:?}, the manifest needs {shape:?}",
                inputs[ix].0
            )));
        }
        model
            .set_input_fact(slot, InferenceFact::dt_shape(f32::datum_type(), shape))
            .map_err(graph_err)?;
    }

    let mut outlets = Vec::with_capacity(outputs.len());
    for (name, _) in outputs {
        let outlet = model
            .find_outlet_label(name)
            .or_else(|| {
                model
                    .node_by_name(name)
                    .ok()
                    .map(|n| OutletId::new(n.id, 0))
            })
            .ok_or_else(|| contract(format!("missing output {name:?}")))?;
        outlets.push(outlet);
    }
    model.select_output_outlets(&outlets).map_err(graph_err)?;

    let typed = model.into_optimized().map_err(graph_err)?;
    for (slot, (name, ch)) in outputs.iter().enumerate() {
        let fact = typed.output_fact(slot).map_err(graph_err)?;
        let want = [1, *ch, h, w];
        if fact.datum_type != f32::datum_type() || fact.shape.as_concrete() != Some(&want[..]) {
            return Err(contract(format!(
                "output {name:?} is {fact:?}, expected f32 {want:?}"
            )));
        }
    }
    let plan = typed.into_runnable().map_err(graph_err)?;
    Ok((plan, order))
}
