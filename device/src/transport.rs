//! Byte transports for the camera link: a serial port (UART, USB CDC) or a Unix socket.
//!
//! The serial port is the tty device opened as a plain file and switched to raw mode with
//! termios (through `rustix`, pure Rust), so the board build needs neither libudev nor a C
//! toolchain, and a pseudo-terminal works exactly like a real UART in tests.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

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

/// Serve cameras connecting to the Unix socket at `path` one after another (a stale socket
/// file is replaced). Stops after `max_sessions` sessions if given.
pub fn serve_unix<R, F>(
    server: &Server<R, F>,
    path: &Path,
    max_sessions: Option<usize>,
) -> Result<(), ServeError>
where
    R: Restorer,
    F: Fn() -> Result<R, PipelineError> + Sync,
{
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    serve_listener(server, &listener, max_sessions)
}

/// As [`serve_unix`] on an already bound listener.
pub fn serve_listener<R, F>(
    server: &Server<R, F>,
    listener: &UnixListener,
    max_sessions: Option<usize>,
) -> Result<(), ServeError>
where
    R: Restorer,
    F: Fn() -> Result<R, PipelineError> + Sync,
{
    let mut served = 0;
    while max_sessions.is_none_or(|max| served < max) {
        let (stream, _) = listener.accept()?;
        let writer = stream.try_clone()?;
        // A broken connection ends its session, not the server.
        if let Err(e) = server.session(&stream, writer) {
            eprintln!("session ended: {e}");
        }
        served += 1;
    }
    Ok(())
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
            Ok(SessionEnd::Bye | SessionEnd::Disconnected) => {}
            Err(e) => eprintln!("session ended: {e}"),
        }
        served += 1;
    }
    Ok(())
}
