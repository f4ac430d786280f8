#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv: torch, the Python
# dependencies, and the dgp_ops extension built in place. Safe to run again: an existing
# venv is reused and the build is incremental.
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
$PY -m pip install -q --upgrade pip
if ! $PY -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] installing torch and torchvision"
  $PY -m pip install -q torch torchvision
fi
$PY -m pip install -q setuptools wheel ninja
echo "[setup] building dgp_ops and installing the project (editable)"
MAX_JOBS=${MAX_JOBS:-2} $PY -m pip install -q --no-build-isolation -e ".[test]"
$PY -c "import dgp_ops, handdgp_models; print('[setup] ready: torch', __import__('torch').__version__)"
