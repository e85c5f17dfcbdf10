//! G1 as an ONNX graph: `image` `[1, 3, H, W]` → `texture` `[1, 6, H, W]`, exactly
//! [`crate::nets::stage1::Stage1Output::texture_map`] (the two-step part label included), so the
//! device never re-implements the label rule. A G1 with a downscale reads its image
//! through `AveragePool` and repeats its small map with `Resize` (nearest).

use tract_onnx::pb::{self, tensor_proto::DataType};
use unveil_shared::manifest::io;

use super::emit::{decoder, encoder, Emit, Emitter, Numerics, Probe};
use super::ExportError;
use crate::nets::stage1::{Stage1Net, NUM_PARTS, TEXTURE_CHANNELS};
use unveil_device::onnx::GraphBuilder;

/// G1's graph at a fixed `height` × `width`.
pub fn stage1_graph(
    net: &Stage1Net,
    height: usize,
    width: usize,
    numerics: Numerics,
) -> Result<(pb::ModelProto, Vec<Probe>), ExportError> {
    net.check_input([1, net.in_channels, height, width])?;
    let mut e = Emitter::new(numerics);
    let image = e.g.input(
        io::IMAGE,
        DataType::Float,
        &[1, net.in_channels, height, width],
    );
    let d = net.downscale;
    let x = if d > 1 {
        e.g.average_pool(&image, d)
    } else {
        image
    };
    let (z, skips) = encoder(&mut e, &x, &net.stem, &net.down, &net.down_conv)?;
    let features = decoder(&mut e, &z, &net.up, &net.up_conv, Some(&skips))?;
    let logits = net.part_head.emit(&mut e, &features)?;
    let uv = net.uv_head.emit(&mut e, &features)?;
    let uv = e.g.sigmoid(&uv);
    let albedo = net.albedo_head.emit(&mut e, &features)?;
    let albedo = e.g.sigmoid(&albedo);
    let texture = texture_map(&mut e.g, &logits, &uv, &albedo);
    // Pointwise from here, so repeating the small map equals the burn net's repeated heads.
    let texture = if d > 1 {
        e.g.resize_nearest(&texture, d)
    } else {
        texture
    };
    let dims = [1, TEXTURE_CHANNELS, height, width];
    e.g.output(&texture, io::TEXTURE, DataType::Float, Some(&dims));
    e.finish(
        "unveil_stage1",
        "Unveil G1: occluded image in [-1, 1] -> texture map (I/24, U, V, albedo RGB).",
    )
}

/// The texture map from G1's heads, as [`crate::nets::stage1::Stage1Output::texture_map`]
/// computes it: subject where `Σ_parts exp(logit_part − logit_bg) > 1`, part = first
/// argmax over parts + 1, channel 0 = part / 24, U, V and albedo zeroed off the subject.
fn texture_map(g: &mut GraphBuilder, logits: &str, uv: &str, albedo: &str) -> String {
    let background = g.slice_channels(logits, 0, 1);
    let parts = g.slice_channels(logits, 1, NUM_PARTS);
    let best = g.argmax_channels_unrolled(&parts, NUM_PARTS, 1.0);
    let one = g.const_f32("one", &[], &[1.0]);
    let relative = g.sub(&parts, &background);
    let exp = g.exp(&relative);
    let odds = g.reduce_sum_channels(&exp);
    let subject = g.less(&one, &odds);
    let subject = g.cast(&subject, DataType::Float);
    let label = g.mul(&best, &subject);
    let parts_count = g.const_f32("num_parts", &[], &[NUM_PARTS as f32]);
    let part = g.div(&label, &parts_count);
    let uv = g.mul(uv, &subject);
    let albedo = g.mul(albedo, &subject);
    g.concat(&[&part, &uv, &albedo], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::quantise::{ConvRanges, Range};
    use crate::nets::stage1::Stage1Config;
    use crate::test_util::device;
    use unveil_shared::manifest::WeightScales;

    /// Which convolutions the int8 graph quantises: all but the three output heads and the
    /// three full-resolution ones (stem, last up-sampling conv, last decoder conv), each
    /// with one scalar weight scale. The f32 up-sampling conv is the folded
    /// `ConvTranspose`, the quantised ones keep `Resize` + `QLinearConv`.
    #[test]
    fn int8_keeps_heads_and_full_resolution_in_f32() {
        let net = Stage1Config::tiny().init(&device()); // depth 3: 1 + 6 + 6 + 3 = 16 convs
        let r = Range {
            min: -1.0,
            max: 1.0,
        };
        let ranges = vec![
            ConvRanges {
                input: r,
                output: r
            };
            16
        ];
        let numerics = Numerics::Int8(&ranges, WeightScales::PerTensor);
        let (model, _) = stage1_graph(&net, 64, 64, numerics).unwrap();
        let graph = model.graph.unwrap();
        let count = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
        assert_eq!(
            (count("QLinearConv"), count("Conv"), count("ConvTranspose")),
            (10, 5, 1)
        );
        assert_eq!(count("Resize"), 2, "the two quantised up-sampling convs");
        // QLinearConv input 4 is the weight scale: a scalar initializer.
        for node in graph.node.iter().filter(|n| n.op_type == "QLinearConv") {
            let scale = graph
                .initializer
                .iter()
                .find(|t| t.name == node.input[4])
                .unwrap();
            assert!(scale.dims.is_empty(), "{:?}", scale.dims);
        }
        // Too few calibrated ranges is an error, not a panic.
        let short = Numerics::Int8(&ranges[..15], WeightScales::PerTensor);
        assert!(stage1_graph(&net, 64, 64, short).is_err());
    }
}
