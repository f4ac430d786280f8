"""A mesh hierarchy and keypoint regressor carried inside a checkpoint.

A network built with ``model.mesh = "stored"`` does not derive its hierarchy and keypoint
regressor from the template model: they come from the checkpoint (MobRecon's, for the
official HandDGP weights), so the checkpoint alone rebuilds the network. They are stored as a
flat dict of tensors (``vertices.<l>``, ``faces.<l>``, ``up_index.<l>``, ``up_weight.<l>``,
``spirals.<l>``, ``regressor``) and a ``source`` string, which ``torch.load(weights_only=True)``
reads without running code, and checked when read back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .mesh_hierarchy import MeshHierarchy

__all__ = ["StoredMesh"]

_PER_LEVEL = ("vertices", "faces", "spirals")
_PER_MAP = ("up_index", "up_weight")


@dataclass
class StoredMesh:
    """The mesh a network predicts on, when it is not the template's own hierarchy.

    Attributes:
        hierarchy: the levels, up-sampling maps and spirals (up-sampling weights may be
            negative and rows need not sum to 1).
        regressor: (K, V) vertices of level 0 → the K keypoints (OpenPose order for hands).
        source: where it came from, for people (e.g. ``"MobRecon template/transform.pkl"``).
    """

    hierarchy: MeshHierarchy
    regressor: torch.Tensor
    source: str = ""

    @property
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangles of level 0 (the predicted mesh)."""
        return torch.as_tensor(self.hierarchy.faces[0], dtype=torch.int64)

    def to_state(self) -> dict:
        """Plain tensors and one string, for a checkpoint's ``"mesh"`` entry."""
        h = self.hierarchy
        out: dict = {"regressor": self.regressor.double().clone(), "source": self.source}
        for level in range(len(h.vertices)):
            out[f"vertices.{level}"] = torch.as_tensor(h.vertices[level], dtype=torch.float64)
            out[f"faces.{level}"] = torch.as_tensor(h.faces[level], dtype=torch.int64)
            out[f"spirals.{level}"] = h.spirals[level].long().clone()
        for level in range(len(h.up_index)):
            out[f"up_index.{level}"] = h.up_index[level].long().clone()
            out[f"up_weight.{level}"] = h.up_weight[level].double().clone()
        return out

    @classmethod
    def from_state(cls, state: object, where: str) -> StoredMesh:
        """Read back :meth:`to_state`'s dict, checking every shape and index range.

        Raises:
            ValueError: naming ``where`` and the entry.
        """
        if not isinstance(state, dict):
            raise ValueError(f"{where}: 'mesh' is not a dict")
        levels = sum(1 for k in state if isinstance(k, str) and k.startswith("vertices."))

        def get(key: str, floating: bool) -> torch.Tensor:
            value = state.get(key)
            if not isinstance(value, torch.Tensor) or value.is_floating_point() != floating:
                raise ValueError(f"{where}: mesh entry {key!r} is missing or not a "
                                 f"{'floating' if floating else 'integer'} tensor")
            if floating and not bool(torch.isfinite(value).all()):
                raise ValueError(f"{where}: mesh entry {key!r} holds NaN or Inf")
            return value

        if levels < 2:
            raise ValueError(f"{where}: the stored mesh needs at least two levels")
        verts = [get(f"vertices.{i}", True) for i in range(levels)]
        sizes = [int(v.shape[0]) for v in verts]
        parts = {name: [get(f"{name}.{i}", name == "up_weight") for i in range(n)]
                 for name, n in (("faces", levels), ("spirals", levels),
                                 ("up_index", levels - 1), ("up_weight", levels - 1))}
        _check_levels(verts, parts, sizes, where)
        regressor = get("regressor", True)
        if regressor.ndim != 2 or regressor.shape[1] != sizes[0]:
            raise ValueError(f"{where}: mesh entry 'regressor' must be (K, {sizes[0]}), got "
                             f"{tuple(regressor.shape)}")
        hierarchy = MeshHierarchy([v.double().numpy() for v in verts],
                                  [f.long().numpy() for f in parts["faces"]],
                                  [i.long() for i in parts["up_index"]],
                                  [w.double() for w in parts["up_weight"]],
                                  [s.long() for s in parts["spirals"]])
        source = state.get("source", "")
        return cls(hierarchy, regressor.double(), source if isinstance(source, str) else "")


def _in_range(t: torch.Tensor, n: int) -> bool:
    return t.numel() == 0 or (int(t.min()) >= 0 and int(t.max()) < n)


def _check_levels(verts: list, parts: dict, sizes: list[int], where: str) -> None:
    """Shapes and index ranges of every level and map (ValueError naming the entry)."""
    for i, v in enumerate(verts):
        faces, spirals = parts["faces"][i], parts["spirals"][i]
        if v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"{where}: mesh entry 'vertices.{i}' must be (V, 3)")
        if faces.ndim != 2 or faces.shape[1] != 3 or not _in_range(faces, sizes[i]):
            raise ValueError(f"{where}: mesh entry 'faces.{i}' must be (F, 3) ids below "
                             f"{sizes[i]}")
        if (spirals.ndim != 2 or spirals.shape[0] != sizes[i] or spirals.shape[1] < 1
                or not _in_range(spirals, sizes[i])):
            raise ValueError(f"{where}: mesh entry 'spirals.{i}' must be ({sizes[i]}, L) ids "
                             f"below {sizes[i]}")
    lengths = {int(s.shape[1]) for s in parts["spirals"]}
    if len(lengths) != 1:
        raise ValueError(f"{where}: the stored spirals have different lengths {sorted(lengths)}")
    for i, (index, weight) in enumerate(zip(parts["up_index"], parts["up_weight"],
                                            strict=True)):
        if (index.ndim != 2 or index.shape[0] != sizes[i] or weight.shape != index.shape
                or not _in_range(index, sizes[i + 1])):
            raise ValueError(f"{where}: mesh entries 'up_index.{i}'/'up_weight.{i}' must be "
                             f"({sizes[i]}, k) with ids below {sizes[i + 1]}")
