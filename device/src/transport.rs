//! Byte transports for the camera link: a serial port (UART, USB CDC) or a Unix socket.
//!
//! The serial port is the tty device opened as a plain file and switched to raw mode with
//! termios (through `rustix`, pure Rust), so the board build needs neither libudev nor a C
//! toolchain, and a pseudo-terminal works exactly like a real UART in tests.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::termios::{self, OptionalActions, QueueSelector, SpecialCodeIndex};

use crate::pipeline::PipelineError;
use crate::serve::{Restorer, ServeError, Server, SessionEnd};

/// `O_NOCTTY`: opening a serial port must not make it the daemon's controlling terminal.
const O_NOCTTY: i32 = 0o400;

/// Open `path` read-write as a raw 8N1 serial port at `baud` (blocking reads of ≥ 1 byte).
pub fn open_serial(path: &Path, baud: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_NOCTTY)
        .open(path)?;
    let mut tio = termios::tcgetattr(&file)?;
    tio.make_raw();
    tio.special_codes[SpecialCodeIndex::VMIN] = 1;
    tio.special_codes[SpecialCodeIndex::VTIME] = 0;
    tio.set_speed(baud)?;
    termios::tcsetattr(&file, OptionalActions::Now, &tio)?;
    // Bytes that arrived before raw mode may be mangled: start clean.
    termios::tcflush(&file, QueueSelector::IOFlush)?;
    Ok(file)
}

/// How often the listener looks for a connection (it also answers a second camera with
/// `Busy` while one is served, so it cannot simply block in `accept`).
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Bind the Unix socket at `path` for [`serve_listener`]. A stale socket file (no server
/// answering) is replaced; a live server's socket or any other file is refused.
pub fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ServeError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => return Err(ServeError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(UnixListener::bind(path)?)
}

/// Serve cameras connecting to `listener` (see [`bind_unix`]), one session at a time.
/// Stops after `max_sessions` sessions if given; a session whose camera sends nothing for
/// `idle` ends, so a silent peer cannot lock the others out. One thread runs sessions;
/// this one accepts, hands a connection over when no session runs, and answers `Busy`
/// otherwise.
pub fn serve_listener<R, F>(
    server: &Server<R, F>,
    listener: &UnixListener,
    max_sessions: Option<usize>,
    idle: Option<Duration>,
) -> Result<(), ServeError>
where
    R: Restorer,
    F: Fn() -> Result<R, PipelineError> + Sync,
{
    listener.set_nonblocking(true)?;
    let (active, done) = (&AtomicBool::new(false), &AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::sync_channel::<UnixStream>(0);
    std::thread::scope(|s| {
        s.spawn(move || {
            for (n, stream) in rx.into_iter().enumerate() {
                let session = stream
                    .set_read_timeout(idle)
                    .and_then(|()| stream.try_clone())
                    .map_err(ServeError::from)
                    .and_then(|writer| server.session(&stream, writer));
                // A broken connection ends its session, not the server.
                match session {
                    Ok(SessionEnd::Idle) => eprintln!("session ended: the camera went idle"),
                    Ok(_) => {}
                    Err(e) => eprintln!("session ended: {e}"),
                }
                if max_sessions.is_some_and(|max| n + 1 >= max) {
                    done.store(true, Ordering::SeqCst);
                    break;
                }
                active.store(false, Ordering::SeqCst);
            }
        });
        let result: Result<(), ServeError> = loop {
            if done.load(Ordering::SeqCst) {
                break Ok(());
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(false) {
                        eprintln!("connection dropped: {e}");
                    } else if active.swap(true, Ordering::SeqCst) {
                        let _ = server.turn_away(&stream);
                    } else if tx.send(stream).is_err() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.into()),
            }
        };
        drop(tx);
        result
    })
}

/// Serve the camera on the serial port at `path`, reopening it after a disconnect (a USB
/// gadget unplugged, a pty closed). Stops after `max_sessions` sessions if given.
pub fn serve_serial<R, F>(
    server: &Server<R, F>,
    path: &Path,
    baud: u32,
    max_sessions: Option<usize>,
) -> Result<(), ServeError>
where
    R: Restorer,
    F: Fn() -> Result<R, PipelineError> + Sync,
{
    let mut served = 0;
    while max_sessions.is_none_or(|max| served < max) {
        let port = open_serial(path, baud)?;
        let writer = port.try_clone()?;
        match server.session(&port, writer) {
            Ok(SessionEnd::Bye | SessionEnd::Disconnected | SessionEnd::Idle) => {}
            Err(e) => eprintln!("session ended: {e}"),
        }
        served += 1;
    }
    Ok(())
}
