//! The training harness end to end on the `tiny` preset: resume is bit-exact, losses fall,
//! and bad run folders or data give clear errors.

use std::fs;
use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use burn::tensor::Distribution;
use unveil_host::data::synth::SynthConfig;
use unveil_host::data::SampleSource;
use unveil_host::train::harness::{
    self, HarnessError, Network, Preset, Progress, RunConfig, METRICS_FILE, MODEL_FILE,
};
use unveil_host::train::{load_model, BackendKind, CheckpointError, LrSchedule, TrainConfig};
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};

fn config(network: Network, steps: usize, batch: usize) -> RunConfig {
    let mut c = RunConfig::new(network, Preset::Tiny, steps, "generated".into());
    c.checkpoint_every = 2;
    c.train = TrainConfig::new().with_batch_size(batch).with_seed(5);
    c.occlusion = OcclusionSpec::new(OcclusionMode::Mixed);
    c
}

/// A stage-2 configuration freezing the G1 and S runs under `root` (made by [`frozen`]).
fn stage2_config(root: &Path, steps: usize, batch: usize) -> RunConfig {
    let mut c = config(Network::Stage2, steps, batch);
    c.train = c.train.with_learning_rate(1e-3);
    c.stage1_run = Some(root.join("stage1"));
    c.silhouette_run = Some(root.join("silhouette"));
    c
}

/// Briefly trained G1 and S under `root` (their quality does not matter to these tests).
fn frozen(root: &Path) {
    run(&config(Network::Stage1, 2, 2), &root.join("stage1"), false).unwrap();
    run(
        &config(Network::Silhouette, 2, 2),
        &root.join("silhouette"),
        false,
    )
    .unwrap();
}

fn first_last_mean(rows: &[Vec<f32>], column: usize, k: usize) -> (f32, f32) {
    let mean = |r: &[Vec<f32>]| r.iter().map(|row| row[column]).sum::<f32>() / r.len() as f32;
    (mean(&rows[..k]), mean(&rows[rows.len() - k..]))
}

#[test]
fn stage2_resume_is_bit_exact_including_the_discriminator() {
    let tmp = tempfile::tempdir().unwrap();
    frozen(tmp.path());
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    run(&stage2_config(tmp.path(), 4, 2), &straight, false).unwrap();
    run(&stage2_config(tmp.path(), 2, 2), &split, false).unwrap();
    run(&stage2_config(tmp.path(), 4, 2), &split, true).unwrap();
    let metrics = |d: &Path| fs::read_to_string(d.join(METRICS_FILE)).unwrap();
    assert_eq!(metrics(&straight), metrics(&split));
    assert!(metrics(&split).starts_with("step,total,l2_reconstruction,l3_adversarial"));
}

/// The check: on the tiny preset, L2 (column 2 of a row: step, total, L2, ...)
/// falls by at least half from its first-10-step mean to its last-10-step mean.
#[test]
fn stage2_reconstruction_loss_halves_on_tiny() {
    let tmp = tempfile::tempdir().unwrap();
    frozen(tmp.path());
    let t0 = std::time::Instant::now();
    let out = run(
        &stage2_config(tmp.path(), 150, 4),
        &tmp.path().join("g2"),
        false,
    )
    .unwrap();
    let (first, last) = first_last_mean(&out.rows, 2, 10);
    eprintln!(
        "stage2 tiny: L2 {first:.4} -> {last:.4} in {:.1?}",
        t0.elapsed()
    );
    assert!(last <= 0.5 * first, "L2 {first} -> {last}");
}

fn source(count: usize) -> SampleSource {
    SampleSource::Generated {
        cfg: SynthConfig::new(64).unwrap(),
        seed: 1,
        count,
    }
}

fn run(cfg: &RunConfig, dir: &Path, resume: bool) -> Result<harness::RunOutcome, HarnessError> {
    harness::run(
        cfg,
        dir,
        source(32),
        BackendKind::Flex,
        resume,
        None,
        Progress::Quiet,
    )
}

#[test]
fn resume_continues_bit_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    run(&config(Network::Stage1, 6, 2), &straight, false).unwrap();
    // Interrupted after 3 steps (checkpoint at 2 and 3), then resumed to 6.
    let first = run(&config(Network::Stage1, 3, 2), &split, false).unwrap();
    assert_eq!(first.step, 3);
    let second = run(&config(Network::Stage1, 6, 2), &split, true).unwrap();
    assert_eq!(second.rows.len(), 3, "resume does only the missing steps");
    assert_eq!(
        fs::read_to_string(straight.join(METRICS_FILE)).unwrap(),
        fs::read_to_string(split.join(METRICS_FILE)).unwrap()
    );
    // The extended run records its new target: the same run.json as the straight run.
    assert_eq!(
        fs::read_to_string(straight.join(harness::RUN_FILE)).unwrap(),
        fs::read_to_string(split.join(harness::RUN_FILE)).unwrap()
    );
    // Parameter ids inside the files are random per process, so compare what the weights
    // compute: identical outputs, bit for bit.
    let dev = unveil_host::train::cpu_device();
    let load =
        |dir: &Path| load_model(Preset::Tiny.stage1().init(&dev), &dir.join(MODEL_FILE)).unwrap();
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Uniform(-1.0, 1.0), &dev);
    let bits = |dir: &Path| {
        let out = load(dir).forward(x.clone()).part_logits.into_data();
        out.try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert!(bits(&straight) == bits(&split), "final weights differ");
    assert!(split.join("loss.png").is_file());
}

/// `--stop-at` cuts a session short on the full run's schedule: stopping at 3 of 6 and
/// resuming gives the straight run, also when the learning rate moves every step.
#[test]
fn stop_at_then_resume_is_the_straight_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, cut) = (tmp.path().join("straight"), tmp.path().join("cut"));
    let mut cfg = config(Network::Stage1, 6, 2);
    cfg.train.schedule = LrSchedule::Cosine {
        warmup: 1,
        horizon: 6,
        floor: 0.05,
    };
    let go = |dir: &Path, resume, stop_at| {
        harness::run(
            &cfg,
            dir,
            source(32),
            BackendKind::Flex,
            resume,
            stop_at,
            Progress::Quiet,
        )
    };
    go(&straight, false, None).unwrap();
    let first = go(&cut, false, Some(3)).unwrap();
    assert_eq!((first.step, first.rows.len()), (3, 3));
    assert_eq!(harness::steps_done(&cut), 3, "a checkpoint at the cut");
    let second = go(&cut, true, None).unwrap();
    assert_eq!(second.rows.len(), 3);
    for file in [METRICS_FILE, harness::RUN_FILE] {
        assert_eq!(
            fs::read_to_string(straight.join(file)).unwrap(),
            fs::read_to_string(cut.join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn extractor_loss_halves_on_tiny() {
    let tmp = tempfile::tempdir().unwrap();
    let out = harness::run(
        &config(Network::Extractor, 150, 8),
        tmp.path(),
        source(256),
        BackendKind::Flex,
        false,
        None,
        Progress::Quiet,
    )
    .unwrap();
    let totals: Vec<f32> = out.rows.iter().map(|r| r[1]).collect();
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    let (first, last) = (mean(&totals[..10]), mean(&totals[totals.len() - 10..]));
    assert!(
        last <= 0.5 * first,
        "first-10 mean {first}, last-10 mean {last}"
    );
}

#[test]
fn bad_run_folders_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // Nothing to resume.
    assert!(matches!(
        run(&config(Network::Stage1, 1, 1), &dir, true),
        Err(HarnessError::NothingToResume(_))
    ));
    // A silhouette run cannot be resumed as stage 1.
    run(&config(Network::Silhouette, 1, 1), &dir, false).unwrap();
    let err = run(&config(Network::Stage1, 2, 1), &dir, true).unwrap_err();
    assert!(matches!(err, HarnessError::ResumeMismatch(_)), "{err}");
    // A new run over an existing one is refused (nothing is overwritten).
    assert!(matches!(
        run(&config(Network::Silhouette, 1, 1), &dir, false),
        Err(HarnessError::Exists(_))
    ));
    // A checkpoint from another architecture.
    let g1 = tmp.path().join("g1");
    run(&config(Network::Stage1, 1, 1), &g1, false).unwrap();
    let (from, to) = (dir.join("checkpoint"), g1.join("checkpoint"));
    // The whole checkpoint, digest included: it is intact, just not a G1's.
    for f in [
        "model.bpk",
        "optim.bpk",
        "step",
        "metrics.csv",
        harness::DIGEST_FILE,
    ] {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let err = run(&config(Network::Stage1, 2, 1), &g1, true).unwrap_err();
    assert!(
        matches!(
            err,
            HarnessError::Checkpoint(CheckpointError::Architecture { .. })
        ),
        "{err}"
    );
    // A run configuration with an unknown field.
    let path = dir.join("run.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replacen('{', "{\"surprise\": 1,", 1);
    fs::write(&path, text).unwrap();
    let err = run(&config(Network::Silhouette, 2, 1), &dir, true).unwrap_err();
    assert!(matches!(err, HarnessError::RunConfig { .. }), "{err}");
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn cli_reports_bad_input_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out_dir = tmp.path().join("run");
    let unveil = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_unveil"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        vec![
            "train",
            "stage1",
            "--preset",
            "tiny",
            "--data",
            empty.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        vec![
            "train",
            "stage1",
            "--preset",
            "tiny",
            "--resume",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        vec!["train", "decoder", "--preset", "tiny"],
        vec!["train", "stage1", "--preset", "huge"],
    ] {
        let out = unveil(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn run_folders_from_before_a_field_was_added_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(Network::Stage1, 2, 2);
    let mut value = serde_json::to_value(&c).unwrap();
    let added = [
        ("train", "schedule"),
        ("stage2_loss", "hidden_weight"),
        ("stage2_loss", "matte_weight"),
    ];
    for (section, field) in added {
        let removed = value[section].as_object_mut().unwrap().remove(field);
        assert!(removed.is_some(), "{section}.{field} is no longer written");
    }
    fs::write(tmp.path().join("run.json"), value.to_string()).unwrap();
    let old = harness::load_run_config(tmp.path()).unwrap();
    // Each missing field reads as what runs did before it existed.
    assert_eq!(old.stage2_loss.hidden_weight, 0.0);
    assert_eq!(old.stage2_loss.matte_weight, 0.0);
    assert_eq!(
        serde_json::to_value(&old.train.schedule).unwrap(),
        serde_json::json!("Constant")
    );
}

/// `init_from` starts a run from another run's trained weights, and `hard_negatives` adds
/// its term to the loss; a run of another network is refused as a source.
#[test]
fn a_fine_tune_starts_from_its_source_and_adds_the_hard_negative_term() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    run(&config(Network::Occlusion, 3, 2), &src, false).unwrap();
    // A rate of 1e-9 keeps one step's weights where they started (Adam moves each by ~lr).
    let still = |init: Option<&Path>, hard: Option<f32>| {
        // Batch 4: its last sample is shown intact, which the hard-negative term reads.
        let mut c = config(Network::Occlusion, 1, 4);
        c.train = c
            .train
            .with_learning_rate(1e-9)
            .with_schedule(LrSchedule::Constant);
        c.init_from = init.map(Path::to_path_buf);
        c.hard_negatives = hard;
        c
    };
    let (plain, tuned, fresh) = (
        tmp.path().join("plain"),
        tmp.path().join("tuned"),
        tmp.path().join("fresh"),
    );
    let first_loss = |dir: &Path, c: &RunConfig| run(c, dir, false).unwrap().rows[0][1];
    let plain_loss = first_loss(&plain, &still(Some(&src), None));
    let tuned_loss = first_loss(&tuned, &still(Some(&src), Some(1.0)));
    first_loss(&fresh, &still(None, None));
    // Same weights, same batch: the hard-negative term only adds (it is a mean of softplus).
    assert!(tuned_loss > plain_loss, "{tuned_loss} vs {plain_loss}");
    let dev = unveil_host::train::cpu_device();
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Uniform(-1.0, 1.0), &dev);
    let out = |dir: &Path| {
        load_model(Preset::Tiny.detector().init(&dev), &dir.join(MODEL_FILE))
            .unwrap()
            .forward(x.clone())
    };
    let gap = |a: &Path, b: &Path| out(a).sub(out(b)).abs().max().into_scalar::<f32>();
    assert!(
        gap(&src, &tuned) < 1e-4,
        "the fine-tune did not start from src"
    );
    assert!(gap(&src, &fresh) > 1e-3, "a fresh run looks like src");
    // The run records both, and a resume keeps them.
    let saved = harness::load_run_config(&tuned).unwrap();
    assert_eq!(
        (saved.hard_negatives, saved.init_from),
        (Some(1.0), Some(src))
    );
    // A source of another network is refused before any step.
    let stage1 = tmp.path().join("stage1");
    run(&config(Network::Stage1, 1, 2), &stage1, false).unwrap();
    let err = run(&still(Some(&stage1), None), &tmp.path().join("bad"), false).unwrap_err();
    assert!(err.to_string().contains("holds a stage1 run"), "{err}");
    assert!(
        !tmp.path().join("bad").exists(),
        "a refused run left a folder"
    );
}

/// A G1 fine-tune (a longer cycle at a fresh rate) starts from its source's weights; a
/// resume of it keeps to its own checkpoint.
#[test]
fn a_stage1_fine_tune_starts_from_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    run(&config(Network::Stage1, 2, 2), &src, false).unwrap();
    let still = |init: Option<&Path>, steps: usize| {
        let mut c = config(Network::Stage1, steps, 2);
        c.train = c
            .train
            .with_learning_rate(1e-9)
            .with_schedule(LrSchedule::Constant);
        c.init_from = init.map(Path::to_path_buf);
        c
    };
    let (tuned, fresh) = (tmp.path().join("tuned"), tmp.path().join("fresh"));
    run(&still(Some(&src), 1), &tuned, false).unwrap();
    run(&still(None, 1), &fresh, false).unwrap();
    let dev = unveil_host::train::cpu_device();
    let g1 = Preset::Tiny.stage1();
    let x = Tensor::<4>::random(
        [1, g1.in_channels, 64, 64],
        Distribution::Uniform(-1.0, 1.0),
        &dev,
    );
    let out = |dir: &Path| {
        load_model(g1.init(&dev), &dir.join(MODEL_FILE))
            .unwrap()
            .forward(x.clone())
            .part_logits
    };
    let gap = |a: &Path, b: &Path| out(a).sub(out(b)).abs().max().into_scalar::<f32>();
    assert!(gap(&src, &tuned) < 1e-4, "G1 did not start from src");
    assert!(gap(&src, &fresh) > 1e-3, "a fresh G1 looks like src");
    // The fine-tune resumes from its own checkpoint to its new target.
    run(&still(Some(&src), 2), &tuned, true).unwrap();
    assert_eq!(harness::steps_done(&tuned), 2);
}

/// A stage-2 fine-tune starts from its source's G2 and D (D from the source's
/// checkpoint); a source whose G2 has other layers is refused before a folder is made.
#[test]
fn a_stage2_fine_tune_starts_from_its_source_g2_and_d() {
    use unveil_host::nets::stage2::Condition;
    use unveil_host::train::stage2::DISCRIMINATOR_DIR;
    let tmp = tempfile::tempdir().unwrap();
    frozen(tmp.path());
    let src = tmp.path().join("src");
    run(&stage2_config(tmp.path(), 2, 2), &src, false).unwrap();
    let still = |init: Option<&Path>| {
        let mut c = stage2_config(tmp.path(), 1, 2);
        c.train = c
            .train
            .with_learning_rate(1e-9)
            .with_schedule(LrSchedule::Constant);
        c.init_from = init.map(Path::to_path_buf);
        c.stage2_loss.hidden_log_weight = 1.0;
        c
    };
    let (tuned, fresh) = (tmp.path().join("tuned"), tmp.path().join("fresh"));
    run(&still(Some(&src)), &tuned, false).unwrap();
    run(&still(None), &fresh, false).unwrap();
    let dev = unveil_host::train::cpu_device();
    let g_in = Preset::Tiny.stage2().in_channels();
    let x = Tensor::<4>::random([1, g_in, 64, 64], Distribution::Uniform(-1.0, 1.0), &dev);
    let g = |dir: &Path| {
        load_model(Preset::Tiny.stage2().init(&dev), &dir.join(MODEL_FILE))
            .unwrap()
            .forward(x.clone())
            .restored
    };
    let image = x.clone().narrow(1, 0, 3);
    let d = |dir: &Path| {
        let path = dir
            .join(harness::CHECKPOINT_DIR)
            .join(DISCRIMINATOR_DIR)
            .join(MODEL_FILE);
        load_model(Preset::Tiny.discriminator().init(&dev), &path)
            .unwrap()
            .forward(image.clone())
    };
    let gap = |a: Tensor<4>, b: Tensor<4>| a.sub(b).abs().max().into_scalar::<f32>();
    assert!(gap(g(&src), g(&tuned)) < 1e-4, "G2 did not start from src");
    assert!(gap(d(&src), d(&tuned)) < 1e-4, "D did not start from src");
    assert!(gap(g(&src), g(&fresh)) > 1e-3, "a fresh G2 looks like src");
    assert!(gap(d(&src), d(&fresh)) > 1e-3, "a fresh D looks like src");
    // Another condition means another input width: refused, nothing left behind.
    let mut other = still(Some(&src));
    other.stage2 = other.stage2.with_condition(Condition::None);
    let bad = tmp.path().join("bad");
    let err = run(&other, &bad, false).unwrap_err();
    assert!(err.to_string().contains("other layers"), "{err}");
    assert!(!bad.exists(), "a refused run left a folder");
}

/// Probe defect 5: `--resume` on a run folder without `checkpoint/` used to retrain from
/// step 0 over the finished run's `model.bpk` and `metrics.csv`. It is refused, and both
/// are left as they were.
#[test]
fn resume_without_a_checkpoint_is_refused_and_keeps_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    run(&config(Network::Stage1, 2, 2), &dir, false).unwrap();
    fs::remove_dir_all(dir.join(harness::CHECKPOINT_DIR)).unwrap();
    let before = (
        fs::read(dir.join(MODEL_FILE)).unwrap(),
        fs::read(dir.join(METRICS_FILE)).unwrap(),
    );
    let err = run(&config(Network::Stage1, 4, 2), &dir, true).unwrap_err();
    assert!(matches!(err, HarnessError::NoCheckpoint(_)), "{err}");
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    let after = (
        fs::read(dir.join(MODEL_FILE)).unwrap(),
        fs::read(dir.join(METRICS_FILE)).unwrap(),
    );
    assert!(before == after, "the finished run was overwritten");
}

/// Probe defect 9: one flipped byte in `checkpoint/model.bpk` used to resume silently. The
/// checkpoint's digest (`SHA256SUMS`, in `sha256sum`'s format) refuses it; a missing or
/// an extra file is refused too.
#[test]
fn a_corrupt_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    run(&config(Network::Stage1, 2, 2), &dir, false).unwrap();
    let ckpt = dir.join(harness::CHECKPOINT_DIR);
    let sums = fs::read_to_string(ckpt.join(harness::DIGEST_FILE)).unwrap();
    assert!(
        sums.contains("  model.bpk\n") && sums.contains("  optim.bpk\n"),
        "{sums}"
    );
    let weights = ckpt.join("model.bpk");
    let good = fs::read(&weights).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    fs::write(&weights, &bad).unwrap();
    let err = run(&config(Network::Stage1, 4, 2), &dir, true).unwrap_err();
    assert!(
        matches!(&err, HarnessError::CorruptCheckpoint { file, .. } if file == "model.bpk"),
        "{err}"
    );
    fs::write(&weights, &good).unwrap();
    fs::write(ckpt.join("stray"), b"x").unwrap();
    let err = run(&config(Network::Stage1, 4, 2), &dir, true).unwrap_err();
    assert!(
        matches!(err, HarnessError::CorruptCheckpoint { .. }),
        "{err}"
    );
    fs::remove_file(ckpt.join("stray")).unwrap();
    // Intact again: it resumes.
    assert_eq!(
        run(&config(Network::Stage1, 4, 2), &dir, true)
            .unwrap()
            .step,
        4
    );
}

/// Probe defect 7: a kill between a checkpoint's rename and the rewrite of `metrics.csv`
/// used to lose up to `--checkpoint-every` rows. The checkpoint carries its rows, so the
/// resumed run's `metrics.csv` equals an uninterrupted run's.
#[test]
fn metrics_survive_a_kill_after_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    run(&config(Network::Stage1, 6, 2), &straight, false).unwrap();
    run(&config(Network::Stage1, 4, 2), &split, false).unwrap();
    // As if killed right after the step-4 checkpoint landed: the folder's metrics stop
    // at the step-2 checkpoint.
    let text = fs::read_to_string(split.join(METRICS_FILE)).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    fs::write(split.join(METRICS_FILE), kept.join("\n") + "\n").unwrap();
    run(&config(Network::Stage1, 6, 2), &split, true).unwrap();
    assert_eq!(
        fs::read_to_string(straight.join(METRICS_FILE)).unwrap(),
        fs::read_to_string(split.join(METRICS_FILE)).unwrap()
    );
}
