//! Our Telea against OpenCV's `cv2.inpaint(.., 5, INPAINT_TELEA)` on committed fixtures
//! (made by tools/telea_fixtures.py): over the hidden pixels, our PSNR to the clean image
//! must not fall more than 0.5 dB below OpenCV's. Run with `--nocapture` for the table.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use unveil_shared::inpaint::{ring_mean, telea, telea_into, TeleaScratch};
use unveil_shared::{ImageU8, Mask};

const FIXTURES: [&str; 4] = ["gradient", "scene", "texture", "grey"];
const RADIUS: usize = 5;

fn load(name: &str) -> ImageU8 {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "telea",
        name,
    ]
    .iter()
    .collect();
    let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{name}");
    let channels = info.color_type.samples();
    buf.truncate(info.buffer_size());
    ImageU8::from_vec(info.width as usize, info.height as usize, channels, buf).unwrap()
}

/// PSNR over the hidden pixels (all channels), in dB.
fn psnr_hidden(a: &ImageU8, b: &ImageU8, mask: &Mask) -> f64 {
    let c = a.channels;
    let (mut se, mut n) = (0.0f64, 0usize);
    for i in (0..mask.data.len()).filter(|&i| mask.data[i] != 0) {
        for ch in 0..c {
            let d = a.data[i * c + ch] as f64 - b.data[i * c + ch] as f64;
            se += d * d;
            n += 1;
        }
    }
    let mse = se / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

#[test]
fn telea_matches_opencv_quality() {
    println!("fixture   hidden  ours→clean  opencv→clean  ours→opencv  ring_mean→clean (dB)");
    let mut failures = Vec::new();
    for name in FIXTURES {
        let clean = load(&format!("{name}_clean.png"));
        let input = load(&format!("{name}_input.png"));
        let grey = load(&format!("{name}_mask.png"));
        let cv = load(&format!("{name}_opencv.png"));
        let mask = Mask::from_grey(grey.width, grey.height, &grey.data).unwrap();
        assert!(mask.count() > 0, "{name}");
        let ours = telea(&input, &mask, RADIUS).unwrap();
        for i in (0..mask.data.len()).filter(|&i| mask.data[i] == 0) {
            assert_eq!(
                ours.pixel(i),
                input.pixel(i),
                "{name}: visible pixel {i} changed"
            );
            assert_eq!(
                clean.pixel(i),
                input.pixel(i),
                "{name}: fixture input differs"
            );
        }
        let ours_db = psnr_hidden(&ours, &clean, &mask);
        let cv_db = psnr_hidden(&cv, &clean, &mask);
        let between = psnr_hidden(&ours, &cv, &mask);
        let ring = psnr_hidden(&ring_mean(&input, &mask, RADIUS).unwrap(), &clean, &mask);
        println!(
            "{name:9} {:5.1}%  {ours_db:10.2}  {cv_db:12.2}  {between:11.2}  {ring:15.2}",
            100.0 * mask.coverage()
        );
        if ours_db < cv_db - 0.5 {
            failures.push(format!(
                "{name}: ours {ours_db:.2} dB vs OpenCV {cv_db:.2} dB"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// Not a benchmark (no assertion): the time of one 128x128 RGB fill with ~20% hidden,
/// printed with `--nocapture`. Meaningful under `--release`.
#[test]
fn time_128x128_rgb() {
    let (w, h) = (128, 128);
    let data = (0..w * h * 3)
        .map(|i| ((i / 3 % w) * 2 + (i / 3 / w) + (i % 3) * 40) as u8)
        .collect();
    let image = ImageU8::from_vec(w, h, 3, data).unwrap();
    // 8x8 blocks, one in five hidden, plus a diagonal stroke.
    let mask = Mask::from_fn(w, h, |i| {
        let (x, y) = (i % w, i / w);
        ((x / 8) * 3 + (y / 8) * 7) % 5 == 0 || (x as isize - y as isize).abs() < 2
    });
    let mut scratch = TeleaScratch::new();
    let mut out = ImageU8::new(1, 1, 3);
    telea_into(&image, &mask, RADIUS, &mut scratch, &mut out).unwrap();
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        telea_into(&image, &mask, RADIUS, &mut scratch, &mut out).unwrap();
    }
    let per = start.elapsed() / runs;
    println!(
        "telea 128x128x3, {:.1}% hidden, radius {RADIUS}: {per:?} per call (scratch reused)",
        100.0 * mask.coverage()
    );
}
