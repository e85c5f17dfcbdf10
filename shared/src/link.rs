//! The camera ⇄ board link protocol.
//!
//! A camera-side microcontroller streams raw RGB8 frames to the board in [`Chunk`]s and gets
//! the restored frame back the same way. The module is written so that the microcontroller
//! can use it unchanged: nothing on the encode/decode path allocates (buffers are
//! [`heapless`] or caller-provided), and nothing panics on bytes that came off the wire.
//!
//! # Wire format
//!
//! Every message travels as one self-delimiting frame:
//!
//! ```text
//! COBS( postcard(Message) ++ crc32_le(postcard(Message)) ) ++ 0x00
//! ```
//!
//! * [postcard] encoding: integers are LEB128-style varints, enums are a varint variant index
//!   followed by the fields in declaration order, byte vectors and strings are a varint length
//!   followed by the bytes. **The variant order of [`Message`], [`Role`] and [`ErrorCode`] is
//!   part of the wire format: only append new variants, and bump [`PROTOCOL_VERSION`] for any
//!   incompatible change.**
//! * CRC-32/ISO-HDLC (the zlib/Ethernet CRC) over the postcard bytes, little-endian, so that
//!   line noise is reported as [`LinkError::Crc`] instead of decoding into a wrong message.
//! * COBS (consistent overhead byte stuffing) removes every `0x00` from the frame, so the
//!   `0x00` delimiter always marks a frame boundary: a receiver that starts mid-stream or hits
//!   garbage resynchronises at the next delimiter.
//!
//! A frame is at most [`MAX_ENCODED_LEN`] bytes including the delimiter.

use alloc::vec;
use alloc::vec::Vec;

use postcard::ser_flavors::crc::CrcModifier;
use postcard::ser_flavors::{Cobs, Slice};
use serde::{Deserialize, Serialize};

/// Protocol revision, exchanged in [`Message::Hello`] and [`Message::Capabilities`].
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest payload of one [`Chunk`], in bytes. A [`Message::Hello`] may negotiate less.
pub const MAX_CHUNK: usize = 1024;

/// Capacity of [`Message::Capabilities::model_id`], in bytes of UTF-8.
pub const MODEL_ID_LEN: usize = 32;

/// Bytes of CRC appended to every postcard payload.
pub const CRC_LEN: usize = 4;

/// Largest postcard encoding of any [`Message`] (without CRC or COBS), in bytes.
pub const MAX_MESSAGE_LEN: usize = 1 + max(CHUNK_MAX_LEN, CAPABILITIES_MAX_LEN);

/// Largest decoded frame payload: message plus CRC.
pub const MAX_PAYLOAD_LEN: usize = MAX_MESSAGE_LEN + CRC_LEN;

/// Largest encoded frame, including the trailing `0x00` delimiter. Size transmit buffers
/// and [`FrameDecoder`]s with this to be able to carry every message.
pub const MAX_ENCODED_LEN: usize = max_encoded_len();

/// Worst-case varint sizes in postcard (7 payload bits per byte).
const VARINT_U16_MAX: usize = 3;
const VARINT_U32_MAX: usize = 5;

const CHUNK_MAX_LEN: usize = 3 * VARINT_U32_MAX + varint_len(MAX_CHUNK) + MAX_CHUNK;
const CAPABILITIES_MAX_LEN: usize =
    4 * VARINT_U16_MAX + 1 + varint_len(MODEL_ID_LEN) + MODEL_ID_LEN;

/// The zlib/Ethernet CRC-32. A `static` so the 1 KiB lookup table exists once in flash.
/// CRC-32/ISO-HDLC (zlib's `crc32`), also the manifest's own checksum.
pub(crate) static CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Largest encoded frame in bytes, delimiter included (see [`MAX_ENCODED_LEN`]).
///
/// COBS adds one code byte per started 254-byte block, and the frame ends in one `0x00`.
pub const fn max_encoded_len() -> usize {
    MAX_PAYLOAD_LEN + MAX_PAYLOAD_LEN / 254 + 1 + 1
}

const fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Which end of the link a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The camera-side microcontroller: sends frames, receives restored frames.
    Camera,
    /// The ARM board running the model.
    Board,
}

/// Error codes a peer reports in [`Message::Error`]. Append only (wire format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A frame failed its CRC check.
    Crc,
    /// A frame ended before its COBS blocks or CRC did.
    Truncated,
    /// A frame exceeded the receiver's buffer.
    Oversized,
    /// A frame passed its CRC but did not decode as a [`Message`] (e.g. protocol mismatch).
    Malformed,
    /// A chunk's offset/length/total were inconsistent, overlapping or out of order.
    BadChunk,
    /// A frame's total size did not match the negotiated width × height × channels.
    WrongSize,
    /// The receiver is still processing and dropped the frame.
    Busy,
    /// The receiver failed for a reason of its own.
    Internal,
    /// The peer speaks a protocol version we do not.
    Unsupported,
}

/// One piece of a raw RGB8 (HWC) frame: `data` holds bytes `offset..offset + data.len()`
/// of a frame that is `total` bytes long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Frame sequence number chosen by the camera, counting from 1 (0 is reserved for
    /// "no particular frame" in [`Message::Error`]); restored chunks echo it.
    pub frame: u32,
    /// Byte offset of `data` within the frame.
    pub offset: u32,
    /// Size of the whole frame in bytes.
    pub total: u32,
    pub data: heapless::Vec<u8, MAX_CHUNK>,
}

/// Everything that travels over the link.
// Boxing the chunk would keep the enum small but needs an allocator on the microcontroller;
// a ~1 KiB message by value is the cheaper trade there.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message from each side; `max_chunk` is the largest chunk payload it accepts.
    Hello {
        protocol: u16,
        role: Role,
        max_chunk: u16,
    },
    /// The board's answer to a camera's `Hello`: what frames it expects and which model runs.
    Capabilities {
        protocol: u16,
        width: u16,
        height: u16,
        channels: u8,
        max_chunk: u16,
        model_id: heapless::String<MODEL_ID_LEN>,
    },
    /// Camera → board: part of a frame to restore.
    FrameChunk(Chunk),
    /// Board → camera: part of a restored frame.
    RestoredChunk(Chunk),
    /// A whole frame was received (flow control: the camera may send the next one).
    Ack { frame: u32 },
    /// Something went wrong with `frame` (0 when the error is not about a frame).
    Error { frame: u32, code: ErrorCode },
    /// Board performance counters; latencies are per frame, in microseconds.
    Stats {
        frames: u32,
        dropped: u32,
        p50_us: u32,
        p99_us: u32,
    },
    /// Orderly shutdown of the link.
    Bye,
}

/// Why encoding or decoding a frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("output buffer too small for the encoded frame")]
    BufferTooSmall,
    #[error("message could not be serialised")]
    Encode,
    #[error(
        "frame exceeds the decoder's {capacity}-byte buffer; discarded up to the next delimiter"
    )]
    Oversized { capacity: usize },
    #[error("frame truncated (COBS block or CRC missing)")]
    Truncated,
    #[error("CRC mismatch: frame carries {received:#010x}, payload hashes to {computed:#010x}")]
    Crc { computed: u32, received: u32 },
    #[error("frame passed its CRC but is not a valid message")]
    Malformed,
}

impl LinkError {
    /// The code to report to the peer in a [`Message::Error`].
    pub fn code(&self) -> ErrorCode {
        match self {
            LinkError::BufferTooSmall | LinkError::Encode => ErrorCode::Internal,
            LinkError::Oversized { .. } => ErrorCode::Oversized,
            LinkError::Truncated => ErrorCode::Truncated,
            LinkError::Crc { .. } => ErrorCode::Crc,
            LinkError::Malformed => ErrorCode::Malformed,
        }
    }
}

/// Encode `msg` as one frame (trailing `0x00` included) into `out`, returning the used part.
///
/// Serialisation, CRC and COBS happen in one pass straight into `out`, so no scratch buffer
/// is needed; `out` of [`MAX_ENCODED_LEN`] bytes always suffices.
pub fn encode<'a>(msg: &Message, out: &'a mut [u8]) -> Result<&'a [u8], LinkError> {
    let cobs = Cobs::try_new(Slice::new(out)).map_err(|_| LinkError::BufferTooSmall)?;
    let flavor = CrcModifier::new(cobs, CRC.digest());
    match postcard::serialize_with_flavor::<Message, _, &mut [u8]>(msg, flavor) {
        Ok(frame) => Ok(frame),
        Err(postcard::Error::SerializeBufferFull) => Err(LinkError::BufferTooSmall),
        Err(_) => Err(LinkError::Encode),
    }
}

/// Decode one COBS frame *without* its `0x00` delimiter, in place (`frame` is clobbered).
///
/// This is what [`FrameDecoder`] calls at every delimiter; it is public for transports that
/// frame messages themselves (e.g. one frame per USB packet).
pub fn decode_in_place(frame: &mut [u8]) -> Result<Message, LinkError> {
    // The only way COBS can be invalid once zeros are excluded is a block running past
    // the end of the frame, i.e. lost bytes.
    let len = cobs::decode_in_place(frame).map_err(|_| LinkError::Truncated)?;
    let payload = frame.get(..len).ok_or(LinkError::Truncated)?;
    // At least a one-byte message (the variant index) plus the CRC.
    if payload.len() < 1 + CRC_LEN {
        return Err(LinkError::Truncated);
    }
    let (body, crc) = payload.split_at(payload.len() - CRC_LEN);
    let received = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = CRC.checksum(body);
    if computed != received {
        return Err(LinkError::Crc { computed, received });
    }
    match postcard::take_from_bytes::<Message>(body) {
        Ok((msg, [])) => Ok(msg),
        // Trailing bytes or undecodable content behind a good CRC: the sender speaks
        // another revision (or has a bug) — not line noise.
        Ok(_) | Err(_) => Err(LinkError::Malformed),
    }
}

/// Streaming decoder: feed it received bytes, get a [`Message`] (or error) per frame.
///
/// Bytes accumulate in a fixed `N`-byte buffer up to the `0x00` delimiter. A frame longer
/// than `N` is reported once as [`LinkError::Oversized`] and the rest of it is skipped, so the
/// decoder resynchronises at the next delimiter; empty frames (repeated delimiters, which a
/// sender may use to flush a receiver's state) are ignored. Use `N =` [`MAX_ENCODED_LEN`]
/// (the default) to accept every message.
#[derive(Debug, Clone)]
pub struct FrameDecoder<const N: usize = MAX_ENCODED_LEN> {
    buf: heapless::Vec<u8, N>,
    discarding: bool,
}

impl<const N: usize> Default for FrameDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameDecoder<N> {
    pub const fn new() -> Self {
        Self {
            buf: heapless::Vec::new(),
            discarding: false,
        }
    }

    /// Consume one byte; returns a result when it completes (or overflows) a frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, LinkError>> {
        if byte == 0 {
            if core::mem::take(&mut self.discarding) || self.buf.is_empty() {
                self.buf.clear();
                return None;
            }
            let result = decode_in_place(&mut self.buf);
            self.buf.clear();
            return Some(result);
        }
        if self.discarding {
            return None;
        }
        if self.buf.push(byte).is_err() {
            self.buf.clear();
            self.discarding = true;
            return Some(Err(LinkError::Oversized { capacity: N }));
        }
        None
    }

    /// Consume a slice of received bytes, yielding a result per completed frame.
    ///
    /// Bytes are consumed lazily: stop iterating early and the rest are not pushed.
    pub fn feed<'a>(&'a mut self, bytes: &'a [u8]) -> Feed<'a, N> {
        Feed {
            decoder: self,
            bytes: bytes.iter(),
        }
    }

    /// Drop any partial frame, e.g. after the transport reconnects.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// Bytes of the current partial frame held in the buffer.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator returned by [`FrameDecoder::feed`].
pub struct Feed<'a, const N: usize> {
    decoder: &'a mut FrameDecoder<N>,
    bytes: core::slice::Iter<'a, u8>,
}

impl<const N: usize> Iterator for Feed<'_, N> {
    type Item = Result<Message, LinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        for &byte in self.bytes.by_ref() {
            if let Some(result) = self.decoder.push(byte) {
                return Some(result);
            }
        }
        None
    }
}

/// Bytes in an `width × height` frame of `channels` interleaved 8-bit channels, or `None`
/// if that does not fit the protocol's `u32` sizes.
pub fn frame_len(width: u16, height: u16, channels: u8) -> Option<usize> {
    let len = u32::from(width)
        .checked_mul(u32::from(height))?
        .checked_mul(u32::from(channels))?;
    usize::try_from(len).ok()
}

/// Why a chunk could not be split off or fitted into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    #[error("chunk says the frame is {total} bytes, expected {expected}")]
    WrongSize { expected: usize, total: u32 },
    #[error("chunk carries no data")]
    EmptyChunk,
    #[error("chunk at offset {offset} with {len} bytes runs past the {total}-byte frame")]
    OutOfBounds { offset: u32, len: usize, total: u32 },
    #[error("chunk at offset {offset} overlaps data already received up to {expected}")]
    Overlap { offset: u32, expected: usize },
    #[error("chunk at offset {offset} leaves a gap: expected offset {expected}")]
    Gap { offset: u32, expected: usize },
    #[error("frame of {len} bytes is too large for the protocol's u32 sizes")]
    TooLarge { len: usize },
}

impl AssembleError {
    /// The code to report to the peer in a [`Message::Error`].
    pub fn code(&self) -> ErrorCode {
        match self {
            AssembleError::WrongSize { .. } | AssembleError::TooLarge { .. } => {
                ErrorCode::WrongSize
            }
            _ => ErrorCode::BadChunk,
        }
    }
}

/// Split `bytes` (one frame) into chunks of at most [`MAX_CHUNK`] bytes, tagged `frame`.
/// Wrap each in [`Message::FrameChunk`] or [`Message::RestoredChunk`] to send it.
pub fn chunks(frame: u32, bytes: &[u8]) -> Result<Chunks<'_>, AssembleError> {
    chunks_sized(frame, bytes, MAX_CHUNK)
}

/// As [`chunks`], with chunks of at most `max_chunk` bytes (clamped to `1..=MAX_CHUNK`), for a
/// peer whose [`Message::Hello`] asked for smaller ones.
pub fn chunks_sized(
    frame: u32,
    bytes: &[u8],
    max_chunk: usize,
) -> Result<Chunks<'_>, AssembleError> {
    let total =
        u32::try_from(bytes.len()).map_err(|_| AssembleError::TooLarge { len: bytes.len() })?;
    Ok(Chunks {
        frame,
        total,
        offset: 0,
        rest: bytes,
        max_chunk: max_chunk.clamp(1, MAX_CHUNK),
    })
}

/// Iterator returned by [`chunks`]: in-order, contiguous, non-empty chunks.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    frame: u32,
    total: u32,
    offset: u32,
    rest: &'a [u8],
    max_chunk: usize,
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.rest.is_empty() {
            return None;
        }
        let (head, tail) = self.rest.split_at(self.rest.len().min(self.max_chunk));
        // `head` is at most MAX_CHUNK long and offsets stay below `total: u32`, so neither
        // of these fails; bail out rather than panic if that ever changes.
        let data = heapless::Vec::from_slice(head).ok()?;
        let chunk = Chunk {
            frame: self.frame,
            offset: self.offset,
            total: self.total,
            data,
        };
        self.offset = self.offset.checked_add(u32::try_from(head.len()).ok()?)?;
        self.rest = tail;
        Some(chunk)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().div_ceil(self.max_chunk);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Chunks<'_> {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assembly {
    Idle,
    Filling {
        frame: u32,
        next: usize,
    },
    /// `frame` failed; its remaining chunks are ignored instead of each raising an error.
    Rejected {
        frame: u32,
    },
}

/// Reassembles a frame of a fixed, negotiated size from [`Chunk`]s.
///
/// Chunks must arrive in order and contiguously (the link is a serial line: anything else
/// means a chunk was lost or duplicated). The rules:
///
/// * A chunk at offset 0 starts its frame, abandoning (and counting as dropped) any
///   unfinished one — also a fresh attempt at a frame that was rejected.
/// * The first inconsistent chunk of a frame (wrong total, empty, out of bounds, overlap,
///   gap, or a different frame id mid-frame without offset 0) returns an error — report it
///   once to the peer — and the rest of that frame's chunks are silently ignored.
/// * The chunk that fills the last byte returns the frame.
///
/// Storage is any byte buffer, so a microcontroller can assemble into a static array with
/// [`with_buffer`](Self::with_buffer); [`new`](Self::new) allocates a `Vec` once.
#[derive(Debug, Clone)]
pub struct FrameAssembler<B = Vec<u8>> {
    buf: B,
    state: Assembly,
    completed: u32,
    dropped: u32,
}

impl FrameAssembler<Vec<u8>> {
    /// An assembler for frames of exactly `frame_len` bytes (see [`frame_len`]).
    pub fn new(frame_len: usize) -> Self {
        Self::with_buffer(vec![0; frame_len])
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameAssembler<B> {
    /// Assemble into `buf`; frames must be exactly `buf.as_ref().len()` bytes.
    pub fn with_buffer(buf: B) -> Self {
        Self {
            buf,
            state: Assembly::Idle,
            completed: 0,
            dropped: 0,
        }
    }

    /// Expected frame size in bytes.
    pub fn frame_len(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Frames completed so far.
    pub fn completed(&self) -> u32 {
        self.completed
    }

    /// Frames started or rejected but never completed.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The frame currently being filled, if any.
    pub fn in_progress(&self) -> Option<u32> {
        match self.state {
            Assembly::Filling { frame, .. } => Some(frame),
            _ => None,
        }
    }

    /// Forget any partial frame without counting it as dropped.
    pub fn reset(&mut self) {
        self.state = Assembly::Idle;
    }

    /// Add a chunk; returns the whole frame once its last byte has arrived.
    pub fn push(&mut self, chunk: &Chunk) -> Result<Option<&[u8]>, AssembleError> {
        let frame = chunk.frame;
        let ignored = matches!(self.state, Assembly::Rejected { frame: f } if f == frame);
        if ignored && chunk.offset != 0 {
            return Ok(None);
        }
        match self.place(chunk) {
            Ok(done) => {
                if done {
                    self.state = Assembly::Idle;
                    self.completed = self.completed.wrapping_add(1);
                    Ok(Some(self.buf.as_ref()))
                } else {
                    Ok(None)
                }
            }
            Err(err) => {
                if !ignored {
                    // The offending frame never completes; whatever was in progress
                    // (the same frame or one it superseded) is lost too, counted once.
                    let superseded =
                        matches!(self.state, Assembly::Filling { frame: f, .. } if f != frame);
                    self.dropped = self.dropped.wrapping_add(1 + u32::from(superseded));
                }
                self.state = Assembly::Rejected { frame };
                Err(err)
            }
        }
    }

    /// Validate `chunk` against the state and copy it in; `Ok(true)` when the frame is full.
    fn place(&mut self, chunk: &Chunk) -> Result<bool, AssembleError> {
        let expected = self.frame_len();
        if usize::try_from(chunk.total).ok() != Some(expected) {
            return Err(AssembleError::WrongSize {
                expected,
                total: chunk.total,
            });
        }
        let len = chunk.data.len();
        if len == 0 {
            return Err(AssembleError::EmptyChunk);
        }
        let out_of_bounds = AssembleError::OutOfBounds {
            offset: chunk.offset,
            len,
            total: chunk.total,
        };
        let start = usize::try_from(chunk.offset).map_err(|_| out_of_bounds)?;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= expected)
            .ok_or(out_of_bounds)?;

        let next = match self.state {
            Assembly::Filling { frame, next } if frame == chunk.frame => next,
            Assembly::Filling { .. } if start == 0 => {
                // A new frame supersedes the unfinished one.
                self.dropped = self.dropped.wrapping_add(1);
                0
            }
            _ => 0,
        };
        if start < next {
            return Err(AssembleError::Overlap {
                offset: chunk.offset,
                expected: next,
            });
        }
        if start > next {
            return Err(AssembleError::Gap {
                offset: chunk.offset,
                expected: next,
            });
        }
        let dst = self.buf.as_mut().get_mut(start..end).ok_or(out_of_bounds)?;
        dst.copy_from_slice(&chunk.data);
        self.state = Assembly::Filling {
            frame: chunk.frame,
            next: end,
        };
        Ok(end == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn enc(msg: &Message) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        encode(msg, &mut buf).expect("encode").to_vec()
    }

    fn decode_all<const N: usize>(
        dec: &mut FrameDecoder<N>,
        bytes: &[u8],
    ) -> Vec<Result<Message, LinkError>> {
        dec.feed(bytes).collect()
    }

    fn chunk(frame: u32, offset: u32, total: u32, data: &[u8]) -> Chunk {
        Chunk {
            frame,
            offset,
            total,
            data: heapless::Vec::from_slice(data).expect("test chunk fits"),
        }
    }

    /// The largest value of every message type (worst-case varints, full buffers).
    fn samples() -> Vec<Message> {
        let full = chunk(u32::MAX, u32::MAX, u32::MAX, &[0xA5; MAX_CHUNK]);
        let mut model_id = heapless::String::new();
        model_id.push_str(&"m".repeat(MODEL_ID_LEN)).expect("fits");
        vec![
            Message::Hello {
                protocol: PROTOCOL_VERSION,
                role: Role::Camera,
                max_chunk: 1024,
            },
            Message::Hello {
                protocol: u16::MAX,
                role: Role::Board,
                max_chunk: u16::MAX,
            },
            Message::Capabilities {
                protocol: u16::MAX,
                width: u16::MAX,
                height: u16::MAX,
                channels: 3,
                max_chunk: u16::MAX,
                model_id,
            },
            Message::Capabilities {
                protocol: 1,
                width: 256,
                height: 256,
                channels: 3,
                max_chunk: 512,
                model_id: heapless::String::try_from("unveil-v1 ✓").expect("fits"),
            },
            Message::FrameChunk(full.clone()),
            Message::RestoredChunk(full),
            Message::FrameChunk(chunk(7, 0, 3, &[0, 0, 0])),
            Message::RestoredChunk(chunk(0, 0, 0, &[])),
            Message::Ack { frame: u32::MAX },
            Message::Error {
                frame: 3,
                code: ErrorCode::Crc,
            },
            Message::Error {
                frame: 0,
                code: ErrorCode::Unsupported,
            },
            Message::Stats {
                frames: u32::MAX,
                dropped: u32::MAX,
                p50_us: u32::MAX,
                p99_us: u32::MAX,
            },
            Message::Bye,
        ]
    }

    #[test]
    fn every_message_round_trips() {
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        for msg in samples() {
            let bytes = enc(&msg);
            assert!(
                bytes.len() <= MAX_ENCODED_LEN,
                "{} > {MAX_ENCODED_LEN}",
                bytes.len()
            );
            assert_eq!(bytes.last(), Some(&0));
            assert!(
                !bytes[..bytes.len() - 1].contains(&0),
                "COBS left a zero inside the frame"
            );
            assert_eq!(decode_all(&mut dec, &bytes), vec![Ok(msg)]);
            assert_eq!(dec.pending(), 0);
        }
    }

    #[test]
    fn max_lengths_are_exact() {
        let worst = samples()
            .iter()
            .map(|m| postcard::experimental::serialized_size(m).expect("size"))
            .max();
        assert_eq!(worst, Some(MAX_MESSAGE_LEN));
        // Worst case for COBS is a payload without zeros; a chunk of 0xA5 with all-0xFF
        // varints comes close (the CRC may contain a zero), so check the bound holds.
        let full = enc(&Message::FrameChunk(chunk(
            u32::MAX,
            u32::MAX,
            u32::MAX,
            &[0xA5; MAX_CHUNK],
        )));
        assert!(full.len() <= MAX_ENCODED_LEN);
        assert!(
            MAX_ENCODED_LEN - full.len() <= 1,
            "bound is loose: {} vs {MAX_ENCODED_LEN}",
            full.len()
        );
        assert_eq!(MAX_ENCODED_LEN, 1052);
    }

    /// Pins the wire format: a change here breaks deployed cameras.
    #[test]
    fn golden_hello_bytes() {
        let hello = Message::Hello {
            protocol: 1,
            role: Role::Camera,
            max_chunk: 1024,
        };
        // postcard: variant 0, protocol 1, role 0, max_chunk 1024 = varint 80 08;
        // CRC-32/ISO-HDLC of those 5 bytes = 0x4BC68001 (Python: zlib.crc32), little-endian;
        // COBS: code 01 (zero at 0), code 02 [01] (zero), code 07 [80 08 01 80 C6 4B]; delimiter.
        let expected = [
            0x01, 0x02, 0x01, 0x07, 0x80, 0x08, 0x01, 0x80, 0xC6, 0x4B, 0x00,
        ];
        assert_eq!(enc(&hello), expected);
        assert_eq!(CRC.checksum(&[0x00, 0x01, 0x00, 0x80, 0x08]), 0x4BC6_8001);
    }

    #[test]
    fn encode_into_small_buffer_fails_cleanly() {
        let msg = Message::Stats {
            frames: 1,
            dropped: 2,
            p50_us: 3,
            p99_us: 4,
        };
        let len = enc(&msg).len();
        for size in 0..len {
            let mut buf = vec![0u8; size];
            assert_eq!(
                encode(&msg, &mut buf),
                Err(LinkError::BufferTooSmall),
                "size {size}"
            );
        }
        let mut buf = vec![0u8; len];
        assert!(encode(&msg, &mut buf).is_ok());
    }

    /// Positions of COBS data bytes (not code bytes) in an encoded frame.
    fn data_positions(frame: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < frame.len() - 1 {
            let code = frame[i] as usize;
            out.extend(i + 1..i + code);
            i += code;
        }
        out
    }

    #[test]
    fn any_corrupted_data_byte_is_a_crc_error() {
        let msg = Message::FrameChunk(chunk(9, 2048, 49152, &[0x11, 0x22, 0x33, 0x00, 0x44]));
        let good = enc(&msg);
        let positions = data_positions(&good);
        assert!(positions.len() > 10);
        for pos in positions {
            let mut bad = good.clone();
            // Stay non-zero: a zero would split the frame instead of corrupting it.
            bad[pos] = if bad[pos] == 0x80 {
                0x81
            } else {
                bad[pos] ^ 0x80
            };
            let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
            match decode_all(&mut dec, &bad).as_slice() {
                [Err(LinkError::Crc { .. })] => {}
                other => panic!("byte {pos}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_frames_are_errors() {
        let good = enc(&Message::Stats {
            frames: 100,
            dropped: 1,
            p50_us: 20_000,
            p99_us: 45_000,
        });
        // A lost tail inside a COBS block is detected structurally.
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        let mut cut = good[..good.len() - 3].to_vec();
        cut.push(0);
        assert_eq!(decode_all(&mut dec, &cut), vec![Err(LinkError::Truncated)]);
        // Too short to hold a CRC.
        assert_eq!(
            decode_all(&mut dec, &[0x03, 0x01, 0x02, 0x00]),
            vec![Err(LinkError::Truncated)]
        );
        // Every possible cut is an error, never a (wrong) message.
        for keep in 1..good.len() - 1 {
            let mut cut = good[..keep].to_vec();
            cut.push(0);
            let results = decode_all(&mut dec, &cut);
            assert!(
                matches!(
                    results.as_slice(),
                    [Err(LinkError::Truncated | LinkError::Crc { .. })]
                ),
                "keep {keep}: {results:?}"
            );
        }
    }

    #[test]
    fn oversized_frame_is_reported_once_then_resyncs() {
        let hello = Message::Hello {
            protocol: 1,
            role: Role::Board,
            max_chunk: 64,
        };
        let mut dec = FrameDecoder::<32>::new();
        let mut stream = vec![0x55u8; 500];
        stream.push(0);
        stream.extend(enc(&hello));
        let results = decode_all(&mut dec, &stream);
        assert_eq!(
            results,
            vec![
                Err(LinkError::Oversized { capacity: 32 }),
                Ok(hello.clone())
            ]
        );

        // A real frame too big for a small decoder, followed directly by a good frame.
        let big = enc(&Message::FrameChunk(chunk(1, 0, 100, &[7; 100])));
        let mut stream = big;
        stream.extend(enc(&hello));
        assert_eq!(
            decode_all(&mut dec, &stream),
            vec![Err(LinkError::Oversized { capacity: 32 }), Ok(hello)]
        );
    }

    #[test]
    fn garbage_then_good_frame() {
        let msg = Message::Ack { frame: 42 };
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut stream: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        stream.push(0);
        stream.extend(enc(&msg));
        let results = decode_all(&mut dec, &stream);
        assert_eq!(results.last(), Some(&Ok(msg)));
        assert!(
            results[..results.len() - 1].iter().all(Result::is_err),
            "garbage decoded: {results:?}"
        );
        // Leading and repeated delimiters are idle fill, not errors.
        assert_eq!(decode_all(&mut dec, &[0, 0, 0]), vec![]);
    }

    #[test]
    fn valid_crc_but_not_a_message_is_malformed() {
        let mut payload = vec![0x63u8]; // variant 99 does not exist
        payload.extend(CRC.checksum(&payload).to_le_bytes());
        let mut frame = vec![0u8; payload.len() + 2];
        let n = cobs::encode(&payload, &mut frame);
        frame.truncate(n);
        frame.push(0);
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        assert_eq!(
            decode_all(&mut dec, &frame),
            vec![Err(LinkError::Malformed)]
        );
        assert_eq!(LinkError::Malformed.code(), ErrorCode::Malformed);
    }

    #[test]
    fn feed_is_lazy_and_resumable() {
        let a = Message::Ack { frame: 1 };
        let b = Message::Bye;
        let mut stream = enc(&a);
        stream.extend(enc(&b));
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        // Split the stream at every point: results must not depend on read boundaries.
        for split in 0..stream.len() {
            let mut got = decode_all(&mut dec, &stream[..split]);
            got.extend(decode_all(&mut dec, &stream[split..]));
            assert_eq!(got, vec![Ok(a.clone()), Ok(b.clone())], "split {split}");
        }
    }

    fn test_frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn chunk_and_assemble_128x128_rgb() {
        let len = frame_len(128, 128, 3).expect("fits");
        let frame = test_frame(len);
        let mut asm = FrameAssembler::new(len);
        let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
        let pieces = chunks(5, &frame).expect("chunks");
        assert_eq!(pieces.len(), len.div_ceil(MAX_CHUNK));
        let mut done = None;
        for piece in pieces {
            // Through the wire format too, as the device will see it.
            let wire = enc(&Message::FrameChunk(piece));
            let Some(Ok(Message::FrameChunk(piece))) = dec.feed(&wire).next() else {
                panic!("chunk did not decode");
            };
            assert!(done.is_none(), "completed early");
            done = asm.push(&piece).expect("valid chunk").map(<[u8]>::to_vec);
        }
        assert_eq!(done.as_deref(), Some(frame.as_slice()));
        assert_eq!((asm.completed(), asm.dropped()), (1, 0));

        // Smaller negotiated chunks, into a caller-provided buffer, and reuse for a 2nd frame.
        let mut storage = vec![0u8; len];
        let mut asm = FrameAssembler::with_buffer(storage.as_mut_slice());
        for id in [6, 7] {
            let mut out = None;
            for piece in chunks_sized(id, &frame, 300).expect("chunks") {
                assert!(piece.data.len() <= 300);
                out = asm.push(&piece).expect("valid").map(<[u8]>::to_vec);
            }
            assert_eq!(out.as_deref(), Some(frame.as_slice()));
        }
        assert_eq!(asm.completed(), 2);
    }

    #[test]
    fn inconsistent_chunks_are_rejected() {
        let mut asm = FrameAssembler::new(10);
        let e = |r: Result<Option<&[u8]>, AssembleError>| r.map(|o| o.map(<[u8]>::to_vec));
        assert_eq!(
            e(asm.push(&chunk(1, 0, 12, &[1; 4]))),
            Err(AssembleError::WrongSize {
                expected: 10,
                total: 12
            })
        );
        assert_eq!(
            e(asm.push(&chunk(2, 0, 10, &[]))),
            Err(AssembleError::EmptyChunk)
        );
        assert_eq!(
            e(asm.push(&chunk(3, 8, 10, &[1; 4]))),
            Err(AssembleError::OutOfBounds {
                offset: 8,
                len: 4,
                total: 10
            })
        );
        assert_eq!(
            e(asm.push(&chunk(3, u32::MAX, 10, &[1]))),
            Ok(None),
            "rest of a rejected frame is ignored"
        );
        // A frame whose first chunk was lost.
        assert_eq!(
            e(asm.push(&chunk(4, 4, 10, &[1; 4]))),
            Err(AssembleError::Gap {
                offset: 4,
                expected: 0
            })
        );
        // Overlap, then the rest of that frame is ignored.
        assert_eq!(e(asm.push(&chunk(5, 0, 10, &[1; 4]))), Ok(None));
        assert_eq!(asm.in_progress(), Some(5));
        assert_eq!(
            e(asm.push(&chunk(5, 2, 10, &[1; 4]))),
            Err(AssembleError::Overlap {
                offset: 2,
                expected: 4
            })
        );
        assert_eq!(e(asm.push(&chunk(5, 4, 10, &[1; 6]))), Ok(None));
        assert_eq!(asm.in_progress(), None);
        // Out of order: a later chunk before an earlier one.
        assert_eq!(e(asm.push(&chunk(6, 0, 10, &[1; 2]))), Ok(None));
        assert_eq!(
            e(asm.push(&chunk(6, 6, 10, &[1; 4]))),
            Err(AssembleError::Gap {
                offset: 6,
                expected: 2
            })
        );
        // Retrying a rejected frame from offset 0 works.
        assert_eq!(e(asm.push(&chunk(6, 0, 10, &[2; 5]))), Ok(None));
        assert_eq!(
            e(asm.push(&chunk(6, 5, 10, &[3; 5]))),
            Ok(Some(vec![2, 2, 2, 2, 2, 3, 3, 3, 3, 3]))
        );
        // A new frame mid-way supersedes the unfinished one; a mid-frame id switch is a gap.
        assert_eq!(e(asm.push(&chunk(7, 0, 10, &[1; 5]))), Ok(None));
        assert_eq!(e(asm.push(&chunk(8, 0, 10, &[4; 5]))), Ok(None));
        assert_eq!(
            e(asm.push(&chunk(9, 5, 10, &[4; 5]))),
            Err(AssembleError::Gap {
                offset: 5,
                expected: 0
            })
        );
        // Frames 1, 2, 3, 4, 5, 6 (first try), 7, 8, 9 never completed.
        assert_eq!((asm.completed(), asm.dropped()), (1, 9));
        assert_eq!(
            AssembleError::Gap {
                offset: 0,
                expected: 0
            }
            .code(),
            ErrorCode::BadChunk
        );
        assert_eq!(
            AssembleError::WrongSize {
                expected: 0,
                total: 0
            }
            .code(),
            ErrorCode::WrongSize
        );
        assert!(AssembleError::EmptyChunk.to_string().contains("no data"));
    }

    #[test]
    fn frame_len_checks_overflow() {
        assert_eq!(frame_len(128, 128, 3), Some(49_152));
        assert_eq!(frame_len(u16::MAX, u16::MAX, u8::MAX), None);
        assert_eq!(chunks(0, &[]).expect("empty").count(), 0);
    }

    fn arb_chunk() -> impl Strategy<Value = Chunk> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_CHUNK),
        )
            .prop_map(|(frame, offset, total, data)| chunk(frame, offset, total, &data))
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let role = prop_oneof![Just(Role::Camera), Just(Role::Board)];
        let code = (0u8..9).prop_map(|i| {
            [
                ErrorCode::Crc,
                ErrorCode::Truncated,
                ErrorCode::Oversized,
                ErrorCode::Malformed,
                ErrorCode::BadChunk,
                ErrorCode::WrongSize,
                ErrorCode::Busy,
                ErrorCode::Internal,
                ErrorCode::Unsupported,
            ][usize::from(i)]
        });
        prop_oneof![
            (any::<u16>(), role, any::<u16>()).prop_map(|(protocol, role, max_chunk)| {
                Message::Hello {
                    protocol,
                    role,
                    max_chunk,
                }
            }),
            (
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
                any::<u8>(),
                any::<u16>(),
                "[a-z0-9 ✓-]{0,8}"
            )
                .prop_map(|(protocol, width, height, channels, max_chunk, id)| {
                    Message::Capabilities {
                        protocol,
                        width,
                        height,
                        channels,
                        max_chunk,
                        model_id: heapless::String::try_from(id.as_str()).expect("≤ 32 bytes"),
                    }
                }),
            arb_chunk().prop_map(Message::FrameChunk),
            arb_chunk().prop_map(Message::RestoredChunk),
            any::<u32>().prop_map(|frame| Message::Ack { frame }),
            (any::<u32>(), code).prop_map(|(frame, code)| Message::Error { frame, code }),
            any::<[u32; 4]>().prop_map(|[frames, dropped, p50_us, p99_us]| Message::Stats {
                frames,
                dropped,
                p50_us,
                p99_us
            }),
            Just(Message::Bye),
        ]
    }

    /// Byte streams that exercise the decoder's edges: random bytes, runs long enough to
    /// overflow, zeros, and fragments of real frames.
    fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => (1u8..=255, 0usize..3000).prop_map(|(b, n)| vec![b; n]),
            1 => Just(vec![0u8]),
            2 => (arb_message(), any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(m, a, b)| {
                let bytes = enc(&m);
                let (a, b) = (a.index(bytes.len()), b.index(bytes.len()));
                bytes[a.min(b)..a.max(b)].to_vec()
            }),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn decoder_survives_garbage_and_resyncs(garbage in arb_stream(), msg in arb_message()) {
            let mut dec = FrameDecoder::<MAX_ENCODED_LEN>::new();
            // Garbage may contain whole valid frames; anything decoded must re-encode.
            for m in dec.feed(&garbage).flatten() {
                prop_assert!(encode(&m, &mut [0u8; MAX_ENCODED_LEN]).is_ok());
            }
            let mut tail = vec![0u8];
            tail.extend(enc(&msg));
            let results: Vec<_> = dec.feed(&tail).collect();
            prop_assert_eq!(results.last(), Some(&Ok(msg)));
            prop_assert!(results.len() <= 2, "{:?}", results);
        }

        #[test]
        fn small_decoder_survives_garbage(garbage in arb_stream()) {
            let mut dec = FrameDecoder::<48>::new();
            let mut oversized_since_delimiter = false;
            for &byte in &garbage {
                let result = dec.push(byte);
                if byte == 0 {
                    oversized_since_delimiter = false;
                }
                // Oversized is reported once per frame: never twice without a delimiter.
                if matches!(result, Some(Err(LinkError::Oversized { .. }))) {
                    prop_assert!(!oversized_since_delimiter);
                    oversized_since_delimiter = true;
                }
                // Only a delimiter completes a frame; other bytes can only overflow.
                prop_assert!(byte == 0 || result.is_none() || oversized_since_delimiter);
            }
            let hello = Message::Hello { protocol: 1, role: Role::Camera, max_chunk: 8 };
            let mut tail = vec![0u8];
            tail.extend(enc(&hello));
            prop_assert_eq!(dec.feed(&tail).last(), Some(Ok(hello)));
        }

        #[test]
        fn arbitrary_messages_round_trip(msg in arb_message()) {
            let bytes = enc(&msg);
            prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
            let mut frame = bytes[..bytes.len() - 1].to_vec();
            prop_assert_eq!(decode_in_place(&mut frame), Ok(msg));
        }

        #[test]
        fn assembler_never_panics(
            len in 1usize..64,
            pieces in proptest::collection::vec((0u32..4, 0u32..80, 0u32..80, 0usize..40), 0..32),
        ) {
            let mut asm = FrameAssembler::new(len);
            for (frame, offset, total, n) in pieces {
                let _ = asm.push(&chunk(frame, offset, total, &vec![1; n]));
            }
        }
    }
}
