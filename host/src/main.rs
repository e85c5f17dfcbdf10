//! `unveil`: the workstation command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use unveil_shared::occlusion::{occlude, OcclusionMode, OcclusionSpec};

use unveil_host::dataset::{self, Manifest, Provenance};
use unveil_host::sheet;
use unveil_host::synth::{self, SubjectSource, SynthConfig};

/// Unveil restores the hidden parts of people in camera images. This tool makes the
/// training data, trains and evaluates the networks, and exports them for the device.
#[derive(Parser, Debug)]
#[command(name = "unveil", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render a synthetic data set: subjects with exact texture-map ground truth.
    Synth(SynthArgs),
    /// End-to-end demo on built-in defaults: synthesise a few samples, occlude them and
    /// write a contact sheet (image / occluded / occlusion mask / IUV / albedo / silhouette).
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
struct SourceArgs {
    /// Image size in pixels (square), 16..=4096.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Seed for every random choice; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Folder of background photos (PNG/JPEG) to use instead of procedural backgrounds.
    #[arg(long, value_name = "DIR")]
    backgrounds: Option<PathBuf>,
    /// OBJ mesh with UVs to render instead of the procedural body (groups become parts).
    #[arg(long, value_name = "FILE")]
    mesh: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    count: u64,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Output folder for the data and the contact sheet.
    #[arg(long, value_name = "DIR", default_value = "demo")]
    out: PathBuf,
    /// Number of samples (rows of the contact sheet).
    #[arg(long, default_value_t = 6)]
    count: u64,
    /// Occlusion mode; default cycles through all modes, one per row.
    #[arg(long)]
    occlusion: Option<OcclusionMode>,
    #[command(flatten)]
    source: SourceArgs,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line names the problem; `--help` has the rest.
            let text = e.render().to_string();
            eprintln!(
                "{} (see --help)",
                text.lines().next().unwrap_or("invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Synth(args) => cmd_synth(&args).map(|_| ()),
        Command::Demo(args) => cmd_demo(&args),
    }
}

/// Build the synthesis settings from the command line, loading user assets once.
fn synth_config(src: &SourceArgs) -> Result<SynthConfig> {
    let mut cfg = SynthConfig::new(src.size)?;
    if let Some(dir) = &src.backgrounds {
        cfg.background = synth::load_backgrounds(dir)?;
    }
    if let Some(path) = &src.mesh {
        cfg.subject = SubjectSource::Mesh(Arc::new(synth::load_obj(path)?));
    }
    Ok(cfg)
}

fn thread_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        anyhow::ensure!(j > 0, "--jobs must be at least 1");
        builder = builder.num_threads(j);
    }
    builder.build().context("cannot start worker threads")
}

fn prepare_out(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    // Fail now, not after rendering, if the folder exists but is not writable.
    let probe = dir.join(".unveil-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("cannot write into {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:40.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{per_sec}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Render `count` samples into `out` in parallel; returns the manifest written.
fn cmd_synth(args: &SynthArgs) -> Result<Manifest> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let src = &args.source;
    let cfg = synth_config(src)?;
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

fn cmd_demo(args: &DemoArgs) -> Result<()> {
    let data_dir = args.out.join("data");
    let synth_args = SynthArgs {
        out: data_dir.clone(),
        count: args.count,
        source: SourceArgs {
            size: args.source.size,
            seed: args.source.seed,
            backgrounds: args.source.backgrounds.clone(),
            mesh: args.source.mesh.clone(),
            jobs: args.source.jobs,
        },
    };
    cmd_synth(&synth_args)?;
    let data = dataset::Dataset::open(&data_dir)?;
    // One mode per row so the sheet shows every kind of occluder.
    let modes: Vec<OcclusionMode> = [
        "subject-noise",
        "subject-zero",
        "strokes-medium",
        "text",
        "objects",
        "rect",
    ]
    .iter()
    .map(|name| name.parse())
    .collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(data.len());
    for i in 0..data.len() {
        let sample = data.get(i)?;
        let mode = args.occlusion.unwrap_or(modes[i % modes.len()]);
        let seed = unveil_shared::rng::derive(args.source.seed, 0x0CC1_0000 + i as u64);
        let occluded = occlude(
            &sample.image,
            Some(&sample.mask),
            &OcclusionSpec::new(mode),
            seed,
        )?;
        rows.push(vec![
            sample.image,
            occluded.image,
            sheet::mask_rgb(&occluded.mask),
            sheet::iuv_rgb(&sample.iuv),
            sample.albedo,
            sheet::mask_rgb(&sample.mask),
        ]);
    }
    let sheet_path = args.out.join("contact_sheet.png");
    let titles = ["image", "occluded", "hidden", "IUV", "albedo", "silhouette"];
    let picture = sheet::stack(&[sheet::header(&titles, data.size()), sheet::compose(&rows)]);
    dataset::write_rgb8(&sheet_path, &picture)?;
    println!(
        "contact sheet: {} (columns: image, occluded, occlusion mask, IUV, albedo, silhouette)",
        sheet_path.display()
    );
    Ok(())
}
