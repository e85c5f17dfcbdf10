//! The board's side of the camera link: one session per connected camera.
//!
//! The calling thread reads and decodes the link, answers handshakes and errors, and
//! reassembles frames into a [`DropOldest`] queue; a worker thread restores queued frames
//! and streams them back; a watchdog thread abandons a frame that runs far past the median
//! and starts a fresh worker with a fresh pipeline, so one pathological frame cannot stall
//! the camera. Messages:
//!
//! | camera → board | board → camera |
//! |---|---|
//! | `Hello` | `Capabilities` (or `Error{0, Unsupported}`) |
//! | `FrameChunk`s of a frame | `Ack`, then its `RestoredChunk`s; `Error{frame, code}` for a bad or dropped frame |
//! | garbage, corrupt, truncated or oversized frames | `Error{0, code}` |
//! | `Stats` (a request; its fields are ignored) | `Stats` |
//! | `Bye` | `Bye`, and the session ends |
//!
//! Frame buffers come from a pool sized to the queue, so the steady state allocates
//! nothing outside the pipeline.

use std::io::{self, Read, Write};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::{Duration, Instant};

use unveil_shared::link::{
    self, chunks_sized, encode, ErrorCode, FrameAssembler, FrameDecoder, Message, Role, MAX_CHUNK,
    MAX_ENCODED_LEN, MODEL_ID_LEN, PROTOCOL_VERSION,
};
use unveil_shared::{ImageU8, Mask};

use crate::latency::LatencyWindow;
use crate::pipeline::{Pipeline, PipelineError};
use crate::queue::DropOldest;
use crate::region::RegionRestorer;
use crate::watchdog::Watchdog;

/// Frames waiting for the worker before the oldest is dropped.
pub const QUEUE_LEN: usize = 4;
/// Frame buffers: the queue, the one being restored, and one being filled.
const POOL_LEN: usize = QUEUE_LEN + 2;

/// Something that turns a model-size RGB frame into a restored one.
///
/// [`Pipeline`] in production; tests substitute slow or failing ones.
pub trait Restorer: Send {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError>;
}

impl Restorer for Pipeline {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError> {
        Pipeline::restore(self, frame, None)?;
        Ok(self.output())
    }
}

/// A [`Pipeline`] with a fixed hole mask, for a fixed camera whose view a pillar, a sign
/// or a burned-in timestamp always hides (`serve --mask`). Only masked pixels change
/// (through the [`RegionRestorer`]); an empty mask returns every frame as it came.
pub struct MaskedPipeline {
    pipeline: Pipeline,
    mask: Mask,
    regions: RegionRestorer,
}

impl MaskedPipeline {
    /// `mask` must have the frames' (the model's) size; a frame of another size is then
    /// refused per frame with [`PipelineError::MaskSize`].
    pub fn new(pipeline: Pipeline, mask: Mask) -> Self {
        Self {
            pipeline,
            mask,
            regions: RegionRestorer::new(),
        }
    }
}

impl Restorer for MaskedPipeline {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError> {
        self.regions.restore(&mut self.pipeline, frame, &self.mask)
    }
}

/// A [`Pipeline`] whose model folder ships an occlusion detector, serving with no mask:
/// each frame's hole is what the detector finds in it (blind mode), and only those
/// pixels change. A frame the detector finds nothing in comes back as it came.
pub struct BlindPipeline {
    pipeline: Pipeline,
    mask: Mask,
    regions: RegionRestorer,
}

impl BlindPipeline {
    pub fn new(pipeline: Pipeline) -> Self {
        Self {
            pipeline,
            mask: Mask::default(),
            regions: RegionRestorer::new(),
        }
    }
}

impl Restorer for BlindPipeline {
    fn restore(&mut self, frame: &ImageU8) -> Result<&ImageU8, PipelineError> {
        self.pipeline.detect(frame, &mut self.mask)?;
        self.regions.restore(&mut self.pipeline, frame, &self.mask)
    }
}

/// What the board announces and how it guards itself.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub width: u16,
    pub height: u16,
    /// Sent in `Capabilities`; longer names are cut at a character boundary.
    pub model_id: String,
    /// Abandon a frame after this many times the median frame time …
    pub watchdog_factor: u32,
    /// … but never before this.
    pub watchdog_floor: Duration,
    /// Before the median is known (the first frames), abandon a frame after this.
    pub watchdog_startup: Duration,
}

/// Counters over the server's lifetime (all sessions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub restored: u32,
    /// Frames evicted from the full queue.
    pub dropped: u32,
    /// Frames abandoned by the watchdog (each reset the pipeline).
    pub resets: u32,
    /// Error messages sent.
    pub errors: u32,
    pub sessions: u32,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The camera said `Bye`.
    Bye,
    /// The connection closed.
    Disconnected,
    /// The camera sent nothing for longer than the transport's idle timeout.
    Idle,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("link I/O: {0}")]
    Io(#[from] io::Error),
    #[error("frame size {width}x{height}x3 does not fit the link's u32 sizes")]
    FrameSize { width: u16, height: u16 },
    #[error("could not build a pipeline: {0}")]
    Pipeline(#[from] PipelineError),
    #[error("{0} exists and is not a socket; refusing to replace it (choose another --socket)")]
    NotASocket(std::path::PathBuf),
    #[error("a server is already listening on {0}; stop it or choose another --socket")]
    InUse(std::path::PathBuf),
}

struct Frame {
    id: u32,
    image: ImageU8,
}

struct Busy {
    frame: u32,
    since: Instant,
    generation: u32,
}

struct State {
    queue: DropOldest<Frame, QUEUE_LEN>,
    pool: heapless::Vec<ImageU8, POOL_LEN>,
    busy: Option<Busy>,
    /// Bumped when the watchdog abandons a worker; a worker of an older generation exits.
    generation: u32,
    closed: bool,
    watchdog: Watchdog,
    latency: LatencyWindow<256>,
    counters: Counters,
    /// Largest restored chunk the camera accepts (from its `Hello`).
    peer_chunk: usize,
}

/// A link server around a restorer; `factory` builds a fresh one after a watchdog reset.
pub struct Server<R, F> {
    config: ServeConfig,
    factory: F,
    restorer: Mutex<Option<R>>,
    state: Mutex<State>,
    work: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker must not take the link down with it: the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Encode and write one message.
fn send<W: Write>(writer: &Mutex<W>, msg: &Message) -> io::Result<()> {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let frame = encode(msg, &mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    let mut w = lock(writer);
    w.write_all(frame)?;
    w.flush()
}

impl<R, F> Server<R, F>
where
    R: Restorer,
    F: Fn() -> Result<R, PipelineError> + Sync,
{
    pub fn new(config: ServeConfig, factory: F) -> Result<Self, ServeError> {
        let (w, h) = (usize::from(config.width), usize::from(config.height));
        if link::frame_len(config.width, config.height, 3).is_none() {
            return Err(ServeError::FrameSize {
                width: config.width,
                height: config.height,
            });
        }
        let mut pool = heapless::Vec::new();
        for _ in 0..POOL_LEN {
            // Cannot overflow: exactly POOL_LEN pushes.
            let _ = pool.push(ImageU8::new(w, h, 3));
        }
        let restorer = factory()?;
        Ok(Self {
            state: Mutex::new(State {
                queue: DropOldest::new(),
                pool,
                busy: None,
                generation: 0,
                closed: false,
                watchdog: Watchdog::new(
                    config.watchdog_factor,
                    config.watchdog_floor,
                    config.watchdog_startup,
                ),
                latency: LatencyWindow::new(),
                counters: Counters::default(),
                peer_chunk: MAX_CHUNK,
            }),
            config,
            factory,
            restorer: Mutex::new(Some(restorer)),
            work: Condvar::new(),
        })
    }

    pub fn counters(&self) -> Counters {
        lock(&self.state).counters
    }

    /// Serve one connected camera until it says `Bye` or the connection closes.
    pub fn session<Rd: Read, W: Write + Send>(
        &self,
        mut reader: Rd,
        writer: W,
    ) -> Result<SessionEnd, ServeError> {
        let writer = Mutex::new(writer);
        {
            let mut st = lock(&self.state);
            st.closed = false;
            st.peer_chunk = MAX_CHUNK;
            st.counters.sessions = st.counters.sessions.wrapping_add(1);
        }
        let result = std::thread::scope(|s| {
            let generation = lock(&self.state).generation;
            let w = &writer;
            s.spawn(move || self.worker(w, generation));
            s.spawn(move || self.watchdog(s, w));
            let result = self.read_loop(&mut reader, w);
            let mut st = lock(&self.state);
            st.closed = true;
            self.work.notify_all();
            result
        });
        // Frames still queued belong to the camera that left.
        let mut st = lock(&self.state);
        let State { queue, pool, .. } = &mut *st;
        for frame in queue.drain() {
            let _ = pool.push(frame.image);
        }
        result
    }

    fn read_loop<Rd: Read, W: Write + Send>(
        &self,
        reader: &mut Rd,
        writer: &Mutex<W>,
    ) -> Result<SessionEnd, ServeError> {
        let len = link::frame_len(self.config.width, self.config.height, 3).ok_or(
            ServeError::FrameSize {
                width: self.config.width,
                height: self.config.height,
            },
        )?;
        let mut assembler = FrameAssembler::new(len);
        let mut decoder = FrameDecoder::<MAX_ENCODED_LEN>::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(SessionEnd::Disconnected),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pty whose other end closed reports EIO: that is a disconnect too.
                Err(e) if e.raw_os_error() == Some(5) => return Ok(SessionEnd::Disconnected),
                // A read timeout set by the transport: the camera went quiet.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(SessionEnd::Idle)
                }
                Err(e) => return Err(e.into()),
            };
            for result in decoder.feed(&buf[..n]) {
                match result {
                    Ok(Message::Bye) => {
                        send(writer, &Message::Bye)?;
                        return Ok(SessionEnd::Bye);
                    }
                    Ok(msg) => self.handle(msg, &mut assembler, writer)?,
                    Err(e) => self.error(writer, 0, e.code())?,
                }
            }
        }
    }

    /// Answer a camera that connects while another is served: `Error{0, Busy}`, counted.
    pub fn turn_away<W: Write>(&self, writer: W) -> io::Result<()> {
        self.error(&Mutex::new(writer), 0, ErrorCode::Busy)
    }

    /// Send `Error{frame, code}` and count it.
    fn error<W: Write>(&self, writer: &Mutex<W>, frame: u32, code: ErrorCode) -> io::Result<()> {
        {
            let mut st = lock(&self.state);
            st.counters.errors = st.counters.errors.wrapping_add(1);
        }
        send(writer, &Message::Error { frame, code })
    }

    /// React to one decoded message.
    fn handle<W: Write>(
        &self,
        msg: Message,
        assembler: &mut FrameAssembler,
        writer: &Mutex<W>,
    ) -> io::Result<()> {
        match msg {
            Message::Hello {
                protocol,
                role,
                max_chunk,
            } => {
                if protocol != PROTOCOL_VERSION || role != Role::Camera || max_chunk == 0 {
                    return self.error(writer, 0, ErrorCode::Unsupported);
                }
                lock(&self.state).peer_chunk = usize::from(max_chunk).min(MAX_CHUNK);
                let caps = Message::Capabilities {
                    protocol: PROTOCOL_VERSION,
                    width: self.config.width,
                    height: self.config.height,
                    channels: 3,
                    max_chunk: MAX_CHUNK as u16,
                    model_id: model_id(&self.config.model_id),
                };
                send(writer, &caps)
            }
            Message::FrameChunk(chunk) => match assembler.push(&chunk) {
                Err(e) => self.error(writer, chunk.frame, e.code()),
                Ok(None) => Ok(()),
                Ok(Some(bytes)) => self.enqueue(chunk.frame, bytes, writer),
            },
            Message::Stats { .. } => {
                let stats = {
                    let mut st = lock(&self.state);
                    Message::Stats {
                        frames: st.counters.restored,
                        dropped: st.counters.dropped,
                        p50_us: st.latency.percentile_us(50.0),
                        p99_us: st.latency.percentile_us(99.0),
                    }
                };
                send(writer, &stats)
            }
            // Board-to-camera messages have no meaning here.
            _ => Ok(()),
        }
    }

    /// Queue a complete frame and `Ack` it; a frame evicted to make room gets `Busy`.
    fn enqueue<W: Write>(&self, id: u32, bytes: &[u8], writer: &Mutex<W>) -> io::Result<()> {
        let Some(mut image) = lock(&self.state).pool.pop() else {
            return self.error(writer, id, ErrorCode::Busy);
        };
        image.data.copy_from_slice(bytes);
        // Ack before the worker can see the frame, so it always precedes the restored chunks.
        let acked = send(writer, &Message::Ack { frame: id });
        let mut st = lock(&self.state);
        if acked.is_err() {
            let _ = st.pool.push(image);
            return acked;
        }
        let evicted = st.queue.push(Frame { id, image }).map(|old| {
            st.counters.dropped = st.counters.dropped.wrapping_add(1);
            let _ = st.pool.push(old.image);
            old.id
        });
        drop(st);
        self.work.notify_all();
        match evicted {
            Some(old) => self.error(writer, old, ErrorCode::Busy),
            None => Ok(()),
        }
    }

    fn worker<W: Write + Send>(&self, writer: &Mutex<W>, generation: u32) {
        let restorer = lock(&self.restorer).take();
        let mut restorer = match restorer.map_or_else(&self.factory, Ok) {
            Ok(r) => r,
            Err(_) => return,
        };
        loop {
            let frame = {
                let mut st = lock(&self.state);
                loop {
                    if st.closed || st.generation != generation {
                        break None;
                    }
                    if let Some(frame) = st.queue.pop() {
                        st.watchdog.frame_started();
                        st.busy = Some(Busy {
                            frame: frame.id,
                            since: Instant::now(),
                            generation,
                        });
                        break Some(frame);
                    }
                    st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(frame) = frame else { break };
            let started = Instant::now();
            let result = restorer.restore(&frame.image);
            let took = started.elapsed();

            let mut st = lock(&self.state);
            if st.generation != generation {
                // The watchdog gave up on us and reported the frame; a new worker runs.
                let _ = st.pool.push(frame.image);
                return;
            }
            st.busy = None;
            st.watchdog.record(took);
            st.latency.record(took);
            let chunk = st.peer_chunk;
            match &result {
                Ok(_) => st.counters.restored = st.counters.restored.wrapping_add(1),
                Err(_) => st.counters.errors = st.counters.errors.wrapping_add(1),
            }
            drop(st);

            let sent = match result {
                Ok(restored) => send_frame(writer, frame.id, &restored.data, chunk),
                Err(_) => send(
                    writer,
                    &Message::Error {
                        frame: frame.id,
                        code: ErrorCode::Internal,
                    },
                ),
            };
            let _ = lock(&self.state).pool.push(frame.image);
            if sent.is_err() {
                // The reader sees the broken connection and ends the session.
                continue;
            }
        }
        *lock(&self.restorer) = Some(restorer);
    }

    fn watchdog<'scope, W: Write + Send>(
        &'scope self,
        scope: &'scope Scope<'scope, '_>,
        writer: &'scope Mutex<W>,
    ) {
        let mut st = lock(&self.state);
        while !st.closed {
            let tick = (st.watchdog.limit() / 4)
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            let deadline = Instant::now() + tick;
            st = self
                .work
                .wait_timeout(st, tick)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
            st.watchdog.woke(deadline, Instant::now());
            let Some((frame, since, generation)) =
                st.busy.as_ref().map(|b| (b.frame, b.since, b.generation))
            else {
                continue;
            };
            if generation != st.generation || !st.watchdog.expired(since.elapsed()) {
                continue;
            }
            st.busy = None;
            st.generation = st.generation.wrapping_add(1);
            st.counters.resets = st.counters.resets.wrapping_add(1);
            st.counters.errors = st.counters.errors.wrapping_add(1);
            let generation = st.generation;
            drop(st);
            let _ = send(
                writer,
                &Message::Error {
                    frame,
                    code: ErrorCode::Internal,
                },
            );
            scope.spawn(move || self.worker(writer, generation));
            st = lock(&self.state);
        }
    }
}

/// Stream a restored frame back in chunks the camera accepts.
fn send_frame<W: Write>(
    writer: &Mutex<W>,
    id: u32,
    bytes: &[u8],
    max_chunk: usize,
) -> io::Result<()> {
    let pieces = chunks_sized(id, bytes, max_chunk).map_err(|e| io::Error::other(e.to_string()))?;
    let mut buf = [0u8; MAX_ENCODED_LEN];
    // One lock for the whole frame keeps its chunks contiguous on the wire.
    let mut w = lock(writer);
    for piece in pieces {
        let frame = encode(&Message::RestoredChunk(piece), &mut buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        w.write_all(frame)?;
    }
    w.flush()
}

/// `name` cut to the protocol's model-id capacity at a character boundary.
pub fn model_id(name: &str) -> heapless::String<MODEL_ID_LEN> {
    let mut id = heapless::String::new();
    for ch in name.chars() {
        if id.push(ch).is_err() {
            break;
        }
    }
    id
}
