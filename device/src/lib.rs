//! Unveil device runtime: the camera-side half of the product.
//!
//! For now it exposes the conventions it shares with the host, so that a board can report
//! what it expects before models are deployed to it.

pub mod sensor;

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
