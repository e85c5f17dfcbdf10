//! The procedural subject: a 24-part human-like body built from tapered capsules on a
//! 17-joint skeleton, with random proportions and anatomically bounded poses.
//!
//! Body frame: +Y up, +Z the subject's front, +X the subject's *left* (right-handed), so
//! a camera in front of the subject sees the subject's left on the image's right.

use rand::Rng;
use unveil_shared::rng::Rng as Pcg;
use unveil_shared::NUM_PARTS;

use super::math::{add, scale, Mat3, Vec3};
use super::mesh::{push_capsule, Capsule, Mesh};

/// Part names, index `part - 1` (part 0 is background). "left"/"right" are the
/// subject's own sides.
pub const PART_NAMES: [&str; NUM_PARTS] = [
    "head",
    "hair",
    "neck",
    "chest",
    "abdomen",
    "pelvis",
    "left_shoulder",
    "right_shoulder",
    "left_upper_arm",
    "right_upper_arm",
    "left_forearm",
    "right_forearm",
    "left_hand",
    "right_hand",
    "left_hip",
    "right_hip",
    "left_thigh",
    "right_thigh",
    "left_knee",
    "right_knee",
    "left_shin",
    "right_shin",
    "left_foot",
    "right_foot",
];

/// Part indices as stored in the IUV map (1-based; matches [`PART_NAMES`]).
pub mod part {
    pub const HEAD: u8 = 1;
    pub const HAIR: u8 = 2;
    pub const NECK: u8 = 3;
    pub const CHEST: u8 = 4;
    pub const ABDOMEN: u8 = 5;
    pub const PELVIS: u8 = 6;
    pub const L_SHOULDER: u8 = 7;
    pub const R_SHOULDER: u8 = 8;
    pub const L_UPPER_ARM: u8 = 9;
    pub const R_UPPER_ARM: u8 = 10;
    pub const L_FOREARM: u8 = 11;
    pub const R_FOREARM: u8 = 12;
    pub const L_HAND: u8 = 13;
    pub const R_HAND: u8 = 14;
    pub const L_HIP: u8 = 15;
    pub const R_HIP: u8 = 16;
    pub const L_THIGH: u8 = 17;
    pub const R_THIGH: u8 = 18;
    pub const L_KNEE: u8 = 19;
    pub const R_KNEE: u8 = 20;
    pub const L_SHIN: u8 = 21;
    pub const R_SHIN: u8 = 22;
    pub const L_FOOT: u8 = 23;
    pub const R_FOOT: u8 = 24;

    /// Whether a part is on the subject's left (true), right (false), or central (None).
    pub fn side(p: u8) -> Option<bool> {
        (L_SHOULDER..=R_FOOT).contains(&p).then_some(p % 2 == 1)
    }

    /// The same part on the other side (left ↔ right; central parts map to themselves).
    /// A camera that may stand in front of or behind the subject sees left and right
    /// swapped, so this pairing measures how much of a part error is only the side.
    pub fn mirror(p: u8) -> u8 {
        match side(p) {
            Some(true) => p + 1,
            Some(false) => p - 1,
            None => p,
        }
    }
}

// Joints; parents precede children so one forward pass poses the skeleton.
const ROOT: usize = 0;
const SPINE: usize = 1;
const CHEST_J: usize = 2;
const NECK_J: usize = 3;
const HEAD_J: usize = 4;
const SHOULDER: [usize; 2] = [5, 8];
const ELBOW: [usize; 2] = [6, 9];
const WRIST: [usize; 2] = [7, 10];
const HIP: [usize; 2] = [11, 14];
const KNEE: [usize; 2] = [12, 15];
const ANKLE: [usize; 2] = [13, 16];
const N_JOINTS: usize = 17;
const PARENT: [usize; N_JOINTS] = [0, 0, 1, 2, 3, 2, 5, 6, 2, 8, 9, 0, 11, 12, 0, 14, 15];

/// Body shape factors (1 = average adult); lengths are fractions of `height`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proportions {
    /// Standing height in metres (only sets the scene scale).
    pub height: f32,
    pub head: f32,
    pub torso_girth: f32,
    pub arm_girth: f32,
    pub leg_girth: f32,
    pub shoulders: f32,
    pub hips: f32,
    pub arms: f32,
    pub legs: f32,
    pub torso: f32,
    pub neck: f32,
    pub feet: f32,
    pub belly: f32,
}

impl Proportions {
    fn random(rng: &mut Pcg) -> Self {
        let torso_girth = rng.random_range(0.85..1.35f32);
        Self {
            height: rng.random_range(1.5..1.95),
            head: rng.random_range(0.92..1.12),
            torso_girth,
            arm_girth: (torso_girth * rng.random_range(0.85..1.1f32)).clamp(0.8, 1.4),
            leg_girth: (torso_girth * rng.random_range(0.9..1.1f32)).clamp(0.85, 1.4),
            shoulders: rng.random_range(0.9..1.12),
            hips: rng.random_range(0.9..1.15),
            arms: rng.random_range(0.93..1.07),
            legs: rng.random_range(0.92..1.08),
            torso: rng.random_range(0.93..1.07),
            neck: rng.random_range(0.8..1.2),
            feet: rng.random_range(0.9..1.1),
            belly: rng.random_range(0.0..0.12f32) * (torso_girth - 0.8).max(0.0) * 2.0,
        }
    }
}

/// Pose families, so the data covers standing, walking, raised arms, reaching and
/// sitting rather than only random joint soup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoseFamily {
    Stand,
    Walk,
    ArmsUp,
    Reach,
    Sit,
    Random,
}

impl PoseFamily {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stand => "stand",
            Self::Walk => "walk",
            Self::ArmsUp => "arms_up",
            Self::Reach => "reach",
            Self::Sit => "sit",
            Self::Random => "random",
        }
    }
}

/// Hair shape (the hair part is always present so every sample can show all parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HairStyle {
    Short,
    Long,
    Cropped,
}

/// Angles of one limb in degrees: `abduct` raises it sideways, `flex` swings it forwards,
/// `twist` turns it about its own axis, `bend` is the elbow/knee, `end` the wrist/ankle.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Limb {
    pub abduct: f32,
    pub flex: f32,
    pub twist: f32,
    pub bend: f32,
    pub end: f32,
}

/// All joint angles in degrees. Arrays are `[left, right]`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Pose {
    pub lean: f32,
    pub side_lean: f32,
    pub twist: f32,
    pub neck: f32,
    pub head_yaw: f32,
    pub head_pitch: f32,
    pub head_roll: f32,
    pub arms: [Limb; 2],
    pub legs: [Limb; 2],
}

fn u(rng: &mut Pcg, lo: f32, hi: f32) -> f32 {
    rng.random_range(lo..hi)
}

impl Limb {
    /// A limb with each angle drawn uniformly from its `[lo, hi)` range, in the order
    /// abduct, flex, twist, bend, end (the draw order, which the seeded renders rely on).
    fn random(rng: &mut Pcg, ranges: [[f32; 2]; 5]) -> Self {
        let mut draw = ranges.map(|_| 0.0);
        for (v, [lo, hi]) in draw.iter_mut().zip(ranges) {
            *v = u(rng, lo, hi);
        }
        let [abduct, flex, twist, bend, end] = draw;
        Self {
            abduct,
            flex,
            twist,
            bend,
            end,
        }
    }
}

impl Pose {
    fn random(rng: &mut Pcg, family: PoseFamily) -> Self {
        let mut p = Pose {
            lean: u(rng, -8.0, 15.0),
            side_lean: u(rng, -8.0, 8.0),
            twist: u(rng, -15.0, 15.0),
            neck: u(rng, -10.0, 15.0),
            head_yaw: u(rng, -45.0, 45.0),
            head_pitch: u(rng, -20.0, 20.0),
            head_roll: u(rng, -10.0, 10.0),
            ..Default::default()
        };
        for s in 0..2 {
            let arm = [
                [4.0, 20.0],
                [-15.0, 20.0],
                [-20.0, 20.0],
                [0.0, 30.0],
                [-15.0, 15.0],
            ];
            p.arms[s] = Limb::random(rng, arm);
            let leg = [
                [0.0, 8.0],
                [-8.0, 12.0],
                [-10.0, 15.0],
                [0.0, 10.0],
                [-8.0, 8.0],
            ];
            p.legs[s] = Limb::random(rng, leg);
        }
        match family {
            PoseFamily::Stand => {}
            PoseFamily::Walk => {
                let phase = u(rng, -1.0, 1.0);
                let amp = u(rng, 15.0, 35.0);
                for (s, sign) in [(0, 1.0), (1, -1.0)] {
                    let f = amp * phase * sign;
                    p.legs[s].flex = f;
                    p.legs[s].bend = u(rng, 5.0, 20.0) + if f < 0.0 { -0.8 * f } else { 0.0 };
                    p.arms[s].flex = -0.8 * f;
                    p.arms[s].abduct = u(rng, 4.0, 12.0);
                    p.arms[s].bend = u(rng, 10.0, 45.0);
                }
            }
            PoseFamily::ArmsUp => {
                let both = u(rng, 60.0, 175.0);
                for s in 0..2 {
                    p.arms[s].abduct = if rng.random::<f32>() < 0.5 {
                        both + u(rng, -10.0, 10.0)
                    } else {
                        u(rng, 20.0, 175.0)
                    };
                    p.arms[s].flex = u(rng, -20.0, 30.0);
                    p.arms[s].bend = u(rng, 0.0, 70.0);
                    p.legs[s].abduct = u(rng, 0.0, 20.0);
                }
            }
            PoseFamily::Reach => {
                let both = rng.random::<bool>();
                let one = rng.random_range(0..2usize);
                for s in 0..2 {
                    if both || s == one {
                        p.arms[s].flex = u(rng, 50.0, 120.0);
                        p.arms[s].abduct = u(rng, 0.0, 30.0);
                        p.arms[s].bend = u(rng, 0.0, 50.0);
                    }
                }
                p.lean = u(rng, 0.0, 20.0);
            }
            PoseFamily::Sit => {
                p.lean = u(rng, -15.0, 10.0);
                for s in 0..2 {
                    p.legs[s].flex = u(rng, 65.0, 100.0);
                    p.legs[s].abduct = u(rng, 3.0, 20.0);
                    p.legs[s].bend = u(rng, 60.0, 110.0);
                    p.arms[s].flex = u(rng, 10.0, 50.0);
                    p.arms[s].bend = u(rng, 30.0, 90.0);
                }
            }
            PoseFamily::Random => {
                p.lean = u(rng, -15.0, 35.0);
                p.side_lean = u(rng, -15.0, 15.0);
                p.twist = u(rng, -30.0, 30.0);
                for s in 0..2 {
                    let arm = [
                        [0.0, 170.0],
                        [-40.0, 150.0],
                        [-60.0, 60.0],
                        [0.0, 140.0],
                        [-40.0, 40.0],
                    ];
                    p.arms[s] = Limb::random(rng, arm);
                    let leg = [
                        [-5.0, 40.0],
                        [-20.0, 110.0],
                        [-30.0, 30.0],
                        [0.0, 130.0],
                        [-20.0, 30.0],
                    ];
                    p.legs[s] = Limb::random(rng, leg);
                }
            }
        }
        p
    }

    /// Local joint rotations (relative to the parent joint's frame).
    fn rotations(&self) -> [Mat3; N_JOINTS] {
        let r = f32::to_radians;
        let mut m = [Mat3::IDENTITY; N_JOINTS];
        // Split torso bending over two joints so the spine curves instead of kinking.
        let spine = Mat3::rot_x(r(self.lean * 0.5))
            .mul(&Mat3::rot_z(r(self.side_lean * 0.5)))
            .mul(&Mat3::rot_y(r(self.twist * 0.5)));
        m[SPINE] = spine;
        m[CHEST_J] = spine;
        m[NECK_J] = Mat3::rot_x(r(self.neck));
        m[HEAD_J] = Mat3::rot_y(r(self.head_yaw))
            .mul(&Mat3::rot_x(r(self.head_pitch)))
            .mul(&Mat3::rot_z(r(self.head_roll)));
        for (s, sign) in [(0usize, 1.0f32), (1, -1.0)] {
            let a = &self.arms[s];
            // Limbs hang along -Y: +Z rotation swings towards +X (the left), -X rotation
            // swings forwards.
            m[SHOULDER[s]] = Mat3::rot_z(r(sign * a.abduct))
                .mul(&Mat3::rot_x(r(-a.flex)))
                .mul(&Mat3::rot_y(r(sign * a.twist)));
            m[ELBOW[s]] = Mat3::rot_x(r(-a.bend));
            m[WRIST[s]] = Mat3::rot_x(r(-a.end));
            let l = &self.legs[s];
            m[HIP[s]] = Mat3::rot_z(r(sign * l.abduct))
                .mul(&Mat3::rot_x(r(-l.flex)))
                .mul(&Mat3::rot_y(r(sign * l.twist)));
            m[KNEE[s]] = Mat3::rot_x(r(l.bend));
            m[ANKLE[s]] = Mat3::rot_x(r(l.end));
        }
        m
    }
}

/// A procedural subject's shape and pose.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub props: Proportions,
    pub family: PoseFamily,
    pub pose: Pose,
    pub hair: HairStyle,
}

/// One part in its joint's frame, in units of body height.
struct PartSpec {
    part: u8,
    joint: usize,
    start: Vec3,
    end: Vec3,
    r0: f32,
    r1: f32,
    ex: f32,
    ez: f32,
    cap: f32,
    bulge: f32,
    back: Vec3,
}

const BACK: Vec3 = [0.0, 0.0, -1.0];

impl Body {
    pub fn random(rng: &mut Pcg) -> Self {
        let props = Proportions::random(rng);
        let family = match rng.random_range(0..100) {
            0..25 => PoseFamily::Stand,
            25..50 => PoseFamily::Walk,
            50..65 => PoseFamily::ArmsUp,
            65..75 => PoseFamily::Reach,
            75..87 => PoseFamily::Sit,
            _ => PoseFamily::Random,
        };
        let pose = Pose::random(rng, family);
        let hair = match rng.random_range(0..3) {
            0 => HairStyle::Short,
            1 => HairStyle::Long,
            _ => HairStyle::Cropped,
        };
        Self {
            props,
            family,
            pose,
            hair,
        }
    }

    /// Rest offsets of each joint from its parent (body-height units).
    fn offsets(&self) -> [Vec3; N_JOINTS] {
        let p = &self.props;
        let mut o = [[0.0f32; 3]; N_JOINTS];
        o[ROOT] = [0.0, 0.5 * p.legs + 0.03 * p.torso, 0.0];
        o[SPINE] = [0.0, 0.07 * p.torso, 0.0];
        o[CHEST_J] = [0.0, 0.1 * p.torso, 0.0];
        o[NECK_J] = [0.0, 0.115 * p.torso, 0.0];
        o[HEAD_J] = [0.0, 0.045 * p.neck, 0.0];
        let sx = (0.082 * p.torso_girth + 0.03 * p.arm_girth) * p.shoulders;
        let hx = 0.05 * p.hips * p.torso_girth.sqrt();
        for (s, sign) in [(0usize, 1.0f32), (1, -1.0)] {
            o[SHOULDER[s]] = [sign * sx, 0.095 * p.torso, 0.0];
            o[ELBOW[s]] = [0.0, -0.19 * p.arms, 0.0];
            o[WRIST[s]] = [0.0, -0.15 * p.arms, 0.0];
            o[HIP[s]] = [sign * hx, -0.03 * p.torso, 0.0];
            o[KNEE[s]] = [0.0, -0.215 * p.legs, 0.0];
            o[ANKLE[s]] = [0.0, -0.246 * p.legs, 0.0];
        }
        o
    }

    #[rustfmt::skip] // a table: one part per line reads better than rustfmt's columns
    fn parts(&self) -> Vec<PartSpec> {
        let p = &self.props;
        let (hs, gt, ga, gl) = (p.head, p.torso_girth, p.arm_girth, p.leg_girth);
        let spec = |part, joint, start: Vec3, end: Vec3, r0, r1, ex, ez, cap, bulge| PartSpec {
            part,
            joint,
            start,
            end,
            r0,
            r1,
            ex,
            ez,
            cap,
            bulge,
            back: BACK,
        };
        let mut v = Vec::with_capacity(NUM_PARTS);
        v.push(spec(part::HEAD, HEAD_J, [0.0, 0.05 * hs, 0.008 * hs], [0.0, 0.08 * hs, 0.0], 0.05 * hs, 0.05 * hs, 0.9, 1.08, 1.0, 0.0));
        let (hs0, hs1, hr0, hr1) = match self.hair {
            HairStyle::Short => ([0.0, 0.072, -0.014], [0.0, 0.085, -0.015], 0.053, 0.053),
            HairStyle::Long => ([0.0, 0.025, -0.027], [0.0, 0.085, -0.015], 0.05, 0.054),
            HairStyle::Cropped => ([0.0, 0.08, -0.01], [0.0, 0.086, -0.012], 0.051, 0.051),
        };
        v.push(spec(part::HAIR, HEAD_J, scale(hs0, hs), scale(hs1, hs), hr0 * hs, hr1 * hs, 0.93, 1.07, 1.0, 0.0));
        v.push(spec(part::NECK, NECK_J, [0.0, -0.01, 0.0], [0.0, 0.05 * p.neck, 0.0], 0.03 * gt.sqrt(), 0.027 * gt.sqrt(), 1.0, 0.95, 1.0, 0.0));
        v.push(spec(part::CHEST, CHEST_J, [0.0, 0.015 * p.torso, 0.0], [0.0, 0.095 * p.torso, 0.0], 0.078 * gt, 0.085 * gt, 1.0, 0.62, 0.45, 0.04));
        v.push(spec(part::ABDOMEN, SPINE, [0.0, 0.01, 0.0], [0.0, 0.09 * p.torso, 0.0], 0.075 * gt, 0.077 * gt, 1.0, 0.6 + p.belly, 0.45, 0.03 + p.belly));
        v.push(spec(part::PELVIS, ROOT, [0.0, -0.04 * p.torso, 0.0], [0.0, 0.05 * p.torso, 0.0], 0.085 * gt * p.hips, 0.077 * gt, 1.0, 0.62, 0.45, 0.0));
        let sides = [
            (part::L_SHOULDER, part::L_UPPER_ARM, part::L_FOREARM, part::L_HAND, part::L_HIP, part::L_THIGH, part::L_KNEE, part::L_SHIN, part::L_FOOT),
            (part::R_SHOULDER, part::R_UPPER_ARM, part::R_FOREARM, part::R_HAND, part::R_HIP, part::R_THIGH, part::R_KNEE, part::R_SHIN, part::R_FOOT),
        ];
        for (s, ids) in sides.iter().enumerate() {
            let (sh, ua, fa, ha, hp, th, kn, sn, ft) = *ids;
            v.push(spec(sh, SHOULDER[s], [0.0, 0.012, 0.0], [0.0, -0.03, 0.0], 0.034 * ga, 0.032 * ga, 1.0, 1.0, 1.0, 0.0));
            v.push(spec(ua, SHOULDER[s], [0.0, -0.03, 0.0], [0.0, -0.185 * p.arms, 0.0], 0.032 * ga, 0.025 * ga, 1.0, 1.0, 1.0, 0.06));
            v.push(spec(fa, ELBOW[s], [0.0, 0.0, 0.0], [0.0, -0.145 * p.arms, 0.0], 0.024 * ga, 0.017 * ga, 1.0, 0.85, 1.0, 0.08));
            v.push(spec(ha, WRIST[s], [0.0, -0.025, 0.0], [0.0, -0.08 * p.arms, 0.0], 0.026, 0.024, 0.55, 1.0, 0.9, 0.0));
            v.push(spec(hp, HIP[s], [0.0, 0.015, -0.008], [0.0, -0.035, -0.004], 0.049 * gl, 0.047 * gl, 1.0, 1.0, 1.0, 0.0));
            v.push(spec(th, HIP[s], [0.0, -0.03, 0.0], [0.0, -0.205 * p.legs, 0.0], 0.05 * gl, 0.034 * gl, 1.0, 1.0, 1.0, 0.05));
            v.push(spec(kn, KNEE[s], [0.0, 0.012, 0.006], [0.0, -0.012, 0.006], 0.035 * gl, 0.033 * gl, 1.0, 1.0, 1.0, 0.0));
            v.push(spec(sn, KNEE[s], [0.0, -0.015, 0.0], [0.0, -0.236 * p.legs, 0.0], 0.034 * gl, 0.021 * gl, 1.0, 1.0, 1.0, 0.12));
            let mut foot = spec(ft, ANKLE[s], [0.0, -0.022, -0.015], [0.0, -0.028, 0.1 * p.feet], 0.024, 0.026, 1.15, 0.75, 0.9, 0.0);
            foot.back = [0.0, -1.0, 0.0]; // seam under the sole
            v.push(foot);
        }
        v
    }

    /// World positions of the joints (metres), for tests and framing.
    fn pose_joints(&self) -> ([Mat3; N_JOINTS], [Vec3; N_JOINTS]) {
        let local = self.pose.rotations();
        let off = self.offsets();
        let h = self.props.height;
        let mut rot = [Mat3::IDENTITY; N_JOINTS];
        let mut pos = [[0.0f32; 3]; N_JOINTS];
        rot[ROOT] = local[ROOT];
        pos[ROOT] = scale(off[ROOT], h);
        for j in 1..N_JOINTS {
            let p = PARENT[j];
            rot[j] = rot[p].mul(&local[j]);
            pos[j] = add(pos[p], rot[p].mul_vec(scale(off[j], h)));
        }
        (rot, pos)
    }

    /// Append the posed body (world space, metres) to `mesh`.
    pub fn build_mesh(&self, mesh: &mut Mesh) {
        let (rot, pos) = self.pose_joints();
        let h = self.props.height;
        for s in self.parts() {
            let r = &rot[s.joint];
            let at = |p: Vec3| add(pos[s.joint], r.mul_vec(scale(p, h)));
            let cap = Capsule {
                start: at(s.start),
                end: at(s.end),
                r0: s.r0 * h,
                r1: s.r1 * h,
                ex: s.ex,
                ez: s.ez,
                cap: s.cap,
                bulge: s.bulge,
                back: r.mul_vec(s.back),
            };
            push_capsule(mesh, s.part, &cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pairs_left_and_right() {
        assert_eq!(part::mirror(part::L_THIGH), part::R_THIGH);
        assert_eq!(part::mirror(part::R_FOOT), part::L_FOOT);
        assert_eq!(part::mirror(part::HEAD), part::HEAD);
        for p in 1..=24u8 {
            assert_eq!(part::mirror(part::mirror(p)), p);
            assert_eq!(part::side(part::mirror(p)), part::side(p).map(|l| !l));
        }
    }

    #[test]
    fn part_table_is_complete_and_sided() {
        let mut rng = unveil_shared::rng::stream(5, 0);
        let body = Body::random(&mut rng);
        let parts = body.parts();
        let mut ids: Vec<u8> = parts.iter().map(|p| p.part).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=NUM_PARTS as u8).collect::<Vec<_>>());
        for (i, name) in PART_NAMES.iter().enumerate() {
            match part::side(i as u8 + 1) {
                Some(true) => assert!(name.starts_with("left_"), "{name}"),
                Some(false) => assert!(name.starts_with("right_"), "{name}"),
                None => assert!(!name.contains("left") && !name.contains("right")),
            }
        }
    }

    #[test]
    fn rest_pose_is_upright_and_left_is_plus_x() {
        let mut rng = unveil_shared::rng::stream(9, 0);
        let mut body = Body::random(&mut rng);
        body.pose = Pose::default();
        let (_, pos) = body.pose_joints();
        let h = body.props.height;
        assert!(pos[HEAD_J][1] > pos[CHEST_J][1] && pos[CHEST_J][1] > pos[ROOT][1]);
        assert!(pos[ANKLE[0]][1] > 0.0 && pos[ANKLE[0]][1] < 0.1 * h);
        assert!(pos[SHOULDER[0]][0] > 0.0 && pos[SHOULDER[1]][0] < 0.0);
        let mut mesh = Mesh::default();
        body.build_mesh(&mut mesh);
        let (lo, hi) = mesh.bounds().expect("mesh");
        let tall = hi[1] - lo[1];
        assert!((tall / h - 1.0).abs() < 0.1, "height {tall} vs {h}");
    }
}
