//! `unveil inspect`: what a model folder holds and what tract makes of it (the optimised
//! graph's operators, and which of them are integer matrix products).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use unveil_shared::manifest::{hex, Quantisation, Role};

use super::runtime::Runner;
use super::{load_folder, ExportError};

/// A readable report of the model folder `dir`; with `all_ops`, every optimised node.
pub fn report(dir: &Path, all_ops: bool, profile: bool) -> Result<String, ExportError> {
    let (model, [stage1, stage2]) = load_folder(dir)?;
    let m = &model.manifest;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {:?} (manifest v{}): {}x{}, condition {}, {}",
        m.name,
        m.version,
        m.width,
        m.height,
        m.condition.name(),
        match m.quantisation {
            Quantisation::Float32 => "f32".to_string(),
            Quantisation::Int8 {
                calibration,
                samples,
                weights,
            } => format!(
                "int8 (QLinearConv, {weights:?} weight scales), activations calibrated \
                 {calibration:?} on {samples} samples"
            ),
        }
    );
    let _ = writeln!(
        s,
        "training config sha256 {}",
        hex(&m.training_config_sha256)
    );
    for (role, runner) in [(Role::Stage1, &stage1), (Role::Stage2, &stage2)] {
        let Some(file) = m.model(role) else { continue };
        let size = std::fs::metadata(dir.join(&file.file))
            .map(|md| md.len())
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "\n{:?}: {} ({:.1} KiB, sha256 {}), inputs {:?}",
            role,
            file.file,
            size as f64 / 1024.0,
            hex(&file.sha256),
            runner.input_shapes()
        );
        describe(&mut s, runner, all_ops)?;
        if profile {
            // A seeded input in [-1, 1] for every graph input: timing only.
            let inputs: Vec<Vec<f32>> = runner
                .input_shapes()
                .iter()
                .map(|shape| {
                    let n: usize = shape.iter().product();
                    (0..n).map(|i| ((i as f32) * 0.618).sin()).collect()
                })
                .collect();
            let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            runner.run(&refs)?; // warm-up
            let times = runner.profile(&refs)?;
            let total: f64 = times.iter().map(|t| t.1).sum();
            let _ = writeln!(s, "  one run, one core: {:.2} ms", total * 1e3);
            for (op, t) in times.iter().take(12) {
                let _ = writeln!(
                    s,
                    "    {op:<28} {:>8.3} ms {:>5.1}%",
                    t * 1e3,
                    100.0 * t / total.max(1e-12)
                );
            }
        }
    }
    Ok(s)
}

fn describe(s: &mut String, runner: &Runner, all_ops: bool) -> Result<(), ExportError> {
    let ops = runner.optimised_ops()?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &ops {
        *counts.entry(op.op.as_str()).or_default() += 1;
    }
    let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    let _ = writeln!(
        s,
        "  optimised graph: {} nodes: {}",
        ops.len(),
        list.join(", ")
    );
    let integer: Vec<_> = ops.iter().filter(|o| o.is_integer_matmul()).collect();
    let _ = writeln!(s, "  integer matrix products: {}", integer.len());
    // tract names the kernel it picked in each product's details: `... with [kernel]`.
    let mut kernels: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.op.contains("MatMul")) {
        for line in &op.info {
            if let Some(kernel) = line
                .split(" with [")
                .nth(1)
                .and_then(|k| k.split(']').next())
            {
                *kernels.entry(kernel).or_default() += 1;
            }
        }
    }
    let list: Vec<String> = kernels.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    let _ = writeln!(s, "  matrix-product kernels: {}", list.join(", "));
    if all_ops {
        for op in &ops {
            let _ = writeln!(
                s,
                "  {:<40} {:<24} {:?} -> {:?} {}",
                op.name,
                op.op,
                op.input_types,
                op.output_types,
                op.info.join("; ")
            );
        }
    }
    Ok(())
}
