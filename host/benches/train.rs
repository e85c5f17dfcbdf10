//! Training throughput of G2 (stage 2, G1 and S frozen), G1 and S at the `default` preset (128x128, batch 8), on the CPU
//! backends side by side in one run: `cargo bench -p unveil-host --bench train`.

use std::time::Instant;

use unveil_host::data::SampleSource;
use unveil_host::harness::{self, Network, Preset, Progress, RunConfig};
use unveil_host::synth::SynthConfig;
use unveil_host::train::{BackendKind, TrainConfig};

/// Samples/s of `steps` training steps (after one warm-up step, not counted). Stage 2
/// freezes G1 and S from one-step runs made first in the same temporary folder.
fn throughput(network: Network, backend: BackendKind, steps: usize) -> f64 {
    let preset = Preset::Default;
    let batch = 8;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = |network, steps| {
        let mut c = RunConfig::new(network, preset, steps, "generated".into());
        c.checkpoint_every = usize::MAX;
        c.train = TrainConfig::new().with_batch_size(batch);
        c.stage1_run = Some(tmp.path().join("stage1"));
        c.silhouette_run = Some(tmp.path().join("silhouette"));
        c
    };
    let source = || SampleSource::Generated {
        cfg: SynthConfig::new(128).expect("size"),
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
            Progress::Quiet,
        )
        .expect("train")
    };
    if network == Network::Stage2 {
        run(Network::Stage1, 1, false);
        run(Network::Silhouette, 1, false);
    }
    run(network, 1, false);
    let start = Instant::now();
    run(network, 1 + steps, true);
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters by network name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for network in [Network::Stage2, Network::Stage1, Network::Silhouette] {
        let name = network.name();
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
