//! The training harness every network shares: run folders with their configuration,
//! atomic checkpoints, bit-exact resume, live progress, `metrics.csv` and a loss curve.
//!
//! A run folder holds:
//!
//! ```text
//! run.json        what was trained and how (written once; `--resume` reads it back)
//! checkpoint/     model.bpk + optim.bpk + step: the whole resumable state
//! model.bpk       the latest weights alone, for evaluation and export
//! metrics.csv     step and every loss term, one row per step
//! loss.png        the loss curves
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use unveil_shared::manifest::{hex, sha256};
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};
use unveil_shared::rng;

use crate::data::{DataError, Loader, SampleBatch, SampleSource, Task};
use crate::losses::{
    bce_with_logits, hard_negative_bce, Stage1LossConfig, Stage2LossConfig, HARD_NEGATIVE_SHARE,
};
use crate::nets::blocks::seeded_init;
use crate::nets::discriminator::DiscriminatorConfig;
use crate::nets::silhouette::{Silhouette, SilhouetteConfig};
use crate::nets::stage1::{Stage1Config, Stage1Net};
use crate::nets::stage2::HoleInput;
use crate::nets::stage2::Stage2Config;
use crate::train::stage2::{Stage2Learner, DISCRIMINATOR_DIR};
use crate::train::{
    load_model, save_model, BackendKind, Batch, CheckpointError, LrSchedule, TrainConfig,
    TrainError, Trainer,
};
use crate::viz::plot::{line_chart, Series};

/// File names inside a run folder.
pub const RUN_FILE: &str = "run.json";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub use crate::train::MODEL_FILE;
pub const METRICS_FILE: &str = "metrics.csv";
pub const CURVE_FILE: &str = "loss.png";

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid run configuration: {source}")]
    RunConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}: nothing to resume (no run.json); start without --resume")]
    NothingToResume(PathBuf),
    #[error(
        "{0}: no trained run here (no run.json); make one with `unveil train <network> --out {0}`"
    )]
    NoRun(PathBuf),
    #[error(
        "{0}: a run already exists here; pass --resume to continue it or choose another --out"
    )]
    Exists(PathBuf),
    #[error("--resume: {0}")]
    ResumeMismatch(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{0}")]
    Missing(String),
    #[error("the data thread panicked")]
    DataThread,
    #[error("{0}: holds run.json but no checkpoint/ to resume from; its model.bpk and metrics.csv are left as they are (start a new run with another --out)")]
    NoCheckpoint(PathBuf),
    #[error("{dir}: checkpoint is corrupt: {file} does not match its SHA-256 in {DIGEST_FILE}; not resuming from it")]
    CorruptCheckpoint { dir: PathBuf, file: String },
}

/// Digest of every file of a checkpoint, in `sha256sum`'s format (`sha256sum -c` checks
/// it by hand); resuming checks it first, so a flipped byte never trains on.
pub const DIGEST_FILE: &str = "SHA256SUMS";
/// The metrics rows up to the checkpoint's step, saved with it, so a kill between the
/// checkpoint's rename and the run folder's `metrics.csv` loses no row.
const CHECKPOINT_METRICS: &str = "metrics.csv";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The networks the harness trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Extraction network: clean image → texture map (labels user photos).
    Extractor,
    /// Silhouette network S (frozen in stage 2 for L4).
    Silhouette,
    /// G1: occluded image → texture map.
    Stage1,
    /// G2 (and its discriminator D): occluded image + condition → restored image.
    Stage2,
    /// Occlusion detector: occluded image → occluder mask, for blind restoration (the
    /// silhouette network's architecture, trained on the occlusion generator's masks).
    Occlusion,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "extractor" => Ok(Self::Extractor),
            "silhouette" => Ok(Self::Silhouette),
            "stage1" => Ok(Self::Stage1),
            "stage2" => Ok(Self::Stage2),
            "occlusion" => Ok(Self::Occlusion),
            other => Err(format!(
                "unknown network {other:?} (expected extractor, silhouette, stage1, stage2 or occlusion)"
            )),
        }
    }
}

impl Network {
    /// The networks in training order: each may depend on the ones before it.
    pub const ALL: [Network; 5] = [
        Network::Extractor,
        Network::Silhouette,
        Network::Stage1,
        Network::Stage2,
        Network::Occlusion,
    ];

    /// Lower-case name (the CLI's and the default run folder's).
    pub fn name(self) -> &'static str {
        match self {
            Self::Extractor => "extractor",
            Self::Silhouette => "silhouette",
            Self::Stage1 => "stage1",
            Self::Stage2 => "stage2",
            Self::Occlusion => "occlusion",
        }
    }

    /// Adam's peak rate when none is given: 2e-3 for S; 5e-4 for G1 and the extractor,
    /// which diverge at 2e-3 at the default preset; 1e-3 for G2.
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Self::Silhouette | Self::Occlusion => 2e-3,
            Self::Extractor | Self::Stage1 => 5e-4,
            Self::Stage2 => 1e-3,
        }
    }

    /// Names of the loss terms, total first (the `metrics.csv` columns after `step`).
    pub fn loss_names(self) -> &'static [&'static str] {
        match self {
            Self::Silhouette | Self::Occlusion => &["bce"],
            Self::Extractor | Self::Stage1 => &["total", "part_ce", "uv_mse", "albedo_mse"],
            Self::Stage2 => &crate::train::stage2::LOSS_NAMES,
        }
    }
}

/// Size presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 64×64, narrow networks: minutes on a CPU; used by the tests.
    Tiny,
    /// 128×128, the shipped models.
    Default,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Self::Tiny),
            "default" => Ok(Self::Default),
            other => Err(format!(
                "unknown preset {other:?} (expected tiny or default)"
            )),
        }
    }
}

impl Preset {
    /// Steps of a run when none are given.
    pub fn default_steps(self) -> usize {
        match self {
            Self::Tiny => 300,
            Self::Default => 3000,
        }
    }

    pub fn image_size(self) -> usize {
        match self {
            Self::Tiny => 64,
            Self::Default => 128,
        }
    }

    pub fn stage1(self) -> Stage1Config {
        match self {
            Self::Tiny => Stage1Config::tiny(),
            Self::Default => Stage1Config::default(),
        }
    }

    pub fn silhouette(self) -> SilhouetteConfig {
        match self {
            Self::Tiny => SilhouetteConfig::tiny(),
            Self::Default => SilhouetteConfig::new().with_base_width(16),
        }
    }

    /// The occlusion detector: S's architecture at width 8 (about half of G2's cost per
    /// frame on the device, where it runs only when no mask is given).
    pub fn detector(self) -> SilhouetteConfig {
        match self {
            Self::Tiny => SilhouetteConfig::tiny(),
            Self::Default => SilhouetteConfig::new(),
        }
    }

    pub fn stage2(self) -> Stage2Config {
        match self {
            Self::Tiny => Stage2Config::tiny(),
            Self::Default => Stage2Config::default(),
        }
    }

    pub fn discriminator(self) -> DiscriminatorConfig {
        match self {
            Self::Tiny => DiscriminatorConfig::new().with_base_width(8),
            Self::Default => DiscriminatorConfig::new(),
        }
    }

    /// L5 windows scale with the image: 8/4 pixels at 64, 16/8 at 128.
    pub fn stage2_loss(self) -> Stage2LossConfig {
        match self {
            Self::Tiny => Stage2LossConfig::new()
                .with_patch_size(8)
                .with_patch_stride(4),
            Self::Default => Stage2LossConfig::new(),
        }
    }
}

/// What a run trains and how; saved as `run.json`, unknown fields rejected.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub network: Network,
    pub preset: Preset,
    /// Total steps the run aims for.
    pub steps: usize,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    pub train: TrainConfig,
    pub stage1: Stage1Config,
    pub silhouette: SilhouetteConfig,
    pub loss: Stage1LossConfig,
    pub occlusion: OcclusionSpec,
    /// Where the data came from (for the record; the caller supplies the data).
    pub data: String,
    /// G2 (stage-2 runs only).
    #[serde(default)]
    pub stage2: Stage2Config,
    /// D (stage-2 runs only).
    #[serde(default)]
    pub discriminator: DiscriminatorConfig,
    /// Stage-2 loss weights and L5 windows.
    #[serde(default)]
    pub stage2_loss: Stage2LossConfig,
    /// Stage-2 runs: the run folders of the trained G1 and S they freeze.
    #[serde(default)]
    pub stage1_run: Option<PathBuf>,
    #[serde(default)]
    pub silhouette_run: Option<PathBuf>,
    /// The occlusion detector (occlusion runs only).
    #[serde(default)]
    pub detector: SilhouetteConfig,
    /// Occlusion runs: weight of the hard-negative term ([`hard_negative_bce`] over
    /// [`HARD_NEGATIVE_SHARE`] of each image) beside the BCE; absent: BCE alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_negatives: Option<f32>,
    /// Silhouette and occlusion runs: a run of the same network whose trained weights
    /// start this one (fine-tuning under a new loss; Adam and the schedule start afresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Parts each batch is cut into and trained in parallel ([`Trainer::step_sharded`]);
    /// runs from before data parallelism read 1 and resume as they were trained.
    #[serde(default = "one_shard")]
    pub shards: usize,
}

fn one_shard() -> usize {
    1
}

impl RunConfig {
    /// A run of `network` at `preset` with every other setting at its default.
    pub fn new(network: Network, preset: Preset, steps: usize, data: String) -> Self {
        Self {
            network,
            preset,
            steps,
            checkpoint_every: 100,
            train: TrainConfig::new(),
            stage1: preset.stage1(),
            silhouette: preset.silhouette(),
            loss: Stage1LossConfig::new(),
            occlusion: OcclusionSpec::new(OcclusionMode::Mixed),
            data,
            stage2: preset.stage2(),
            discriminator: preset.discriminator(),
            stage2_loss: preset.stage2_loss(),
            stage1_run: None,
            silhouette_run: None,
            detector: preset.detector(),
            hard_negatives: None,
            init_from: None,
            shards: 1,
        }
    }
}

/// `saved` aiming for `steps` steps instead. A cosine schedule that ended at the old
/// target ends at the new one, so a run cut short anneals to its new end instead of
/// stopping at a high rate (and an extended one decays over the longer span). The rates
/// of the steps already done are history; only the remaining steps follow the new curve.
pub fn retarget(saved: &RunConfig, steps: usize) -> RunConfig {
    let mut run = RunConfig {
        steps,
        ..saved.clone()
    };
    if let LrSchedule::Cosine { horizon, .. } = &mut run.train.schedule {
        if *horizon == saved.steps {
            *horizon = steps;
        }
    }
    run
}

/// Steps a run folder's checkpoint holds (0 when it has none).
pub fn steps_done(dir: &Path) -> usize {
    checkpoint_to_resume(dir)
        .and_then(|c| fs::read_to_string(c.join(crate::train::STEP_FILE)).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Read `run.json` from `dir`.
pub fn load_run_config(dir: &Path) -> Result<RunConfig, HarnessError> {
    let path = dir.join(RUN_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HarnessError::NoRun(dir.into()))
        }
        Err(source) => return Err(HarnessError::Io { path, source }),
    };
    let parse = || -> Result<RunConfig, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)?;
        fill_added_fields(&mut value);
        serde_json::from_value(value)
    };
    parse().map_err(|source| HarnessError::RunConfig { path, source })
}

/// Fill in the fields added to the run configuration after runs were already written,
/// with the value that reproduces what those older runs did. burn's configs reject a
/// missing field, so without this every older run folder would stop loading when a field
/// is added.
fn fill_added_fields(value: &mut serde_json::Value) {
    let added = [
        ("train", "schedule", serde_json::json!("Constant")),
        ("stage2_loss", "hidden_weight", serde_json::json!(0.0)),
        ("stage2_loss", "matte_weight", serde_json::json!(0.0)),
        ("stage2_loss", "hidden_log_weight", serde_json::json!(0.0)),
        ("stage2", "hole", serde_json::json!("Absent")),
    ];
    for (section, field, default) in added {
        if let Some(serde_json::Value::Object(map)) = value.get_mut(section) {
            map.entry(field).or_insert(default);
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    unveil_shared::files::write_atomic(path, bytes).map_err(io(path))
}

/// Files under `dir` (recursively), as `/`-separated relative names, sorted.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>, HarnessError> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, folder)) = stack.pop() {
        for entry in fs::read_dir(&folder).map_err(io(&folder))? {
            let path = entry.map_err(io(&folder))?.path();
            let name = format!(
                "{prefix}{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            if path.is_dir() {
                stack.push((format!("{name}/"), path));
            } else {
                out.push((name, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Write `ckpt/SHA256SUMS` over every other file of the checkpoint.
fn write_digest(ckpt: &Path) -> Result<(), HarnessError> {
    let mut text = String::new();
    for (name, path) in files_under(ckpt)? {
        if name != DIGEST_FILE {
            let bytes = fs::read(&path).map_err(io(&path))?;
            text += &format!("{}  {name}\n", hex(&sha256(&bytes)));
        }
    }
    write_atomic(&ckpt.join(DIGEST_FILE), text.as_bytes())
}

/// Check every file of a checkpoint against its digest, and that none is missing or
/// extra. A checkpoint from before digests existed is resumed with a warning.
fn verify_checkpoint(ckpt: &Path) -> Result<(), HarnessError> {
    let dir = ckpt.to_path_buf();
    let text = match fs::read_to_string(ckpt.join(DIGEST_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "warning: {}: no {DIGEST_FILE} (written by an older build); resuming unverified",
                ckpt.display()
            );
            return Ok(());
        }
        Err(source) => {
            return Err(HarnessError::Io {
                path: ckpt.join(DIGEST_FILE),
                source,
            })
        }
    };
    let mut listed: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, n)| (n, h))
        .collect();
    listed.sort();
    let files: Vec<_> = files_under(ckpt)?
        .into_iter()
        .filter(|(n, _)| n != DIGEST_FILE)
        .collect();
    let corrupt = |file: &str| HarnessError::CorruptCheckpoint {
        dir: dir.clone(),
        file: file.to_string(),
    };
    for (name, path) in &files {
        let Ok(i) = listed.binary_search_by(|(n, _)| (*n).cmp(name.as_str())) else {
            return Err(corrupt(name));
        };
        let bytes = fs::read(path).map_err(io(path))?;
        if hex(&sha256(&bytes)) != listed[i].1 {
            return Err(corrupt(name));
        }
    }
    if let Some((missing, _)) = listed
        .iter()
        .find(|(n, _)| !files.iter().any(|(f, _)| f.as_str() == *n))
    {
        return Err(corrupt(missing));
    }
    Ok(())
}

/// Replace `dir/checkpoint` by the trainer's state and the metrics rows so far, without
/// ever leaving no checkpoint: write `checkpoint.new` (with its digest), move the old one
/// aside, move the new one in, drop the old one.
fn save_checkpoint(learner: &impl Stepper, dir: &Path, metrics: &[u8]) -> Result<(), HarnessError> {
    let live = dir.join(CHECKPOINT_DIR);
    let new = dir.join("checkpoint.new");
    let old = dir.join("checkpoint.old");
    if new.exists() {
        fs::remove_dir_all(&new).map_err(io(&new))?;
    }
    learner.save_state(&new)?;
    write_atomic(&new.join(CHECKPOINT_METRICS), metrics)?;
    write_digest(&new)?;
    if live.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        fs::rename(&live, &old).map_err(io(&live))?;
    }
    fs::rename(&new, &live).map_err(io(&new))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    let model_tmp = dir.join("model.bpk.tmp");
    learner.save_weights(&model_tmp)?;
    fs::rename(&model_tmp, dir.join(MODEL_FILE)).map_err(io(dir))
}

/// The checkpoint to resume from: `checkpoint/`, or `checkpoint.old/` if a crash came
/// between the two renames of [`save_checkpoint`].
fn checkpoint_to_resume(dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR, "checkpoint.old"]
        .iter()
        .map(|d| dir.join(d))
        .find(|p| p.is_dir())
}

/// Rows of `metrics.csv` up to and including `step` (a resumed run rewrites the rest).
fn metrics_upto(path: &Path, step: usize) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .is_some_and(|s| s <= step)
        })
        .map(str::to_string)
        .collect()
}

fn metrics_text(names: &[&str], rows: &[String]) -> String {
    let mut text = format!("step,{}\n", names.join(","));
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    text
}

fn write_metrics(dir: &Path, names: &[&str], rows: &[String]) -> Result<(), HarnessError> {
    write_atomic(
        &dir.join(METRICS_FILE),
        metrics_text(names, rows).as_bytes(),
    )
}

/// Draw `loss.png` from the metrics rows.
fn write_curve(dir: &Path, names: &[&str], rows: &[String]) -> Result<(), HarnessError> {
    let mut series: Vec<Series> = names
        .iter()
        .map(|n| Series {
            name: n.to_string(),
            points: Vec::new(),
        })
        .collect();
    for row in rows {
        let mut cols = row.split(',');
        let Some(step) = cols.next().and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        for (s, v) in series.iter_mut().zip(cols) {
            if let Ok(v) = v.parse::<f64>() {
                s.points.push((step, v));
            }
        }
    }
    let img = line_chart(&series, 640, 360);
    let path = dir.join(CURVE_FILE);
    crate::data::dataset::write_rgb8(&path, &img).map_err(|e| HarnessError::Write {
        path,
        reason: e.to_string(),
    })
}

/// How a run reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Bar,
    Quiet,
}

/// Result of a run: where it is and the per-step losses of this invocation.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub step: usize,
    /// `[step, total, terms…]` of each step done by this call.
    pub rows: Vec<Vec<f32>>,
}

/// Write `config` as the run's `run.json`, atomically.
fn write_run_config(dir: &Path, config: &RunConfig) -> Result<(), HarnessError> {
    let json = serde_json::to_vec_pretty(config).map_err(|e| HarnessError::Write {
        path: dir.join(RUN_FILE),
        reason: e.to_string(),
    })?;
    write_atomic(&dir.join(RUN_FILE), &json)
}

/// Start a new run (`resume == false`; the folder must not hold one) or continue the run
/// in `dir` up to its `steps`. `source` supplies the samples, `backend` the device.
/// `stop_at` ends this session early, with a checkpoint, at that step: the schedule
/// still aims at `steps`, so a later `--resume` continues exactly as if nothing had
/// stopped (long runs trained in slices, or a recipe cut where a shipped model was taken).
pub fn run(
    config: &RunConfig,
    dir: &Path,
    source: SampleSource,
    backend: BackendKind,
    resume: bool,
    stop_at: Option<usize>,
    progress: Progress,
) -> Result<RunOutcome, HarnessError> {
    let config = if resume {
        let saved = match load_run_config(dir) {
            Err(HarnessError::NoRun(d)) => return Err(HarnessError::NothingToResume(d)),
            other => other?,
        };
        if saved.network != config.network {
            return Err(HarnessError::ResumeMismatch(format!(
                "{} holds a {:?} run, not {:?}",
                dir.display(),
                saved.network,
                config.network
            )));
        }
        // The saved configuration wins, except for the target step count, which
        // `run.json` then records (a run extended to more steps says so).
        let resumed = retarget(&saved, config.steps);
        if resumed.steps != saved.steps {
            write_run_config(dir, &resumed)?;
        }
        resumed
    } else {
        if dir.join(RUN_FILE).exists() {
            return Err(HarnessError::Exists(dir.into()));
        }
        if let Some(src) = &config.init_from {
            check_init_source(src, config)?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        write_run_config(dir, config)?;
        config.clone()
    };
    let device = backend.device()?.autodiff();
    // Stage 2 always: the frozen G1 may read Telea-filled images even where G2 does not.
    let telea = match config.network {
        Network::Stage2 => true,
        Network::Stage1 => config.stage1.hole == HoleInput::Telea,
        Network::Silhouette | Network::Extractor | Network::Occlusion => false,
    };
    let loader = Loader::new(source, config.occlusion, config.train.seed)?.with_telea(telea);
    let resume_from = if resume {
        let ckpt =
            checkpoint_to_resume(dir).ok_or_else(|| HarnessError::NoCheckpoint(dir.into()))?;
        verify_checkpoint(&ckpt)?;
        Some(ckpt)
    } else {
        None
    };
    // A fine-tune starts from another run's trained weights; its own checkpoint, once it
    // has one, wins.
    let fine_tune_from = config
        .init_from
        .as_deref()
        .filter(|_| resume_from.is_none());
    let seed = config.train.seed;
    let train = config.train.clone();
    match config.network {
        // S and the occlusion detector: one architecture, a mask per pixel, BCE.
        Network::Silhouette | Network::Occlusion => {
            let (net, task) = if config.network == Network::Silhouette {
                (&config.silhouette, Task::Silhouette)
            } else {
                (&config.detector, Task::Occlusion)
            };
            let template = seeded_init(net.init(&device), seed);
            let template = fine_tune_start(template, fine_tune_from)?;
            let hard = config.hard_negatives.filter(|w| *w > 0.0);
            let learner = Single {
                trainer: single_trainer(template, train, resume_from.as_deref())?,
                task,
                loss: move |m: &Silhouette, b: Batch| {
                    let logits = m.try_forward(b.input)?;
                    let mut loss = bce_with_logits(logits.clone(), b.target.clone());
                    if let Some(w) = hard {
                        let [_, c, h, wd] = logits.dims();
                        let k = (HARD_NEGATIVE_SHARE * (c * h * wd) as f64).ceil() as usize;
                        loss = loss.add(hard_negative_bce(logits, b.target, k).mul_scalar(w));
                    }
                    Ok(vec![loss])
                },
                shards: config.shards,
            };
            drive(&config, dir, &loader, learner, stop_at, progress)
        }
        Network::Extractor | Network::Stage1 => {
            let template = seeded_init(config.stage1.init(&device), seed);
            let template = fine_tune_start(template, fine_tune_from)?;
            let loss = config.loss.clone();
            let learner = Single {
                trainer: single_trainer(template, train, resume_from.as_deref())?,
                task: if config.network == Network::Stage1 {
                    Task::Stage1(config.stage1.hole)
                } else {
                    Task::Extractor
                },
                loss: move |m: &Stage1Net, b: Batch| {
                    let l = loss.forward(&m.try_forward(b.input)?, b.target)?;
                    Ok(vec![l.total, l.part, l.uv, l.albedo])
                },
                shards: config.shards,
            };
            drive(&config, dir, &loader, learner, stop_at, progress)
        }
        Network::Stage2 => {
            let (g1, s) = frozen_networks(&config, &device)?;
            let g = seeded_init(config.stage2.init(&device), seed);
            // A hole-aware G2 starts as its pre-fill (zeroed heads; see `residual_start`).
            let g = if config.stage2.hole == HoleInput::Absent {
                g
            } else {
                g.residual_start()
            };
            let d = seeded_init(config.discriminator.init(&device), rng::derive(seed, 2));
            let g = fine_tune_start(g, fine_tune_from)?;
            // A stage-2 fine-tune takes D too, from the source's checkpoint (the only
            // place it is kept).
            let d = match fine_tune_from {
                Some(src) => {
                    let ckpt = checkpoint_to_resume(src)
                        .ok_or_else(|| HarnessError::NoCheckpoint(src.into()))?;
                    load_model(d, &ckpt.join(DISCRIMINATOR_DIR).join(MODEL_FILE))?
                }
                None => d,
            };
            let (losses, condition) = (config.stage2_loss.clone(), config.stage2.condition);
            let learner = match resume_from {
                Some(ckpt) => Stage2Learner::resume(g, d, train, &ckpt, g1, s, losses, condition)?,
                None => Stage2Learner::new(
                    Trainer::new(g, train.clone()),
                    Trainer::new(d, train),
                    g1,
                    s,
                    losses,
                    condition,
                ),
            }
            .with_shards(config.shards);
            drive(&config, dir, &loader, learner, stop_at, progress)
        }
    }
}

/// `template` with the trained weights of the run `from` names, when a fine-tune starts.
fn fine_tune_start<M: Module>(template: M, from: Option<&Path>) -> Result<M, HarnessError> {
    match from {
        Some(src) => Ok(load_model(template, &src.join(MODEL_FILE))?),
        None => Ok(template),
    }
}

/// The trained G1 and S a stage-2 run freezes, from the run folders its configuration
/// names, on `device`.
fn frozen_networks(
    config: &RunConfig,
    device: &Device,
) -> Result<(Stage1Net, Silhouette), HarnessError> {
    let need = |run: &Option<PathBuf>, what: &str| {
        run.clone().ok_or_else(|| {
            HarnessError::Missing(format!("a stage-2 run needs a trained {what} run folder"))
        })
    };
    let g1_dir = need(&config.stage1_run, "stage1")?;
    let s_dir = need(&config.silhouette_run, "silhouette")?;
    let load = |dir: &Path, what: &str| match load_run_config(dir) {
        Err(HarnessError::NoRun(_)) => Err(HarnessError::Missing(format!(
            "{}: no trained {what} run here (train it first: unveil train {what})",
            dir.display()
        ))),
        other => other,
    };
    let g1_config = load(&g1_dir, "stage1")?;
    let s_config = load(&s_dir, "silhouette")?;
    for (dir, cfg, want) in [
        (&g1_dir, &g1_config, Network::Stage1),
        (&s_dir, &s_config, Network::Silhouette),
    ] {
        if cfg.network != want {
            return Err(HarnessError::Missing(format!(
                "{} holds a {} run, not {}",
                dir.display(),
                cfg.network.name(),
                want.name()
            )));
        }
    }
    let g1 = load_model(g1_config.stage1.init(device), &g1_dir.join(MODEL_FILE))?;
    let s = load_model(s_config.silhouette.init(device), &s_dir.join(MODEL_FILE))?;
    Ok((g1, s))
}

/// A run that `init_from` may start from must train the same network (checked before
/// the new run folder is made, so a wrong source leaves nothing behind).
fn check_init_source(src: &Path, config: &RunConfig) -> Result<(), HarnessError> {
    let saved = load_run_config(src)?;
    if saved.network != config.network {
        return Err(HarnessError::Missing(format!(
            "--init-from {}: holds a {} run, not {}",
            src.display(),
            saved.network.name(),
            config.network.name()
        )));
    }
    // The weights must fit: the same layers (widths, depth, input planes).
    let (mine, theirs) = match config.network {
        Network::Stage2 => (
            serde_json::to_value((&config.stage2, &config.discriminator)),
            serde_json::to_value((&saved.stage2, &saved.discriminator)),
        ),
        Network::Occlusion => (
            serde_json::to_value(&config.detector),
            serde_json::to_value(&saved.detector),
        ),
        Network::Silhouette => (
            serde_json::to_value(&config.silhouette),
            serde_json::to_value(&saved.silhouette),
        ),
        // The downscale is no layer: a G1 may start from one trained at another resolution.
        Network::Extractor | Network::Stage1 => (
            serde_json::to_value(&config.stage1),
            serde_json::to_value(saved.stage1.clone().with_downscale(config.stage1.downscale)),
        ),
    };
    if mine.ok() != theirs.ok() {
        return Err(HarnessError::Missing(format!(
            "--init-from {}: its {} has other layers than this run's (width, depth or inputs differ)",
            src.display(),
            config.network.name()
        )));
    }
    Ok(())
}

fn single_trainer<M: Module>(
    template: M,
    config: TrainConfig,
    checkpoint: Option<&Path>,
) -> Result<Trainer<M>, CheckpointError> {
    match checkpoint {
        Some(dir) => Trainer::resume(template, config, dir),
        None => Ok(Trainer::new(template, config)),
    }
}

/// What [`drive`] trains: one step on a batch, and its state on disk.
pub trait Stepper {
    /// Updates done so far.
    fn steps_done(&self) -> usize;
    /// The (autodiff) device batches must live on.
    fn device(&self) -> Device;
    /// One update; returns the loss terms named by [`Network::loss_names`].
    fn learn(&mut self, batch: SampleBatch) -> Result<Vec<f32>, TrainError>;
    /// The whole resumable state into `dir`.
    fn save_state(&self, dir: &Path) -> Result<(), CheckpointError>;
    /// The inference weights alone (`model.bpk`).
    fn save_weights(&self, path: &Path) -> Result<(), CheckpointError>;
}

/// One network trained on one [`Task`] with one loss closure.
struct Single<M: Module, F> {
    trainer: Trainer<M>,
    task: Task,
    loss: F,
    shards: usize,
}

impl<M, F> Stepper for Single<M, F>
where
    M: Module,
    F: Fn(&M, Batch) -> Result<Vec<Tensor<1>>, TrainError> + Sync,
{
    fn steps_done(&self) -> usize {
        self.trainer.step
    }
    fn device(&self) -> Device {
        self.trainer.device()
    }
    fn learn(&mut self, batch: SampleBatch) -> Result<Vec<f32>, TrainError> {
        let batch = self
            .task
            .pick(batch)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        self.trainer.step_sharded(batch, self.shards, &self.loss)
    }
    fn save_state(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.trainer.save(dir)
    }
    fn save_weights(&self, path: &Path) -> Result<(), CheckpointError> {
        save_model(&self.trainer.model, path)
    }
}

impl Stepper for Stage2Learner {
    fn steps_done(&self) -> usize {
        self.g.step
    }
    fn device(&self) -> Device {
        self.g.device()
    }
    fn learn(&mut self, batch: SampleBatch) -> Result<Vec<f32>, TrainError> {
        Stage2Learner::learn(self, batch)
    }
    fn save_state(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.save(dir)
    }
    fn save_weights(&self, path: &Path) -> Result<(), CheckpointError> {
        save_model(&self.g.model, path)
    }
}

fn drive(
    config: &RunConfig,
    dir: &Path,
    loader: &Loader,
    mut learner: impl Stepper,
    stop_at: Option<usize>,
    progress: Progress,
) -> Result<RunOutcome, HarnessError> {
    let names = config.network.loss_names();
    let end = stop_at.map_or(config.steps, |s| s.min(config.steps));
    // The checkpoint's own copy holds every row up to its step, even when a kill came
    // before the run folder's copy was rewritten.
    let saved = checkpoint_to_resume(dir)
        .map(|c| c.join(CHECKPOINT_METRICS))
        .filter(|p| p.is_file() && learner.steps_done() > 0)
        .unwrap_or_else(|| dir.join(METRICS_FILE));
    let mut rows = metrics_upto(&saved, learner.steps_done());
    let bar = match progress {
        Progress::Bar => ProgressBar::new(config.steps as u64),
        Progress::Quiet => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} {bar:30.cyan/blue} {pos}/{len} [{elapsed_precise} < {eta}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(config.network.name());
    bar.set_position(learner.steps_done() as u64);
    let device = learner.device();
    let mut outcome_rows = Vec::new();
    let every = config.checkpoint_every.max(1);
    let batch_size = config.train.batch_size;
    // Batch k of the stream is a pure function of (seed, k): resuming at step k continues
    // exactly where an uninterrupted run would be. Batch k + 1 is rendered on another
    // thread while step k trains, so data costs no step time where a core is free.
    std::thread::scope(|scope| -> Result<(), HarnessError> {
        let prefetch = |k: usize| scope.spawn(move || loader.prepare(k, batch_size));
        let mut next = (learner.steps_done() < end).then(|| prefetch(learner.steps_done()));
        while let Some(pending) = next.take() {
            let batch = pending
                .join()
                .map_err(|_| HarnessError::DataThread)??
                .to_device(&device);
            if learner.steps_done() + 1 < end {
                next = Some(prefetch(learner.steps_done() + 1));
            }
            let values = learner.learn(batch)?;
            let step = learner.steps_done();
            rows.push(format!(
                "{step},{}",
                values
                    .iter()
                    .map(|v| format!("{v:.6}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            let mut row = vec![step as f32];
            row.extend(&values);
            outcome_rows.push(row);
            bar.set_position(step as u64);
            bar.set_message(
                names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| format!("{n} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join("  "),
            );
            if step.is_multiple_of(every) || step == end {
                let metrics = metrics_text(names, &rows);
                save_checkpoint(&learner, dir, metrics.as_bytes())?;
                write_atomic(&dir.join(METRICS_FILE), metrics.as_bytes())?;
                write_curve(dir, names, &rows)?;
            }
        }
        Ok(())
    })?;
    bar.finish();
    if outcome_rows.is_empty() {
        // Nothing to do (already at the target): still leave complete outputs behind.
        write_metrics(dir, names, &rows)?;
        write_curve(dir, names, &rows)?;
    }
    let mut out = std::io::stderr();
    let _ = writeln!(out);
    Ok(RunOutcome {
        dir: dir.into(),
        step: learner.steps_done(),
        rows: outcome_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(horizon: usize) -> LrSchedule {
        LrSchedule::Cosine {
            warmup: 10,
            horizon,
            floor: 0.05,
        }
    }

    #[test]
    fn retarget_moves_the_end_of_a_cosine_that_ended_at_the_old_target() {
        let mut saved = RunConfig::new(Network::Stage2, Preset::Tiny, 30_000, "g".into());
        saved.train.schedule = cosine(30_000);
        let cut = retarget(&saved, 8_000);
        assert_eq!((cut.steps, &cut.train.schedule), (8_000, &cosine(8_000)));
        // At the new end the rate is the floor: 5 % of the peak 1e-3 (not ~0.93 of it).
        let end = cut.train.schedule.rate(1e-3, 8_000);
        assert!((end - 5e-5).abs() < 1e-12, "{end}");
        // A schedule whose horizon was set apart from the step count is left alone,
        // and so is a constant one.
        saved.train.schedule = cosine(12_000);
        assert_eq!(retarget(&saved, 8_000).train.schedule, cosine(12_000));
        saved.train.schedule = LrSchedule::Constant;
        assert_eq!(retarget(&saved, 8_000).train.schedule, LrSchedule::Constant);
    }
}
