"""The official HandDGP weights as a checkpoint of this project (``handdgp convert-official``).

The authors' release ships one FreiHAND checkpoint (ResNet-50): a Lightning-style dict whose
``state_dict`` names carry a ``model.`` prefix. It is read without running anything from it:
``torch.load(weights_only=True)``, which rebuilds tensors, dicts, lists, tuples, numbers and
strings and refuses every other global. Its weights are renamed onto the network of
``model.variant = "release"`` (the release's layer details) built on MobRecon's mesh hierarchy
and regressor (:func:`~handdgp_models.model.mobrecon.load_mobrecon_template`), every name and
shape is checked, and the result is written as an ordinary checkpoint of this project whose
``"mesh"`` entry holds that hierarchy, its spirals and the regressor, so that ``eval``,
``predict`` and ``train --init`` need nothing else.

Name map (release → this project): ``backbone.conv1``/``bn1``/``layer1-4`` → ``backbone.0``/
``1``/``4-7`` (torchvision's ResNet-50 trunk); ``decoder2d_latent`` → ``keypoints.conv``;
``decoder2d.{0,1,2}.0`` → ``keypoints.mlp.{0,2,4}``; ``decoder3d_latent.0`` →
``mesh.reduce.0``; ``decoder3d.preprocess_layer.0`` → ``mesh.reduce.2``;
``decoder3d.upsample_matrix`` → ``mesh.lift``; ``decoder3d.spiral_layers.<i>.conv`` /
``decoder3d.final_layer`` → ``mesh.convs.<i>`` / ``mesh.out`` (``spatial_layer`` (C, 1, 3, 3) →
``depthwise`` (C, 9), row-major; ``channel_layer`` → ``pointwise``); ``decoderw_latent`` →
``weight_head.conv``; ``decoderw`` → ``weight_head.mlp``. The release's buffers
``decoder3d.up_transform.<i>`` and ``j_reg``, when present, are compared with MobRecon's
template instead of loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import torch

from .checkpoint import CheckpointError, save_checkpoint
from .config import RunConfig, load_config, to_dict
from .errors import one_line
from .model.mobrecon import REGRESSOR_FILE, TRANSFORM_FILE, load_mobrecon_template
from .model.stored_mesh import StoredMesh

__all__ = ["OFFICIAL_OVERRIDES", "convert_official", "official_config", "read_official_state",
           "release_name"]

#: The converted network: the paper's FreiHAND settings with the release's layer details and
#: the mesh stored in the checkpoint.
OFFICIAL_BASE = "freihand"
OFFICIAL_OVERRIDES = ('model.variant="release"', 'model.mesh="stored"')
_PREFIX = "model."
# this project's name -> the release's (first match); groups are kept
_RULES = (
    (r"^backbone\.0\.", "backbone.conv1."),
    (r"^backbone\.1\.", "backbone.bn1."),
    (r"^backbone\.([4-7])\.", lambda m: f"backbone.layer{int(m[1]) - 3}."),
    (r"^keypoints\.conv\.", "decoder2d_latent."),
    (r"^keypoints\.mlp\.([024])\.weight$", lambda m: f"decoder2d.{int(m[1]) // 2}.0.weight"),
    (r"^mesh\.reduce\.0\.", "decoder3d_latent.0."),
    (r"^mesh\.reduce\.2\.weight$", "decoder3d.preprocess_layer.0.weight"),
    (r"^mesh\.lift$", "decoder3d.upsample_matrix"),
    (r"^mesh\.convs\.(\d+)\.depthwise$", r"decoder3d.spiral_layers.\1.conv.spatial_layer.weight"),
    (r"^mesh\.convs\.(\d+)\.pointwise\.weight$",
     r"decoder3d.spiral_layers.\1.conv.channel_layer.weight"),
    (r"^mesh\.out\.depthwise$", "decoder3d.final_layer.spatial_layer.weight"),
    (r"^mesh\.out\.pointwise\.weight$", "decoder3d.final_layer.channel_layer.weight"),
    (r"^weight_head\.conv\.", "decoderw_latent."),
    (r"^weight_head\.mlp\.", "decoderw."),
)
_OPTIONAL = re.compile(r"\.num_batches_tracked$")  # BatchNorm counters: default 0 when absent
_COMPARED = re.compile(r"^(decoder3d\.up_transform\.\d+|j_reg)$")  # checked, not loaded


def release_name(key: str) -> str:
    """The release's name of this project's state-dict entry ``key`` (``key`` itself when no
    rule maps it)."""
    for pattern, repl in _RULES:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return key


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_official_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The release's weights, names without the ``model.`` prefix.

    Args:
        path: the official checkpoint (a dict with ``"state_dict"``), or a bare state dict.

    Raises:
        CheckpointError: naming the file: missing, unreadable, holding a global other than
            tensors and plain containers (never executed), or without a state dict of named
            tensors.
    """
    path = Path(path)
    where = f"official checkpoint {path}"
    if not path.is_file():
        raise CheckpointError(f"{where}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):  # not a pickle at all
            raise CheckpointError(f"{where}: not a readable torch checkpoint") from exc
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"the global {found[1]!r}" if found else "an object other than tensors, dicts, " \
            "lists, numbers and strings"
        raise CheckpointError(f"{where}: refused: it holds {what} (only tensors, dicts, lists, "
                              "numbers and strings are read; nothing in it is executed)") from exc
    except (RuntimeError, EOFError, ValueError, KeyError, OSError) as exc:
        detail = one_line(str(exc))[:200]
        detail = detail if len(detail) > 8 else "empty, truncated or not a torch file"
        raise CheckpointError(f"{where}: not a readable torch checkpoint ({detail})") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{where}: no 'state_dict' (expected the release's Lightning "
                              "checkpoint)")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{where}: state_dict entries that are not named tensors: "
                              f"{sorted(map(str, bad))[:10]}")
    return {k[len(_PREFIX):] if k.startswith(_PREFIX) else k: v for k, v in state.items()}


def official_config(cache_dir: str | None = None) -> RunConfig:
    """The run config written into a converted checkpoint (:data:`OFFICIAL_OVERRIDES` over
    the ``freihand`` named config)."""
    extra = [] if cache_dir is None else [f"cache_dir={json.dumps(str(cache_dir))}"]
    return load_config(OFFICIAL_BASE, [*OFFICIAL_OVERRIDES, *extra])


def _release_shape(key: str, shape: torch.Size) -> tuple[int, ...]:
    """The release's shape of this project's entry ``key`` of ``shape``."""
    if key.endswith("depthwise"):  # (C, L) <- a depth-wise (C, 1, sqrt L, sqrt L) kernel
        side = round(shape[1] ** 0.5)
        return (shape[0], 1, side, side)
    return tuple(shape)


def _renamed(release: dict, target: dict, where: str, ignore_unexpected: bool) -> dict:
    """This project's state dict ``target`` filled with the release's tensors.

    Raises:
        CheckpointError: missing names, wrong shapes, non-finite values, or names the network
            does not have (unless ``ignore_unexpected``), each listed by the release's name.
    """
    out, missing, mismatched, bad = {}, [], [], []
    for key, ref in target.items():
        name = release_name(key)
        if name not in release:
            if _OPTIONAL.search(name):
                out[key] = ref.clone()
            else:
                missing.append(name)
            continue
        value, want = release[name], _release_shape(key, ref.shape)
        if tuple(value.shape) != want:
            mismatched.append(f"{name} {tuple(value.shape)} (expected {want})")
            continue
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(name)
        out[key] = value.reshape(ref.shape).to(ref.dtype).clone()
    known = {release_name(k) for k in target}
    unexpected = sorted(k for k in release if k not in known and not _COMPARED.match(k))
    problems = [f"{label}: {', '.join(items)}" for label, items in (
        ("missing", missing), ("wrong shape", mismatched), ("NaN or Inf", bad),
        ("unexpected (pass --ignore-unexpected if they are known to be unused)",
         [] if ignore_unexpected else unexpected)) if items]
    if problems:
        raise CheckpointError(f"{where}: does not hold the release's HandDGP network: "
                              + "; ".join(problems))
    return out


def _compare_template(release: dict, stored: StoredMesh, where: str) -> None:
    """The release's own copies of the up-sampling matrices and regressor, when it has them,
    must be MobRecon's: otherwise the weights belong to another mesh."""
    h = stored.hierarchy
    pairs = [(f"decoder3d.up_transform.{i}", h.up_matrix(i), f"{TRANSFORM_FILE} up_transform[{i}]")
             for i in range(len(h.up_index))]
    pairs.append(("j_reg", stored.regressor, REGRESSOR_FILE))
    for name, expected, source in pairs:
        value = release.get(name)
        if value is None:
            continue
        value = value.double()
        while value.ndim > expected.ndim:  # a batch of copies, or the (1, K, V) regressor
            value = value[0]
        if value.shape != expected.shape or not torch.allclose(value, expected.double(),
                                                               atol=1e-6, rtol=0):
            raise CheckpointError(f"{where}: its {name} differs from {source}: the weights "
                                  "were trained on another mesh template")


def convert_official(checkpoint: str | os.PathLike, template_dir: str | os.PathLike,
                     out: str | os.PathLike, *, ignore_unexpected: bool = False) -> Path:
    """Convert the official weights into a checkpoint of this project at ``out``.

    Args:
        checkpoint: the release's checkpoint file.
        template_dir: MobRecon's ``template`` folder (``transform.pkl``, ``j_reg.npy``).
        out: the checkpoint to write.
        ignore_unexpected: skip release weights the network has no place for, instead of
            refusing the file.

    Returns:
        ``out`` as a path.

    Raises:
        CheckpointError: an unreadable or unsafe checkpoint, or weights that do not fit
            (listing the names).
        ValueError: MobRecon's template files are missing or malformed (naming them).
    """
    from .build import build_network, build_template

    checkpoint, out = Path(checkpoint), Path(out)
    stored = load_mobrecon_template(template_dir)
    release = read_official_state(checkpoint)
    where = f"official checkpoint {checkpoint}"
    cfg = official_config()
    net = build_network(cfg, build_template(cfg, roles=()), pretrained=False, stored=stored)
    net.load_state_dict(_renamed(release, net.state_dict(), where, ignore_unexpected))
    _compare_template(release, stored, where)
    template_dir = Path(template_dir)
    provenance = {"checkpoint": checkpoint.name, "checkpoint_sha256": _sha256(checkpoint),
                  **{f"{name}_sha256": _sha256(template_dir / name)
                     for name in (TRANSFORM_FILE, REGRESSOR_FILE)}}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, {"model": net.state_dict(), "config": json.dumps(to_dict(cfg)),
                          "mesh": stored.to_state(), "converted_from": provenance})
    return out
