"""Procedural backgrounds and occluders for synthetic images (OpenCV + numpy, no files).

Each background is a random mix of smooth gradients, multi-octave value noise, blurred colour
blobs, stripes/checkers and line clutter, so a network cannot find the hand by colour or
texture statistics alone.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["random_background", "draw_occluders"]


def _gradient(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    return (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.float32)


def _value_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((h, w, 3), np.float32)
    amp, total = 1.0, 0.0
    base = int(rng.integers(2, 6))
    for octave in range(4):
        cells = base * 2**octave
        small = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= rng.uniform(0.35, 0.65)
    out /= total
    # Random colour mapping of the noise channels.
    mix = rng.uniform(-0.5, 1.0, (3, 3)).astype(np.float32)
    out = out @ mix + rng.uniform(-0.3, 0.5, 3).astype(np.float32)
    return out


def _blobs(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(0, 1, 3)
    for _ in range(int(rng.integers(3, 12))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(5, max(6, w // 2))), int(rng.integers(5, max(6, h // 2))))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                    rng.uniform(0, 1, 3).tolist(), -1)
    if rng.random() < 0.7:  # soft, out-of-focus blobs; otherwise hard-edged shapes
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 0.04 * min(h, w) + 1))
    return img


def _pattern(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(6, 60)
    a = (np.cos(ang) * xx + np.sin(ang) * yy) / period
    if rng.random() < 0.5:
        b = (-np.sin(ang) * xx + np.cos(ang) * yy) / period
        t = ((np.floor(a) + np.floor(b)) % 2).astype(np.float32)  # checker
    else:
        t = (0.5 + 0.5 * np.sin(2 * np.pi * a)).astype(np.float32)  # stripes
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    return (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)


def _clutter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 15))):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, rng.uniform(0, 1, 3).tolist(), int(rng.integers(1, 6)),
                 cv2.LINE_AA)
    return img


_KINDS = (_gradient, _value_noise, _blobs, _pattern)


def random_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random procedural background.

    Args:
        height, width: size in pixels.
        rng: numpy random generator (the only source of randomness).

    Returns:
        (height, width, 3) uint8 RGB.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height/width: expected positive sizes, got {height}x{width}")
    first = _KINDS[int(rng.integers(len(_KINDS)))](height, width, rng)
    if rng.random() < 0.5:
        second = _KINDS[int(rng.integers(len(_KINDS)))](height, width, rng)
        alpha = rng.uniform(0.2, 0.8)
        first = alpha * first + (1 - alpha) * second
    first = np.ascontiguousarray(first, dtype=np.float32)
    if rng.random() < 0.5:
        first = _clutter(first, rng)
    return (np.clip(first, 0, 1) * 255 + 0.5).astype(np.uint8)


def draw_occluders(image: np.ndarray, box: tuple[float, float, float], rng: np.random.Generator,
                   max_count: int = 2) -> np.ndarray:
    """Draw random filled shapes over the hand's box region, in place.

    Args:
        image: (H, W, 3) uint8 RGB, modified in place.
        box: (centre_u, centre_v, side) of the hand in pixels; occluders are placed near it.
        rng: numpy random generator.
        max_count: at most this many shapes.

    Returns:
        (H, W) bool mask of the occluded pixels.
    """
    h, w = image.shape[:2]
    occ = np.zeros((h, w), np.uint8)
    cu, cv, side = box
    for _ in range(int(rng.integers(1, max_count + 1))):
        centre = np.array([cu, cv]) + rng.uniform(-0.6, 0.6, 2) * side
        size = rng.uniform(0.08, 0.3) * side
        if rng.random() < 0.5:
            cv2.ellipse(occ, (int(centre[0]), int(centre[1])),
                        (max(1, int(size)), max(1, int(size * rng.uniform(0.3, 1.0)))),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1)
        else:
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = size * rng.uniform(0.5, 1.2, n)
            pts = centre + np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
            cv2.fillPoly(occ, [pts.astype(np.int32)], 1)
    m = occ > 0
    if m.any():
        colour = rng.uniform(0, 255, 3)
        texture = rng.normal(0, 12, (h, w, 1))
        image[m] = np.clip(colour + texture[m], 0, 255).astype(np.uint8)
    return m
