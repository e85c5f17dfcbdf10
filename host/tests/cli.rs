//! The `unveil` binary as a user runs it: outputs, determinism and bad input.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn unveil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unveil"))
        .args(args)
        .output()
        .expect("run unveil")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// All files of a folder, sorted by name, with their bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A failed run: non-zero exit, a single line on stderr, and no panic.
fn assert_clean_failure(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "{needle:?} not in {err}"
    );
}

#[test]
fn synth_writes_count_samples_and_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let out = unveil(&[
            "synth",
            "--out",
            dir.to_str().unwrap(),
            "--count",
            "64",
            "--size",
            "128",
            "--seed",
            "7",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("samples/s"), "rate not printed: {stdout}");
    }
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    assert_eq!(sa.len(), 64 * 5 + 1, "64 samples x 5 planes + manifest");
    assert!(sa == sb, "two runs with the same seed differ");
    let data = unveil_host::data::dataset::Dataset::open(&a).unwrap();
    assert_eq!(data.len(), 64);
    assert_eq!(data.manifest.seed, 7);
}

#[test]
fn different_seeds_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, seed) in [(&a, "1"), (&b, "2")] {
        let out = unveil(&[
            "synth",
            "--out",
            dir.to_str().unwrap(),
            "--count",
            "2",
            "--size",
            "32",
            "--seed",
            seed,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_ne!(
        fs::read(a.join("00000_image.png")).unwrap(),
        fs::read(b.join("00000_image.png")).unwrap()
    );
}

#[test]
fn demo_writes_contact_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = unveil(&[
        "demo",
        "--out",
        tmp.path().to_str().unwrap(),
        "--count",
        "3",
        "--size",
        "64",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sheet = image::open(tmp.path().join("contact_sheet.png")).unwrap();
    // A title strip, then 6 columns and 3 rows of 64-pixel tiles with 2-pixel gaps.
    let header = unveil_host::viz::sheet::header(&["x"], 64).height as u32;
    assert_eq!(
        (sheet.width(), sheet.height()),
        (6 * 66 + 2, header + 3 * 66 + 2)
    );
}

#[test]
fn bad_arguments_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert_clean_failure(&unveil(&["synth", "--out", dir, "--bogus"]), "--bogus");
    assert_clean_failure(&unveil(&["synth", "--out", dir, "--size", "0"]), "size");
    assert_clean_failure(&unveil(&["synth", "--out", dir, "--size", "abc"]), "size");
    assert_clean_failure(&unveil(&["synth", "--out", dir, "--count", "0"]), "count");
    assert_clean_failure(&unveil(&["frobnicate"]), "frobnicate");
    let run = tmp.path().join("run");
    let train = |extra: &[&str]| {
        let base = ["train", "silhouette", "--preset", "tiny", "--out"];
        unveil(&[&base[..], &[run.to_str().unwrap()], extra].concat())
    };
    assert_clean_failure(&train(&["--clip-norm", "0"]), "--clip-norm");
    assert_clean_failure(&train(&["--lr-floor", "2"]), "--lr-floor");
    assert_clean_failure(&train(&["--schedule", "linear"]), "linear");
    assert_clean_failure(&train(&["--width", "0"]), "--width");
    assert!(!run.exists(), "a rejected run must not leave a folder");
    let all = ["train", "all", "--preset", "tiny", "--width", "4", "--out"];
    assert_clean_failure(
        &unveil(&[&all[..], &[run.to_str().unwrap()]].concat()),
        "--width",
    );
    assert!(!run.exists(), "a rejected run must not leave a folder");
}

#[test]
fn width_sets_the_trained_networks_width() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("s");
    let out = unveil(&[
        "train",
        "silhouette",
        "--preset",
        "tiny",
        "--width",
        "4",
        "--steps",
        "1",
        "--batch",
        "2",
        "--samples",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(config["silhouette"]["base_width"], 4, "{config}");
    // The other networks keep the preset's width.
    assert_eq!(config["stage1"]["base_width"], 8, "{config}");
}

#[test]
fn unwritable_output_fails_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where the output folder should be.
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let out_dir = file.join("sub");
    assert_clean_failure(
        &unveil(&["synth", "--out", out_dir.to_str().unwrap(), "--count", "1"]),
        "cannot create",
    );
}

#[test]
fn corrupt_mesh_and_backgrounds_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    // One sample with a user asset `flag path`; must fail naming `needle`.
    let fails_with = |flag: &str, path: &Path, needle: &str| {
        let args = [
            "synth",
            "--out",
            out_dir.to_str().unwrap(),
            "--count",
            "1",
            flag,
            path.to_str().unwrap(),
        ];
        assert_clean_failure(&unveil(&args), needle);
    };
    let obj = tmp.path().join("bad.obj");
    fs::write(&obj, b"v 1 2\nf 1 2 99\n\x00\xff garbage").unwrap();
    fails_with("--mesh", &obj, "bad.obj");
    fails_with("--mesh", &tmp.path().join("missing.obj"), "missing.obj");
    let bg = tmp.path().join("bg");
    fs::create_dir(&bg).unwrap();
    fs::write(bg.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    fails_with("--backgrounds", &bg, "broken.png");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fails_with("--backgrounds", &empty, "empty");
}

#[test]
fn help_explains_commands() {
    let out = unveil(&["synth", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--out",
        "--count",
        "--size",
        "--seed",
        "--backgrounds",
        "--mesh",
    ] {
        assert!(text.contains(flag), "{flag} missing from help: {text}");
    }
}

/// `train all` trains the four networks in order into one folder, a second call skips
/// them all, and `eval stage2` compares the restored images with the occluded input.
#[test]
fn train_all_then_eval_stage2() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runs");
    let root_s = root.to_str().unwrap();
    let common = [
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch",
        "2",
        "--samples",
        "8",
        "--out",
        root_s,
    ];
    let train = |extra: &[&str]| unveil(&[&["train", "all"], &common[..], extra].concat());
    let out = train(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["extractor", "silhouette", "stage1", "stage2", "occlusion"] {
        assert!(
            root.join(name).join("model.bpk").is_file(),
            "{name} not trained"
        );
    }
    let again = train(&[]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(text.matches("skipped").count(), 5, "{text}");

    // The occlusion detector: a row per asked mode, IoU and the intact images' flags.
    let det = root.join("occlusion");
    let det_out = tmp.path().join("eval_det");
    let res = unveil(&[
        "eval",
        "occlusion",
        "--model",
        det.to_str().unwrap(),
        "--samples",
        "4",
        "--modes",
        "rect,text",
        "--out",
        det_out.to_str().unwrap(),
    ]);
    assert!(res.status.success(), "{}", stderr(&res));
    let md = fs::read_to_string(det_out.join("eval_occlusion.md")).unwrap();
    assert!(
        md.contains("| mode | IoU | flagged on the intact images | worst intact image |"),
        "{md}"
    );
    assert!(md.contains("| rect | ") && md.contains("| text | "), "{md}");

    // `eval stage2` of `models` on 4 samples per mode of `modes`, into `out`.
    let eval = |models: &[&Path], modes: &str, out: &Path| {
        let mut args = vec!["eval", "stage2", "--samples", "4", "--modes", modes];
        for m in models {
            args.extend(["--model", m.to_str().unwrap()]);
        }
        args.extend(["--out", out.to_str().unwrap()]);
        let res = unveil(&args);
        assert!(res.status.success(), "{}", stderr(&res));
    };
    let report = tmp.path().join("eval");
    let g2 = root.join("stage2");
    eval(&[&g2, &g2], "rect,text", &report);
    let md = fs::read_to_string(report.join("eval_stage2.md")).unwrap();
    for peer in [
        "| occluded input |",
        "| ring-mean fill |",
        "| Telea (Rust) |",
    ] {
        assert_eq!(
            md.matches(peer).count(),
            4,
            "summary + intervals + one table per mode: {md}"
        );
    }
    assert!(
        md.contains("| method | rect | text | mean PSNR | mean SSIM |"),
        "{md}"
    );
    // The model given twice: two rows in the summary, the intervals and each mode's table,
    // and its paired differences from Telea and from itself (exactly 0).
    assert_eq!(md.matches("| G2 stage2 (texture) |").count(), 8, "{md}");
    assert_eq!(
        md.matches("| G2 stage2 (texture) − Telea |").count(),
        2,
        "{md}"
    );
    assert!(
        md.contains("| G2 stage2 (texture) − G2 stage2 (texture) | [0.00, 0.00] |"),
        "{md}"
    );
    let csv = fs::read_to_string(report.join("eval_stage2.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 5,
        "header + 2 modes x 5 rows: {csv}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("rect,occluded input,")),
        "{csv}"
    );
    assert!(report.join("eval_stage2.png").is_file());

    // Real photos: the masks that need no subject by default, a report of its own, and
    // the subject modes refused in one line.
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/photos");
    let (g2s, photos_s, out_s) = (
        g2.to_str().unwrap(),
        photos.to_str().unwrap(),
        report.to_str().unwrap(),
    );
    let base = ["eval", "stage2", "--model", g2s, "--images", photos_s];
    let res = unveil(&[&base[..], &["--samples", "4", "--out", out_s]].concat());
    assert!(res.status.success(), "{}", stderr(&res));
    let md = fs::read_to_string(report.join("eval_photos.md")).unwrap();
    assert!(
        md.contains("| method | rect | strokes-thick | text | mean PSNR | mean SSIM |"),
        "{md}"
    );
    assert_eq!(md.matches("| Telea (Rust) |").count(), 5, "{md}");
    assert!(report.join("eval_photos.png").is_file());
    assert!(
        report.join("eval_stage2.md").is_file(),
        "the synthetic report stays"
    );
    let res = unveil(&[&base[..], &["--modes", "subject-noise", "--out", out_s]].concat());
    assert_clean_failure(&res, "photos have no subject mask");

    // The same G2 exported (f32) and scored as the camera runs it, in tract: its row
    // matches the run's within 0.1 dB on the same samples.
    let folder = tmp.path().join("exported");
    let out = unveil(&[
        "export",
        "--stage2",
        g2.to_str().unwrap(),
        "--occlusion",
        det.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The detector travels as a third graph, in the manifest, and the device loads it.
    let manifest = fs::read_to_string(folder.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"Occlusion\""), "{manifest}");
    let loaded = unveil_device::model::Model::load(&folder).unwrap();
    assert!(loaded.detector.is_some());
    let report2 = tmp.path().join("eval2");
    eval(&[&g2, &folder], "rect", &report2);
    let csv = fs::read_to_string(report2.join("eval_stage2.csv")).unwrap();
    let hidden_psnr = |needle: &str| -> f64 {
        let line = csv
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {csv}"));
        line.split(',').nth(2).unwrap().parse().unwrap()
    };
    let (burn, tract) = (hidden_psnr("G2 stage2"), hidden_psnr("f32; tract"));
    assert!(
        (burn - tract).abs() < 0.1,
        "burn {burn} vs tract {tract}: {csv}"
    );

    // A stage-2 run without trained G1/S is a one-line error.
    let lonely = tmp.path().join("lonely");
    let out = unveil(&[
        "train",
        "stage2",
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--out",
        lonely.to_str().unwrap(),
        "--stage1",
        tmp.path().join("nope").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "no trained stage1 run here");
}

/// Probe defect 14: absurd sizes ran for minutes or allocated gigabytes; meaningless
/// numbers were accepted. All are refused at parse time, in one line.
#[test]
fn absurd_numbers_are_refused_at_parse_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let d = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    assert_clean_failure(&unveil(&["synth", "--out", d, "--jobs", "20000"]), "--jobs");
    assert_clean_failure(&unveil(&["synth", "--out", d, "--jobs", "0"]), "--jobs");
    let train = |extra: &[&str]| {
        let base = ["train", "stage1", "--preset", "tiny", "--out", d];
        unveil(&[&base[..], extra].concat())
    };
    assert_clean_failure(&train(&["--batch", "100000"]), "--batch");
    for lr in ["--lr=0", "--lr=-1", "--lr=nan", "--lr=inf", "--lr=5"] {
        assert_clean_failure(&train(&[lr]), "--lr");
    }
    assert_clean_failure(&train(&["--steps", "0"]), "--steps");
    assert_clean_failure(&train(&["--checkpoint-every", "0"]), "--checkpoint-every");
    assert_clean_failure(&train(&["--samples", "0"]), "--samples");
    assert!(!dir.exists(), "a refused command must not leave a folder");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Probe defect 6: `synth` into an existing data set overwrote part of it. It is refused
/// unless `--force` says to replace it.
#[test]
fn synth_refuses_an_existing_data_set_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let args = [
        "synth",
        "--out",
        d.to_str().unwrap(),
        "--count",
        "2",
        "--size",
        "32",
    ];
    assert!(unveil(&args).status.success());
    let before = snapshot(&d);
    assert_clean_failure(&unveil(&[&args[..], &["--seed", "9"]].concat()), "--force");
    assert_eq!(snapshot(&d), before, "the data set was touched");
    let forced = unveil(&[&args[..], &["--seed", "9", "--force"]].concat());
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(snapshot(&d), before);
}

/// Probe defect 15: `eval`, `export` and `label` on a missing run folder talked of
/// `--resume`, which they do not have. They say what is missing and how to make it.
#[test]
fn missing_run_folders_say_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let nope = tmp.path().join("nope");
    let n = nope.to_str().unwrap();
    let out_dir = tmp.path().join("o");
    let o = out_dir.to_str().unwrap();
    let photos = tmp.path().join("photos");
    fs::create_dir_all(&photos).unwrap();
    for args in [
        vec!["eval", "stage1", "--model", n, "--out", o],
        vec!["eval", "stage2", "--model", n, "--out", o],
        vec!["export", "--stage1", n, "--stage2", n, "--out", o],
        vec![
            "label",
            "--extractor",
            n,
            "--images",
            photos.to_str().unwrap(),
            "--out",
            o,
        ],
    ] {
        let out = unveil(&args);
        assert_clean_failure(&out, "no trained run here");
        let err = stderr(&out);
        assert!(
            err.contains("unveil train") && !err.contains("--resume"),
            "{args:?}: {err}"
        );
    }
}

/// Probe defect 16: `train --resume` without `--steps` rewrote the run's target to the
/// preset's default and trained past it. The run keeps its own target.
#[test]
fn resume_without_steps_keeps_the_runs_target() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("s");
    let r = run.to_str().unwrap();
    let base = [
        "train",
        "silhouette",
        "--preset",
        "tiny",
        "--batch",
        "2",
        "--samples",
        "4",
        "--out",
        r,
    ];
    let first = unveil(&[&base[..], &["--steps", "2"]].concat());
    assert!(first.status.success(), "{}", stderr(&first));
    let config = fs::read_to_string(run.join("run.json")).unwrap();
    let again = unveil(&[&base[..], &["--resume"]].concat());
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("step 2 of 2"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(fs::read_to_string(run.join("run.json")).unwrap(), config);
}
