//! One stage-2 training step: frozen G1 → condition → G2 → D update → G2 update.
//!
//! D and G2 alternate inside each step: D first learns from the current ŷ (detached), then
//! G2 is updated against the freshly updated D. G1 and S are frozen: their parameters
//! require no gradient, so no optimizer ever sees them and their weights never change
//! (tested below).

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;

use crate::data::SampleBatch;
use crate::losses::{
    background_patch_loss, discriminator_loss, generator_adversarial_loss, hidden_log_mse,
    masked_mse, matte_loss, reconstruction_loss, silhouette_feature_loss, PatchTargets,
    Stage2LossConfig,
};
use crate::nets::discriminator::Discriminator;
use crate::nets::silhouette::Silhouette;
use crate::nets::stage1::Stage1Net;
use crate::nets::stage2::{condition_tensor, stage2_input, Condition, Stage2Net, Stage2Output};
use crate::train::{shard_rows, CheckpointError, TrainConfig, TrainError, Trainer};

/// Sub-folder of a checkpoint holding D's state.
pub const DISCRIMINATOR_DIR: &str = "discriminator";

/// Names of the values [`Stage2Learner::learn`] returns, in order.
pub const LOSS_NAMES: [&str; 9] = [
    "total",
    "l2_reconstruction",
    "l3_adversarial",
    "l4_silhouette",
    "l5_patch",
    "l2_hidden",
    "d_loss",
    "matte",
    "hidden_log",
];

/// G2 and D with their optimizers, plus the frozen networks they lean on.
#[derive(Clone)]
pub struct Stage2Learner {
    pub g: Trainer<Stage2Net>,
    pub d: Trainer<Discriminator>,
    g1: Stage1Net,
    s: Silhouette,
    pub losses: Stage2LossConfig,
    pub condition: Condition,
    /// Parts G2's batch is cut into and trained in parallel (1: the whole batch at once).
    pub shards: usize,
}

impl Stage2Learner {
    /// `g`, `d`: trainers on an autodiff device; `g1`, `s`: trained networks on the same
    /// device (frozen here).
    pub fn new(
        g: Trainer<Stage2Net>,
        d: Trainer<Discriminator>,
        g1: Stage1Net,
        s: Silhouette,
        losses: Stage2LossConfig,
        condition: Condition,
    ) -> Self {
        Self {
            g,
            d,
            g1: g1.freeze(),
            s: s.freeze(),
            losses,
            condition,
            shards: 1,
        }
    }

    /// Restore G2's and D's trainers from a checkpoint written by [`save`](Self::save).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        g_template: Stage2Net,
        d_template: Discriminator,
        config: TrainConfig,
        dir: &Path,
        g1: Stage1Net,
        s: Silhouette,
        losses: Stage2LossConfig,
        condition: Condition,
    ) -> Result<Self, CheckpointError> {
        let g = Trainer::resume(g_template, config.clone(), dir)?;
        let d = Trainer::resume(d_template, config, &dir.join(DISCRIMINATOR_DIR))?;
        Ok(Self::new(g, d, g1, s, losses, condition))
    }

    /// Write G2's state into `dir` and D's into `dir/discriminator`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.g.save(dir)?;
        self.d.save(&dir.join(DISCRIMINATOR_DIR))
    }

    /// The frozen silhouette network (for tests and reports).
    pub fn silhouette(&self) -> &Silhouette {
        &self.s
    }

    /// G2's input for `batch`: its image input per G2's hole input and, per the
    /// condition, the frozen G1's texture map or its silhouette (no gradient), each
    /// network reading the image in its own hole-aware form.
    pub fn input(&self, batch: &SampleBatch) -> Result<Tensor<4>, TrainError> {
        let condition = match self.condition {
            Condition::None => None,
            // The oracle needs no G1: the batch carries the exact map.
            Condition::Truth => Some(batch.texture.clone()),
            c => {
                let g1_input = batch
                    .hole_input(self.g1.hole())
                    .map_err(|e| TrainError::Data(e.to_string()))?;
                condition_tensor(c, &self.g1.try_forward(g1_input)?, None).map(Tensor::detach)
            }
        };
        let image = batch
            .hole_input(self.g.model.hole())
            .map_err(|e| TrainError::Data(e.to_string()))?;
        Ok(stage2_input(image, condition))
    }

    /// One D update and one G2 update on `batch`. Returns [`LOSS_NAMES`]' values (the
    /// unweighted terms; L2 is always reported, any other term whose weight is 0 is not
    /// computed and reads 0). With [`shards`](Self::shards) > 1, G2's forward and
    /// backward run on that many parts of the batch in parallel (see
    /// [`Trainer::step_sharded`]); D's update, between them, sees the whole batch.
    pub fn learn(&mut self, batch: SampleBatch) -> Result<Vec<f32>, TrainError> {
        use rayon::prelude::*;
        let input = self.input(&batch)?;
        let w = self.losses.clone();
        let n = self.shards.max(1);
        let (mut inputs, mut parts) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (((share, input), (_, clean)), ((_, hidden), (_, mask))) in shard_rows(input, n)
            .into_iter()
            .zip(shard_rows(batch.clean.clone(), n))
            .zip(
                shard_rows(batch.hidden, n)
                    .into_iter()
                    .zip(shard_rows(batch.mask, n)),
            )
        {
            let patches = if w.patch_weight != 0.0 {
                Some(PatchTargets::from_masks(
                    mask.clone(),
                    w.patch_size,
                    w.patch_stride,
                )?)
            } else {
                None
            };
            inputs.push(input);
            parts.push((share, clean, hidden, mask, patches));
        }
        let Self { g, d, s, .. } = self;
        // G2's forward on each part, each replica on its own autodiff graph (a clone of
        // a replica is the same graph's nodes, so its gradients are the replica's).
        let replicas = g.replicas(parts.len());
        let outs = replicas
            .clone()
            .into_par_iter()
            .zip(inputs)
            .map(|(m, input)| m.try_forward(input))
            .collect::<Result<Vec<_>, _>>()?;
        // D learns from the current ŷ of the whole batch, then judges each part.
        let mut d_value = 0.0;
        if w.adversarial_weight != 0.0 {
            let fake = Tensor::cat(
                outs.iter().map(|o| o.restored.clone().detach()).collect(),
                0,
            );
            let real = batch.clean;
            d_value = d
                .step_with(|dm| Ok(vec![discriminator_loss(dm.forward(real), dm.forward(fake))]))?
                [0];
        }
        let judges = d.replicas(parts.len());
        let work = parts
            .into_iter()
            .zip(outs.into_iter().zip(judges))
            .map(|((share, clean, hidden, mask, patches), (out, judge))| {
                (share, (clean, hidden, mask, patches, out, judge, s.clone()))
            })
            .collect();
        let (mut values, grads) = g.shard_gradients(replicas, work, &|_: &Stage2Net,
                                                                       (
            clean,
            hidden,
            mask,
            patches,
            out,
            judge,
            s,
        ): Stage2Part| {
            stage2_losses(&w, clean, hidden, mask, patches, out, &judge, &s)
        })?;
        g.apply(grads);
        // D's loss sits before the matte term in LOSS_NAMES (the matte and hidden_log
        // columns came later, appended so older metrics.csv columns keep their places).
        values.insert(values.len() - 2, d_value);
        Ok(values)
    }

    /// This learner with G2's batches cut into `shards` parallel parts.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }
}

/// One part of a stage-2 batch, with G2's output on it and the networks that score it:
/// clean image, hidden mask, subject mask, L5's targets, G2's output, D, S.
type Stage2Part = (
    Tensor<4>,
    Tensor<4>,
    Tensor<4>,
    Option<PatchTargets>,
    Stage2Output,
    Discriminator,
    Silhouette,
);

/// G2's loss terms on one part, total first, in [`LOSS_NAMES`]' order without D's.
#[allow(clippy::too_many_arguments)]
fn stage2_losses(
    w: &Stage2LossConfig,
    clean: Tensor<4>,
    hidden: Tensor<4>,
    mask: Tensor<4>,
    patches: Option<PatchTargets>,
    out: Stage2Output,
    judge: &Discriminator,
    s: &Silhouette,
) -> Result<Vec<Tensor<1>>, TrainError> {
    let device = out.restored.device();
    let zero = || Tensor::<1>::zeros([1], &device);
    let adversarial = if w.adversarial_weight != 0.0 {
        generator_adversarial_loss(judge.forward(out.restored.clone()))
    } else {
        zero()
    };
    let reconstruction = reconstruction_loss(clean.clone(), out.restored.clone());
    let silhouette = if w.silhouette_weight != 0.0 {
        silhouette_feature_loss(s, out.foreground.clone(), clean.clone())
    } else {
        zero()
    };
    let patch = match &patches {
        Some(t) => background_patch_loss(out.background.clone(), clean.clone(), t),
        None => zero(),
    };
    let hidden_log = if w.hidden_log_weight != 0.0 {
        hidden_log_mse(out.restored.clone(), clean.clone(), hidden.clone())
    } else {
        zero()
    };
    let hidden = if w.hidden_weight != 0.0 {
        masked_mse(out.restored.clone(), clean.clone(), hidden)
    } else {
        zero()
    };
    let matte = if w.matte_weight != 0.0 {
        matte_loss(out.alpha.clone(), mask)
    } else {
        zero()
    };
    let total = reconstruction
        .clone()
        .mul_scalar(w.reconstruction_weight)
        .add(adversarial.clone().mul_scalar(w.adversarial_weight))
        .add(silhouette.clone().mul_scalar(w.silhouette_weight))
        .add(patch.clone().mul_scalar(w.patch_weight))
        .add(hidden.clone().mul_scalar(w.hidden_weight))
        .add(matte.clone().mul_scalar(w.matte_weight))
        .add(hidden_log.clone().mul_scalar(w.hidden_log_weight));
    Ok(vec![
        total,
        reconstruction,
        adversarial,
        silhouette,
        patch,
        hidden,
        matte,
        hidden_log,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::SynthConfig;
    use crate::data::{Loader, SampleSource};
    use crate::nets::blocks::seeded_init;
    use crate::nets::discriminator::DiscriminatorConfig;
    use crate::nets::silhouette::SilhouetteConfig;
    use crate::nets::stage1::Stage1Config;
    use crate::nets::stage2::Stage2Config;
    use crate::test_util::{device, param_values};
    use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};
    use unveil_shared::texture::TEXTURE_CHANNELS;

    fn learner(condition: Condition, losses: Stage2LossConfig, lr: f64) -> Stage2Learner {
        let dev = device().autodiff();
        let config = TrainConfig::new().with_batch_size(4).with_learning_rate(lr);
        let g = seeded_init(Stage2Config::tiny().with_condition(condition).init(&dev), 1);
        let d = seeded_init(DiscriminatorConfig::new().with_base_width(8).init(&dev), 2);
        let g1 = seeded_init(Stage1Config::tiny().init(&dev), 3);
        let s = seeded_init(SilhouetteConfig::tiny().init(&dev), 4);
        Stage2Learner::new(
            Trainer::new(g, config.clone()),
            Trainer::new(d, config),
            g1,
            s,
            losses,
            condition,
        )
    }

    fn loader() -> Loader {
        let source = SampleSource::Generated {
            cfg: SynthConfig::new(64).unwrap(),
            seed: 5,
            count: 64,
        };
        Loader::new(source, OcclusionSpec::new(OcclusionMode::Mixed), 5).unwrap()
    }

    /// After G2 steps with every loss on, S (and G1) have exactly their old weights, their
    /// parameters require no gradient, while G2 and D did change.
    #[test]
    fn frozen_networks_do_not_move() {
        let mut l = learner(
            Condition::Texture,
            Stage2LossConfig::new()
                .with_patch_size(8)
                .with_patch_stride(4)
                .with_hidden_weight(1.0)
                .with_matte_weight(1.0)
                .with_hidden_log_weight(1.0),
            1e-3,
        );
        let (s0, g10) = (param_values(&l.s), param_values(&l.g1));
        let (g0, d0) = (param_values(&l.g.model), param_values(&l.d.model));
        let data = loader();
        let dev = device().autodiff();
        for step in 0..2 {
            let values = l.learn(data.batch(step, 4, &dev).unwrap()).unwrap();
            assert_eq!(values.len(), LOSS_NAMES.len());
            // Every term is computed (hidden_log, a logarithm, is negative).
            assert!(
                values.iter().all(|v| v.is_finite() && *v != 0.0),
                "{values:?}"
            );
        }
        assert_eq!(param_values(&l.s), s0, "S moved");
        assert_eq!(param_values(&l.g1), g10, "G1 moved");
        assert_ne!(param_values(&l.g.model), g0, "G2 did not learn");
        assert_ne!(param_values(&l.d.model), d0, "D did not learn");
        assert!(!any_requires_grad(&l.s) && !any_requires_grad(&l.g1));
        assert!(any_requires_grad(&l.g.model));
    }

    /// The oracle condition feeds G2 the batch's exact texture map after the image input
    /// (G1 is not consulted), and a step with it learns like any other.
    #[test]
    fn oracle_input_is_the_image_then_the_true_texture_map() {
        let mut l = learner(Condition::Truth, Stage2LossConfig::new(), 1e-3);
        let dev = device().autodiff();
        let batch = loader().batch(0, 4, &dev).unwrap();
        let input = l.input(&batch).unwrap();
        let image = batch.hole_input(l.g.model.hole()).unwrap();
        let c = image.dims()[1];
        assert_eq!(input.dims()[1], c + TEXTURE_CHANNELS);
        let value = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert_eq!(value(input.clone().narrow(1, 0, c)), value(image));
        assert_eq!(
            value(input.narrow(1, c, TEXTURE_CHANNELS)),
            value(batch.texture.clone())
        );
        let g0 = param_values(&l.g.model);
        let values = l.learn(batch).unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
        assert_ne!(param_values(&l.g.model), g0, "G2 did not learn");
    }

    /// G2 trained in two parallel parts reports the whole batch's terms (per-pixel
    /// means, to rounding; D's loss over the whole batch), learns, leaves the frozen
    /// networks alone, and gives the same bits run after run.
    #[test]
    fn sharded_step_reports_the_whole_batch_terms() {
        let dev = device().autodiff();
        let batch = || loader().batch(0, 4, &dev).unwrap();
        let whole = learner(Condition::Texture, Stage2LossConfig::new(), 1e-3)
            .learn(batch())
            .unwrap();
        let sharded = || {
            let mut l = learner(Condition::Texture, Stage2LossConfig::new(), 1e-3).with_shards(2);
            let (g0, s0) = (param_values(&l.g.model), param_values(&l.s));
            let values = l.learn(batch()).unwrap();
            assert_ne!(param_values(&l.g.model), g0, "G2 did not learn");
            assert_eq!(param_values(&l.s), s0, "S moved");
            (values, param_values(&l.g.model), param_values(&l.d.model))
        };
        let (values, g, d) = sharded();
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
        for name in ["l2_reconstruction", "l4_silhouette", "d_loss"] {
            let at = LOSS_NAMES.iter().position(|n| *n == name).unwrap();
            assert!(
                close(values[at], whole[at]),
                "{name}: {values:?} vs {whole:?}"
            );
        }
        let again = sharded();
        assert!(
            values == again.0 && g == again.1 && d == again.2,
            "not deterministic"
        );
    }

    /// The loss weights with the method's four terms (L2–L5) switched off.
    fn method_terms_off() -> Stage2LossConfig {
        Stage2LossConfig::new()
            .with_reconstruction_weight(0.0)
            .with_adversarial_weight(0.0)
            .with_silhouette_weight(0.0)
            .with_patch_weight(0.0)
    }

    /// With every other weight 0, the total is exactly `hidden_weight` × the hidden-pixel
    /// term, and that term is the squared error over the occluded pixels only.
    #[test]
    fn hidden_term_is_the_occluded_pixels_error() {
        let losses = method_terms_off().with_hidden_weight(3.0);
        let mut l = learner(Condition::None, losses, 1e-3);
        let dev = device().autodiff();
        let batch = loader().batch(0, 4, &dev).unwrap();
        let out = l.g.model.forward(l.input(&batch).unwrap());
        let want = crate::test_util::scalar(masked_mse(
            out.restored,
            batch.clean.clone(),
            batch.hidden.clone(),
        ));
        let values = l.learn(batch).unwrap();
        assert!(want > 0.0);
        assert!(
            (values[5] - want).abs() < 1e-6 * want.max(1.0),
            "{values:?} vs {want}"
        );
        assert!((values[0] - 3.0 * want).abs() < 1e-5, "{values:?}");
        assert!(values[1] > 0.0, "L2 is reported even at weight 0");
    }

    /// With every other weight 0, the total is `matte_weight` × the matte term, and that
    /// term compares G2's alpha with the subject's true mask.
    #[test]
    fn matte_term_is_alpha_against_the_subject_mask() {
        let losses = method_terms_off().with_matte_weight(2.0);
        let mut l = learner(Condition::Texture, losses, 1e-3);
        let dev = device().autodiff();
        let batch = loader().batch(0, 4, &dev).unwrap();
        let out = l.g.model.forward(l.input(&batch).unwrap());
        let want = crate::test_util::scalar(matte_loss(out.alpha, batch.mask.clone()));
        let values = l.learn(batch).unwrap();
        let matte = LOSS_NAMES.iter().position(|n| *n == "matte").unwrap();
        assert!(want > 0.0);
        assert!((values[matte] - want).abs() < 1e-6, "{values:?} vs {want}");
        assert!((values[0] - 2.0 * want).abs() < 1e-5, "{values:?}");
    }

    /// With every other weight 0, the total is `hidden_log_weight` × the per-image log
    /// term, computed on ŷ against the clean image over the occluded pixels.
    #[test]
    fn hidden_log_term_scores_each_image_on_a_log_scale() {
        let losses = method_terms_off().with_hidden_log_weight(0.5);
        let mut l = learner(Condition::None, losses, 1e-3);
        let dev = device().autodiff();
        let batch = loader().batch(0, 4, &dev).unwrap();
        let out = l.g.model.forward(l.input(&batch).unwrap());
        let want = crate::test_util::scalar(hidden_log_mse(
            out.restored,
            batch.clean.clone(),
            batch.hidden.clone(),
        ));
        let values = l.learn(batch).unwrap();
        let at = LOSS_NAMES.iter().position(|n| *n == "hidden_log").unwrap();
        assert!(want < 0.0, "an MSE below 1 has a negative log: {want}");
        assert!((values[at] - want).abs() < 1e-5, "{values:?} vs {want}");
        assert!((values[0] - 0.5 * want).abs() < 1e-5, "{values:?}");
    }

    fn any_requires_grad<M: Module>(m: &M) -> bool {
        use burn::module::{ModuleVisitor, Param};
        struct Any(bool);
        impl ModuleVisitor for Any {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0 |= p.val().is_require_grad();
            }
        }
        let mut a = Any(false);
        m.visit(&mut a);
        a.0
    }

    /// L4's gradient reaches G2 through y_f but never S: a backward pass of L4 alone gives
    /// no gradient for any of S's parameters and some for G2's.
    #[test]
    fn silhouette_loss_has_no_gradient_for_s() {
        use burn::module::{ModuleVisitor, Param};
        let l = learner(Condition::None, Stage2LossConfig::new(), 1e-3);
        let dev = device().autodiff();
        let x = Tensor::<4>::random(
            [1, 3, 64, 64],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );
        let out = l.g.model.forward(x.clone());
        let grads = silhouette_feature_loss(&l.s, out.foreground, x).backward();
        struct Count<'a>(&'a burn::tensor::Gradients, usize, usize);
        impl ModuleVisitor for Count<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                match p.val().grad(self.0) {
                    Some(_) => self.1 += 1,
                    None => self.2 += 1,
                }
            }
        }
        let mut s_count = Count(&grads, 0, 0);
        l.s.visit(&mut s_count);
        assert_eq!(s_count.1, 0, "S got gradients");
        let mut g_count = Count(&grads, 0, 0);
        l.g.model.visit(&mut g_count);
        assert!(g_count.1 > 0, "G2 got no gradient");
    }

    #[test]
    fn disabled_terms_read_zero_and_skip_d() {
        let losses = Stage2LossConfig::new()
            .with_adversarial_weight(0.0)
            .with_silhouette_weight(0.0)
            .with_patch_weight(0.0);
        let mut l = learner(Condition::Silhouette, losses, 1e-3);
        let d0 = param_values(&l.d.model);
        let values = l
            .learn(loader().batch(0, 4, &device().autodiff()).unwrap())
            .unwrap();
        assert!(values[1] > 0.0);
        assert_eq!(
            &values[2..],
            &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "L3, L4, L5, hidden, D, matte, hidden_log"
        );
        assert!((values[0] - values[1]).abs() < 1e-6, "total = L2 alone");
        assert_eq!(param_values(&l.d.model), d0, "D trained with L3 off");
    }
}
