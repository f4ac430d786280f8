#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv: torch, the Python
# dependencies, and the dgp_ops extension built in place.
#
# Safe and quick to run again: the dependencies are installed only when pyproject.toml changed
# (or the venv is new), and the extension build is incremental (nothing changed: nothing is
# compiled; a changed .cpp/.cu/.h file: only what depends on it; a new torch version, CUDA
# switched on or off, or another architecture list: everything; see setup.py).
#
# Environment: PYTHON (interpreter for the venv, default python3); FORCE_CUDA=1 with CUDA_HOME
# builds the CUDA kernels without a visible GPU; TORCH_CUDA_ARCH_LIST picks architectures.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
STAMP=.venv/.handdgp-dependencies
want=$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  $PY -m pip install -q --upgrade pip
  if ! $PY -c "import torch, torchvision" 2>/dev/null; then
    echo "[setup] installing torch and torchvision"
    $PY -m pip install -q torch torchvision
  fi
  $PY -m pip install -q setuptools wheel ninja
  echo "[setup] installing the project's dependencies and the packages (editable)"
  DGP_OPS_NO_EXTENSION=1 $PY -m pip install -q --no-build-isolation -e ".[test]"
  echo "$want" > "$STAMP"
fi
# The extension is up to date when it exists, no source or header is newer, and it was built
# with this torch and these CUDA settings (read without importing torch: it takes seconds).
mkdir -p build
so=$(ls dgp_ops/_C*.so 2>/dev/null | head -n 1 || true)
torch_version=$(grep -h -m1 "^__version__" .venv/lib/python*/site-packages/torch/version.py)
settings="$torch_version cuda=${FORCE_CUDA:-} arch=${TORCH_CUDA_ARCH_LIST:-} home=${CUDA_HOME:-}"
if [ -n "$so" ] && [ "$(cat build/setup_ext.settings 2>/dev/null)" = "$settings" ] \
    && [ -z "$(find csrc setup.py -newer "$so" -print -quit)" ]; then
  echo "[setup] dgp_ops is up to date"
else
  echo "[setup] building dgp_ops (incremental; the compiler's output goes to build/setup_ext.log)"
  if ! MAX_JOBS=${MAX_JOBS:-2} $PY setup.py -q build_ext --inplace > build/setup_ext.log 2>&1; then
    tail -n 40 build/setup_ext.log
    echo "[setup] building dgp_ops failed (whole log: build/setup_ext.log)"
    exit 1
  fi
  echo "$settings" > build/setup_ext.settings
fi
$PY -c "import dgp_ops, handdgp_models; print('[setup] ready: torch', __import__('torch').__version__)"
