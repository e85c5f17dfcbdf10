//! Comparisons between burn, the f32 graphs and the int8 graphs: the numbers the parity
//! tests, the bench and `unveil export --check` report.

use burn::prelude::*;
use unveil_shared::hole::HoleInput;
use unveil_shared::manifest::Condition;

use unveil_device::pipeline::Pipeline;

use super::ExportError;
use crate::nets::stage1::Stage1Net;
use crate::nets::stage2::{condition_tensor, stage2_input, Stage2Net};

/// G1 then G2 in burn on one image input `[C, H, W]` (CHW, normalised; `C` = 3, or 4 with
/// the hole plane, see [`unveil_shared::hole`]): the texture map and
/// G2's `restored`, `foreground`, `background`, `alpha`, each flattened, in the graph
/// contract's output order.
pub fn burn_pipeline(
    g1: &Stage1Net,
    g2: &Stage2Net,
    condition: Condition,
    image: &[f32],
    height: usize,
    width: usize,
    device: &Device,
) -> Result<(Vec<f32>, [Vec<f32>; 4]), ExportError> {
    let x = Tensor::<4>::from_data(
        TensorData::new(
            image.to_vec(),
            [1, image.len() / (height * width).max(1), height, width],
        ),
        device,
    );
    let out1 = g1.try_forward(x.clone())?;
    let texture = flat(out1.texture_map())?;
    let out2 = g2.try_forward(stage2_input(x, condition_tensor(condition, &out1, None)))?;
    Ok((
        texture,
        [
            flat(out2.restored)?,
            flat(out2.foreground)?,
            flat(out2.background)?,
            flat(out2.alpha)?,
        ],
    ))
}

/// G1 then G2 in tract through the device's own [`Pipeline`] on one prepared image input;
/// same layout as [`burn_pipeline`].
pub fn tract_pipeline(
    pipeline: &mut Pipeline,
    image: &[f32],
) -> Result<(Vec<f32>, [Vec<f32>; 4]), ExportError> {
    Ok(pipeline.infer(image)?)
}

fn flat(t: Tensor<4>) -> Result<Vec<f32>, ExportError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ExportError::Weights(format!("{e:?}")))
}

/// Largest absolute difference (infinite when the lengths differ or a value is NaN).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() {
            f32::INFINITY
        } else {
            m.max(d)
        }
    })
}

/// PSNR in dB of two images normalised to [-1, 1] (peak-to-peak 2), over the pixels
/// where `mask` (one value per pixel, broadcast over channels) is non-zero, or all pixels.
/// `None` when no pixel is selected or the lengths differ; infinite when identical.
pub fn psnr_signed(a: &[f32], b: &[f32], mask: Option<&[f32]>) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    let plane = mask.map_or(a.len(), <[f32]>::len).max(1);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if mask.is_some_and(|m| m.get(i % plane).copied().unwrap_or(0.0) == 0.0) {
            continue;
        }
        let d = f64::from(x - y);
        sum += d * d;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let mse = sum / n as f64;
    Some(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (4.0 / mse).log10()
    })
}

/// Restoration quality on the occluded pixels of held-out samples, f32 against int8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OccludedPsnr {
    /// PSNR (dB) of `restored` against the clean image over the hidden pixels of all
    /// samples together (pooled MSE), for the f32 and the int8 graphs.
    pub f32_db: f64,
    pub int8_db: f64,
    /// PSNR (dB) of int8 `restored` against f32 `restored`, all pixels, pooled.
    pub int8_vs_f32_db: f64,
    pub samples: usize,
}

/// [`OccludedPsnr`] of two models' device pipelines (f32 and int8) on the first
/// `count` samples of `loader` (occluded as the loader's spec says, seeded; built
/// [`with_telea`](crate::data::Loader::with_telea) for a Telea-filled `hole`). `restored`
/// is scored as the graphs return it, before any composite.
pub fn occluded_psnr(
    float: &mut Pipeline,
    int8: &mut Pipeline,
    hole: HoleInput,
    loader: &crate::data::Loader,
    count: usize,
) -> Result<OccludedPsnr, ExportError> {
    let device = crate::train::cpu_device();
    let (mut se_f, mut se_q, mut n) = (0.0f64, 0.0f64, 0usize);
    let (mut se_qf, mut n_all) = (0.0f64, 0usize);
    for k in 0..count {
        let b = loader.batch(k, 1, &device)?;
        let occluded = flat(b.hole_input(hole)?)?;
        let (clean, hidden) = (flat(b.clean)?, flat(b.hidden)?);
        let (_, f) = tract_pipeline(float, &occluded)?;
        let (_, q) = tract_pipeline(int8, &occluded)?;
        for (a, b) in f[0].iter().zip(&q[0]) {
            se_qf += f64::from(a - b).powi(2);
            n_all += 1;
        }
        let plane = hidden.len().max(1);
        for (i, ((c, a), b)) in clean.iter().zip(&f[0]).zip(&q[0]).enumerate() {
            if hidden.get(i % plane).copied().unwrap_or(0.0) > 0.0 {
                se_f += f64::from(a - c).powi(2);
                se_q += f64::from(b - c).powi(2);
                n += 1;
            }
        }
    }
    let db = |se: f64, n: usize| {
        if n == 0 || se == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (4.0 * n as f64 / se).log10()
        }
    };
    Ok(OccludedPsnr {
        f32_db: db(se_f, n),
        int8_db: db(se_q, n),
        int8_vs_f32_db: db(se_qf, n_all),
        samples: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_known_error() {
        // Error 0.02 everywhere on a peak-to-peak-2 scale: 10·log10(4 / 0.0004) = 40 dB.
        let a = vec![0.5f32; 12];
        let b: Vec<f32> = a.iter().map(|v| v + 0.02).collect();
        let p = psnr_signed(&a, &b, None).unwrap_or(0.0);
        assert!((p - 40.0).abs() < 1e-3, "{p}");
        // Masked: only pixel 1 of a 2-pixel, 2-channel image differs, and only it counts.
        let a = [0.0f32, 0.0, 0.0, 0.0];
        let b = [0.0f32, 0.2, 0.0, 0.2];
        let p = psnr_signed(&a, &b, Some(&[0.0, 1.0])).unwrap_or(0.0);
        assert!((p - 10.0 * (4.0f64 / 0.04).log10()).abs() < 1e-3, "{p}");
        assert_eq!(psnr_signed(&a, &a, None), Some(f64::INFINITY));
        assert_eq!(psnr_signed(&a, &b, Some(&[0.0, 0.0])), None);
        assert_eq!(max_abs_diff(&a, &b), 0.2);
        assert_eq!(max_abs_diff(&a, &b[..3]), f32::INFINITY);
    }
}
