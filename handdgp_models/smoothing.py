"""Temporal smoothing of predictions over video frames: the One-Euro filter.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass filter
whose cut-off frequency rises with the signal's speed: slow motion is smoothed strongly
(jitter removed), fast motion weakly (little lag). Per element, with ``Te`` the time since the
previous sample::

    alpha(fc) = 1 / (1 + 1 / (2 pi fc Te))
    dx_hat    = alpha(d_cutoff) (x - x_hat_prev) / Te + (1 - alpha(d_cutoff)) dx_hat_prev
    fc        = min_cutoff + beta |dx_hat|
    x_hat     = alpha(fc) x + (1 - alpha(fc)) x_hat_prev
"""

from __future__ import annotations

import math

import numpy as np

from .predict_defaults import SMOOTH_BETA as DEFAULT_BETA
from .predict_defaults import SMOOTH_D_CUTOFF as DEFAULT_D_CUTOFF
from .predict_defaults import SMOOTH_MIN_CUTOFF as DEFAULT_MIN_CUTOFF

__all__ = ["HandSmoother", "OneEuroFilter"]


def _alpha(te: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * te))


class OneEuroFilter:
    """One-Euro filter of an array signal, element by element (see the module docstring).

    Args:
        min_cutoff: cut-off frequency at rest, Hz (lower: smoother, more lag at rest).
        beta: how fast the cut-off rises with speed, per unit of the signal (metres here).
        d_cutoff: cut-off frequency of the speed estimate, Hz.

    ``filter(x, t)`` returns the filtered array for the sample ``x`` at time ``t`` seconds
    (strictly increasing); the first sample passes unchanged.
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF) -> None:
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ValueError(f"min_cutoff and d_cutoff must be positive and beta >= 0, got "
                             f"{min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"x: expected shape {self._x.shape}, got {x.shape}")
        te = float(t) - self._t
        if not te > 0:
            raise ValueError(f"t: times must increase, got {t} after {self._t}")
        a_d = _alpha(te, self.d_cutoff)
        self._dx = a_d * (x - self._x) / te + (1 - a_d) * self._dx
        a = _alpha(te, self.min_cutoff + self.beta * np.abs(self._dx))
        self._x = a * x + (1 - a) * self._x
        self._t = float(t)
        return self._x.copy()


class HandSmoother:
    """One-Euro filters of the hands of a video, one per track.

    A hand's track is its handedness and its rank among the hands of that handedness in the
    frame (the order of the boxes file or the detector); a track missing from a frame starts
    afresh when it comes back. Joints and vertices are filtered together, in metres.
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF,
                 beta: float = DEFAULT_BETA) -> None:
        OneEuroFilter(min_cutoff, beta)  # checks the settings now
        self.min_cutoff, self.beta = min_cutoff, beta
        self._filters: dict[tuple[bool, int], OneEuroFilter] = {}

    def __call__(self, hands: list, t: float) -> None:
        """Smooth the frame's :class:`~handdgp_models.predict.HandPrediction` list in place
        (``joints``, ``verts`` and ``translation``) at time ``t`` seconds."""
        seen: dict[bool, int] = {}
        tracks = {}
        for hand in hands:
            rank = seen.get(hand.right, 0)
            seen[hand.right] = rank + 1
            key = (hand.right, rank)
            f = self._filters.get(key) or OneEuroFilter(self.min_cutoff, self.beta)
            tracks[key] = f
            n, v = len(hand.joints), len(hand.verts)
            out = f(np.concatenate([hand.joints, hand.verts, hand.translation[None]]), t)
            hand.joints, hand.verts, hand.translation = out[:n], out[n:n + v], out[n + v]
        self._filters = tracks
