//! Image-quality metrics of restored images: PSNR and SSIM, over the whole image or only
//! over a region (the occluded pixels, where restoration actually happens).
//!
//! Images are planar `[C, H, W]` slices on a 0..1 scale. SSIM uses the usual constants
//! (Gaussian window σ = 1.5, 11 taps, `C1 = (0.01)²`, `C2 = (0.03)²`), computed per channel
//! on a same-size map with clamped borders so that it can be averaged over any region.

/// Mean squared error between `a` and `b` over the pixels where `region` is set (all pixels
/// when `None`), all channels. `region` has one entry per pixel (`H·W`). Returns `None`
/// when the region is empty.
pub fn region_mse(a: &[f32], b: &[f32], pixels: usize, region: Option<&[bool]>) -> Option<f64> {
    let channels = a.len() / pixels.max(1);
    let (mut sum, mut n) = (0.0f64, 0u64);
    for c in 0..channels {
        for p in 0..pixels {
            if region.is_none_or(|r| r[p]) {
                let d = f64::from(a[c * pixels + p]) - f64::from(b[c * pixels + p]);
                sum += d * d;
                n += 1;
            }
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// PSNR in dB (peak 1) of a mean squared error; capped at 100 dB for a perfect match.
pub fn psnr(mse: f64) -> f64 {
    if mse <= 1e-10 {
        100.0
    } else {
        -10.0 * mse.log10()
    }
}

const C1: f32 = 0.01 * 0.01;
const C2: f32 = 0.03 * 0.03;
const RADIUS: usize = 5;

fn gaussian_taps() -> [f32; 2 * RADIUS + 1] {
    let mut taps = [0.0f32; 2 * RADIUS + 1];
    let sigma = 1.5f32;
    for (i, t) in taps.iter_mut().enumerate() {
        let x = i as f32 - RADIUS as f32;
        *t = (-x * x / (2.0 * sigma * sigma)).exp();
    }
    let sum: f32 = taps.iter().sum();
    taps.map(|t| t / sum)
}

/// Separable Gaussian blur of one `w×h` plane, borders clamped.
fn blur(plane: &[f32], w: usize, h: usize, taps: &[f32]) -> Vec<f32> {
    let r = RADIUS as isize;
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = (-r..=r)
                .map(|k| taps[(k + r) as usize] * plane[y * w + clamp(x as isize + k, w)])
                .sum();
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (-r..=r)
                .map(|k| taps[(k + r) as usize] * tmp[clamp(y as isize + k, h) * w + x])
                .sum();
        }
    }
    out
}

/// Per-pixel SSIM of two `[C, H, W]` images, averaged over the channels: `H·W` values.
pub fn ssim_map(a: &[f32], b: &[f32], w: usize, h: usize) -> Vec<f32> {
    let taps = gaussian_taps();
    let n = w * h;
    let channels = a.len() / n.max(1);
    let mut map = vec![0.0f32; n];
    for c in 0..channels {
        let (pa, pb) = (&a[c * n..(c + 1) * n], &b[c * n..(c + 1) * n]);
        let prod = |f: &dyn Fn(usize) -> f32| (0..n).map(f).collect::<Vec<f32>>();
        let mu_a = blur(pa, w, h, &taps);
        let mu_b = blur(pb, w, h, &taps);
        let aa = blur(&prod(&|i| pa[i] * pa[i]), w, h, &taps);
        let bb = blur(&prod(&|i| pb[i] * pb[i]), w, h, &taps);
        let ab = blur(&prod(&|i| pa[i] * pb[i]), w, h, &taps);
        for i in 0..n {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let var_a = aa[i] - ma * ma;
            let var_b = bb[i] - mb * mb;
            let cov = ab[i] - ma * mb;
            let s = ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (var_a + var_b + C2));
            map[i] += s / channels as f32;
        }
    }
    map
}

/// Mean of `map` over `region` (all pixels when `None`); `None` if the region is empty.
pub fn region_mean(map: &[f32], region: Option<&[bool]>) -> Option<f64> {
    let (mut sum, mut n) = (0.0f64, 0u64);
    for (p, v) in map.iter().enumerate() {
        if region.is_none_or(|r| r[p]) {
            sum += f64::from(*v);
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Running means of PSNR and SSIM over samples, for the whole image and for a region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityStats {
    pub samples: u64,
    pub psnr_sum: f64,
    pub ssim_sum: f64,
    /// Samples whose region was not empty.
    pub region_samples: u64,
    pub region_psnr_sum: f64,
    pub region_ssim_sum: f64,
    /// Each sample's region PSNR, in order (`NaN` for an empty region), for confidence
    /// intervals and paired differences.
    pub region_psnrs: Vec<f64>,
}

/// Means of [`QualityStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    pub psnr: f64,
    pub ssim: f64,
    pub region_psnr: f64,
    pub region_ssim: f64,
}

impl QualityStats {
    /// Add one sample: `estimate` and `truth` `[C, H, W]` on 0..1, `region` `H·W`.
    pub fn add(&mut self, estimate: &[f32], truth: &[f32], w: usize, h: usize, region: &[bool]) {
        let n = w * h;
        let map = ssim_map(estimate, truth, w, h);
        self.samples += 1;
        self.psnr_sum += region_mse(estimate, truth, n, None).map_or(100.0, psnr);
        self.ssim_sum += region_mean(&map, None).unwrap_or(1.0);
        if let (Some(mse), Some(ssim)) = (
            region_mse(estimate, truth, n, Some(region)),
            region_mean(&map, Some(region)),
        ) {
            self.region_samples += 1;
            self.region_psnr_sum += psnr(mse);
            self.region_ssim_sum += ssim;
            self.region_psnrs.push(psnr(mse));
        } else {
            self.region_psnrs.push(f64::NAN);
        }
    }

    pub fn finish(&self) -> Quality {
        let (n, r) = (
            self.samples.max(1) as f64,
            self.region_samples.max(1) as f64,
        );
        Quality {
            psnr: self.psnr_sum / n,
            ssim: self.ssim_sum / n,
            region_psnr: self.region_psnr_sum / r,
            region_ssim: self.region_ssim_sum / r,
        }
    }
}

/// Bootstrap resamples behind every interval the reports give.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Seed of the reports' bootstrap resampling.
pub const BOOTSTRAP_SEED: u64 = 0xB007_5EED;

/// 95 % percentile-bootstrap interval of the mean over `groups` of each group's mean
/// (one group: the plain mean). Each replicate resamples every group's values with
/// replacement, independently, from the seeded stream `seed`, so a report reproduces.
/// For a paired comparison pass the per-sample differences. `NaN` values (samples with
/// nothing to score) are left out; `None` when a group has no value.
pub fn bootstrap_ci(groups: &[Vec<f64>], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    use rand::Rng as _;
    let groups: Vec<Vec<f64>> = groups
        .iter()
        .map(|g| g.iter().copied().filter(|v| !v.is_nan()).collect())
        .collect();
    if groups.is_empty() || groups.iter().any(Vec::is_empty) || resamples == 0 {
        return None;
    }
    let mut rng = unveil_shared::rng::stream(seed, 0xB007);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let total: f64 = groups
                .iter()
                .map(|g| {
                    let sum: f64 = (0..g.len()).map(|_| g[rng.random_range(0..g.len())]).sum();
                    sum / g.len() as f64
                })
                .sum();
            total / groups.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    Some((at(0.025), at(0.975)))
}

/// `a − b` per sample (paired: the same samples in the same order).
pub fn paired_differences(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_intervals_hold_the_mean_and_shrink_with_agreement() {
        // Constant values: the interval is the value itself.
        assert_eq!(bootstrap_ci(&[vec![2.5; 40]], 500, 1), Some((2.5, 2.5)));
        // 0..99: mean 49.5, standard error ≈ 2.9, so the 95 % interval is about ±5.7.
        let ramp: Vec<f64> = (0..100).map(f64::from).collect();
        let (lo, hi) = bootstrap_ci(std::slice::from_ref(&ramp), 2000, 7).unwrap();
        assert!(lo < 49.5 && hi > 49.5, "({lo}, {hi})");
        assert!((hi - lo - 11.3).abs() < 1.5, "width {}", hi - lo);
        // Seeded: the same interval again; two groups average their means (49.5 and 0).
        assert_eq!(
            bootstrap_ci(std::slice::from_ref(&ramp), 2000, 7),
            Some((lo, hi))
        );
        let (lo2, hi2) = bootstrap_ci(&[ramp.clone(), vec![0.0; 100]], 2000, 7).unwrap();
        assert!(
            lo2 < 24.75 && hi2 > 24.75 && hi2 - lo2 < hi - lo,
            "({lo2}, {hi2})"
        );
        // Paired differences: a constant shift of 1 dB is exactly 1 dB, however noisy
        // the samples themselves are.
        let shifted: Vec<f64> = ramp.iter().map(|v| v + 1.0).collect();
        let d = paired_differences(&shifted, &ramp);
        assert_eq!(bootstrap_ci(&[d], 500, 3), Some((1.0, 1.0)));
        // NaN samples are left out; a group with nothing left gives no interval.
        assert_eq!(
            bootstrap_ci(&[vec![f64::NAN, 3.0]], 100, 1),
            Some((3.0, 3.0))
        );
        assert_eq!(bootstrap_ci(&[vec![f64::NAN]], 100, 1), None);
        assert_eq!(bootstrap_ci(&[], 100, 1), None);
    }

    #[test]
    fn psnr_hand_values() {
        // MSE 0.01 → 20 dB; MSE 1e-4 → 40 dB.
        assert!((psnr(0.01) - 20.0).abs() < 1e-9);
        assert!((psnr(1e-4) - 40.0).abs() < 1e-9);
        assert_eq!(psnr(0.0), 100.0);
    }

    #[test]
    fn region_mse_counts_only_the_region() {
        // 1 channel, 4 pixels; differences 0, 0.5, 0, 1.
        let a = [0.0, 0.5, 0.2, 1.0];
        let b = [0.0, 0.0, 0.2, 0.0];
        assert_eq!(region_mse(&a, &b, 4, None), Some((0.25 + 1.0) / 4.0));
        let region = [false, true, false, true];
        assert_eq!(
            region_mse(&a, &b, 4, Some(&region)),
            Some((0.25 + 1.0) / 2.0)
        );
        assert_eq!(region_mse(&a, &b, 4, Some(&[false; 4])), None);
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let img: Vec<f32> = (0..3 * 64)
            .map(|i| ((i * 37) % 100) as f32 / 100.0)
            .collect();
        let map = ssim_map(&img, &img, 8, 8);
        assert!(map.iter().all(|s| (s - 1.0).abs() < 1e-5), "{map:?}");
    }

    #[test]
    fn ssim_of_flat_images_is_the_luminance_term() {
        // Flat images: variances and covariance are 0, so SSIM = (2ab + C1) / (a² + b² + C1).
        let (a, b) = (0.5f32, 0.7f32);
        let want = (2.0 * a * b + C1) / (a * a + b * b + C1);
        let map = ssim_map(&[a; 16], &[b; 16], 4, 4);
        // f32 blur sums leave ~1e-4 of rounding; the term itself is 0.054 below 1.
        assert!(
            map.iter().all(|s| (s - want).abs() < 5e-4),
            "{map:?} vs {want}"
        );
        assert!(want < 0.99);
    }

    #[test]
    fn ssim_drops_with_noise() {
        let clean: Vec<f32> = (0..256).map(|i| (i % 16) as f32 / 16.0).collect();
        let noisy: Vec<f32> = clean
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.2 } else { -0.2 })
            .collect();
        let s = region_mean(&ssim_map(&clean, &noisy, 16, 16), None).unwrap();
        assert!(s < 0.8, "{s}");
    }

    #[test]
    fn stats_average_per_sample() {
        let mut q = QualityStats::default();
        let truth = [0.0f32; 4];
        // Sample 1: MSE 0.01 everywhere → 20 dB; region = pixel 0 only → also 20 dB.
        q.add(&[0.1; 4], &truth, 2, 2, &[true, false, false, false]);
        // Sample 2: MSE 1e-4 → 40 dB; empty region: not counted in the region means.
        q.add(&[0.01; 4], &truth, 2, 2, &[false; 4]);
        let r = q.finish();
        assert!((r.psnr - 30.0).abs() < 1e-6, "{r:?}");
        assert!((r.region_psnr - 20.0).abs() < 1e-6, "{r:?}");
        assert_eq!(q.region_samples, 1);
    }
}
