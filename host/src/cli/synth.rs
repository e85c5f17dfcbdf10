//! `unveil synth`: render a synthetic data set.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use unveil_host::data::dataset::{self, DatasetManifest, Provenance};

use super::{prepare_out, progress, synth_config, thread_pool, SourceArgs};

#[derive(Args, Debug)]
pub(crate) struct SynthArgs {
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) count: u64,
    /// Write into a folder that already holds a data set (its manifest and samples are
    /// rewritten); without it such a folder is refused.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// Render `count` samples into `out` in parallel; returns the manifest written.
pub(crate) fn cmd_synth(args: &SynthArgs) -> Result<DatasetManifest> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let src = &args.source;
    let cfg = synth_config(src)?;
    if !args.force && args.out.join(dataset::MANIFEST_FILE).exists() {
        anyhow::bail!(
            "{} already holds a data set; choose another --out, or pass --force to replace it",
            args.out.display()
        );
    }
    prepare_out(&args.out)?;
    let pool = thread_pool(src.jobs)?;
    let pb = progress(args.count, "synth");
    let start = Instant::now();
    let provenance = Provenance {
        subject: src
            .mesh
            .as_ref()
            .map_or("procedural".into(), |p| p.display().to_string()),
        backgrounds: src
            .backgrounds
            .as_ref()
            .map_or("procedural".into(), |p| p.display().to_string()),
    };
    let manifest = pool.install(|| {
        dataset::synthesize(&args.out, &cfg, src.seed, args.count, &provenance, || {
            pb.inc(1)
        })
    })?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} samples ({}x{}) to {} in {:.2} s: {:.0} samples/s",
        args.count,
        src.size,
        src.size,
        args.out.display(),
        secs,
        args.count as f64 / secs.max(1e-9)
    );
    Ok(manifest)
}
