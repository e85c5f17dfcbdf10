//! Synthetic sample rendering speed at 128 x 128 (target: >= 1000 samples/s on one
//! thread, so the CLI reaches >= 300 samples/s with PNG writing on two cores).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unveil_host::data::dataset::{self, Provenance};
use unveil_host::data::synth::{
    background, mesh::Mesh, render_sample, BackgroundSource, Subject, SynthConfig,
};

fn bench(c: &mut Criterion) {
    let cfg = SynthConfig::new(128).expect("size");

    // A plain wall-clock figure first, over many different samples (poses, backgrounds).
    let n = 3000u64;
    let start = Instant::now();
    for i in 0..n {
        black_box(render_sample(&cfg, 1, i).expect("render"));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "synth 128x128: {:.0} samples/s single-threaded ({n} samples in {secs:.2} s)",
        n as f64 / secs
    );

    // The CLI's whole path (render + five PNGs per sample) on every core, as `unveil synth`.
    let tmp = tempfile::tempdir().expect("tempdir");
    let n = 512u64;
    let start = Instant::now();
    dataset::synthesize(tmp.path(), &cfg, 1, n, &Provenance::default(), || ()).expect("synth");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "synth to disk 128x128: {:.0} samples/s on {} threads ({n} samples, 5 PNGs each, in {secs:.2} s; target >= 300)",
        n as f64 / secs,
        rayon::current_num_threads()
    );

    let mut g = c.benchmark_group("synth");
    g.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    g.bench_function("render_sample_128", |b| {
        b.iter(|| {
            index = index.wrapping_add(1);
            black_box(render_sample(&cfg, 7, index).expect("render"))
        })
    });
    // Parts of the cost, to see where time goes.
    g.bench_function("background_128", |b| {
        b.iter(|| {
            index = index.wrapping_add(1);
            let mut rng = unveil_shared::rng::stream(7, index);
            black_box(background::render(
                &BackgroundSource::Procedural,
                128,
                &mut rng,
            ))
        })
    });
    let mut mesh = Mesh::default();
    g.bench_function("subject_and_mesh", |b| {
        b.iter(|| {
            index = index.wrapping_add(1);
            let s = Subject::new(7, index);
            mesh.clear();
            s.body.build_mesh(&mut mesh);
            black_box(mesh.triangles.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
