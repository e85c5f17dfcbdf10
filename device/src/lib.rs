//! Unveil device runtime: the camera-side half of the product.
//!
//! A verified model folder ([`model`], f32 or int8 as [`precision`] picks) runs as a
//! [`pipeline`] of two tract plans; frames come
//! from image files ([`source`]) or a camera over the framed link ([`serve`], on a
//! [`transport`]), pass a bounded drop-oldest [`queue`] and are guarded by a [`watchdog`].
//! [`sensor`] programs the camera sensor itself over `embedded-hal` (the driver is the
//! shared crate's, `no_std`); [`camera`] captures from V4L2 (feature `camera`). [`bench`]
//! measures the pipeline, [`alloc_count`] counts heap allocations for the zero-allocation
//! checks, and [`fixture`] writes small contract-conforming model folders for tests and
//! bring-up.

pub mod alloc_count;
pub mod bench;
pub mod camera;
pub mod fixture;
pub mod latency;
pub mod model;
pub mod onnx;
pub mod pipeline;
pub mod precision;
pub mod queue;
pub mod region;
pub mod sensor;
pub mod serve;
pub mod source;
pub mod transport;
pub mod watchdog;

use unveil_shared::texture::{NUM_PARTS, TEXTURE_CHANNELS};
use unveil_shared::Normalisation;

/// A human-readable summary of the input conventions this build expects.
pub fn conventions() -> String {
    let n = Normalisation::default();
    format!(
        "input: RGB u8 HWC -> CHW f32, (x/255 - {:?}) / {:?}\ntexture map: {} channels (I/{}, U, V, albedo RGB)",
        n.mean, n.std, TEXTURE_CHANNELS, NUM_PARTS
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn conventions_name_the_layout() {
        let text = super::conventions();
        assert!(text.contains("6 channels"), "{text}");
        assert!(text.contains("I/24"), "{text}");
    }
}
