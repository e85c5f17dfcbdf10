//! Image files and folders as frame sources and sinks (the `restore` command).
//!
//! Files of any size are accepted. With a mask, each hidden region is restored in a context
//! window at the file's own resolution ([`crate::region`]) and only masked pixels change,
//! so unmasked pixels stay bit-exact.

use std::path::{Path, PathBuf};

use unveil_shared::{ImageError, ImageU8, Mask};

use crate::pipeline::{Pipeline, PipelineError};
use crate::region::RegionRestorer;
use unveil_shared::hole::HoleInput;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Decode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{path}: {source}")]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{path}: {source}")]
    Image { path: PathBuf, source: ImageError },
    #[error("{path}: {source}")]
    Pipeline {
        path: PathBuf,
        source: PipelineError,
    },
    #[error("{0} holds no PNG or JPEG images")]
    Empty(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: truncated JPEG (no end-of-image marker after its last scan)")]
    Truncated(PathBuf),
    #[error("{path}: {width}x{height} is {megapixels:.1} megapixels, over the {limit}-megapixel limit (--max-megapixels)")]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        megapixels: f64,
        limit: u32,
    },
    #[error("refusing to write {dest}: it is the input {input}; choose another --out")]
    WouldOverwrite { dest: PathBuf, input: PathBuf },
    #[error("{first} and {second} would both be written to {dest}; rename one or restore them separately")]
    SameOutput {
        first: PathBuf,
        second: PathBuf,
        dest: PathBuf,
    },
}

/// Decoded frames larger than this many megapixels are refused before decoding: a small,
/// highly compressed file can otherwise expand to gigabytes on a board with little memory.
pub const DEFAULT_MAX_MEGAPIXELS: u32 = 16;

/// PNG and JPEG files directly inside `dir`, sorted by name (deterministic order).
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let list = |source| SourceError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(SourceError::Empty(dir.to_path_buf()));
    }
    Ok(files)
}

/// Decode an image file as RGB8, refusing frames over `max_megapixels` (checked from the
/// header, before any pixel is decoded) and JPEGs cut short (which decoders would
/// otherwise fill with flat grey rows).
pub fn load_rgb(path: &Path, max_megapixels: u32) -> Result<ImageU8, SourceError> {
    let img = decode(path, max_megapixels)?.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    ImageU8::from_vec(w, h, 3, img.into_raw()).map_err(|source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    })
}

fn decode(path: &Path, max_megapixels: u32) -> Result<image::DynamicImage, SourceError> {
    let decode_err = |source| SourceError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .map_err(|e| decode_err(image::ImageError::IoError(e)))
    };
    let header = reader()?;
    let format = header.format();
    let (width, height) = header.into_dimensions().map_err(decode_err)?;
    if u64::from(width) * u64::from(height) > u64::from(max_megapixels) * 1_000_000 {
        return Err(SourceError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            megapixels: f64::from(width) * f64::from(height) / 1e6,
            limit: max_megapixels,
        });
    }
    if format == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return Err(SourceError::Truncated(path.to_path_buf()));
    }
    reader()?.decode().map_err(decode_err)
}

/// Whether a JPEG stream has its end-of-image marker (`FF D9`) after its last
/// start-of-scan (`FF DA`). Inside entropy-coded data `FF` is always followed by `00` or a
/// restart marker, so the pair found there is the real end, not an embedded thumbnail's.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Decode a mask image (set where grey ≥ 128), resized to `width × height`.
pub fn load_mask(path: &Path, width: usize, height: usize) -> Result<Mask, SourceError> {
    let err = |source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    };
    let img = decode(path, DEFAULT_MAX_MEGAPIXELS)?.to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grey = ImageU8::from_vec(w, h, 1, img.into_raw()).map_err(err)?;
    let grey = grey.resize_bilinear(width, height).map_err(err)?;
    Mask::from_grey(width, height, &grey.data).map_err(err)
}

/// Encode an image; the format follows the extension. Written to a temporary file beside
/// `path` and renamed over it, so a full disk or a kill leaves the old file or none, never
/// a truncated one.
pub fn save_rgb(path: &Path, img: &ImageU8) -> Result<(), SourceError> {
    let color = match img.channels {
        1 => image::ExtendedColorType::L8,
        4 => image::ExtendedColorType::Rgba8,
        _ => image::ExtendedColorType::Rgb8,
    };
    let encode_err = |source| SourceError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let format = image::ImageFormat::from_path(path).map_err(encode_err)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut bytes,
        &img.data,
        img.width as u32,
        img.height as u32,
        color,
        format,
    )
    .map_err(encode_err)?;
    unveil_shared::files::write_atomic(path, bytes.get_ref()).map_err(|source| SourceError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Where each of `inputs` is restored to: `out/<stem>.png`. Checked before any work:
/// no destination may be an existing file among `protected` (the inputs and masks), and
/// no two inputs may share a destination (`x.png` and `x.jpg`).
pub fn plan_outputs(
    inputs: &[PathBuf],
    out: &Path,
    protected: &[PathBuf],
) -> Result<Vec<PathBuf>, SourceError> {
    let canonical: Vec<(PathBuf, &PathBuf)> = protected
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok().map(|c| (c, p)))
        .collect();
    let mut dests: Vec<PathBuf> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let stem = input.file_stem().unwrap_or_default();
        let dest = out.join(stem).with_extension("png");
        if let Some(j) = dests.iter().position(|d| d == &dest) {
            return Err(SourceError::SameOutput {
                first: inputs[j].clone(),
                second: inputs[i].clone(),
                dest,
            });
        }
        if let Ok(c) = std::fs::canonicalize(&dest) {
            if let Some((_, input)) = canonical.iter().find(|(p, _)| *p == c) {
                return Err(SourceError::WouldOverwrite {
                    dest,
                    input: (*input).clone(),
                });
            }
        }
        dests.push(dest);
    }
    Ok(dests)
}

/// Restore an image of any size. With `mask` (same size as `img`) each hidden region is
/// restored in its own context window at the image's resolution and only hidden pixels
/// change ([`RegionRestorer`]); without one, a model folder with an occlusion detector
/// restores what the detector finds hidden (blind mode, [`Pipeline::detect`]), a model
/// that reads the hole but has no detector leaves the image as it is, and an older one
/// restores the whole image squashed to its input.
pub fn restore_image(
    pipeline: &mut Pipeline,
    regions: &mut RegionRestorer,
    img: &ImageU8,
    mask: Option<&Mask>,
    path: &Path,
) -> Result<ImageU8, SourceError> {
    let image_err = |source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    };
    let pipeline_err = |source| SourceError::Pipeline {
        path: path.to_path_buf(),
        source,
    };
    if let Some(mask) = mask {
        return Ok(regions
            .restore(pipeline, img, mask)
            .map_err(pipeline_err)?
            .clone());
    }
    if pipeline.can_detect() {
        // Blind: the detector says what is hidden, and only that changes.
        let mut found = Mask::default();
        pipeline.detect(img, &mut found).map_err(pipeline_err)?;
        return Ok(regions
            .restore(pipeline, img, &found)
            .map_err(pipeline_err)?
            .clone());
    }
    if pipeline.model().manifest.hole != HoleInput::Absent {
        // Nothing is said to be hidden: the input is the answer, bit for bit.
        return Ok(img.clone());
    }
    let (w, h) = pipeline.model().size();
    let input = img.resize_bilinear(w, h).map_err(image_err)?;
    pipeline.restore(&input, None).map_err(pipeline_err)?;
    pipeline
        .output()
        .resize_bilinear(img.width, img.height)
        .map_err(image_err)
}
