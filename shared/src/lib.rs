//! Conventions the Unveil host (training) and device (inference) must agree on.
//!
//! Everything here is `no_std` + `alloc` so that a camera-side microcontroller can use the
//! same types; the `std` feature adds `std::error::Error` impls and atomic file writes.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod files;
pub mod font;
pub mod hole;
pub mod image;
pub mod inpaint;
pub mod link;
pub mod manifest;
pub mod occlusion;
pub mod patches;
pub mod report;
pub mod rng;
pub mod sensor;
pub mod texture;

pub use image::{ImageError, ImageU8, Mask, Normalisation};
pub use texture::{IuvMap, NUM_PARTS, TEXTURE_CHANNELS};
