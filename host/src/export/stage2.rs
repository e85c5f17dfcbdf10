//! G2 as an ONNX graph: `image` `[1, 3, H, W]` (`[1, 4, H, W]` with the hole plane) and,
//! unless the condition is
//! [`Condition::None`], `condition` `[1, C, H, W]` → `restored`, `foreground`,
//! `background` `[1, 3, H, W]` and `alpha` `[1, 1, H, W]`. Encoder, both decoders and the
//! compositor only: S and D are training-time networks.

use tract_onnx::pb::{self, tensor_proto::DataType};
use unveil_shared::manifest::{io, Condition};

use super::emit::{decoder, encoder, Emit, Emitter, Numerics, Probe};
use super::ExportError;
use crate::nets::stage2::Stage2Net;

/// G2's graph at a fixed `height` × `width`, conditioned on `condition`.
pub fn stage2_graph(
    net: &Stage2Net,
    condition: Condition,
    height: usize,
    width: usize,
    numerics: Numerics,
) -> Result<(pb::ModelProto, Vec<Probe>), ExportError> {
    let planes = net.hole().image_channels();
    net.check_input([1, planes + condition.channels(), height, width])?;
    let mut e = Emitter::new(numerics);
    let image =
        e.g.input(io::IMAGE, DataType::Float, &[1, planes, height, width]);
    let x = match condition.channels() {
        0 => image.clone(),
        c => {
            let cond =
                e.g.input(io::CONDITION, DataType::Float, &[1, c, height, width]);
            e.g.concat(&[&image, &cond], 1)
        }
    };
    let (z, skips) = encoder(&mut e, &x, &net.stem, &net.down, &net.down_conv)?;
    let latent = net
        .down_conv
        .last()
        .map(|c| c.parts().0.weight.dims()[0])
        .ok_or_else(|| ExportError::Architecture("G2 has no encoder levels".into()))?;
    let z1 = e.g.slice_channels(&z, 0, latent / 2);
    let z2 = e.g.slice_channels(&z, latent / 2, latent - latent / 2);

    let fg = decoder(&mut e, &z1, &net.fg_up, &net.fg_conv, None)?;
    let fg = net.fg_head.emit(&mut e, &fg)?;
    let fg_rgb = e.g.slice_channels(&fg, 0, 3);
    let foreground = e.g.tanh(&fg_rgb);
    let fg_alpha = e.g.slice_channels(&fg, 3, 1);
    let alpha = e.g.sigmoid(&fg_alpha);

    let bg = decoder(&mut e, &z2, &net.bg_up, &net.bg_conv, Some(&skips))?;
    let bg = net.bg_head.emit(&mut e, &bg)?;
    let background = e.g.tanh(&bg);
    // Hole-aware G2: both decoders add to the pre-filled RGB, clamped (burn's forward).
    let (foreground, background) = if planes > 3 {
        let rgb = e.g.slice_channels(&image, 0, 3);
        let fg = e.g.add(&rgb, &foreground);
        let bg = e.g.add(&rgb, &background);
        (e.g.clip(&fg, -1.0, 1.0), e.g.clip(&bg, -1.0, 1.0))
    } else {
        (foreground, background)
    };

    // ŷ = α·y_f + (1 − α)·y_b, in the order burn's `composite` evaluates it.
    let one = e.g.const_f32("one", &[], &[1.0]);
    let one_minus = e.g.sub(&one, &alpha);
    let fg_part = e.g.mul(&foreground, &alpha);
    let bg_part = e.g.mul(&background, &one_minus);
    let restored = e.g.add(&fg_part, &bg_part);

    let rgb = [1, 3, height, width];
    e.g.output(&restored, io::RESTORED, DataType::Float, Some(&rgb));
    e.g.output(&foreground, io::FOREGROUND, DataType::Float, Some(&rgb));
    e.g.output(&background, io::BACKGROUND, DataType::Float, Some(&rgb));
    e.g.output(
        &alpha,
        io::ALPHA,
        DataType::Float,
        Some(&[1, 1, height, width]),
    );
    e.finish(
        "unveil_stage2",
        "Unveil G2: occluded image in [-1, 1] (+ condition) -> restored, foreground, \
         background in [-1, 1] and alpha in 0..1; restored = alpha*fg + (1-alpha)*bg.",
    )
}
