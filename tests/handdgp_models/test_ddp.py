"""DistributedDataParallel training with 2 CPU processes on gloo."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from handdgp_models.config import load_config, to_dict
from handdgp_models.train import EpochSampler, load_checkpoint, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(cfg, out, progress=False)
    finally:
        dist.destroy_process_group()


def test_sampler_splits_epoch_between_ranks():
    parts = [list(EpochSampler(10, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 5
    assert not set(parts[0]) & set(parts[1])
    s = EpochSampler(10, seed=3)
    full = list(s)
    s.set_epoch(0, start=4)
    assert list(s) == full[4:]
    s.set_epoch(1)
    assert sorted(s) == list(range(10)) and list(s) != full


@pytest.mark.slow
def test_ddp_two_gloo_processes(tmp_path):
    cfg = load_config("tiny", [f'cache_dir="{tmp_path / "cache"}"',
                               "train.steps=2", "train.batch_size=2"])
    # render the data and build the hierarchy once, before the processes start
    from handdgp_models.build import build_hand, build_network, build_train_data

    hand = build_hand(cfg)
    build_train_data(cfg, hand)
    build_network(cfg, hand)
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path / "run")), nprocs=2, join=True)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 2
    assert json.loads(state["config"]) == to_dict(cfg)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 2
