//! The networks: shared building blocks, G1 (texture map), the silhouette network S,
//! and G2 with its patch discriminator.

pub mod blocks;
pub mod discriminator;
pub mod silhouette;
pub mod stage1;
pub mod stage2;

/// A network input the model cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("expected {expected} input channels, got {actual}")]
    Channels { expected: usize, actual: usize },
    #[error("input {height}x{width} is not a positive multiple of {multiple} in both dimensions")]
    Size {
        height: usize,
        width: usize,
        multiple: usize,
    },
}

/// Check a network input `[B, C, H, W]`: `C == channels`, and H, W positive multiples of
/// `multiple` (each stride-2 level halves them; the decoder must land on the same sizes).
pub fn check_dims(dims: [usize; 4], channels: usize, multiple: usize) -> Result<(), ShapeError> {
    let [_, c, h, w] = dims;
    if c != channels {
        return Err(ShapeError::Channels {
            expected: channels,
            actual: c,
        });
    }
    if h == 0 || w == 0 || !h.is_multiple_of(multiple) || !w.is_multiple_of(multiple) {
        return Err(ShapeError::Size {
            height: h,
            width: w,
            multiple,
        });
    }
    Ok(())
}
