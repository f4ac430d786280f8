"""Command-line inputs of ``predict``: the image, the camera (``--intrinsics``,
``--calibration``, ``--fov``) and the crop box.

Each reader returns checked values or raises :class:`~handdgp_models.errors.UserError` naming
the option (``--image``, ``--intrinsics``, ``--calibration``, ``--fov``, ``--box``) and what
is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .camera import Camera, default_camera, fov_camera, read_calibration
from .errors import UserError
from .files import read_json
from .validate import require_box, require_intrinsics

__all__ = ["DEFAULT_BOX_FRACTION", "camera_option", "default_intrinsics", "parse_box",
           "read_image_option", "read_intrinsics"]

#: Side of the default (centred) box as a fraction of the image's shorter side.
DEFAULT_BOX_FRACTION = 0.8


def read_image_option(path: str | os.PathLike, option: str = "--image") -> np.ndarray:
    """The RGB uint8 ``(H, W, 3)`` image named by ``option``, read completely."""
    from .data._io import read_rgb

    if not Path(path).is_file():
        raise UserError(f"{option}: no such file {path}")
    try:
        return read_rgb(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{option}: {exc}") from exc


def default_intrinsics(height: int, width: int) -> np.ndarray:
    """float32 ``K`` with focal length ``max(H, W)`` pixels and the principal point centred."""
    return default_camera(height, width).K.astype(np.float32)


def read_intrinsics(path: str | os.PathLike | None, height: int, width: int,
                    option: str = "--intrinsics") -> np.ndarray:
    """Intrinsics from a JSON file: a 3x3 ``K``, ``{"K": ...}`` or ``{fx, fy, cx, cy}``.

    Args:
        path: the file, or None for :func:`default_intrinsics`.
        height, width: image size in pixels.
        option: the option name used in errors.

    Returns:
        float32 (3, 3), finite with positive focal lengths (hence invertible).
    """
    if path is None:
        return default_intrinsics(height, width)
    path = Path(path)
    data = read_json(path, option)
    if isinstance(data, dict) and "K" in data:
        data = data["K"]
    if isinstance(data, dict):
        try:
            data = [[data["fx"], 0, data["cx"]], [0, data["fy"], data["cy"]], [0, 0, 1]]
        except KeyError as exc:
            raise UserError(f"{option} {path}: missing {exc}; give K or fx, fy, cx, cy") from exc
    try:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: refused below
            K = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{option} {path}: K must be a 3x3 matrix of numbers ({exc})") from exc
    try:
        return require_intrinsics(K, f"{option} {path}").astype(np.float32)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def parse_box(text: str | None, height: int, width: int, option: str = "--box") -> np.ndarray:
    """A crop box ``"cu,cv,side"`` in pixels, finite, positive side, overlapping the image.

    Args:
        text: the option's value, or None for a centred box of side
            :data:`DEFAULT_BOX_FRACTION` x the shorter image side.
        height, width: image size in pixels.
        option: the option name used in errors.

    Returns:
        float32 (3,).
    """
    if text is None:
        side = DEFAULT_BOX_FRACTION * min(height, width)
        return np.array([(width - 1) / 2, (height - 1) / 2, side], dtype=np.float32)
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise UserError(f"{option}: expected three numbers 'cu,cv,side' in pixels, got {text!r}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: refused below
        box = np.asarray(values, dtype=np.float32)
    try:
        return require_box(box, height, width, option).astype(np.float32)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def camera_option(intrinsics: str | os.PathLike | None = None,
                  calibration: str | os.PathLike | None = None,
                  fov: float | None = None) -> Callable[[int, int], Camera]:
    """The camera of each image from at most one of the options, read and checked now.

    Args:
        intrinsics: ``--intrinsics``, a JSON ``K`` (:func:`read_intrinsics`), used as is.
        calibration: ``--calibration``, an OpenCV calibration file
            (:func:`~handdgp_models.camera.read_calibration`), rescaled to an image of
            another size with the same aspect ratio.
        fov: ``--fov``, the horizontal field of view in degrees.

    Returns:
        ``camera(height, width) -> Camera``; with no option, the default
        (:func:`~handdgp_models.camera.default_camera`).
    """
    given = [n for n, v in (("--intrinsics", intrinsics), ("--calibration", calibration),
                            ("--fov", fov)) if v is not None]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)}: give the camera one way only")
    try:
        if intrinsics is not None:
            K = read_intrinsics(intrinsics, 1, 1)
            cam = Camera(K, source=f"--intrinsics {intrinsics}")
            return lambda h, w: cam
        if calibration is not None:
            calib = read_calibration(calibration)
            return lambda h, w: calib.at_size(h, w, f"an image of {w}x{h}")
        if fov is not None:
            fov_camera(fov, 1, 1)  # checks the value now
            return lambda h, w: fov_camera(fov, h, w)
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return default_camera
