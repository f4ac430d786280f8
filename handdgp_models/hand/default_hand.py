"""A procedurally generated right hand in MANO's data layout (no licensed model file needed).

The mesh is a union of closed parts: a palm (a rounded-rectangle tube closed at both ends) and
five finger capsules whose bases sit inside the palm. It has exactly 778 vertices, 16 joints in
MANO's order and the FreiHAND fingertip vertex ids (thumb 744, index 320, middle 443, ring 555,
little 672), so every code path written for MANO works unchanged.

Rest pose (metres, right hand, flat): wrist joint at the origin, fingers along +x, back of the
hand towards +y (palm facing -y), thumb on the -z side. Wrist to middle fingertip is ~0.186 m.

Shape directions (``shapedirs[..., k]`` for one unit of beta k): 0 overall scale (+5 %),
1 finger length (+6 %), 2 palm width (+6 %), 3 finger thickness (+8 %), 4 palm length (+5 %),
5 thumb length (+6 %); 6-9 are zero.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NUM_VERTS",
    "FREIHAND_TIP_IDS",
    "MANO_FINGERS",
    "default_hand_data",
    "finger_frames",
]

NUM_VERTS = 778
FREIHAND_TIP_IDS = (744, 320, 443, 555, 672)  # thumb, index, middle, ring, little
# MANO's joint order: wrist, then three joints per finger in this finger order.
MANO_FINGERS = ("index", "middle", "little", "ring", "thumb")
_TIP_FINGERS = ("thumb", "index", "middle", "ring", "little")

_RING_N = 12  # vertices per finger cross-section
_FINGER_RINGS = 8
_PALM_RINGS = 11
_PALM_COLS = 26

# Unit changes of the shape parameters (see module docstring).
_SHAPE_STEPS = (0.05, 0.06, 0.06, 0.08, 0.05, 0.06)


@dataclass(frozen=True)
class _Finger:
    base: np.ndarray  # (3,) first joint (MCP, or CMC for the thumb)
    direction: np.ndarray  # (3,) unit vector along the straight finger
    lengths: tuple[float, float, float]  # joint1->joint2, joint2->joint3, joint3->tip
    radii: tuple[float, float, float, float]  # at joint1, joint2, joint3, start of tip cap


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _fingers(params: np.ndarray) -> dict[str, _Finger]:
    scale, flen, pwidth, thick, plen, tlen = params
    spec = {
        # name: (MCP x, y, z, fan angle, bone lengths, radii)
        "index": (0.088, 0.000, -0.026, -0.07, (0.040, 0.024, 0.022),
                  (0.0092, 0.0083, 0.0074, 0.0067)),
        "middle": (0.093, 0.000, -0.004, 0.0, (0.044, 0.027, 0.022),
                   (0.0095, 0.0086, 0.0076, 0.0069)),
        "ring": (0.088, -0.001, 0.016, 0.06, (0.041, 0.026, 0.022),
                 (0.0090, 0.0081, 0.0072, 0.0065)),
        "little": (0.078, -0.003, 0.034, 0.14, (0.033, 0.020, 0.019),
                   (0.0079, 0.0071, 0.0063, 0.0057)),
    }
    out = {}
    for name, (x, y, z, ang, lengths, radii) in spec.items():
        base = np.array([x * plen, y, z * pwidth])
        direction = np.array([np.cos(ang), 0.0, np.sin(ang)])
        out[name] = _Finger(base * scale, direction, tuple(v * flen * scale for v in lengths),
                            tuple(r * thick * scale for r in radii))
    out["thumb"] = _Finger(
        np.array([0.024 * plen, -0.009, -0.020 * pwidth]) * scale,
        _unit(np.array([0.74, -0.26, -0.62])),
        tuple(v * tlen * scale for v in (0.040, 0.031, 0.028)),
        tuple(r * thick * scale for r in (0.0120, 0.0100, 0.0090, 0.0080)),
    )
    return out


def _ring_frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(width axis, thickness axis) perpendicular to ``direction``; thickness points to +y."""
    e_w = _unit(np.cross(direction, [0.0, 1.0, 0.0]))
    e_t = np.cross(e_w, direction)
    return e_w, e_t


def _tube_faces(start: int, rings: int, n: int, first_cap: int, last_cap: int) -> list:
    faces = []
    for r in range(rings - 1):
        for k in range(n):
            a = start + r * n + k
            b = start + r * n + (k + 1) % n
            c = a + n
            d = b + n
            faces += [(a, b, d), (a, d, c)]
    for k in range(n):
        faces.append((first_cap, start + (k + 1) % n, start + k))
        last = start + (rings - 1) * n
        faces.append((last_cap, last + k, last + (k + 1) % n))
    return faces


def _outward(v: np.ndarray, faces: list) -> list:
    """Flip a closed part's triangles if its signed volume is negative (inward winding)."""
    t = np.asarray(faces)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    return [tuple(f) for f in (t if volume > 0 else t[:, ::-1])]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _palm(params: np.ndarray, fingers: dict, jreg: np.ndarray):
    """The palm: a tube from the wrist (x = 0) to the knuckle line with rounded-rectangle
    sections. Returns its vertices, faces and skinning weights; fills the wrist's row of
    ``jreg``."""
    scale = params[0]
    mcp = np.stack([fingers[f].base for f in ("index", "middle", "ring", "little")])
    r_idx, r_lit = fingers["index"].radii[0], fingers["little"].radii[0]
    z_lo, z_hi = mcp[0, 2] - 1.1 * r_idx, mcp[3, 2] + 1.1 * r_lit
    theta = 2 * np.pi * np.arange(_PALM_COLS) / _PALM_COLS
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    sq_c = np.sign(cos_t) * np.abs(cos_t) ** (2 / 2.5)
    sq_s = np.sign(sin_t) * np.abs(sin_t) ** (2 / 2.5)
    pwidth = params[2]
    w_wrist, t_wrist, t_knuckle = 0.027 * scale * pwidth, 0.0145 * scale, 0.0115 * scale
    verts = []
    for u in np.linspace(0.0, 1.0, _PALM_RINGS):
        half_w = (1 - u) * w_wrist + u * 0.5 * (z_hi - z_lo)
        z_c = u * 0.5 * (z_lo + z_hi)
        half_t = (1 - u) * t_wrist + u * t_knuckle
        y_c = u * mcp[:, 1].mean()
        z = z_c + half_w * sq_c
        x_end = np.interp(z, mcp[:, 2], mcp[:, 0]) + 0.002 * scale
        # A bulge on the back of the hand's mid-palm keeps it from looking like a plank.
        bulge = 1.0 + 0.12 * np.sin(np.pi * u)
        y = y_c + half_t * bulge * sq_s
        verts.append(np.stack([u * x_end, y, z], axis=1))
    verts.append(np.array([[-0.006 * scale, 0.0, 0.0]]))
    verts.append(np.array([[mcp[1, 0] + 0.006 * scale, mcp[:, 1].mean(), mcp[1, 2]]]))
    n_palm = _PALM_RINGS * _PALM_COLS
    palm_v = np.concatenate(verts, axis=0)
    faces = _outward(palm_v, _tube_faces(0, _PALM_RINGS, _PALM_COLS, n_palm, n_palm + 1))
    jreg[0, :_PALM_COLS] = 1.0 / _PALM_COLS
    palm_w = np.zeros((len(palm_v), 16))
    palm_w[:, 0] = 1.0
    # Knuckle region follows each finger's first joint a little; thenar region follows the thumb.
    x_rel = palm_v[:, 0] / mcp[:, 0].max()
    for fi, name in enumerate(MANO_FINGERS):
        f = fingers[name]
        if name == "thumb":
            d = np.linalg.norm(palm_v - f.base, axis=1)
            w = 0.45 * np.exp(-((d / (0.018 * scale)) ** 2))
        else:
            dz = palm_v[:, 2] - f.base[2]
            w = 0.5 * _smoothstep((x_rel - 0.75) / 0.25) * np.exp(-((dz / (0.009 * scale)) ** 2))
        palm_w[:, 1 + 3 * fi] = w
    palm_w /= palm_w.sum(axis=1, keepdims=True)
    return palm_v, faces, palm_w


def _finger(fi: int, name: str, f, scale: float, offset: int, jreg: np.ndarray):
    """Finger ``fi`` (``name``, with geometry ``f``) as a tube of rings along its direction,
    its vertices numbered from ``offset``. Returns its vertices, faces, skinning weights and
    tip vertex id; fills its joints' rows of ``jreg``."""
    l1, l2, l3 = f.lengths
    r0, r1, r2, r3 = f.radii
    s_end = l1 + l2 + l3
    s_cap = s_end - r3
    s_base = -(0.010 if name == "thumb" else 0.014) * scale
    s_rings = np.array([s_base, 0.0, l1 / 2, l1, l1 + l2 / 2, l1 + l2, s_cap,
                        s_cap + 0.72 * r3])
    radii = np.interp(s_rings, [s_base, 0.0, l1, l1 + l2, s_cap], [r0 * 1.05, r0, r1, r2, r3])
    radii[-1] = r3 * np.sqrt(1 - 0.72**2)
    e_w, e_t = _ring_frame(f.direction)
    ang = 2 * np.pi * np.arange(_RING_N) / _RING_N
    fv = []
    for s, r in zip(s_rings, radii, strict=True):
        c = f.base + s * f.direction
        # Slightly wider than thick, the palmar side flatter than the nail side.
        fv.append(c + np.outer(1.08 * r * np.cos(ang), e_w)
                  + np.outer(0.92 * r * np.sin(ang), e_t))
    fv.append((f.base + s_base * f.direction)[None])
    fv.append((f.base + s_end * f.direction)[None])
    fv = np.concatenate(fv, axis=0)
    n_ring_v = _FINGER_RINGS * _RING_N
    part = np.array(_tube_faces(0, _FINGER_RINGS, _RING_N, n_ring_v, n_ring_v + 1))
    faces = [tuple(t) for t in (np.array(_outward(fv, part)) + offset)]
    # Joint regressor: the mean of the cross-section placed at each joint is the joint.
    j1 = 1 + 3 * fi
    for k, ring in enumerate((1, 3, 5)):
        jreg[j1 + k, offset + ring * _RING_N: offset + (ring + 1) * _RING_N] = 1.0 / _RING_N
    # Skinning: blend between consecutive bones around each joint, by arc length.
    s_v = (fv - f.base) @ f.direction
    blend = np.array([0.012, 0.008, 0.007]) * scale
    steps = [_smoothstep((s_v - sj) / bw + 0.5)
             for sj, bw in zip((0.0, l1, l1 + l2), blend, strict=True)]
    fw = np.zeros((len(fv), 16))
    fw[:, 0] = 1 - steps[0]
    fw[:, j1] = steps[0] - steps[1]
    fw[:, j1 + 1] = steps[1] - steps[2]
    fw[:, j1 + 2] = steps[2]
    return fv, faces, fw, offset + n_ring_v + 1


def _build(params: np.ndarray):
    """Vertices (V,3), faces (F,3), weights (V,16), J_regressor (16,V) in generation order."""
    fingers = _fingers(params)
    jreg = np.zeros((16, NUM_VERTS))
    palm_v, faces, palm_w = _palm(params, fingers, jreg)
    verts, weights, tips = [palm_v], [palm_w], {}
    offset = len(palm_v)
    for fi, name in enumerate(MANO_FINGERS):
        fv, f_faces, fw, tips[name] = _finger(fi, name, fingers[name], params[0], offset, jreg)
        faces += f_faces
        verts.append(fv)
        weights.append(fw)
        offset += len(fv)
    v = np.concatenate(verts, axis=0)
    if len(v) != NUM_VERTS:  # pragma: no cover - guards edits of the layout constants
        raise AssertionError(f"default hand has {len(v)} vertices, expected {NUM_VERTS}")
    return v, np.asarray(faces, dtype=np.int64), np.concatenate(weights, axis=0), jreg, tips


def _permutation(tips: dict[str, int]) -> np.ndarray:
    """new_to_old vertex order that puts the fingertips at the FreiHAND tip ids."""
    new_to_old = np.full(NUM_VERTS, -1)
    for name, new_id in zip(_TIP_FINGERS, FREIHAND_TIP_IDS, strict=True):
        new_to_old[new_id] = tips[name]
    rest = [i for i in range(NUM_VERTS) if i not in set(tips.values())]
    new_to_old[new_to_old < 0] = rest
    return new_to_old


@functools.lru_cache(maxsize=1)
def _cached() -> dict[str, np.ndarray]:
    base = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    v, faces, weights, jreg, tips = _build(base)
    new_to_old = _permutation(tips)
    old_to_new = np.argsort(new_to_old)
    shapedirs = np.zeros((NUM_VERTS, 3, 10))
    for k, step in enumerate(_SHAPE_STEPS):
        p = base.copy()
        p[k] += step
        shapedirs[:, :, k] = _build(p)[0] - v
    faces = old_to_new[faces]
    v, weights, jreg = v[new_to_old], weights[new_to_old], jreg[:, new_to_old]
    shapedirs = shapedirs[new_to_old]
    parents = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
    kintree = np.stack([np.where(parents < 0, 2**32 - 1, parents), np.arange(16)]).astype(np.int64)
    return {
        "v_template": v,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "kintree_table": kintree,
        "J_regressor": jreg,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTS, 3, 135)),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
    }


def default_hand_data() -> dict[str, np.ndarray]:
    """The default hand's arrays in the official MANO layout (copies; deterministic).

    Returns:
        dict with ``v_template`` (778, 3) m, ``f`` (F, 3) uint32, ``weights`` (778, 16),
        ``kintree_table`` (2, 16), ``J_regressor`` (16, 778), ``shapedirs`` (778, 3, 10),
        ``posedirs`` (778, 3, 135) zeros, ``hands_components`` (45, 45) identity,
        ``hands_mean`` (45,) zeros.
    """
    return {k: v.copy() for k, v in _cached().items()}


def finger_frames() -> dict[str, np.ndarray]:
    """Rest-pose unit axes of the default hand's fingers, for the pose sampler.

    Returns:
        ``{finger name: (3, 3) array}`` whose rows are the finger direction, the flexion axis
        (positive rotation curls the finger towards the palm) and the spread axis.
    """
    out = {}
    for name, f in _fingers(np.ones(6)).items():
        d = f.direction
        towards = np.array([0.0, -1.0, 0.0]) if name != "thumb" else _unit(
            np.array([0.0, -1.0, 0.9]))
        flex = _unit(np.cross(d, towards))
        spread = _unit(np.cross(flex, d))
        out[name] = np.stack([d, flex, spread])
    return out
