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
use unveil_shared::occlusion::OcclusionSpec;

use crate::blocks::seeded_init;
use crate::data::{DataError, Loader, SampleSource, Task, TaskStream};
use crate::losses::{bce_with_logits, Stage1LossConfig};
use crate::plot::{line_chart, Series};
use crate::silhouette::{Silhouette, SilhouetteConfig};
use crate::stage1::{Stage1Config, Stage1Net};
use crate::train::{
    save_model, BackendKind, Batch, BatchSource, CheckpointError, TrainConfig, TrainError, Trainer,
};

/// File names inside a run folder.
pub const RUN_FILE: &str = "run.json";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const MODEL_FILE: &str = "model.bpk";
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
}

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
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "extractor" => Ok(Self::Extractor),
            "silhouette" => Ok(Self::Silhouette),
            "stage1" => Ok(Self::Stage1),
            other => Err(format!(
                "unknown network {other:?} (expected extractor, silhouette or stage1)"
            )),
        }
    }
}

impl Network {
    pub fn task(self) -> Task {
        match self {
            Self::Extractor => Task::Extractor,
            Self::Silhouette => Task::Silhouette,
            Self::Stage1 => Task::Stage1,
        }
    }

    /// Names of the loss terms, total first (the `metrics.csv` columns after `step`).
    pub fn loss_names(self) -> &'static [&'static str] {
        match self {
            Self::Silhouette => &["bce"],
            Self::Extractor | Self::Stage1 => &["total", "part_ce", "uv_mse", "albedo_mse"],
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
}

/// Read `run.json` from `dir`.
pub fn load_run_config(dir: &Path) -> Result<RunConfig, HarnessError> {
    let path = dir.join(RUN_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HarnessError::NothingToResume(dir.into()))
        }
        Err(source) => return Err(HarnessError::Io { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| HarnessError::RunConfig { path, source })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Replace `dir/checkpoint` by the trainer's state without ever leaving no checkpoint:
/// write `checkpoint.new`, move the old one aside, move the new one in, drop the old one.
fn save_checkpoint<M: Module>(trainer: &Trainer<M>, dir: &Path) -> Result<(), HarnessError> {
    let live = dir.join(CHECKPOINT_DIR);
    let new = dir.join("checkpoint.new");
    let old = dir.join("checkpoint.old");
    if new.exists() {
        fs::remove_dir_all(&new).map_err(io(&new))?;
    }
    trainer.save(&new)?;
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
    save_model(&trainer.model, &model_tmp)?;
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

fn write_metrics(dir: &Path, names: &[&str], rows: &[String]) -> Result<(), HarnessError> {
    let mut text = format!("step,{}\n", names.join(","));
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    write_atomic(&dir.join(METRICS_FILE), text.as_bytes())
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
    crate::dataset::write_rgb8(&path, &img).map_err(|e| HarnessError::Write {
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

/// Start a new run (`resume == false`; the folder must not hold one) or continue the run
/// in `dir` up to its `steps`. `source` supplies the samples, `backend` the device.
pub fn run(
    config: &RunConfig,
    dir: &Path,
    source: SampleSource,
    backend: BackendKind,
    resume: bool,
    progress: Progress,
) -> Result<RunOutcome, HarnessError> {
    let config = if resume {
        let saved = load_run_config(dir)?;
        if saved.network != config.network {
            return Err(HarnessError::ResumeMismatch(format!(
                "{} holds a {:?} run, not {:?}",
                dir.display(),
                saved.network,
                config.network
            )));
        }
        // The saved configuration wins, except for the target step count.
        RunConfig {
            steps: config.steps,
            ..saved
        }
    } else {
        if dir.join(RUN_FILE).exists() {
            return Err(HarnessError::Exists(dir.into()));
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let json = serde_json::to_vec_pretty(config).map_err(|e| HarnessError::Write {
            path: dir.join(RUN_FILE),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join(RUN_FILE), &json)?;
        config.clone()
    };
    let device = backend.device()?.autodiff();
    let loader = Loader::new(source, config.occlusion, config.train.seed)?;
    match config.network {
        Network::Silhouette => {
            let template = seeded_init(config.silhouette.init(&device), config.train.seed);
            drive(
                &config,
                dir,
                &loader,
                template,
                resume,
                progress,
                |m: &Silhouette, b: Batch| {
                    Ok(vec![bce_with_logits(m.try_forward(b.input)?, b.target)])
                },
            )
        }
        Network::Extractor | Network::Stage1 => {
            let template = seeded_init(config.stage1.init(&device), config.train.seed);
            let loss = config.loss.clone();
            drive(
                &config,
                dir,
                &loader,
                template,
                resume,
                progress,
                move |m: &Stage1Net, b: Batch| {
                    let l = loss.forward(&m.try_forward(b.input)?, b.target)?;
                    Ok(vec![l.total, l.part, l.uv, l.albedo])
                },
            )
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn drive<M: Module>(
    config: &RunConfig,
    dir: &Path,
    loader: &Loader,
    template: M,
    resume: bool,
    progress: Progress,
    mut loss_fn: impl FnMut(&M, Batch) -> Result<Vec<Tensor<1>>, TrainError>,
) -> Result<RunOutcome, HarnessError> {
    let names = config.network.loss_names();
    let mut trainer = match (resume, checkpoint_to_resume(dir)) {
        (true, Some(ckpt)) => Trainer::resume(template, config.train.clone(), &ckpt)?,
        _ => Trainer::new(template, config.train.clone()),
    };
    let mut rows = metrics_upto(&dir.join(METRICS_FILE), trainer.step);
    let mut stream = TaskStream {
        loader,
        task: config.network.task(),
        step: trainer.step,
    };
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
    bar.set_prefix(format!("{:?}", config.network).to_lowercase());
    bar.set_position(trainer.step as u64);
    let device = trainer.device();
    let mut outcome_rows = Vec::new();
    let every = config.checkpoint_every.max(1);
    while trainer.step < config.steps {
        let batch = stream.next_batch(config.train.batch_size, &device)?;
        let values = trainer.step(batch, &mut loss_fn)?;
        let step = trainer.step;
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
        if step % every == 0 || step == config.steps {
            save_checkpoint(&trainer, dir)?;
            write_metrics(dir, names, &rows)?;
            write_curve(dir, names, &rows)?;
        }
    }
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
        step: trainer.step,
        rows: outcome_rows,
    })
}
