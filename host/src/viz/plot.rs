//! Loss curves as PNG-ready images, drawn with the shared bitmap font.
//!
//! Hand-written because the plotting crates need a TrueType font file at run time, and a
//! training run must be able to draw its curve on a headless machine with nothing installed.

use unveil_shared::ImageU8;

use crate::viz::sheet::draw_text;

/// One named curve: `(x, y)` points in drawing order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];
const MARGIN: usize = 40;

/// Draw `series` on a white `width x height` chart. The y axis is logarithmic when every y
/// is positive (losses spanning decades stay readable), linear otherwise. Non-finite points
/// are skipped.
pub fn line_chart(series: &[Series], width: usize, height: usize) -> ImageU8 {
    let (width, height) = (width.max(2 * MARGIN + 10), height.max(2 * MARGIN + 10));
    let mut img = ImageU8::new(width, height, 3);
    img.data.fill(255);
    let finite = || {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let log = finite().all(|&(_, y)| y > 0.0);
    let ty = |y: f64| if log { y.log10() } else { y };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    }
    let (pw, ph) = ((width - 2 * MARGIN) as f64, (height - 2 * MARGIN) as f64);
    let to_px = |x: f64, y: f64| {
        let px = MARGIN as f64 + (x - x0) / (x1 - x0) * pw;
        let py = (height - MARGIN) as f64 - (ty(y) - y0) / (y1 - y0) * ph;
        (px, py)
    };
    // Axes.
    let grey = [90, 90, 90];
    line(
        &mut img,
        (MARGIN as f64, MARGIN as f64),
        (MARGIN as f64, (height - MARGIN) as f64),
        grey,
    );
    let base = (height - MARGIN) as f64;
    line(
        &mut img,
        (MARGIN as f64, base),
        ((width - MARGIN) as f64, base),
        grey,
    );
    let fmt_y = |v: f64| format!("{:.3}", if log { 10f64.powf(v) } else { v });
    draw_text(&mut img, 2, MARGIN - 10, &fmt_y(y1), grey, 1);
    draw_text(&mut img, 2, height - MARGIN + 3, &fmt_y(y0), grey, 1);
    draw_text(
        &mut img,
        MARGIN,
        height - MARGIN + 12,
        &format!("{x0:.0}"),
        grey,
        1,
    );
    let right = format!("{x1:.0}");
    draw_text(
        &mut img,
        width.saturating_sub(MARGIN + 6 * right.len()),
        height - MARGIN + 12,
        &right,
        grey,
        1,
    );
    if log {
        draw_text(&mut img, MARGIN + 4, MARGIN - 10, "LOG SCALE", grey, 1);
    }
    // Curves and legend.
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let pts: Vec<_> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        for w in pts.windows(2) {
            line(
                &mut img,
                to_px(w[0].0, w[0].1),
                to_px(w[1].0, w[1].1),
                colour,
            );
        }
        if let [only] = pts.as_slice() {
            line(
                &mut img,
                to_px(only.0, only.1),
                to_px(only.0, only.1),
                colour,
            );
        }
        draw_text(
            &mut img,
            width.saturating_sub(MARGIN + unveil_shared::font::ADVANCE * s.name.len() + 2),
            MARGIN + 4 + 10 * k,
            &s.name,
            colour,
            1,
        );
    }
    img
}

/// Anti-aliasing-free line by uniform stepping: simple and never out of bounds.
fn line(img: &mut ImageU8, (ax, ay): (f64, f64), (bx, by): (f64, f64), colour: [u8; 3]) {
    let steps = ((bx - ax).abs().max((by - ay).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = ((ax + (bx - ax) * t).round(), (ay + (by - ay) * t).round());
        if x >= 0.0 && y >= 0.0 && (x as usize) < img.width && (y as usize) < img.height {
            let i = y as usize * img.width + x as usize;
            img.pixel_mut(i).copy_from_slice(&colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coloured(img: &ImageU8, colour: [u8; 3]) -> Vec<(usize, usize)> {
        (0..img.pixel_count())
            .filter(|&i| img.pixel(i) == colour)
            .map(|i| (i % img.width, i / img.width))
            .collect()
    }

    #[test]
    fn falling_curve_goes_down_and_right() {
        let s = Series {
            name: "loss".into(),
            points: (0..50)
                .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
                .collect(),
        };
        let img = line_chart(&[s], 300, 200);
        let px: Vec<_> = coloured(&img, PALETTE[0])
            .into_iter()
            .filter(|&(x, y)| !(x > 150 && y < MARGIN + 14)) // legend
            .collect();
        let first = px.iter().min_by_key(|p| p.0).unwrap();
        let last = px.iter().max_by_key(|p| p.0).unwrap();
        assert_eq!(first.0, MARGIN);
        assert_eq!(first.1, MARGIN, "max value at the top");
        assert_eq!(last.1, 200 - MARGIN, "min value at the bottom");
    }

    #[test]
    fn degenerate_input_does_not_panic() {
        line_chart(&[], 10, 10);
        line_chart(
            &[Series {
                name: "one".into(),
                points: vec![(3.0, 3.0)],
            }],
            100,
            100,
        );
        line_chart(
            &[Series {
                name: "nan".into(),
                points: vec![(0.0, f64::NAN), (1.0, -2.0), (2.0, f64::INFINITY)],
            }],
            100,
            100,
        );
    }
}
