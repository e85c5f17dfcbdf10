//! `unveil eval`: score trained networks on held-out samples.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use unveil_host::data::dataset;
use unveil_host::data::photos::Photos;
use unveil_host::data::{Loader, SampleSource};
use unveil_host::eval;
use unveil_host::train::harness::{self, Network};
use unveil_host::train::BackendKind;
use unveil_host::viz::sheet;
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};

#[derive(Args, Debug)]
pub(crate) struct EvalArgs {
    /// Which network: stage1 (also takes an extractor run), silhouette, stage2
    /// (restoration quality: PSNR/SSIM over the image and the occluded pixels), or occlusion
    /// (the blind mode's detector: IoU per mode, and what it flags on intact images).
    pub(crate) network: Network,
    /// Run folder of the trained network (default: runs/<network>). For stage2, repeat it
    /// to compare several side by side (e.g. the condition ablations); an exported model
    /// folder (`models/default`) is scored as the camera runs it, in tract.
    #[arg(long, value_name = "DIR")]
    pub(crate) model: Vec<PathBuf>,
    /// Where to write the report (default: the run folder; runs/eval/<name> for a model
    /// folder).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Held-out data-set folder; default: render --samples samples from --seed.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// Number of held-out samples (rounded down to whole batches).
    #[arg(long, default_value_t = 256)]
    pub(crate) samples: usize,
    /// Seed of the held-out samples and their occlusions (keep it apart from training's).
    #[arg(long, default_value_t = unveil_host::data::HELD_OUT_SEED)]
    pub(crate) seed: u64,
    /// Occlusion of the inputs; default: the method's own (part of the subject, noise).
    #[arg(long, default_value = "subject-noise")]
    pub(crate) occlusion: OcclusionMode,
    /// Stage 2: a folder of real photos (PNG/JPEG) to score instead of synthetic samples:
    /// --samples seeded square crops cycling through the photos, hidden by seeded masks.
    /// The report is eval_photos.{md,csv,png}.
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    pub(crate) images: Option<PathBuf>,
    /// Stage 2 and occlusion: the occlusion modes to score, each on its own table
    /// (comma-separated; stage 2's default subject-noise,subject-zero,rect,strokes-thick,text,
    /// and for --images, whose photos have no subject model, rect,strokes-thick,text; the
    /// occlusion detector's default adds strokes-thin and objects).
    #[arg(long, value_delimiter = ',')]
    pub(crate) modes: Vec<OcclusionMode>,
    /// Compute backend (see `train --help`).
    #[arg(long, default_value = "flex")]
    pub(crate) backend: BackendKind,
}

pub(crate) fn cmd_eval(args: &EvalArgs) -> Result<()> {
    let name = args.network.name();
    anyhow::ensure!(
        args.images.is_none() || args.network == Network::Stage2,
        "--images scores restoration: use it with `eval stage2`"
    );
    let modes = match args.network {
        Network::Occlusion => detector_modes(&args.modes),
        _ => stage2_modes(&args.modes, args.images.is_some())?,
    };
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
    let source = match &args.images {
        Some(dir) => SampleSource::Photos(Photos::open(dir, size, args.seed, args.samples.max(1))?),
        None => SampleSource::folder_or_generated(
            args.data.as_deref(),
            size,
            args.seed,
            args.samples.max(1),
        )?,
    };
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
            unveil_shared::files::write_atomic(&out.join("eval_silhouette.md"), text.as_bytes())?;
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
            for &mode in &modes {
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
            let stem = if args.images.is_some() {
                "eval_photos"
            } else {
                "eval_stage2"
            };
            write_eval(&out, stem, &md, &csv, &titles, &rows, size)?;
        }
        Network::Occlusion => {
            let model = eval::load_detector(&run_dir, &device)?;
            let mut rows = Vec::new();
            for &mode in &modes {
                let loader =
                    Loader::new(loader.source.clone(), OcclusionSpec::new(mode), args.seed)?;
                let r = eval::eval_detector(&model, &loader, batches, batch, &device)?;
                rows.push((mode.to_string(), r));
            }
            let text = eval::detector_markdown(&rows, batches * batch);
            unveil_shared::files::write_atomic(&out.join("eval_occlusion.md"), text.as_bytes())?;
            print!("{text}");
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

/// The occlusion modes `eval occlusion` scores: those asked for, or every kind of
/// occluder the detector was trained on.
fn detector_modes(asked: &[OcclusionMode]) -> Vec<OcclusionMode> {
    use unveil_shared::occlusion::{Fill, StrokeWidth};
    if !asked.is_empty() {
        return asked.to_vec();
    }
    vec![
        OcclusionMode::Subject { fill: Fill::Noise },
        OcclusionMode::Subject { fill: Fill::Zero },
        OcclusionMode::Rectangles,
        OcclusionMode::Strokes(StrokeWidth::Thick),
        OcclusionMode::Strokes(StrokeWidth::Thin),
        OcclusionMode::Text,
        OcclusionMode::Objects,
    ]
}

/// The occlusion modes `eval stage2` scores: those asked for, or the defaults. Photos
/// have no subject model, so the modes that hide part of the subject would hide nothing.
fn stage2_modes(asked: &[OcclusionMode], photos: bool) -> Result<Vec<OcclusionMode>> {
    use unveil_shared::occlusion::{Fill, StrokeWidth};
    if asked.is_empty() {
        let mut modes = vec![
            OcclusionMode::Rectangles,
            OcclusionMode::Strokes(StrokeWidth::Thick),
            OcclusionMode::Text,
        ];
        if !photos {
            modes.splice(
                0..0,
                [Fill::Noise, Fill::Zero].map(|fill| OcclusionMode::Subject { fill }),
            );
        }
        return Ok(modes);
    }
    if let Some(m) = asked.iter().find(|m| photos && m.needs_subject()) {
        anyhow::bail!(
            "--modes {m}: photos have no subject mask to hide part of; use rect, strokes or text"
        );
    }
    Ok(asked.to_vec())
}

/// Write an evaluation's `STEM.md`, `STEM.csv` and picture grid `STEM.png` into `out`,
/// and print the Markdown.
pub(crate) fn write_eval(
    out: &Path,
    stem: &str,
    markdown: &str,
    csv: &str,
    titles: &[&str],
    rows: &[Vec<unveil_shared::ImageU8>],
    size: usize,
) -> Result<()> {
    for (ext, text) in [("md", markdown), ("csv", csv)] {
        let path = out.join(format!("{stem}.{ext}"));
        unveil_shared::files::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let grid = sheet::stack(&[sheet::header(titles, size), sheet::compose(rows)]);
    dataset::write_rgb8(&out.join(format!("{stem}.png")), &grid)?;
    print!("{markdown}");
    println!(
        "\nwrote {stem}.md, {stem}.csv and {stem}.png to {}",
        out.display()
    );
    Ok(())
}
