"""Turn a run config into objects: the template model (a hand, or a body for a config with a
``body`` section), data sources, input pipelines, the network and a model from a checkpoint.

train, evaluate, predict, the CLI and the benchmarks all build through this module, so a
setting means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .body import BODY_BONES, SMPL_HINT, BodyModel, load_joint_regressor, load_smpl
from .body import ROOT_INDEX as BODY_ROOT_INDEX
from .checkpoint import load_checkpoint
from .config import RunConfig, SourceConfig, config_from_dict
from .data import CAMERA_DOMAINS, FreiHAND, HandInputPipeline, SyntheticHands
from .data.h36m import Human36M
from .data.ho3d import HO3D
from .data.mix import MixedDataset
from .hand import ROOT_INDEX as HAND_ROOT_INDEX
from .hand import HandModel, load_mano
from .model import HandDGP, build_model

__all__ = ["DEFAULT_SPLITS", "build_body", "build_eval_regressor", "build_hand",
           "build_network", "build_pipeline", "build_source", "build_template",
           "build_test_data", "build_train_data", "hand_fingerprint", "model_from_checkpoint",
           "needs_mano", "resolve_device", "template_bones", "template_root_index",
           "warn_without_pretraining"]

#: Default split of each real dataset for the training and the test role.
DEFAULT_SPLITS = {"freihand": {"train": "training", "test": "evaluation"},
                  "ho3d": {"train": "train", "test": "evaluation"},
                  "h36m": {"train": "train", "test": "test"}}
_DATASET_NAMES = {"freihand": "FreiHAND", "ho3d": "HO3D-v2", "h36m": "Human3.6M"}
_BODY_DATASETS = ("h36m",)
MANO_HINT = ("pass --mano MANO_RIGHT.pkl (the right-hand model of the MANO release, "
             "mano.is.tue.mpg.de, after registering; the .pkl or an .npz of its arrays)")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def _sources(cfg: RunConfig, roles: tuple[str, ...]) -> list[SourceConfig]:
    out: list[SourceConfig] = []
    if "train" in roles:
        out += cfg.data.train
    if "test" in roles:
        out.append(cfg.data.test)
    return out


def needs_mano(cfg: RunConfig, roles: tuple[str, ...] = ("train", "test")) -> list[str]:
    """Names of the real datasets among the sources of ``roles`` (they need the real template
    mesh: MANO's, or SMPL's for Human3.6M)."""
    return sorted({_DATASET_NAMES[s.dataset] for s in _sources(cfg, roles)
                   if s.dataset != "synthetic"})


def _tip_ids(cfg: RunConfig) -> str:
    if cfg.hand.tip_ids is not None:
        return cfg.hand.tip_ids
    return "ho3d" if cfg.data.train[0].dataset == "ho3d" else "freihand"


def build_hand(cfg: RunConfig, roles: tuple[str, ...] = ("train",)) -> HandModel:
    """The hand model of ``cfg`` (``hand.mano`` or the embedded hand).

    Raises:
        ValueError: a real dataset among the sources of ``roles`` and no MANO file, or a
            MANO path that does not exist, naming ``hand.mano`` / ``--mano``.
    """
    real = needs_mano(cfg, roles)
    if cfg.hand.mano is None:
        if real:
            raise ValueError(f"hand.mano: {' and '.join(real)} need the MANO hand mesh "
                             f"(their vertices, faces and joint regressor); {MANO_HINT}")
        return load_mano(None, tip_ids=_tip_ids(cfg))
    if not Path(cfg.hand.mano).is_file():
        raise ValueError(f"hand.mano (--mano): no file {cfg.hand.mano}; {MANO_HINT}")
    return load_mano(cfg.hand.mano, tip_ids=_tip_ids(cfg))


def _check_sources(cfg: RunConfig, roles: tuple[str, ...]) -> None:
    """Body datasets need a ``body`` section; hand datasets a config without one."""
    keys = ([f"data.train.{k}" for k in range(len(cfg.data.train))] if "train" in roles else [])
    keys += ["data.test"] if "test" in roles else []
    for key, src in zip(keys, _sources(cfg, roles), strict=True):
        if cfg.body is None and src.dataset in _BODY_DATASETS:
            raise ValueError(f"{key}.dataset: {_DATASET_NAMES[src.dataset]} shows bodies and "
                             "needs the body model: use --config h36m (a config with a body "
                             f"section) and {SMPL_HINT}")
        if cfg.body is not None and src.dataset not in _BODY_DATASETS:
            raise ValueError(f"{key}.dataset: {src.dataset!r} shows hands, but the config has "
                             "a body section (the full-body variant); use a hand config")


def build_body(cfg: RunConfig, roles: tuple[str, ...] = ("train",)) -> BodyModel:
    """The body model of ``cfg`` (``body.smpl`` or the embedded body).

    Raises:
        ValueError: Human3.6M among the sources of ``roles`` and no SMPL file, or an SMPL
            path that does not exist, naming ``body.smpl`` / ``--smpl``.
    """
    if cfg.body is None:
        raise ValueError("body: the config has no body section (use --config h36m)")
    if cfg.body.smpl is None:
        real = needs_mano(cfg, roles)
        if real:
            raise ValueError(f"body.smpl: {' and '.join(real)} need the SMPL body mesh (the "
                             f"fits are SMPL parameters); {SMPL_HINT}")
        return load_smpl(None)
    if not Path(cfg.body.smpl).is_file():
        raise ValueError(f"body.smpl (--smpl): no file {cfg.body.smpl}; {SMPL_HINT}")
    return load_smpl(cfg.body.smpl)


def build_template(cfg: RunConfig,
                   roles: tuple[str, ...] = ("train",)) -> HandModel | BodyModel:
    """The template model of ``cfg``: the body with a ``body`` section, else the hand.

    Raises:
        ValueError: a source the template cannot show (a hand dataset in a body config or
            the reverse), or a missing model file, naming the key.
    """
    _check_sources(cfg, roles)
    return build_body(cfg, roles) if cfg.body is not None else build_hand(cfg, roles)


def template_root_index(cfg: RunConfig) -> int:
    """The root keypoint of ``cfg``'s template: the body's pelvis or the hand's wrist."""
    return BODY_ROOT_INDEX if cfg.body is not None else HAND_ROOT_INDEX


def template_bones(cfg: RunConfig) -> tuple[tuple[int, int], ...] | None:
    """The skeleton drawn over ``cfg``'s keypoints (None: the hand's)."""
    return BODY_BONES if cfg.body is not None else None


def build_eval_regressor(cfg: RunConfig, template) -> np.ndarray | None:
    """``body.h36m_regressor`` as a (17, V) array for ``template``'s mesh, or None."""
    if cfg.body is None or cfg.body.h36m_regressor is None:
        return None
    return load_joint_regressor(cfg.body.h36m_regressor, int(template.template.shape[0]))


def hand_fingerprint(hand: HandModel | BodyModel) -> str:
    """A short hash of the template mesh (vertices and faces, a hand's or a body's) a network
    is tied to."""
    h = hashlib.sha1(hand.template.double().numpy().astype("float32").tobytes())
    h.update(hand.faces.numpy().astype("int64").tobytes())
    return h.hexdigest()[:16]


def _synthetic_camera(src: SourceConfig, key: str):
    if src.camera not in CAMERA_DOMAINS:
        raise ValueError(f"{key}.camera: expected one of {list(CAMERA_DOMAINS)}, "
                         f"got {src.camera!r}")
    domain = CAMERA_DOMAINS[src.camera]
    if src.depth is None:
        return domain
    return dataclasses.replace(domain, depth=(float(src.depth[0]), float(src.depth[1])))


def build_source(src: SourceConfig, role: str, hand: HandModel | BodyModel, cache_dir: Path,
                 key: str) -> Dataset:
    """One dataset of the project's sample contract.

    Args:
        src: the source's settings; role: ``"train"`` or ``"test"`` (picks the default
            split); hand: the template model (synthetic rendering, HO3D vertices; the body for
            Human3.6M's SMPL fits); cache_dir: where rendered synthetic images are kept; key:
            the source's config key, for errors.
    """
    if src.dataset == "synthetic":
        if src.samples is None:
            raise ValueError(f"{key}.samples: a synthetic source needs a number of images")
        return SyntheticHands(src.samples, src.seed, camera=_synthetic_camera(src, key),
                              occlusion_prob=src.occlusion_prob,
                              orientation_spread=src.orientation_spread, hand_model=hand,
                              cache_dir=cache_dir)
    name = _DATASET_NAMES[src.dataset]
    if src.root is None:
        raise ValueError(f"{key}.root: {name} needs its dataset directory; pass --data-root ROOT")
    split = src.split or DEFAULT_SPLITS[src.dataset][role]
    if src.dataset == "freihand":
        ds: Dataset = FreiHAND(src.root, split, src.versions)
    elif src.dataset == "h36m":
        ds = Human36M(src.root, split, body=hand)
    else:
        ds = HO3D(src.root, split, mano=hand)
    if src.samples is not None and src.samples < len(ds):
        name_attr = getattr(ds, "name", src.dataset)
        ds = Subset(ds, range(src.samples))
        ds.name = name_attr
    return ds


def _cache_dir(cfg: RunConfig, out_dir: str | os.PathLike) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path(out_dir) / "data"


def build_train_data(cfg: RunConfig, out_dir: str | os.PathLike, hand: HandModel, *,
                     progress: bool = False) -> Dataset:
    """The training set: one source, or a :class:`MixedDataset` of several by weight."""
    cache = _cache_dir(cfg, out_dir)
    parts = []
    for k, src in enumerate(cfg.data.train):
        ds = build_source(src, "train", hand, cache, f"data.train.{k}")
        if src.dataset == "synthetic":
            ds.render_all(progress=progress, desc=f"render train {k}")
        parts.append(ds)
    if len(parts) == 1:
        return parts[0]
    return MixedDataset(parts, [s.weight for s in cfg.data.train], seed=cfg.train.seed)


def build_test_data(cfg: RunConfig, out_dir: str | os.PathLike, hand: HandModel, *,
                    progress: bool = False) -> Dataset:
    """The evaluation set (``data.test``)."""
    ds = build_source(cfg.data.test, "test", hand, _cache_dir(cfg, out_dir), "data.test")
    if cfg.data.test.dataset == "synthetic":
        ds.render_all(progress=progress, desc="render test")
    return ds


def build_pipeline(cfg: RunConfig, train: bool) -> HandInputPipeline:
    """The input pipeline: ``cfg.input`` at the network's input size and canonical focal."""
    pc = dataclasses.replace(cfg.input, out_size=cfg.model.input_size, focal=cfg.model.focal,
                             train=train, two_views=cfg.input.two_views and train,
                             root_index=template_root_index(cfg))
    return HandInputPipeline(pc)


def build_network(cfg: RunConfig, hand: HandModel | BodyModel) -> HandDGP:
    """The network of ``cfg.model`` on the template's mesh (ImageNet weights if configured)."""
    weights = cfg.model.backbone_weights
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"model.backbone_weights: no file {weights} (a torchvision "
                         f"{cfg.model.backbone} state dict)")
    return build_model(cfg.model, hand, cache_dir=cfg.train.hierarchy_cache)


def warn_without_pretraining(cfg: RunConfig) -> None:
    """The paper initialises the backbone from ImageNet; say so when real data trains without."""
    if cfg.model.backbone_weights is None and needs_mano(cfg, ("train",)):
        warnings.warn(
            f"model.backbone_weights is not set: the {cfg.model.backbone} backbone trains from "
            "scratch, while the paper starts from ImageNet weights. Pass --backbone-weights "
            f"PATH (a torchvision {cfg.model.backbone} state dict saved with torch.save).",
            stacklevel=2)


def model_from_checkpoint(path: str | os.PathLike, *, mano: str | None = None,
                          smpl: str | None = None, device: torch.device | str = "cpu",
                          hierarchy_cache: str | None = None) -> tuple[HandDGP, RunConfig]:
    """Rebuild the network of a training checkpoint and load its weights.

    Args:
        path: ``RUN/checkpoint.pt``.
        mano: the MANO file on this machine (default: the path stored in the checkpoint).
        smpl: the SMPL file of a body checkpoint (default: the stored path).
        device: where the model goes.
        hierarchy_cache: mesh-hierarchy cache folder (default: the checkpoint's setting).

    Returns:
        ``(model in eval mode, its run config)``.

    Raises:
        ValueError: not a checkpoint of this project, a missing MANO/SMPL file, or a mesh
            other than the one the checkpoint was trained with.
    """
    state = load_checkpoint(path)  # checks that it is a checkpoint with weights and a config
    cfg = config_from_dict(json.loads(state["config"]), f"checkpoint {path}")
    if mano is not None:
        cfg.hand.mano = str(mano)
    if smpl is not None:
        if cfg.body is None:
            raise ValueError(f"--smpl: {path} is a hand checkpoint (no body section)")
        cfg.body.smpl = str(smpl)
    if hierarchy_cache is not None:
        cfg.train.hierarchy_cache = str(hierarchy_cache)
    cfg.model.backbone_weights = None  # the checkpoint holds the trained backbone
    hand = build_template(cfg)
    stored = state.get("hand")
    if stored is not None and stored != hand_fingerprint(hand):
        if cfg.body is not None:
            raise ValueError(f"{path}: trained on another body mesh than "
                             f"{cfg.body.smpl or 'the embedded default body'}; pass the SMPL "
                             "file it was trained with (--smpl)")
        raise ValueError(f"{path}: trained on another hand mesh than "
                         f"{cfg.hand.mano or 'the embedded default hand'}; pass the MANO file "
                         "it was trained with (--mano)")
    model = build_network(cfg, hand)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg
