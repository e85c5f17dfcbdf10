//! Synthetic data sets on disk: one PNG per plane per sample plus a JSON manifest.
//!
//! Layout of a data set folder:
//!
//! ```text
//! manifest.json            generator settings and per-sample parameters (written last)
//! 00000_image.png          lit subject over the background (RGB8)
//! 00000_background.png     the plate alone (RGB8)
//! 00000_mask.png           subject silhouette (L8, 0/255)
//! 00000_iuv.png            R = part index 0..24, G = U, B = V (RGB16, U/V fixed point /65535)
//! 00000_albedo.png         unlit surface colour (RGB8)
//! ```
//!
//! The manifest is written last, through a temporary file and a rename, so a folder with a
//! manifest is always complete.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageBuffer, ImageEncoder, Rgb};
use serde::{Deserialize, Serialize};
use unveil_shared::{ImageError, ImageU8, IuvMap, Mask};

use rayon::prelude::*;

use crate::data::synth::{render_sample, Sample, SampleParams, SynthConfig, SynthError};

/// Manifest format version; bump when the layout changes.
pub const MANIFEST_VERSION: u32 = 1;
/// File name of the manifest inside a data set folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Errors reading or writing a data set.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot encode PNG: {source}")]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{path}: {what} is {actual_w}x{actual_h}, expected {size}x{size}")]
    Size {
        path: PathBuf,
        what: &'static str,
        size: usize,
        actual_w: u32,
        actual_h: u32,
    },
    #[error("{path}: {source}")]
    Plane { path: PathBuf, source: ImageError },
    #[error("{path}: not a valid manifest: {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: manifest version {found}, this build reads version {MANIFEST_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{0}: no manifest.json here (is this a data set made by `unveil synth`?)")]
    NoManifest(PathBuf),
    #[error("{0}: the data set holds no samples")]
    Empty(PathBuf),
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error("sample {index} out of range (data set has {len})")]
    Index { index: usize, len: usize },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a data set was generated; everything needed to regenerate it byte for byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetManifest {
    pub version: u32,
    pub generator: String,
    pub size: usize,
    pub seed: u64,
    /// `procedural` or the OBJ path given.
    pub subject: String,
    /// `procedural` or the photo folder given.
    pub backgrounds: String,
    pub samples: Vec<SampleEntry>,
}

/// One sample of the manifest: its file stem and the random choices that made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleEntry {
    pub index: u64,
    /// Files are `{stem}_{plane}.png`.
    pub stem: String,
    pub params: SampleParams,
}

/// The planes of a sample, by file-name suffix.
pub const PLANES: [&str; 5] = ["image", "background", "mask", "iuv", "albedo"];

fn plane_path(dir: &Path, stem: &str, plane: &str) -> PathBuf {
    dir.join(format!("{stem}_{plane}.png"))
}

/// File stem of sample `index`.
pub fn stem(index: u64) -> String {
    format!("{index:05}")
}

/// Write the five planes of `sample` into `dir` and return its manifest entry.
pub fn write_sample(dir: &Path, sample: &Sample) -> Result<SampleEntry, DatasetError> {
    let stem = stem(sample.params.index);
    write_rgb8(&plane_path(dir, &stem, "image"), &sample.image)?;
    write_rgb8(&plane_path(dir, &stem, "background"), &sample.background)?;
    write_mask(&plane_path(dir, &stem, "mask"), &sample.mask)?;
    write_iuv(&plane_path(dir, &stem, "iuv"), &sample.iuv)?;
    write_rgb8(&plane_path(dir, &stem, "albedo"), &sample.albedo)?;
    Ok(SampleEntry {
        index: sample.params.index,
        stem,
        params: sample.params.clone(),
    })
}

/// Where a data set's subject and backgrounds came from, for its manifest.
#[derive(Clone, Debug)]
pub struct Provenance {
    pub subject: String,
    pub backgrounds: String,
}

impl Default for Provenance {
    fn default() -> Self {
        Self {
            subject: "procedural".into(),
            backgrounds: "procedural".into(),
        }
    }
}

/// Render samples `0..count` of `seed` into `dir` on the current rayon pool and write the
/// manifest. `on_sample` is called once per finished sample (progress bars). The output is
/// byte-identical whatever the thread count, because every sample has its own seed stream.
pub fn synthesize(
    dir: &Path,
    cfg: &SynthConfig,
    seed: u64,
    count: u64,
    provenance: &Provenance,
    on_sample: impl Fn() + Sync,
) -> Result<DatasetManifest, DatasetError> {
    let samples = (0..count)
        .into_par_iter()
        .map(|index| {
            let entry = write_sample(dir, &render_sample(cfg, seed, index)?)?;
            on_sample();
            Ok(entry)
        })
        .collect::<Result<Vec<_>, DatasetError>>()?;
    let manifest = DatasetManifest {
        version: MANIFEST_VERSION,
        generator: format!("unveil {}", env!("CARGO_PKG_VERSION")),
        size: cfg.size,
        seed,
        subject: provenance.subject.clone(),
        backgrounds: provenance.backgrounds.clone(),
        samples,
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Write the manifest atomically (temporary file, then rename).
pub fn write_manifest(dir: &Path, manifest: &DatasetManifest) -> Result<(), DatasetError> {
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(manifest).map_err(|source| DatasetError::Manifest {
        path: path.clone(),
        source,
    })?;
    unveil_shared::files::write_atomic(&path, &json).map_err(io_err(&path))
}

/// PNG settings: fast compression, since synthesis writes thousands of small files and
/// disk is cheaper than time; output stays deterministic.
fn encoder<W: Write>(w: W) -> PngEncoder<W> {
    PngEncoder::new_with_quality(w, CompressionType::Fast, FilterType::Sub)
}

/// Create `path` and run `encode` on a PNG encoder writing to it.
fn save(
    path: &Path,
    encode: impl FnOnce(PngEncoder<&mut BufWriter<fs::File>>) -> image::ImageResult<()>,
) -> Result<(), DatasetError> {
    let file = fs::File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(file);
    encode(encoder(&mut w)).map_err(|source| DatasetError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    w.flush().map_err(io_err(path))
}

/// Save an 8-bit image (1, 3 or 4 channels) as PNG, straight from its buffer (no copy:
/// this runs five times per synthesised sample).
pub fn write_rgb8(path: &Path, img: &ImageU8) -> Result<(), DatasetError> {
    let colour = match img.channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        4 => ExtendedColorType::Rgba8,
        c => {
            return Err(DatasetError::Plane {
                path: path.to_path_buf(),
                source: ImageError::Channels(c),
            })
        }
    };
    let expected = img.pixel_count() * img.channels;
    if img.data.len() != expected || img.width == 0 || img.height == 0 {
        return Err(DatasetError::Plane {
            path: path.to_path_buf(),
            source: ImageError::BufferSize {
                expected,
                actual: img.data.len(),
            },
        });
    }
    save(path, |enc| {
        enc.write_image(&img.data, img.width as u32, img.height as u32, colour)
    })
}

fn write_mask(path: &Path, mask: &Mask) -> Result<(), DatasetError> {
    let grey = ImageU8 {
        width: mask.width,
        height: mask.height,
        channels: 1,
        data: mask.to_grey(),
    };
    write_rgb8(path, &grey)
}

fn write_iuv(path: &Path, iuv: &IuvMap) -> Result<(), DatasetError> {
    let n = iuv.width * iuv.height;
    let mut data = Vec::with_capacity(3 * n);
    for i in 0..n {
        data.extend_from_slice(&[iuv.part[i] as u16, iuv.u[i], iuv.v[i]]);
    }
    let buf: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_raw(iuv.width as u32, iuv.height as u32, data).ok_or_else(|| {
            DatasetError::Plane {
                path: path.to_path_buf(),
                source: ImageError::BufferSize {
                    expected: 3 * n,
                    actual: iuv.part.len() * 3,
                },
            }
        })?;
    save(path, |enc| {
        DynamicImage::ImageRgb16(buf).write_with_encoder(enc)
    })
}

fn decode(path: &Path) -> Result<DynamicImage, DatasetError> {
    let reader = image::ImageReader::open(path).map_err(io_err(path))?;
    let reader = reader.with_guessed_format().map_err(io_err(path))?;
    reader.decode().map_err(|source| DatasetError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

fn check_size(
    path: &Path,
    what: &'static str,
    img: &DynamicImage,
    size: usize,
) -> Result<(), DatasetError> {
    if img.width() as usize != size || img.height() as usize != size {
        return Err(DatasetError::Size {
            path: path.to_path_buf(),
            what,
            size,
            actual_w: img.width(),
            actual_h: img.height(),
        });
    }
    Ok(())
}

/// Decode any image file (PNG, JPEG) into an 8-bit RGB image.
pub fn read_rgb8(path: &Path) -> Result<ImageU8, DatasetError> {
    let img = decode(path)?.into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    ImageU8::from_vec(w, h, 3, img.into_raw()).map_err(|source| DatasetError::Plane {
        path: path.to_path_buf(),
        source,
    })
}

fn read_rgb8_sized(path: &Path, what: &'static str, size: usize) -> Result<ImageU8, DatasetError> {
    let img = decode(path)?;
    check_size(path, what, &img, size)?;
    ImageU8::from_vec(size, size, 3, img.into_rgb8().into_raw()).map_err(|source| {
        DatasetError::Plane {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn read_mask(path: &Path, size: usize) -> Result<Mask, DatasetError> {
    let img = decode(path)?;
    check_size(path, "mask", &img, size)?;
    Mask::from_grey(size, size, &img.into_luma8().into_raw()).map_err(|source| {
        DatasetError::Plane {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn read_iuv(path: &Path, size: usize) -> Result<IuvMap, DatasetError> {
    let img = decode(path)?;
    check_size(path, "iuv", &img, size)?;
    let raw = img.into_rgb16().into_raw();
    let n = size * size;
    let mut part = Vec::with_capacity(n);
    let (mut u, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for px in raw.chunks_exact(3) {
        // Part indices beyond u8 are rejected by `from_planes` as out of range.
        part.push(px[0].min(255) as u8);
        u.push(px[1]);
        v.push(px[2]);
    }
    IuvMap::from_planes(size, size, part, u, v).map_err(|source| DatasetError::Plane {
        path: path.to_path_buf(),
        source,
    })
}

/// A data set folder opened for reading: the manifest is parsed, planes load on demand.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: DatasetManifest,
}

impl Dataset {
    /// Open a data set folder written by [`write_sample`] + [`write_manifest`].
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DatasetError::NoManifest(dir.to_path_buf()))
            }
            Err(source) => return Err(DatasetError::Io { path, source }),
        };
        // Check the version before the schema, so an old/new manifest says so plainly.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly =
            serde_json::from_slice(&bytes).map_err(|source| DatasetError::Manifest {
                path: path.clone(),
                source,
            })?;
        if v.version != MANIFEST_VERSION {
            return Err(DatasetError::Version {
                path,
                found: v.version,
            });
        }
        let manifest: DatasetManifest =
            serde_json::from_slice(&bytes).map_err(|source| DatasetError::Manifest {
                path: path.clone(),
                source,
            })?;
        if manifest.samples.is_empty() {
            return Err(DatasetError::Empty(dir.to_path_buf()));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn len(&self) -> usize {
        self.manifest.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.samples.is_empty()
    }

    /// Square image size of every plane.
    pub fn size(&self) -> usize {
        self.manifest.size
    }

    /// Load sample `index` (position in the manifest), checking every plane's size.
    pub fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        let entry = self
            .manifest
            .samples
            .get(index)
            .ok_or(DatasetError::Index {
                index,
                len: self.len(),
            })?;
        let size = self.manifest.size;
        let p = |plane| plane_path(&self.dir, &entry.stem, plane);
        Ok(Sample {
            image: read_rgb8_sized(&p("image"), "image", size)?,
            background: read_rgb8_sized(&p("background"), "background", size)?,
            mask: read_mask(&p("mask"), size)?,
            iuv: read_iuv(&p("iuv"), size)?,
            albedo: read_rgb8_sized(&p("albedo"), "albedo", size)?,
            params: entry.params.clone(),
        })
    }
}
