"""The host emulation of CUDA (csrc/emu/cuda_emu.h) on small kernels of its own
(tests/cuda_emu/emu_lib.cpp): what it computes and what it reports."""

from __future__ import annotations

import math

import pytest


def test_warp_shuffles_atomics_and_shared_memory_compute(emu):
    assert emu.selftest("sum_of_lanes") == sum(range(64))
    assert emu.selftest("short_warp_own_mask") == 8.0  # the 8 lanes of a partial warp
    # 2048 threads add 0.5 to a double and 0.25 to a float, atomically.
    assert emu.selftest("atomic_adds") == 1024.0 + 1000.0 * 512.0
    assert emu.selftest("shared_every_slot") == 32.0


def test_shared_memory_starts_poisoned(emu):
    """A slot no thread wrote reads as NaN, not as a convenient zero."""
    assert math.isnan(emu.selftest("shared_read_unwritten"))


@pytest.mark.parametrize(
    ("case", "report"),
    [
        ("early_exit_before_shuffle", r"__shfl_down_sync: .*(has exited|exited while lanes)"),
        ("barrier_after_exit", r"__syncthreads: .*exited"),
        ("barrier_against_shuffle", r"deadlock"),
        ("full_mask_on_short_warp", r"names lanes that do not exist in a block of 40 threads"),
        ("shared_too_large", r"shared memory: the block declares 56000 bytes"),
        ("grid_beyond_limit", r"invalid configuration: grid \(1, 65536, 1\)"),
    ],
)
def test_reports_what_cuda_leaves_undefined(emu, case, report):
    with pytest.raises(RuntimeError, match=report) as info:
        emu.selftest(case)
    assert "[cuda-emu]" in str(info.value)


def test_grid_limits_can_be_lowered(emu, grid_limits):
    grid_limits(2147483647, 4)
    with pytest.raises(RuntimeError, match=r"grid \(1, 5, 1\)"):
        emu.selftest("grid_beyond_limit")
