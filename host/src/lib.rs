//! Unveil host: synthetic data with exact texture-map ground truth, training, evaluation
//! and export of the two restoration networks.

// In the order data flows: samples, networks, losses, training, evaluation, export,
// pictures.
pub mod data;
pub mod eval;
pub mod export;
pub mod losses;
pub mod nets;
pub mod train;
pub mod viz;

#[cfg(test)]
pub(crate) mod test_util {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::*;

    /// The CPU test device.
    pub fn device() -> Device {
        crate::train::cpu_device()
    }

    /// A `[1]` tensor's value.
    pub fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    /// Every float parameter of `m`, flattened, in visiting order.
    pub fn param_values<M: Module>(m: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(
                    param
                        .val()
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap(),
                );
            }
        }
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0
    }
}
