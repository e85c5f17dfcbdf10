//! The decoders' upsampling layers in tract on one core, written both ways, interleaved in
//! one run: `cargo bench -p unveil-device --bench upsample`.
//!
//! "literal" is `Resize(nearest, ×2)` then `Conv(3x3, pad 1)`; "folded" is the one
//! `ConvTranspose` the exporter writes in f32 (`GraphBuilder::conv_upsampled2x`). Shapes
//! are the `Up` layers of the default preset's decoders (width 8, depth 4, 128×128 output:
//! G2 has two decoders of these, G1 one). Both forms are checked to agree before timing.

use std::time::Instant;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::SimpleState;
use unveil_device::onnx::{encode, ConvWeights, GraphBuilder};

/// `(in channels, out channels, input side)` of each `Up`, deepest first.
const LAYERS: [(usize, usize, usize); 4] = [(64, 64, 8), (64, 32, 16), (32, 16, 32), (16, 8, 64)];
const ROUNDS: usize = 40;
const RUNS_PER_ROUND: usize = 20;

fn weights(cout: usize, cin: usize) -> ConvWeights {
    ConvWeights {
        weight: (0..cout * cin * 9)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
            .collect(),
        shape: [cout, cin, 3, 3],
        bias: vec![0.1; cout],
        stride: [1, 1],
        pads: [1; 4],
    }
}

fn state(cin: usize, side: usize, w: &ConvWeights, folded: bool) -> TypedSimpleState {
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[1, cin, side, side]);
    let y = if folded {
        g.conv_upsampled2x(&x, w)
    } else {
        let up = g.resize_nearest(&x, 2);
        g.conv(&up, w)
    };
    let y = g.leaky_relu(&y, 0.2);
    g.output(&y, "y", DataType::Float, None);
    let bytes = encode(&g.finish("up", ""));
    let plan = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("graph loads");
    SimpleState::new(&plan).expect("state")
}

fn run(s: &mut TypedSimpleState, x: &Tensor) -> Vec<f32> {
    let out = s
        .run(tvec![TValue::from_const(x.clone().into())])
        .expect("runs");
    let plain = out[0].try_as_plain_ram().expect("plain");
    plain.as_slice::<f32>().expect("f32").to_vec()
}

fn main() {
    println!("Up layer (in → out channels, side)   literal ms   folded ms   speed-up");
    let (mut total_literal, mut total_folded) = (0.0, 0.0);
    for (cin, cout, side) in LAYERS {
        let w = weights(cout, cin);
        let mut states = [state(cin, side, &w, false), state(cin, side, &w, true)];
        let x: Tensor =
            tract_ndarray::Array4::<f32>::from_shape_fn((1, cin, side, side), |(_, c, i, j)| {
                ((c + i * 3 + j) % 11) as f32 / 11.0
            })
            .into();
        let (a, b) = (run(&mut states[0], &x), run(&mut states[1], &x));
        let diff = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "the two forms differ by {diff}");
        let mut t = [0.0f64; 2];
        for _ in 0..ROUNDS {
            for (k, s) in states.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..RUNS_PER_ROUND {
                    run(s, &x);
                }
                t[k] += start.elapsed().as_secs_f64();
            }
        }
        let per = |v: f64| v / (ROUNDS * RUNS_PER_ROUND) as f64 * 1e3;
        total_literal += per(t[0]);
        total_folded += per(t[1]);
        println!(
            "{:>4} → {:<3} {:>3}×{:<3} → {:>3}×{:<3}      {:>9.3}   {:>9.3}   {:>7.2}x",
            cin,
            cout,
            side,
            side,
            2 * side,
            2 * side,
            per(t[0]),
            per(t[1]),
            t[0] / t[1]
        );
    }
    println!(
        "one decoder, all four levels:        {total_literal:>9.3}   {total_folded:>9.3}   {:>7.2}x",
        total_literal / total_folded
    );
}
