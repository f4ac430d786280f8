"""Fused weighted DLT vs. the HandDGP-style composite and the explicit reference.

    python -m benchmarks.bench_dlt [--quick] [--device cpu|cuda] [--threads-check]

Times forward and forward+backward for float32 inputs with N = 21 keypoints, all candidates
measured side by side in one run (interleaved repetitions, medians).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

import dgp_ops
from dgp_ops.reference import dlt_translation_handdgp_style, dlt_translation_reference

from ._timing import fmt_time, time_interleaved

# The composite materialises (B, 2N, 2N) weight matrices (plus products and their gradients).
COMPOSITE_MAX_BYTES = 4 * 2**30


def make_problem(B: int, N: int, device: str, dtype=torch.float32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    p3 = (torch.rand(B, N, 3, generator=gen) - 0.5) * 0.2
    t = torch.stack(
        [torch.rand(B, generator=gen) * 0.2 - 0.1, torch.rand(B, generator=gen) * 0.2 - 0.1,
         0.3 + 1.2 * torch.rand(B, generator=gen)], dim=1)  # fmt: skip
    f = 300.0 + 1700.0 * torch.rand(B, generator=gen)
    K = torch.zeros(B, 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f, f, 112.0, 112.0, 1.0
    proj = (p3 + t[:, None]) @ K.transpose(1, 2)
    p2 = proj[..., :2] / proj[..., 2:] + torch.randn(B, N, 2, generator=gen)
    w = torch.rand(B, N, generator=gen)
    return [x.to(device=device, dtype=dtype) for x in (p3, p2, K, w)]


def _composite_bytes(B: int, N: int, itemsize: int) -> int:
    return 6 * B * (2 * N) ** 2 * itemsize


def _candidates(inputs, backward: bool) -> dict[str, Callable[[], object]]:
    impls = {
        "fused": dgp_ops.solve_translation,
        "handdgp-style": dlt_translation_handdgp_style,
        "reference": dlt_translation_reference,
    }
    out = {}
    for name, fn in impls.items():
        if backward:
            leaves = [x.detach().clone().requires_grad_() for x in inputs]

            def run(fn=fn, leaves=leaves):
                for x in leaves:
                    x.grad = None
                fn(*leaves).sum().backward()
        else:

            def run(fn=fn):
                with torch.no_grad():
                    fn(*inputs)

        out[name] = run
    return out


def run_table(sizes: list[int], N: int, device: str, reps: int, budget_s: float) -> str:
    header = (
        f"{'B':>6} {'pass':<8} {'fused':>10} {'handdgp-style':>14} {'reference':>10}"
        f" {'x handdgp':>10} {'x ref':>8}"
    )
    lines = [f"weighted DLT, N={N}, float32, device={device}, threads={torch.get_num_threads()}",
             header, "-" * len(header)]  # fmt: skip
    for B in sizes:
        inputs = make_problem(B, N, device)
        for backward in (False, True):
            fns = _candidates(inputs, backward)
            if _composite_bytes(B, N, 4) > COMPOSITE_MAX_BYTES:
                del fns["handdgp-style"]
            times = time_interleaved(fns, reps=reps, budget_s=budget_s, device=device)
            fused, comp, ref = (times.get(k) for k in ("fused", "handdgp-style", "reference"))
            ratio_c = f"{comp / fused:.1f}x" if comp is not None else "n/a"
            lines.append(
                f"{B:>6} {'fwd+bwd' if backward else 'fwd':<8} {fmt_time(fused):>10}"
                f" {fmt_time(comp):>14} {fmt_time(ref):>10} {ratio_c:>10} {ref / fused:>7.1f}x"
            )
    return "\n".join(lines)


def threads_check(B: int, N: int, reps: int) -> str:
    """Fused forward+backward time with 1 thread vs. the current thread count."""
    inputs = make_problem(B, N, "cpu")
    run = _candidates(inputs, backward=True)["fused"]
    n = torch.get_num_threads()
    result = {}
    for threads in sorted({1, n}):
        torch.set_num_threads(threads)
        result[threads] = time_interleaved({"fused": run}, reps=reps)["fused"]
    torch.set_num_threads(n)
    parts = ", ".join(f"{k} thread(s): {fmt_time(v)}" for k, v in result.items())
    return f"fused fwd+bwd at B={B} on CPU: {parts}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads-check", action="store_true", help="compare 1 vs all threads")
    args = parser.parse_args(argv)
    N = 21
    if args.quick:
        print(run_table([1, 16], N, args.device, reps=3, budget_s=0.5))
    else:
        print(run_table([1, 32, 256, 4096, 65536], N, args.device, reps=15, budget_s=10.0))
    if args.threads_check:
        print(threads_check(256 if args.quick else 65536, N, reps=3 if args.quick else 10))


if __name__ == "__main__":
    main()
