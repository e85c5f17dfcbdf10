//! The model manifest: what the host exported and what the device must check before it
//! runs anything.
//!
//! A model folder holds `manifest.bin` (this type, `postcard`-encoded; authoritative),
//! `manifest.json` (the same value for people and for tools without postcard), and the
//! ONNX files it lists. The device refuses a folder whose version, tensor layout or file
//! hashes do not match, because a model trained for another layout gives silently wrong
//! frames rather than errors.
//!
//! Graph contract (two graphs, so the device can time and swap the stages separately):
//! - `stage1` (G1): input [`io::IMAGE`] `[1, Manifest::hole.image_channels(), H, W]`
//!   (RGB, plus the hole plane when the model reads one) → output [`io::TEXTURE`]
//!   `[1, TEXTURE_CHANNELS, H, W]`;
//! - `stage2` (G2): inputs [`io::IMAGE`] and, unless the condition is
//!   [`Condition::None`], [`io::CONDITION`] `[1, Condition::channels(), H, W]` → outputs
//!   [`io::RESTORED`], [`io::FOREGROUND`], [`io::BACKGROUND`] (each `[1, 3, H, W]`,
//!   normalised like the input) and [`io::ALPHA`] `[1, 1, H, W]` in 0..1.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hole::HoleInput;
use crate::image::Normalisation;
use crate::texture::{NUM_PARTS, TEXTURE_CHANNELS};

/// Bumped whenever a field or the graph contract changes meaning. Version 4 is version
/// 3 followed by a CRC-32 of its bytes, so one flipped bit (a normalisation float, say)
/// is refused instead of shifting every output pixel.
pub const MANIFEST_VERSION: u16 = 4;
/// Version 3, still read: the same fields with no checksum.
pub const MANIFEST_VERSION_V3: u16 = 3;
/// The previous version, still read: the same fields without [`Manifest::hole`], which
/// it implies is [`HoleInput::Absent`] (graphs exported before the hole plane existed).
pub const MANIFEST_VERSION_V2: u16 = 2;
/// File name of the authoritative binary manifest inside a model folder.
pub const MANIFEST_BIN: &str = "manifest.bin";
/// File name of the human-readable twin.
pub const MANIFEST_JSON: &str = "manifest.json";
/// Largest manifest the device will read (it is a few hundred bytes in practice).
pub const MAX_MANIFEST_LEN: usize = 64 * 1024;

/// Tensor names of the exported graphs.
pub mod io {
    pub const IMAGE: &str = "image";
    pub const TEXTURE: &str = "texture";
    pub const CONDITION: &str = "condition";
    pub const RESTORED: &str = "restored";
    pub const FOREGROUND: &str = "foreground";
    pub const BACKGROUND: &str = "background";
    pub const ALPHA: &str = "alpha";
    /// The occlusion detector's output: a logit per pixel, hidden where > 0.
    pub const OCCLUSION: &str = "occlusion";
}

/// What G2 is conditioned on (the method's texture map, or an ablation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// The texture map predicted by G1 (the method).
    Texture,
    /// A one-channel 2D silhouette mask (prior art, for comparison).
    Silhouette,
    /// Nothing but the occluded image.
    None,
    /// The renderer's exact texture map of the clean image (the `texture` layout): an
    /// oracle that bounds what G2 could make of a perfect G1. Host-only, for training and
    /// evaluation; a camera has no ground truth, so no manifest may carry it.
    Truth,
}

impl Condition {
    /// Channels of the condition tensor fed to G2.
    pub const fn channels(self) -> usize {
        match self {
            Condition::Texture | Condition::Truth => TEXTURE_CHANNELS,
            Condition::Silhouette => 1,
            Condition::None => 0,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Condition::Texture => "texture",
            Condition::Silhouette => "silhouette",
            Condition::None => "none",
            Condition::Truth => "truth",
        }
    }
}

impl core::str::FromStr for Condition {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "texture" => Ok(Condition::Texture),
            "silhouette" => Ok(Condition::Silhouette),
            "none" => Ok(Condition::None),
            "truth" => Ok(Condition::Truth),
            _ => Err(ManifestError::UnknownCondition),
        }
    }
}

/// Which stage of the pipeline a model file implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Stage1,
    Stage2,
    /// The optional occlusion detector of blind restoration: `image` (the plain frame,
    /// 3 planes) → `occlusion` (`[1, 1, H, W]` logits, hidden where > 0). Last, so that
    /// the variants before it keep their encoding.
    Occlusion,
}

/// How activation ranges were calibrated for int8.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Calibration {
    /// Observed minimum and maximum.
    MinMax,
    /// Symmetric percentile of |x| (e.g. 99.99), robust to outliers.
    Percentile(f32),
}

/// Granularity of the int8 weight scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightScales {
    /// One scale per convolution. tract folds a scalar requantisation into its integer
    /// matrix product, so this form runs ~2.5x faster there than per-channel.
    PerTensor,
    /// One scale per output channel: finer, but tract then requantises in separate passes.
    PerChannel,
}

/// Numeric format of the graphs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Quantisation {
    Float32,
    /// Static post-training int8 quantisation: symmetric int8 weights with `weights`
    /// scales and per-tensor uint8 activations calibrated on `samples` images. The graphs
    /// use `QuantizeLinear → QLinearConv → DequantizeLinear` rather than the
    /// QDQ-around-Conv form, which tract folds back into a float conv.
    Int8 {
        calibration: Calibration,
        samples: u32,
        weights: WeightScales,
    },
}

impl Quantisation {
    /// `f32` or `int8`, as the tables and the device's `--precision` name them.
    pub const fn name(self) -> &'static str {
        match self {
            Quantisation::Float32 => "f32",
            Quantisation::Int8 { .. } => "int8",
        }
    }
}

/// One ONNX file of the model folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub role: Role,
    /// File name relative to the model folder (no directories).
    pub file: String,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// Everything the device needs to know to run an exported model folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u16,
    /// Free-form model name (e.g. `default`).
    pub name: String,
    /// Input width and height in pixels (the graphs have fixed shapes).
    pub width: u16,
    pub height: u16,
    pub normalisation: Normalisation,
    /// Texture-map layout the graphs were trained with.
    pub texture_channels: u8,
    pub num_parts: u8,
    pub condition: Condition,
    pub quantisation: Quantisation,
    pub models: Vec<ModelFile>,
    /// SHA-256 of the training configurations (run.json files) the weights came from.
    pub training_config_sha256: [u8; 32],
    /// How both graphs' [`io::IMAGE`] input carries the hole (3 or 4 planes, see
    /// [`crate::hole`]). Last, so a version-2 manifest is this one's prefix.
    pub hole: HoleInput,
}

/// A version-2 manifest: [`Manifest`] without its last field.
#[derive(Deserialize)]
struct ManifestV2 {
    version: u16,
    name: String,
    width: u16,
    height: u16,
    normalisation: Normalisation,
    texture_channels: u8,
    num_parts: u8,
    condition: Condition,
    quantisation: Quantisation,
    models: Vec<ModelFile>,
    training_config_sha256: [u8; 32],
}

impl From<ManifestV2> for Manifest {
    fn from(m: ManifestV2) -> Self {
        let _ = m.version;
        Manifest {
            version: MANIFEST_VERSION,
            name: m.name,
            width: m.width,
            height: m.height,
            normalisation: m.normalisation,
            texture_channels: m.texture_channels,
            num_parts: m.num_parts,
            condition: m.condition,
            quantisation: m.quantisation,
            models: m.models,
            training_config_sha256: m.training_config_sha256,
            hole: HoleInput::Absent,
        }
    }
}

/// A manifest the device must refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {0} bytes, more than the {MAX_MANIFEST_LEN}-byte limit")]
    TooLarge(usize),
    #[error("manifest is corrupt or truncated")]
    Corrupt,
    #[error(
        "manifest checksum does not match its contents (the file is damaged; export it again)"
    )]
    Checksum,
    #[error(
        "manifest version {found} is not supported (this build reads version {MANIFEST_VERSION})"
    )]
    Version { found: u16 },
    #[error("manifest texture layout {channels} channels / {parts} parts does not match this build ({TEXTURE_CHANNELS} / {NUM_PARTS})")]
    Layout { channels: u8, parts: u8 },
    #[error("manifest input size {width}x{height} is not usable")]
    Size { width: u16, height: u16 },
    #[error("manifest lists no {0:?} model, or lists it twice")]
    MissingModel(Role),
    #[error("model file name {0:?} is not a plain file name")]
    BadFileName(String),
    #[error("SHA-256 of {file} does not match the manifest")]
    Hash { file: String },
    #[error("manifest normalisation must have finite means and positive, finite deviations")]
    Normalisation,
    #[error("unknown condition (expected texture, silhouette, none or truth)")]
    UnknownCondition,
    #[error("condition truth is the host's oracle (the renderer's texture map); it cannot be exported to a camera")]
    OracleCondition,
}

impl Manifest {
    /// Encode for `manifest.bin`: postcard bytes, then their CRC-32 (little-endian).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        let mut bytes = postcard::to_allocvec(self).map_err(|_| ManifestError::Corrupt)?;
        let crc = crate::link::CRC.checksum(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }

    /// Decode `manifest.bin` and [`validate`](Self::validate) it. Never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        // The version is the first field: check it before the rest so that a newer
        // manifest reports "version" rather than "corrupt".
        let (version, _) =
            postcard::take_from_bytes::<u16>(bytes).map_err(|_| ManifestError::Corrupt)?;
        let (manifest, rest) = match version {
            MANIFEST_VERSION => {
                let split = bytes.len().checked_sub(4).ok_or(ManifestError::Corrupt)?;
                let (body, crc) = bytes.split_at(split);
                let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
                if crate::link::CRC.checksum(body) != stored {
                    return Err(ManifestError::Checksum);
                }
                postcard::take_from_bytes::<Manifest>(body)
            }
            MANIFEST_VERSION_V3 => postcard::take_from_bytes::<Manifest>(bytes).map(|(m, rest)| {
                (
                    Manifest {
                        version: MANIFEST_VERSION,
                        ..m
                    },
                    rest,
                )
            }),
            MANIFEST_VERSION_V2 => postcard::take_from_bytes::<ManifestV2>(bytes)
                .map(|(m, rest)| (Manifest::from(m), rest)),
            found => return Err(ManifestError::Version { found }),
        }
        .map_err(|_| ManifestError::Corrupt)?;
        if !rest.is_empty() {
            return Err(ManifestError::Corrupt);
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Check everything that can be checked without the model files.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version {
                found: self.version,
            });
        }
        if usize::from(self.texture_channels) != TEXTURE_CHANNELS
            || usize::from(self.num_parts) != NUM_PARTS
        {
            return Err(ManifestError::Layout {
                channels: self.texture_channels,
                parts: self.num_parts,
            });
        }
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(16)
            || !self.height.is_multiple_of(16)
        {
            return Err(ManifestError::Size {
                width: self.width,
                height: self.height,
            });
        }
        let n = &self.normalisation;
        if !n.mean.iter().chain(&n.std).all(|v| v.is_finite()) || n.std.iter().any(|&s| s <= 0.0) {
            return Err(ManifestError::Normalisation);
        }
        if self.condition == Condition::Truth {
            return Err(ManifestError::OracleCondition);
        }
        for role in [Role::Stage1, Role::Stage2] {
            if self.models.iter().filter(|m| m.role == role).count() != 1 {
                return Err(ManifestError::MissingModel(role));
            }
        }
        if self
            .models
            .iter()
            .filter(|m| m.role == Role::Occlusion)
            .count()
            > 1
        {
            return Err(ManifestError::MissingModel(Role::Occlusion));
        }
        for m in &self.models {
            let plain = !m.file.is_empty()
                && m.file != "."
                && m.file != ".."
                && !m.file.contains(['/', '\\', '\0']);
            if !plain {
                return Err(ManifestError::BadFileName(m.file.clone()));
            }
        }
        Ok(())
    }

    /// The entry for `role` (present after [`validate`](Self::validate)).
    pub fn model(&self, role: Role) -> Option<&ModelFile> {
        self.models.iter().find(|m| m.role == role)
    }

    /// Check `bytes` (the content of `file.file`) against its recorded hash.
    pub fn verify(file: &ModelFile, bytes: &[u8]) -> Result<(), ManifestError> {
        if sha256(bytes) == file.sha256 {
            Ok(())
        } else {
            Err(ManifestError::Hash {
                file: file.file.clone(),
            })
        }
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex of a digest, for logs and the JSON twin's readers.
pub fn hex(digest: &[u8; 32]) -> String {
    use core::fmt::Write;
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn sample() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            name: "test".to_string(),
            width: 128,
            height: 128,
            normalisation: Normalisation::default(),
            texture_channels: TEXTURE_CHANNELS as u8,
            num_parts: NUM_PARTS as u8,
            condition: Condition::Texture,
            quantisation: Quantisation::Int8 {
                calibration: Calibration::Percentile(99.99),
                samples: 256,
                weights: WeightScales::PerTensor,
            },
            models: vec![
                ModelFile {
                    role: Role::Stage1,
                    file: "stage1.onnx".to_string(),
                    sha256: sha256(b"one"),
                },
                ModelFile {
                    role: Role::Stage2,
                    file: "stage2.onnx".to_string(),
                    sha256: sha256(b"two"),
                },
            ],
            training_config_sha256: [7; 32],
            hole: HoleInput::Telea,
        }
    }

    #[test]
    fn round_trips_through_postcard() {
        let m = sample();
        assert_eq!(Manifest::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
    }

    #[test]
    fn quantisation_names() {
        assert_eq!(Quantisation::Float32.name(), "f32");
        let int8 = Quantisation::Int8 {
            calibration: Calibration::MinMax,
            samples: 64,
            weights: WeightScales::PerTensor,
        };
        assert_eq!(int8.name(), "int8");
    }

    #[test]
    fn sha256_of_abc_is_the_standard_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_accepts_matching_and_refuses_other_bytes() {
        let m = sample();
        let f = m.model(Role::Stage1).unwrap();
        assert!(Manifest::verify(f, b"one").is_ok());
        assert_eq!(
            Manifest::verify(f, b"one!"),
            Err(ManifestError::Hash {
                file: "stage1.onnx".to_string()
            })
        );
    }

    /// Defect 8 of the probe issue: one flipped bit anywhere, a normalisation float
    /// included, is refused; before, it loaded and shifted every output pixel.
    #[test]
    fn any_flipped_bit_is_refused() {
        let bytes = sample().to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes(&bytes), Ok(sample()));
        for i in 1..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(Manifest::from_bytes(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        // The CRC is zlib's: Python's `zlib.crc32` over the body gives the same 4 bytes.
        let body = &bytes[..bytes.len() - 4];
        let crc = crate::link::CRC.checksum(body).to_le_bytes();
        assert_eq!(&bytes[bytes.len() - 4..], &crc);
    }

    /// A version-3 manifest (no checksum) and a version-2 one (also without the trailing
    /// hole field) still load; a version-3 one cut before its hole field does not.
    #[test]
    fn version_2_reads_as_absent_hole() {
        let m = sample();
        let mut bytes = postcard::to_allocvec(&Manifest {
            version: MANIFEST_VERSION_V3,
            ..m.clone()
        })
        .unwrap();
        assert_eq!(Manifest::from_bytes(&bytes), Ok(m.clone()));
        assert_eq!(
            bytes[0], MANIFEST_VERSION_V3 as u8,
            "one-byte varint version first"
        );
        assert_eq!(bytes.pop(), Some(2), "Telea is the third variant");
        assert_eq!(Manifest::from_bytes(&bytes), Err(ManifestError::Corrupt));
        bytes[0] = MANIFEST_VERSION_V2 as u8;
        let old = Manifest::from_bytes(&bytes).unwrap();
        assert_eq!(old.hole, HoleInput::Absent);
        assert_eq!(
            Manifest {
                hole: m.hole,
                ..old
            },
            m
        );
    }

    #[test]
    fn refuses_wrong_version_layout_names_and_truncation() {
        let mut m = sample();
        m.version = 9;
        let bytes = postcard::to_allocvec(&m).unwrap();
        assert_eq!(
            Manifest::from_bytes(&bytes),
            Err(ManifestError::Version { found: 9 })
        );

        let mut m = sample();
        m.texture_channels = 5;
        assert!(matches!(m.validate(), Err(ManifestError::Layout { .. })));

        let mut m = sample();
        m.models[1].file = "../etc/passwd".to_string();
        assert!(matches!(m.validate(), Err(ManifestError::BadFileName(_))));

        let mut m = sample();
        m.normalisation.std[1] = 0.0;
        assert_eq!(m.validate(), Err(ManifestError::Normalisation));
        m.normalisation.std[1] = f32::NAN;
        assert_eq!(m.validate(), Err(ManifestError::Normalisation));

        let mut m = sample();
        m.models.pop();
        assert_eq!(m.validate(), Err(ManifestError::MissingModel(Role::Stage2)));

        let mut m = sample();
        m.condition = Condition::Truth;
        assert_eq!(m.validate(), Err(ManifestError::OracleCondition));
        let bytes = m.to_bytes().unwrap();
        assert_eq!(
            Manifest::from_bytes(&bytes),
            Err(ManifestError::OracleCondition)
        );

        let bytes = sample().to_bytes().unwrap();
        for len in 0..bytes.len() {
            assert!(Manifest::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Manifest::from_bytes(&long).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = Manifest::from_bytes(&bytes);
        }
    }
}
