#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: build the extension for that GPU, run the
# CUDA-marked tests (tests/dgp_ops/test_cuda.py: uint8 bytes, channels-last, non-contiguous and
# expanded inputs, empty batches, more than 65,535 items, a non-default stream, cuda:1 when
# present, no host syncs, graph capture, reduce-overhead, deterministic mode, autocast; the
# CUDA-vs-CPU comparisons of test_dlt.py and test_warp.py; AOTInductor packages compiled for
# CUDA and run in a fresh process, of the ops and of the network, in test_export_ops.py and
# tests/handdgp_models/test_export.py), bench_dlt on the GPU, a GPU warp comparison (dgp_ops vs
# kornia and grid_sample, H-only and image+H forward + backward, peak GPU memory), bench_warp
# (CPU), and a short training-throughput run in fp32 and bf16, then print one summary. Meant to
# finish in about 10 minutes.
#
#   bash scripts/gpu_check.sh          # uses .venv/bin/python (or $PYTHON); logs in build/gpu_check
set -uo pipefail
cd "$(dirname "$0")/.."
# The project's venv where it exists, else the machine's python3 (a GPU machine's image may
# hold torch but not smplx, kornia, trimesh or fast-simplification: those go in as wheels).
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ]; then PYTHON=python3; fi
PY=${PYTHON:-.venv/bin/python}
LOG=${GPU_CHECK_LOG:-build/gpu_check}
mkdir -p "$LOG"
SUMMARY=()

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, record status and wall time
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  echo "[gpu_check] $name"
  timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
  rc=$?
  local status=$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc=$rc, see $LOG/$name.log)")
  SUMMARY+=("$(printf '%-14s %-40s %4ds' "$name" "$status" $((SECONDS - t0)))")
  return $rc
}

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "[gpu_check] no CUDA device visible: nothing to check"; exit 1
fi
ARCH=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name())")

step build 420 env FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS=$(nproc) \
  "$PY" setup.py build_ext --inplace || { printf '%s\n' "${SUMMARY[@]}"; exit 1; }
step cuda_tests 540 "$PY" -m pytest -q -p no:cacheprovider -rs -m cuda tests/dgp_ops \
  tests/handdgp_models/test_export.py
step bench_dlt 120 "$PY" -m benchmarks.bench_dlt --device cuda
step warp_gpu 120 "$PY" - <<'PY'
import torch
import torch.nn.functional as F

import dgp_ops
from benchmarks._timing import time_interleaved
from benchmarks.bench_warp import grid_for, kornia_warp, make_inputs

S = 224
img, H = (x.cuda() for x in make_inputs(32, 480, 640, S))
grid = grid_for(img, H, S)
for case in ("H", "image+H"):
    fns, peaks = {}, {}
    for m in ("dgp_ops", "kornia") + (("grid_sample",) if case == "image+H" else ()):
        i = img.clone().requires_grad_(case == "image+H")
        h = H.clone().requires_grad_(True)

        def run(m=m, i=i, h=h):
            if m == "dgp_ops":
                out = dgp_ops.warp_perspective(i, h, (S, S))
            elif m == "kornia":
                out = kornia_warp(i, h, S)
            else:
                out = F.grid_sample(i, grid, align_corners=True)
            out.sum().backward()

        run()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        peaks[m] = (torch.cuda.max_memory_allocated() - base) / 2**20
        fns[m] = run
    t = time_interleaved(fns, reps=20, device="cuda")
    for m in fns:
        print(f"warp fwd+bwd {case:<8} {m:<12} {t[m] * 1e3:8.3f} ms  x{t[m] / t['dgp_ops']:.2f}"
              f"  peak {peaks[m]:8.1f} MiB")
PY
step bench_warp 180 "$PY" -m benchmarks.bench_warp --reps 3
step train 120 "$PY" - <<'PY'
import time

import torch

from handdgp_models.model import build_model

torch.manual_seed(0)
model = build_model({"backbone": "resnet50"}).cuda().train()
opt = torch.optim.SGD(model.parameters(), lr=1e-4)
B = 32
image = torch.rand(B, 3, 224, 224, device="cuda")
K = torch.tensor([[1000.0, 0, 112], [0, 1000.0, 112], [0, 0, 1]], device="cuda").expand(B, 3, 3)
R = torch.eye(3, device="cuda").expand(B, 3, 3)


def floats(x):
    if isinstance(x, torch.Tensor):
        return [x] if x.is_floating_point() and x.requires_grad else []
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in floats(v)]
    return []


def step(dtype):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
        outputs = model(image, K, R)
    loss = sum(t.float().square().mean() for t in floats(outputs))
    loss.backward()
    opt.step()


# train.precision's two settings for GPUs: float32, and bfloat16 autocast (no scaler needed)
for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
    for _ in range(3):
        step(dtype)
    torch.cuda.synchronize()
    n, t0 = 20, time.perf_counter()
    for _ in range(n):
        step(dtype)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / n
    print(f"training step {name} (resnet50, B={B}, 224 px): {dt * 1e3:.1f} ms, "
          f"{B / dt:.0f} images/s")
PY

echo
echo "==== gpu_check summary: $GPU (sm_${ARCH/./}) ===="
printf '%s\n' "${SUMMARY[@]}"
echo "---- cuda tests";  grep -E "^(FAILED|ERROR|SKIPPED)" "$LOG/cuda_tests.log"; tail -n 1 "$LOG/cuda_tests.log"
echo "---- bench_dlt";   cat "$LOG/bench_dlt.log"
echo "---- warp on the GPU"; cat "$LOG/warp_gpu.log"
echo "---- bench_warp (CPU)"; cat "$LOG/bench_warp.log"
echo "---- training";    tail -n 2 "$LOG/train.log"
