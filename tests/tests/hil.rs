//! Hardware-in-the-loop: a simulated camera drives `unveil-device`'s link server over a
//! Unix socket and over a pseudo-terminal (exactly as over a UART), and every restored
//! frame is compared byte for byte with running the pipeline directly.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use unveil_device::bench::test_frame;
use unveil_device::fixture::Fixture;
use unveil_device::model::Model;
use unveil_device::pipeline::{Pipeline, PipelineError};
use unveil_device::region::RegionRestorer;
use unveil_device::serve::{MaskedPipeline, Restorer, ServeConfig, Server};
use unveil_device::transport;
use unveil_shared::link::{
    chunks, chunks_sized, encode, ErrorCode, FrameAssembler, FrameDecoder, Message, Role,
    MAX_ENCODED_LEN, PROTOCOL_VERSION,
};
use unveil_shared::{ImageU8, Mask};

const SIZE: u16 = 32;
const FRAME_LEN: usize = SIZE as usize * SIZE as usize * 3;
const TIMEOUT: Duration = Duration::from_secs(20);

/// The camera side: writes frames, and a reader thread decodes whatever comes back.
struct Camera<W: Write> {
    writer: W,
    rx: Receiver<Message>,
    restored: FrameAssembler,
    /// Frame side and model name the board must announce.
    size: u16,
    model_id: &'static str,
}

impl<W: Write> Camera<W> {
    fn new<R: Read + Send + 'static>(reader: R, writer: W) -> Self {
        Self::sized(reader, writer, SIZE, "fixture-1")
    }

    fn sized<R: Read + Send + 'static>(
        mut reader: R,
        writer: W,
        size: u16,
        model_id: &'static str,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut decoder = FrameDecoder::<MAX_ENCODED_LEN>::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                for msg in decoder.feed(&buf[..n]) {
                    let msg = msg.expect("the board sends only valid frames");
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            writer,
            rx,
            restored: FrameAssembler::new(usize::from(size) * usize::from(size) * 3),
            size,
            model_id,
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    fn send(&mut self, msg: &Message) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let frame = encode(msg, &mut buf).unwrap().to_vec();
        self.raw(&frame);
    }

    fn recv(&mut self) -> Message {
        self.rx
            .recv_timeout(TIMEOUT)
            .expect("board answered in time")
    }

    fn handshake(&mut self, max_chunk: u16) {
        self.send(&Message::Hello {
            protocol: PROTOCOL_VERSION,
            role: Role::Camera,
            max_chunk,
        });
        match self.recv() {
            Message::Capabilities {
                protocol,
                width,
                height,
                channels,
                model_id,
                ..
            } => {
                assert_eq!(
                    (protocol, width, height, channels),
                    (PROTOCOL_VERSION, self.size, self.size, 3)
                );
                assert_eq!(model_id.as_str(), self.model_id);
            }
            other => panic!("expected capabilities, got {other:?}"),
        }
    }

    fn send_frame(&mut self, id: u32, frame: &[u8]) {
        for piece in chunks(id, frame).unwrap() {
            self.send(&Message::FrameChunk(piece));
        }
    }

    /// Collect messages until frame `id` is fully restored; returns it and what came first.
    fn restored(&mut self, id: u32) -> (Vec<u8>, Vec<Message>) {
        let mut other = Vec::new();
        loop {
            match self.recv() {
                Message::RestoredChunk(c) => {
                    if let Some(done) = self.restored.push(&c).unwrap() {
                        assert_eq!(c.frame, id, "restored frames out of order");
                        return (done.to_vec(), other);
                    }
                }
                msg => other.push(msg),
            }
        }
    }

    fn expect(&mut self, want: Message) {
        assert_eq!(self.recv(), want);
    }
}

fn fixture_model(dir: &Path) -> Arc<Model> {
    Fixture {
        width: SIZE,
        height: SIZE,
        ..Fixture::tiny()
    }
    .write(dir)
    .unwrap();
    Arc::new(Model::load(dir).unwrap())
}

fn config() -> ServeConfig {
    ServeConfig {
        width: SIZE,
        height: SIZE,
        model_id: "fixture-1".into(),
        watchdog_factor: 50,
        watchdog_floor: Duration::from_secs(5),
        watchdog_startup: Duration::from_secs(5),
    }
}

/// Expected output, from the pipeline run directly (not through the server).
fn direct(model: &Arc<Model>, frame: &ImageU8) -> Vec<u8> {
    let mut p = Pipeline::new(model.clone()).unwrap();
    p.restore(frame, None).unwrap();
    p.output().data.clone()
}

/// A server over a fresh socket, serving `sessions` connections in a background thread.
fn socket_server(
    model: Arc<Model>,
    dir: &Path,
    sessions: usize,
) -> (
    std::path::PathBuf,
    thread::JoinHandle<unveil_device::serve::Counters>,
) {
    let path = dir.join("link.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = thread::spawn(move || {
        let server = Server::new(config(), || Pipeline::new(model.clone())).unwrap();
        transport::serve_listener(&server, &listener, Some(sessions), None).unwrap();
        server.counters()
    });
    (path, handle)
}

impl Camera<UnixStream> {
    /// Pull the cable: both directions closed, as the board sees a dead peer.
    fn hang_up(self) {
        self.writer.shutdown(std::net::Shutdown::Both).unwrap();
    }
}

fn connect(path: &Path) -> Camera<UnixStream> {
    let stream = UnixStream::connect(path).unwrap();
    Camera::new(stream.try_clone().unwrap(), stream)
}

#[test]
fn handshake_then_100_frames_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let (path, server) = socket_server(model.clone(), dir.path(), 1);
    let mut cam = connect(&path);
    cam.handshake(700);
    let mut reference = Pipeline::new(model.clone()).unwrap();
    for id in 1..=100u32 {
        let frame = test_frame(SIZE.into(), SIZE.into(), u64::from(id));
        cam.send_frame(id, &frame.data);
        let (restored, before) = cam.restored(id);
        assert_eq!(before, [Message::Ack { frame: id }]);
        reference.restore(&frame, None).unwrap();
        assert_eq!(restored, reference.output().data, "frame {id}");
    }
    cam.send(&Message::Stats {
        frames: 0,
        dropped: 0,
        p50_us: 0,
        p99_us: 0,
    });
    match cam.recv() {
        Message::Stats {
            frames,
            dropped,
            p50_us,
            p99_us,
        } => {
            assert_eq!((frames, dropped), (100, 0));
            assert!(p50_us > 0 && p99_us >= p50_us, "{p50_us} {p99_us}");
        }
        other => panic!("{other:?}"),
    }
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!(
        (counters.restored, counters.errors, counters.sessions),
        (100, 0, 1)
    );
}

#[test]
fn bad_frames_get_errors_and_the_next_good_frame_restores() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let (path, server) = socket_server(model.clone(), dir.path(), 1);
    let mut cam = connect(&path);
    cam.handshake(1024);
    let frame = test_frame(SIZE.into(), SIZE.into(), 9);
    let want = direct(&model, &frame);
    let mut id = 0;
    let mut good_frame = |cam: &mut Camera<UnixStream>| {
        id += 1;
        cam.send_frame(id, &frame.data);
        let (restored, before) = cam.restored(id);
        assert_eq!(before, [Message::Ack { frame: id }]);
        assert_eq!(restored, want);
    };
    good_frame(&mut cam);

    let mut buf = [0u8; MAX_ENCODED_LEN];
    let first = chunks(50, &frame.data).unwrap().next().unwrap();
    let wire = encode(&Message::FrameChunk(first.clone()), &mut buf)
        .unwrap()
        .to_vec();

    // Corrupted: one data byte flipped (kept non-zero).
    let mut bad = wire.clone();
    bad[20] = if bad[20] == 0x80 {
        0x81
    } else {
        bad[20] ^ 0x80
    };
    cam.raw(&bad);
    cam.expect(Message::Error {
        frame: 0,
        code: ErrorCode::Crc,
    });
    good_frame(&mut cam);

    // Truncated: the tail of a frame lost before its delimiter.
    let mut cut = wire[..wire.len() / 2].to_vec();
    cut.push(0);
    cam.raw(&cut);
    cam.expect(Message::Error {
        frame: 0,
        code: ErrorCode::Truncated,
    });
    good_frame(&mut cam);

    // Oversized: a run of bytes longer than any frame.
    let mut big = vec![0x5Au8; 3 * MAX_ENCODED_LEN];
    big.push(0);
    cam.raw(&big);
    cam.expect(Message::Error {
        frame: 0,
        code: ErrorCode::Oversized,
    });
    good_frame(&mut cam);

    // Valid frames carrying an inconsistent chunk: wrong total size, then a gap.
    let mut wrong = first.clone();
    wrong.total = 12;
    cam.send(&Message::FrameChunk(wrong));
    cam.expect(Message::Error {
        frame: 50,
        code: ErrorCode::WrongSize,
    });
    let mut gap = first;
    gap.frame = 51;
    gap.offset = 1024;
    cam.send(&Message::FrameChunk(gap));
    cam.expect(Message::Error {
        frame: 51,
        code: ErrorCode::BadChunk,
    });
    good_frame(&mut cam);

    // A camera speaking another protocol revision.
    cam.send(&Message::Hello {
        protocol: 99,
        role: Role::Camera,
        max_chunk: 64,
    });
    cam.expect(Message::Error {
        frame: 0,
        code: ErrorCode::Unsupported,
    });
    good_frame(&mut cam);

    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!((counters.restored, counters.errors), (6, 6));
}

#[test]
fn camera_disconnects_mid_frame_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let (path, server) = socket_server(model.clone(), dir.path(), 2);
    let frame = test_frame(SIZE.into(), SIZE.into(), 3);
    let want = direct(&model, &frame);
    {
        let mut cam = connect(&path);
        cam.handshake(1024);
        cam.send_frame(1, &frame.data);
        assert_eq!(cam.restored(1).0, want);
        // Half of frame 2, then the cable is pulled.
        let first = chunks(2, &frame.data).unwrap().next().unwrap();
        cam.send(&Message::FrameChunk(first));
        cam.hang_up();
    }
    let mut cam = connect(&path);
    cam.handshake(256);
    // Small chunks negotiated this time; frame 2 starts over from scratch.
    cam.send_frame(2, &frame.data);
    let (restored, before) = cam.restored(2);
    assert_eq!(before, [Message::Ack { frame: 2 }]);
    assert_eq!(restored, want);
    cam.hang_up();
    let counters = server.join().unwrap();
    assert_eq!((counters.restored, counters.sessions), (2, 2));
}

#[test]
fn serial_link_over_a_pseudo_terminal() {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let slave =
        std::path::PathBuf::from(ptsname(&master, Vec::new()).unwrap().into_string().unwrap());
    // A fresh pty starts in cooked mode with echo on: until the board switches it to raw
    // mode, the line discipline would echo the camera's Hello bytes back to the camera as
    // a torn frame. A real UART has no echo, so start the pty raw, as the wire would be.
    // The handle stays open so the settings hold until the board opens the port.
    let raw_slave = File::options().read(true).write(true).open(&slave).unwrap();
    let mut tio = rustix::termios::tcgetattr(&raw_slave).unwrap();
    tio.make_raw();
    rustix::termios::tcsetattr(&raw_slave, rustix::termios::OptionalActions::Now, &tio).unwrap();
    let server_model = model.clone();
    let server = thread::spawn(move || {
        let server = Server::new(config(), || Pipeline::new(server_model.clone())).unwrap();
        transport::serve_serial(&server, &slave, 921_600, Some(1)).unwrap();
        server.counters()
    });
    let master = File::from(master);
    let mut cam = Camera::new(master.try_clone().unwrap(), master);
    // The board flushes the port when it switches it to raw mode, so a Hello sent before
    // that is lost: repeat it until the answer comes, as a real camera would at boot.
    let hello = Message::Hello {
        protocol: PROTOCOL_VERSION,
        role: Role::Camera,
        max_chunk: 128,
    };
    let caps = (0..100).find_map(|_| {
        cam.send(&hello);
        cam.rx.recv_timeout(Duration::from_millis(200)).ok()
    });
    assert!(
        matches!(
            caps,
            Some(Message::Capabilities {
                width: SIZE,
                height: SIZE,
                ..
            })
        ),
        "{caps:?}"
    );
    for id in 1..=5 {
        let frame = test_frame(SIZE.into(), SIZE.into(), 100 + u64::from(id));
        // Frames with every byte value, 0x00 and 0x0A included, must pass raw mode intact.
        let mut data = frame.data.clone();
        for (i, b) in data.iter_mut().take(256).enumerate() {
            *b = i as u8;
        }
        let frame = ImageU8::from_vec(SIZE.into(), SIZE.into(), 3, data).unwrap();
        cam.send_frame(id, &frame.data);
        let (restored, _) = cam.restored(id);
        assert_eq!(restored, direct(&model, &frame), "frame {id}");
    }
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!(counters.restored, 5);
}

/// Inverts the frame after a delay; a frame starting with 0xEE hangs far longer.
struct Slow {
    out: ImageU8,
    normal: Duration,
    stuck: Duration,
}

impl Restorer for Slow {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError> {
        let hang = frame.data.first() == Some(&0xEE);
        thread::sleep(if hang { self.stuck } else { self.normal });
        for (o, i) in self.out.data.iter_mut().zip(&frame.data) {
            *o = 255 - i;
        }
        Ok(&self.out)
    }
}

fn slow_server(
    dir: &Path,
    factor: u32,
    floor: Duration,
    normal: Duration,
) -> (
    std::path::PathBuf,
    thread::JoinHandle<unveil_device::serve::Counters>,
) {
    let path = dir.join("slow.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = thread::spawn(move || {
        let cfg = ServeConfig {
            watchdog_factor: factor,
            watchdog_floor: floor,
            watchdog_startup: floor,
            ..config()
        };
        let server = Server::new(cfg, || {
            Ok(Slow {
                out: ImageU8::new(SIZE.into(), SIZE.into(), 3),
                normal,
                stuck: Duration::from_secs(3),
            })
        })
        .unwrap();
        transport::serve_listener(&server, &listener, Some(1), None).unwrap();
        server.counters()
    });
    (path, handle)
}

fn inverted(frame: &[u8]) -> Vec<u8> {
    frame.iter().map(|b| 255 - b).collect()
}

#[test]
fn overload_drops_the_oldest_frames_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let (path, server) = slow_server(
        dir.path(),
        1000,
        Duration::from_secs(60),
        Duration::from_millis(50),
    );
    let mut cam = connect(&path);
    cam.handshake(1024);
    let frames: Vec<ImageU8> = (0..12)
        .map(|s| test_frame(SIZE.into(), SIZE.into(), s))
        .collect();
    // Twelve frames as fast as the link goes, against a 50 ms restorer.
    for (i, f) in frames.iter().enumerate() {
        cam.send_frame(i as u32 + 1, &f.data);
    }
    let mut restored = Vec::new();
    let mut busy = Vec::new();
    let mut acks = 0;
    while restored.len() + busy.len() < 12 {
        match cam.recv() {
            Message::Ack { .. } => acks += 1,
            Message::Error {
                frame,
                code: ErrorCode::Busy,
            } => busy.push(frame),
            Message::RestoredChunk(c) => {
                if let Some(done) = cam.restored.push(&c).unwrap() {
                    assert_eq!(done, inverted(&frames[c.frame as usize - 1].data));
                    restored.push(c.frame);
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!busy.is_empty(), "no frame dropped under overload");
    assert_eq!(
        restored.last(),
        Some(&12),
        "the newest frame is always restored"
    );
    assert!(restored.windows(2).all(|w| w[0] < w[1]) && busy.windows(2).all(|w| w[0] < w[1]));
    cam.send(&Message::Stats {
        frames: 0,
        dropped: 0,
        p50_us: 0,
        p99_us: 0,
    });
    let stats = loop {
        match cam.recv() {
            Message::Ack { .. } => acks += 1,
            msg => break msg,
        }
    };
    assert_eq!(acks, 12);
    match stats {
        Message::Stats {
            frames, dropped, ..
        } => {
            assert_eq!(
                (frames as usize, dropped as usize),
                (restored.len(), busy.len())
            );
        }
        other => panic!("{other:?}"),
    }
    cam.hang_up();
    let counters = server.join().unwrap();
    assert_eq!(counters.dropped as usize, busy.len());
}

#[test]
fn watchdog_abandons_a_stuck_frame_and_the_next_one_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (path, server) = slow_server(
        dir.path(),
        4,
        Duration::from_millis(100),
        Duration::from_millis(15),
    );
    let mut cam = connect(&path);
    cam.handshake(1024);
    let normal = test_frame(SIZE.into(), SIZE.into(), 1);
    for id in 1..=10 {
        cam.send_frame(id, &normal.data);
        assert_eq!(cam.restored(id).0, inverted(&normal.data));
    }
    let mut stuck = normal.clone();
    stuck.data[0] = 0xEE;
    let started = std::time::Instant::now();
    cam.send_frame(11, &stuck.data);
    cam.expect(Message::Ack { frame: 11 });
    cam.expect(Message::Error {
        frame: 11,
        code: ErrorCode::Internal,
    });
    let reported = started.elapsed();
    assert!(
        reported < Duration::from_secs(2),
        "watchdog took {reported:?}"
    );
    // A fresh worker restores the next frame while the stuck one is still hanging.
    cam.send_frame(12, &normal.data);
    let (restored, before) = cam.restored(12);
    assert_eq!(before, [Message::Ack { frame: 12 }]);
    assert_eq!(restored, inverted(&normal.data));
    assert!(started.elapsed() < Duration::from_secs(3));
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!((counters.resets, counters.restored), (1, 11));
}

#[test]
fn small_negotiated_chunks_are_respected() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let (path, server) = socket_server(model.clone(), dir.path(), 1);
    let mut cam = connect(&path);
    cam.handshake(100);
    let frame = test_frame(SIZE.into(), SIZE.into(), 77);
    for piece in chunks_sized(1, &frame.data, 100).unwrap() {
        cam.send(&Message::FrameChunk(piece));
    }
    cam.expect(Message::Ack { frame: 1 });
    let mut n = 0;
    loop {
        match cam.recv() {
            Message::RestoredChunk(c) => {
                assert!(c.data.len() <= 100);
                n += 1;
                if let Some(done) = cam.restored.push(&c).unwrap() {
                    assert_eq!(done, direct(&model, &frame));
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(n, FRAME_LEN.div_ceil(100));
    cam.hang_up();
    server.join().unwrap();
}

/// The real exporter's graphs (seeded random weights of the `tiny` architectures, f32 and
/// int8, each condition) restored over the link exactly as by the pipeline run directly.
#[test]
fn exported_models_restore_bit_identically_over_the_link() {
    use unveil_host::export::{self, ExportSpec};
    use unveil_host::nets::blocks::seeded_init;
    use unveil_host::nets::stage1::Stage1Config;
    use unveil_host::nets::stage2::Stage2Config;
    use unveil_shared::manifest::{Condition, Quantisation};

    const EXPORTED: u16 = 64;
    let dev = unveil_host::train::cpu_device();
    for condition in [Condition::Texture, Condition::Silhouette, Condition::None] {
        let dir = tempfile::tempdir().unwrap();
        let g1 = seeded_init(Stage1Config::tiny().init(&dev), 21);
        let g2 = seeded_init(
            Stage2Config::tiny().with_condition(condition).init(&dev),
            22,
        );
        let spec = ExportSpec {
            name: "exported".into(),
            height: EXPORTED.into(),
            width: EXPORTED.into(),
            condition,
            hole: unveil_shared::hole::HoleInput::Absent,
            training_config_sha256: [0; 32],
        };
        let graphs = export::export_f32(&g1, &g2, &spec).unwrap();
        let folder = dir.path().join("model");
        export::write_folder(&folder, &spec, &graphs, Quantisation::Float32).unwrap();
        let model = Arc::new(Model::load(&folder).unwrap());

        let path = dir.path().join("link.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server_model = model.clone();
        let server = thread::spawn(move || {
            let cfg = ServeConfig {
                width: EXPORTED,
                height: EXPORTED,
                model_id: "exported".into(),
                ..config()
            };
            let server = Server::new(cfg, || Pipeline::new(server_model.clone())).unwrap();
            transport::serve_listener(&server, &listener, Some(1), None).unwrap();
            server.counters()
        });
        let stream = UnixStream::connect(&path).unwrap();
        let mut cam = Camera::sized(stream.try_clone().unwrap(), stream, EXPORTED, "exported");
        cam.handshake(1024);
        let mut reference = Pipeline::new(model.clone()).unwrap();
        for id in 1..=10u32 {
            let frame = test_frame(EXPORTED.into(), EXPORTED.into(), u64::from(id));
            cam.send_frame(id, &frame.data);
            let (restored, _) = cam.restored(id);
            reference.restore(&frame, None).unwrap();
            assert_eq!(
                restored,
                reference.output().data,
                "{condition:?} frame {id}"
            );
        }
        cam.send(&Message::Bye);
        cam.expect(Message::Bye);
        assert_eq!(server.join().unwrap().restored, 10);
    }
}

/// Probe defect 17: the watchdog only armed after 8 frames, so a worker that hung on an
/// early frame was never abandoned. Only the worker stalls here (the reader and the
/// watchdog run on), on the second frame; it is abandoned at the start-up limit.
#[test]
fn a_worker_stalled_during_warm_up_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let (path, server) = slow_server(
        dir.path(),
        4,
        Duration::from_millis(200),
        Duration::from_millis(5),
    );
    let mut cam = connect(&path);
    cam.handshake(1024);
    let normal = test_frame(SIZE.into(), SIZE.into(), 1);
    cam.send_frame(1, &normal.data);
    assert_eq!(cam.restored(1).0, inverted(&normal.data));
    let mut stuck = normal.clone();
    stuck.data[0] = 0xEE;
    let started = std::time::Instant::now();
    cam.send_frame(2, &stuck.data);
    cam.expect(Message::Ack { frame: 2 });
    cam.expect(Message::Error {
        frame: 2,
        code: ErrorCode::Internal,
    });
    let reported = started.elapsed();
    assert!(reported < Duration::from_millis(1500), "took {reported:?}");
    cam.send_frame(3, &normal.data);
    assert_eq!(cam.restored(3).0, inverted(&normal.data));
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!((counters.resets, counters.restored), (1, 2));
}

/// Probe defects 3 and 4: `serve --socket` deleted a regular file at its path, and a
/// second server unlinked a live server's socket, leaving it unreachable. Both are
/// refused; a stale socket (nobody listening) is still replaced.
#[test]
fn serve_refuses_a_regular_file_and_a_live_socket() {
    use unveil_device::serve::ServeError;
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let server = Server::new(config(), || Pipeline::new(model.clone())).unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "precious").unwrap();
    let err = transport::bind_unix(&file)
        .and_then(|l| transport::serve_listener(&server, &l, Some(1), None))
        .unwrap_err();
    assert!(matches!(err, ServeError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

    // A live server: its socket stays, and it still serves (the refusal's probe
    // connection is its first session).
    let (path, first) = socket_server(model.clone(), dir.path(), 2);
    let err = transport::bind_unix(&path)
        .and_then(|l| transport::serve_listener(&server, &l, Some(1), None))
        .unwrap_err();
    assert!(matches!(err, ServeError::InUse(_)), "{err}");
    let mut cam = connect_when_served(&path);
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    first.join().unwrap();

    // Now stale: replaced, and served.
    thread::scope(|s| {
        let serving = s.spawn(|| {
            transport::bind_unix(&path)
                .and_then(|l| transport::serve_listener(&server, &l, Some(1), None))
        });
        let mut cam = connect_when_served(&path);
        cam.send(&Message::Bye);
        cam.expect(Message::Bye);
        serving.join().unwrap().unwrap();
    });
}

/// Connect and handshake, retrying while the server is not yet listening or still busy
/// with a session that has just ended.
fn connect_when_served(path: &Path) -> Camera<UnixStream> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        assert!(std::time::Instant::now() < deadline, "never served");
        let Ok(stream) = UnixStream::connect(path) else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        let mut cam = Camera::new(stream.try_clone().unwrap(), stream);
        cam.send(&Message::Hello {
            protocol: PROTOCOL_VERSION,
            role: Role::Camera,
            max_chunk: 1024,
        });
        match cam.recv() {
            Message::Capabilities { .. } => return cam,
            Message::Error {
                code: ErrorCode::Busy,
                ..
            } => thread::sleep(Duration::from_millis(20)),
            other => panic!("{other:?}"),
        }
    }
}

/// Probe defect 11: one idle peer locked out every other camera (no timeout, and a
/// second peer got silence). A second camera now hears `Busy` at once, and the silent
/// one is dropped after the idle timeout, so the next camera is served.
#[test]
fn an_idle_camera_is_dropped_and_a_second_one_hears_busy() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let path = dir.path().join("idle.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let server = Server::new(config(), || Pipeline::new(model.clone())).unwrap();
        let idle = Some(Duration::from_millis(300));
        transport::serve_listener(&server, &listener, Some(2), idle).unwrap();
        server.counters()
    });
    let mut silent = UnixStream::connect(&path).unwrap();
    let started = std::time::Instant::now();
    // Let the listener hand the silent camera its session.
    thread::sleep(Duration::from_millis(100));
    let mut second = connect(&path);
    second.expect(Message::Error {
        frame: 0,
        code: ErrorCode::Busy,
    });
    silent.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        silent.read(&mut buf).unwrap(),
        0,
        "the idle session is closed"
    );
    let idle_for = started.elapsed();
    assert!(
        idle_for >= Duration::from_millis(250) && idle_for < Duration::from_secs(5),
        "{idle_for:?}"
    );
    let mut cam = connect_when_served(&path);
    cam.send(&Message::Bye);
    cam.expect(Message::Bye);
    let counters = server.join().unwrap();
    assert_eq!(counters.sessions, 2);
    assert!(counters.errors >= 1, "the Busy answer is counted");
}

/// `serve --mask`: a fixed camera's static mask. Over the link, every restored frame is
/// the region pipeline's run directly, visible pixels are the camera's own, and with an
/// empty mask every frame comes back unchanged.
#[test]
fn a_static_mask_restores_only_its_pixels_and_an_empty_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let n = usize::from(SIZE);
    let pillar = Mask::from_fn(n, n, |i| (10..16).contains(&(i % n)));
    for (mask, name) in [(pillar, "pillar"), (Mask::new(n, n), "empty")] {
        let path = dir.path().join(format!("{name}.sock"));
        let listener = UnixListener::bind(&path).unwrap();
        let (server_model, server_mask) = (model.clone(), mask.clone());
        let server = thread::spawn(move || {
            let server = Server::new(config(), || {
                Ok(MaskedPipeline::new(
                    Pipeline::new(server_model.clone())?,
                    server_mask.clone(),
                ))
            })
            .unwrap();
            transport::serve_listener(&server, &listener, Some(1), None).unwrap();
        });
        let mut cam = connect(&path);
        cam.handshake(700);
        let mut reference = Pipeline::new(model.clone()).unwrap();
        let mut regions = RegionRestorer::new();
        for id in 1..=5u32 {
            let frame = test_frame(n, n, u64::from(id));
            cam.send_frame(id, &frame.data);
            let (restored, _) = cam.restored(id);
            let want = regions.restore(&mut reference, &frame, &mask).unwrap();
            assert_eq!(restored, want.data, "{name} frame {id}");
            let mut hidden_changed = 0;
            for i in 0..n * n {
                let (got, was) = (&restored[i * 3..i * 3 + 3], &frame.data[i * 3..i * 3 + 3]);
                if mask.data[i] == 0 {
                    assert_eq!(got, was, "{name} frame {id}: visible pixel {i} changed");
                } else {
                    hidden_changed += usize::from(got != was);
                }
            }
            assert_eq!(hidden_changed > 0, mask.count() > 0, "{name} frame {id}");
        }
        cam.send(&Message::Bye);
        cam.expect(Message::Bye);
        server.join().unwrap();
    }
}
