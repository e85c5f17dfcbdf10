//! `unveil`: the workstation command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use unveil_shared::hole::TELEA_RADIUS;
use unveil_shared::inpaint;
use unveil_shared::occlusion::{occlude, OcclusionMode, OcclusionSpec};

use burn::grad_clipping::GradientClippingConfig;
use unveil_host::data::Loader;
use unveil_host::data::SampleSource;
use unveil_host::dataset::{self, Manifest, Provenance};
use unveil_host::eval;
use unveil_host::harness::{self, Network, Preset, Progress, RunConfig};
use unveil_host::sheet;
use unveil_host::stage2::{Condition, HoleInput};
use unveil_host::synth::{self, SubjectSource, SynthConfig};
use unveil_host::train::{BackendKind, LrSchedule, TrainConfig};
use unveil_shared::manifest::{Calibration, WeightScales};

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
    /// Train a network (extractor, silhouette, stage1, stage2, or all in order) into a run
    /// folder, with checkpoints, metrics.csv and a loss curve; --resume continues bit-exactly.
    Train(TrainArgs),
    /// Evaluate a trained network on held-out samples: stage1 (per-plane errors inside and
    /// outside the occluded region), stage2 (PSNR/SSIM, several runs side by side) or
    /// silhouette (IoU); Markdown + CSV + picture grid.
    Eval(EvalArgs),
    /// Write texture-map ground truth for unlabelled photos with a trained extraction
    /// network; the output is a data-set folder that `train --data` reads.
    Label(LabelArgs),
    /// Export trained G1 and G2 for the device: two ONNX graphs (f32, or int8 with
    /// --int8) and a manifest with their SHA-256, into one model folder.
    Export(ExportArgs),
    /// Show a model folder: manifest, file hashes, and the operators tract runs after
    /// optimising each graph (integer kernels for int8 models).
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
struct LabelArgs {
    /// Run folder of the trained extraction network (`unveil train extractor`).
    #[arg(long, value_name = "DIR", default_value = "runs/extractor")]
    extractor: PathBuf,
    /// Folder of photos (PNG/JPEG); each is centre-cropped to a square and resized.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Output data-set folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Compute backend (see `train --help`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// Which network: stage1 (also takes an extractor run), silhouette, or stage2
    /// (restoration quality: PSNR/SSIM over the image and the occluded pixels).
    network: Network,
    /// Run folder of the trained network (default: runs/<network>). For stage2, repeat it
    /// to compare several side by side (e.g. the condition ablations); an exported model
    /// folder (`models/default`) is scored as the camera runs it, in tract.
    #[arg(long, value_name = "DIR")]
    model: Vec<PathBuf>,
    /// Where to write the report (default: the run folder; runs/eval/<name> for a model
    /// folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Held-out data-set folder; default: render --samples samples from --seed.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Number of held-out samples (rounded down to whole batches).
    #[arg(long, default_value_t = 256)]
    samples: usize,
    /// Seed of the held-out samples and their occlusions (keep it apart from training's).
    #[arg(long, default_value_t = unveil_host::data::HELD_OUT_SEED)]
    seed: u64,
    /// Occlusion of the inputs; default: the method's own (part of the subject, noise).
    #[arg(long, default_value = "subject-noise")]
    occlusion: OcclusionMode,
    /// Stage 2: the occlusion modes to score, each on its own table (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "subject-noise,subject-zero,rect,strokes-thick,text"
    )]
    modes: Vec<OcclusionMode>,
    /// Compute backend (see `train --help`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
}

/// `--schedule`: see [`LrSchedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ScheduleKind {
    Constant,
    Cosine,
}

/// What `unveil train` trains: one network, or all of them in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TrainTarget {
    One(Network),
    All,
}

impl std::str::FromStr for TrainTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            other => other
                .parse()
                .map(Self::One)
                .map_err(|e: String| e.replace("or stage2)", "stage2 or all)")),
        }
    }
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Which network: extractor, silhouette, stage1, stage2, or all (extractor → silhouette
    /// → stage1 → stage2 into runs/<name>, skipping finished runs, resuming unfinished ones).
    network: TrainTarget,
    /// Run folder (default: runs/<network>; with `all`, the parent of the four run folders).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Size preset: tiny (64x64, minutes on a CPU) or default (128x128).
    #[arg(long, default_value = "default")]
    preset: Preset,
    /// Data-set folder from `unveil synth`/`unveil label`; default: render samples on the fly.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Number of distinct samples rendered on the fly when no --data is given.
    #[arg(long, default_value_t = 8192, value_parser = count_in(1, 10_000_000))]
    samples: usize,
    /// Total training steps (default: 300 for tiny, 3000 for default).
    #[arg(long, value_parser = count_in(1, 100_000_000))]
    steps: Option<usize>,
    /// Samples per step.
    #[arg(long, default_value_t = 8, value_parser = count_in(1, MAX_BATCH))]
    batch: usize,
    /// Adam learning rate (default: 2e-3 for silhouette; 5e-4 for extractor and stage1,
    /// which diverge at 2e-3 at the default preset; 1e-3 for stage2).
    #[arg(long, value_parser = learning_rate)]
    lr: Option<f64>,
    /// Learning-rate schedule: cosine (linear warm-up, then a half cosine from --lr down to
    /// --lr-floor·lr at the last step) or constant. A run extended with --resume keeps
    /// the schedule it started with (the rate stays at the floor past its end).
    #[arg(long, default_value = "cosine")]
    schedule: ScheduleKind,
    /// Warm-up steps of the cosine schedule (default: a tenth of the steps, at most 100).
    #[arg(long)]
    warmup: Option<usize>,
    /// Final rate of the cosine schedule, as a fraction of --lr.
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    lr_floor: f64,
    /// Clip each parameter tensor's gradient to this L2 norm before Adam sees it, which
    /// keeps one outlier batch from blowing up the moment estimates (default: off).
    #[arg(long, value_name = "NORM", value_parser = positive_f32)]
    clip_norm: Option<f32>,
    /// Seed of weights, data order and occlusions.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 100, value_parser = count_in(1, 100_000_000))]
    checkpoint_every: usize,
    /// Occlusion mode of the training inputs (see README).
    #[arg(long, default_value = "mixed")]
    occlusion: OcclusionMode,
    /// Stage 2: what G2 is conditioned on: texture (the method), silhouette or none
    /// (ablations).
    #[arg(long, default_value = "texture")]
    condition: Condition,
    /// Stage 1 and 2: how G1 and G2 are told where the hole is: telea (hidden pixels
    /// pre-filled by Telea's inpainting, plus a hole plane), zeroed (hidden pixels 0,
    /// plus a hole plane) or absent (the patent-literal occluded image alone).
    #[arg(long, default_value = "telea")]
    hole: HoleInput,
    /// Stage 2: run folder of the trained G1 (frozen). Default: runs/stage1.
    #[arg(long, value_name = "DIR")]
    stage1: Option<PathBuf>,
    /// Stage 2: run folder of the trained silhouette network S (frozen). Default: runs/silhouette.
    #[arg(long, value_name = "DIR")]
    silhouette: Option<PathBuf>,
    /// Stage 1 and extractor: how many times a subject pixel counts in the part
    /// cross-entropy (background pixels count once). Default 4.
    #[arg(long)]
    subject_weight: Option<f32>,
    /// Channels of the trained network's first level (each level doubles them). Default:
    /// the preset's (default preset: 16 for silhouette, 8 for the others). Wider learns
    /// more per step but costs about width² per frame on the device.
    #[arg(long, value_name = "N")]
    width: Option<usize>,
    /// Stage 2 loss weights (0 switches a term off): L2 reconstruction, L3 adversarial,
    /// L4 silhouette features, L5 background patches.
    #[arg(long)]
    w_rec: Option<f32>,
    #[arg(long)]
    w_adv: Option<f32>,
    #[arg(long)]
    w_sil: Option<f32>,
    #[arg(long)]
    w_patch: Option<f32>,
    /// Stage 2, beyond the method: weight of an extra L2 term over the occluded pixels
    /// alone (default 0, off).
    #[arg(long)]
    w_hidden: Option<f32>,
    /// Stage 2, beyond the method: weight of a term pulling the alpha matte towards the
    /// subject's true mask, so the foreground path carries the subject (default 0, off).
    #[arg(long)]
    w_matte: Option<f32>,
    /// Compute backend: flex (CPU, default), ndarray (CPU), wgpu or cuda (GPU builds).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
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
    /// Worker threads (default: all cores; at most 256).
    #[arg(long, value_parser = count_in(1, 256))]
    jobs: Option<usize>,
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    count: u64,
    /// Write into a folder that already holds a data set (its manifest and samples are
    /// rewritten); without it such a folder is refused.
    #[arg(long)]
    force: bool,
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
    /// Exported model folder that restores each occluded image (run in tract, as on the
    /// camera); skipped with a note when absent or made for another --size.
    #[arg(long, value_name = "DIR", default_value = "models/default")]
    models: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
}

/// Largest `--batch`: beyond it a step's activations outgrow any machine this runs on.
const MAX_BATCH: usize = 1024;

/// A clap parser of a whole number in `lo..=hi`.
fn count_in(lo: usize, hi: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
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

fn finite(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a finite number")),
    }
}

/// Adam's step size: positive, and at most 1 (larger ones only diverge).
fn learning_rate(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 1]"))
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not in [0, 1]"))
    }
}

fn positive_f32(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v > 0.0 {
        Ok(v as f32)
    } else {
        Err(format!("{v} is not positive"))
    }
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
    unveil_shared::report::exit(run(cli))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Synth(args) => cmd_synth(&args).map(|_| ()),
        Command::Demo(args) => cmd_demo(&args),
        Command::Train(args) => cmd_train(&args),
        Command::Eval(args) => cmd_eval(&args),
        Command::Label(args) => cmd_label(&args),
        Command::Export(args) => cmd_export(&args),
        Command::Inspect(args) => cmd_inspect(&args),
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

fn cmd_demo(args: &DemoArgs) -> Result<()> {
    let data_dir = args.out.join("data");
    let synth_args = SynthArgs {
        out: data_dir.clone(),
        count: args.count,
        // The demo's own folder: a second demo replaces the first one's samples.
        force: true,
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
    let mut restorer = demo_models(&args.models, data.size())?;
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
        let telea = inpaint::telea(&occluded.image, &occluded.mask, TELEA_RADIUS)?;
        let mut row = vec![
            sample.image,
            occluded.image.clone(),
            sheet::mask_rgb(&occluded.mask),
            sheet::iuv_rgb(&sample.iuv),
            sample.albedo,
            telea,
        ];
        if let Some(pipeline) = &mut restorer {
            // The device's own pipeline, told where the hole is: only hidden pixels change.
            pipeline.restore(&occluded.image, Some(&occluded.mask))?;
            let texture = match pipeline.texture() {
                Some(t) => sheet::iuv_rgb(&eval::texture_to_planes(t, data.size()).0),
                None => unveil_shared::ImageU8::new(data.size(), data.size(), 3),
            };
            row.push(texture);
            row.push(pipeline.output().clone());
        }
        rows.push(row);
    }
    let sheet_path = args.out.join("contact_sheet.png");
    let mut titles = vec!["image", "occluded", "hidden", "IUV", "albedo", "Telea"];
    if restorer.is_some() {
        titles.extend(["G1 IUV", "restored"]);
    }
    let picture = sheet::stack(&[sheet::header(&titles, data.size()), sheet::compose(&rows)]);
    dataset::write_rgb8(&sheet_path, &picture)?;
    println!(
        "contact sheet: {} (columns: {})",
        sheet_path.display(),
        titles.join(", ")
    );
    Ok(())
}

/// The device pipeline on the demo's model folder, if it exists and fits `size`.
fn demo_models(dir: &Path, size: usize) -> Result<Option<unveil_device::pipeline::Pipeline>> {
    if !dir.join(unveil_shared::manifest::MANIFEST_BIN).is_file() {
        println!(
            "note: no models in {}; the sheet has no restored column",
            dir.display()
        );
        return Ok(None);
    }
    let model =
        unveil_device::model::Model::load(dir).with_context(|| format!("{}", dir.display()))?;
    let m = &model.manifest;
    if (usize::from(m.width), usize::from(m.height)) != (size, size) {
        println!(
            "note: {} restores {}x{} images, not {size}x{size}; the sheet has no restored column",
            dir.display(),
            m.width,
            m.height
        );
        return Ok(None);
    }
    Ok(Some(unveil_device::pipeline::Pipeline::new(Arc::new(
        model,
    ))?))
}

fn cmd_train(args: &TrainArgs) -> Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    match args.network {
        TrainTarget::One(network) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(network.name()));
            let root = PathBuf::from("runs");
            train_one(args, network, &out, &root, args.resume)
        }
        TrainTarget::All => {
            anyhow::ensure!(
                args.width.is_none(),
                "--width sets one network's width; train the networks one by one to use it"
            );
            let root = args.out.clone().unwrap_or_else(|| PathBuf::from("runs"));
            for network in Network::ALL {
                let out = root.join(network.name());
                let steps = default_steps(args);
                match harness::load_run_config(&out) {
                    Ok(_) if harness::steps_done(&out) >= steps => {
                        println!("{}: finished ({}), skipped", network.name(), out.display());
                    }
                    Ok(_) => train_one(args, network, &out, &root, true)?,
                    Err(_) => train_one(args, network, &out, &root, false)?,
                }
            }
            Ok(())
        }
    }
}

fn default_steps(args: &TrainArgs) -> usize {
    args.steps.unwrap_or(match args.preset {
        Preset::Tiny => 300,
        Preset::Default => 3000,
    })
}

/// The learning-rate schedule `args` ask for over a run of `steps` steps.
fn schedule(args: &TrainArgs, steps: usize) -> Result<LrSchedule> {
    Ok(match args.schedule {
        ScheduleKind::Constant => LrSchedule::Constant,
        ScheduleKind::Cosine => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&args.lr_floor),
                "--lr-floor must be in 0..=1, got {}",
                args.lr_floor
            );
            LrSchedule::Cosine {
                warmup: args.warmup.unwrap_or((steps / 10).min(100)),
                horizon: steps,
                floor: args.lr_floor,
            }
        }
    })
}

/// Train `network` into `out`; stage 2 finds G1 and S under `root` unless given.
fn train_one(
    args: &TrainArgs,
    network: Network,
    out: &Path,
    root: &Path,
    resume: bool,
) -> Result<()> {
    let size = args.preset.image_size();
    let (source, data) = match &args.data {
        Some(dir) => {
            let d = dataset::Dataset::open(dir)?;
            anyhow::ensure!(
                d.size() == size,
                "{} holds {}x{} samples but the {:?} preset trains at {size}x{size}",
                dir.display(),
                d.size(),
                d.size(),
                args.preset
            );
            (SampleSource::Folder(d), dir.display().to_string())
        }
        None => {
            anyhow::ensure!(args.samples > 0, "--samples must be at least 1");
            let cfg = SynthConfig::new(size)?;
            let desc = format!(
                "generated: {} samples, seed {}, {size}x{size}",
                args.samples, args.seed
            );
            (
                SampleSource::Generated {
                    cfg,
                    seed: args.seed,
                    count: args.samples,
                },
                desc,
            )
        }
    };
    // A resumed run keeps its own target unless --steps says otherwise.
    let steps = match args.steps {
        // (No run.json: the harness says there is nothing to resume.)
        None if resume => {
            harness::load_run_config(out).map_or_else(|_| default_steps(args), |c| c.steps)
        }
        _ => default_steps(args),
    };
    let mut config = RunConfig::new(network, args.preset, steps, data);
    config.checkpoint_every = args.checkpoint_every;
    config.train = TrainConfig::new()
        .with_batch_size(args.batch)
        .with_learning_rate(args.lr.unwrap_or(match network {
            Network::Silhouette => 2e-3,
            Network::Extractor | Network::Stage1 => 5e-4,
            Network::Stage2 => 1e-3,
        }))
        .with_seed(args.seed)
        .with_schedule(schedule(args, steps)?);
    if let Some(norm) = args.clip_norm {
        anyhow::ensure!(
            norm.is_finite() && norm > 0.0,
            "--clip-norm must be a positive number, got {norm}"
        );
        config.train.optimizer = config
            .train
            .optimizer
            .clone()
            .with_grad_clipping(Some(GradientClippingConfig::Norm(norm)));
    }
    config.occlusion = OcclusionSpec::new(args.occlusion);
    if let Some(w) = args.subject_weight {
        anyhow::ensure!(
            w.is_finite() && w > 0.0,
            "--subject-weight must be a positive number, got {w}"
        );
        config.loss = config.loss.clone().with_subject_weight(w);
    }
    if let Some(w) = args.width {
        anyhow::ensure!(
            (1..=256).contains(&w),
            "--width must be in 1..=256, got {w}"
        );
        match network {
            Network::Silhouette => config.silhouette.base_width = w,
            Network::Extractor | Network::Stage1 => config.stage1.base_width = w,
            Network::Stage2 => config.stage2.base_width = w,
        }
    }
    if network == Network::Stage1 {
        config.stage1 = config.stage1.clone().with_hole_input(args.hole);
    }
    if network == Network::Stage2 {
        config.stage2 = config
            .stage2
            .with_condition(args.condition)
            .with_hole(args.hole);
        let mut l = config.stage2_loss.clone();
        l.reconstruction_weight = args.w_rec.unwrap_or(l.reconstruction_weight);
        l.adversarial_weight = args.w_adv.unwrap_or(l.adversarial_weight);
        l.silhouette_weight = args.w_sil.unwrap_or(l.silhouette_weight);
        l.patch_weight = args.w_patch.unwrap_or(l.patch_weight);
        l.hidden_weight = args.w_hidden.unwrap_or(l.hidden_weight);
        l.matte_weight = args.w_matte.unwrap_or(l.matte_weight);
        config.stage2_loss = l;
        config.stage1_run = Some(args.stage1.clone().unwrap_or_else(|| root.join("stage1")));
        config.silhouette_run = Some(
            args.silhouette
                .clone()
                .unwrap_or_else(|| root.join("silhouette")),
        );
    }
    let start = Instant::now();
    let outcome = harness::run(&config, out, source, args.backend, resume, Progress::Bar)?;
    let secs = start.elapsed().as_secs_f64();
    let done = outcome.rows.len();
    println!(
        "{}: step {} of {steps} in {} ({done} steps this run, {:.2} samples/s); metrics in {}",
        network.name(),
        outcome.step,
        out.display(),
        (done * args.batch) as f64 / secs.max(1e-9),
        out.join(harness::METRICS_FILE).display()
    );
    Ok(())
}

fn cmd_eval(args: &EvalArgs) -> Result<()> {
    let name = args.network.name();
    let run_dir = args
        .model
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("runs").join(name));
    // A model folder (exported, run in tract) is scored as shipped; its report goes
    // beside the runs, never into the folder itself.
    let out = args.out.clone().unwrap_or_else(|| {
        if eval::Candidate::is_model_folder(&run_dir) {
            PathBuf::from("runs")
                .join("eval")
                .join(run_dir.file_name().unwrap_or_default())
        } else {
            run_dir.clone()
        }
    });
    anyhow::ensure!(
        args.network == Network::Stage2 || !eval::Candidate::is_model_folder(&run_dir),
        "{} is an exported model folder: only `eval stage2` scores those",
        run_dir.display()
    );
    let device = args.backend.device()?;
    let candidates = match args.network {
        Network::Stage2 => args
            .model
            .iter()
            .chain(args.model.is_empty().then_some(&run_dir))
            .map(|d| eval::Candidate::load(d, &device).map_err(anyhow::Error::from))
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let size = match candidates.first().and_then(eval::Candidate::size) {
        Some(size) => size,
        None => harness::load_run_config(&run_dir)?.preset.image_size(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let source = match &args.data {
        Some(dir) => SampleSource::Folder(dataset::Dataset::open(dir)?),
        None => SampleSource::Generated {
            cfg: SynthConfig::new(size)?,
            seed: args.seed,
            count: args.samples.max(1),
        },
    };
    anyhow::ensure!(
        source.size() == size,
        "held-out samples are {0}x{0}, the network was trained at {size}x{size}",
        source.size()
    );
    let batch = 8usize.min(source.len());
    let batches = (args.samples.min(source.len()) / batch).max(1);
    let loader =
        Loader::new(source, OcclusionSpec::new(args.occlusion), args.seed)?.with_telea(true);
    match args.network {
        Network::Silhouette => {
            let model = eval::load_silhouette(&run_dir, &device)?;
            let r = eval::eval_silhouette(&model, &loader, batches, batch, &device)?;
            let text = format!(
                "Silhouette network S on {} held-out samples: mean IoU {:.4} (the true masks \
                 eroded by one pixel score {:.4})\n",
                batches * batch,
                r.iou,
                r.one_pixel_reference
            );
            std::fs::write(out.join("eval_silhouette.md"), &text)?;
            print!("{text}");
        }
        Network::Stage2 => {
            let restorers = candidates;
            if let Some(c) = restorers
                .iter()
                .find(|c| c.size().is_some_and(|s| s != size))
            {
                anyhow::bail!(
                    "{} restores another image size than {size}x{size}",
                    c.label()
                );
            }
            let mut table = eval::ModeTable::default();
            let mut rows = Vec::new();
            for &mode in &args.modes {
                let loader =
                    Loader::new(loader.source.clone(), OcclusionSpec::new(mode), args.seed)?
                        .with_telea(true);
                let (report, mode_rows) =
                    eval::eval_stage2(&restorers, &loader, batches, batch, 2, &device)?;
                rows.extend(mode_rows);
                table.modes.push((mode.to_string(), report));
            }
            let titles = [
                "occluded",
                "texture map",
                "fg x alpha",
                "background",
                "Telea",
                "restored",
                "truth",
            ];
            let (md, csv) = (table.markdown(), table.csv());
            print!("{md}");
            write_eval(&out, "eval_stage2", &md, &csv, &titles, &rows, size)?;
        }
        Network::Stage1 | Network::Extractor => {
            let model = eval::load_stage1(&run_dir, &device)?;
            let (report, rows) = eval::eval_stage1(&model, &loader, batches, batch, 6, &device)?;
            let titles = [
                "occluded",
                "IUV pred",
                "IUV truth",
                "albedo pred",
                "albedo truth",
            ];
            let (md, csv) = (report.markdown(), report.csv());
            write_eval(&out, "eval_stage1", &md, &csv, &titles, &rows, size)?;
        }
    }
    Ok(())
}

/// Write an evaluation's `STEM.md`, `STEM.csv` and picture grid `STEM.png` into `out`,
/// and print the Markdown.
fn write_eval(
    out: &Path,
    stem: &str,
    markdown: &str,
    csv: &str,
    titles: &[&str],
    rows: &[Vec<unveil_shared::ImageU8>],
    size: usize,
) -> Result<()> {
    std::fs::write(out.join(format!("{stem}.md")), markdown)?;
    std::fs::write(out.join(format!("{stem}.csv")), csv)?;
    let grid = sheet::stack(&[sheet::header(titles, size), sheet::compose(rows)]);
    dataset::write_rgb8(&out.join(format!("{stem}.png")), &grid)?;
    print!("{markdown}");
    println!(
        "\nwrote {stem}.md, {stem}.csv and {stem}.png to {}",
        out.display()
    );
    Ok(())
}

fn cmd_label(args: &LabelArgs) -> Result<()> {
    let device = args.backend.device()?;
    let config = harness::load_run_config(&args.extractor)?;
    let extractor = eval::load_stage1(&args.extractor, &device)?;
    let count = unveil_host::label::image_files(&args.images)?.len();
    let pb = progress(count as u64, "label");
    let size = config.preset.image_size();
    let manifest = unveil_host::label::label_folder(
        &extractor,
        &args.images,
        &args.out,
        size,
        &device,
        || pb.inc(1),
    )?;
    pb.finish_and_clear();
    println!(
        "labelled {} photos ({size}x{size}) into {}",
        manifest.samples.len(),
        args.out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Run folder of the trained G1 (`unveil train stage1`); default: the G1 run that
    /// the stage-2 run's run.json names (the one it was trained with).
    #[arg(long, value_name = "DIR")]
    stage1: Option<PathBuf>,
    /// Run folder of the trained G2 (`unveil train stage2`); its condition is the model's.
    #[arg(long, value_name = "DIR", required_unless_present = "random")]
    stage2: Option<PathBuf>,
    /// Export seeded random weights at --preset instead of trained runs (for device
    /// bring-up and tests: right graphs and manifest, meaningless pictures).
    #[arg(long, value_name = "SEED", conflicts_with_all = ["stage1", "stage2"])]
    random: Option<u64>,
    /// Size preset of --random weights (trained runs carry their own).
    #[arg(long, default_value = "default")]
    preset: Preset,
    /// What the --random G2 is conditioned on: texture, silhouette or none.
    #[arg(long, default_value = "texture")]
    condition: Condition,
    /// How the --random graphs read the hole: absent, zeroed or telea (see `train --help`).
    #[arg(long, default_value = "absent")]
    hole: HoleInput,
    /// Output model folder: stage1.onnx, stage2.onnx, manifest.bin, manifest.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Model name recorded in the manifest (default: the output folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Quantise to int8: QLinearConv with int8 weights and uint8 activations calibrated on
    /// --samples occluded images (tract runs these as integer kernels).
    #[arg(long)]
    int8: bool,
    /// With --int8: one weight scale per convolution (`per-tensor`, fastest in tract) or per
    /// output channel (`per-channel`, finer).
    #[arg(long, default_value = "per-tensor", value_parser = parse_weight_scales)]
    weight_scales: WeightScales,
    /// Calibration data-set folder (`unveil synth`); default: render --samples samples.
    #[arg(long, value_name = "DIR")]
    calibrate: Option<PathBuf>,
    /// Number of calibration images.
    #[arg(long, default_value_t = 256)]
    samples: usize,
    /// Activation range: `minmax`, or a percentile of |x| (e.g. `99.99`) that ignores
    /// rare outliers.
    #[arg(long, default_value = "minmax", value_parser = parse_calibration)]
    range: Calibration,
    /// Seed of the rendered calibration samples and their occlusions.
    #[arg(long, default_value_t = 2_000_003)]
    seed: u64,
    /// With --int8: compare int8 with f32 in tract on this many held-out samples (rendered
    /// from the held-out seed, the method's occlusion): PSNR of int8 against f32, and each
    /// one's PSNR against the clean image on the hidden pixels. 0 skips the check.
    #[arg(long, default_value_t = 16)]
    check: usize,
}

fn parse_weight_scales(s: &str) -> Result<WeightScales, String> {
    match s {
        "per-tensor" => Ok(WeightScales::PerTensor),
        "per-channel" => Ok(WeightScales::PerChannel),
        _ => Err(format!("expected per-tensor or per-channel, got {s:?}")),
    }
}

fn parse_calibration(s: &str) -> Result<Calibration, String> {
    if s == "minmax" {
        return Ok(Calibration::MinMax);
    }
    match s.parse::<f32>() {
        Ok(p) if p > 50.0 && p <= 100.0 => Ok(Calibration::Percentile(p)),
        _ => Err(format!(
            "expected `minmax` or a percentile in (50, 100], got {s:?}"
        )),
    }
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// Model folder written by `unveil export`.
    #[arg(value_name = "DIR")]
    model: PathBuf,
    /// List every node of tract's optimised graphs, not just the summary.
    #[arg(long)]
    all: bool,
    /// Also time one run of each graph per operator kind (one core).
    #[arg(long)]
    profile: bool,
}

/// The networks `unveil export` writes, and the hash of the configurations behind them.
struct ExportSource {
    g1: unveil_host::stage1::Stage1Net,
    g2: unveil_host::stage2::Stage2Net,
    condition: Condition,
    hole: HoleInput,
    size: usize,
    config_sha256: [u8; 32],
}

fn export_source(args: &ExportArgs) -> Result<ExportSource> {
    use unveil_host::blocks::seeded_init;
    let device = unveil_host::train::cpu_device();
    if let Some(seed) = args.random {
        let stage2 = args
            .preset
            .stage2()
            .with_condition(args.condition)
            .with_hole(args.hole);
        let stage1 = args.preset.stage1().with_hole_input(args.hole);
        return Ok(ExportSource {
            g1: seeded_init(stage1.init(&device), seed),
            g2: seeded_init(stage2.init(&device), unveil_shared::rng::derive(seed, 2)),
            condition: args.condition,
            hole: args.hole,
            size: args.preset.image_size(),
            config_sha256: [0; 32],
        });
    }
    let stage2_dir = args
        .stage2
        .as_ref()
        .context("--stage2 is required unless --random is given")?;
    let restorer = eval::Restorer::load(stage2_dir, &device)?;
    let run2 = harness::load_run_config(stage2_dir)?;
    let stage1_dir = args
        .stage1
        .clone()
        .or_else(|| run2.stage1_run.clone())
        .context("--stage1 is required: the stage-2 run names no stage-1 run")?;
    let g1 = match &args.stage1 {
        Some(dir) => eval::load_stage1(dir, &device)?,
        None => restorer.g1,
    };
    // The configurations (run.json of both runs, in order) identify the training.
    let mut configs = Vec::new();
    for dir in [&stage1_dir, stage2_dir] {
        let path = dir.join(harness::RUN_FILE);
        configs.extend(
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    Ok(ExportSource {
        g1,
        hole: restorer.g2.hole(),
        g2: restorer.g2,
        condition: restorer.condition,
        size: run2.preset.image_size(),
        config_sha256: unveil_shared::manifest::sha256(&configs),
    })
}

fn cmd_export(args: &ExportArgs) -> Result<()> {
    use unveil_host::export::{self, calibrate, ExportSpec, Precision};
    let src = export_source(args)?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
    });
    let spec = ExportSpec {
        name,
        height: src.size,
        width: src.size,
        condition: src.condition,
        hole: src.hole,
        training_config_sha256: src.config_sha256,
    };
    let f32_graphs = export::export_f32(&src.g1, &src.g2, &spec)?;
    let f32_bytes = f32_graphs.stage1.len() + f32_graphs.stage2.len();
    let manifest = if args.int8 {
        anyhow::ensure!(args.samples > 0, "--samples must be at least 1");
        let source = match &args.calibrate {
            Some(dir) => SampleSource::Folder(dataset::Dataset::open(dir)?),
            None => SampleSource::Generated {
                cfg: SynthConfig::new(src.size)?,
                seed: args.seed,
                count: args.samples,
            },
        };
        anyhow::ensure!(
            source.size() == src.size,
            "calibration samples are {0}x{0}, the model takes {1}x{1}",
            source.size(),
            src.size
        );
        let pb = progress(args.samples as u64, "samples");
        let images =
            calibrate::calibration_images(source, args.samples, args.seed, src.hole, || pb.inc(1))?;
        pb.finish_and_clear();
        let pb = progress(2 * images.len() as u64, "calibrate");
        let precision = Precision::Int8 {
            calibration: args.range,
            weights: args.weight_scales,
            images: &images,
        };
        let m = export::export_folder(&args.out, &src.g1, &src.g2, &spec, precision, || pb.inc(1))?;
        pb.finish_and_clear();
        m
    } else {
        export::write_folder(
            &args.out,
            &spec,
            &f32_graphs,
            unveil_shared::manifest::Quantisation::Float32,
        )?
    };
    if args.int8 && args.check > 0 {
        check_int8(args, &src, &f32_graphs)?;
    }
    let size = |file: &str| std::fs::metadata(args.out.join(file)).map_or(0, |m| m.len());
    let written = size(export::STAGE1_FILE) + size(export::STAGE2_FILE);
    println!(
        "wrote {} ({}x{}, condition {}, {:?}): stage1.onnx + stage2.onnx = {:.1} KiB{}",
        args.out.display(),
        src.size,
        src.size,
        src.condition.name(),
        manifest.quantisation,
        written as f64 / 1024.0,
        if args.int8 {
            format!(
                " (f32: {:.1} KiB, int8/f32 {:.2})",
                f32_bytes as f64 / 1024.0,
                written as f64 / f32_bytes.max(1) as f64
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// int8 (just written to `args.out`) against f32 on held-out samples, printed.
fn check_int8(
    args: &ExportArgs,
    src: &ExportSource,
    f32_graphs: &unveil_host::export::Graphs,
) -> Result<()> {
    use unveil_host::export::{self, parity, runtime::Runner};
    let int8 = export::load_folder(&args.out)?;
    let f1 = Runner::load(&f32_graphs.stage1)?;
    let f2 = Runner::load(&f32_graphs.stage2)?;
    let seed = unveil_host::data::HELD_OUT_SEED;
    let source = SampleSource::Generated {
        cfg: SynthConfig::new(src.size)?,
        seed,
        count: args.check,
    };
    let spec = OcclusionSpec::new(OcclusionMode::Subject {
        fill: unveil_shared::occlusion::Fill::Noise,
    });
    let loader = Loader::new(source, spec, seed)?.with_telea(true);
    let r = parity::occluded_psnr(
        (&f1, &f2),
        (&int8.stage1, &int8.stage2),
        src.condition,
        src.hole,
        &loader,
        args.check,
    )?;
    println!(
        "int8 vs f32 on {} held-out samples: restored PSNR {:.2} dB; hidden pixels vs clean: f32 {:.2} dB, int8 {:.2} dB ({:+.2} dB)",
        r.samples,
        r.int8_vs_f32_db,
        r.f32_db,
        r.int8_db,
        r.int8_db - r.f32_db
    );
    Ok(())
}

fn cmd_inspect(args: &InspectArgs) -> Result<()> {
    print!(
        "{}",
        unveil_host::export::inspect::report(&args.model, args.all, args.profile)?
    );
    Ok(())
}
