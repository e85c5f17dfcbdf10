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
    let models = tmp.path().join("models");
    Fixture::tiny().write(&models).unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
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
    let a = load_rgb(&out.join("a.png")).unwrap();
    let b = load_rgb(&out.join("b.png")).unwrap();
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
    for (name, img, full) in [("a", &small, &a), ("b", &large, &b)] {
        let got = load_rgb(&masked.join(format!("{name}.png"))).unwrap();
        for i in 0..img.width * img.height {
            let want = if i % img.width < img.width / 2 {
                full.pixel(i)
            } else {
                img.pixel(i)
            };
            assert_eq!(got.pixel(i), want, "{name} pixel {i}");
        }
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
