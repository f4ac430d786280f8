"""MANO through smplx without chumpy, and the wrapper every module uses: :class:`HandModel`."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import smplx
import torch
from smplx.utils import Struct
from torch import nn

from ..files import read_npz
from ..safe_pickle import safe_load_pickle
from ..template import skin
from .default_hand import default_hand_data
from .pose_prior import sample_default_pose

__all__ = ["HAND_BONES", "MANO_TO_OPENPOSE", "NUM_KEYPOINTS", "ROOT_INDEX", "TIP_IDS",
           "HandModel", "load_mano", "load_mano_arrays", "validate_mano_arrays"]

# After appending the tips (thumb, index, middle, ring, little) to MANO's 16 joints.
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
#: Hand keypoints (FreiHAND / OpenPose order) and the root keypoint (the wrist).
NUM_KEYPOINTS = len(MANO_TO_OPENPOSE)
ROOT_INDEX = 0
#: Bones of the OpenPose-ordered keypoints, grouped by finger (thumb .. little), base to tip.
HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    (0 if k == 0 else 4 * f + k, 4 * f + k + 1) for f in range(5) for k in range(4))
TIP_IDS: dict[str, tuple[int, int, int, int, int]] = {
    "freihand": (744, 320, 443, 555, 672),
    "ho3d": (744, 333, 444, 555, 672),
    "smplx": (744, 320, 443, 554, 671),
}
_NUM_JOINTS = 16  # MANO's articulated joints; MANO_TO_OPENPOSE appends the five tips
_REQUIRED = ("v_template", "f", "weights", "kintree_table", "J_regressor", "shapedirs",
             "posedirs")


def load_mano_arrays(path: str | os.PathLike) -> dict[str, object]:
    """Read a MANO model file (.pkl through the restricted unpickler, or .npz) into arrays.

    Args:
        path: ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` in the official layout, or an ``.npz``
            holding the same keys (read with ``allow_pickle=False``).

    Returns:
        dict of numpy arrays (``J_regressor`` may be a scipy sparse matrix), checked by
        :func:`validate_mano_arrays`.

    Raises:
        ValueError: naming the file, when it is missing, unreadable, unsafe or its arrays are
            malformed (wrong shapes, NaN/Inf, not a kinematic tree).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: MANO model file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        data = read_npz(path)
    else:
        data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"path: {str(path)!r} does not hold a dict of model arrays")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"path: {str(path)!r} lacks MANO arrays {missing}")
    validate_mano_arrays(data, str(path))
    return data


def _numeric(data: dict, key: str, source: str, sparse_ok: bool = False) -> np.ndarray:
    """``data[key]`` as a numeric ndarray (a dense copy of a sparse matrix), finite."""
    value = data[key]
    if sparse_ok and sp.issparse(value):
        if not np.isfinite(value.data).all():
            raise ValueError(f"{source}: {key} holds NaN or Inf")
        return value
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise ValueError(f"{source}: {key} must be a numeric array, got "
                         f"{type(value).__name__}{_dtype_note(value)}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{source}: {key} holds NaN or Inf")
    return value


def _dtype_note(value: object) -> str:
    return f" of dtype {value.dtype}" if isinstance(value, np.ndarray) else ""


def _require_shape(arr: object, key: str, shape: tuple[int | None, ...], source: str) -> None:
    got = tuple(arr.shape)
    if len(got) != len(shape) or any(
            s is not None and g != s for g, s in zip(got, shape, strict=True)):
        want = ", ".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{source}: {key} has shape {got}, expected ({want})")


def validate_mano_arrays(data: dict[str, object], source: str) -> None:
    """Check MANO-layout arrays before any model is built from them.

    Shapes (V vertices, J = 16 joints): ``v_template`` (V, 3), ``f`` (F, 3) integer vertex
    ids, ``weights`` (V, J), ``kintree_table`` (2, J) whose first row lists each joint's parent
    (every joint after the root has an earlier parent, so the joints form one tree),
    ``J_regressor`` (J, V) dense or sparse, ``shapedirs`` (V, 3, >= 10), ``posedirs``
    (V, 3, 9 (J - 1)); optional ``hands_components`` (k, 45) and ``hands_mean`` (45,). Every
    float array must be finite.

    Raises:
        ValueError: naming ``source`` and the array.
    """
    v_template = _numeric(data, "v_template", source)
    _require_shape(v_template, "v_template", (None, 3), source)
    num_verts = v_template.shape[0]
    num_joints = _NUM_JOINTS
    faces = _numeric(data, "f", source)
    _require_shape(faces, "f", (None, 3), source)
    if (faces.dtype.kind == "f" or len(faces) == 0 or faces.min() < 0
            or faces.max() >= num_verts):
        raise ValueError(f"{source}: f must hold integer vertex ids in [0, {num_verts})")
    tree = _numeric(data, "kintree_table", source)
    _require_shape(tree, "kintree_table", (2, num_joints), source)
    parents = tree[0].astype(np.int64)
    for joint in range(1, num_joints):
        if not 0 <= parents[joint] < joint:
            raise ValueError(f"{source}: kintree_table is not a kinematic tree: joint {joint} "
                             f"has parent {parents[joint]} (expected an earlier joint)")
    _require_shape(_numeric(data, "weights", source), "weights", (num_verts, num_joints), source)
    _require_shape(_numeric(data, "J_regressor", source, sparse_ok=True), "J_regressor",
                   (num_joints, num_verts), source)
    shapedirs = _numeric(data, "shapedirs", source)
    _require_shape(shapedirs, "shapedirs", (num_verts, 3, None), source)
    if shapedirs.shape[2] < 10:
        raise ValueError(f"{source}: shapedirs has {shapedirs.shape[2]} shape directions, "
                         "expected at least 10")
    _require_shape(_numeric(data, "posedirs", source), "posedirs",
                   (num_verts, 3, 9 * (num_joints - 1)), source)
    if "hands_components" in data:
        _require_shape(_numeric(data, "hands_components", source), "hands_components",
                       (None, 45), source)
    if "hands_mean" in data:
        mean = _numeric(data, "hands_mean", source)
        if mean.size != 45:
            raise ValueError(f"{source}: hands_mean has {mean.size} values, expected 45")


def _tip_tuple(tip_ids: str | Sequence[int], num_verts: int) -> tuple[int, ...]:
    if isinstance(tip_ids, str):
        if tip_ids not in TIP_IDS:
            raise ValueError(f"tip_ids: unknown name {tip_ids!r}; expected one of {list(TIP_IDS)}")
        ids = TIP_IDS[tip_ids]
    else:
        ids = tuple(int(i) for i in tip_ids)
    if len(ids) != 5 or any(not 0 <= i < num_verts for i in ids):
        raise ValueError(f"tip_ids: need 5 vertex ids in [0, {num_verts}), got {ids}")
    return ids


class HandModel(nn.Module):
    """MANO-layout hand: pose/shape -> camera-ready vertices and 21 OpenPose keypoints.

    Attributes:
        mano: the underlying ``smplx.MANO`` (no PCA, flat hand mean).
        faces: (F, 3) long triangle indices.
        template: (V, 3) rest vertices in metres.
        keypoint_regressor: (21, V) maps vertices to OpenPose-ordered keypoints (MANO's joint
            regressor rows for the 16 joints, one-hot rows for the five tip vertices).
        tip_ids: fingertip vertex ids (thumb, index, middle, ring, little).
        is_default: True for the embedded procedural hand.
        root_index: the wrist (:data:`ROOT_INDEX`); bones: :data:`HAND_BONES`.
    """

    root_index = ROOT_INDEX
    bones = HAND_BONES

    def __init__(self, data: dict[str, object], *, tip_ids: str | Sequence[int] = "freihand",
                 is_rhand: bool = True, is_default: bool = False) -> None:
        super().__init__()
        arrays = dict(data)
        arrays.setdefault("hands_components", np.eye(45))
        arrays.setdefault("hands_mean", np.zeros(45))
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note on 10 betas
            self.mano = smplx.MANO(
                model_path="", is_rhand=is_rhand, data_struct=Struct(**arrays), use_pca=False,
                num_pca_comps=45, flat_hand_mean=True, create_global_orient=False,
                create_hand_pose=False, create_betas=False, create_transl=False,
            )
        num_verts = self.mano.v_template.shape[0]
        self.tip_ids = _tip_tuple(tip_ids, num_verts)
        self.is_default = is_default
        self.register_buffer("faces", self.mano.faces_tensor.clone())
        self.register_buffer("template", self.mano.v_template.clone())
        tips = torch.zeros(5, num_verts, dtype=self.template.dtype)
        tips[torch.arange(5), torch.tensor(self.tip_ids)] = 1.0
        reg = torch.cat([self.mano.J_regressor, tips], dim=0)[list(MANO_TO_OPENPOSE)]
        self.register_buffer("keypoint_regressor", reg)
        comps = np.asarray(arrays["hands_components"], dtype=np.float64)
        self._pca = (np.asarray(arrays["hands_mean"], dtype=np.float64).reshape(45), comps)

    @property
    def num_betas(self) -> int:
        return int(self.mano.num_betas)

    @property
    def num_keypoints(self) -> int:
        return NUM_KEYPOINTS

    def forward(self, pose: torch.Tensor, shape: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose the hand.

        Args:
            pose: (B, 48) axis-angle, global orientation (about the wrist) then 15 joints.
            shape: (B, k) shape coefficients with k <= 10 (missing ones are zero), or None.
            transl: (B, 3) translation in metres added to everything, or None.

        Returns:
            verts (B, V, 3) and joints (B, 21, 3) in metres, OpenPose order; the 16 articulated
            joints are MANO's kinematic joints, the five tips are vertices. Dtype of ``pose``.
        """
        verts, joints = skin(self.mano, pose, shape, transl, tuple(self.tip_ids))
        return verts, joints[:, list(MANO_TO_OPENPOSE)]

    def sample_pose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Plausible finger articulations (no global orientation).

        The default hand draws within its per-joint limits
        (:func:`handdgp_models.hand.pose_prior.sample_default_pose`); a MANO file draws from its
        PCA pose space (``hands_mean + N(0, 0.8^2) coefficients on 12 components``).

        Args:
            n: number of poses.
            rng: numpy random generator.

        Returns:
            (n, 45) float32 axis-angle.
        """
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n: expected a non-negative int, got {n!r}")
        if self.is_default:
            return sample_default_pose(int(n), rng)
        mean, comps = self._pca
        k = min(12, comps.shape[0])
        coeffs = rng.normal(0.0, 0.8, size=(n, k))
        return (mean + coeffs @ comps[:k]).astype(np.float32)



def load_mano(path: str | os.PathLike | None = None, *, tip_ids: str | Sequence[int] = "freihand",
              is_rhand: bool | None = None) -> HandModel:
    """Build a :class:`HandModel` from a MANO file, without chumpy, or the embedded default hand.

    Args:
        path: ``MANO_RIGHT.pkl``/``MANO_LEFT.pkl`` (official layout) or an ``.npz`` of the same
            arrays; None for the embedded procedural right hand.
        tip_ids: fingertip vertex ids (thumb, index, middle, ring, little): ``"freihand"``
            (744, 320, 443, 555, 672), ``"ho3d"`` (744, 333, 444, 555, 672), ``"smplx"``
            (744, 320, 443, 554, 671) or an explicit 5-tuple.
        is_rhand: hand side; by default "LEFT" in the file name means a left hand.

    Returns:
        A float32 :class:`HandModel` (call ``.double()`` for float64 buffers).
    """
    if path is None:
        return HandModel(default_hand_data(), tip_ids=tip_ids, is_rhand=True, is_default=True)
    if is_rhand is None:
        is_rhand = "LEFT" not in Path(path).name.upper()
    return HandModel(load_mano_arrays(path), tip_ids=tip_ids, is_rhand=is_rhand)
