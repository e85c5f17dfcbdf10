//! The occlusion detector as an ONNX graph: `image` `[1, 3, H, W]` (the plain frame in
//! [-1, 1]) → `occlusion` `[1, 1, H, W]` logits, exactly
//! [`Silhouette::forward`](crate::nets::silhouette::Silhouette::forward). Always f32: it
//! runs only in blind mode, and a logit near 0 decides whether a pixel is rewritten, so
//! it is kept out of int8's rounding.

use tract_onnx::pb::{self, tensor_proto::DataType};
use unveil_shared::manifest::io;

use super::emit::{Emit, Emitter, Numerics};
use super::ExportError;
use crate::nets::silhouette::Silhouette;

/// The detector's graph at a fixed `height` × `width`.
pub fn occlusion_graph(
    net: &Silhouette,
    height: usize,
    width: usize,
) -> Result<pb::ModelProto, ExportError> {
    net.check_input([1, net.in_channels, height, width])?;
    let (first, deeper) = net
        .down
        .split_first()
        .ok_or_else(|| ExportError::Architecture("detector without a level".into()))?;
    let mut e = Emitter::new(Numerics::Float);
    let x = e.g.input(
        io::IMAGE,
        DataType::Float,
        &[1, net.in_channels, height, width],
    );
    // Encoder: the outputs at each level, shallowest first, as in `Silhouette::forward`.
    let e0 = net.stem.emit(&mut e, &x)?;
    let d0 = first.emit(&mut e, &e0)?;
    let e1 = net.mid.emit(&mut e, &d0)?;
    let mut skips = vec![e0, e1];
    for down in deeper {
        let last = skips[skips.len() - 1].clone();
        skips.push(down.emit(&mut e, &last)?);
    }
    let mut y = skips.pop().unwrap_or_default();
    for up in &net.up {
        let skip = skips
            .pop()
            .ok_or_else(|| ExportError::Architecture("an Up without its skip".into()))?;
        let lifted = up.emit(&mut e, &y)?;
        y = e.g.concat(&[&lifted, &skip], 1);
    }
    let logits = net.head.emit(&mut e, &y)?;
    e.g.output(
        &logits,
        io::OCCLUSION,
        DataType::Float,
        Some(&[1, 1, height, width]),
    );
    Ok(e.finish(
        "unveil_occlusion",
        "Unveil occlusion detector: frame in [-1, 1] -> per-pixel logit, hidden where > 0.",
    )?
    .0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::runtime::Runner;
    use crate::nets::blocks::seeded_init;
    use crate::nets::silhouette::SilhouetteConfig;
    use crate::test_util::device;
    use burn::prelude::*;

    /// tract runs the exported graph to the burn network's logits.
    #[test]
    fn graph_matches_the_network() {
        let dev = device();
        let net = seeded_init(SilhouetteConfig::tiny().init(&dev), 5);
        let (h, w) = (16, 24);
        let input: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [1, 3, h, w]), &dev);
        let want: Vec<f32> = net.forward(x).into_data().try_to_vec().unwrap();
        let graph = occlusion_graph(&net, h, w).unwrap();
        let runner = Runner::load(&unveil_device::onnx::encode(&graph)).unwrap();
        let got = runner.run(&[&input]).unwrap().swap_remove(0);
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "max |tract - burn| = {worst}");
    }

    #[test]
    fn refuses_a_size_the_network_cannot_take() {
        let net = SilhouetteConfig::tiny().init(&device());
        assert!(occlusion_graph(&net, 12, 16).is_err());
    }
}
