//! Pipeline benchmark: per-stage latency percentiles, throughput, allocations per frame and
//! peak memory for one model folder.
//!
//! The `bench` command runs each folder in a child process pinned to one CPU, so peak RSS
//! (`VmHWM`) belongs to that model alone and the f32/int8 rows are comparable side by side.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use unveil_shared::rng::mix;
use unveil_shared::{ImageU8, Mask};

use crate::model::{Model, ModelError};
use crate::pipeline::{FrameReport, Pipeline, PipelineError, STAGES};
use crate::region::RegionRestorer;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("benchmark needs at least one frame")]
    NoFrames,
    #[error("cannot parse benchmark result line {0:?}")]
    Parse(String),
}

/// One model folder's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    pub name: String,
    /// `f32` or `int8`.
    pub format: String,
    /// The frame size restored (the model's, or a native frame's).
    pub width: u16,
    pub height: u16,
    pub frames: usize,
    pub fps: f64,
    /// Per stage, then the whole frame: (p50, p99) in microseconds.
    pub p50_us: [u32; 6],
    pub p99_us: [u32; 6],
    /// Mean heap allocations per frame, per stage (needs the counting allocator).
    pub allocs: [f64; 5],
    /// Peak resident set (`VmHWM`) of the process, KiB.
    pub peak_rss_kib: u64,
    /// Blind mode's extra cost: (p50, p99) microseconds of [`Pipeline::detect`] on the
    /// same frames, timed apart from the restorations; zeros for a folder without a
    /// detector.
    pub detect_us: [u32; 2],
}

/// A deterministic test frame: smooth gradients plus noise, so nothing is constant.
pub fn test_frame(width: usize, height: usize, seed: u64) -> ImageU8 {
    let mut img = ImageU8::new(width, height, 3);
    for (i, px) in img.data.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % width, i / width);
        let noise = mix(seed ^ i as u64);
        px[0] = ((x * 255 / width.max(1)) as u8).wrapping_add((noise & 31) as u8);
        px[1] = ((y * 255 / height.max(1)) as u8).wrapping_add((noise >> 8 & 31) as u8);
        px[2] = (noise >> 16) as u8;
    }
    img
}

/// The hole every bench frame has: a centred rectangle of a quarter of the width and
/// three fifths of the height (15 % of the frame), so a hole-aware model pays for its
/// pre-fill as it would on a camera.
pub fn test_mask(width: usize, height: usize) -> Mask {
    Mask::from_fn(width, height, |i| {
        let (x, y) = (i % width, i / width);
        (3 * width / 8..5 * width / 8).contains(&x) && (height / 5..4 * height / 5).contains(&y)
    })
}

/// The hole of a native-resolution bench frame: one centred square covering `percent` of
/// the frame (the camera case: a hand or a sign in an otherwise visible frame).
pub fn square_hole(width: usize, height: usize, percent: f64) -> Mask {
    let side = ((width * height) as f64 * percent / 100.0).sqrt().round() as usize;
    let side = side.clamp(1, width.min(height));
    let (x0, y0) = ((width - side) / 2, (height - side) / 2);
    Mask::from_fn(width, height, |i| {
        let (x, y) = (i % width, i / width);
        (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y)
    })
}

/// Share of a native bench frame its hole covers, percent.
pub const FRAME_HOLE_PERCENT: f64 = 5.0;

/// Restore `frames` frames (after `warmup` untimed ones) with the folder at `dir`: at the
/// model's size with [`test_mask`], or at `frame` = (width, height) through the
/// [`RegionRestorer`] with one [`square_hole`] of [`FRAME_HOLE_PERCENT`].
pub fn run(
    dir: &Path,
    frames: usize,
    warmup: usize,
    frame: Option<(usize, usize)>,
) -> Result<BenchResult, BenchError> {
    if frames == 0 {
        return Err(BenchError::NoFrames);
    }
    let model = Arc::new(Model::load(dir)?);
    let (w, h) = frame.unwrap_or(model.size());
    let inputs: Vec<ImageU8> = (0..8).map(|s| test_frame(w, h, s)).collect();
    let mask = match frame {
        Some(_) => square_hole(w, h, FRAME_HOLE_PERCENT),
        None => test_mask(w, h),
    };
    let mut pipeline = Pipeline::new(model.clone())?;
    let mut regions = RegionRestorer::new();
    let mut one = |i: usize| -> Result<FrameReport, BenchError> {
        let input = &inputs[i % inputs.len()];
        Ok(match frame {
            Some(_) => {
                regions.restore(&mut pipeline, input, &mask)?;
                *regions.report()
            }
            None => pipeline.restore(input, Some(&mask))?,
        })
    };
    for i in 0..warmup {
        one(i)?;
    }
    let mut reports = vec![FrameReport::default(); frames];
    let started = Instant::now();
    for (i, report) in reports.iter_mut().enumerate() {
        *report = one(i)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut detect_us = [0; 2];
    if pipeline.can_detect() {
        let mut found = Mask::default();
        for input in inputs.iter().take(warmup) {
            pipeline.detect(input, &mut found)?;
        }
        let mut column = Vec::with_capacity(frames);
        for i in 0..frames {
            let at = Instant::now();
            pipeline.detect(&inputs[i % inputs.len()], &mut found)?;
            column.push(u32::try_from(at.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
        detect_us = p50_p99(&mut column);
    }

    let mut p50_us = [0; 6];
    let mut p99_us = [0; 6];
    let mut column = vec![0u32; frames];
    for stage in 0..=STAGES.len() {
        for (c, r) in column.iter_mut().zip(&reports) {
            *c = if stage < STAGES.len() {
                r.micros[stage]
            } else {
                r.total_micros()
            };
        }
        [p50_us[stage], p99_us[stage]] = p50_p99(&mut column);
    }
    let mut allocs = [0.0; 5];
    for (stage, a) in allocs.iter_mut().enumerate() {
        *a = reports
            .iter()
            .map(|r| r.allocations[stage] as f64)
            .sum::<f64>()
            / frames as f64;
    }
    let format = model.manifest.quantisation.name();
    Ok(BenchResult {
        name: model.manifest.name.clone(),
        format: format.into(),
        width: w as u16,
        height: h as u16,
        frames,
        fps: frames as f64 / elapsed.max(f64::MIN_POSITIVE),
        p50_us,
        p99_us,
        allocs,
        peak_rss_kib: peak_rss_kib().unwrap_or(0),
        detect_us,
    })
}

/// The 50th and 99th percentiles (nearest rank) of `column`, which this sorts.
fn p50_p99(column: &mut [u32]) -> [u32; 2] {
    column.sort_unstable();
    [nearest_rank(column, 50.0), nearest_rank(column, 99.0)]
}

fn nearest_rank(sorted: &[u32], p: f64) -> u32 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(0)
}

/// Peak resident set size of this process in KiB (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Restrict this process to one CPU (the lowest it may use), for "one core" numbers.
pub fn pin_to_one_cpu() -> std::io::Result<usize> {
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
    let allowed = sched_getaffinity(None)?;
    let cpu = (0..CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap_or(0);
    let mut one = CpuSet::new();
    one.set(cpu);
    sched_setaffinity(None, &one)?;
    Ok(cpu)
}

impl BenchResult {
    /// One `key=value` line, for handing results from the child process to the parent.
    pub fn to_line(&self) -> String {
        let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let allocs = self
            .allocs
            .iter()
            .map(|a| format!("{a:.2}"))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "name={} format={} size={}x{} frames={} fps={:.3} p50={} p99={} allocs={} rss_kib={} detect={}",
            self.name.replace(char::is_whitespace, "_"),
            self.format,
            self.width,
            self.height,
            self.frames,
            self.fps,
            join(&self.p50_us),
            join(&self.p99_us),
            allocs,
            self.peak_rss_kib,
            join(&self.detect_us)
        )
    }

    /// Inverse of [`to_line`](Self::to_line).
    pub fn from_line(line: &str) -> Result<Self, BenchError> {
        let bad = || BenchError::Parse(line.to_string());
        let get = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(bad)
        };
        fn list<T: std::str::FromStr + Copy + Default, const N: usize>(s: &str) -> Option<[T; N]> {
            let mut out = [T::default(); N];
            let mut parts = s.split(',');
            for slot in &mut out {
                *slot = parts.next()?.parse().ok()?;
            }
            parts.next().is_none().then_some(out)
        }
        let (w, h) = get("size")?.split_once('x').ok_or_else(bad)?;
        Ok(Self {
            name: get("name")?.to_string(),
            format: get("format")?.to_string(),
            width: w.parse().map_err(|_| bad())?,
            height: h.parse().map_err(|_| bad())?,
            frames: get("frames")?.parse().map_err(|_| bad())?,
            fps: get("fps")?.parse().map_err(|_| bad())?,
            p50_us: list(get("p50")?).ok_or_else(bad)?,
            p99_us: list(get("p99")?).ok_or_else(bad)?,
            allocs: list(get("allocs")?).ok_or_else(bad)?,
            peak_rss_kib: get("rss_kib")?.parse().map_err(|_| bad())?,
            detect_us: list(get("detect")?).ok_or_else(bad)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_round_trips() {
        let r = BenchResult {
            name: "default model".into(),
            format: "int8".into(),
            width: 128,
            height: 96,
            frames: 200,
            fps: 41.25,
            p50_us: [1, 2, 3, 4, 5, 15],
            p99_us: [6, 7, 8, 9, 10, 40],
            allocs: [0.0, 12.5, 0.0, 30.0, 0.0],
            peak_rss_kib: 40_000,
            detect_us: [2500, 3100],
        };
        let back = BenchResult::from_line(&r.to_line()).expect("parses");
        assert_eq!(back.name, "default_model");
        assert_eq!(back.detect_us, [2500, 3100]);
        assert_eq!(back.p99_us, r.p99_us);
        assert_eq!(back.allocs, r.allocs);
        assert_eq!((back.width, back.height, back.fps), (128, 96, 41.25));
        assert!(BenchResult::from_line("name=x fps=1").is_err());
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        let kib = peak_rss_kib().expect("Linux /proc");
        assert!(kib > 100, "{kib} KiB");
    }
}
