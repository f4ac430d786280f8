"""Photometric augmentation against torchvision's reference implementations."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from handdgp_models.data import PhotometricConfig
from handdgp_models.data.augment import photometric


def _image():
    g = torch.Generator().manual_seed(0)
    small = torch.rand(1, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear")[0]


def test_hue_matches_torchvision():
    cfg = PhotometricConfig(brightness=0, contrast=0, saturation=0, hue=0.2, blur_prob=0)
    x = _image()
    g = torch.Generator().manual_seed(4)
    out = photometric(x, cfg, g)
    g = torch.Generator().manual_seed(4)
    draws = torch.rand(4, generator=g, dtype=torch.float32)
    h = -0.2 + 0.4 * float(draws[3])
    torch.testing.assert_close(out, TF.adjust_hue(x, h), atol=2e-3, rtol=0)


def test_blur_matches_torchvision():
    cfg = PhotometricConfig(brightness=0, contrast=0, saturation=0, hue=0, blur_prob=1.0,
                            blur_sigma=(1.0, 1.0))
    x = _image()
    out = photometric(x, cfg, torch.Generator().manual_seed(0))
    ref = TF.gaussian_blur(x, [7, 7], [1.0, 1.0])
    # interior: the kernels truncate differently (OpenCV wider), the weights agree closely
    torch.testing.assert_close(out[:, 6:-6, 6:-6], ref[:, 6:-6, 6:-6], atol=3e-3, rtol=0)


def test_identity_config_is_identity_and_range_kept():
    cfg = PhotometricConfig(brightness=0, contrast=0, saturation=0, hue=0, blur_prob=0)
    x = _image()
    torch.testing.assert_close(photometric(x, cfg), x)
    out = photometric(x, PhotometricConfig(brightness=0.9), torch.Generator().manual_seed(1))
    assert out.min() >= 0 and out.max() <= 1 and out.shape == x.shape


def test_bad_config():
    with pytest.raises(ValueError, match="hue"):
        PhotometricConfig(hue=0.7)
    with pytest.raises(ValueError, match="blur_sigma"):
        PhotometricConfig(blur_sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="image"):
        photometric(torch.zeros(1, 4, 4), PhotometricConfig())


def _draws(seed, n=6):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_colour_jitter_matches_torchvision(seed):
    """brightness → contrast → saturation → hue, each clamped, as torchvision's kernels."""
    cfg = PhotometricConfig(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.4, blur_prob=0)
    x = _image()
    out = photometric(x, cfg, torch.Generator().manual_seed(seed))
    u = _draws(seed)
    b, c, s = (0.2 + 1.6 * u[k] for k in range(3))
    h = -0.4 + 0.8 * u[3]
    ref = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x, b), c), s)
    no_hue = photometric(x, PhotometricConfig(brightness=0.8, contrast=0.8, saturation=0.8,
                                              hue=0, blur_prob=0),
                         torch.Generator().manual_seed(seed))
    torch.testing.assert_close(no_hue, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, TF.adjust_hue(ref, h), atol=2e-3, rtol=0)
    assert out.is_contiguous() and out.dtype == torch.float32


def test_dtype_kept_and_input_untouched():
    x = _image().double()
    before = x.clone()
    out = photometric(x, PhotometricConfig(blur_prob=1.0), torch.Generator().manual_seed(3))
    assert out.dtype == torch.float64 and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(x, before, atol=0, rtol=0)
