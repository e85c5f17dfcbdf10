//! Frames from a V4L2 camera (USB webcams, the Raspberry Pi/Jetson camera stacks' V4L2
//! nodes), behind the `camera` feature.
//!
//! Capture goes through `linuxvideo`, which is pure Rust (ioctls through `libc`), so the
//! feature cross-builds like the rest. Cameras deliver packed YUYV or RGB24; both are turned
//! into RGB8 here and into the model's size with the shared bilinear resize.

use unveil_shared::ImageU8;

/// Why a camera frame could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("camera offers none of the supported formats (YUYV, RGB24)")]
    NoFormat,
    #[error("camera frame has {actual} bytes, expected at least {expected}")]
    Short { expected: usize, actual: usize },
}

/// Check that a captured buffer of `len` bytes holds `height` rows of `width` pixels at
/// `bytes_per_pixel`, `stride` bytes apart, and size `out` for the RGB8 result (it is
/// reallocated only when the camera's size changes).
fn fit_frame(
    len: usize,
    width: usize,
    height: usize,
    stride: usize,
    bytes_per_pixel: usize,
    out: &mut ImageU8,
) -> Result<(), CameraError> {
    let expected = stride * height.saturating_sub(1) + width * bytes_per_pixel;
    if len < expected || stride < width * bytes_per_pixel {
        return Err(CameraError::Short {
            expected,
            actual: len,
        });
    }
    if out.width != width || out.height != height || out.channels != 3 {
        *out = ImageU8::new(width, height, 3);
    }
    Ok(())
}

/// The packed pixel formats a camera may deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packed {
    /// 4:2:2 YUYV: two pixels in `Y0 U Y1 V`, BT.601 limited range.
    Yuyv,
    /// RGB24: three bytes per pixel.
    Rgb24,
}

impl Packed {
    fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Yuyv => 2,
            Self::Rgb24 => 3,
        }
    }
}

/// A packed frame of `width × height` pixels in `format`, rows `stride` bytes apart, to
/// RGB8 into `out` (`width × height × 3`).
pub fn to_rgb(
    src: &[u8],
    format: Packed,
    (width, height): (usize, usize),
    stride: usize,
    out: &mut ImageU8,
) -> Result<(), CameraError> {
    let bytes = format.bytes_per_pixel();
    fit_frame(src.len(), width, height, stride, bytes, out)?;
    for y in 0..height {
        let row = &src[y * stride..y * stride + width * bytes];
        let dst = &mut out.data[y * width * 3..(y + 1) * width * 3];
        match format {
            Packed::Rgb24 => dst.copy_from_slice(row),
            Packed::Yuyv => {
                for (x, px) in dst.chunks_exact_mut(3).enumerate() {
                    let pair = &row[(x / 2) * 4..(x / 2) * 4 + 4];
                    let luma = if x % 2 == 0 { pair[0] } else { pair[2] };
                    px.copy_from_slice(&bt601(luma, pair[1], pair[3]));
                }
            }
        }
    }
    Ok(())
}

/// One BT.601 limited-range YCbCr pixel to RGB (fixed point, as libyuv does).
fn bt601(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

#[cfg(feature = "camera")]
pub use device::Camera;

#[cfg(feature = "camera")]
mod device {
    use std::path::Path;

    use linuxvideo::format::{PixFormat, PixelFormat};
    use linuxvideo::stream::ReadStream;
    use linuxvideo::{BufType, Device};
    use unveil_shared::ImageU8;

    use super::{to_rgb, CameraError, Packed};

    /// An open, streaming V4L2 capture device.
    pub struct Camera {
        stream: ReadStream,
        format: PixelFormat,
        width: usize,
        height: usize,
        stride: usize,
    }

    impl Camera {
        /// Open `path` and start streaming, asking for `width × height` (the driver picks
        /// the nearest size it supports).
        pub fn open(path: &Path, width: u32, height: u32) -> Result<Self, CameraError> {
            let device = Device::open(path)?;
            let offered = device
                .formats(BufType::VIDEO_CAPTURE)
                .map(|f| f.map(|f| f.pixel_format()))
                .collect::<std::io::Result<Vec<_>>>()?;
            let format = [PixelFormat::RGB3, PixelFormat::YUYV]
                .into_iter()
                .find(|f| offered.contains(f))
                .ok_or(CameraError::NoFormat)?;
            let capture = device.video_capture(PixFormat::new(width, height, format))?;
            let got = capture.format();
            let (width, height) = (got.width() as usize, got.height() as usize);
            let stride = got.bytes_per_line() as usize;
            let format = got.pixel_format();
            Ok(Self {
                stream: capture.into_stream()?,
                format,
                width,
                height,
                stride,
            })
        }

        /// Negotiated frame size.
        pub fn size(&self) -> (usize, usize) {
            (self.width, self.height)
        }

        /// Wait for the next frame and convert it to RGB8 into `out`.
        pub fn next_frame(&mut self, out: &mut ImageU8) -> Result<(), CameraError> {
            let (size, stride) = ((self.width, self.height), self.stride);
            let format = if self.format == PixelFormat::YUYV {
                Packed::Yuyv
            } else {
                Packed::Rgb24
            };
            self.stream.dequeue(|buf| {
                to_rgb(&buf, format, size, stride, out)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_reference_colours() {
        // Black, white, and the BT.601 limited-range primaries (Y, Cb, Cr).
        assert_eq!(bt601(16, 128, 128), [0, 0, 0]);
        assert_eq!(bt601(235, 128, 128), [255, 255, 255]);
        // The primaries' 8-bit YCbCr codes are rounded, so allow one step.
        let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 1);
        assert!(
            near(bt601(81, 90, 240), [255, 0, 0]),
            "{:?}",
            bt601(81, 90, 240)
        );
        assert!(
            near(bt601(145, 54, 34), [0, 255, 0]),
            "{:?}",
            bt601(145, 54, 34)
        );
        assert!(
            near(bt601(41, 240, 110), [0, 0, 255]),
            "{:?}",
            bt601(41, 240, 110)
        );
    }

    #[test]
    fn rgb24_frame_drops_row_padding() {
        // 2x1 pixels per row, stride 7 (one padding byte), two rows.
        let src = [1, 2, 3, 4, 5, 6, 0xEE, 7, 8, 9, 10, 11, 12];
        let mut out = ImageU8::new(5, 5, 3);
        to_rgb(&src, Packed::Rgb24, (2, 2), 7, &mut out).unwrap();
        assert_eq!((out.width, out.height), (2, 2));
        assert_eq!(out.data, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert!(to_rgb(&src[..12], Packed::Rgb24, (2, 2), 7, &mut out).is_err());
    }

    #[test]
    fn yuyv_frame_with_row_padding() {
        // 2x2 pixels, stride 6 (2 padding bytes per row): grey pair, then white/black pair.
        let src = [
            126, 128, 126, 128, 0xAA, 0xAA, //
            235, 128, 16, 128, 0xAA, 0xAA,
        ];
        let mut out = ImageU8::new(1, 1, 3);
        to_rgb(&src, Packed::Yuyv, (2, 2), 6, &mut out).unwrap();
        assert_eq!((out.width, out.height, out.channels), (2, 2, 3));
        assert_eq!(
            out.data,
            [128, 128, 128, 128, 128, 128, 255, 255, 255, 0, 0, 0]
        );
        assert!(matches!(
            to_rgb(&src[..9], Packed::Yuyv, (2, 2), 6, &mut out),
            Err(CameraError::Short {
                expected: 10,
                actual: 9
            })
        ));
    }
}
