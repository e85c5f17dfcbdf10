//! Steady-state allocation counts, measured with the counting global allocator.
//!
//! Everything the device does around tract — preprocessing, the silhouette condition,
//! postprocessing and mask paste, link decoding, chunk assembly, queueing, restored-frame
//! encoding — must allocate nothing per frame. tract allocates its operators' output
//! tensors on every run; that count is printed (run with `--nocapture`) and bounded.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use unveil_device::alloc_count::{allocations, CountingAlloc};
use unveil_device::bench::test_frame;
use unveil_device::fixture::Fixture;
use unveil_device::model::Model;
use unveil_device::pipeline::{Pipeline, PipelineError, STAGES};
use unveil_device::region::RegionRestorer;
use unveil_device::serve::{Restorer, ServeConfig, Server};
use unveil_shared::link::{chunks, encode, FrameAssembler, FrameDecoder, Message, MAX_ENCODED_LEN};
use unveil_shared::manifest::Condition;
use unveil_shared::{ImageU8, Mask};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The counter is process-wide, so this binary runs a single test: with two, libtest's
/// main thread reports the first one's result (and allocates doing so) while the second
/// measures.
#[test]
fn steady_state_allocates_nothing_outside_tract() {
    pipeline_allocates_only_inside_tract();
    regions_allocate_only_inside_tract();
    link_session_allocates_nothing_per_frame();
}

/// A native-resolution frame with two hidden regions: after the first frames sized the
/// buffers, cutting windows, resizing and pasting allocate nothing.
fn regions_allocate_only_inside_tract() {
    let dir = tempfile::tempdir().unwrap();
    Fixture::tiny().write(dir.path()).unwrap();
    let model = Arc::new(Model::load(dir.path()).unwrap());
    let mut pipeline = Pipeline::new(model).unwrap();
    let mut regions = RegionRestorer::new();
    let (w, h) = (160, 96);
    let frames: Vec<ImageU8> = (0..4).map(|s| test_frame(w, h, s)).collect();
    let mask = Mask::from_fn(w, h, |i| {
        let (x, y) = (i % w, i / w);
        ((10..20).contains(&x) && (10..24).contains(&y))
            || ((120..136).contains(&x) && (60..70).contains(&y))
    });
    for f in &frames {
        regions.restore(&mut pipeline, f, &mask).unwrap();
    }
    assert_eq!(regions.passes(), 2);
    let mut inside_tract = 0;
    let before = allocations();
    const N: usize = 20;
    for i in 0..N {
        regions
            .restore(&mut pipeline, &frames[i % 4], &mask)
            .unwrap();
        let a = regions.report().allocations;
        assert_eq!([a[0], a[2], a[4]], [0, 0, 0]);
        inside_tract += a[1] + a[3];
    }
    assert_eq!(allocations() - before, inside_tract);
}

fn pipeline_allocates_only_inside_tract() {
    for condition in [Condition::Texture, Condition::Silhouette] {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            condition,
            ..Fixture::tiny()
        }
        .write(dir.path())
        .unwrap();
        let model = Arc::new(Model::load(dir.path()).unwrap());
        let mut pipeline = Pipeline::new(model).unwrap();
        let frames: Vec<ImageU8> = (0..4).map(|s| test_frame(32, 32, s)).collect();
        let mask = Mask::from_fn(32, 32, |i| i % 3 == 0);
        for f in &frames {
            pipeline.restore(f, Some(&mask)).unwrap();
        }
        let mut per_stage = [0u64; 5];
        let before = allocations();
        const N: u64 = 50;
        for i in 0..N as usize {
            let report = pipeline.restore(&frames[i % 4], Some(&mask)).unwrap();
            for (sum, a) in per_stage.iter_mut().zip(report.allocations) {
                *sum += a;
            }
        }
        let total = allocations() - before;
        println!(
            "{condition:?}: allocations per frame by stage {:?} = {:?}",
            STAGES,
            per_stage.map(|a| a as f64 / N as f64)
        );
        // preprocess, condition, composite (with mask paste): nothing.
        assert_eq!(
            [per_stage[0], per_stage[2], per_stage[4]],
            [0, 0, 0],
            "{condition:?}"
        );
        // Everything that did allocate happened inside tract's two runs.
        assert_eq!(total, per_stage[1] + per_stage[3]);
        // tract allocates a bounded, fixed number per run (its output tensors), no more.
        assert!(
            per_stage[1] % N == 0 && per_stage[3] % N == 0,
            "{per_stage:?}"
        );
        assert!(
            per_stage[1] / N < 50 && per_stage[3] / N < 100,
            "{per_stage:?}"
        );
    }
}

/// Inverts into a buffer it owns: allocation-free, so only the link path is measured.
struct Invert(ImageU8);

impl Restorer for Invert {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError> {
        for (o, i) in self.0.data.iter_mut().zip(&frame.data) {
            *o = 255 - i;
        }
        Ok(&self.0)
    }
}

fn link_session_allocates_nothing_per_frame() {
    let (board, mut cam) = UnixStream::pair().unwrap();
    cam.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let server = std::thread::spawn(move || {
        let config = ServeConfig {
            width: 32,
            height: 32,
            model_id: "alloc".into(),
            watchdog_factor: 100,
            watchdog_floor: Duration::from_secs(10),
            watchdog_startup: Duration::from_secs(10),
        };
        let server = Server::new(config, || Ok(Invert(ImageU8::new(32, 32, 3)))).unwrap();
        let writer = board.try_clone().unwrap();
        server.session(&board, writer).unwrap();
        server.counters()
    });

    let frame = test_frame(32, 32, 5);
    let want: Vec<u8> = frame.data.iter().map(|b| 255 - b).collect();
    let mut decoder = FrameDecoder::<MAX_ENCODED_LEN>::new();
    let mut assembler = FrameAssembler::new(frame.data.len());
    let mut tx = [0u8; MAX_ENCODED_LEN];
    let mut rx = [0u8; 4096];
    let mut round_trip = |cam: &mut UnixStream, id: u32| {
        for piece in chunks(id, &frame.data).unwrap() {
            cam.write_all(encode(&Message::FrameChunk(piece), &mut tx).unwrap())
                .unwrap();
        }
        loop {
            let n = cam.read(&mut rx).unwrap();
            assert!(n > 0, "board hung up");
            for msg in decoder.feed(&rx[..n]) {
                if let Message::RestoredChunk(c) = msg.unwrap() {
                    if let Some(done) = assembler.push(&c).unwrap() {
                        assert_eq!(done, &want[..]);
                        return;
                    }
                }
            }
        }
    };
    for id in 1..=20 {
        round_trip(&mut cam, id);
    }
    let before = allocations();
    for id in 21..=220 {
        round_trip(&mut cam, id);
    }
    let during = allocations() - before;
    let mut bye = [0u8; 16];
    cam.write_all(encode(&Message::Bye, &mut bye).unwrap())
        .unwrap();
    let counters = server.join().unwrap();
    assert_eq!(counters.restored, 220);
    assert_eq!(
        during, 0,
        "allocations over 200 frames through the link (both ends)"
    );
}
