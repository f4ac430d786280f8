"""Training-step throughput on the CPU, and where one step's time goes.

    python -m benchmarks.bench_train_step                       # small and paper configs
    python -m benchmarks.bench_train_step --configs small --steps 8 --threads 1 2
    python -m benchmarks.bench_train_step --configs small 'small;model.backbone="resnet18"'
    python -m benchmarks.bench_train_step --configs small --precisions fp32 bf16 --no-busy

A config is a named config, optionally followed by ``;``-separated ``key=value`` overrides
(as ``--set`` takes them). Each config is trained for a few steps on rendered synthetic hands,
idle and with the second core busy (a busy-loop process this script starts and stops itself),
for each thread setting and training precision (``train.precision``: float32, or bfloat16 /
float16 mixed precision).
The breakdown times the parts of a step with module hooks: the data pipeline, the backbone's
forward and backward, the heads and mesh decoder, the DGP solve, the losses, the optimiser
step, and one checkpoint write. Rates are images per second of wall time (medians over steps).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PARTS = ("data", "backbone fwd", "backbone bwd", "heads fwd", "decoder fwd", "decoder bwd",
         "dgp+rest fwd", "losses", "other bwd", "optimiser")


@contextlib.contextmanager
def busy_core(enabled: bool):
    """A second process spinning on one core while the block runs."""
    proc = None
    if enabled:
        proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


class _Clock:
    """Wall-time stamps from hooks: a module's forward starts and ends, and the moment the
    gradient of its output arrives (its backward starts) and, for modules whose inputs need
    gradients, the moment its backward ends."""

    def __init__(self, model) -> None:
        self.marks: dict[str, float] = {}
        for name, mod in (("backbone", model.backbone), ("decoder", model.mesh),
                          ("keypoints", model.keypoints), ("weights", model.weight_head)):
            mod.register_forward_pre_hook(self._stamp(f"{name} fwd start"))
            mod.register_forward_hook(self._on_output(name))
        model.mesh.register_full_backward_hook(self._stamp("decoder bwd end"))

    def _stamp(self, key: str):
        def hook(*_args):
            self.marks[key] = time.perf_counter()
        return hook

    def _on_output(self, name: str):
        def hook(_mod, _inp, out):
            self.marks[f"{name} fwd end"] = time.perf_counter()
            if out.requires_grad:
                out.register_hook(self._stamp(f"{name} bwd start"))
        return hook

    def span(self, name: str, kind: str) -> float:
        m = self.marks
        return m.get(f"{name} {kind} end", 0.0) - m.get(f"{name} {kind} start", 0.0)


def _setup(config: str, root: Path):
    from handdgp_models.config import load_config
    from handdgp_models.data import make_loader
    from handdgp_models.run import Run

    name, *overrides = config.split(";")
    overrides = [*overrides, f'cache_dir="{root}"']
    batch = load_config(name, overrides).train.batch_size
    run = Run(load_config(name, [*overrides, f"data.train.0.samples={4 * batch}"]))
    loader = make_loader(run.train_data, run.pipeline(train=True), batch, shuffle=True,
                         num_workers=run.config.data.num_workers, drop_last=True)
    return run, loader


def measure(config: str, root: Path, threads: int, steps: int, busy: bool) -> dict:
    """Median step time and its parts for ``config`` at ``threads`` threads."""
    from handdgp_models.checkpoint import save_checkpoint
    from handdgp_models.losses import total_loss
    from handdgp_models.threads import ThreadGovernor
    from handdgp_models.train import _forward_losses

    governor = None
    if threads:
        torch.set_num_threads(threads)
    else:  # what training does by default: re-chosen from the free cores every 2 steps here
        torch.set_num_threads(os.cpu_count() or 1)
        governor = ThreadGovernor(every=2)
    torch.manual_seed(0)
    run, loader = _setup(config, root)
    cfg = run.config
    model = run.new_network().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    clock = _Clock(model)
    rows: list[dict[str, float]] = []
    with busy_core(busy):
        it = iter(loader)
        for step in range(steps + 2):  # two warm-up steps
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            t1 = time.perf_counter()
            res = _forward_losses(model, batch, cfg, 2, model.faces)
            t2 = time.perf_counter()
            loss = total_loss(res["terms"], cfg.loss)
            t3 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t4 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            t5 = time.perf_counter()
            if governor is not None:
                governor.step()
            if step < 2:
                continue
            fwd = {k: clock.span(k, "fwd") for k in ("backbone", "decoder", "keypoints",
                                                      "weights")}
            # the backbone's backward runs last: from its output's gradient to the end
            bwd = {"backbone": t4 - clock.marks["backbone bwd start"],
                   "decoder": clock.span("decoder", "bwd")}
            rows.append({
                "step": t5 - t0, "data": t1 - t0, "backbone fwd": fwd["backbone"],
                "heads fwd": fwd["keypoints"] + fwd["weights"], "decoder fwd": fwd["decoder"],
                "dgp+rest fwd": (t2 - t1) - sum(fwd.values()), "losses": t3 - t2,
                "backbone bwd": bwd["backbone"], "decoder bwd": bwd["decoder"],
                "other bwd": (t4 - t3) - sum(bwd.values()), "optimiser": t5 - t4})
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            save_checkpoint(Path(tmp) / "c.pt", {"model": model.state_dict(),
                                                 "optimizer": opt.state_dict()})
            ckpt = time.perf_counter() - t0
    out = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out["checkpoint"] = ckpt
    out["images_per_s"] = cfg.train.batch_size / out["step"]
    return out


def format_rows(results: list[tuple[str, int, bool, dict]]) -> str:
    """A summary line per run, then the breakdown with one column per run (ms per step)."""
    idle = {(c, t): r["images_per_s"] for c, t, b, r in results if not b}
    cw = max(8, *(len(c) + 2 for c, *_ in results))
    lines = [f"{'config':<{cw}}{'threads':>8}{'core 2':>8}{'images/s':>10}{'step':>10}  vs idle",
             "-" * (cw + 48)]
    for config, threads, busy, r in results:
        ratio = "-"
        if busy and (config, threads) in idle:
            ratio = f"{idle[(config, threads)] / r['images_per_s']:.2f}x slower"
        lines.append(f"{config:<{cw}}{threads or 'auto':>8}{'busy' if busy else 'idle':>8}"
                     f"{r['images_per_s']:>10.1f}{1000 * r['step']:>8.0f}ms  {ratio}")
    names = [f"{c}/{t or 'auto'}/{'busy' if b else 'idle'}" for c, t, b, _ in results]
    width = max(14, *(len(n) + 2 for n in names))
    lines += ["", "ms per step" + "".join(f"{n:>{width}}" for n in names)]
    for part in (*PARTS, "step", "checkpoint"):
        lines.append(f"{part:<11}" + "".join(f"{1000 * r[part]:>{width}.1f}"
                                             for *_, r in results))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["small", "paper"])
    p.add_argument("--threads", nargs="+", type=int, default=[os.cpu_count() or 1, 0],
                   help="intra-op threads per run; 0 = chosen from the free cores (training's "
                        "default)")
    p.add_argument("--precisions", nargs="+", default=["fp32"],
                   choices=("fp32", "bf16", "fp16"), help="train.precision of each run")
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    p.add_argument("--no-busy", action="store_true", help="skip the busy-second-core runs")
    p.add_argument("--cache", help="folder for rendered images and the mesh hierarchy")
    args = p.parse_args(argv)
    root = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="bench_train_"))
    results = []
    configs = [c if p == "fp32" else f'{c};train.precision="{p}"'
               for c in args.configs for p in args.precisions]
    for config in configs:
        for threads in args.threads:
            for busy in (False,) if args.no_busy else (False, True):
                r = measure(config, root, threads, args.steps, busy)
                results.append((config, threads, busy, r))
                print(f"  {config} threads={threads} {'busy' if busy else 'idle'}: "
                      f"{r['images_per_s']:.1f} img/s", flush=True)
    print(f"\ntraining step on the CPU (torch {torch.__version__}, {os.cpu_count()} cores, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}); medians of "
          f"{args.steps} steps after 2 warm-up steps")
    print(format_rows(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
