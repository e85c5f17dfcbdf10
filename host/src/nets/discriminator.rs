//! The patch discriminator D of stage 2's adversarial loss (L3).

use burn::prelude::*;

use crate::nets::blocks::{Down, DownConfig, Head, HeadConfig};

/// Configuration of the patch discriminator D.
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Channels of the first layer; each of the `layers` stride-2 convs doubles them.
    #[config(default = 16)]
    pub base_width: usize,
    /// Stride-2 layers: each output logit sees a patch of about `2^(layers+1)` pixels.
    #[config(default = 3)]
    pub layers: usize,
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DiscriminatorConfig {
    pub fn init(&self, device: &Device) -> Discriminator {
        let mut convs = Vec::with_capacity(self.layers);
        let mut c = 3;
        for l in 0..self.layers {
            let out = self.base_width << l;
            convs.push(DownConfig::new(c, out).init(device));
            c = out;
        }
        Discriminator {
            convs,
            head: HeadConfig::new(c, 1).init(device),
        }
    }
}

/// PatchGAN-style discriminator: stride-2 conv + LeakyReLU layers, then a 1x1 conv to one
/// logit per patch. Judging patches rather than whole images keeps D small and its
/// gradient local, which is what inpainting needs (texture, not global layout).
#[derive(Module, Debug)]
pub struct Discriminator {
    convs: Vec<Down>,
    head: Head,
}

impl Discriminator {
    /// `x`: `[B, 3, H, W]` in [-1, 1] → patch logits `[B, 1, H/2^L, W/2^L]`
    /// (logit > 0: "real").
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for c in &self.convs {
            h = c.forward(h);
        }
        self.head.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn discriminator_gives_one_logit_per_patch() {
        let dev = device();
        let d = DiscriminatorConfig::new().init(&dev);
        assert_eq!(
            d.forward(Tensor::zeros([1, 3, 64, 64], &dev)).dims(),
            [1, 1, 8, 8]
        );
    }
}
