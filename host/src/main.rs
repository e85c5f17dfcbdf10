//! `unveil`: the workstation command line.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::demo::DemoArgs;
use cli::eval::EvalArgs;
use cli::export::{ExportArgs, InspectArgs};
use cli::label::LabelArgs;
use cli::synth::SynthArgs;
use cli::train::TrainArgs;

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
    /// End-to-end demo on built-in defaults: synthesise a few samples, occlude them, restore
    /// them with the shipped models as the device does, told the hole and blind, and write
    /// a contact sheet (image / occluded / hole / IUV / albedo / Telea / G1's IUV /
    /// restored / the hole the detector found / blind restoration).
    Demo(DemoArgs),
    /// Train a network (extractor, silhouette, stage1, stage2, occlusion, or all in order)
    /// into a run folder, with checkpoints, metrics.csv and a loss curve; --resume
    /// continues bit-exactly.
    Train(TrainArgs),
    /// Evaluate a trained network on held-out samples: stage1 (per-plane errors inside and
    /// outside the occluded region), stage2 (PSNR/SSIM, several runs side by side),
    /// silhouette (IoU) or occlusion (the blind detector's IoU per mode); Markdown + CSV +
    /// picture grid.
    Eval(EvalArgs),
    /// Write texture-map ground truth for unlabelled photos with a trained extraction
    /// network; the output is a data-set folder that `train --data` reads.
    Label(LabelArgs),
    /// Export trained G1 and G2 for the device: two ONNX graphs (f32, or int8 with
    /// --int8), the blind mode's detector with --occlusion, and a manifest with their
    /// SHA-256, into one model folder.
    Export(ExportArgs),
    /// Show a model folder: manifest, file hashes, and the operators tract runs after
    /// optimising each graph (integer kernels for int8 models).
    Inspect(InspectArgs),
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
        Command::Synth(args) => cli::synth::cmd_synth(&args).map(|_| ()),
        Command::Demo(args) => cli::demo::cmd_demo(&args),
        Command::Train(args) => cli::train::cmd_train(&args),
        Command::Eval(args) => cli::eval::cmd_eval(&args),
        Command::Label(args) => cli::label::cmd_label(&args),
        Command::Export(args) => cli::export::cmd_export(&args),
        Command::Inspect(args) => cli::export::cmd_inspect(&args),
    }
}
