"""Trainer: two-stage schedule, checkpoints with exact resume, optional DDP.

Exact resume: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)`` and the
augmentation of item ``i`` in epoch ``e`` is seeded by ``(seed, e, i)``, so a run restarted
from a checkpoint (model, optimiser, scheduler, RNG states, position in the epoch) sees the
same batches and reaches the same weights as an uninterrupted one.

:class:`Trainer` is the loop in named parts: :meth:`~Trainer.setup` (threads, seeds, data,
network, optimiser), :meth:`~Trainer.resume`, :meth:`~Trainer.step`, :meth:`~Trainer.save`,
:meth:`~Trainer.log_epoch` and :meth:`~Trainer.fit`, which runs them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .build import check_backbone_weights, template_fingerprint, warn_without_pretraining
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, to_dict
from .data.loader import EpochSampler, make_loader
from .files import strict_json, write_json
from .losses import camera_losses, consistency_losses, relative_losses, total_loss
from .run import TRAIN, Run
from .threads import ThreadGovernor

__all__ = ["EpochSampler", "Terminated", "Trainer", "load_checkpoint", "save_checkpoint",
           "to_device", "train"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption) during training: handled like Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while training (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def to_device(batch, device: torch.device):
    """Move the tensors of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(
        [np.random.get_state()[0], np.random.get_state()[1].tolist(),
         *np.random.get_state()[2:]]), "python": json.dumps(random.getstate())}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = json.loads(s["numpy"])
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    p = json.loads(s["python"])
    random.setstate((p[0], tuple(p[1]), p[2]))


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(device_type: str, precision: str):
    """The ``torch.autocast`` context of a training precision (``train.precision``); a no-op
    for ``"fp32"``."""
    return torch.autocast(device_type, dtype=_HALF.get(precision, torch.bfloat16),
                          enabled=precision in _HALF)


def _forward_losses(model, batch: dict, cfg: RunConfig, stage: int,
                    faces: torch.Tensor) -> dict:
    """The loss terms of one batch; the network runs in ``train.precision`` (its geometry and
    the losses in float32)."""
    size = cfg.model.input_size
    method = cfg.model.method
    views = [batch["view1"], batch["view2"]] if "view1" in batch else [batch]
    autocast = mixed_precision(views[0]["image"].device.type, cfg.train.precision)
    if len(views) == 2:  # one forward over both views
        both = {k: torch.cat([views[0][k], views[1][k]]) for k in ("image", "K", "R")}
        with autocast:
            out = model(both["image"], both["K"], both["R"])
        b = views[0]["image"].shape[0]
        outs = [{k: v[:b] for k, v in out.items()}, {k: v[b:] for k, v in out.items()}]
    else:
        with autocast:
            outs = [model(batch["image"], batch["K"], batch["R"])]
    terms: dict[str, torch.Tensor] = {}
    for out, view in zip(outs, views, strict=True):
        for k, v in relative_losses(out, view, faces, size).items():
            terms[k] = terms.get(k, 0.0) + v / len(views)
        if stage == 2 and method != "two_stage":
            for k, v in camera_losses(out, view, size).items():
                terms[k] = terms.get(k, 0.0) + v / len(views)
    if len(views) == 2 and stage >= cfg.train.consistency_stage:
        terms.update(consistency_losses(outs[0], outs[1], batch["T12"], batch["R12"], size))
    invalid = sum(int((~o["valid"]).sum()) for o in outs)
    return {"terms": terms, "invalid": invalid}


def _grads_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                    grad_clip: float, scaler: torch.amp.GradScaler | None = None) -> bool:
    """Back-propagate and step; False (nothing applied) for a non-finite loss or gradient.
    With a gradient ``scaler`` (float16 training) the loss is scaled for the backward pass and
    the scale adapts (a step with overflowing gradients is skipped and the scale lowered)."""
    opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return False
    if scaler is None:
        loss.backward()
        if not _grads_finite(model):
            return False
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return True
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    finite = _grads_finite(model)
    if finite:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)  # skipped by the scaler itself when a gradient overflowed
    scaler.update()
    return finite


@dataclass
class _Progress:
    """What a checkpoint records of the loop, and the running sums of the epoch's log line."""

    step: int = 0
    skipped: int = 0
    invalid: int = 0
    last_loss: float = math.nan
    epoch_sums: dict | None = None
    in_epoch: int = 0


class Trainer:
    """Train a :class:`~handdgp_models.run.Run` into its folder (``checkpoint.pt``,
    ``log.jsonl``, ``config.json``).

    Args:
        run: the run (its config, template, training set and folder).
        resume: continue from the folder's checkpoint when it exists.
        progress: tqdm bars (rank 0).
    """

    def __init__(self, run: Run, *, resume: bool = True, progress: bool = True) -> None:
        if run.folder is None:
            raise ValueError("run: training needs a run folder (--out)")
        self.run, self.cfg, self.folder = run, run.config, run.folder
        self.resume_allowed, self.show_progress = resume, progress
        self.rank, self.world = _dist_info()
        self.state = _Progress()

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Threads, seeds, the template, the data, the network, the optimiser and schedule."""
        tc = self.cfg.train
        self.governor, self.threads_before = None, torch.get_num_threads()
        if tc.threads:
            torch.set_num_threads(tc.threads)
        else:  # as many threads as other processes leave cores free, re-chosen as they change
            self.governor = ThreadGovernor()
        self.device = self.run.device
        torch.manual_seed(tc.seed)
        np.random.seed(tc.seed)
        random.seed(tc.seed)
        template = self.run.template  # fails early when a real dataset has no MANO/SMPL file
        check_backbone_weights(self.cfg)  # before the data is built
        if self.run.checkpoint_path is None:  # not fine-tuning a checkpoint
            warn_without_pretraining(self.cfg)
        if self.rank == 0:
            self.folder.root.mkdir(parents=True, exist_ok=True)
            write_json(self.folder.config, to_dict(self.cfg), indent=2)
        self._setup_data()
        self.model = self.run.initial_network().to(self.device)
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model,
                                                                 find_unused_parameters=True)
        self._setup_optimizer()
        self.config_json = json.dumps(to_dict(self.cfg))
        # a network on a stored mesh is tied to that mesh (saved with it), not to the template
        stored = self.run.stored_mesh
        self.mesh_entry = {"mesh": stored.to_state()} if stored is not None else \
            {"template": template_fingerprint(template)}

    def _setup_data(self) -> None:
        tc = self.cfg.train
        train_ds = self.run.train_data
        if self.world > 1:
            dist.barrier()
        self.sampler = EpochSampler(len(train_ds), tc.seed, self.rank, self.world)
        self.loader = make_loader(train_ds, self.run.pipeline(train=True), tc.batch_size,
                                  shuffle=False, num_workers=self.cfg.data.num_workers,
                                  seed=tc.seed, drop_last=True, sampler=self.sampler,
                                  pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = (len(train_ds) // self.world) // tc.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"train.batch_size: {tc.batch_size} is larger than the training "
                             f"set per process ({len(train_ds) // self.world} images)")

    def _setup_optimizer(self) -> None:
        tc = self.cfg.train
        total = tc.steps
        self.stage1 = total if self.cfg.model.method == "two_stage" \
            else int(round(tc.stage1_fraction * total))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr,
                                    weight_decay=tc.weight_decay)
        decay_at, stage1 = int(tc.lr_decay_at * total), self.stage1

        def lr_factor(s: int) -> float:  # stage 2 fine-tunes at a lower rate
            return (0.1 if s >= decay_at else 1.0) * (tc.stage2_lr_factor if s >= stage1 else 1.0)

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor)
        self.scaler = (torch.amp.GradScaler(self.device.type) if tc.precision == "fp16"
                       else None)

    # ------------------------------------------------------------------ resume / save / log
    def resume(self) -> None:
        """Restore the model, optimiser, schedule, counters and RNGs from the checkpoint."""
        path = self.folder.checkpoint
        if not (self.resume_allowed and path.is_file()):
            return
        saved = load_checkpoint(path)
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        self.sched.load_state_dict(saved["scheduler"])
        if self.scaler is not None and "scaler" in saved:
            self.scaler.load_state_dict(saved["scaler"])
        self.state.step, self.state.skipped = saved["step"], saved["skipped"]
        self.state.invalid = saved["invalid"]
        _set_rng_state(saved["rng"])

    def save(self) -> None:
        """Write the checkpoint (rank 0), atomically."""
        if self.rank != 0:
            return
        s = self.state
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "step": s.step, "skipped": s.skipped,
                 "invalid": s.invalid, "rng": _rng_state(), "config": self.config_json,
                 **self.mesh_entry}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        save_checkpoint(self.folder.checkpoint, state)

    def log_epoch(self, log, epoch: int, stage: int, t0: float) -> None:
        """Append the epoch's mean losses and counters to ``log.jsonl`` and reset the sums."""
        s = self.state
        if log is not None:
            rec = {"epoch": epoch, "step": s.step, "stage": stage,
                   "lr": self.sched.get_last_lr()[0], "skipped": s.skipped, "invalid": s.invalid,
                   "threads": torch.get_num_threads(), "seconds": round(time.time() - t0, 2)}
            rec.update({k: v / max(s.in_epoch, 1) for k, v in (s.epoch_sums or {}).items()})
            log.write(strict_json(rec, nan_as_null=True) + "\n")
            log.flush()
        s.epoch_sums, s.in_epoch = {}, 0

    # ------------------------------------------------------------------ the loop
    def step(self, batch: dict) -> int:
        """One optimiser step on ``batch``; returns the stage it ran in."""
        s = self.state
        batch = to_device(batch, self.device)
        stage = 1 if s.step < self.stage1 else 2
        res = _forward_losses(self.net, batch, self.cfg, stage, self.model.faces)
        loss = total_loss(res["terms"], self.cfg.loss)
        s.invalid += res["invalid"]
        if not _optimizer_step(self.model, self.opt, loss, self.cfg.train.grad_clip,
                               self.scaler):
            s.skipped += 1
        self.sched.step()
        s.step += 1
        s.last_loss = float(loss.detach())
        sums = s.epoch_sums if s.epoch_sums is not None else {}
        for k, v in res["terms"].items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + s.last_loss
        s.epoch_sums, s.in_epoch = sums, s.in_epoch + 1
        if self.governor is not None:
            self.governor.step()
        return stage

    def _epoch(self, stop: int, bar, log, t0: float) -> None:
        """Run the rest of the current epoch (or up to ``stop``), saving and logging."""
        s, total, per_epoch = self.state, self.cfg.train.steps, self.steps_per_epoch
        epoch, pos = divmod(s.step, per_epoch)
        self.loader.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch, pos * self.cfg.train.batch_size)
        for batch in self.loader:
            stage = self.step(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{s.last_loss:.4f}", stage=stage)
            end_of_epoch = s.step % per_epoch == 0
            if end_of_epoch or s.step % self.cfg.train.checkpoint_every == 0 or s.step >= stop:
                self.save()
            if end_of_epoch or s.step >= total:
                self.log_epoch(log, epoch, stage, t0)
            if s.step >= stop or end_of_epoch:
                return

    def fit(self, max_steps: int | None = None) -> dict:
        """Set up, resume and train to ``train.steps`` (or ``max_steps``); a checkpoint is
        saved on Ctrl-C and SIGTERM before the interrupt propagates.

        Returns:
            Summary dict: ``step``, ``skipped``, ``invalid``, ``seconds``, ``final_loss``.
        """
        from tqdm import tqdm

        self.setup()
        self.resume()
        total = self.cfg.train.steps
        stop = min(total, max_steps) if max_steps is not None else total
        t0, s = time.time(), self.state
        bar = tqdm(total=total, initial=s.step, desc="train",
                   disable=not self.show_progress or self.rank != 0)
        log = open(self.folder.log, "a") if self.rank == 0 else None
        self.model.train()
        with _sigterm_as_interrupt():
            try:
                while s.step < stop:
                    self._epoch(stop, bar, log, t0)
            except KeyboardInterrupt:
                self.save()
                raise
            finally:
                bar.close()
                if log is not None:
                    log.close()
                if self.governor is not None:
                    torch.set_num_threads(self.threads_before)
        return {"step": s.step, "skipped": s.skipped, "invalid": s.invalid,
                "seconds": time.time() - t0, "final_loss": s.last_loss}


def train(run: Run | RunConfig, out_dir: str | os.PathLike | None = None, *,
          resume: bool = True, progress: bool = True, max_steps: int | None = None) -> dict:
    """Train a run (or a config into ``out_dir``); resumes from the folder's checkpoint.

    Args:
        run: a :class:`~handdgp_models.run.Run` with a folder, or a run config
            (:func:`handdgp_models.config.load_config`) trained into ``out_dir``.
        out_dir: the run folder when ``run`` is a config.
        resume: continue from ``checkpoint.pt`` when it exists.
        progress: tqdm bars (rank 0).
        max_steps: stop (with a checkpoint) after this global step, for interruption tests.

    Returns:
        Summary dict: ``step``, ``skipped``, ``invalid``, ``seconds``, ``final_loss``.
    """
    if isinstance(run, RunConfig):
        if out_dir is None:
            raise ValueError("out_dir: a run config needs a run folder to train into")
        run = Run(run, out_dir, roles=TRAIN, progress=progress and _dist_info()[0] == 0)
    return Trainer(run, resume=resume, progress=progress).fit(max_steps)
