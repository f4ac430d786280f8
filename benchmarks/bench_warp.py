"""How does dgp_ops.warp_perspective compare with what a user would otherwise call?

A batch of B distinct images 3×H×W warped to S×S by distinct per-item homographies, on the
CPU, every comparison measured side by side in one run (medians of interleaved repetitions):

- forward, float32 and uint8: dgp_ops against cv2.warpPerspective looped over the same images
  and homographies (one HWC image per call), plus kornia and grid_sample with a precomputed
  grid (float32); the uint8 results are checked against OpenCV's;
- forward + backward with only H requiring grad (the images are data): dgp_ops against kornia
  with the same requires_grad, with peak memory;
- forward + backward of image and H: dgp_ops against grid_sample with a precomputed grid
  (which gives the image gradient only) and kornia.

Peak memory is the increase of resident memory during one forward + backward, each method in
a fresh subprocess. Ratios are other / dgp_ops (> 1: dgp_ops is faster / smaller).

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
# What requires grad in a forward + backward: the image and H, or H only.
GRAD_CASES = ("image+H", "H")


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
    """One forward + backward; the gradients are those of whichever of img, H require grad."""
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


def measure_memory(method: str, case: str, B: int, h: int, w: int, S: int) -> None:
    """Subprocess entry: print the peak RSS increase of one forward + backward as JSON."""
    img, H = make_inputs(B, h, w, S)
    grid = grid_for(img, H, S) if method == "grid_sample" else None
    img.requires_grad_(case == "image+H")
    H.requires_grad_(method != "grid_sample")
    gc.collect()
    reset_peak_rss()
    before = max_rss_mb()
    fwd_bwd(method, img, H, S, grid)
    print(json.dumps({"peak_delta_mb": max_rss_mb() - before}))


def uint8_agreement(out: torch.Tensor, refs: list[np.ndarray]) -> tuple[int, float]:
    """Max |dgp_ops - cv2| in grey levels over interior pixels (2 px from the output border)
    and the fraction of interior values that differ at all."""
    got = out.permute(0, 2, 3, 1).numpy().astype(np.int32)
    ref = np.stack(refs).astype(np.int32)
    d = np.abs(got - ref)[:, 2:-2, 2:-2]
    return int(d.max()), float((d > 0).mean())


def run(B: int, h: int, w: int, S: int, reps: int) -> str:
    img, H = make_inputs(B, h, w, S)
    # Sanity: every method computes the same warp.
    ref = dgp_ops.warp_perspective(img, H, (S, S))
    torch.testing.assert_close(kornia_warp(img, H, S), ref, atol=1e-3, rtol=0)
    grid = grid_for(img, H, S)
    torch.testing.assert_close(F.grid_sample(img, grid, align_corners=True), ref, atol=1e-3, rtol=0)
    # The H-only rows time the same gradient: kornia's dL/dH agrees with dgp_ops' (both in
    # float32, each within about 2% of the float64 gradient's largest entry).
    h_grads = []
    for method in ("dgp_ops", "kornia"):
        Hg = H.clone().requires_grad_(True)
        fwd_bwd(method, img, Hg, S)
        h_grads.append(Hg.grad)
    scale = h_grads[1].abs().amax()
    torch.testing.assert_close(h_grads[0] / scale, h_grads[1] / scale, atol=5e-2, rtol=0)
    # C-contiguous HWC arrays, as decoded images are (cv2 is much slower on strided ones).
    hwc = [img[b].permute(1, 2, 0).contiguous().numpy() for b in range(B)]
    hwc_u8 = torch.from_numpy(np.stack([(x * 255).round().astype(np.uint8) for x in hwc]))
    img_u8 = hwc_u8.permute(0, 3, 1, 2)  # decoded HWC images as (B, C, H, W), read in place
    u8_list = list(hwc_u8.numpy())
    Hn = H.double().numpy()
    H64 = H.double()
    threads = torch.get_num_threads()

    def cv2_loop(images):
        return [cv2.warpPerspective(x, m, (S, S)) for x, m in zip(images, Hn, strict=True)]

    fwd = _medians_ms(
        {
            "dgp f32": lambda: dgp_ops.warp_perspective(img, H, (S, S)),
            "dgp u8": lambda: dgp_ops.warp_perspective(img_u8, H64, (S, S)),
            "cv2 f32": lambda: cv2_loop(hwc),
            "cv2 u8": lambda: cv2_loop(u8_list),
            "kornia": lambda: kornia_warp(img, H, S),
            "grid_sample": lambda: F.grid_sample(img, grid, align_corners=True),
        },
        reps,
    )
    max_diff, frac = uint8_agreement(dgp_ops.warp_perspective(img_u8, H64, (S, S)),
                                     cv2_loop(u8_list))
    bwd = {}
    for case in GRAD_CASES:
        imgg = img.clone().requires_grad_(case == "image+H")
        Hg = H.clone().requires_grad_(True)
        methods = MEMORY_METHODS if case == "image+H" else ("dgp_ops", "kornia")
        bwd[case] = _medians_ms(
            {m: (lambda m=m, i=imgg, h=Hg: fwd_bwd(m, i, h, S, grid)) for m in methods}, reps
        )
    gc.collect()
    size = [f"--B={B}", f"--height={h}", f"--width={w}", f"--size={S}"]
    mem = {
        (case, m): peak_rss_delta_mb(
            "benchmarks.bench_warp", [f"--measure-memory={m}", f"--grad={case}", *size], ROOT)
        for case in GRAD_CASES
        for m in (MEMORY_METHODS if case == "image+H" else ("dgp_ops", "kornia"))
    }

    header = (f"{'case':<22} {'dgp_ops ms':>10}  {'vs':<26} {'other ms':>9} {'speed-up':>9}"
              f" {'dgp MiB':>8} {'other MiB':>9} {'mem ratio':>9}")
    lines = [
        f"warp_perspective, CPU, {threads} threads: {B} distinct x 3x{h}x{w} -> {S}x{S} "
        f"(median of {reps} interleaved runs; ratios = other / dgp_ops)",
        header,
        "-" * len(header),
    ]

    def row(case: str, t_dgp: float, other: str, t_other: float, m_dgp=None, m_other=None):
        mem_cols = ""
        if m_dgp is not None:
            ratio = f"{m_other / m_dgp:.2f}x" if m_dgp > 0 else "n/a"
            mem_cols = f" {m_dgp:>8.1f} {m_other:>9.1f} {ratio:>9}"
        lines.append(f"{case:<22} {t_dgp:>10.2f}  {other:<26} {t_other:>9.2f}"
                     f" {t_other / t_dgp:>8.2f}x{mem_cols}")

    row("fwd float32", fwd["dgp f32"], "cv2 loop (float32)", fwd["cv2 f32"])
    row("fwd uint8", fwd["dgp u8"], "cv2 loop (uint8)", fwd["cv2 u8"])
    row("fwd float32", fwd["dgp f32"], "kornia", fwd["kornia"])
    row("fwd float32", fwd["dgp f32"], "grid_sample (grid given)", fwd["grid_sample"])
    hb = bwd["H"]
    row("fwd+bwd H only", hb["dgp_ops"], "kornia (H only)", hb["kornia"],
        mem[("H", "dgp_ops")], mem[("H", "kornia")])
    ib = bwd["image+H"]
    row("fwd+bwd image+H", ib["dgp_ops"], "grid_sample (image grad)", ib["grid_sample"],
        mem[("image+H", "dgp_ops")], mem[("image+H", "grid_sample")])
    row("fwd+bwd image+H", ib["dgp_ops"], "kornia", ib["kornia"],
        mem[("image+H", "dgp_ops")], mem[("image+H", "kornia")])
    grad_mib = img.numel() * img.element_size() / 2**20
    lines.append(f"uint8 vs cv2.warpPerspective: max |diff| {max_diff} grey level(s) on interior "
                 f"pixels, {100 * frac:.3f}% of them differ")
    lines.append(f"(an image gradient is {grad_mib:.1f} MiB; cv2: one HWC image per call)")
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
    p.add_argument("--grad", choices=GRAD_CASES, default="image+H", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.B, a.height, a.width, a.size, a.reps = 2, 48, 64, 24, 3
    if a.measure_memory:
        measure_memory(a.measure_memory, a.grad, a.B, a.height, a.width, a.size)
        return
    print(run(a.B, a.height, a.width, a.size, a.reps))


if __name__ == "__main__":
    main()
