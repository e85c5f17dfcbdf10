//! Inference latency of the exported pipeline (G1 then G2, 128x128) in tract on one core,
//! f32 and int8 side by side in one run: `cargo bench -p unveil-host --bench export`.
//! Seeded random weights at the `default` preset: latency depends on the architecture,
//! not on the values. int8 is calibrated on 16 rendered, occluded samples.

use std::time::{Duration, Instant};

use unveil_host::data::synth::SynthConfig;
use unveil_host::data::SampleSource;
use unveil_host::export::calibrate::calibration_images;
use unveil_host::export::{self, parity, ExportSpec, Graphs};
use unveil_host::nets::blocks::seeded_init;
use unveil_host::nets::stage1::Stage1Config;
use unveil_host::nets::stage2::Stage2Config;
use unveil_host::train::cpu_device;
use unveil_shared::manifest::{Calibration, Condition, Quantisation, WeightScales};

const SIZE: usize = 128;

/// Median seconds of one G1 + G2 run, over runs filling about `budget` after warm-up.
/// The graphs run in the device's own pipeline (loaded from memory).
fn latency(
    spec: &ExportSpec,
    graphs: &Graphs,
    quantisation: Quantisation,
    image: &[f32],
    budget: Duration,
) -> f64 {
    let mut pipeline = export::pipeline(spec, graphs, quantisation).expect("the graphs load");
    let mut run = || parity::tract_pipeline(&mut pipeline, image).expect("runs");
    run();
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 5 {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let dev = cpu_device();
    let g1 = seeded_init(Stage1Config::default().init(&dev), 1);
    let g2 = seeded_init(Stage2Config::default().init(&dev), 2);
    let spec = ExportSpec {
        name: "bench".into(),
        height: SIZE,
        width: SIZE,
        condition: Condition::Texture,
        hole: unveil_shared::hole::HoleInput::Absent,
        training_config_sha256: [0; 32],
    };
    let source = SampleSource::Generated {
        cfg: SynthConfig::new(SIZE).expect("size"),
        seed: 5,
        count: 17,
    };
    let mut images =
        calibration_images(source, 17, 5, unveil_shared::hole::HoleInput::Absent, || {})
            .expect("samples");
    let probe = images.pop().expect("17 samples");
    let ranges =
        export::calibrate(&g1, &g2, &spec, &images, Calibration::MinMax, || {}).expect("calibrate");
    let f32 = export::export_f32(&g1, &g2, &spec).expect("f32");
    let int8 =
        export::export_int8(&g1, &g2, &spec, &ranges, WeightScales::PerTensor).expect("int8");
    let budget = Duration::from_secs(5);
    let int8_label = Quantisation::Int8 {
        calibration: Calibration::MinMax,
        samples: images.len() as u32,
        weights: WeightScales::PerTensor,
    };
    let tf = latency(&spec, &f32, Quantisation::Float32, &probe, budget);
    let tq = latency(&spec, &int8, int8_label, &probe, budget);
    let kb = |g: &Graphs| (g.stage1.len() + g.stage2.len()) as f64 / 1024.0;
    println!(
        "tract G1+G2 128x128, one core: f32 {:.1} ms, int8 {:.1} ms, int8/f32 {:.2}x; \
         files f32 {:.0} KiB, int8 {:.0} KiB, int8/f32 {:.2}x",
        tf * 1e3,
        tq * 1e3,
        tq / tf,
        kb(&f32),
        kb(&int8),
        kb(&int8) / kb(&f32)
    );
}
