//! The subcommands of `unveil`, one file each, and the argument parsers they share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use unveil_host::data::synth::{load_backgrounds, load_obj, SubjectSource, SynthConfig};

pub(crate) mod demo;
#[cfg(test)]
mod doc_commands;
pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod label;
pub(crate) mod synth;
pub(crate) mod train;

#[derive(Args, Debug)]
pub(crate) struct SourceArgs {
    /// Image size in pixels (square), 16..=4096.
    #[arg(long, default_value_t = 128)]
    pub(crate) size: usize,
    /// Seed for every random choice; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Folder of background photos (PNG/JPEG) to use instead of procedural backgrounds.
    #[arg(long, value_name = "DIR")]
    pub(crate) backgrounds: Option<PathBuf>,
    /// OBJ mesh with UVs to render instead of the procedural body (groups become parts).
    #[arg(long, value_name = "FILE")]
    pub(crate) mesh: Option<PathBuf>,
    /// Worker threads (default: all cores; at most 256).
    #[arg(long, value_parser = count_in(1, 256))]
    pub(crate) jobs: Option<usize>,
}

/// Largest `--batch`: beyond it a step's activations outgrow any machine this runs on.
pub(crate) const MAX_BATCH: usize = 1024;

/// A clap parser of a whole number in `lo..=hi`.
pub(crate) fn count_in(lo: usize, hi: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s| {
        let n: usize = s
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number"))?;
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is not in {lo}..={hi}"))
        }
    }
}

pub(crate) fn finite(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a finite number")),
    }
}

/// Adam's step size: positive, and at most 1 (larger ones only diverge).
pub(crate) fn learning_rate(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 1]"))
    }
}

pub(crate) fn fraction(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not in [0, 1]"))
    }
}

pub(crate) fn positive_f32(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v > 0.0 {
        Ok(v as f32)
    } else {
        Err(format!("{v} is not positive"))
    }
}

/// Build the synthesis settings from the command line, loading user assets once.
pub(crate) fn synth_config(src: &SourceArgs) -> Result<SynthConfig> {
    let mut cfg = SynthConfig::new(src.size)?;
    if let Some(dir) = &src.backgrounds {
        cfg.background = load_backgrounds(dir)?;
    }
    if let Some(path) = &src.mesh {
        cfg.subject = SubjectSource::Mesh(Arc::new(load_obj(path)?));
    }
    Ok(cfg)
}

pub(crate) fn thread_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        anyhow::ensure!(j > 0, "--jobs must be at least 1");
        builder = builder.num_threads(j);
    }
    builder.build().context("cannot start worker threads")
}

pub(crate) fn prepare_out(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    // Fail now, not after rendering, if the folder exists but is not writable.
    let probe = dir.join(".unveil-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("cannot write into {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:40.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{per_sec}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}
