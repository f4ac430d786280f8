"""How does dgp_ops.warp_perspective compare with what a user would otherwise call?

Batch of B images 3×H×W float32 warped to S×S by per-item homographies, on the CPU:

- forward: dgp_ops, kornia.geometry.transform.warp_perspective, torch grid_sample with a
  precomputed grid, cv2.warpPerspective (one HWC image at a time);
- forward + backward (image and H gradients): dgp_ops, kornia (autograd); grid_sample
  with a precomputed grid gives the image gradient only;
- peak resident memory of forward + backward, each method in a fresh subprocess.

Times are medians of interleaved repetitions in one run; ratios are relative to dgp_ops
(> 1: dgp_ops is faster / smaller).

    python -m benchmarks.bench_warp            # 32 × 3×480×640 → 224×224
    python -m benchmarks.bench_warp --quick    # tiny sizes, a smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import os

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F

import dgp_ops
from benchmarks._timing import (
    max_rss_mb,
    peak_rss_delta_mb,
    reset_peak_rss,
    time_interleaved,
)
from dgp_ops.reference_warp import warp_grid_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMORY_METHODS = ("dgp_ops", "kornia", "grid_sample")


def make_inputs(B: int, h: int, w: int, S: int, seed: int = 0):
    """Images in [0, 1] and homographies mapping a jittered central crop onto S×S."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(B, 3, h, w, generator=g)
    Hs = []
    for _ in range(B):
        side = min(h, w) * (0.7 + 0.2 * torch.rand(1, generator=g).item())
        cx = w / 2 + (torch.rand(1, generator=g).item() - 0.5) * 0.2 * w
        cy = h / 2 + (torch.rand(1, generator=g).item() - 0.5) * 0.2 * h
        a = S / side
        ang = (torch.rand(1, generator=g).item() - 0.5) * 0.3
        c, s = np.cos(ang) * a, np.sin(ang) * a
        A = np.array([[c, -s, S / 2 - c * cx + s * cy], [s, c, S / 2 - s * cx - c * cy], [0, 0, 1]])
        P = np.eye(3)
        P[2, :2] = (torch.rand(2, generator=g).numpy() - 0.5) * 2e-4
        Hs.append(P @ A)
    return img, torch.tensor(np.stack(Hs), dtype=torch.float32)


def kornia_warp(img: torch.Tensor, H: torch.Tensor, S: int) -> torch.Tensor:
    return kornia.geometry.transform.warp_perspective(img, H, (S, S), align_corners=True)


def grid_for(img: torch.Tensor, H: torch.Tensor, S: int) -> torch.Tensor:
    with torch.no_grad():
        return warp_grid_reference(H, tuple(img.shape[2:]), (S, S))[0].contiguous()


def fwd_bwd(method: str, img: torch.Tensor, H: torch.Tensor, S: int, grid=None) -> None:
    """One forward + backward (image and, where the method has one, H gradient)."""
    img.grad = None
    H.grad = None
    if method == "dgp_ops":
        out = dgp_ops.warp_perspective(img, H, (S, S))
    elif method == "kornia":
        out = kornia_warp(img, H, S)
    else:
        out = F.grid_sample(img, grid, align_corners=True)
    out.sum().backward()


def _medians_ms(fns: dict, reps: int) -> dict[str, float]:
    """Interleaved median wall times in milliseconds."""
    secs = time_interleaved(fns, reps=reps, warmup=1, budget_s=float("inf"))
    return {name: s * 1e3 for name, s in secs.items()}


def measure_memory(method: str, B: int, h: int, w: int, S: int) -> None:
    """Subprocess entry: print the peak RSS increase of one forward + backward as JSON."""
    img, H = make_inputs(B, h, w, S)
    grid = grid_for(img, H, S) if method == "grid_sample" else None
    img.requires_grad_(True)
    H.requires_grad_(method != "grid_sample")
    gc.collect()
    reset_peak_rss()
    before = max_rss_mb()
    fwd_bwd(method, img, H, S, grid)
    print(json.dumps({"peak_delta_mb": max_rss_mb() - before}))


def run(B: int, h: int, w: int, S: int, reps: int) -> str:
    img, H = make_inputs(B, h, w, S)
    # Sanity: every method computes the same warp.
    ref = dgp_ops.warp_perspective(img, H, (S, S))
    torch.testing.assert_close(kornia_warp(img, H, S), ref, atol=1e-3, rtol=0)
    grid = grid_for(img, H, S)
    torch.testing.assert_close(F.grid_sample(img, grid, align_corners=True), ref, atol=1e-3, rtol=0)
    hwc = [img[b].permute(1, 2, 0).contiguous().numpy() for b in range(B)]
    Hn = H.double().numpy()
    threads = torch.get_num_threads()

    def dgp_one_thread():
        torch.set_num_threads(1)
        try:
            dgp_ops.warp_perspective(img, H, (S, S))
        finally:
            torch.set_num_threads(threads)

    fwd = _medians_ms(
        {
            "dgp_ops": lambda: dgp_ops.warp_perspective(img, H, (S, S)),
            "dgp_ops (1 thread)": dgp_one_thread,
            "kornia": lambda: kornia_warp(img, H, S),
            "grid_sample": lambda: F.grid_sample(img, grid, align_corners=True),
            "cv2": lambda: [
                cv2.warpPerspective(x, m, (S, S)) for x, m in zip(hwc, Hn, strict=True)
            ],
        },
        reps,
    )
    imgg = img.clone().requires_grad_(True)
    Hg = H.clone().requires_grad_(True)
    bwd = _medians_ms(
        {m: (lambda m=m: fwd_bwd(m, imgg, Hg, S, grid)) for m in MEMORY_METHODS}, reps
    )
    gc.collect()
    size = [f"--B={B}", f"--height={h}", f"--width={w}", f"--size={S}"]
    mem = {
        m: peak_rss_delta_mb("benchmarks.bench_warp", [f"--measure-memory={m}", *size], ROOT)
        for m in MEMORY_METHODS
    }

    def ratio(x: float | None, base: float) -> str:
        return "" if x is None or not base > 0 else f"{x / base:.2f}x"

    lines = [
        f"warp_perspective, CPU, {threads} threads: {B} x 3x{h}x{w} float32 -> {S}x{S} "
        f"(median of {reps} interleaved runs; ratio = method / dgp_ops)",
        f"{'method':<20} {'fwd ms':>9} {'ratio':>7} {'fwd+bwd ms':>11} {'ratio':>7} "
        f"{'peak MiB':>9} {'ratio':>7}",
    ]
    for name in fwd:
        b = bwd.get(name)
        m = mem.get(name)
        note = " (image grad only)" if name == "grid_sample" else ""
        lines.append(
            f"{name:<20} {fwd[name]:>9.2f} {ratio(fwd[name], fwd['dgp_ops']):>7} "
            f"{'' if b is None else f'{b:.2f}':>11} {ratio(b, bwd['dgp_ops']):>7} "
            f"{'' if m is None else f'{m:.1f}':>9} {ratio(m, mem['dgp_ops']):>7}{note}"
        )
    grad_mib = img.numel() * img.element_size() / 2**20
    out_mib = B * 3 * S * S * img.element_size() / 2**20
    lines.append(
        f"(the image gradient alone is {grad_mib:.1f} MiB and the output {out_mib:.1f} MiB; "
        "cv2: one HWC image per call)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--measure-memory", choices=MEMORY_METHODS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.B, a.height, a.width, a.size, a.reps = 2, 48, 64, 24, 3
    if a.measure_memory:
        measure_memory(a.measure_memory, a.B, a.height, a.width, a.size)
        return
    print(run(a.B, a.height, a.width, a.size, a.reps))


if __name__ == "__main__":
    main()
