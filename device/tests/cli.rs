//! The `unveil-device` binary: restoring a folder (any sizes, with masks), and clear
//! one-line errors for missing models and unreadable images.

use std::path::Path;
use std::process::Command;

use unveil_device::bench::test_frame;
use unveil_device::fixture::Fixture;
use unveil_device::source::{load_rgb, save_rgb};
use unveil_shared::ImageU8;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unveil-device"))
        .args(args)
        .output()
        .unwrap()
}

/// Run and require success, showing the command's stderr otherwise; returns its stdout.
fn run_ok(args: &[&str]) -> String {
    let res = run(args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    String::from_utf8_lossy(&res.stdout).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn restore_a_folder_with_and_without_masks() {
    let tmp = tempfile::tempdir().unwrap();
    let (models, input) = models_and_input(tmp.path());
    let small = test_frame(32, 32, 1);
    let large = test_frame(48, 40, 2);
    save_rgb(&input.join("a.png"), &small).unwrap();
    save_rgb(&input.join("b.png"), &large).unwrap();
    std::fs::write(input.join("notes.txt"), "ignored").unwrap();

    let out = tmp.path().join("out");
    let stdout = run_ok(&[
        "restore",
        "--models",
        p(&models),
        "--input",
        p(&input),
        "--out",
        p(&out),
    ]);
    assert_eq!(
        stdout.trim(),
        format!("restored 2 image(s) into {}", out.display())
    );
    let a = load_rgb(&out.join("a.png"), 16).unwrap();
    let b = load_rgb(&out.join("b.png"), 16).unwrap();
    assert_eq!((a.width, a.height, b.width, b.height), (32, 32, 48, 40));
    assert_ne!(a.data, small.data);

    // A mask folder: left half set. Unmasked pixels are the input's, exactly.
    let masks = tmp.path().join("masks");
    std::fs::create_dir_all(&masks).unwrap();
    for (name, img) in [("a", &small), ("b", &large)] {
        let grey: Vec<u8> = (0..img.width * img.height)
            .map(|i| {
                if i % img.width < img.width / 2 {
                    255
                } else {
                    0
                }
            })
            .collect();
        let mask = ImageU8::from_vec(img.width, img.height, 1, grey).unwrap();
        save_rgb(&masks.join(format!("{name}.png")), &mask).unwrap();
    }
    let masked = tmp.path().join("masked");
    run_ok(&[
        "restore",
        "--models",
        p(&models),
        "--input",
        p(&input),
        "--out",
        p(&masked),
        "--mask",
        p(&masks),
    ]);
    // a (the model's 32x32): the hidden half's window is the whole image, so its pixels
    // are the unmasked run's. b (48x40): its 24x40 hidden half gets a 40x40 window of
    // its own, so those pixels are restored, not the squashed whole frame's.
    for (name, img, full) in [("a", &small, Some(&a)), ("b", &large, None)] {
        let got = load_rgb(&masked.join(format!("{name}.png")), 16).unwrap();
        let mut restored = 0;
        for i in 0..img.width * img.height {
            if i % img.width >= img.width / 2 {
                assert_eq!(got.pixel(i), img.pixel(i), "{name} visible pixel {i}");
                continue;
            }
            restored += usize::from(got.pixel(i) != img.pixel(i));
            if let Some(full) = full {
                assert_eq!(got.pixel(i), full.pixel(i), "{name} hidden pixel {i}");
            }
        }
        assert!(restored > 0, "{name}: no hidden pixel changed");
    }
}

#[test]
fn missing_models_and_bad_images_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let res = run(&[
        "restore",
        "--models",
        p(&tmp.path().join("nope")),
        "--input",
        p(tmp.path()),
        "--out",
        p(tmp.path()),
    ]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("no model folder at") && err.contains("manifest.bin"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let res = run(&["bench", "--models", p(&tmp.path().join("nope"))]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("no model folder at"));

    let models = tmp.path().join("models");
    Fixture::tiny().write(&models).unwrap();
    let bad = tmp.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let res = run(&[
        "restore",
        "--models",
        p(&models),
        "--input",
        p(&bad),
        "--out",
        p(&tmp.path().join("o")),
    ]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("bad.png"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bench_reports_both_folders_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let int8 = tmp.path().join("m");
    let f32 = tmp.path().join("m-f32");
    Fixture {
        int8: true,
        ..Fixture::tiny()
    }
    .write(&int8)
    .unwrap();
    Fixture::tiny().write(&f32).unwrap();
    let text = run_ok(&[
        "bench",
        "--models",
        p(&int8),
        "--frames",
        "20",
        "--warmup",
        "2",
    ]);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(p(tmp.path()))).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains(" f32 ") && rows[1].contains(" int8 "),
        "{text}"
    );
    assert!(text.contains("int8 vs f32:"), "{text}");
}

/// A fixture model folder and an empty input folder under `root`.
fn models_and_input(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let models = root.join("models");
    Fixture::tiny().write(&models).unwrap();
    let input = root.join("in");
    std::fs::create_dir_all(&input).unwrap();
    (models, input)
}

fn restore_args<'a>(models: &'a Path, input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "restore",
        "--models",
        p(models),
        "--input",
        p(input),
        "--out",
        p(out),
    ]
}

/// Every file of `dir` with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Probe defects 1 and 2: `--out` equal to the input folder (or the input file's own
/// folder) replaced the inputs; `x.png` and `x.jpg` were both written to `out/x.png`.
/// Both are refused before anything is written.
#[test]
fn restore_never_overwrites_an_input_or_merges_two() {
    let tmp = tempfile::tempdir().unwrap();
    let (models, input) = models_and_input(tmp.path());
    save_rgb(&input.join("a.png"), &test_frame(32, 32, 1)).unwrap();
    let before = snapshot(&input);
    for (src, out) in [
        (input.clone(), input.clone()),
        (input.join("a.png"), input.clone()),
    ] {
        let res = run(&restore_args(&models, &src, &out));
        assert!(!res.status.success());
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains("refusing to write") && err.contains("a.png"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(snapshot(&input), before, "an input was touched");
    }

    save_rgb(&input.join("a.jpg"), &test_frame(32, 32, 2)).unwrap();
    let out = tmp.path().join("out");
    let res = run(&restore_args(&models, &input, &out));
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("would both be written to"), "{err}");
    assert!(!out.exists(), "nothing is written when the plan is refused");
}

/// Probe defects 10 and 12: a truncated JPEG was "restored" from grey rows, and the first
/// bad file stopped the folder. Every good file is restored, each bad one is reported on
/// its own line, and the exit status says that some failed.
#[test]
fn a_folder_with_bad_files_restores_the_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (models, input) = models_and_input(tmp.path());
    save_rgb(&input.join("a.png"), &test_frame(32, 32, 1)).unwrap();
    save_rgb(&input.join("c.png"), &test_frame(24, 40, 3)).unwrap();
    std::fs::write(input.join("b.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    save_rgb(&tmp.path().join("whole.jpg"), &test_frame(64, 64, 4)).unwrap();
    let jpeg = std::fs::read(tmp.path().join("whole.jpg")).unwrap();
    assert!(unveil_device::source::jpeg_is_complete(&jpeg));
    std::fs::write(input.join("cut.jpg"), &jpeg[..jpeg.len() * 2 / 3]).unwrap();
    assert!(!unveil_device::source::jpeg_is_complete(
        &jpeg[..jpeg.len() * 2 / 3]
    ));

    let out = tmp.path().join("out");
    let res = run(&restore_args(&models, &input, &out));
    assert!(!res.status.success(), "some inputs failed");
    let err = String::from_utf8_lossy(&res.stderr);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains("b.png"), "{err}");
    assert!(
        lines[1].contains("cut.jpg") && lines[1].contains("truncated"),
        "{err}"
    );
    assert!(lines[2].contains("2 of 4"), "{err}");
    assert!(!err.contains("panicked"));
    assert_eq!(load_rgb(&out.join("a.png"), 16).unwrap().width, 32);
    assert_eq!(load_rgb(&out.join("c.png"), 16).unwrap().height, 40);
    assert!(!out.join("b.png").exists() && !out.join("cut.png").exists());
}

/// Probe defect 13: a small file that decodes to a huge frame drove memory to ~1 GB. Its
/// header is checked against a megapixel budget before any pixel is decoded.
#[test]
fn frames_over_the_megapixel_budget_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    Fixture::tiny().write(&models).unwrap();
    let big = tmp.path().join("big.png");
    save_rgb(&big, &ImageU8::new(1200, 1000, 3)).unwrap();
    assert!(
        std::fs::metadata(&big).unwrap().len() < 20_000,
        "compresses to a small file"
    );
    let out = tmp.path().join("out");
    let mut args = restore_args(&models, &big, &out);
    args.extend(["--max-megapixels", "1"]);
    let res = run(&args);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("1.2 megapixels") && err.contains("--max-megapixels"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Within the default budget it restores.
    run_ok(&restore_args(&models, &big, &out));
}

/// Probe defect 7: `restore` killed mid-write (here by the file-size limit, as a full
/// disk would stop it) left a truncated PNG. Outputs go through a temporary file and a
/// rename: the destination is whole or absent.
#[test]
fn a_write_cut_short_leaves_no_truncated_output() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    Fixture::tiny().write(&models).unwrap();
    let input = tmp.path().join("noise.png");
    save_rgb(&input, &test_frame(96, 96, 5)).unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() > 8 * 1024);
    // A small mask: the output keeps the input's noise, so it is as large as the input.
    let mask = tmp.path().join("mask.png");
    let grey: Vec<u8> = (0..96 * 96)
        .map(|i| {
            if (i % 96) < 10 && (i / 96) < 10 {
                255
            } else {
                0
            }
        })
        .collect();
    save_rgb(&mask, &ImageU8::from_vec(96, 96, 1, grey).unwrap()).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // `ulimit -f 4`: no file may grow past 4 KiB; the write fails (or the process dies).
    let script = format!(
        "ulimit -f 4 && exec {} restore --models {} --input {} --out {} --mask {}",
        env!("CARGO_BIN_EXE_unveil-device"),
        p(&models),
        p(&input),
        p(&out),
        p(&mask)
    );
    let res = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(!res.status.success());
    let dest = out.join("noise.png");
    assert!(
        !dest.exists() || load_rgb(&dest, 16).is_ok(),
        "a truncated output was left behind"
    );
    assert!(!dest.exists());
}
