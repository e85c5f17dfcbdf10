//! `unveil export` and `unveil inspect`: model folders for the device.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use unveil_host::data::{Loader, SampleSource, HELD_OUT_SEED};
use unveil_host::eval;
use unveil_host::export::{self, calibrate, parity, ExportSpec, Precision};
use unveil_host::nets::blocks::seeded_init;
use unveil_host::nets::stage1::Stage1Net;
use unveil_host::nets::stage2::{Condition, HoleInput, Stage2Net};
use unveil_host::train::harness::{self, Preset};
use unveil_shared::manifest::{Calibration, Quantisation, WeightScales};
use unveil_shared::occlusion::{Fill, OcclusionMode, OcclusionSpec};

use super::progress;

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Run folder of the trained G1 (`unveil train stage1`); default: the G1 run that
    /// the stage-2 run's run.json names (the one it was trained with).
    #[arg(long, value_name = "DIR")]
    pub(crate) stage1: Option<PathBuf>,
    /// Run folder of the trained G2 (`unveil train stage2`); its condition is the model's.
    #[arg(long, value_name = "DIR", required_unless_present = "random")]
    pub(crate) stage2: Option<PathBuf>,
    /// Export seeded random weights at --preset instead of trained runs (for device
    /// bring-up and tests: right graphs and manifest, meaningless pictures).
    #[arg(long, value_name = "SEED", conflicts_with_all = ["stage1", "stage2"])]
    pub(crate) random: Option<u64>,
    /// Size preset of --random weights (trained runs carry their own).
    #[arg(long, default_value = "default")]
    pub(crate) preset: Preset,
    /// What the --random G2 is conditioned on: texture, silhouette or none.
    #[arg(long, default_value = "texture")]
    pub(crate) condition: Condition,
    /// How the --random graphs read the hole: absent, zeroed or telea (see `train --help`).
    #[arg(long, default_value = "absent")]
    pub(crate) hole: HoleInput,
    /// Run folder of the trained occlusion detector (`unveil train occlusion`), added as
    /// occlusion.onnx (always f32) so that the device can restore without a mask.
    #[arg(long, value_name = "DIR", conflicts_with = "random")]
    pub(crate) occlusion: Option<PathBuf>,
    /// Output model folder: stage1.onnx, stage2.onnx, manifest.bin, manifest.json (and
    /// occlusion.onnx with --occlusion).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Model name recorded in the manifest (default: the output folder's name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Quantise to int8: QLinearConv with int8 weights and uint8 activations calibrated on
    /// --samples occluded images (tract runs these as integer kernels).
    #[arg(long)]
    pub(crate) int8: bool,
    /// With --int8: one weight scale per convolution (`per-tensor`, fastest in tract) or per
    /// output channel (`per-channel`, finer).
    #[arg(long, default_value = "per-tensor", value_parser = parse_weight_scales)]
    pub(crate) weight_scales: WeightScales,
    /// Calibration data-set folder (`unveil synth`); default: render --samples samples.
    #[arg(long, value_name = "DIR")]
    pub(crate) calibrate: Option<PathBuf>,
    /// Number of calibration images.
    #[arg(long, default_value_t = 256)]
    pub(crate) samples: usize,
    /// Activation range: `minmax`, or a percentile of |x| (e.g. `99.99`) that ignores
    /// rare outliers.
    #[arg(long, default_value = "minmax", value_parser = parse_calibration)]
    pub(crate) range: Calibration,
    /// Seed of the rendered calibration samples and their occlusions.
    #[arg(long, default_value_t = 2_000_003)]
    pub(crate) seed: u64,
    /// With --int8: compare int8 with f32 in tract on this many held-out samples (rendered
    /// from the held-out seed, the method's occlusion): PSNR of int8 against f32, and each
    /// one's PSNR against the clean image on the hidden pixels. 0 skips the check.
    #[arg(long, default_value_t = 16)]
    pub(crate) check: usize,
}

pub(crate) fn parse_weight_scales(s: &str) -> Result<WeightScales, String> {
    match s {
        "per-tensor" => Ok(WeightScales::PerTensor),
        "per-channel" => Ok(WeightScales::PerChannel),
        _ => Err(format!("expected per-tensor or per-channel, got {s:?}")),
    }
}

pub(crate) fn parse_calibration(s: &str) -> Result<Calibration, String> {
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
pub(crate) struct InspectArgs {
    /// Model folder written by `unveil export`.
    #[arg(value_name = "DIR")]
    pub(crate) model: PathBuf,
    /// List every node of tract's optimised graphs, not just the summary.
    #[arg(long)]
    pub(crate) all: bool,
    /// Also time one run of each graph per operator kind (one core).
    #[arg(long)]
    pub(crate) profile: bool,
}

/// The networks `unveil export` writes, and the hash of the configurations behind them.
pub(crate) struct ExportSource {
    pub(crate) g1: Stage1Net,
    pub(crate) g2: Stage2Net,
    pub(crate) condition: Condition,
    pub(crate) hole: HoleInput,
    pub(crate) size: usize,
    pub(crate) config_sha256: [u8; 32],
}

pub(crate) fn export_source(args: &ExportArgs) -> Result<ExportSource> {
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
    let restorer = eval::TrainedChain::load(stage2_dir, &device)?;
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

pub(crate) fn cmd_export(args: &ExportArgs) -> Result<()> {
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
        let source = SampleSource::folder_or_generated(
            args.calibrate.as_deref(),
            src.size,
            args.seed,
            args.samples,
        )?;
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
    let manifest = match &args.occlusion {
        Some(dir) => {
            let detector = eval::load_detector(dir, &unveil_host::train::cpu_device())?;
            export::add_detector(&args.out, &detector)?
        }
        None => manifest,
    };
    if args.int8 && args.check > 0 {
        check_int8(args, &spec, &f32_graphs)?;
    }
    let size = |file: &str| std::fs::metadata(args.out.join(file)).map_or(0, |m| m.len());
    let written = size(export::STAGE1_FILE) + size(export::STAGE2_FILE);
    if args.occlusion.is_some() {
        println!(
            "occlusion.onnx (f32): {:.1} KiB",
            size(export::OCCLUSION_FILE) as f64 / 1024.0
        );
    }
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
pub(crate) fn check_int8(
    args: &ExportArgs,
    spec: &ExportSpec,
    f32_graphs: &export::Graphs,
) -> Result<()> {
    let mut int8 = export::folder_pipeline(&args.out)?;
    let mut float = export::pipeline(spec, f32_graphs, Quantisation::Float32)?;
    let seed = HELD_OUT_SEED;
    let source = SampleSource::folder_or_generated(None, spec.width, seed, args.check)?;
    let occlusion = OcclusionSpec::new(OcclusionMode::Subject { fill: Fill::Noise });
    let loader = Loader::new(source, occlusion, seed)?.with_telea(true);
    let r = parity::occluded_psnr(&mut float, &mut int8, spec.hole, &loader, args.check)?;
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

pub(crate) fn cmd_inspect(args: &InspectArgs) -> Result<()> {
    print!(
        "{}",
        export::inspect::report(&args.model, args.all, args.profile)?
    );
    Ok(())
}
