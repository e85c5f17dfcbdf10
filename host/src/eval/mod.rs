//! Evaluation of trained networks on held-out samples: numbers (Markdown + CSV) and a
//! picture grid.
//!
//! Stage 1 is judged per texture-map plane, separately on the subject pixels that the
//! occlusion hid and on those it left visible: predicting the *hidden* body parts is the
//! whole point of G1, and it is invisible in an average over the whole image.

pub mod quality;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use std::sync::Arc;

use unveil_device::model::Model;
use unveil_device::pipeline::Pipeline;
use unveil_shared::image::{HIDDEN_LOGIT, SEED_LOGIT};
use unveil_shared::inpaint;
use unveil_shared::manifest::MANIFEST_BIN;
use unveil_shared::report::one_line;
use unveil_shared::texture::{CH_ALBEDO, CH_I, NUM_PARTS};
use unveil_shared::{ImageU8, IuvMap, Mask, Normalisation};

use crate::data::synth::body::part::{mirror, side};
use crate::data::{DataError, Loader, SampleBatch};
use crate::eval::quality::{Quality, QualityStats};
use crate::nets::silhouette::Silhouette;
use crate::nets::stage1::Stage1Net;
use crate::nets::stage2::{condition_tensor, stage2_input, Condition, Stage2Net, Stage2Output};
use crate::train::harness::{load_run_config, HarnessError, Network, RunConfig, MODEL_FILE};
use crate::train::{load_model, CheckpointError};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{dir} holds a {found:?} run; expected {expected:?}")]
    WrongNetwork {
        dir: PathBuf,
        found: Network,
        expected: Network,
    },
    #[error("cannot read back tensor data: {0}")]
    Read(String),
    #[error("model folder: {0}")]
    Device(String),
}

fn to_vec(t: Tensor<4>) -> Result<Vec<f32>, EvalError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| EvalError::Read(format!("{e:?}")))
}

/// Sums over one pixel region, turned into metrics by [`RegionStats::finish`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RegionStats {
    pub pixels: u64,
    pub part_correct: u64,
    /// Pixels whose predicted part is the true one or its mirror (left ↔ right).
    pub part_correct_either_side: u64,
    /// Pixels predicted as any part (not background).
    pub found: u64,
    /// Pixels of a sided part (left or right) predicted as that part on either side.
    pub sided_hits: u64,
    /// Of those, the ones on the right side.
    pub sided_right: u64,
    pub uv_abs_sum: f64,
    pub albedo_sq_sum: f64,
}

/// Metrics of one region.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RegionMetrics {
    pub pixels: u64,
    /// Fraction of pixels whose predicted body part is the true one.
    pub part_accuracy: f64,
    /// Fraction whose predicted part is the true one or the same part on the other side:
    /// the share of the error that is only left/right (front/back views swap them).
    pub part_accuracy_either_side: f64,
    /// Fraction predicted as subject at all (any part): the silhouette's share of the error.
    pub subject_found: f64,
    /// Of the pixels of sided parts predicted as that part on either side, the fraction on
    /// the right side: 0.5 is a coin toss, i.e. no idea whether the camera faces the
    /// subject's front or back.
    pub side_right: f64,
    /// Mean |ΔU| and |ΔV| (chart units, 0..1).
    pub uv_mae: f64,
    /// PSNR of the albedo (0..1 scale), in dB.
    pub albedo_psnr: f64,
}

impl RegionMetrics {
    /// The metrics after `pixels`, in report order, each with its number of decimals,
    /// joined by `sep`.
    fn cells(&self, decimals: [usize; 6], sep: &str) -> String {
        let values = [
            self.part_accuracy,
            self.part_accuracy_either_side,
            self.side_right,
            self.subject_found,
            self.uv_mae,
            self.albedo_psnr,
        ];
        let cells: Vec<String> = values
            .iter()
            .zip(decimals)
            .map(|(v, d)| format!("{v:.d$}"))
            .collect();
        cells.join(sep)
    }
}

impl RegionStats {
    /// Add one pixel: true/predicted part, true/predicted (U, V) and albedo RGB.
    pub fn add(&mut self, part: (u8, u8), uv: ([f32; 2], [f32; 2]), albedo: ([f32; 3], [f32; 3])) {
        self.pixels += 1;
        self.part_correct += (part.0 == part.1) as u64;
        let up_to_side = part.1 == part.0 || part.1 == mirror(part.0);
        self.part_correct_either_side += up_to_side as u64;
        self.found += (part.1 != 0) as u64;
        if up_to_side && side(part.0).is_some() {
            self.sided_hits += 1;
            self.sided_right += (part.1 == part.0) as u64;
        }
        self.uv_abs_sum += ((uv.0[0] - uv.1[0]).abs() + (uv.0[1] - uv.1[1]).abs()) as f64;
        self.albedo_sq_sum += (0..3)
            .map(|c| ((albedo.0[c] - albedo.1[c]) as f64).powi(2))
            .sum::<f64>();
    }

    /// The sums over both regions together.
    pub fn merged(&self, other: &Self) -> Self {
        Self {
            pixels: self.pixels + other.pixels,
            part_correct: self.part_correct + other.part_correct,
            part_correct_either_side: self.part_correct_either_side
                + other.part_correct_either_side,
            found: self.found + other.found,
            sided_hits: self.sided_hits + other.sided_hits,
            sided_right: self.sided_right + other.sided_right,
            uv_abs_sum: self.uv_abs_sum + other.uv_abs_sum,
            albedo_sq_sum: self.albedo_sq_sum + other.albedo_sq_sum,
        }
    }

    pub fn finish(&self) -> RegionMetrics {
        let n = self.pixels.max(1) as f64;
        let mse = self.albedo_sq_sum / (3.0 * n);
        RegionMetrics {
            pixels: self.pixels,
            part_accuracy: self.part_correct as f64 / n,
            part_accuracy_either_side: self.part_correct_either_side as f64 / n,
            subject_found: self.found as f64 / n,
            side_right: self.sided_right as f64 / self.sided_hits.max(1) as f64,
            uv_mae: self.uv_abs_sum / (2.0 * n),
            albedo_psnr: psnr(mse),
        }
    }
}

pub use crate::eval::quality::psnr;

/// Stage-1 results on the subject's hidden pixels, visible pixels, and all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stage1Report {
    pub samples: usize,
    pub hidden: RegionMetrics,
    pub visible: RegionMetrics,
    pub subject: RegionMetrics,
    /// Fraction of all pixels (background included) with the right part class.
    pub pixel_accuracy: f64,
}

impl Stage1Report {
    /// `(label in Markdown, label in CSV, metrics)` of each region, in report order.
    fn regions(&self) -> [(&'static str, &'static str, RegionMetrics); 3] {
        [
            ("occluded subject", "occluded_subject", self.hidden),
            ("visible subject", "visible_subject", self.visible),
            ("whole subject", "subject", self.subject),
        ]
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "Stage 1 (G1) on {} held-out samples; pixel accuracy (background included) {:.3}\n\n",
            self.samples, self.pixel_accuracy
        );
        s.push_str("| region | pixels | part accuracy | either side | right side | found as subject | UV mean abs error | albedo PSNR (dB) |\n|---|---|---|---|---|---|---|---|\n");
        for (name, _, m) in self.regions() {
            let _ = writeln!(
                s,
                "| {name} | {} | {} |",
                m.pixels,
                m.cells([3, 3, 3, 3, 4, 2], " | ")
            );
        }
        s.push_str("\n\"either side\": the predicted part is the true one or the same part on the subject's other side; \"right side\": of the pixels of left/right parts found up to the side, the share on the right side (0.5 = a coin toss).\n");
        s
    }

    pub fn csv(&self) -> String {
        let mut s = String::from(
            "region,pixels,part_accuracy,part_accuracy_either_side,side_right,subject_found,uv_mae,albedo_psnr_db\n",
        );
        for (_, name, m) in self.regions() {
            let _ = writeln!(
                s,
                "{name},{},{}",
                m.pixels,
                m.cells([6, 6, 6, 6, 6, 4], ",")
            );
        }
        s
    }
}

/// Load a trained network's run configuration and weights (inference copy, on `device`).
fn load_run(dir: &Path, expected: Network) -> Result<RunConfig, EvalError> {
    let config = load_run_config(dir)?;
    // G1 and the extractor share an architecture: either loads as "stage1".
    let ok = match expected {
        Network::Stage1 => matches!(config.network, Network::Stage1 | Network::Extractor),
        other => config.network == other,
    };
    if !ok {
        return Err(EvalError::WrongNetwork {
            dir: dir.into(),
            found: config.network,
            expected,
        });
    }
    Ok(config)
}

/// G1 (or the extractor) from a run folder.
pub fn load_stage1(dir: &Path, device: &Device) -> Result<Stage1Net, EvalError> {
    let config = load_run(dir, Network::Stage1)?;
    Ok(load_model(
        config.stage1.init(device),
        &dir.join(MODEL_FILE),
    )?)
}

/// The occlusion detector from a run folder.
pub fn load_detector(dir: &Path, device: &Device) -> Result<Silhouette, EvalError> {
    load_mask_network(dir, Network::Occlusion, device)
}

/// S from a run folder.
pub fn load_silhouette(dir: &Path, device: &Device) -> Result<Silhouette, EvalError> {
    load_mask_network(dir, Network::Silhouette, device)
}

/// S or the occlusion detector (one architecture) from a run folder of `network`.
fn load_mask_network(
    dir: &Path,
    network: Network,
    device: &Device,
) -> Result<Silhouette, EvalError> {
    let config = load_run(dir, network)?;
    let net = if network == Network::Occlusion {
        &config.detector
    } else {
        &config.silhouette
    };
    Ok(load_model(net.init(device), &dir.join(MODEL_FILE))?)
}

/// A network's texture-map tensor `[6, S, S]` (one sample) as IUV + albedo images.
pub fn texture_to_planes(t: &[f32], size: usize) -> (IuvMap, ImageU8) {
    let n = size * size;
    let mut iuv = IuvMap::new(size, size);
    let mut albedo = ImageU8::new(size, size, 3);
    for i in 0..n {
        iuv.part[i] = (t[CH_I * n + i] * NUM_PARTS as f32)
            .round()
            .clamp(0.0, NUM_PARTS as f32) as u8;
        iuv.u[i] = unveil_shared::texture::quantise_uv(t[n + i]);
        iuv.v[i] = unveil_shared::texture::quantise_uv(t[2 * n + i]);
        for c in 0..3 {
            albedo.data[i * 3 + c] =
                (t[(CH_ALBEDO + c) * n + i] * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    (iuv, albedo)
}

/// Evaluate G1 on `batches` batches of `loader` (use a held-out seed). `grid_rows` samples
/// also come back as picture rows: occluded input, predicted IUV, true IUV, predicted
/// albedo, true albedo.
pub fn eval_stage1(
    model: &Stage1Net,
    loader: &Loader,
    batches: usize,
    batch_size: usize,
    grid_rows: usize,
    device: &Device,
) -> Result<(Stage1Report, Vec<Vec<ImageU8>>), EvalError> {
    let size = loader.source.size();
    let n = size * size;
    let (mut hidden, mut visible) = (RegionStats::default(), RegionStats::default());
    let (mut correct_all, mut all) = (0u64, 0u64);
    let mut rows = Vec::new();
    for step in 0..batches {
        let batch = loader.batch(step, batch_size, device)?;
        let pred = model.forward(batch.hole_input(model.hole())?).texture_map();
        let (pred, truth, hid) = (to_vec(pred)?, to_vec(batch.texture)?, to_vec(batch.hidden)?);
        let occluded = to_vec(batch.occluded)?;
        for b in 0..batch_size {
            let (p, t) = (
                &pred[b * 6 * n..(b + 1) * 6 * n],
                &truth[b * 6 * n..(b + 1) * 6 * n],
            );
            let (pi, pa) = texture_to_planes(p, size);
            let (ti, ta) = texture_to_planes(t, size);
            for i in 0..n {
                all += 1;
                correct_all += (pi.part[i] == ti.part[i]) as u64;
                if ti.part[i] == 0 {
                    continue;
                }
                let stats = if hid[b * n + i] > 0.5 {
                    &mut hidden
                } else {
                    &mut visible
                };
                stats.add(
                    (ti.part[i], pi.part[i]),
                    ([t[n + i], t[2 * n + i]], [p[n + i], p[2 * n + i]]),
                    (
                        [t[3 * n + i], t[4 * n + i], t[5 * n + i]],
                        [p[3 * n + i], p[4 * n + i], p[5 * n + i]],
                    ),
                );
            }
            if rows.len() < grid_rows {
                let input = ImageU8::from_chw(
                    size,
                    size,
                    &occluded[b * 3 * n..(b + 1) * 3 * n],
                    &Normalisation::default(),
                )
                .map_err(|e| EvalError::Read(e.to_string()))?;
                rows.push(vec![
                    input,
                    crate::viz::sheet::iuv_rgb(&pi),
                    crate::viz::sheet::iuv_rgb(&ti),
                    pa,
                    ta,
                ]);
            }
        }
    }
    let subject = hidden.merged(&visible);
    let report = Stage1Report {
        samples: batches * batch_size,
        hidden: hidden.finish(),
        visible: visible.finish(),
        subject: subject.finish(),
        pixel_accuracy: correct_all as f64 / all.max(1) as f64,
    };
    Ok((report, rows))
}

/// S's silhouette quality on held-out samples.
#[derive(Debug, Clone, Copy)]
pub struct SilhouetteReport {
    /// Mean IoU of S's silhouettes (logit > 0) against the true masks.
    pub iou: f64,
    /// Mean IoU of the true masks eroded by one pixel against themselves: what a
    /// silhouette off by one boundary pixel scores on the same samples.
    pub one_pixel_reference: f64,
}

/// [`SilhouetteReport`] over `batches` batches of `loader`.
pub fn eval_silhouette(
    model: &Silhouette,
    loader: &Loader,
    batches: usize,
    batch_size: usize,
    device: &Device,
) -> Result<SilhouetteReport, EvalError> {
    use crate::nets::silhouette::{eroded_mask_logits, silhouette_iou};
    let (mut iou, mut reference) = (0.0, 0.0);
    for step in 0..batches {
        let batch = loader.batch(step, batch_size, device)?;
        let mask = batch.mask;
        iou += silhouette_iou(model.forward(batch.clean), mask.clone()).into_scalar::<f32>() as f64;
        reference +=
            silhouette_iou(eroded_mask_logits(mask.clone()), mask).into_scalar::<f32>() as f64;
    }
    let n = batches.max(1) as f64;
    Ok(SilhouetteReport {
        iou: iou / n,
        one_pixel_reference: reference / n,
    })
}

/// The occlusion detector on one occlusion mode's held-out samples, its logits read as
/// the device reads them ([`Mask::set_from_logits`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DetectorReport {
    /// Pixels flagged and truly hidden, summed over the occluded images.
    pub intersection: u64,
    /// Pixels flagged or truly hidden, summed over the occluded images.
    pub union: u64,
    /// Pixels flagged on the same samples' unoccluded images, and their pixel count.
    pub clean_flagged: u64,
    pub clean_pixels: u64,
    /// Unoccluded images seen, those with more than 1 % of their pixels flagged, and the
    /// largest share flagged on one.
    pub clean_images: u64,
    pub clean_over_one_percent: u64,
    pub clean_worst: f64,
}

impl DetectorReport {
    /// Pooled intersection over union of the flagged and the truly hidden pixels.
    pub fn iou(&self) -> f64 {
        self.intersection as f64 / self.union.max(1) as f64
    }

    /// Share of an intact image's pixels the detector flags (what blind restoration
    /// would rewrite on a frame with nothing hidden).
    pub fn clean_flagged_share(&self) -> f64 {
        self.clean_flagged as f64 / self.clean_pixels.max(1) as f64
    }

    /// Add the counts of `logits` (`[B, 1, H, W]` with `H × W = pixels`) against `truth`
    /// (hidden where > 0.5), and of `clean_logits` (the unoccluded images), each image
    /// read into a mask of `width` × `height`.
    fn add(
        &mut self,
        logits: &[f32],
        truth: &[f32],
        clean_logits: &[f32],
        (width, height): (usize, usize),
    ) -> Result<(), EvalError> {
        let pixels = width * height;
        let mut mask = Mask::new(width, height);
        let read = |e: unveil_shared::ImageError| EvalError::Read(e.to_string());
        for (l, t) in logits.chunks(pixels).zip(truth.chunks(pixels)) {
            mask.set_from_logits(l).map_err(read)?;
            for (&p, &t) in mask.data.iter().zip(t) {
                let (p, t) = (p != 0, t > 0.5);
                self.intersection += u64::from(p && t);
                self.union += u64::from(p || t);
            }
        }
        for l in clean_logits.chunks(pixels) {
            mask.set_from_logits(l).map_err(read)?;
            let flagged = mask.count() as u64;
            let share = flagged as f64 / pixels.max(1) as f64;
            self.clean_flagged += flagged;
            self.clean_pixels += pixels as u64;
            self.clean_images += 1;
            self.clean_over_one_percent += u64::from(share > 0.01);
            self.clean_worst = self.clean_worst.max(share);
        }
        Ok(())
    }
}

/// [`DetectorReport`] over `batches` batches of `loader` (its occlusion mode).
pub fn eval_detector(
    model: &Silhouette,
    loader: &Loader,
    batches: usize,
    batch_size: usize,
    device: &Device,
) -> Result<DetectorReport, EvalError> {
    let mut report = DetectorReport::default();
    for step in 0..batches {
        let batch = loader.batch(step, batch_size, device)?;
        let [_, _, h, w] = batch.occluded.dims();
        let logits = to_vec(model.forward(batch.occluded))?;
        let clean = to_vec(model.forward(batch.clean))?;
        report.add(&logits, &to_vec(batch.hidden)?, &clean, (w, h))?;
    }
    Ok(report)
}

/// Markdown table of [`DetectorReport`]s, one row per occlusion mode.
pub fn detector_markdown(rows: &[(String, DetectorReport)], samples: usize) -> String {
    let mut md = format!(
        "Occlusion detector, {samples} held-out samples per mode (flagged: logit > {HIDDEN_LOGIT} \
         in a region reaching logit > {SEED_LOGIT})\n\n\
         | mode | IoU | flagged on the intact images | worst intact image | intact images over 1 % |\n\
         |---|---|---|---|---|\n"
    );
    for (mode, r) in rows {
        md += &format!(
            "| {mode} | {:.3} | {:.2} % | {:.2} % | {} of {} |\n",
            r.iou(),
            100.0 * r.clean_flagged_share(),
            100.0 * r.clean_worst,
            r.clean_over_one_percent,
            r.clean_images
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_report_pools_intersection_and_union() {
        let mut r = DetectorReport::default();
        // 2x2 images. Flagged: 0 (a seed) and 1 (faint, beside it); hidden: 1 and 2 →
        // IoU 1/3. Intact image: pixel 3 is faint with no seed in its region: not flagged.
        r.add(
            &[4.5, 0.5, -1.0, -2.0],
            &[0.0, 1.0, 1.0, 0.0],
            &[-1.0, -1.0, -1.0, 0.5],
            (2, 2),
        )
        .unwrap();
        assert_eq!((r.intersection, r.union), (1, 3));
        assert!((r.iou() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((r.clean_flagged, r.clean_pixels, r.clean_images), (0, 4, 1));
        // A second batch adds to the same pools: 2 of 4 right now → 3 / 5; its intact
        // image has a seed and a faint neighbour: 2 of 4 flagged.
        r.add(
            &[5.0, 1.0, -1.0, -1.0],
            &[1.0, 1.0, 0.0, 0.0],
            &[4.5, 0.1, -1.0, -1.0],
            (2, 2),
        )
        .unwrap();
        assert!((r.iou() - 3.0 / 5.0).abs() < 1e-12);
        assert!((r.clean_flagged_share() - 2.0 / 8.0).abs() < 1e-12);
        assert_eq!((r.clean_images, r.clean_over_one_percent), (2, 1));
        assert!((r.clean_worst - 0.5).abs() < 1e-12);
        let md = detector_markdown(&[("rect".into(), r)], 2);
        assert!(
            md.contains("| rect | 0.600 | 25.00 % | 50.00 % | 1 of 2 |"),
            "{md}"
        );
    }

    #[test]
    fn intervals_table_gives_each_row_and_the_paired_differences() {
        // Every sample of a row scores the same: each interval is that value exactly, and
        // the differences are the gaps between rows (A − Telea = 1, B − A = 0.5).
        let row = |name: &str, v: f64| (name.to_string(), Quality::default(), v);
        let rows = [
            row(PEER_ROWS[0], 8.0),
            row(PEER_ROWS[1], 9.0),
            row(PEER_ROWS[2], 10.0),
            row("A", 11.0),
            row("B", 11.5),
        ];
        let report = Stage2Report {
            samples: 4,
            rows: rows.iter().map(|(n, q, _)| (n.clone(), *q)).collect(),
            per_sample: rows.iter().map(|(_, _, v)| vec![*v; 4]).collect(),
        };
        let table = ModeTable {
            modes: vec![("rect".into(), report.clone()), ("text".into(), report)],
        };
        let md = table.intervals_markdown();
        for want in [
            "| Telea (Rust) | [10.00, 10.00] | [10.00, 10.00] | [10.00, 10.00] |",
            "| A − Telea | [1.00, 1.00] | [1.00, 1.00] | [1.00, 1.00] |",
            "| B − Telea | [1.50, 1.50] | [1.50, 1.50] | [1.50, 1.50] |",
            "| B − A | [0.50, 0.50] | [0.50, 0.50] | [0.50, 0.50] |",
        ] {
            assert!(md.contains(want), "{want}\n{md}");
        }
        assert!(!md.contains("| A − A |"), "{md}");
    }

    #[test]
    fn stage1_report_rows_match_their_headers() {
        let mut stats = RegionStats::default();
        stats.add((17, 18), ([0.5, 0.5], [0.5, 0.25]), ([0.5; 3], [0.5; 3]));
        let m = stats.finish();
        let report = Stage1Report {
            samples: 1,
            hidden: m,
            visible: m,
            subject: m,
            pixel_accuracy: 0.5,
        };
        let csv = report.csv();
        let mut lines = csv.lines();
        let columns = lines.next().unwrap().split(',').count();
        assert_eq!(columns, 8);
        let row = lines.next().unwrap();
        assert_eq!(
            row,
            "occluded_subject,1,0.000000,1.000000,0.000000,1.000000,0.125000,100.0000"
        );
        let md = report.markdown();
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 5);
        assert!(table.iter().all(|l| l.matches('|').count() == 9), "{md}");
        assert!(table[2].starts_with(
            "| occluded subject | 1 | 0.000 | 1.000 | 0.000 | 1.000 | 0.1250 | 100.00 |"
        ));
    }

    #[test]
    fn region_metrics_hand_values() {
        let mut s = RegionStats::default();
        // Right part, UV off by (0.1, 0.3), albedo off by 0.1 in one channel.
        s.add(
            (3, 3),
            ([0.5, 0.5], [0.6, 0.2]),
            ([0.2, 0.2, 0.2], [0.3, 0.2, 0.2]),
        );
        // Wrong part, perfect UV and albedo.
        s.add((4, 7), ([0.1, 0.1], [0.1, 0.1]), ([0.0; 3], [0.0; 3]));
        let m = s.finish();
        assert_eq!(m.pixels, 2);
        assert_eq!(m.part_accuracy, 0.5);
        assert_eq!((m.part_accuracy_either_side, m.subject_found), (0.5, 1.0));
        // Left thigh (17) called right thigh (18): wrong, but right up to the side; a
        // missed pixel (background predicted) counts as neither found nor correct.
        s.add((17, 18), ([0.1, 0.1], [0.1, 0.1]), ([0.0; 3], [0.0; 3]));
        s.add((2, 0), ([0.1, 0.1], [0.1, 0.1]), ([0.0; 3], [0.0; 3]));
        let m4 = s.finish();
        assert_eq!(m4.part_accuracy, 0.25);
        assert_eq!(m4.part_accuracy_either_side, 0.5);
        assert_eq!(m4.subject_found, 0.75);
        // Sided pixels found up to the side: the thigh only, on the wrong side.
        assert_eq!(m4.side_right, 0.0);
        s.add((18, 18), ([0.1, 0.1], [0.1, 0.1]), ([0.0; 3], [0.0; 3]));
        assert_eq!(s.finish().side_right, 0.5);
        // Two regions merged give the metrics of all their pixels together.
        let mut other = RegionStats::default();
        other.add((17, 17), ([0.1, 0.1], [0.1, 0.1]), ([0.0; 3], [0.0; 3]));
        let both = s.merged(&other).finish();
        assert_eq!((both.pixels, both.part_accuracy), (6, 0.5));
        assert_eq!(both.side_right, 2.0 / 3.0);
        assert!((m.uv_mae - 0.4 / 4.0).abs() < 1e-6, "{}", m.uv_mae);
        // MSE = 0.01 / 6 → PSNR = 10·log10(600).
        assert!(
            (m.albedo_psnr - 10.0 * 600f64.log10()).abs() < 1e-3,
            "{}",
            m.albedo_psnr
        );
        assert_eq!(psnr(0.0), 100.0);
        assert!((psnr(0.01) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn planes_from_texture_tensor() {
        // One 1x1 sample: part 12, U 1, V 0, albedo (1, 0, 0.2).
        let t = [0.5, 1.0, 0.0, 1.0, 0.0, 0.2];
        let (iuv, albedo) = texture_to_planes(&t, 1);
        assert_eq!((iuv.part[0], iuv.u[0], iuv.v[0]), (12, 65535, 0));
        assert_eq!(albedo.data, vec![255, 0, 51]);
    }
}

/// A trained G2 with the frozen G1 it was trained with, loaded from a stage-2 run folder.
pub struct TrainedChain {
    /// Row label in reports (the run folder's name and its condition).
    pub label: String,
    pub condition: Condition,
    pub g1: Stage1Net,
    pub g2: Stage2Net,
}

impl TrainedChain {
    /// Load a stage-2 run folder and the G1 run its configuration names.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EvalError> {
        let config = load_run(dir, Network::Stage2)?;
        let g2 = load_model(config.stage2.init(device), &dir.join(MODEL_FILE))?;
        let g1_dir = config.stage1_run.clone().ok_or_else(|| {
            EvalError::Read(format!("{}: run.json names no stage1_run", dir.display()))
        })?;
        let g1 = load_stage1(&g1_dir, device)?;
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            label: format!("G2 {name} ({})", config.stage2.condition.name()),
            condition: config.stage2.condition,
            g1,
            g2,
        })
    }

    /// Restore `batch`'s occluded images; also returns G1's texture map. G1 and G2 each
    /// read the image in the hole-aware form they were trained with.
    pub fn restore(&self, batch: &SampleBatch) -> Result<(Stage2Output, Tensor<4>), EvalError> {
        let g1 = self.g1.forward(batch.hole_input(self.g1.hole())?);
        let texture = g1.texture_map();
        let image = batch.hole_input(self.g2.hole())?;
        let input = stage2_input(
            image,
            condition_tensor(self.condition, &g1, Some(&batch.texture)),
        );
        Ok((self.g2.forward(input), texture))
    }
}

/// What `eval stage2` scores: a stage-2 run folder (burn, the weights as trained) or an
/// exported model folder (tract through the device's own [`Pipeline`], the frames a
/// camera would ship, int8 included).
pub enum Candidate {
    Run(Box<TrainedChain>),
    Folder {
        label: String,
        pipeline: Box<std::cell::RefCell<Pipeline>>,
    },
}

/// One candidate's outputs on a batch, each `[B, C, H, W]` flattened and normalised.
struct Outputs {
    restored: Vec<f32>,
    texture: Vec<f32>,
    fg_alpha: Vec<f32>,
    background: Vec<f32>,
}

impl Candidate {
    /// Whether `dir` is an exported model folder (it holds `manifest.bin`), not a run.
    pub fn is_model_folder(dir: &Path) -> bool {
        dir.join(MANIFEST_BIN).is_file()
    }

    /// A model folder or else a stage-2 run folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EvalError> {
        if !Self::is_model_folder(dir) {
            return Ok(Self::Run(Box::new(TrainedChain::load(dir, device)?)));
        }
        let model = Model::load(dir).map_err(|e| EvalError::Device(one_line(&e)))?;
        let label = format!(
            "{} ({}, {}, tract)",
            dir.display(),
            model.manifest.condition.name(),
            model.manifest.quantisation.name()
        );
        let pipeline =
            Pipeline::new(Arc::new(model)).map_err(|e| EvalError::Device(one_line(&e)))?;
        Ok(Self::Folder {
            label,
            pipeline: Box::new(pipeline.into()),
        })
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Run(r) => &r.label,
            Self::Folder { label, .. } => label,
        }
    }

    /// The image side this candidate restores at.
    pub fn size(&self) -> Option<usize> {
        match self {
            Self::Run(_) => None,
            Self::Folder { pipeline, .. } => Some(pipeline.borrow().model().size().0),
        }
    }

    /// Restore the batch. A model folder restores sample by sample from the occluded
    /// frame as bytes and the hidden region as its mask, exactly as on the camera; it
    /// has no foreground/background planes to show (they come back as zeros).
    fn outputs(
        &self,
        batch: &SampleBatch,
        occluded: &[f32],
        hidden: &[f32],
        size: usize,
    ) -> Result<Outputs, EvalError> {
        match self {
            Self::Run(r) => {
                let (out, texture) = r.restore(batch)?;
                let fg_alpha = out.foreground.clone().mul(out.alpha.clone());
                Ok(Outputs {
                    restored: to_vec(out.restored)?,
                    texture: to_vec(texture)?,
                    fg_alpha: to_vec(fg_alpha)?,
                    background: to_vec(out.background)?,
                })
            }
            Self::Folder { pipeline, .. } => {
                let mut pipeline = pipeline.borrow_mut();
                let n = size * size;
                let count = hidden.len() / n;
                let norm = pipeline.model().manifest.normalisation;
                let mut out = Outputs {
                    restored: Vec::with_capacity(count * 3 * n),
                    texture: vec![0.0; count * 6 * n],
                    fg_alpha: vec![0.0; count * 3 * n],
                    background: vec![0.0; count * 3 * n],
                };
                for b in 0..count {
                    let frame = to_image(&occluded[b * 3 * n..(b + 1) * 3 * n], size)?;
                    let mask = Mask::from_fn(size, size, |i| hidden[b * n + i] > 0.5);
                    pipeline
                        .restore(&frame, Some(&mask))
                        .map_err(|e| EvalError::Device(one_line(&e)))?;
                    out.restored.extend(pipeline.output().to_chw(&norm));
                    if let Some(t) = pipeline.texture() {
                        out.texture[b * 6 * n..(b + 1) * 6 * n].copy_from_slice(t);
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Restoration quality of each method (the occluded input first, then each G2).
#[derive(Clone, Debug, Default)]
pub struct Stage2Report {
    pub samples: usize,
    pub rows: Vec<(String, Quality)>,
    /// Per row, each sample's hidden-pixel PSNR (same samples, same order in every row).
    pub per_sample: Vec<Vec<f64>>,
}

impl Stage2Report {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "Restoration on {} held-out samples (PSNR in dB, 0..1 scale; \"occluded\" = the hidden pixels only)\n\n\
             | method | PSNR occluded | SSIM occluded | PSNR image | SSIM image |\n|---|---|---|---|---|\n",
            self.samples
        );
        for (name, q) in &self.rows {
            let _ = writeln!(
                s,
                "| {name} | {:.2} | {:.4} | {:.2} | {:.4} |",
                q.region_psnr, q.region_ssim, q.psnr, q.ssim
            );
        }
        s
    }

    pub fn csv(&self) -> String {
        let mut s = String::from("method,psnr_occluded,ssim_occluded,psnr_image,ssim_image\n");
        for (name, q) in &self.rows {
            let _ = writeln!(
                s,
                "{},{:.4},{:.5},{:.4},{:.5}",
                name.replace(',', ";"),
                q.region_psnr,
                q.region_ssim,
                q.psnr,
                q.ssim
            );
        }
        s
    }
}

/// [`Stage2Report`]s of several occlusion modes on the same methods, with a summary.
#[derive(Clone, Debug, Default)]
pub struct ModeTable {
    /// `(mode name, report)`, every report with the same rows in the same order.
    pub modes: Vec<(String, Stage2Report)>,
}

impl ModeTable {
    /// Summary first (hidden-pixel PSNR per mode, then the mean over modes, and the mean
    /// hidden SSIM), then each mode's full table.
    pub fn markdown(&self) -> String {
        let Some((_, first)) = self.modes.first() else {
            return String::new();
        };
        let mut s = format!(
            "Hidden-pixel PSNR (dB) per occlusion mode, {} held-out samples per mode; learned models composited (visible pixels are the input's)\n\n| method |",
            first.samples
        );
        for (mode, _) in &self.modes {
            let _ = write!(s, " {mode} |");
        }
        s.push_str(" mean PSNR | mean SSIM |\n|---|");
        for _ in 0..self.modes.len() + 2 {
            s.push_str("---|");
        }
        s.push('\n');
        for (row, (name, _)) in first.rows.iter().enumerate() {
            let _ = write!(s, "| {name} |");
            for (_, r) in &self.modes {
                let _ = write!(s, " {:.2} |", r.rows[row].1.region_psnr);
            }
            let (psnr, ssim) = self.mean(row);
            let _ = writeln!(s, " **{psnr:.2}** | {ssim:.4} |");
        }
        let _ = write!(s, "\n{}", self.intervals_markdown());
        for (mode, r) in &self.modes {
            let _ = write!(s, "\n### {mode}\n\n{}", r.markdown());
        }
        s
    }

    /// Row `row`'s per-sample hidden PSNR in each mode, minus row `minus`'s when given
    /// (paired: the same samples).
    fn groups(&self, row: usize, minus: Option<usize>) -> Vec<Vec<f64>> {
        self.modes
            .iter()
            .map(|(_, r)| match minus {
                Some(m) => quality::paired_differences(&r.per_sample[row], &r.per_sample[m]),
                None => r.per_sample[row].clone(),
            })
            .collect()
    }

    /// A Markdown table of 95 % bootstrap intervals: each row's hidden PSNR, per mode and
    /// averaged over modes, and its paired difference from Telea's (and, with two or more
    /// learned rows, from the first learned one) on the same samples.
    pub fn intervals_markdown(&self) -> String {
        let Some((_, first)) = self.modes.first() else {
            return String::new();
        };
        let ci = |groups: &[Vec<f64>]| {
            quality::bootstrap_ci(
                groups,
                quality::BOOTSTRAP_RESAMPLES,
                quality::BOOTSTRAP_SEED,
            )
            .map_or_else(|| "–".to_string(), |(lo, hi)| format!("[{lo:.2}, {hi:.2}]"))
        };
        let telea = first.rows.iter().position(|(n, _)| n == PEER_ROWS[2]);
        let learned = PEER_ROWS.len()..first.rows.len();
        let mut refs: Vec<(String, usize)> = telea
            .map(|t| ("Telea".to_string(), t))
            .into_iter()
            .collect();
        if learned.len() >= 2 {
            refs.push((first.rows[learned.start].0.clone(), learned.start));
        }
        let mut s = format!(
            "95 % bootstrap intervals of the hidden-pixel PSNR (dB; {} resamples over the samples, seeded), and of paired differences on the same samples\n\n| method |",
            quality::BOOTSTRAP_RESAMPLES
        );
        for (mode, _) in &self.modes {
            let _ = write!(s, " {mode} |");
        }
        s.push_str(" mean |\n|---|");
        for _ in 0..=self.modes.len() {
            s.push_str("---|");
        }
        s.push('\n');
        let line = |s: &mut String, name: &str, row: usize, minus: Option<usize>| {
            let groups = self.groups(row, minus);
            let _ = write!(s, "| {name} |");
            for g in &groups {
                let _ = write!(s, " {} |", ci(std::slice::from_ref(g)));
            }
            let _ = writeln!(s, " {} |", ci(&groups));
        };
        for (row, (name, _)) in first.rows.iter().enumerate() {
            line(&mut s, name, row, None);
        }
        for (ref_name, r) in &refs {
            for row in learned.clone().filter(|&k| k != *r) {
                line(
                    &mut s,
                    &format!("{} − {ref_name}", first.rows[row].0),
                    row,
                    Some(*r),
                );
            }
        }
        s
    }

    /// Mean over modes of row `row`'s hidden-pixel PSNR and SSIM.
    pub fn mean(&self, row: usize) -> (f64, f64) {
        let k = self.modes.len().max(1) as f64;
        let sum = |f: &dyn Fn(&Quality) -> f64| {
            self.modes
                .iter()
                .map(|(_, r)| f(&r.rows[row].1))
                .sum::<f64>()
                / k
        };
        (sum(&|q| q.region_psnr), sum(&|q| q.region_ssim))
    }

    /// One line per mode and method.
    pub fn csv(&self) -> String {
        let mut s = String::from("mode,method,psnr_occluded,ssim_occluded,psnr_image,ssim_image\n");
        for (mode, r) in &self.modes {
            for line in r.csv().lines().skip(1) {
                let _ = writeln!(s, "{mode},{line}");
            }
        }
        s
    }
}

/// Normalised `[3, H, W]` values ([-1, 1]) to the 0..1 scale of the metrics.
fn unit(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| (x * 0.5 + 0.5).clamp(0.0, 1.0)).collect()
}

fn to_image(v: &[f32], size: usize) -> Result<ImageU8, EvalError> {
    ImageU8::from_chw(size, size, v, &Normalisation::default())
        .map_err(|e| EvalError::Read(e.to_string()))
}

/// Rows every restoration table starts with: the peers each learned model must beat.
pub const PEER_ROWS: [&str; 3] = ["occluded input", "ring-mean fill", "Telea (Rust)"];

/// Width in pixels of the visible ring whose mean colour the ring-mean peer fills with.
pub const RING: usize = 3;

/// `restored` with every pixel outside `region` taken from `input` (both `[3, H, W]`):
/// the composite the device ships, so no visible pixel is scored as changed.
pub fn paste_hidden(restored: &[f32], input: &[f32], region: &[bool]) -> Vec<f32> {
    let n = region.len();
    restored
        .iter()
        .zip(input)
        .enumerate()
        .map(|(i, (&r, &x))| if region[i % n] { r } else { x })
        .collect()
}

/// Evaluate the peers ([`PEER_ROWS`]: the occluded input, the ring-mean fill and Telea's
/// inpainting, all from the shared crate) and each restorer on `batches` batches of
/// `loader` (built [`with_telea`](Loader::with_telea)): PSNR and SSIM over the image and
/// over the occluded pixels. Every restorer's output is composited (visible pixels are
/// the input's), as on the device. `grid_rows` samples of the first restorer come back as
/// picture rows: occluded, texture map, foreground (times alpha), background, Telea,
/// restored, truth.
pub fn eval_stage2(
    restorers: &[Candidate],
    loader: &Loader,
    batches: usize,
    batch_size: usize,
    grid_rows: usize,
    device: &Device,
) -> Result<(Stage2Report, Vec<Vec<ImageU8>>), EvalError> {
    let size = loader.source.size();
    let n = size * size;
    let peers = PEER_ROWS.len();
    let mut stats = vec![QualityStats::default(); restorers.len() + peers];
    let mut rows = Vec::new();
    let norm = Normalisation::default();
    for step in 0..batches {
        let batch = loader.batch(step, batch_size, device)?;
        let clean = to_vec(batch.clean.clone())?;
        let occluded = to_vec(batch.occluded.clone())?;
        let hidden = to_vec(batch.hidden.clone())?;
        let telea = to_vec(batch.telea.clone().ok_or(DataError::NoTelea)?)?;
        let mut outputs = Vec::with_capacity(restorers.len());
        for r in restorers {
            let o = r.outputs(&batch, &occluded, &hidden, size)?;
            outputs.push((o.restored, o.texture, o.fg_alpha, o.background));
        }
        for b in 0..batch_size {
            let img = |v: &[f32]| v[b * 3 * n..(b + 1) * 3 * n].to_vec();
            let truth = unit(&img(&clean));
            let region: Vec<bool> = hidden[b * n..(b + 1) * n]
                .iter()
                .map(|&h| h > 0.5)
                .collect();
            let input = img(&occluded);
            let mask = Mask::from_fn(size, size, |i| region[i]);
            let ring = inpaint::ring_mean(&to_image(&input, size)?, &mask, RING)
                .map_err(|e| EvalError::Read(e.to_string()))?
                .to_chw(&norm);
            stats[0].add(&unit(&input), &truth, size, size, &region);
            stats[1].add(&unit(&ring), &truth, size, size, &region);
            stats[2].add(&unit(&img(&telea)), &truth, size, size, &region);
            let mut composited = Vec::with_capacity(outputs.len());
            for (k, (restored, ..)) in outputs.iter().enumerate() {
                let c = paste_hidden(&img(restored), &input, &region);
                stats[k + peers].add(&unit(&c), &truth, size, size, &region);
                composited.push(c);
            }
            if let (true, Some((_, texture, fg, bg)), Some(restored)) =
                (rows.len() < grid_rows, outputs.first(), composited.first())
            {
                let (iuv, _) = texture_to_planes(&texture[b * 6 * n..(b + 1) * 6 * n], size);
                rows.push(vec![
                    to_image(&input, size)?,
                    crate::viz::sheet::iuv_rgb(&iuv),
                    to_image(&img(fg), size)?,
                    to_image(&img(bg), size)?,
                    to_image(&img(&telea), size)?,
                    to_image(restored, size)?,
                    to_image(&img(&clean), size)?,
                ]);
            }
        }
    }
    let mut report = Stage2Report {
        samples: batches * batch_size,
        rows: PEER_ROWS
            .iter()
            .zip(&stats)
            .map(|(name, s)| (name.to_string(), s.finish()))
            .collect(),
        per_sample: stats.iter().map(|s| s.region_psnrs.clone()).collect(),
    };
    for (r, s) in restorers.iter().zip(&stats[peers..]) {
        report.rows.push((r.label().to_string(), s.finish()));
    }
    Ok((report, rows))
}
