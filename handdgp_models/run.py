"""A run: one resolved configuration and the objects built from it, each built once.

:class:`Run` is what a command hands down to training, evaluation and prediction: the
config, the template model (asked for its ``bones`` and ``root_index``), the datasets (the
training set is reused for the evaluation baseline), the input pipelines, the networks, the
device, and the run folder's layout. Each object is built on first use through
:mod:`handdgp_models.build` and kept, so nothing is built twice in one command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import build
from .checkpoint import CheckpointError, load_checkpoint, restoring_from
from .config import RunConfig, RunOptions, config_from_dict, resolve_config
from .data import InputPipeline
from .layout import RunFolder
from .model import HandDGP
from .model.stored_mesh import StoredMesh
from .template import TemplateModel

__all__ = ["Run", "checkpoint_config", "model_from_checkpoint"]

#: Data roles whose real datasets a template must be able to show.
TRAIN, TEST = ("train",), ("test",)


def checkpoint_config(state: dict, path: str | os.PathLike, overrides: Sequence[str] = (),
                      options: RunOptions | None = None) -> RunConfig:
    """The run config stored in a checkpoint (read with :func:`load_checkpoint`), with the
    ``--set`` overrides and the command-line options applied through the strict path."""
    base = config_from_dict(json.loads(state["config"]), f"checkpoint {path}", stored=True)
    return resolve_config(base, overrides, options)


class Run:
    """A resolved run configuration and the objects built from it.

    Args:
        config: the resolved config (:func:`~handdgp_models.config.resolve_config`).
        folder: the run folder (training writes there), or None.
        roles: the data roles whose real datasets the template must be able to show
            (``"train"``, ``"test"``): a FreiHAND source needs the MANO file.
        progress: show progress bars while building (rendering synthetic data).
        checkpoint: ``(path, state)`` of a loaded checkpoint: the weights
            :meth:`trained_network` uses when the run has no folder, and those
            :meth:`initial_network` starts training from (fine-tuning).
    """

    def __init__(self, config: RunConfig, folder: str | os.PathLike | None = None, *,
                 roles: tuple[str, ...] = TRAIN + TEST, progress: bool = False,
                 checkpoint: tuple[Path, dict] | None = None) -> None:
        if not isinstance(config, RunConfig):
            raise TypeError(f"config: expected a RunConfig, got {type(config).__name__}")
        self.config = config
        self.folder = None if folder is None else RunFolder(folder)
        self.roles = roles
        self.progress = progress
        self._checkpoint = checkpoint
        build.check_roots(config, roles)  # before anything is built
        if config.model.mesh == "stored" and checkpoint is None:
            raise ValueError("model.mesh: 'stored' takes the mesh hierarchy and regressor from "
                             "a checkpoint; start from one with `train --init CHECKPOINT` (a "
                             "converted official checkpoint, `handdgp convert-official`)")

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, overrides: Sequence[str] = (),
                        options: RunOptions | None = None, *,
                        roles: tuple[str, ...] = TEST, progress: bool = False,
                        folder: str | os.PathLike | None = None) -> Run:
        """The run of a checkpoint: its stored config with ``overrides`` and ``options``
        (e.g. ``--mano``, ``--dataset``) applied.

        Args:
            folder: a run folder to train into, starting from the checkpoint's weights
                (``train --init``); None for evaluation and prediction.

        Raises:
            CheckpointError: not a readable checkpoint of this project (naming the file).
            ValueError: a bad override or option, naming the key.
        """
        path = Path(path)
        state = load_checkpoint(path)
        with restoring_from(path):
            cfg = checkpoint_config(state, path, overrides, options)
        return cls(cfg, folder, roles=roles, progress=progress, checkpoint=(path, state))

    @cached_property
    def template(self) -> TemplateModel:
        """The hand or body model (fails early when a real dataset has no MANO/SMPL file)."""
        return build.build_template(self.config, self.roles)

    @cached_property
    def train_data(self) -> Dataset:
        """The training set (synthetic sources rendered into the cache)."""
        return build.build_train_data(self.config, self.template, progress=self.progress)

    @cached_property
    def test_data(self) -> Dataset:
        """The evaluation set (``data.test``)."""
        return build.build_test_data(self.config, self.template, progress=self.progress)

    @cached_property
    def device(self) -> torch.device:
        """``train.device`` resolved (``"auto"``: CUDA when available)."""
        return build.resolve_device(self.config.train.device)

    @cached_property
    def eval_regressor(self) -> np.ndarray | None:
        """Human3.6M's 17-joint regressor for the body's mesh (``body.h36m_regressor``)."""
        return build.build_eval_regressor(self.config, self.template)

    @property
    def all_synthetic(self) -> bool:
        """Every source is synthetic (then the mean-translation baseline is computed)."""
        return all(s.dataset == "synthetic" for _, s in self.config.data.sources())

    def pipeline(self, train: bool) -> InputPipeline:
        """The input pipeline of training (augmented) or evaluation (deterministic)."""
        return build.build_pipeline(self.config, self.template, train)

    @property
    def checkpoint_path(self) -> Path | None:
        """The checkpoint the run was made from (None for a run of a config)."""
        return None if self._checkpoint is None else self._checkpoint[0]

    @cached_property
    def stored_mesh(self) -> StoredMesh | None:
        """The mesh hierarchy and regressor of the run's checkpoint, for ``model.mesh =
        "stored"`` (None otherwise, or without a checkpoint)."""
        if self.config.model.mesh != "stored" or self._checkpoint is None:
            return None
        return _stored_mesh(*self._checkpoint)

    def new_network(self) -> HandDGP:
        """A freshly initialised network (with ``model.backbone_weights`` if set)."""
        return build.build_network(self.config, self.template, stored=self.stored_mesh)

    def initial_network(self) -> HandDGP:
        """The network training starts from: the weights of the checkpoint the run was made
        from (fine-tuning), else :meth:`new_network`."""
        if self._checkpoint is None:
            return self.new_network()
        return self._network_from(*self._checkpoint).train()

    def trained_network(self, device: torch.device | str = "cpu",
                        checkpoint: str | os.PathLike | None = None) -> HandDGP:
        """The network with a checkpoint's weights, in eval mode on ``device``.

        Args:
            checkpoint: the file; None: the run folder's, or for a run without a folder the
                checkpoint it was loaded from.

        Raises:
            CheckpointError: the file is not a checkpoint of this project, or its weights do
                not fit this version of the model.
            ValueError: it was trained on another template mesh.
        """
        if checkpoint is None and self.folder is None:
            if self._checkpoint is None:
                raise ValueError("checkpoint: the run has no folder; name the checkpoint file")
            path, state = self._checkpoint
        else:
            path = Path(checkpoint) if checkpoint is not None else self.folder.checkpoint
            state = load_checkpoint(path)
        return self._network_from(path, state).to(device).eval()

    def _network_from(self, path: Path, state: dict) -> HandDGP:
        """The network of this run's config with the weights (and stored mesh) of ``state``."""
        stored = _stored_mesh(path, state) if self.config.model.mesh == "stored" else None
        with restoring_from(path):
            model = build.build_network(self.config, self.template, pretrained=False,
                                        stored=stored or self.stored_mesh)
            build.load_weights(model, state, self.template, self.config, path)
        return model


def _stored_mesh(path: Path, state: dict) -> StoredMesh | None:
    """The ``"mesh"`` entry of a loaded checkpoint, checked (None when it has none)."""
    if "mesh" not in state:
        return None
    try:
        return StoredMesh.from_state(state["mesh"], f"checkpoint {path}")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


def model_from_checkpoint(path: str | os.PathLike, overrides: Sequence[str] = (),
                          options: RunOptions | None = None,
                          device: torch.device | str = "cpu") -> tuple[HandDGP, RunConfig]:
    """Rebuild the network of a training checkpoint and load its weights.

    Args:
        path: ``RUN/checkpoint.pt``.
        overrides: ``key=value`` settings over the stored config (e.g. ``cache_dir=...``).
        options: e.g. ``RunOptions(mano=...)``: the MANO/SMPL file on this machine (default:
            the path stored in the checkpoint).
        device: where the model goes.

    Returns:
        ``(model in eval mode, its run config)``.

    Raises:
        ValueError: not a checkpoint of this project, a missing MANO/SMPL file, or a mesh
            other than the one the checkpoint was trained with.
    """
    run = Run.from_checkpoint(path, overrides, options, roles=())
    return run.trained_network(device), run.config
