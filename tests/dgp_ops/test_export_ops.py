"""A module calling solve_translation, warp_perspective and rectify_images: torch.export with a
dynamic batch dimension, an AOTInductor package, loaded in a fresh process (torch and dgp_ops
only), equal to eager."""

import subprocess
import sys

import pytest
import torch

import dgp_ops
from dgp_ops.rectify import rectify_images

S = 32  # output crop side


class OpsModule(torch.nn.Module):
    """Rectify images to a canonical camera, warp them once more, and solve a DLT."""

    def forward(self, images, K, center, side, points3d, points2d, weights):
        crops, rect = rectify_images(images, K, center, side, focal=60.0, out_size=S,
                                     mode="perspective")
        shifted = dgp_ops.warp_perspective(crops, rect.H.new_tensor(
            [[1.0, 0.0, 1.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]]).expand_as(rect.H), (S, S))
        t, valid = dgp_ops.solve_translation(points3d, points2d, rect.K, weights,
                                             return_valid=True)
        return shifted, rect.R, t, valid


#: Where the package is compiled and run: the CPU here, a CUDA device in scripts/gpu_check.sh.
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _inputs(batch: int, device: str = "cpu"):
    g = torch.Generator().manual_seed(batch)
    K = torch.tensor([[80.0, 0.0, 31.5], [0.0, 80.0, 23.5], [0.0, 0.0, 1.0]]).repeat(batch, 1, 1)
    center = torch.tensor([30.0, 20.0]) + torch.rand(batch, 2, generator=g) * 4
    side = torch.full((batch,), 24.0)
    points3d = (torch.rand(batch, 21, 3, generator=g) - 0.5) * 0.2
    proj = (points3d + torch.tensor([0.0, 0.0, 0.6])) @ torch.tensor(
        [[60.0, 0.0, S / 2], [0.0, 60.0, S / 2], [0.0, 0.0, 1.0]]).T
    points2d = proj[..., :2] / proj[..., 2:]
    weights = torch.rand(batch, 21, generator=g) + 0.1
    return tuple(x.to(device) for x in (torch.rand(batch, 3, 48, 64, generator=g), K, center,
                                         side, points3d, points2d, weights))


def _export(device: str = "cpu"):
    b = torch.export.Dim("batch", min=1, max=256)
    dims = ({0: b}, {0: b}, {0: b}, {0: b}, {0: b}, {0: b}, {0: b})
    return torch.export.export(OpsModule(), _inputs(2, device), dynamic_shapes=dims)


def test_export_with_a_dynamic_batch_equals_eager():
    program = _export().module()
    for batch in (1, 4):
        inputs = _inputs(batch)
        for a, b in zip(program(*inputs), OpsModule()(*inputs), strict=True):
            torch.testing.assert_close(a, b)


_FRESH = """
import sys, torch
import dgp_ops
program = torch._inductor.aoti_load_package(sys.argv[1])
outputs = program(*torch.load(sys.argv[2]))
torch.save([o.cpu() for o in outputs], sys.argv[3])
"""


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_aoti_package_in_a_fresh_process(tmp_path, device):
    package = torch._inductor.aoti_compile_and_package(
        _export(device), package_path=str(tmp_path / "ops.pt2"))
    for batch in (1, 3):
        inputs = _inputs(batch, device)
        torch.save(inputs, tmp_path / "in.pt")
        r = subprocess.run([sys.executable, "-c", _FRESH, package, str(tmp_path / "in.pt"),
                            str(tmp_path / "out.pt")], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        # tolerance: the compiled graph fuses the rectification's float32 arithmetic
        for a, b in zip(torch.load(tmp_path / "out.pt"), OpsModule()(*inputs), strict=True):
            torch.testing.assert_close(a, b.cpu(), rtol=1e-4, atol=1e-4)
