//! `unveil label`: texture-map ground truth for unlabelled photos.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use unveil_host::data::label::{image_files, label_folder};
use unveil_host::eval;
use unveil_host::train::harness;
use unveil_host::train::BackendKind;

use super::progress;

#[derive(Args, Debug)]
pub(crate) struct LabelArgs {
    /// Run folder of the trained extraction network (`unveil train extractor`).
    #[arg(long, value_name = "DIR", default_value = "runs/extractor")]
    pub(crate) extractor: PathBuf,
    /// Folder of photos (PNG/JPEG); each is centre-cropped to a square and resized.
    #[arg(long, value_name = "DIR")]
    pub(crate) images: PathBuf,
    /// Output data-set folder.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Compute backend (see `train --help`).
    #[arg(long, default_value = "flex")]
    pub(crate) backend: BackendKind,
}

pub(crate) fn cmd_label(args: &LabelArgs) -> Result<()> {
    let device = args.backend.device()?;
    let config = harness::load_run_config(&args.extractor)?;
    let extractor = eval::load_stage1(&args.extractor, &device)?;
    let count = image_files(&args.images)?.len();
    let pb = progress(count as u64, "label");
    let size = config.preset.image_size();
    let manifest = label_folder(&extractor, &args.images, &args.out, size, &device, || {
        pb.inc(1)
    })?;
    pb.finish_and_clear();
    println!(
        "labelled {} photos ({size}x{size}) into {}",
        manifest.samples.len(),
        args.out.display()
    );
    Ok(())
}
