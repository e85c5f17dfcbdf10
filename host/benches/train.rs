//! Training throughput of G1 and S at the `default` preset (128x128, batch 8), on the CPU
//! backends side by side in one run: `cargo bench -p unveil-host --bench train`.

use std::time::Instant;

use unveil_host::data::SampleSource;
use unveil_host::harness::{self, Network, Preset, Progress, RunConfig};
use unveil_host::losses::Stage1LossConfig;
use unveil_host::synth::SynthConfig;
use unveil_host::train::{BackendKind, TrainConfig};
use unveil_shared::occlusion::{OcclusionMode, OcclusionSpec};

/// Samples/s of `steps` training steps (after one warm-up step, not counted).
fn throughput(network: Network, backend: BackendKind, steps: usize) -> f64 {
    let preset = Preset::Default;
    let batch = 8;
    let config = |steps| RunConfig {
        network,
        preset,
        steps,
        checkpoint_every: usize::MAX,
        train: TrainConfig::new().with_batch_size(batch),
        stage1: preset.stage1(),
        silhouette: preset.silhouette(),
        loss: Stage1LossConfig::new(),
        occlusion: OcclusionSpec::new(OcclusionMode::Mixed),
        data: "generated".into(),
    };
    let source = || SampleSource::Generated {
        cfg: SynthConfig::new(128).expect("size"),
        seed: 1,
        count: 512,
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    harness::run(
        &config(1),
        tmp.path(),
        source(),
        backend,
        false,
        Progress::Quiet,
    )
    .expect("warm-up");
    let start = Instant::now();
    harness::run(
        &config(1 + steps),
        tmp.path(),
        source(),
        backend,
        true,
        Progress::Quiet,
    )
    .expect("train");
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters by network name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for network in [Network::Stage1, Network::Silhouette] {
        let name = format!("{network:?}").to_lowercase();
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let flex = throughput(network, BackendKind::Flex, 5);
        let ndarray = throughput(network, BackendKind::NdArray, 1);
        println!(
            "train {name} 128x128 batch 8: flex {flex:.2} samples/s, ndarray {ndarray:.2} samples/s, flex/ndarray {:.1}x",
            flex / ndarray
        );
    }
}
