"""Turn a resolved run config into objects: the template model (a hand, or a body for a config
with a ``body`` section), data sources, input pipelines, the network, and a network with a
checkpoint's weights.

Each function builds one thing from the config and the objects it needs, which the caller
hands in (a :class:`~handdgp_models.run.Run` builds each once). train, evaluate, predict, the
CLI and the benchmarks all build through this module, so a setting means the same thing
everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .body import SMPL_HINT, BodyModel, load_joint_regressor, load_smpl
from .cache import HIERARCHY, SYNTHETIC, cache_dir
from .config import RunConfig, SourceConfig
from .config.sections import DATASET_NAMES
from .data import CAMERA_DOMAINS, FreiHAND, InputPipeline, SyntheticHands
from .data.h36m import Human36M
from .data.ho3d import HO3D
from .data.mix import MixedDataset
from .hand import HandModel, load_mano
from .model import HandDGP, build_model
from .model.stored_mesh import StoredMesh
from .template import TemplateModel

__all__ = ["DEFAULT_SPLITS", "MANO_HINT", "build_body", "build_eval_regressor", "build_hand",
           "build_network", "build_pipeline", "build_source", "build_template",
           "build_test_data", "build_train_data", "check_backbone_weights", "check_roots",
           "load_weights", "resolve_device", "template_fingerprint", "warn_without_pretraining"]

#: Default split of each real dataset for the training and the test role.
DEFAULT_SPLITS = {"freihand": {"train": "training", "test": "evaluation"},
                  "ho3d": {"train": "train", "test": "evaluation"},
                  "h36m": {"train": "train", "test": "test"}}
MANO_HINT = ("pass --mano MANO_RIGHT.pkl (the right-hand model of the MANO release, "
             "mano.is.tue.mpg.de, after registering; the .pkl or an .npz of its arrays)")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def build_hand(cfg: RunConfig, roles: tuple[str, ...] = ("train",)) -> HandModel:
    """The hand model of ``cfg`` (``hand.mano`` or the embedded hand).

    Raises:
        ValueError: a real dataset among the sources of ``roles`` and no MANO file, or a
            MANO path that does not exist, naming ``hand.mano`` / ``--mano``.
    """
    real = cfg.real_datasets(roles)
    if cfg.hand.mano is None:
        if real:
            raise ValueError(f"hand.mano: {' and '.join(real)} need the MANO hand mesh "
                             f"(their vertices, faces and joint regressor); {MANO_HINT}")
        return load_mano(None, tip_ids=cfg.tip_ids())
    if not Path(cfg.hand.mano).is_file():
        raise ValueError(f"hand.mano (--mano): no file {cfg.hand.mano}; {MANO_HINT}")
    return load_mano(cfg.hand.mano, tip_ids=cfg.tip_ids())


def build_body(cfg: RunConfig, roles: tuple[str, ...] = ("train",)) -> BodyModel:
    """The body model of ``cfg`` (``body.smpl`` or the embedded body).

    Raises:
        ValueError: Human3.6M among the sources of ``roles`` and no SMPL file, or an SMPL
            path that does not exist, naming ``body.smpl`` / ``--smpl``.
    """
    if cfg.body is None:
        raise ValueError("body: the config has no body section (use --config h36m)")
    if cfg.body.smpl is None:
        real = cfg.real_datasets(roles)
        if real:
            raise ValueError(f"body.smpl: {' and '.join(real)} need the SMPL body mesh (the "
                             f"fits are SMPL parameters); {SMPL_HINT}")
        return load_smpl(None)
    if not Path(cfg.body.smpl).is_file():
        raise ValueError(f"body.smpl (--smpl): no file {cfg.body.smpl}; {SMPL_HINT}")
    return load_smpl(cfg.body.smpl)


def build_template(cfg: RunConfig, roles: tuple[str, ...] = ("train",)) -> TemplateModel:
    """The template model of ``cfg``: the body with a ``body`` section, else the hand.

    Args:
        roles: the data roles (``"train"``, ``"test"``) whose real datasets need the real mesh.

    Raises:
        ValueError: a missing model file, naming the key.
    """
    return build_body(cfg, roles) if cfg.body is not None else build_hand(cfg, roles)


def build_eval_regressor(cfg: RunConfig, template: TemplateModel) -> np.ndarray | None:
    """``body.h36m_regressor`` as a (17, V) array for ``template``'s mesh, or None."""
    if cfg.body is None or cfg.body.h36m_regressor is None:
        return None
    return load_joint_regressor(cfg.body.h36m_regressor, int(template.template.shape[0]))


def template_fingerprint(template: TemplateModel) -> str:
    """A short hash of the template mesh (vertices and faces, a hand's or a body's) a network
    is tied to."""
    h = hashlib.sha1(template.template.double().numpy().astype("float32").tobytes())
    h.update(template.faces.numpy().astype("int64").tobytes())
    return h.hexdigest()[:16]


def _synthetic_camera(src: SourceConfig):
    domain = CAMERA_DOMAINS[src.camera]
    if src.depth is None:
        return domain
    return dataclasses.replace(domain, depth=(float(src.depth[0]), float(src.depth[1])))


def build_source(src: SourceConfig, role: str, template: TemplateModel,
                 cache_root: str | os.PathLike | None = None, key: str = "data.test") -> Dataset:
    """One dataset of the project's sample contract.

    Args:
        src: the source's settings; role: ``"train"`` or ``"test"`` (picks the default
            split); template: the template model (synthetic rendering, HO3D vertices; the
            body for Human3.6M's SMPL fits); cache_root: the run's ``cache_dir`` (the root of
            every cache; None: the policy's default, :mod:`handdgp_models.cache`); key: the
            source's config key, for errors.
    """
    if src.dataset == "synthetic":
        return SyntheticHands(src.samples, src.seed, camera=_synthetic_camera(src),
                              occlusion_prob=src.occlusion_prob,
                              orientation_spread=src.orientation_spread, hand_model=template,
                              cache_dir=cache_dir(SYNTHETIC, cache_root))
    _check_root(src, key)
    split = src.split or DEFAULT_SPLITS[src.dataset][role]
    if src.dataset == "freihand":
        ds: Dataset = FreiHAND(src.root, split, src.versions, cache_root=cache_root)
    elif src.dataset == "h36m":
        ds = Human36M(src.root, split, body=template)
    else:
        ds = HO3D(src.root, split, mano=template)
    if src.samples is not None and src.samples < len(ds):
        name_attr = getattr(ds, "name", src.dataset)
        ds = Subset(ds, range(src.samples))
        ds.name = name_attr
    return ds


def _check_root(src: SourceConfig, key: str) -> None:
    if src.dataset != "synthetic" and src.root is None:
        raise ValueError(f"{key}.root: {DATASET_NAMES[src.dataset]} needs its dataset "
                         "directory; pass --data-root ROOT")


def check_roots(cfg: RunConfig, roles: tuple[str, ...]) -> None:
    """Every real data source of ``roles`` names its directory (checked before any data is
    built)."""
    for key, src in cfg.data.sources(roles):
        _check_root(src, key)


def build_train_data(cfg: RunConfig, template: TemplateModel, *,
                     progress: bool = False) -> Dataset:
    """The training set: one source, or a :class:`MixedDataset` of several by weight
    (synthetic sources are rendered into the cache first)."""
    parts = []
    for k, src in enumerate(cfg.data.train):
        ds = build_source(src, "train", template, cfg.cache_dir, f"data.train.{k}")
        if src.dataset == "synthetic":
            ds.render_all(progress=progress, desc=f"render train {k}")
        parts.append(ds)
    if len(parts) == 1:
        return parts[0]
    return MixedDataset(parts, [s.weight for s in cfg.data.train], seed=cfg.train.seed)


def build_test_data(cfg: RunConfig, template: TemplateModel, *,
                    progress: bool = False) -> Dataset:
    """The evaluation set (``data.test``)."""
    ds = build_source(cfg.data.test, "test", template, cfg.cache_dir, "data.test")
    if cfg.data.test.dataset == "synthetic":
        ds.render_all(progress=progress, desc="render test")
    return ds


def build_pipeline(cfg: RunConfig, template: TemplateModel, train: bool) -> InputPipeline:
    """The input pipeline: ``cfg.input`` at the network's input size and canonical focal,
    about the template's root keypoint."""
    return InputPipeline(cfg.input, out_size=cfg.model.input_size, focal=cfg.model.focal,
                         train=train, root_index=template.root_index)


def check_backbone_weights(cfg: RunConfig) -> None:
    """``model.backbone_weights`` names a file, if set (checked before any data is built)."""
    weights = cfg.model.backbone_weights
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"model.backbone_weights (--backbone-weights): no file {weights} (a "
                         f"torchvision {cfg.model.backbone} state dict)")


def build_network(cfg: RunConfig, template: TemplateModel, *, pretrained: bool = True,
                  stored: StoredMesh | None = None) -> HandDGP:
    """The network of ``cfg.model`` on the template's mesh, or on a stored mesh.

    Args:
        pretrained: load ``model.backbone_weights`` (if set) into the backbone; False for a
            network that will receive a checkpoint's weights.
        stored: the hierarchy and regressor a checkpoint holds (``model.mesh = "stored"``).

    Raises:
        ValueError: ``model.mesh = "stored"`` without a stored mesh, or one that does not fit
            the template's keypoints and vertices.
    """
    net_cfg = cfg.model
    if pretrained:
        check_backbone_weights(cfg)
    else:
        net_cfg = dataclasses.replace(net_cfg, backbone_weights=None)
    if net_cfg.mesh == "template":
        return build_model(net_cfg, template, cache_dir=cache_dir(HIERARCHY, cfg.cache_dir))
    if stored is None:
        raise ValueError("model.mesh: 'stored' takes the mesh hierarchy and keypoint regressor "
                         "from a checkpoint that holds them (one written by `handdgp "
                         "convert-official`, or trained from one with `train --init`)")
    want = (template.num_keypoints, int(template.template.shape[0]))
    if tuple(stored.regressor.shape) != want:
        raise ValueError(f"model.mesh: the stored mesh regresses {stored.regressor.shape[0]} "
                         f"keypoints from {stored.regressor.shape[1]} vertices, the template "
                         f"has {want[0]} keypoints and {want[1]} vertices")
    return HandDGP(net_cfg, stored.hierarchy, stored.regressor.float(), stored.faces,
                   template.root_index)


def load_weights(model: HandDGP, state: dict, template: TemplateModel, cfg: RunConfig,
                 path: str | os.PathLike) -> HandDGP:
    """Load a checkpoint's weights (``state``, read from ``path``) into ``model``, after
    checking that it was trained on ``template``'s mesh.

    Raises:
        ValueError: the checkpoint was trained on another mesh (naming the option to pass).
    """
    stored = state.get("template", state.get("hand"))
    if stored is not None and stored != template_fingerprint(template):
        if cfg.body is not None:
            raise ValueError(f"{path}: trained on another body mesh than "
                             f"{cfg.body.smpl or 'the embedded default body'}; pass the SMPL "
                             "file it was trained with (--smpl)")
        raise ValueError(f"{path}: trained on another hand mesh than "
                         f"{cfg.hand.mano or 'the embedded default hand'}; pass the MANO file "
                         "it was trained with (--mano)")
    model.load_state_dict(state["model"])
    return model


def warn_without_pretraining(cfg: RunConfig) -> None:
    """The paper initialises the backbone from ImageNet; say so when real data trains without."""
    if cfg.model.backbone_weights is None and cfg.real_datasets(("train",)):
        warnings.warn(
            f"model.backbone_weights is not set: the {cfg.model.backbone} backbone trains from "
            "scratch, while the paper starts from ImageNet weights. Pass --backbone-weights "
            f"PATH (a torchvision {cfg.model.backbone} state dict saved with torch.save).",
            stacklevel=2)
