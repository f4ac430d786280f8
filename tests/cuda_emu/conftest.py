"""The emulated CUDA kernels: the library that scripts/emu_check.sh builds from
csrc/*/..._cuda.cuh under the host emulation (AddressSanitizer + UndefinedBehaviorSanitizer)
and names in DGP_EMU_LIB. Without it these tests are skipped (the regular test run)."""

from __future__ import annotations

import os

import pytest
import torch

import dgp_ops  # noqa: F401  (the CPU kernels the emulated ones are compared with)

LIB = os.environ.get("DGP_EMU_LIB")


def pytest_collection_modifyitems(config, items):
    if LIB:
        return
    skip = pytest.mark.skip(reason="needs the emulation library (bash scripts/emu_check.sh)")
    for item in items:
        if "cuda_emu" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def emu():
    """``torch.ops.dgp_ops_emu``: the CUDA launchers and kernels run on CPU tensors."""
    torch.ops.load_library(LIB)
    return torch.ops.dgp_ops_emu


@pytest.fixture
def grid_limits(emu):
    """Sets the emulated grid limits (max_grid_x, max_grid_y) for one test."""
    previous = []

    def set_limits(max_grid_x: int, max_grid_y: int) -> None:
        previous.append(emu.set_grid_limits(max_grid_x, max_grid_y))

    yield set_limits
    if previous:
        emu.set_grid_limits(*previous[0])
