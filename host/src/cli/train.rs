//! `unveil train`: one network or all of them, into run folders.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::grad_clipping::GradientClippingConfig;
use clap::Args;
use unveil_host::data::SampleSource;
use unveil_host::nets::stage2::{Condition, HoleInput};
use unveil_host::train::harness::{self, Network, Preset, Progress, RunConfig};
use unveil_host::train::{BackendKind, LrSchedule, TrainConfig};
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};

use super::{count_in, fraction, learning_rate, positive_f32, MAX_BATCH};

/// `--schedule`: see [`LrSchedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ScheduleKind {
    Constant,
    Cosine,
}

/// What `unveil train` trains: one network, or all of them in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrainTarget {
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
                .map_err(|e: String| e.replace("or occlusion)", "occlusion or all)")),
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct TrainArgs {
    /// Which network: extractor, silhouette, stage1, stage2, occlusion (the blind mode's
    /// occlusion detector), or all (extractor → silhouette → stage1 → stage2 → occlusion
    /// into runs/<name>, skipping finished runs, resuming unfinished ones).
    pub(crate) network: TrainTarget,
    /// Run folder (default: runs/<network>; with `all`, the parent of the five run folders).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Size preset: tiny (64x64, minutes on a CPU) or default (128x128).
    #[arg(long, default_value = "default")]
    pub(crate) preset: Preset,
    /// Data-set folder from `unveil synth`/`unveil label`; default: render samples on the fly.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// Number of distinct samples rendered on the fly when no --data is given.
    #[arg(long, default_value_t = 8192, value_parser = count_in(1, 10_000_000))]
    pub(crate) samples: usize,
    /// Total training steps (default: 300 for tiny, 3000 for default). With --resume, a
    /// new count also moves the end of a cosine schedule that ended at the old count.
    #[arg(long, value_parser = count_in(1, 100_000_000))]
    pub(crate) steps: Option<usize>,
    /// Samples per step (16: two parts of 8, one per core; see --shards).
    #[arg(long, default_value_t = 16, value_parser = count_in(1, MAX_BATCH))]
    pub(crate) batch: usize,
    /// Adam learning rate (default: 2e-3 for silhouette; 5e-4 for extractor and stage1,
    /// which diverge at 2e-3 at the default preset; 1e-3 for stage2).
    #[arg(long, value_parser = learning_rate)]
    pub(crate) lr: Option<f64>,
    /// Learning-rate schedule: cosine (linear warm-up, then a half cosine from --lr down to
    /// --lr-floor·lr at the last step) or constant. A resume with a new --steps moves the
    /// cosine's end to it.
    #[arg(long, default_value = "cosine")]
    pub(crate) schedule: ScheduleKind,
    /// Warm-up steps of the cosine schedule (default: a tenth of its length, at most 100).
    #[arg(long)]
    pub(crate) warmup: Option<usize>,
    /// Step at which the cosine schedule reaches its floor (default: --steps). A run whose
    /// --steps ends before it stops on a still-high rate, and a resume with a new --steps
    /// leaves it where it is.
    #[arg(long, value_name = "STEP", value_parser = count_in(1, 100_000_000))]
    pub(crate) horizon: Option<usize>,
    /// Final rate of the cosine schedule, as a fraction of --lr.
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    pub(crate) lr_floor: f64,
    /// Clip each parameter tensor's gradient to this L2 norm before Adam sees it, which
    /// keeps one outlier batch from blowing up the moment estimates (default: off).
    #[arg(long, value_name = "NORM", value_parser = positive_f32)]
    pub(crate) clip_norm: Option<f32>,
    /// Seed of weights, data order and occlusions.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 100, value_parser = count_in(1, 100_000_000))]
    pub(crate) checkpoint_every: usize,
    /// Occlusion mode of the training inputs (see README).
    #[arg(long, default_value = "mixed")]
    pub(crate) occlusion: OcclusionMode,
    /// Stage 2: what G2 is conditioned on: texture (the method), silhouette or none
    /// (ablations), or truth (the oracle: the renderer's exact texture map instead of
    /// G1's estimate; it bounds what a perfect G1 would give, and cannot be exported).
    #[arg(long, default_value = "texture")]
    pub(crate) condition: Condition,
    /// Stage 1 and 2: how G1 and G2 are told where the hole is: telea (hidden pixels
    /// pre-filled by Telea's inpainting, plus a hole plane), zeroed (hidden pixels 0,
    /// plus a hole plane) or absent (the patent-literal occluded image alone).
    #[arg(long, default_value = "telea")]
    pub(crate) hole: HoleInput,
    /// Stage 2: run folder of the trained G1 (frozen). Default: runs/stage1.
    #[arg(long, value_name = "DIR")]
    pub(crate) stage1: Option<PathBuf>,
    /// Stage 2: run folder of the trained silhouette network S (frozen). Default: runs/silhouette.
    #[arg(long, value_name = "DIR")]
    pub(crate) silhouette: Option<PathBuf>,
    /// Stage 1 and extractor: how many times a subject pixel counts in the part
    /// cross-entropy (background pixels count once). Default 4.
    #[arg(long)]
    pub(crate) subject_weight: Option<f32>,
    /// Channels of the trained network's first level (each level doubles them). Default:
    /// the preset's (default preset: 16 for silhouette, 8 for the others). Wider learns
    /// more per step but costs about width² per frame on the device.
    #[arg(long, value_name = "N")]
    pub(crate) width: Option<usize>,
    /// Stage 1: run the U-Net at 1/N of the image's resolution (1 or 2; default 1): the
    /// image is averaged over NxN blocks and the texture map repeated back, which makes
    /// G1 N² times cheaper on the device and in training.
    #[arg(long, value_name = "N", value_parser = count_in(1, 2))]
    pub(crate) downscale: Option<usize>,
    /// Stage 2 loss weights (0 switches a term off): L2 reconstruction, L3 adversarial,
    /// L4 silhouette features, L5 background patches.
    #[arg(long)]
    pub(crate) w_rec: Option<f32>,
    #[arg(long)]
    pub(crate) w_adv: Option<f32>,
    #[arg(long)]
    pub(crate) w_sil: Option<f32>,
    #[arg(long)]
    pub(crate) w_patch: Option<f32>,
    /// Stage 2, beyond the method: weight of an extra L2 term over the occluded pixels
    /// alone (default 0, off).
    #[arg(long)]
    pub(crate) w_hidden: Option<f32>,
    /// Stage 2, beyond the method: weight of a term pulling the alpha matte towards the
    /// subject's true mask, so the foreground path carries the subject (default 0, off).
    #[arg(long)]
    pub(crate) w_matte: Option<f32>,
    /// Stage 2, beyond the method: weight of a term scoring each image's occluded pixels
    /// on a log scale, as the reported PSNR does, so thin holes (text) count as much as
    /// large ones (default 0, off).
    #[arg(long)]
    pub(crate) w_hidden_log: Option<f32>,
    /// Occlusion detector, beyond plain BCE: weight of a hard-negative term, the BCE of
    /// the 1 % most confident false alarms of each intact image in the batch, so the rare
    /// patterned shirt read as an occluder weighs as much as the easy pixels (default: off).
    #[arg(long, value_name = "WEIGHT", value_parser = positive_f32)]
    pub(crate) hard_negatives: Option<f32>,
    /// Silhouette, occlusion, stage1 or stage2: start from the trained weights of the run
    /// in DIR (a fine-tune under a new loss, e.g. --hard-negatives or --w-hidden-log, or a
    /// longer cycle at a fresh rate; Adam and the schedule start afresh). Its layers must
    /// match this run's.
    #[arg(long, value_name = "DIR")]
    pub(crate) init_from: Option<PathBuf>,
    /// Data parallel: cut each batch into this many parts, each trained on its own
    /// thread, their gradients summed, which keeps every core busy through a step's
    /// serial stretches. Default: one part per 8 samples. Keep parts at 5 samples or
    /// more: burn's CPU backend computes the weight gradients of a smaller part on a slow
    /// direct path. The parts shape the arithmetic, so the same --batch, --shards and
    /// seed give the same weights at any thread count; a resumed run keeps its own.
    #[arg(long, value_parser = count_in(1, 64))]
    pub(crate) shards: Option<usize>,
    /// Compute backend: flex (CPU, default), ndarray (CPU), wgpu or cuda (GPU builds).
    #[arg(long, default_value = "flex")]
    pub(crate) backend: BackendKind,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Stop this session at step N with a checkpoint, keeping the schedule of the full
    /// --steps: a later --resume continues as if uninterrupted (one network only).
    #[arg(long, value_name = "N", value_parser = count_in(1, 100_000_000))]
    pub(crate) stop_at: Option<usize>,
}

pub(crate) fn cmd_train(args: &TrainArgs) -> Result<()> {
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
            anyhow::ensure!(
                args.stop_at.is_none(),
                "--stop-at cuts one network's run; train the networks one by one to use it"
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
    args.steps.unwrap_or(args.preset.default_steps())
}

/// The learning-rate schedule `args` ask for over a run of `steps` steps.
fn schedule(args: &TrainArgs, steps: usize) -> LrSchedule {
    match args.schedule {
        ScheduleKind::Constant => LrSchedule::Constant,
        ScheduleKind::Cosine => {
            LrSchedule::cosine(args.horizon.unwrap_or(steps), args.warmup, args.lr_floor)
        }
    }
}

/// Train `network` into `out`; stage 2 finds G1 and S under `root` unless given.
pub(crate) fn train_one(
    args: &TrainArgs,
    network: Network,
    out: &Path,
    root: &Path,
    resume: bool,
) -> Result<()> {
    let size = args.preset.image_size();
    let source =
        SampleSource::folder_or_generated(args.data.as_deref(), size, args.seed, args.samples)?;
    let config = run_config(args, network, out, root, resume)?;
    let steps = config.steps;
    let start = Instant::now();
    let outcome = harness::run(
        &config,
        out,
        source,
        args.backend,
        resume,
        args.stop_at,
        Progress::Bar,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let done = outcome.rows.len();
    // A resumed run trains at its saved batch size, whatever --batch says.
    let batch = harness::load_run_config(out).map_or(args.batch, |c| c.train.batch_size);
    println!(
        "{}: step {} of {steps} in {} ({done} steps this run, {:.2} samples/s); metrics in {}",
        network.name(),
        outcome.step,
        out.display(),
        (done * batch) as f64 / secs.max(1e-9),
        out.join(harness::METRICS_FILE).display()
    );
    Ok(())
}

/// Samples per data-parallel part below which burn's CPU convolution backward slows
/// down: the weight gradient is a convolution over the batch axis, and flex takes its
/// direct small-channel path for 4 channels or fewer.
const MIN_PART: usize = 5;

/// `--shards` left out: one part per 8 samples (16 → 2, one per core here).
fn default_shards(batch: usize) -> usize {
    (batch / 8).max(1)
}

/// The run configuration `args` ask for (what a new run writes to its run.json; a resume
/// keeps the saved one). Kept apart from the training so a test can check that the
/// recipe in models/regenerate.sh gives the committed run.json files.
pub(crate) fn run_config(
    args: &TrainArgs,
    network: Network,
    out: &Path,
    root: &Path,
    resume: bool,
) -> Result<RunConfig> {
    let size = args.preset.image_size();
    let data = match &args.data {
        Some(dir) => dir.display().to_string(),
        None => format!(
            "generated: {} samples, seed {}, {size}x{size}",
            args.samples, args.seed
        ),
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
    let shards = args.shards.unwrap_or(default_shards(args.batch));
    anyhow::ensure!(
        shards <= args.batch,
        "--shards {shards} exceeds --batch {}: each part needs a sample",
        args.batch
    );
    if !resume && shards > 1 && args.batch / shards < MIN_PART {
        eprintln!(
            "note: --batch {} in {shards} parts leaves parts under {MIN_PART} samples, whose \
             weight gradients burn's CPU backend computes on a slow path",
            args.batch
        );
    }
    config.shards = shards;
    config.train = TrainConfig::new()
        .with_batch_size(args.batch)
        .with_learning_rate(args.lr.unwrap_or(network.default_learning_rate()))
        .with_seed(args.seed)
        .with_schedule(schedule(args, steps));
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
            Network::Occlusion => config.detector.base_width = w,
            Network::Extractor | Network::Stage1 => config.stage1.base_width = w,
            Network::Stage2 => config.stage2.base_width = w,
        }
    }
    if args.hard_negatives.is_some() {
        anyhow::ensure!(
            network == Network::Occlusion,
            "--hard-negatives trains the occlusion detector only"
        );
        config.hard_negatives = args.hard_negatives;
    }
    if let Some(src) = &args.init_from {
        anyhow::ensure!(
            matches!(
                network,
                Network::Occlusion | Network::Silhouette | Network::Stage1 | Network::Stage2
            ),
            "--init-from fine-tunes the occlusion detector, the silhouette network, G1 or G2 only"
        );
        config.init_from = Some(src.clone());
    }
    if network == Network::Stage1 {
        config.stage1 = config.stage1.clone().with_hole_input(args.hole);
    }
    if let Some(d) = args.downscale {
        anyhow::ensure!(
            network == Network::Stage1,
            "--downscale applies to stage1 (G1) only"
        );
        config.stage1.downscale = Some(d);
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
        l.hidden_log_weight = args.w_hidden_log.unwrap_or(l.hidden_log_weight);
        config.stage2_loss = l;
        config.stage1_run = Some(args.stage1.clone().unwrap_or_else(|| root.join("stage1")));
        config.silhouette_run = Some(
            args.silhouette
                .clone()
                .unwrap_or_else(|| root.join("silhouette")),
        );
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One part per 8 samples, never none, and never a part under `MIN_PART` samples
    /// for the batch sizes this default picks (8, 16, 24, …).
    #[test]
    fn default_shards_gives_one_part_per_eight_samples() {
        assert_eq!(
            [1, 7, 8, 15, 16, 17, 32].map(default_shards),
            [1, 1, 1, 1, 2, 2, 4]
        );
        for batch in (8..=256).step_by(8) {
            assert!(batch / default_shards(batch) >= MIN_PART, "{batch}");
        }
    }
}
