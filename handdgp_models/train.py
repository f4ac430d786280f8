"""Trainer: two-stage schedule, checkpoints with exact resume, optional DDP.

Exact resume: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)`` and the
augmentation of item ``i`` in epoch ``e`` is seeded by ``(seed, e, i)``, so a run restarted
from a checkpoint (model, optimiser, scheduler, RNG states, position in the epoch) sees the
same batches and reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint import load_checkpoint, save_checkpoint
from .losses import LossWeights, camera_losses, consistency_losses, relative_losses, total_loss
from .model import HandDGP, build_model

__all__ = ["AugmentedDataset", "EpochSampler", "build_datasets", "load_checkpoint",
           "make_pipeline", "save_checkpoint", "train"]


class AugmentedDataset(Dataset):
    """``pipeline(dataset[i], generator seeded by (seed, epoch, i))``."""

    def __init__(self, dataset: Dataset, pipeline, seed: int) -> None:
        self.dataset, self.pipeline, self.seed, self.epoch = dataset, pipeline, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(index))) % 2**62)
        return self.pipeline(self.dataset[index], g)


class EpochSampler(Sampler[int]):
    """Seeded per-epoch permutation, split across ranks, resumable at a position.

    Like :class:`torch.utils.data.DistributedSampler` (each rank takes every
    ``world``-th index of the permutation, truncated to equal length) plus ``start``: the
    number of this rank's indices already consumed in the epoch.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per_rank = self.n // self.world
        return perm[self.rank::self.world][:per_rank]

    def __iter__(self):
        return iter(self._indices()[self.start:])

    def __len__(self) -> int:
        return self.n // self.world - self.start


def make_pipeline(cfg: dict, train: bool):
    """The input pipeline of a config (``train`` draws the augmentation)."""
    from .data import HandInputPipeline, PhotometricConfig, PipelineConfig

    d, m = cfg["data"], cfg["model"]
    return HandInputPipeline(PipelineConfig(
        out_size=int(m["input_size"]), focal=float(m["focal"]), mode=d["mode"], train=train,
        two_views=bool(d["two_views"]) and train, shift=float(d["shift"]),
        scale_jitter=float(d["scale_jitter"]), rotation_deg=float(d["rotation_deg"]),
        photometric=PhotometricConfig() if d["photometric"] else None))


def _cache_dir(cfg: dict, out_dir: Path) -> Path:
    c = cfg["data"].get("cache_dir")
    return Path(c) if c else out_dir / "data"


def _camera_domain(name: str, d: dict):
    """The named synthetic camera domain with the configured depth range (``data.depth``)."""
    from .data.synthetic import CAMERA_DOMAINS

    domain = CAMERA_DOMAINS[name]
    depth = d.get("depth")
    if depth is None:
        return domain
    if len(depth) != 2 or not 0.0 < float(depth[0]) <= float(depth[1]):
        raise ValueError(f"data.depth: expected [min, max] metres with 0 < min <= max, got {depth}")
    return dataclasses.replace(domain, depth=(float(depth[0]), float(depth[1])))


def build_datasets(cfg: dict, out_dir: str | os.PathLike, *, progress: bool = False):
    """Training and test :class:`SyntheticHands`, rendered once into the cache folder."""
    from .data import SyntheticHands

    d = cfg["data"]
    if d["dataset"] != "synthetic":
        raise ValueError(f"data.dataset: only 'synthetic' is built in, got {d['dataset']!r}")
    cache = _cache_dir(cfg, Path(out_dir))
    common = {"occlusion_prob": float(d["occlusion_prob"]),
              "orientation_spread": float(d["orientation_spread"]), "cache_dir": cache}
    train_ds = SyntheticHands(int(d["train_samples"]), int(d["seed"]),
                              camera=_camera_domain("train", d), **common)
    test_ds = SyntheticHands(int(d["test_samples"]), int(d["test_seed"]),
                             camera=_camera_domain("test", d), **common)
    render_all(train_ds, progress, "render train")
    render_all(test_ds, progress, "render test")
    return train_ds, test_ds


def render_all(ds: Dataset, progress: bool, desc: str) -> None:
    """Touch every item once so it is cached on disk."""
    from tqdm import tqdm

    for i in tqdm(range(len(ds)), desc=desc, disable=not progress, leave=False):
        ds[i]


def model_from_checkpoint(path: str | os.PathLike) -> tuple[HandDGP, dict]:
    """Rebuild the model of a checkpoint and load its weights; returns ``(model, config)``."""
    state = load_checkpoint(path)
    cfg = json.loads(state["config"])
    model = build_model(cfg["model"], cache_dir=cfg["train"].get("hierarchy_cache"))
    model.load_state_dict(state["model"])
    return model.eval(), cfg


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


def _forward_losses(model, batch: dict, cfg: dict, stage: int, faces: torch.Tensor) -> dict:
    size = int(cfg["model"]["input_size"])
    method = cfg["model"]["method"]
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


def train(cfg: dict, out_dir: str | os.PathLike, *, resume: bool = True, progress: bool = True,
          max_steps: int | None = None) -> dict:
    """Train ``cfg`` into ``out_dir`` (``checkpoint.pt``, ``log.jsonl``); resumes if possible.

    Args:
        cfg: a config dict (:func:`handdgp_models.config.load_config`).
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
    tc = cfg["train"]
    if tc.get("threads"):
        torch.set_num_threads(int(tc["threads"]))
    seed = int(tc["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    train_ds, _ = build_datasets(cfg, out_dir, progress=progress and rank == 0)
    if world > 1:
        dist.barrier()
    data = AugmentedDataset(train_ds, make_pipeline(cfg, train=True), seed)
    sampler = EpochSampler(len(data), seed, rank, world)
    from .data import collate_samples

    bs = int(tc["batch_size"])
    loader = DataLoader(data, batch_size=bs, sampler=sampler, drop_last=True,
                        collate_fn=collate_samples, num_workers=int(cfg["data"]["num_workers"]))
    steps_per_epoch = (len(data) // world) // bs
    if steps_per_epoch == 0:
        raise ValueError("train.batch_size: larger than the training set per process")
    total = int(tc["steps"])
    stage1 = int(round(float(tc["stage1_fraction"]) * total))
    if cfg["model"]["method"] == "two_stage":
        stage1 = total

    model = build_model(cfg["model"], cache_dir=tc.get("hierarchy_cache"))
    faces = model.faces
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.Adam(model.parameters(), lr=float(tc["lr"]),
                           weight_decay=float(tc["weight_decay"]))
    decay_at = int(float(tc["lr_decay_at"]) * total)
    f2 = float(tc.get("stage2_lr_factor", 1.0))

    def lr_factor(s: int) -> float:  # stage 2 fine-tunes at a lower rate
        return (0.1 if s >= decay_at else 1.0) * (f2 if s >= stage1 else 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    weights = LossWeights(**cfg["loss"])
    step, skipped, invalid = 0, 0, 0
    ckpt_path = out_dir / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, skipped, invalid = state["step"], state["skipped"], state["invalid"]
        _set_rng_state(state["rng"])

    def snapshot() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "step": step, "skipped": skipped,
                "invalid": invalid, "rng": _rng_state(), "config": json.dumps(cfg)}

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
    try:
        while step < stop:
            epoch, pos = divmod(step, steps_per_epoch)
            data.set_epoch(epoch)
            sampler.set_epoch(epoch, pos * bs)
            for batch in loader:
                stage = 1 if step < stage1 else 2
                res = _forward_losses(net, batch, cfg, stage, faces)
                loss = total_loss(res["terms"], weights)
                invalid += res["invalid"]
                opt.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    grads_ok = all(torch.isfinite(p.grad).all() for p in model.parameters()
                                   if p.grad is not None)
                    if grads_ok:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), float(tc["grad_clip"]))
                        opt.step()
                    else:
                        skipped += 1
                else:
                    skipped += 1
                sched.step()
                step += 1
                last_loss = float(loss.detach())
                for k, v in res["terms"].items():
                    epoch_sums[k] = epoch_sums.get(k, 0.0) + float(v.detach())
                epoch_sums["loss"] = epoch_sums.get("loss", 0.0) + last_loss
                n_in_epoch += 1
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", stage=stage)
                end_of_epoch = step % steps_per_epoch == 0
                if end_of_epoch or step % int(tc["checkpoint_every"]) == 0 or step >= stop:
                    save()
                if (end_of_epoch or step >= total) and log is not None:
                    rec = {"epoch": epoch, "step": step, "stage": stage,
                           "lr": sched.get_last_lr()[0], "skipped": skipped, "invalid": invalid,
                           "seconds": round(time.time() - t0, 2)}
                    rec.update({k: v / max(n_in_epoch, 1) for k, v in epoch_sums.items()})
                    log.write(json.dumps(rec) + "\n")
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
    return {"step": step, "skipped": skipped, "invalid": invalid,
            "seconds": time.time() - t0, "final_loss": last_loss}
