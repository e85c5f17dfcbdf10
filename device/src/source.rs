//! Image files and folders as frame sources and sinks (the `restore` command).
//!
//! Files of any size are accepted: the frame is resized to the model's input with the shared
//! bilinear resize, restored, and resized back; with a mask, only masked pixels change, at
//! the file's own resolution, so unmasked pixels stay bit-exact.

use std::path::{Path, PathBuf};

use unveil_shared::{ImageError, ImageU8, Mask};

use crate::pipeline::{keep_unmasked, Pipeline, PipelineError};
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
}

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

/// Decode an image file as RGB8.
pub fn load_rgb(path: &Path) -> Result<ImageU8, SourceError> {
    let img = image::open(path)
        .map_err(|source| SourceError::Decode {
            path: path.to_path_buf(),
            source,
        })?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    ImageU8::from_vec(w, h, 3, img.into_raw()).map_err(|source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    })
}

/// Decode a mask image (set where grey ≥ 128), resized to `width × height`.
pub fn load_mask(path: &Path, width: usize, height: usize) -> Result<Mask, SourceError> {
    let err = |source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    };
    let img = image::open(path)
        .map_err(|source| SourceError::Decode {
            path: path.to_path_buf(),
            source,
        })?
        .to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grey = ImageU8::from_vec(w, h, 1, img.into_raw()).map_err(err)?;
    let grey = grey.resize_bilinear(width, height).map_err(err)?;
    Mask::from_grey(width, height, &grey.data).map_err(err)
}

/// Encode an RGB8 image; the format follows the extension.
pub fn save_rgb(path: &Path, img: &ImageU8) -> Result<(), SourceError> {
    let err = |source| SourceError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let color = match img.channels {
        1 => image::ExtendedColorType::L8,
        4 => image::ExtendedColorType::Rgba8,
        _ => image::ExtendedColorType::Rgb8,
    };
    image::save_buffer(path, &img.data, img.width as u32, img.height as u32, color).map_err(err)
}

/// Restore an image of any size; `mask` (same size as `img`) limits which pixels change.
pub fn restore_image(
    pipeline: &mut Pipeline,
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
        if mask.width != img.width || mask.height != img.height {
            return Err(pipeline_err(PipelineError::MaskSize {
                width: img.width,
                height: img.height,
                actual_w: mask.width,
                actual_h: mask.height,
            }));
        }
    }
    let reads_hole = pipeline.model().manifest.hole != HoleInput::Absent;
    if reads_hole && mask.is_none_or(|m| m.count() == 0) {
        // Nothing is hidden: the input is the answer, bit for bit.
        return Ok(img.clone());
    }
    let (w, h) = pipeline.model().size();
    let input = img.resize_bilinear(w, h).map_err(image_err)?;
    // The model is told of every hidden pixel, however thin, at its own size.
    let small_mask = match mask {
        Some(m) if reads_hole => Some(m.resize_covering(w, h).map_err(image_err)?),
        _ => None,
    };
    pipeline
        .restore(&input, small_mask.as_ref())
        .map_err(pipeline_err)?;
    let mut out = pipeline
        .output()
        .resize_bilinear(img.width, img.height)
        .map_err(image_err)?;
    if let Some(mask) = mask {
        keep_unmasked(img, mask, &mut out);
    }
    Ok(out)
}
