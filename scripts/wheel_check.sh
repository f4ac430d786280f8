#!/usr/bin/env bash
# Build the handdgp wheel (dgp_ops with its compiled extension, handdgp_models), install it into
# a clean virtual environment outside the source tree (with the torch and torchvision versions it
# was built against, and nothing of the project besides the wheel), and run a smoke test there:
# import, the DLT and the warp, fake tensors and torch.compile, handdgp_models, a tiny training
# run and a prediction.
#
#   bash scripts/wheel_check.sh       # uses .venv/bin/python (or $PYTHON) to build
#
# The wheel is cp310-abi3 (the extension uses only Python's limited API) for this platform and
# is tied to the torch version (and CUDA settings) it was built with. The build reuses the
# objects of the in-place build where the settings match (setup.py), so only the link runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${WHEEL_DIR:-$ROOT/build/wheel}
rm -rf "$OUT" && mkdir -p "$OUT"

echo "[wheel] building"
t0=$SECONDS
MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel -q --no-build-isolation --no-deps . -w "$OUT" \
  > "$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log"; exit 1; }
WHEEL=$(ls "$OUT"/handdgp-*.whl)
echo "[wheel] $(basename "$WHEEL") in $((SECONDS - t0)) s"
case "$(basename "$WHEEL")" in *-cp310-abi3-*) ;; *) echo "[wheel] not an abi3 wheel"; exit 1 ;; esac
modules=$("$PY" -c "import sys, zipfile; print(*[n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith('dgp_ops/_C')])" "$WHEEL")
[ "$modules" = "dgp_ops/_C.abi3.so" ] || { echo "[wheel] expected one dgp_ops/_C.abi3.so, got: $modules"; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "[wheel] a clean venv in $WORK"
"$PY" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
versions=$("$PY" -c "import torch, torchvision; print(f'torch=={torch.__version__.split(\"+\")[0]} torchvision=={torchvision.__version__.split(\"+\")[0]}')")
t0=$SECONDS
"$VPY" -m pip install -q $versions > "$OUT/install.log" 2>&1 \
  || { tail -n 40 "$OUT/install.log"; exit 1; }
"$VPY" -m pip install -q "$WHEEL" >> "$OUT/install.log" 2>&1 \
  || { tail -n 40 "$OUT/install.log"; exit 1; }
echo "[wheel] installed with $versions in $((SECONDS - t0)) s"

echo "[wheel] smoke test (from $WORK, the source tree not on the path)"
cd "$WORK"
env -u PYTHONPATH "$VPY" - "$ROOT" <<'PY'
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import dgp_ops
import handdgp_models

root = Path(sys.argv[1]).resolve()
for module in (dgp_ops, handdgp_models):
    where = Path(module.__file__).resolve()
    assert root not in where.parents, f"{module.__name__} imported from the source tree: {where}"
print(f"[wheel] dgp_ops {dgp_ops.__version__} from {Path(dgp_ops.__file__).parent}")

# the DLT and the warp, eager and with gradients
p3 = (torch.rand(4, 21, 3) - 0.5) * 0.2
t_true = torch.tensor([0.03, -0.05, 0.7])
K = torch.tensor([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
proj = (p3 + t_true) @ K.T
p2 = (proj[..., :2] / proj[..., 2:]).requires_grad_()
t = dgp_ops.solve_translation(p3, p2, K)
assert torch.allclose(t, t_true.expand(4, 3), atol=1e-4)
t.sum().backward()
img = torch.rand(2, 3, 48, 64, requires_grad=True)
H = torch.tensor([[0.5, 0.0, 4.0], [0.0, 0.5, 2.0], [0.0, 0.0, 1.0]])
out = dgp_ops.warp_perspective(img, H, (24, 32))
out.sum().backward()
assert out.shape == (2, 3, 24, 32) and img.grad is not None

# fake tensors and torch.compile
with FakeTensorMode():
    fake = torch.ops.dgp_ops.warp_perspective(torch.empty(2, 3, 8, 8), torch.empty(2, 3, 3), 4,
                                              5, "bilinear", "zeros")
    assert fake.shape == (2, 3, 4, 5)
compiled = torch.compile(lambda a, b, k: dgp_ops.solve_translation(a, b, k), fullgraph=True)
assert torch.allclose(compiled(p3, p2.detach(), K), t.detach(), atol=1e-6)

# handdgp_models: a tiny run on the embedded hand, then a prediction from its checkpoint
from handdgp_models.config import load_config
from handdgp_models.engine import Predictor
from handdgp_models.inputs import default_intrinsics, parse_box
from handdgp_models.train import train

cfg = load_config("tiny", ["train.steps=1", 'cache_dir="cache"'])
train(cfg, "run", progress=False)
predict = Predictor.from_checkpoint("run/checkpoint.pt")
pred = predict(np.zeros((90, 120, 3), np.uint8), default_intrinsics(90, 120),
               parse_box(None, 90, 120))
assert pred["joints"].shape == (21, 3) and np.isfinite(pred["verts"]).all()
print(f"[wheel] smoke test passed (torch {torch.__version__}, Python "
      f"{sys.version.split()[0]}, cwd {os.getcwd()})")
PY
