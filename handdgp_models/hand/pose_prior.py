"""Random plausible finger articulations for the default hand (axis-angle, MANO layout).

Each finger gets a "curl" drawn from a mixture (open, fist-like, anything in between) that
drives its three flexion angles together, plus spread and a little twist, all clipped to
per-joint limits. Angles are expressed around the default hand's rest-pose finger axes
(:func:`handdgp_models.hand.default_hand.finger_frames`), which is what MANO's local
axis-angle means for a rest pose whose joints have no rotation.
"""

from __future__ import annotations

import numpy as np

from .default_hand import MANO_FINGERS, finger_frames

__all__ = ["JOINT_LIMITS", "sample_default_pose"]

# Per joint (radians): (flexion min, max), (spread min, max), (twist min, max).
JOINT_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "mcp": ((-0.25, 1.6), (-0.35, 0.35), (-0.12, 0.12)),
    "pip": ((0.0, 1.9), (0.0, 0.0), (-0.08, 0.08)),
    "dip": ((-0.1, 1.3), (0.0, 0.0), (-0.05, 0.05)),
    "thumb_cmc": ((-0.3, 0.9), (-0.45, 0.55), (-0.3, 0.3)),
    "thumb_mcp": ((-0.1, 0.9), (-0.1, 0.1), (-0.15, 0.15)),
    "thumb_ip": ((-0.3, 1.3), (0.0, 0.0), (-0.05, 0.05)),
}


def _curl(n: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.random(n)
    return np.where(kind < 0.3, rng.uniform(0.0, 0.25, n),
                    np.where(kind < 0.55, rng.uniform(0.7, 1.0, n), rng.uniform(0.0, 1.0, n)))


def sample_default_pose(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` finger poses for the default hand.

    Args:
        n: number of poses (>= 0).
        rng: numpy random generator (the only source of randomness).

    Returns:
        (n, 45) float32 axis-angle of MANO joints 1..15 (global orientation excluded).
    """
    frames = finger_frames()
    pose = np.zeros((n, 15, 3))
    hand_curl = _curl(n, rng)
    # Fingers of one hand tend to move together: mix a shared curl into each finger's own.
    for fi, name in enumerate(MANO_FINGERS):
        _, flex_axis, spread_axis = frames[name]
        twist_axis = frames[name][0]
        own = _curl(n, rng)
        mix = rng.uniform(0.3, 0.9, n)
        c = mix * hand_curl + (1 - mix) * own
        if name == "thumb":
            lim = [JOINT_LIMITS[k] for k in ("thumb_cmc", "thumb_mcp", "thumb_ip")]
            flex = np.stack([c * 0.7 + rng.normal(0, 0.2, n), c * 0.6 + rng.normal(0, 0.15, n),
                             c * 0.9 + rng.normal(0, 0.2, n)], axis=1)
            spread = np.stack([rng.uniform(-0.4, 0.5, n), rng.normal(0, 0.05, n),
                               np.zeros(n)], axis=1)
        else:
            lim = [JOINT_LIMITS[k] for k in ("mcp", "pip", "dip")]
            pip = c * 1.7 + rng.normal(0, 0.15, n)
            flex = np.stack([c * 1.3 + rng.normal(0, 0.2, n), pip,
                             0.7 * pip + rng.normal(0, 0.1, n)], axis=1)
            side = {"index": -1.0, "middle": 0.0, "ring": 0.6, "little": 1.2}[name]
            fan = rng.uniform(-0.1, 0.25, n) * side * (1 - c)
            spread = np.stack([fan + rng.normal(0, 0.08, n), np.zeros(n), np.zeros(n)], axis=1)
        twist = np.stack([rng.normal(0, 0.05, n) for _ in range(3)], axis=1)
        for j in range(3):
            (f0, f1), (s0, s1), (t0, t1) = lim[j]
            angles = (np.clip(flex[:, j], f0, f1), np.clip(spread[:, j], s0, s1),
                      np.clip(twist[:, j], t0, t1))
            pose[:, 3 * fi + j] = (np.outer(angles[0], flex_axis)
                                   + np.outer(angles[1], spread_axis)
                                   + np.outer(angles[2], twist_axis))
    return pose.reshape(n, 45).astype(np.float32)
