//! Which of a model's two exports to run: f32 or int8.
//!
//! `models/` ships each model twice, `<dir>` (int8) and `<dir>-f32`, from the same
//! weights. Which one is faster depends on the board, not on the model: tract's int8
//! kernels won on one x86-64 host (AVX-512) and lost 18× on another (AVX2 only, measured
//! with `unveil-device bench`), while on ARM it depends on the core's dot-product
//! instructions. So [`Precision::Auto`] times both on this machine at start-up, a few
//! frames each, and keeps the faster; `F32` and `Int8` pin the choice, for reproducible
//! output or when start-up time matters.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use unveil_shared::manifest::MANIFEST_BIN;

use crate::bench::{test_frame, test_mask};
use crate::model::{read_manifest, Model, ModelError};
use crate::pipeline::{Pipeline, PipelineError};

/// Frames each candidate runs before timing starts (tract's first run plans memory).
pub const PROBE_WARMUP: usize = 1;
/// Timed frames per candidate; the fastest one counts (the least disturbed by the rest of
/// the machine).
pub const PROBE_FRAMES: usize = 2;

/// The precision a user asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Time the folder and its twin on this machine and run the faster.
    #[default]
    Auto,
    F32,
    Int8,
}

/// Unknown `--precision` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?} (expected auto, f32 or int8)")]
pub struct UnknownPrecision(pub String);

impl std::str::FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Precision::Auto),
            "f32" => Ok(Precision::F32),
            "int8" => Ok(Precision::Int8),
            other => Err(UnknownPrecision(other.into())),
        }
    }
}

/// Why no model could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum PrecisionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("probing {dir}: {source}")]
    Probe { dir: PathBuf, source: PipelineError },
    #[error("no {wanted} export of {dir} (neither it nor {twin} is one)")]
    Missing {
        wanted: &'static str,
        dir: PathBuf,
        twin: PathBuf,
    },
    #[error(
        "{dir} and {twin} were exported from different training runs; pass --precision to pick one"
    )]
    NotTwins { dir: PathBuf, twin: PathBuf },
}

/// The model to run, and how it was chosen.
#[derive(Debug)]
pub struct Choice {
    pub model: Arc<Model>,
    /// Each candidate's best probe frame, in the order probed (empty when nothing was
    /// timed: a pinned precision, or a folder without a twin).
    pub probe: Vec<(PathBuf, Duration)>,
}

impl Choice {
    /// One line for the log: which folder, and why.
    pub fn summary(&self) -> String {
        let dir = self.model.dir.display();
        let kind = self.model.manifest.quantisation.name();
        if self.probe.is_empty() {
            return format!("running {dir} ({kind})");
        }
        let times: Vec<String> = self
            .probe
            .iter()
            .map(|(d, t)| format!("{} {:.1} ms", d.display(), t.as_secs_f64() * 1e3))
            .collect();
        format!(
            "running {dir} ({kind}), the faster here: {}",
            times.join(", ")
        )
    }
}

/// The other export of `dir`: `<dir>-f32` for `<dir>`, and `<dir>` for `<dir>-f32`.
pub fn twin_of(dir: &Path) -> PathBuf {
    let s = dir.as_os_str().to_string_lossy();
    match s.strip_suffix("-f32") {
        Some(base) => PathBuf::from(base),
        None => PathBuf::from(format!("{s}-f32")),
    }
}

/// Load the model `precision` asks for, from `dir` or its [`twin_of`]. Only the folder
/// that will run is compiled, except under [`Precision::Auto`], which times both.
pub fn choose(dir: &Path, precision: Precision) -> Result<Choice, PrecisionError> {
    let twin_dir = twin_of(dir);
    let twin = twin_dir
        .join(MANIFEST_BIN)
        .is_file()
        .then(|| read_manifest(&twin_dir))
        .transpose()?;
    let load = |d: &Path| -> Result<Arc<Model>, PrecisionError> { Ok(Arc::new(Model::load(d)?)) };
    let untimed = |model| Choice {
        model,
        probe: Vec::new(),
    };
    let wanted = match precision {
        Precision::F32 => "f32",
        Precision::Int8 => "int8",
        Precision::Auto => {
            let model = load(dir)?;
            let Some(twin) = twin else {
                return Ok(untimed(model));
            };
            if twin.training_config_sha256 != model.manifest.training_config_sha256 {
                return Err(PrecisionError::NotTwins {
                    dir: dir.to_path_buf(),
                    twin: twin_dir,
                });
            }
            let other = load(&twin_dir)?;
            let probe = vec![
                (model.dir.clone(), time_frame(&model)?),
                (other.dir.clone(), time_frame(&other)?),
            ];
            let model = if fastest(&probe) == 0 { model } else { other };
            return Ok(Choice { model, probe });
        }
    };
    if read_manifest(dir)?.quantisation.name() == wanted {
        return Ok(untimed(load(dir)?));
    }
    match twin {
        Some(t) if t.quantisation.name() == wanted => Ok(untimed(load(&twin_dir)?)),
        _ => Err(PrecisionError::Missing {
            wanted,
            dir: dir.to_path_buf(),
            twin: twin_dir,
        }),
    }
}

/// Index of the smallest time (the first on a tie, so the named folder wins).
pub fn fastest(times: &[(PathBuf, Duration)]) -> usize {
    let mut best = 0;
    for (i, (_, t)) in times.iter().enumerate() {
        if *t < times[best].1 {
            best = i;
        }
    }
    best
}

/// The best of [`PROBE_FRAMES`] frames, after [`PROBE_WARMUP`], of the bench's frame and
/// hole at the model's size.
fn time_frame(model: &Arc<Model>) -> Result<Duration, PrecisionError> {
    let probe = |source| PrecisionError::Probe {
        dir: model.dir.clone(),
        source,
    };
    let mut pipeline = Pipeline::new(model.clone()).map_err(probe)?;
    let (w, h) = model.size();
    let frame = test_frame(w, h, 7);
    let mask = test_mask(w, h);
    let mut best = Duration::MAX;
    for i in 0..PROBE_WARMUP + PROBE_FRAMES {
        let at = Instant::now();
        pipeline.restore(&frame, Some(&mask)).map_err(probe)?;
        if i >= PROBE_WARMUP {
            best = best.min(at.elapsed());
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::Fixture;

    #[test]
    fn names_parse() {
        assert_eq!("auto".parse(), Ok(Precision::Auto));
        assert_eq!("f32".parse(), Ok(Precision::F32));
        assert_eq!("int8".parse(), Ok(Precision::Int8));
        assert_eq!(
            "fp16".parse::<Precision>().unwrap_err().to_string(),
            "unknown precision \"fp16\" (expected auto, f32 or int8)"
        );
    }

    #[test]
    fn twins_pair_both_ways() {
        assert_eq!(
            twin_of(Path::new("models/default")),
            Path::new("models/default-f32")
        );
        assert_eq!(
            twin_of(Path::new("models/default-f32")),
            Path::new("models/default")
        );
    }

    #[test]
    fn fastest_takes_the_smallest_and_the_first_on_a_tie() {
        let ms = |m| Duration::from_millis(m);
        let t = |v: &[u64]| -> Vec<(PathBuf, Duration)> {
            v.iter().map(|&m| (PathBuf::from("x"), ms(m))).collect()
        };
        assert_eq!(fastest(&t(&[900, 48])), 1);
        assert_eq!(fastest(&t(&[30, 48])), 0);
        assert_eq!(fastest(&t(&[48, 48])), 0);
    }

    #[test]
    fn pinned_and_probed_choices() {
        let root = tempfile::tempdir().unwrap();
        let int8 = root.path().join("m");
        let f32 = root.path().join("m-f32");
        let fixture = Fixture::tiny();
        Fixture {
            int8: true,
            ..fixture
        }
        .write(&int8)
        .unwrap();
        fixture.write(&f32).unwrap();

        // Pinned: either folder leads to the asked-for export, nothing is timed.
        for dir in [&int8, &f32] {
            let c = choose(dir, Precision::F32).unwrap();
            assert_eq!((c.model.dir.as_path(), c.probe.len()), (f32.as_path(), 0));
            let c = choose(dir, Precision::Int8).unwrap();
            assert_eq!((c.model.dir.as_path(), c.probe.len()), (int8.as_path(), 0));
        }
        // Auto: both timed, named folder first, and the faster one runs.
        let c = choose(&int8, Precision::Auto).unwrap();
        assert_eq!(c.probe.len(), 2);
        assert_eq!(c.probe[0].0, int8);
        assert_eq!(c.model.dir, c.probe[fastest(&c.probe)].0);
        assert!(c.summary().contains("the faster here"), "{}", c.summary());

        // Without a twin: auto runs the folder untimed; the missing precision is an error.
        let alone = root.path().join("alone");
        fixture.write(&alone).unwrap();
        let c = choose(&alone, Precision::Auto).unwrap();
        assert_eq!((c.model.dir.as_path(), c.probe.len()), (alone.as_path(), 0));
        let e = choose(&alone, Precision::Int8).unwrap_err().to_string();
        assert!(e.starts_with("no int8 export of"), "{e}");
    }

    #[test]
    fn folders_of_different_runs_are_not_twins() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("m");
        Fixture::tiny().write(&a).unwrap();
        let b = root.path().join("m-f32");
        Fixture::tiny().write(&b).unwrap();
        // Same fixture, same (zero) training hash: twins.
        assert_eq!(choose(&a, Precision::Auto).unwrap().probe.len(), 2);
        // Give the twin another training hash.
        let path = b.join(MANIFEST_BIN);
        let mut m =
            unveil_shared::manifest::Manifest::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        m.training_config_sha256 = [1; 32];
        std::fs::write(&path, m.to_bytes().unwrap()).unwrap();
        let e = choose(&a, Precision::Auto).unwrap_err().to_string();
        assert!(e.contains("different training runs"), "{e}");
    }
}
