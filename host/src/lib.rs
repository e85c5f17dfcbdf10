//! Unveil host: synthetic data with exact texture-map ground truth, training, evaluation
//! and export of the two restoration networks.

pub mod dataset;
pub mod plot;
pub mod sheet;
pub mod synth;
