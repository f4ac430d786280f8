"""The camera of real images: intrinsics, lens distortion and the size they were calibrated at.

A :class:`Camera` is what ``predict`` carries for each image: ``K`` in pixels, OpenCV's
distortion coefficients (zeros when the camera has none) with their model (``"pinhole"``:
``(k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tx, ty]]]])`` as in ``cv2.undistortPoints``;
``"fisheye"``: ``(k1, k2, k3, k4)`` as in ``cv2.fisheye``), and the image size of a
calibration. It comes from an OpenCV calibration file (:func:`read_calibration`), a field of
view (:func:`fov_camera`) or a plain ``K`` (:func:`default_camera` when nothing is known).

Prediction samples a distorted image through its lens directly into the canonical view
(``dgp_ops.warp_perspective_distorted``) and projects its results back through the lens
(:meth:`Camera.project`). :func:`require_supported_lens` refuses what the lens model does not
cover (thin-prism and tilt terms) instead of silently ignoring it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .validate import require_finite, require_intrinsics

__all__ = ["DISTORTION_MODELS", "Camera", "default_camera", "fov_camera", "read_calibration",
           "require_supported_lens"]

#: Distortion models and the numbers of coefficients each accepts (OpenCV's).
DISTORTION_MODELS = {"pinhole": (4, 5, 8, 12, 14), "fisheye": (4,)}
#: How calibration files name the models (ROS ``distortion_model`` names included).
_MODEL_NAMES = {"pinhole": "pinhole", "plumb_bob": "pinhole", "rational_polynomial": "pinhole",
                "radtan": "pinhole", "fisheye": "fisheye", "equidistant": "fisheye"}
#: Field names of the camera matrix, the coefficients and the size in calibration files:
#: OpenCV's calibration sample first, then common alternatives.
_K_KEYS = ("camera_matrix", "cameraMatrix", "K")
_DIST_KEYS = ("distortion_coefficients", "distCoeffs", "dist_coeffs", "D")
_ASPECT_TOLERANCE = 0.01  # relative: a calibration is rescaled only to the same aspect ratio


def _no_distortion() -> np.ndarray:
    return np.zeros(5)


@dataclass(frozen=True)
class Camera:
    """A real camera.

    Attributes:
        K: (3, 3) float64 intrinsics in pixels (pixel centres at integers).
        distortion: (N,) float64 coefficients in OpenCV's order; zeros: none.
        model: ``"pinhole"`` or ``"fisheye"`` (which formula the coefficients belong to).
        size: ``(height, width)`` the intrinsics were calibrated at, or None (any size).
        source: where it came from, for messages (a file, an option).
    """

    K: np.ndarray
    distortion: np.ndarray = field(default_factory=_no_distortion)
    model: str = "pinhole"
    size: tuple[int, int] | None = None
    source: str = "camera"

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", require_intrinsics(self.K, f"{self.source}: K"))
        dist = require_finite(self.distortion, f"{self.source}: distortion").reshape(-1)
        if self.model not in DISTORTION_MODELS:
            raise ValueError(f"{self.source}: distortion model must be one of "
                             f"{list(DISTORTION_MODELS)}, got {self.model!r}")
        if len(dist) not in DISTORTION_MODELS[self.model]:
            raise ValueError(f"{self.source}: a {self.model} camera has "
                             f"{' or '.join(map(str, DISTORTION_MODELS[self.model]))} "
                             f"distortion coefficients, got {len(dist)}")
        object.__setattr__(self, "distortion", dist)

    @property
    def distorted(self) -> bool:
        """A fisheye lens, or a pinhole lens with a coefficient that is not zero."""
        return self.model == "fisheye" or bool(np.any(self.distortion != 0))

    @property
    def lens_coefficients(self) -> np.ndarray:
        """The coefficients the lens model of ``dgp_ops`` takes: at most 8 (``k1, k2, p1, p2,
        k3, k4, k5, k6``) for a pinhole, whose thin-prism and tilt terms must be zero
        (:func:`require_supported_lens`); 4 for a fisheye."""
        require_supported_lens(self)
        return self.distortion[:8]

    def lens(self, dtype=None):
        """``dgp_ops.lens.Distortion`` of this camera (float64 tensors), or None for an ideal
        pinhole."""
        if not self.distorted:
            return None
        import torch

        from dgp_ops.lens import Distortion

        return Distortion(torch.tensor(self.lens_coefficients, dtype=dtype or torch.float64),
                          self.model)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` of camera-space points ``(N, 3)`` (metres), through the lens
        (``x/z, y/z`` through the lens and ``K``, for every point, as ``cv2.projectPoints``
        computes them; a point behind the camera has no meaningful image)."""
        p = np.asarray(points, dtype=np.float64) @ self.K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = p[:, :2] / p[:, 2:]
        lens = self.lens()
        ok = np.isfinite(uv).all(1)
        if lens is None or not ok.any():
            return uv
        import torch

        from dgp_ops.lens import distort_points

        uv[ok] = distort_points(torch.from_numpy(uv[ok])[None], torch.from_numpy(self.K)[None],
                                lens)[0].numpy()
        return uv

    def at_size(self, height: int, width: int, name: str = "image") -> Camera:
        """This camera for an image of ``height x width`` pixels.

        A calibration of another size with the same aspect ratio is rescaled (the focal
        lengths and skew by the scale, the principal point as a pixel centre,
        ``c' = (c + 0.5) s - 0.5``); the distortion coefficients act on normalised
        coordinates and stay.

        Raises:
            ValueError: the aspect ratios differ, naming the image and the camera's source.
        """
        if self.size is None or tuple(self.size) == (height, width):
            return self
        h0, w0 = self.size
        sx, sy = width / w0, height / h0
        if abs(sx / sy - 1.0) > _ASPECT_TOLERANCE:
            raise ValueError(f"{self.source}: calibrated for {w0}x{h0} images, but {name} is "
                             f"{width}x{height} (another aspect ratio): calibrate at this size")
        K = self.K.copy()
        K[0, :2] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Camera(K, self.distortion, self.model, (height, width), self.source)


def default_camera(height: int, width: int) -> Camera:
    """Focal length ``max(H, W)`` pixels, principal point at the image centre, no distortion."""
    f = float(max(height, width))
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    return Camera(K, size=(height, width), source="default intrinsics")


def fov_camera(fov_deg: float, height: int, width: int) -> Camera:
    """A pinhole of horizontal field of view ``fov_deg`` across the image width:
    ``f = (W / 2) / tan(fov / 2)``, square pixels, principal point at the centre."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"--fov: expected a field of view in (0, 180) degrees, got {fov_deg:g}")
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    return Camera(K, size=(height, width), source=f"--fov {fov_deg:g}")


def require_supported_lens(camera: Camera) -> Camera:
    """``camera`` when its lens is one ``dgp_ops`` models: a fisheye, or a pinhole whose
    thin-prism and tilt coefficients (``s1..s4, tx, ty``, the 9th to 14th) are zero.

    Raises:
        ValueError: naming the camera's source and the coefficients, and what to do.
    """
    if camera.model == "pinhole" and np.any(camera.distortion[8:] != 0):
        raise ValueError(
            f"{camera.source}: thin-prism/tilt distortion coefficients "
            f"{np.round(camera.distortion[8:], 6).tolist()} are not zero; prediction models "
            "lenses with up to 8 coefficients (k1, k2, p1, p2, k3, k4, k5, k6): calibrate "
            "without CALIB_THIN_PRISM_MODEL / CALIB_TILTED_MODEL, or undistort the images first")
    return camera


def _node_value(node, where: str):
    """A FileStorage node as numbers: an ``opencv-matrix``, a ``{rows, cols, data}`` map
    (ROS), a (nested) sequence or a number."""
    if node.isMap():
        if not node.getNode("data").empty():
            data = np.asarray(_node_value(node.getNode("data"), where), dtype=np.float64)
            rows, cols = node.getNode("rows"), node.getNode("cols")
            if not rows.empty() and not cols.empty():
                return data.reshape(int(rows.real()), int(cols.real()))
            return data
        mat = node.mat()
        if mat is None:
            raise ValueError(f"{where}: not a matrix")
        return np.asarray(mat, dtype=np.float64)
    if node.isSeq():
        return [_node_value(node.at(i), where) for i in range(node.size())]
    if node.isReal() or node.isInt():
        return node.real()
    raise ValueError(f"{where}: expected numbers")


def _first_node(fs, keys: tuple[str, ...]):
    for key in keys:
        node = fs.getNode(key)
        if not node.empty() and not node.isNone():
            return key, node
    return None, None


def _calibration_size(fs, where: str) -> tuple[int, int] | None:
    width, height = fs.getNode("image_width"), fs.getNode("image_height")
    if not width.empty() and not height.empty():
        return int(height.real()), int(width.real())
    _, node = _first_node(fs, ("image_size", "imageSize"))
    if node is None:
        return None
    values = np.asarray(_node_value(node, f"{where}: image size")).reshape(-1)
    if values.shape != (2,) or not (values > 0).all():
        raise ValueError(f"{where}: image size must be two positive numbers (width, height), "
                         f"got {values.tolist()}")
    return int(values[1]), int(values[0])


def read_calibration(path: str | os.PathLike, option: str = "--calibration") -> Camera:
    """A camera from an OpenCV calibration file (``cv2.FileStorage``: YAML, JSON or XML).

    Fields: ``camera_matrix`` (3x3; also ``cameraMatrix`` or ``K``), optionally
    ``distortion_coefficients`` (also ``distCoeffs``, ``dist_coeffs``, ``D``; zeros when
    absent), ``image_width`` and ``image_height`` (or ``image_size`` = [width, height]) and
    ``distortion_model`` (``pinhole``/``plumb_bob``/``rational_polynomial`` or
    ``fisheye``/``equidistant``; default pinhole). Matrices may be OpenCV's
    ``opencv-matrix`` nodes, ROS's ``{rows, cols, data}`` maps or plain nested lists.

    Raises:
        ValueError: naming ``option``, the file and the field that is missing or invalid.
    """
    import cv2

    path = Path(path)
    where = f"{option} {path}"
    if not path.is_file():
        raise ValueError(f"{option}: no such file {path}")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # OpenCV's parse errors arrive as either
        reason = str(exc.__cause__ or exc).strip().splitlines()[-1]
        raise ValueError(f"{where}: not a readable OpenCV calibration file ({reason})") from exc
    try:
        if not fs.isOpened():
            raise ValueError(f"{where}: not a readable OpenCV calibration file")
        key, node = _first_node(fs, _K_KEYS)
        if node is None:
            raise ValueError(f"{where}: no camera matrix (one of {', '.join(_K_KEYS)})")
        K = _node_value(node, f"{where}: {key}")
        key_d, node_d = _first_node(fs, _DIST_KEYS)
        dist = _no_distortion() if node_d is None else _node_value(node_d, f"{where}: {key_d}")
        model_node = fs.getNode("distortion_model")
        model = "pinhole" if model_node.empty() else model_node.string()
        if model not in _MODEL_NAMES:
            raise ValueError(f"{where}: distortion_model must be one of {list(_MODEL_NAMES)}, "
                             f"got {model!r}")
        size = _calibration_size(fs, where)
    finally:
        fs.release()
    return Camera(np.asarray(K, dtype=np.float64), np.asarray(dist, dtype=np.float64),
                  _MODEL_NAMES[model], size, where)
