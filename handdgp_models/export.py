"""Deployable predictors: the trained network as a ``torch.export`` program compiled into an
AOTInductor package (``.pt2``), with what a caller needs recorded beside it.

:func:`export_network` exports the network in eval mode (rectified crops, their intrinsics and
rotations → camera-space joints and vertices in the original camera) with a dynamic batch
dimension; :func:`write_package` compiles it with AOTInductor and writes the package and its
metadata (``model.json`` beside ``model.pt2``: the canonical camera, the input settings, the
mesh faces, the keypoint order, the skeleton). :class:`PackagedPredictor` runs a package on
images: it needs torch, dgp_ops (whose ops the package calls) and the input pipeline, not the
training objects (no template model, mesh hierarchy or network is built).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import PipelineConfig, section_from_dict, to_dict
from .data import InputPipeline
from .files import write_json
from .model import HandDGP
from .predict import HandPredictor

__all__ = ["MAX_BATCH", "OUTPUTS", "PACKAGE_FORMAT", "DeployedNetwork", "PackagedPredictor",
           "check_package_path", "export_network", "metadata_path", "write_package"]

#: Names of the exported program's outputs, in order.
OUTPUTS = ("joints", "verts", "translation", "weights", "valid", "kp2d")
#: Largest batch an exported program accepts (a bound the exporter needs for the dynamic dim).
MAX_BATCH = 1024
#: Version of the metadata written beside a package.
PACKAGE_FORMAT = 1


class DeployedNetwork(nn.Module):
    """The network's prediction as plain tensors, for export.

    ``forward(image (B, 3, S, S) in [0, 1], K (B, 3, 3), R (B, 3, 3))`` takes rectified crops
    with their intrinsics and the rotations from the original camera into theirs (the input
    pipeline's ``image``, ``K``, ``R``) and returns :data:`OUTPUTS`: ``joints`` (B, K, 3) and
    ``verts`` (B, V, 3) in metres in the original camera, ``translation`` (B, 3) the root
    there, ``weights`` (B, K), ``valid`` (B,) bool (False: a degenerate DGP system), ``kp2d``
    (B, K, 2) rectified pixels.
    """

    def __init__(self, network: HandDGP) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor, K: torch.Tensor, R: torch.Tensor):
        out = self.network(image, K, R)
        translation = (out["t"][:, None] @ R)[:, 0]
        return (out["joints_orig"], out["verts_orig"], translation, out["weights"],
                out["valid"], out["kp2d"])


def _example_inputs(size: int, batch: int, device: torch.device | str):
    f = float(size)
    K = torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])
    return (torch.rand(batch, 3, size, size, device=device),
            K.expand(batch, 3, 3).contiguous().to(device),
            torch.eye(3).expand(batch, 3, 3).contiguous().to(device))


def export_network(network: HandDGP, device: torch.device | str = "cpu"):
    """``torch.export`` of the network in eval mode with a dynamic batch dimension.

    Returns:
        The ``ExportedProgram`` of :class:`DeployedNetwork` on ``device``.
    """
    module = DeployedNetwork(network).to(device).eval()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dims = {"image": {0: batch}, "K": {0: batch}, "R": {0: batch}}
    with torch.no_grad():
        return torch.export.export(module, _example_inputs(network.config.input_size, 2, device),
                                   dynamic_shapes=dims)


def metadata_path(package: str | os.PathLike) -> Path:
    """The metadata file beside a package: ``model.json`` for ``model.pt2``."""
    return Path(package).with_suffix(".json")


def check_package_path(out: str | os.PathLike) -> Path:
    """``out`` as a package path (a ``.pt2`` file), or an error naming ``--out``."""
    out = Path(out)
    if out.suffix != ".pt2":
        raise ValueError(f"--out: an AOTInductor package is a .pt2 file, got {out}")
    return out


def write_package(network: HandDGP, input_config: PipelineConfig, template,
                  out: str | os.PathLike, device: torch.device | str = "cpu") -> Path:
    """Export the network, compile it with AOTInductor into ``out`` (a ``.pt2``) and write its
    metadata beside it (:func:`metadata_path`).

    Args:
        network: the trained network (its config gives the input size and canonical focal).
        input_config: the run's ``input`` section (rectification mode, crop scale, ...).
        template: the template model (faces, root keypoint, skeleton).
        device: ``"cpu"`` or ``"cuda"``: where the package runs.

    Returns:
        The package path.
    """
    out = check_package_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    program = export_network(network, device)
    torch._inductor.aoti_compile_and_package(program, package_path=str(out))
    cfg = network.config
    write_json(metadata_path(out), {
        "format": PACKAGE_FORMAT, "device": str(torch.device(device).type),
        "input_size": cfg.input_size, "focal": cfg.focal, "input": to_dict(input_config),
        "outputs": list(OUTPUTS), "root_index": int(network.root_index),
        "num_keypoints": int(network.regressor.shape[0]),
        "faces": network.faces.cpu().numpy(), "bones": [list(b) for b in template.bones],
        "torch": torch.__version__, "units": "metres"}, indent=1)
    return out


class PackagedPredictor(HandPredictor):
    """Camera-space predictions from an AOTInductor package written by :func:`write_package`
    (the same calls as :class:`handdgp_models.engine.Predictor`).

    Args:
        package: the ``.pt2`` file (its metadata beside it).

    Attributes:
        faces: (F, 3) mesh triangles; bones: the skeleton's keypoint pairs; metadata: the
            whole metadata record.
    """

    def __init__(self, package: str | os.PathLike) -> None:
        import dgp_ops  # noqa: F401  (registers the ops the package calls)

        package = Path(package)
        if not package.is_file():
            raise ValueError(f"--package: no file {package}")
        meta = metadata_path(package)
        try:
            self.metadata = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--package: cannot read its metadata {meta} ({exc})") from exc
        if self.metadata.get("format") != PACKAGE_FORMAT:
            raise ValueError(f"{meta}: not package metadata of format {PACKAGE_FORMAT}")
        self.device = torch.device(self.metadata["device"])
        self.program = torch._inductor.aoti_load_package(str(package))
        config = section_from_dict(PipelineConfig, self.metadata["input"], "input", str(meta))
        self.pipeline = InputPipeline(config, out_size=self.metadata["input_size"],
                                      focal=self.metadata["focal"], train=False,
                                      root_index=self.metadata["root_index"])
        self.faces = np.asarray(self.metadata["faces"], dtype=np.int64)
        self.bones = tuple(tuple(b) for b in self.metadata["bones"])

    @torch.no_grad()
    def network(self, image: torch.Tensor, K: torch.Tensor,
                R: torch.Tensor) -> dict[str, np.ndarray]:
        out = self.program(*(x.to(self.device) for x in (image, K, R)))
        return {name: x.cpu().numpy() for name, x in zip(OUTPUTS, out, strict=True)}
