//! Graphs in tract that are not a model the device would load: calibration's probe
//! graphs (an output per convolution) and `unveil inspect`'s operator lists and
//! per-operator timings. Models run through the device's `Model` and `Pipeline`
//! ([`super::pipeline`]).

use std::sync::Arc;

use tract_onnx::prelude::*;

use super::ExportError;

/// One node of tract's optimised graph, for `unveil inspect` and the integer-kernel test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimisedOp {
    pub name: String,
    /// Operator name in tract (`OptMatMul`, `Im2col`, ...).
    pub op: String,
    /// tract's own one-line details (for matrix products: the kernel, e.g. an `i32`
    /// accumulator kernel for integer convolutions).
    pub info: Vec<String>,
    /// Datum types of the node's inputs and outputs (`U8`, `I8`, `F32`, ...).
    pub input_types: Vec<String>,
    pub output_types: Vec<String>,
}

impl OptimisedOp {
    /// Whether this is a matrix product over 8-bit integers (tract's lowering of a
    /// quantised convolution), judged from the kernel tract picked.
    pub fn is_integer_matmul(&self) -> bool {
        self.op.contains("MatMul") && self.info.iter().any(|i| i.contains("i32"))
    }
}

/// A graph loaded into tract, optimised and ready to run.
pub struct Runner {
    plan: Arc<TypedSimplePlan>,
    model: TypedModel,
    input_shapes: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("input_shapes", &self.input_shapes)
            .finish()
    }
}

impl Runner {
    /// Parse and optimise ONNX `bytes`. Corrupt, truncated or unsupported graphs are an
    /// [`ExportError::Onnx`], never a panic (tract's parser is guarded, since the bytes
    /// come from a file).
    pub fn load(bytes: &[u8]) -> Result<Self, ExportError> {
        let bytes = bytes.to_vec();
        let loaded =
            std::panic::catch_unwind(move || -> TractResult<(TypedModel, Vec<Vec<usize>>)> {
                let model = tract_onnx::onnx().model_for_read(&mut bytes.as_slice())?;
                let model = model.into_optimized()?;
                let mut shapes = Vec::new();
                for outlet in model.input_outlets()? {
                    let fact = model.outlet_fact(*outlet)?;
                    let shape = fact
                        .shape
                        .as_concrete()
                        .ok_or_else(|| TractError::msg("graph input without a fixed shape"))?
                        .to_vec();
                    shapes.push(shape);
                }
                Ok((model, shapes))
            });
        let (model, input_shapes) = match loaded {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(ExportError::Onnx(format!("{e:#}"))),
            Err(_) => return Err(ExportError::Onnx("tract panicked while loading".into())),
        };
        let plan = model
            .clone()
            .into_runnable()
            .map_err(|e| ExportError::Onnx(format!("{e:#}")))?;
        Ok(Self {
            plan,
            model,
            input_shapes,
        })
    }

    /// A plan the device already compiled (its [`unveil_device::model::Model`]'s), with
    /// the graph behind it for reports.
    pub fn from_plan(plan: Arc<TypedSimplePlan>) -> Result<Self, ExportError> {
        let model = plan.model().clone();
        let mut input_shapes = Vec::new();
        for outlet in model
            .input_outlets()
            .map_err(|e| ExportError::Onnx(format!("{e:#}")))?
        {
            let fact = model
                .outlet_fact(*outlet)
                .map_err(|e| ExportError::Onnx(format!("{e:#}")))?;
            let shape = fact
                .shape
                .as_concrete()
                .ok_or_else(|| ExportError::Onnx("graph input without a fixed shape".into()))?;
            input_shapes.push(shape.to_vec());
        }
        Ok(Self {
            plan,
            model,
            input_shapes,
        })
    }

    /// Fixed shapes of the graph's inputs, in order.
    pub fn input_shapes(&self) -> &[Vec<usize>] {
        &self.input_shapes
    }

    /// Run on f32 inputs (row-major, one per graph input, in order); every output as f32.
    pub fn run(&self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>, ExportError> {
        if inputs.len() != self.input_shapes.len() {
            return Err(ExportError::Input(format!(
                "graph takes {} inputs, got {}",
                self.input_shapes.len(),
                inputs.len()
            )));
        }
        let mut values = TVec::new();
        for (data, shape) in inputs.iter().zip(&self.input_shapes) {
            let t = Tensor::from_shape(shape, data).map_err(|e| {
                ExportError::Input(format!(
                    "input of {} values for shape {shape:?}: {e}",
                    data.len()
                ))
            })?;
            values.push(t.into_tvalue());
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|e| ExportError::Run(format!("{e:#}")))?;
        outputs
            .iter()
            .map(|t| {
                let t = t
                    .cast_to::<f32>()
                    .map_err(|e| ExportError::Run(format!("{e:#}")))?;
                let plain = t
                    .try_as_plain_ram()
                    .map_err(|e| ExportError::Run(format!("{e:#}")))?;
                let slice = plain
                    .as_slice::<f32>()
                    .map_err(|e| ExportError::Run(format!("{e:#}")))?;
                Ok(slice.to_vec())
            })
            .collect()
    }

    /// Run once on `inputs` timing every node: seconds per operator name, largest first.
    pub fn profile(&self, inputs: &[&[f32]]) -> Result<Vec<(String, f64)>, ExportError> {
        let mut values = TVec::new();
        for (data, shape) in inputs.iter().zip(&self.input_shapes) {
            let t = Tensor::from_shape(shape, data)
                .map_err(|e| ExportError::Input(format!("{e:#}")))?;
            values.push(t.into_tvalue());
        }
        let mut state = tract_onnx::tract_core::plan::SimpleState::new(&self.plan)
            .map_err(|e| ExportError::Run(format!("{e:#}")))?;
        let mut times: std::collections::HashMap<String, f64> = Default::default();
        state
            .run_plan_with_eval(values, |ctx, op_state, node, input| {
                let start = std::time::Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
                *times.entry(node.op.name().to_string()).or_default() +=
                    start.elapsed().as_secs_f64();
                out
            })
            .map_err(|e| ExportError::Run(format!("{e:#}")))?;
        let mut times: Vec<(String, f64)> = times.into_iter().collect();
        times.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(times)
    }

    /// Every node of the optimised graph, in evaluation order.
    pub fn optimised_ops(&self) -> Result<Vec<OptimisedOp>, ExportError> {
        let m = &self.model;
        let order = m
            .eval_order()
            .map_err(|e| ExportError::Onnx(format!("{e:#}")))?;
        let mut ops = Vec::with_capacity(order.len());
        for id in order {
            let node = m.node(id);
            let input_types = node
                .inputs
                .iter()
                .map(|o| m.outlet_fact(*o).map(|f| format!("{:?}", f.datum_type)))
                .collect::<TractResult<Vec<_>>>()
                .map_err(|e| ExportError::Onnx(format!("{e:#}")))?;
            let output_types = node
                .outputs
                .iter()
                .map(|o| format!("{:?}", o.fact.datum_type))
                .collect();
            ops.push(OptimisedOp {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                info: node.op.info().unwrap_or_default(),
                input_types,
                output_types,
            });
        }
        Ok(ops)
    }
}
