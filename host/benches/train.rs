//! Training speed at the `default` preset (128x128), all in one run:
//! `cargo bench -p unveil-host --bench train [-- FILTER]`.
//!
//! 1. **profile**: where one step of G1 and of G2 at batch 8 goes (data, forward,
//!    backward, optimizer), on burn's flex backend with every core;
//! 2. **burn vs PyTorch**: the bare network step (fixed batch, forward + backward + Adam)
//!    of the same layers in burn and in `benches/torch/train_step.py`, interleaved round
//!    by round, with the ratios: batch 8 whole (the old default), batch 16 whole, and
//!    batch 16 cut in two parts trained in parallel (`Trainer::step_sharded`, today's
//!    `unveil train` default). Needs `UNVEIL_TORCH=/path/to/python` (a venv with torch);
//!    skipped without it;
//! 3. **`unveil train`**: samples/s of the real training runs (data included) of G2, G1
//!    and S in those three settings, the cores each kept busy, and flex against the
//!    portable ndarray backend.
//!
//! FILTER picks sections and networks by substring (`profile`, `torch`, `harness`,
//! `stage1`, ...). `UNVEIL_BENCH_ROUNDS` sets the interleaved rounds (default 3).

use std::process::Command;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use unveil_host::data::synth::SynthConfig;
use unveil_host::data::{Loader, SampleBatch, SampleSource};
use unveil_host::losses::{reconstruction_loss, Stage1LossConfig};
use unveil_host::nets::blocks::seeded_init;
use unveil_host::nets::stage1::{Stage1Config, Stage1Net};
use unveil_host::nets::stage2::{Condition, HoleInput, Stage2Config, Stage2Net};
use unveil_host::train::harness::{self, Network, Preset, Progress, RunConfig};
use unveil_host::train::{cpu_device, BackendKind, Batch, TrainConfig, Trainer};
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};

/// Seconds spent in each phase of `steps` steps, and the steps.
#[derive(Default, Clone, Copy)]
struct Phases {
    data: f64,
    forward: f64,
    backward: f64,
    optimizer: f64,
    steps: usize,
}

/// The profile's batch (the old default), and the data-parallel default: two parts of 8.
const BATCH: usize = 8;
const BATCH2: usize = 16;
const SIZE: usize = 128;

impl Phases {
    fn print(&self, name: &str) {
        let total = self.data + self.forward + self.backward + self.optimizer;
        let pct = |v: f64| 100.0 * v / total.max(1e-12);
        let ms = |v: f64| 1e3 * v / self.steps.max(1) as f64;
        println!(
            "profile {name}: {:.0} ms/step = data {:.0} ms ({:.0} %), forward {:.0} ms ({:.0} %), \
             backward {:.0} ms ({:.0} %), optimizer {:.0} ms ({:.0} %)",
            ms(total),
            ms(self.data),
            pct(self.data),
            ms(self.forward),
            pct(self.forward),
            ms(self.backward),
            pct(self.backward),
            ms(self.optimizer),
            pct(self.optimizer)
        );
    }
}

fn loader() -> Loader {
    let source = SampleSource::Generated {
        cfg: SynthConfig::new(SIZE).expect("size"),
        seed: 1,
        count: 64,
    };
    Loader::new(source, OcclusionSpec::new(OcclusionMode::Mixed), 1)
        .expect("loader")
        .with_telea(true)
}

/// Times `steps` steps of `loss(model, batch)` with an Adam update, phase by phase. With
/// `fresh_data`, each step renders its batch (the data phase); otherwise one batch is
/// reused and the data phase reads 0.
fn time_steps<M, F>(mut model: M, steps: usize, fresh_data: bool, loss: F) -> Phases
where
    M: burn::module::Module,
    F: Fn(&M, &SampleBatch) -> Tensor<1>,
{
    let device = cpu_device().autodiff();
    let data = loader();
    let mut optim: ModuleOptimizer = burn::optim::AdamConfig::new().init();
    let mut phases = Phases::default();
    let fixed = data.batch(0, BATCH, &device).expect("batch");
    for step in 0..=steps {
        let t0 = Instant::now();
        let batch = if fresh_data {
            data.batch(step, BATCH, &device).expect("batch")
        } else {
            fixed.clone()
        };
        let t1 = Instant::now();
        let l = loss(&model, &batch);
        // Reading the value waits for the forward pass on any backend.
        let _: f32 = l.clone().into_scalar();
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let t3 = Instant::now();
        model = optim.step(1e-4, model, grads);
        let t4 = Instant::now();
        if step > 0 {
            // Step 0 warms up (allocations, caches) and is not counted.
            phases.data += (t1 - t0).as_secs_f64();
            phases.forward += (t2 - t1).as_secs_f64();
            phases.backward += (t3 - t2).as_secs_f64();
            phases.optimizer += (t4 - t3).as_secs_f64();
            phases.steps += 1;
        }
    }
    phases
}

/// G1 at the default preset reading the Telea-filled hole input, with its stage-1 loss.
fn g1_phases(steps: usize, fresh_data: bool) -> Phases {
    let device = cpu_device().autodiff();
    let hole = HoleInput::Telea;
    let model = seeded_init(
        Stage1Config::default().with_hole_input(hole).init(&device),
        1,
    );
    let loss = Stage1LossConfig::new();
    time_steps(model, steps, fresh_data, move |m, b| {
        let out = m.forward(b.hole_input(hole).expect("hole input"));
        loss.forward(&out, b.texture.clone()).expect("loss").total
    })
}

/// G2 at the default preset (hole-aware, texture condition) with L2 on its composite; the
/// condition is the batch's true texture map (G1 is not part of G2's step).
fn g2_phases(steps: usize, fresh_data: bool) -> Phases {
    let device = cpu_device().autodiff();
    let hole = HoleInput::Telea;
    let cfg = Stage2Config::default()
        .with_condition(Condition::Texture)
        .with_hole(hole);
    let model = seeded_init(cfg.init(&device), 2);
    time_steps(model, steps, fresh_data, move |m, b| {
        let x = Tensor::cat(
            vec![b.hole_input(hole).expect("hole input"), b.texture.clone()],
            1,
        );
        reconstruction_loss(b.clean.clone(), m.forward(x).restored)
    })
}

/// Samples/s of `steps` [`Trainer::step_sharded`] updates on one fixed batch of `batch`
/// (after one warm-up step), cut into `shards` parts trained in parallel: the network
/// step `unveil train` takes, without its data.
fn trainer_samples_per_s(net: &str, batch: usize, shards: usize, steps: usize) -> f64 {
    let device = cpu_device().autodiff();
    let hole = HoleInput::Telea;
    let b = loader().batch(0, batch, &device).expect("batch");
    let image = b.hole_input(hole).expect("hole input");
    let config = TrainConfig::new().with_batch_size(batch);
    let time = |mut step: Box<dyn FnMut()>| {
        step();
        let start = Instant::now();
        for _ in 0..steps {
            step();
        }
        (steps * batch) as f64 / start.elapsed().as_secs_f64()
    };
    if net == "g1" {
        let model = seeded_init(
            Stage1Config::default().with_hole_input(hole).init(&device),
            1,
        );
        let mut t = Trainer::new(model, config);
        let loss = Stage1LossConfig::new();
        let fixed = Batch {
            input: image,
            target: b.texture.clone(),
        };
        time(Box::new(move || {
            t.step_sharded(fixed.clone(), shards, &|m: &Stage1Net, b: Batch| {
                Ok(vec![
                    loss.forward(&m.try_forward(b.input)?, b.target)?.total,
                ])
            })
            .expect("step");
        }))
    } else {
        let cfg = Stage2Config::default()
            .with_condition(Condition::Texture)
            .with_hole(hole);
        let mut t = Trainer::new(seeded_init(cfg.init(&device), 2), config);
        let fixed = Batch {
            input: Tensor::cat(vec![image, b.texture.clone()], 1),
            target: b.clean.clone(),
        };
        time(Box::new(move || {
            t.step_sharded(fixed.clone(), shards, &|m: &Stage2Net, b: Batch| {
                Ok(vec![reconstruction_loss(
                    b.target,
                    m.try_forward(b.input)?.restored,
                )])
            })
            .expect("step");
        }))
    }
}

/// This process's CPU seconds (user + system) so far, from `/proc/self/stat` (Linux);
/// `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name's closing parenthesis; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The PyTorch twin's samples/s at `batch`, or why not.
fn torch_samples_per_s(python: &str, net: &str, batch: usize, steps: usize) -> Result<f64, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch/train_step.py");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = Command::new(python)
        .args([script, "--net", net, "--batch", &batch.to_string()])
        .args([
            "--steps",
            &steps.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("{e}: {line}"))?;
    json["samples_per_s"]
        .as_f64()
        .ok_or_else(|| format!("no samples_per_s in {line}"))
}

/// Samples/s of `steps` `unveil train` steps (after one warm-up step, not counted) of
/// `batch`, each cut into `shards` parallel parts, and the cores they kept busy (CPU time
/// over wall time; `NaN` where unknown). Stage 2 freezes G1 and S from one-step runs
/// made first in the same temporary folder.
fn harness_throughput(
    network: Network,
    backend: BackendKind,
    (batch, shards): (usize, usize),
    steps: usize,
) -> (f64, f64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = |network, steps| {
        let mut c = RunConfig::new(network, Preset::Default, steps, "generated".into());
        c.checkpoint_every = usize::MAX;
        c.train = TrainConfig::new().with_batch_size(batch);
        c.shards = shards;
        c.stage1 = c.stage1.clone().with_hole_input(HoleInput::Telea);
        c.stage2 = c.stage2.clone().with_hole(HoleInput::Telea);
        c.stage1_run = Some(tmp.path().join("stage1"));
        c.silhouette_run = Some(tmp.path().join("silhouette"));
        c
    };
    let source = || SampleSource::Generated {
        cfg: SynthConfig::new(SIZE).expect("size"),
        seed: 1,
        count: 512,
    };
    let run = |network: Network, steps, resume| {
        harness::run(
            &config(network, steps),
            &tmp.path().join(network.name()),
            source(),
            backend,
            resume,
            None,
            Progress::Quiet,
        )
        .expect("train")
    };
    if network == Network::Stage2 {
        run(Network::Stage1, 1, false);
        run(Network::Silhouette, 1, false);
    }
    run(network, 1, false);
    let (start, cpu) = (Instant::now(), cpu_seconds());
    run(network, 1 + steps, true);
    let wall = start.elapsed().as_secs_f64();
    let busy = match (cpu, cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) / wall,
        _ => f64::NAN,
    };
    ((steps * batch) as f64 / wall, busy)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |words: &[&str]| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| words.iter().any(|w| w.contains(f.as_str())))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "training speed, {SIZE}x{SIZE}, rayon threads {}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| threads.to_string())
    );

    if wants(&["profile", "stage1", "stage2"]) {
        g1_phases(4, true).print("stage1 (G1, Telea hole input)");
        g2_phases(4, true).print("stage2 (G2 alone, L2)");
    }

    if wants(&["torch", "stage1", "stage2"]) {
        match std::env::var("UNVEIL_TORCH") {
            Err(_) => {
                println!("burn vs PyTorch: skipped (set UNVEIL_TORCH to a python with torch)")
            }
            Ok(python) => {
                let rounds = std::env::var("UNVEIL_BENCH_ROUNDS")
                    .ok()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(3usize);
                let steps = 5;
                // The settings compared, (batch, parts): the old default, the same
                // samples per step on one thread, and `unveil train`'s default.
                let settings = [(BATCH, 1), (BATCH2, 1), (BATCH2, 2)];
                for net in ["g1", "g2"] {
                    let mut sums = [[0.0f64; 2]; 3];
                    let mut done = 0;
                    'rounds: for round in 1..=rounds {
                        let mut line = format!("{net} round {round}:");
                        let mut got = [[0.0f64; 2]; 3];
                        for (k, &(batch, shards)) in settings.iter().enumerate() {
                            let burn = trainer_samples_per_s(net, batch, shards, steps);
                            let torch = match torch_samples_per_s(&python, net, batch, steps) {
                                Ok(v) => v,
                                Err(e) => {
                                    println!("burn vs PyTorch: {e}");
                                    break 'rounds;
                                }
                            };
                            got[k] = [burn, torch];
                            line += &format!(
                                " batch {batch} in {shards}: burn {burn:.2}, PyTorch {torch:.2} \
                                 ({:.2}x);",
                                burn / torch
                            );
                        }
                        for (s, g) in sums.iter_mut().zip(got) {
                            s[0] += g[0];
                            s[1] += g[1];
                        }
                        done += 1;
                        println!("{line}");
                    }
                    for (&(batch, shards), [burn, torch]) in settings.iter().zip(sums) {
                        if done == 0 {
                            break;
                        }
                        let (burn, torch) = (burn / done as f64, torch / done as f64);
                        println!(
                            "{net} batch {batch} in {shards} part(s), mean of {done} rounds \
                             ({threads} threads): burn {burn:.2}, PyTorch {torch:.2} samples/s, \
                             burn/PyTorch {:.2}x",
                            burn / torch
                        );
                    }
                }
            }
        }
    }

    if wants(&["harness"]) {
        for network in [Network::Stage2, Network::Stage1, Network::Silhouette] {
            let name = network.name();
            let (old, old_busy) = harness_throughput(network, BackendKind::Flex, (BATCH, 1), 5);
            let (whole, whole_busy) =
                harness_throughput(network, BackendKind::Flex, (BATCH2, 1), 3);
            let (parts, parts_busy) =
                harness_throughput(network, BackendKind::Flex, (BATCH2, 2), 3);
            let (ndarray, _) = harness_throughput(network, BackendKind::NdArray, (BATCH2, 2), 1);
            println!(
                "unveil train {name} (flex): batch {BATCH} whole {old:.2} samples/s \
                 ({old_busy:.2} cores busy), batch {BATCH2} whole {whole:.2} ({whole_busy:.2}), \
                 batch {BATCH2} in 2 parts {parts:.2} ({parts_busy:.2}); 2 parts over batch \
                 {BATCH} whole {:.2}x; ndarray {ndarray:.2} samples/s, flex/ndarray {:.1}x",
                parts / old,
                parts / ndarray
            );
        }
    }
}
