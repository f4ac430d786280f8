"""The CPU warp's x86-64-v3 (AVX2) kernels against its baseline kernels and OpenCV: the same
uint8 bytes from both, every layout and padding mode, boundaries, rows that are not a multiple
of 8 pixels; the float32 H-only backward of both against the float64 one."""

from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
import torch

import dgp_ops
from dgp_ops import _C
from tests.dgp_ops.test_warp import random_homographies

warp = dgp_ops.warp_perspective
PADS = {"zeros": cv2.BORDER_CONSTANT, "border": cv2.BORDER_REPLICATE,
        "reflection": cv2.BORDER_REFLECT_101}


@contextlib.contextmanager
def baseline_kernels():
    """Run the CPU kernels compiled for the baseline ISA (where the CPU has x86-64-v3)."""
    previous = _C._set_cpu_v3_enabled(False)
    try:
        yield
    finally:
        _C._set_cpu_v3_enabled(previous)


def both(fn):
    out = fn()
    with baseline_kernels():
        base = fn()
    return out, base


def test_switch_restores_previous_setting():
    assert _C._set_cpu_v3_enabled(True) is True
    with baseline_kernels():
        assert _C._set_cpu_v3_enabled(False) is False
    assert _C._set_cpu_v3_enabled(True) is True


def _u8_images(B, h, w, C, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, h, w, C, generator=g) * 256).to(torch.uint8)  # noise: sharp edges


# channels-last RGB (packed gathers), NCHW (planar gathers), channels-last C=4 and C=1.
LAYOUTS = [("channels_last", 3), ("nchw", 3), ("channels_last", 4), ("nchw", 1)]


@pytest.mark.parametrize(("layout", "C"), LAYOUTS)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", list(PADS))
@pytest.mark.parametrize("out_size", [(29, 43), (6, 5)])  # 43 = 5 * 8 + 3 pixels; 5 < 8
def test_uint8_v3_and_baseline_give_the_same_bytes(layout, C, mode, padding_mode, out_size):
    hwc = _u8_images(3, 31, 40, C, seed=40)
    image = hwc.permute(0, 3, 1, 2)
    if layout == "nchw":
        image = image.contiguous()
    # Strong homographies: many output pixels read across the image border or outside it.
    H = random_homographies(3, 31, 40, torch.float64, seed=41, strength=3.0)
    out, base = both(lambda: warp(image, H, out_size, mode=mode, padding_mode=padding_mode))
    assert torch.equal(out, base)
    ref = warp(hwc.permute(0, 3, 1, 2).contiguous(), H, out_size, mode=mode,
               padding_mode=padding_mode)
    assert torch.equal(out, ref)  # every layout gives the same bytes


@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("padding_mode", list(PADS))
def test_uint8_bilinear_matches_opencv_on_a_larger_crop(layout, padding_mode):
    """A central crop with rotation and perspective, as the input pipeline warps it: within one
    grey level of cv2.warpPerspective everywhere, equal on almost every pixel."""
    B, h, w = 2, 96, 128
    hwc = _u8_images(B, h, w, 3, seed=42)
    image = hwc.permute(0, 3, 1, 2)
    if layout == "nchw":
        image = image.contiguous()
    H = random_homographies(B, h, w, torch.float64, seed=43, strength=2.0)
    out = warp(image, H, (70, 90), padding_mode=padding_mode)
    for b in range(B):
        ref = cv2.warpPerspective(hwc[b].numpy(), H[b].numpy(), (90, 70), flags=cv2.INTER_LINEAR,
                                  borderMode=PADS[padding_mode], borderValue=0)
        diff = np.abs(out[b].permute(1, 2, 0).numpy().astype(np.int32) - ref.astype(np.int32))
        assert diff.max() <= 1, (b, diff.max())
        assert (diff > 0).mean() < 0.01


def test_uint8_coordinates_behind_the_camera_and_far_outside():
    """Rows whose w crosses zero and sources far outside the image: zeros, no stray reads."""
    hwc = _u8_images(1, 20, 30, 3, seed=44)
    H = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.05, 0.0, 1.0]],
                      [[1.0, 0.0, 500.0], [0.0, 1.0, -500.0], [0.0, 0.0, 1.0]]],
                     dtype=torch.float64)
    image = hwc.permute(0, 3, 1, 2).expand(2, 3, 20, 30)
    out, base = both(lambda: warp(image, H, (24, 35)))
    assert torch.equal(out, base)
    assert (out[1] == 0).all()


@pytest.mark.parametrize("padding_mode", list(PADS))
@pytest.mark.parametrize(("C", "ow"), [(3, 43), (1, 16), (2, 5)])
def test_float32_h_only_backward_v3_and_baseline_agree(padding_mode, C, ow):
    g = torch.Generator().manual_seed(45)
    img = torch.rand(3, C, 31, 40, generator=g)
    H = random_homographies(3, 31, 40, torch.float64, seed=46, strength=3.0)
    grad = torch.rand(3, C, 29, ow, generator=g)

    def h_grad(image, Hm, gout):
        Hm = Hm.clone().requires_grad_(True)
        out = warp(image, Hm, (29, ow), padding_mode=padding_mode)
        (gH,) = torch.autograd.grad(out, Hm, gout)
        return gH

    out, base = both(lambda: h_grad(img, H.float(), grad))
    ref = h_grad(img.double(), H, grad.double())
    scale = ref.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    torch.testing.assert_close(out.double() / scale, ref / scale, rtol=0, atol=2e-4)
    torch.testing.assert_close(base.double() / scale, ref / scale, rtol=0, atol=2e-4)
    # An expanded upstream gradient (stride 0) reads the same values.
    gexp = torch.ones(1, 1, 1, 1).expand(3, C, 29, ow)
    torch.testing.assert_close(h_grad(img, H.float(), gexp),
                               h_grad(img, H.float(), gexp.contiguous()), rtol=1e-5, atol=1e-6)
