//! User meshes: Wavefront OBJ files with UVs, rendered in place of the procedural body.

use std::path::{Path, PathBuf};

use unveil_shared::NUM_PARTS;

use super::math::{add, cross, normalize_or, sub};
use super::mesh::Mesh;
use super::SynthError;

/// A user-supplied mesh in its own coordinates (+Y assumed up). Each OBJ object/group
/// becomes part `(index % 24) + 1`; UVs come from the file.
#[derive(Clone, Debug)]
pub struct UserMesh {
    pub(crate) mesh: Mesh,
    /// Axis-aligned bounds, used for framing.
    pub(crate) bounds: ([f32; 3], [f32; 3]),
}

impl UserMesh {
    pub fn triangle_count(&self) -> usize {
        self.mesh.triangles.len()
    }

    pub fn vertex_count(&self) -> usize {
        self.mesh.positions.len()
    }
}

/// tobj's float type is `f64` when its `use_f64` feature is on; this accepts either.
#[inline]
fn f<T: Into<f64>>(x: T) -> f32 {
    x.into() as f32
}

/// UVs outside [0, 1] are wrapped (tiling textures); values inside, including 1.0, are
/// kept so a triangle spanning the whole chart does not collapse.
fn wrap(x: f32) -> f32 {
    if (0.0..=1.0).contains(&x) {
        x
    } else {
        x.rem_euclid(1.0)
    }
}

/// Load an OBJ with texture coordinates (triangulated, one index per vertex). Errors,
/// never panics, on unreadable or malformed files, missing UVs or an empty mesh.
pub fn load_obj(path: &Path) -> Result<UserMesh, SynthError> {
    let err = |reason: String| SynthError::Mesh {
        path: PathBuf::from(path),
        reason,
    };
    // The update covers fields that exist only with some tobj features enabled.
    #[allow(clippy::needless_update)]
    let opts = tobj::LoadOptions {
        single_index: true,
        triangulate: true,
        ignore_points: true,
        ignore_lines: true,
        ..Default::default()
    };
    // A parser bug on hostile input must not take the whole run down.
    let loaded = std::panic::catch_unwind(|| tobj::load_obj(path, &opts))
        .map_err(|_| err("the OBJ parser failed on this file".into()))?;
    let (models, _materials) = loaded.map_err(|e| err(e.to_string()))?;

    let mut mesh = Mesh::default();
    for (mi, model) in models.iter().enumerate() {
        let m = &model.mesh;
        if m.indices.is_empty() {
            continue;
        }
        let nv = m.positions.len() / 3;
        if m.texcoords.len() != nv * 2 {
            return Err(err(format!(
                "object '{}' has no texture coordinates (vt)",
                model.name
            )));
        }
        let part = (mi % NUM_PARTS) as u8 + 1;
        let base = mesh.positions.len();
        let base_u32 = u32::try_from(base).map_err(|_| err("too many vertices".into()))?;
        for k in 0..nv {
            let p = [
                f(m.positions[3 * k]),
                f(m.positions[3 * k + 1]),
                f(m.positions[3 * k + 2]),
            ];
            let t = [f(m.texcoords[2 * k]), f(m.texcoords[2 * k + 1])];
            if !p.iter().chain(t.iter()).all(|x| x.is_finite()) {
                return Err(err(format!(
                    "object '{}' has a non-finite coordinate",
                    model.name
                )));
            }
            mesh.positions.push(p);
            mesh.uvs.push([wrap(t[0]), wrap(t[1])]);
        }
        let has_normals = m.normals.len() == nv * 3 && m.normals.iter().all(|x| x.is_finite());
        if has_normals {
            for k in 0..nv {
                let n = [
                    f(m.normals[3 * k]),
                    f(m.normals[3 * k + 1]),
                    f(m.normals[3 * k + 2]),
                ];
                mesh.normals.push(normalize_or(n, [0.0, 1.0, 0.0]));
            }
        } else {
            mesh.normals.extend(std::iter::repeat_n([0.0f32; 3], nv));
        }
        for tri in m.indices.chunks_exact(3) {
            if tri.iter().any(|&i| i as usize >= nv) {
                return Err(err(format!(
                    "object '{}' has a face index out of range",
                    model.name
                )));
            }
            let t = [tri[0] + base_u32, tri[1] + base_u32, tri[2] + base_u32];
            if !has_normals {
                // Area-weighted face normal, accumulated for smooth shading.
                let [a, b, c] = t.map(|i| mesh.positions[i as usize]);
                let n = cross(sub(b, a), sub(c, a));
                for &i in &t {
                    mesh.normals[i as usize] = add(mesh.normals[i as usize], n);
                }
            }
            mesh.triangles.push(t);
            mesh.tri_part.push(part);
        }
        if !has_normals {
            for n in &mut mesh.normals[base..] {
                *n = normalize_or(*n, [0.0, 1.0, 0.0]);
            }
        }
    }
    if mesh.triangles.is_empty() {
        return Err(err("no faces".into()));
    }
    let bounds = mesh.bounds().ok_or_else(|| err("no vertices".into()))?;
    let extent = (0..3)
        .map(|k| bounds.1[k] - bounds.0[k])
        .fold(0.0f32, f32::max);
    if !(extent > 0.0 && extent.is_finite()) {
        return Err(err("mesh has zero size".into()));
    }
    Ok(UserMesh { mesh, bounds })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unit cube with one UV square per face (24 vertices, 12 triangles).
    pub(crate) const CUBE_OBJ: &str = "\
o cube
v -0.5 -0.5 -0.5
v 0.5 -0.5 -0.5
v 0.5 0.5 -0.5
v -0.5 0.5 -0.5
v -0.5 -0.5 0.5
v 0.5 -0.5 0.5
v 0.5 0.5 0.5
v -0.5 0.5 0.5
vt 0 0
vt 1 0
vt 1 1
vt 0 1
f 5/1 6/2 7/3 8/4
f 2/1 1/2 4/3 3/4
f 1/1 5/2 8/3 4/4
f 6/1 2/2 3/3 7/4
f 8/1 7/2 3/3 4/4
f 1/1 2/2 6/3 5/4
";

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn cube_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = load_obj(&write(&dir, "cube.obj", CUBE_OBJ.as_bytes())).expect("load");
        assert_eq!(m.triangle_count(), 12);
        assert!(m.mesh.tri_part.iter().all(|&p| p == 1));
        assert!(m
            .mesh
            .uvs
            .iter()
            .all(|t| (0.0..=1.0).contains(&t[0]) && (0.0..=1.0).contains(&t[1])));
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let no_uv = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n";
        let no_faces = "v 0 0 0\nv 1 0 0\nvt 0 0\n";
        let bad_index = "v 0 0 0\nvt 0 0\nf 1/1 2/1 9/1\n";
        let nan = "v 0 0 0\nv nan 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n";
        for (name, bytes) in [
            ("garbage.obj", garbage.as_slice()),
            ("no_uv.obj", no_uv.as_bytes()),
            ("no_faces.obj", no_faces.as_bytes()),
            ("bad_index.obj", bad_index.as_bytes()),
            ("nan.obj", nan.as_bytes()),
            ("empty.obj", b""),
        ] {
            let p = write(&dir, name, bytes);
            match load_obj(&p) {
                Err(SynthError::Mesh { path, .. }) => assert_eq!(path, p),
                other => panic!("{name}: expected a mesh error, got {other:?}"),
            }
        }
        assert!(load_obj(&dir.path().join("missing.obj")).is_err());
    }
}
