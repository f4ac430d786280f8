"""A procedurally generated body in SMPL's data layout (no licensed model file needed).

SMPL's 24-joint kinematic tree with its joint order and parents; one closed capsule per bone
(from a joint's parent to the joint, skinned to the parent and blended with the grandparent
at its start) and a capsule for the head, about 1,050 vertices in all. Every code path written
for SMPL runs on it unchanged; only the vertex count and the face-keypoint vertex ids differ
(:data:`DEFAULT_FACE_VERTEX_IDS`).

Rest pose (metres, SMPL's frame): a T-pose, y up, the body facing +z, its left side at +x,
the pelvis joint at the origin; about 1.7 m tall.

Shape directions (``shapedirs[..., k]`` for one unit of beta k): 0 overall scale (+5 %),
1 leg length (+6 %), 2 arm length (+6 %), 3 girth (+8 %), 4 torso length (+5 %); 5-9 are zero.
"""

from __future__ import annotations

import functools

import numpy as np

from .joints import NUM_SMPL_JOINTS, SMPL_PARENTS

__all__ = ["DEFAULT_FACE_VERTEX_IDS", "default_body_data"]

# Rest offsets of each joint from its parent (metres), SMPL joint order.
_OFFSETS = np.array([
    [0.0, 0.0, 0.0],        # 0 pelvis
    [0.09, -0.08, 0.0],     # 1 left hip
    [-0.09, -0.08, 0.0],    # 2 right hip
    [0.0, 0.11, -0.02],     # 3 spine1
    [0.01, -0.40, 0.01],    # 4 left knee
    [-0.01, -0.40, 0.01],   # 5 right knee
    [0.0, 0.13, 0.01],      # 6 spine2
    [0.0, -0.40, -0.04],    # 7 left ankle
    [0.0, -0.40, -0.04],    # 8 right ankle
    [0.0, 0.06, 0.01],      # 9 spine3
    [0.01, -0.06, 0.13],    # 10 left foot
    [-0.01, -0.06, 0.13],   # 11 right foot
    [0.0, 0.21, -0.02],     # 12 neck
    [0.08, 0.12, -0.01],    # 13 left collar
    [-0.08, 0.12, -0.01],   # 14 right collar
    [0.0, 0.10, 0.04],      # 15 head
    [0.10, 0.02, -0.01],    # 16 left shoulder
    [-0.10, 0.02, -0.01],   # 17 right shoulder
    [0.26, 0.0, -0.01],     # 18 left elbow
    [-0.26, 0.0, -0.01],    # 19 right elbow
    [0.25, 0.0, 0.01],      # 20 left wrist
    [-0.25, 0.0, 0.01],     # 21 right wrist
    [0.08, 0.0, 0.0],       # 22 left hand
    [-0.08, 0.0, 0.0],      # 23 right hand
])
# Capsule radii at the start and the end of the bone ending at each joint.
_RADII = {1: (0.10, 0.09), 2: (0.10, 0.09), 3: (0.13, 0.12), 4: (0.075, 0.055),
          5: (0.075, 0.055), 6: (0.12, 0.12), 7: (0.05, 0.04), 8: (0.05, 0.04),
          9: (0.12, 0.13), 10: (0.04, 0.035), 11: (0.04, 0.035), 12: (0.13, 0.06),
          13: (0.06, 0.06), 14: (0.06, 0.06), 15: (0.05, 0.055), 16: (0.06, 0.055),
          17: (0.06, 0.055), 18: (0.045, 0.038), 19: (0.045, 0.038), 20: (0.036, 0.03),
          21: (0.036, 0.03), 22: (0.03, 0.025), 23: (0.03, 0.025)}
_HEAD_TOP = np.array([0.0, 0.20, 0.0])  # head capsule end, from the head joint
_HEAD_RADII = (0.09, 0.08)
_LEG, _ARM = (4, 5, 7, 8, 10, 11), (18, 19, 20, 21, 22, 23)
_TORSO = (3, 6, 9, 12)
_SHAPE_STEPS = (0.05, 0.06, 0.06, 0.08, 0.05)
_RINGS, _RING_N = 5, 8  # per bone capsule
_HEAD_RINGS, _HEAD_RING_N = 7, 12
# Face keypoints (nose, left eye, right eye, left ear, right ear): the head vertices closest
# to these points, given from the head capsule's centre in units of its radius.
_FACE_POINTS = np.array([[0.0, -0.1, 1.0], [0.4, 0.3, 0.9], [-0.4, 0.3, 0.9],
                         [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])


def _joints(params: np.ndarray) -> np.ndarray:
    """(24, 3) rest joint positions for shape ``params`` (factors, 1 = neutral)."""
    scale, leg, arm, _, torso = params[:5]
    out = np.zeros((NUM_SMPL_JOINTS, 3))
    for j in range(1, NUM_SMPL_JOINTS):
        f = leg if j in _LEG else arm if j in _ARM else torso if j in _TORSO else 1.0
        out[j] = out[SMPL_PARENTS[j]] + _OFFSETS[j] * f * scale
    return out


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ``u, w`` with ``(u, w, d)`` right-handed."""
    a = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = a - (a @ d) * d
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _capsule(start: np.ndarray, end: np.ndarray, radii: tuple[float, float], rings: int,
             n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed capsule: ``rings`` rings of ``n`` vertices from ``start`` to ``end``, then the
    two cap apexes. Returns vertices, outward-oriented faces (local ids) and each vertex's
    position along the bone (0 at ``start``, 1 at ``end``)."""
    axis = end - start
    d = axis / np.linalg.norm(axis)
    u, w = _frame(d)
    ts = np.linspace(0.0, 1.0, rings)
    theta = 2 * np.pi * np.arange(n) / n
    verts, along = [], []
    for t in ts:
        r = radii[0] + t * (radii[1] - radii[0])
        c = start + t * axis
        verts += [c + r * (np.cos(a) * u + np.sin(a) * w) for a in theta]
        along += [t] * n
    verts += [start - 0.5 * radii[0] * d, end + 0.5 * radii[1] * d]
    along += [0.0, 1.0]
    faces = []
    for k in range(rings - 1):
        for i in range(n):
            a, b = k * n + i, k * n + (i + 1) % n
            c, e = b + n, a + n
            faces += [(a, b, c), (a, c, e)]
    s, top = rings * n, rings * n + 1
    last = (rings - 1) * n
    for i in range(n):
        faces.append((s, (i + 1) % n, i))
        faces.append((top, last + i, last + (i + 1) % n))
    return np.array(verts), np.array(faces), np.array(along)


def _build(params: np.ndarray):
    """Vertices, faces, skinning weights, joint regressor and the head's vertex ids."""
    joints = _joints(params)
    girth = params[3] * params[0]
    verts, faces, weights = [], [], []
    regressor_rings: dict[int, list[int]] = {}
    head_ids: list[int] = []
    count = 0
    bones = [(SMPL_PARENTS[j], j, _RADII[j], _RINGS, _RING_N, joints[j])
             for j in range(1, NUM_SMPL_JOINTS)]
    bones.append((15, None, _HEAD_RADII, _HEAD_RINGS, _HEAD_RING_N,
                  joints[15] + _HEAD_TOP * params[0]))
    for parent, child, radii, rings, n, end in bones:
        v, f, along = _capsule(joints[parent], end, tuple(r * girth for r in radii), rings, n)
        w = np.zeros((len(v), NUM_SMPL_JOINTS))
        grand = SMPL_PARENTS[parent]
        blend = np.clip(0.5 * (1.0 - along / 0.25), 0.0, 0.5) if grand >= 0 else 0.0 * along
        w[:, parent] = 1.0 - blend
        if grand >= 0:
            w[:, grand] += blend
        first_ring = list(range(count, count + n))
        last_ring = list(range(count + (rings - 1) * n, count + rings * n))
        regressor_rings.setdefault(parent, first_ring)  # a ring centred on the bone's start
        if child is not None:
            regressor_rings.setdefault(-child - 1, last_ring)  # centred on its end
        else:
            head_ids = list(range(count, count + len(v)))
        verts.append(v)
        faces.append(f + count)
        weights.append(w)
        count += len(v)
    jreg = np.zeros((NUM_SMPL_JOINTS, count))
    for j in range(NUM_SMPL_JOINTS):
        ring = regressor_rings.get(j, regressor_rings.get(-j - 1))
        jreg[j, ring] = 1.0 / len(ring)
    return (np.concatenate(verts), np.concatenate(faces), np.concatenate(weights), jreg,
            np.array(head_ids))


def _face_ids(v: np.ndarray, head_ids: np.ndarray) -> tuple[int, ...]:
    head = v[head_ids]
    centre = head.mean(0)
    radius = np.linalg.norm(head[:, [0, 2]] - centre[[0, 2]], axis=1).max()
    targets = centre + radius * _FACE_POINTS
    dist = np.linalg.norm(head[None] - targets[:, None], axis=2)
    return tuple(int(head_ids[i]) for i in dist.argmin(1))


@functools.lru_cache(maxsize=1)
def _cached() -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    base = np.ones(5)
    v, faces, weights, jreg, head_ids = _build(base)
    shapedirs = np.zeros((len(v), 3, 10))
    for k, step in enumerate(_SHAPE_STEPS):
        p = base.copy()
        p[k] += step
        shapedirs[:, :, k] = _build(p)[0] - v
    parents = np.array(SMPL_PARENTS)
    kintree = np.stack([np.where(parents < 0, 2**32 - 1, parents),
                        np.arange(NUM_SMPL_JOINTS)]).astype(np.int64)
    data = {"v_template": v, "f": faces.astype(np.uint32), "weights": weights,
            "kintree_table": kintree, "J_regressor": jreg, "shapedirs": shapedirs,
            "posedirs": np.zeros((len(v), 3, 9 * (NUM_SMPL_JOINTS - 1)))}
    return data, _face_ids(v, head_ids)


def default_body_data() -> dict[str, np.ndarray]:
    """The default body's arrays in the SMPL model-file layout (copies; deterministic).

    Returns:
        dict with ``v_template`` (V, 3) m, ``f`` (F, 3) uint32, ``weights`` (V, 24),
        ``kintree_table`` (2, 24), ``J_regressor`` (24, V), ``shapedirs`` (V, 3, 10),
        ``posedirs`` (V, 3, 207) zeros.
    """
    return {k: v.copy() for k, v in _cached()[0].items()}


#: Vertices of the default body's face keypoints (nose, left eye, right eye, left ear,
#: right ear), on its head capsule.
DEFAULT_FACE_VERTEX_IDS: tuple[int, int, int, int, int] = _cached()[1]  # type: ignore[assignment]
