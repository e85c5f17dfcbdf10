//! `unveil demo`: the end-to-end contact sheet on built-in defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use unveil_host::data::dataset;
use unveil_host::eval::texture_to_planes;
use unveil_host::viz::sheet;
use unveil_shared::hole::TELEA_RADIUS;
use unveil_shared::inpaint;
use unveil_shared::occlusion::{occlude, OcclusionMode, OcclusionSpec};

use super::synth::{cmd_synth, SynthArgs};
use super::SourceArgs;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Output folder for the data and the contact sheet.
    #[arg(long, value_name = "DIR", default_value = "demo")]
    pub(crate) out: PathBuf,
    /// Number of samples (rows of the contact sheet).
    #[arg(long, default_value_t = 6)]
    pub(crate) count: u64,
    /// Occlusion mode; default cycles through all modes, one per row.
    #[arg(long)]
    pub(crate) occlusion: Option<OcclusionMode>,
    /// Exported model folder that restores each occluded image (run in tract, as on the
    /// camera); skipped with a note when absent or made for another --size.
    #[arg(long, value_name = "DIR", default_value = "models/default")]
    pub(crate) models: PathBuf,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

pub(crate) fn cmd_demo(args: &DemoArgs) -> Result<()> {
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
    let mut regions = unveil_device::region::RegionRestorer::new();
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
                Some(t) => sheet::iuv_rgb(&texture_to_planes(t, data.size()).0),
                None => unveil_shared::ImageU8::new(data.size(), data.size(), 3),
            };
            row.push(texture);
            row.push(pipeline.output().clone());
            if pipeline.can_detect() {
                // Blind: no mask given; the detector finds the hole, only it changes.
                let mut found = unveil_shared::Mask::default();
                pipeline.detect(&occluded.image, &mut found)?;
                let blind = unveil_device::source::restore_image(
                    pipeline,
                    &mut regions,
                    &occluded.image,
                    None,
                    Path::new("demo"),
                )?;
                row.push(sheet::mask_rgb(&found));
                row.push(blind);
            }
        }
        rows.push(row);
    }
    let sheet_path = args.out.join("contact_sheet.png");
    let mut titles = vec!["image", "occluded", "hidden", "IUV", "albedo", "Telea"];
    if let Some(pipeline) = &restorer {
        titles.extend(["G1 IUV", "restored"]);
        if pipeline.can_detect() {
            titles.extend(["found", "blind"]);
        }
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
pub(crate) fn demo_models(
    dir: &Path,
    size: usize,
) -> Result<Option<unveil_device::pipeline::Pipeline>> {
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
