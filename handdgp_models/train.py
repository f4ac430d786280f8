"""Trainer: two-stage schedule, checkpoints with exact resume, optional DDP.

Exact resume: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)`` and the
augmentation of item ``i`` in epoch ``e`` is seeded by ``(seed, e, i)``, so a run restarted
from a checkpoint (model, optimiser, scheduler, RNG states, position in the epoch) sees the
same batches and reaches the same weights as an uninterrupted one.
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
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from .build import (
    build_network,
    build_pipeline,
    build_template,
    build_train_data,
    hand_fingerprint,
    resolve_device,
    warn_without_pretraining,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, to_dict
from .data import collate_samples
from .data.loader import EpochSampler, PipelineDataset
from .files import strict_json, write_json
from .losses import camera_losses, consistency_losses, relative_losses, total_loss
from .threads import ThreadGovernor

__all__ = ["EpochSampler", "load_checkpoint", "save_checkpoint", "to_device", "train"]


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


def _forward_losses(model, batch: dict, cfg: RunConfig, stage: int,
                    faces: torch.Tensor) -> dict:
    size = cfg.model.input_size
    method = cfg.model.method
    views = [batch["view1"], batch["view2"]] if "view1" in batch else [batch]
    if len(views) == 2:  # one forward over both views
        both = {k: torch.cat([views[0][k], views[1][k]]) for k in ("image", "K", "R")}
        out = model(both["image"], both["K"], both["R"])
        b = views[0]["image"].shape[0]
        outs = [{k: v[:b] for k, v in out.items()}, {k: v[b:] for k, v in out.items()}]
    else:
        outs = [model(batch["image"], batch["K"], batch["R"])]
    terms: dict[str, torch.Tensor] = {}
    for out, view in zip(outs, views, strict=True):
        for k, v in relative_losses(out, view, faces, size).items():
            terms[k] = terms.get(k, 0.0) + v / len(views)
        if stage == 2 and method != "two_stage":
            for k, v in camera_losses(out, view, size).items():
                terms[k] = terms.get(k, 0.0) + v / len(views)
    if len(views) == 2:
        terms.update(consistency_losses(outs[0], outs[1], batch["T12"], batch["R12"], size))
    invalid = sum(int((~o["valid"]).sum()) for o in outs)
    return {"terms": terms, "invalid": invalid}


def _optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                    grad_clip: float) -> bool:
    """Back-propagate and step; False (nothing applied) for a non-finite loss or gradient."""
    opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return False
    loss.backward()
    if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
        return False
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return True


def train(cfg: RunConfig, out_dir: str | os.PathLike, *, resume: bool = True,
          progress: bool = True, max_steps: int | None = None) -> dict:
    """Train ``cfg`` into ``out_dir`` (``checkpoint.pt``, ``log.jsonl``); resumes if possible.

    Args:
        cfg: a run config (:func:`handdgp_models.config.load_config`).
        out_dir: run folder.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        progress: tqdm bars (rank 0).
        max_steps: stop (with a checkpoint) after this global step, for interruption tests.

    Returns:
        Summary dict: ``step``, ``skipped``, ``invalid``, ``seconds``, ``final_loss``.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    rank, world = _dist_info()
    tc = cfg.train
    governor, threads_before = None, torch.get_num_threads()
    if tc.threads:
        torch.set_num_threads(tc.threads)
    else:  # as many threads as other processes leave cores free, re-chosen as they come and go
        governor = ThreadGovernor()
    device = resolve_device(tc.device)
    seed = tc.seed
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    hand = build_template(cfg)  # fails early when a real dataset has no MANO/SMPL file
    warn_without_pretraining(cfg)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", to_dict(cfg), indent=2)
    train_ds = build_train_data(cfg, out_dir, hand, progress=progress and rank == 0)
    if world > 1:
        dist.barrier()
    data = PipelineDataset(train_ds, build_pipeline(cfg, train=True), seed)
    sampler = EpochSampler(len(data), seed, rank, world)

    bs = tc.batch_size
    loader = DataLoader(data, batch_size=bs, sampler=sampler, drop_last=True,
                        collate_fn=collate_samples, num_workers=cfg.data.num_workers,
                        pin_memory=device.type == "cuda")
    steps_per_epoch = (len(data) // world) // bs
    if steps_per_epoch == 0:
        raise ValueError(f"train.batch_size: {bs} is larger than the training set per process "
                         f"({len(data) // world} images)")
    total = tc.steps
    stage1 = int(round(tc.stage1_fraction * total))
    if cfg.model.method == "two_stage":
        stage1 = total

    model = build_network(cfg, hand).to(device)
    faces = model.faces
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    decay_at = int(tc.lr_decay_at * total)

    def lr_factor(s: int) -> float:  # stage 2 fine-tunes at a lower rate
        return (0.1 if s >= decay_at else 1.0) * (tc.stage2_lr_factor if s >= stage1 else 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    step, skipped, invalid = 0, 0, 0
    ckpt_path = out_dir / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, skipped, invalid = state["step"], state["skipped"], state["invalid"]
        _set_rng_state(state["rng"])
    config_json = json.dumps(to_dict(cfg))
    fingerprint = hand_fingerprint(hand)

    def snapshot() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "step": step, "skipped": skipped,
                "invalid": invalid, "rng": _rng_state(), "config": config_json,
                "hand": fingerprint}

    def save() -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, snapshot())

    t0 = time.time()
    stop = min(total, max_steps) if max_steps is not None else total
    bar = tqdm(total=total, initial=step, desc="train", disable=not progress or rank != 0)
    log = open(out_dir / "log.jsonl", "a") if rank == 0 else None
    epoch_sums: dict[str, float] = {}
    n_in_epoch = 0
    last_loss = math.nan
    model.train()
    with _sigterm_as_interrupt():
        try:
            while step < stop:
                epoch, pos = divmod(step, steps_per_epoch)
                data.set_epoch(epoch)
                sampler.set_epoch(epoch, pos * bs)
                for batch in loader:
                    batch = to_device(batch, device)
                    stage = 1 if step < stage1 else 2
                    res = _forward_losses(net, batch, cfg, stage, faces)
                    loss = total_loss(res["terms"], cfg.loss)
                    invalid += res["invalid"]
                    if not _optimizer_step(model, opt, loss, tc.grad_clip):
                        skipped += 1
                    sched.step()
                    step += 1
                    last_loss = float(loss.detach())
                    for k, v in res["terms"].items():
                        epoch_sums[k] = epoch_sums.get(k, 0.0) + float(v.detach())
                    epoch_sums["loss"] = epoch_sums.get("loss", 0.0) + last_loss
                    n_in_epoch += 1
                    if governor is not None:
                        governor.step()
                    bar.update(1)
                    bar.set_postfix(loss=f"{last_loss:.4f}", stage=stage)
                    end_of_epoch = step % steps_per_epoch == 0
                    if end_of_epoch or step % tc.checkpoint_every == 0 or step >= stop:
                        save()
                    if (end_of_epoch or step >= total) and log is not None:
                        rec = {"epoch": epoch, "step": step, "stage": stage,
                               "lr": sched.get_last_lr()[0], "skipped": skipped, "invalid": invalid,
                               "threads": torch.get_num_threads(),
                               "seconds": round(time.time() - t0, 2)}
                        rec.update({k: v / max(n_in_epoch, 1) for k, v in epoch_sums.items()})
                        log.write(strict_json(rec, nan_as_null=True) + "\n")
                        log.flush()
                        epoch_sums, n_in_epoch = {}, 0
                    if step >= stop or end_of_epoch:
                        break
        except KeyboardInterrupt:
            save()
            raise
        finally:
            bar.close()
            if log is not None:
                log.close()
            if governor is not None:
                torch.set_num_threads(threads_before)
    return {"step": step, "skipped": skipped, "invalid": invalid,
            "seconds": time.time() - t0, "final_loss": last_loss}
