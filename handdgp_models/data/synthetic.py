"""SyntheticHands: rendered hands with exact camera-space ground truth, generated on the fly.

Sample ``i`` is a pure function of ``(seed, i)`` and the constructor arguments, so a dataset
of any size needs no storage and two workers never disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch.utils.data import Dataset

from ..files import read_npz, write_npz
from ..hand import NUM_KEYPOINTS, HandModel, load_mano
from .backgrounds import draw_occluders, random_background
from .render import project, render_mesh, render_through_lens, vertex_normals

__all__ = ["BOX_MARGIN", "CACHE_VERSION", "CAMERA_DOMAINS", "CameraDomain", "SyntheticHands",
           "hand_box"]

BOX_MARGIN = 1.1  # square box side = this x the larger extent of the projected hand
#: Stored in every cached sample; bump it when the generator's output changes, so that files
#: rendered by an older version are recognised as stale and rendered again.
CACHE_VERSION = 1
_VERSION_KEY = "cache_version"
# Cached arrays: dtype and shape, with "H"/"W" the image size and "V" the vertex count.
_CACHED: dict[str, tuple[str, tuple[int | str, ...]]] = {
    "image": ("uint8", ("H", "W", 3)), "mask": ("uint8", ("H", "W")),
    "K": ("float32", (3, 3)), "joints3d": ("float32", (NUM_KEYPOINTS, 3)),
    "verts3d": ("float32", ("V", 3)), "joints2d": ("float32", (NUM_KEYPOINTS, 2)),
    "box": ("float32", (3,)), "pose": ("float32", (48,)), "shape": ("float32", (10,)),
}

# Skin albedos (linear-ish RGB in [0, 1]) from light to dark; samples interpolate between them.
_SKIN = np.array([[0.96, 0.82, 0.72], [0.90, 0.72, 0.58], [0.80, 0.58, 0.42],
                  [0.62, 0.42, 0.28], [0.42, 0.27, 0.18], [0.30, 0.19, 0.13]])


@dataclass(frozen=True)
class CameraDomain:
    """A distribution of cameras: pinholes, optionally with one lens distortion.

    Attributes:
        focal: (min, max) focal length in pixels, drawn log-uniformly (narrowed per image so the
            hand fits at the largest depth).
        sizes: image sizes (height, width) drawn uniformly.
        principal_jitter: principal point offset from the image centre, as a fraction of the
            image size, drawn uniformly in +-this.
        depth: (min, max) camera-space depth of the hand's centre in metres.
        distortion: the lens's coefficients in OpenCV's order (empty: an ideal pinhole);
            the image is rendered through the ideal camera and resampled through the lens
            (:func:`~handdgp_models.data.render.render_through_lens`); ``joints2d`` and
            ``box`` are distorted pixels.
        lens_model: ``"pinhole"`` or ``"fisheye"`` (which model ``distortion`` belongs to).
    """

    focal: tuple[float, float]
    sizes: tuple[tuple[int, int], ...]
    principal_jitter: float = 0.08
    depth: tuple[float, float] = (0.3, 1.2)
    # Left out of the repr, which keys the render cache: a pinhole domain keeps its key.
    distortion: tuple[float, ...] = field(default=(), repr=False)
    lens_model: str = field(default="pinhole", repr=False)

    @property
    def distorted(self) -> bool:
        return self.lens_model == "fisheye" or any(c != 0 for c in self.distortion)


# The rest hand points its fingers along +x with the palm facing -y; this rotation shows the palm
# to the camera (palm normal along -z) with the fingers pointing up the image (-y).
_FACING_CAMERA = Rotation.from_matrix([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

_WIDE = CameraDomain(focal=(320.0, 480.0), sizes=((480, 640), (480, 480)),
                     principal_jitter=0.04)

CAMERA_DOMAINS: dict[str, CameraDomain] = {
    "train": CameraDomain(focal=(400.0, 1200.0),
                          sizes=((224, 224), (256, 256), (240, 320), (300, 400)),
                          principal_jitter=0.08),
    "test": CameraDomain(focal=(900.0, 2000.0), sizes=((480, 640), (480, 480), (384, 512)),
                         principal_jitter=0.12),
    # Wide-angle cameras (about 70-90 degrees across the width): an ideal pinhole, a webcam-like
    # barrel lens with tangential terms, and a fisheye (equidistant-like) lens.
    "wide": _WIDE,
    "wide-radtan": dataclasses.replace(_WIDE, distortion=(-0.28, 0.08, 0.0012, -0.0009, 0.0)),
    "wide-fisheye": dataclasses.replace(_WIDE, distortion=(0.03, -0.01, 0.002, 0.0),
                                        lens_model="fisheye"),
}
def _lens(domain: CameraDomain):
    import dgp_ops  # noqa: F401  (registers the ops)
    from dgp_ops.lens import Distortion

    return Distortion(torch.tensor(domain.distortion, dtype=torch.float64), domain.lens_model)


def hand_box(points2d: np.ndarray, margin: float = BOX_MARGIN) -> np.ndarray:
    """Square box around 2D points: (centre_u, centre_v, side) float32, side = margin x extent."""
    lo, hi = points2d.min(0), points2d.max(0)
    centre = (lo + hi) / 2
    return np.array([centre[0], centre[1], margin * max(hi - lo)], dtype=np.float32)


class SyntheticHands(Dataset):
    """Rendered right hands with random shape, pose, rotation, position, camera and background.

    Args:
        num_samples: dataset length.
        seed: base seed; sample ``i`` depends only on ``(seed, i)`` and the arguments below.
        image_size: fixed (height, width), or None to draw from the camera domain's sizes.
        camera: ``"train"``, ``"test"`` (:data:`CAMERA_DOMAINS`) or a :class:`CameraDomain`.
        occlusion_prob: probability of drawing 1-2 random occluders over the hand; the mask
            keeps only the hand pixels that remain visible.
        hand_model: a :class:`~handdgp_models.hand.HandModel`; the embedded default hand if None.
        orientation_spread: largest angle in degrees between the hand's global orientation and
            a palm-to-camera, fingers-up view; the rotation axis is uniform and the angle uniform
            in ``[0, orientation_spread]``. 180 or more draws orientations uniformly over SO(3).
        cache_dir: optional folder; each generated item is stored there as ``.npz`` under a key
            of all the arguments above (and the hand's template), and read back next time. A
            cached file that is unreadable, malformed or from another :data:`CACHE_VERSION` is
            rendered again and replaced (atomically), with one warning per dataset.

    Each item is a dict: ``image`` uint8 (H, W, 3) RGB; ``K`` float32 (3, 3); ``joints3d``
    float32 (21, 3) camera space, metres, OpenPose order; ``verts3d`` float32 (778, 3);
    ``joints2d`` float32 (21, 2) pixels; ``mask`` uint8 (H, W) 0/1; ``box`` float32 (3,)
    (centre_u, centre_v, side) in pixels; ``pose`` float32 (48,); ``shape`` float32 (10,);
    for a distorted camera domain also ``dist`` float32 (D,) and ``dist_model`` (str), with
    ``image``, ``mask``, ``joints2d`` and ``box`` in the distorted image.
    """

    def __init__(self, num_samples: int, seed: int = 0, *,
                 image_size: Sequence[int] | None = None,
                 camera: str | CameraDomain = "train", occlusion_prob: float = 0.3,
                 hand_model: HandModel | None = None,
                 orientation_spread: float = 180.0,
                 cache_dir: str | os.PathLike | None = None) -> None:
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 0:
            raise ValueError(f"num_samples: expected a non-negative int, got {num_samples!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
        if isinstance(camera, str):
            if camera not in CAMERA_DOMAINS:
                raise ValueError(f"camera: expected one of {list(CAMERA_DOMAINS)} or a "
                                 f"CameraDomain, got {camera!r}")
            camera = CAMERA_DOMAINS[camera]
        elif not isinstance(camera, CameraDomain):
            raise TypeError(f"camera: expected a str or CameraDomain, got {type(camera).__name__}")
        if image_size is not None:
            image_size = tuple(int(s) for s in image_size)
            if len(image_size) != 2 or min(image_size) < 32:
                raise ValueError(f"image_size: expected (height, width) >= 32, got {image_size}")
        if not 0.0 <= occlusion_prob <= 1.0:
            raise ValueError(f"occlusion_prob: expected a value in [0, 1], got {occlusion_prob}")
        if not orientation_spread >= 0.0:
            raise ValueError(f"orientation_spread: expected degrees >= 0, got {orientation_spread}")
        self.num_samples = int(num_samples)
        self.orientation_spread = float(orientation_spread)
        self.seed = int(seed)
        self.image_size = image_size
        self.camera = camera
        self.occlusion_prob = float(occlusion_prob)
        self.hand = hand_model if hand_model is not None else load_mano()
        self._faces = self.hand.faces.numpy()
        self._palm_side, self._nails = self._skin_regions()
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._warned = False
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            lens = (camera.distortion, camera.lens_model) if camera.distorted else ()
            h = hashlib.sha1(repr((self.seed, image_size, camera, self.occlusion_prob,
                                   self.hand.tip_ids, self._orientation_key(), *lens)).encode())
            h.update(self.hand.template.numpy().tobytes())
            h.update(self._faces.tobytes())
            self._cache_key = h.hexdigest()[:16]

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        if self.cache_dir is None:
            return self._generate(index)
        path = self._cache_path(index)
        if path.is_file():
            try:
                cached = read_npz(path, check=self._check_cached)
            except ValueError as exc:
                self._warn_rebuild(exc)
            else:
                del cached[_VERSION_KEY]
                return cached
        sample = self._generate(index)
        # Atomic: concurrent workers never read a partial file.
        write_npz(path, {**sample, _VERSION_KEY: np.array(CACHE_VERSION)})
        return sample

    def _cache_path(self, index: int) -> Path:
        return self.cache_dir / f"synth_{self._cache_key}_{index:08d}.npz"

    def render_all(self, processes: int | None = None, progress: bool = False,
                   desc: str = "render") -> int:
        """Render every item that is not in the cache yet; returns how many were rendered.

        Args:
            processes: worker processes (forked, one thread each); default: one per CPU core.
                1, or a platform without ``fork``, renders in this process.
            progress: a tqdm bar. desc: its label.
        """
        from tqdm import tqdm

        if self.cache_dir is None:
            raise ValueError("render_all: the dataset has no cache_dir to render into")
        missing = [i for i in range(self.num_samples) if not self._cache_path(i).is_file()]
        # a worker costs a fork and a start-up: not worth it for a handful of items
        processes = min(processes or os.cpu_count() or 1, max(len(missing) // 16, 1))
        if "fork" not in multiprocessing.get_all_start_methods():
            processes = 1
        with tqdm(total=len(missing), desc=desc, disable=not progress, leave=False) as bar:
            if processes <= 1:
                for i in missing:
                    self[i]
                    bar.update()
            else:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(processes, initializer=_render_worker_init,
                              initargs=(self,)) as pool:
                    for _ in pool.imap_unordered(_render_worker_item, missing, chunksize=4):
                        bar.update()
        return len(missing)

    def _check_cached(self, arrays: dict[str, np.ndarray]) -> None:
        """ValueError unless ``arrays`` is a complete sample of this version and dataset."""
        version = arrays.get(_VERSION_KEY)
        if version is None or version.shape != () or int(version) != CACHE_VERSION:
            raise ValueError(f"stale cache file (not of cache version {CACHE_VERSION})")
        lens_keys = {"dist", "dist_model"} if self.camera.distorted else set()
        if set(arrays) != {*_CACHED, _VERSION_KEY, *lens_keys}:
            raise ValueError(f"stale cache file (arrays {sorted(arrays)})")
        image = arrays["image"]
        if image.ndim != 3:
            raise ValueError(f"malformed cache file (image of shape {image.shape})")
        if self.image_size is not None and image.shape[:2] != self.image_size:
            raise ValueError(f"stale cache file (image size {image.shape[:2]})")
        dims = {"H": image.shape[0], "W": image.shape[1], "V": self.hand.template.shape[0]}
        for key, (dtype, shape) in _CACHED.items():
            arr, want = arrays[key], tuple(dims.get(d, d) for d in shape)
            if arr.dtype != dtype or arr.shape != want:
                raise ValueError(f"malformed cache file ({key}: {arr.dtype} {arr.shape}, "
                                 f"expected {dtype} {want})")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"malformed cache file ({key} holds NaN or Inf)")

    def _warn_rebuild(self, exc: ValueError) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"{exc}; rendering it again (further stale or corrupt files in "
                          f"{self.cache_dir} are replaced without another warning)",
                          RuntimeWarning, stacklevel=3)

    def _generate(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        verts, joints, pose, shape = self._sample_hand(rng)
        height, width = self._sample_size(rng)
        K, transl = self._sample_camera(verts, height, width, rng)
        verts = verts + transl
        joints = joints + transl

        colors = self._skin(rng)
        light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), -rng.uniform(0.3, 1.5)])
        cam = self.camera
        if not cam.distorted:
            background = random_background(height, width, rng)
            image, mask = render_mesh(verts, self._faces, K, height, width, colors, light,
                                      background)
            uv_verts = project(verts, K)
            joints2d = project(joints, K)
        else:
            def render(K_ideal, h, w):
                return render_mesh(verts, self._faces, K_ideal, h, w, colors, light,
                                   random_background(h, w, rng))

            image, mask = render_through_lens(render, K, _lens(cam), height, width)
            uv_verts, joints2d = self._distort(K, project(verts, K), project(joints, K))
        box = hand_box(np.concatenate([uv_verts, joints2d]))
        if rng.random() < self.occlusion_prob:
            occluded = draw_occluders(image, tuple(box), rng)
            mask[occluded] = 0
        image = self._camera_effects(image, rng)
        return {
            "image": image,
            "K": K.astype(np.float32),
            "joints3d": joints.astype(np.float32),
            "verts3d": verts.astype(np.float32),
            "joints2d": joints2d.astype(np.float32),
            "mask": mask,
            "box": box,
            "pose": pose.astype(np.float32),
            "shape": shape.astype(np.float32),
            **({} if not cam.distorted else {
                "dist": np.asarray(cam.distortion, dtype=np.float32),
                "dist_model": cam.lens_model}),
        }

    def _distort(self, K: np.ndarray, *points: np.ndarray) -> list[np.ndarray]:
        """Ideal pixels of the camera ``K`` -> the pixels its lens images them at."""
        from dgp_ops.lens import distort_points

        Kt, lens = torch.from_numpy(K)[None], _lens(self.camera)
        return [distort_points(torch.from_numpy(p)[None], Kt, lens)[0].numpy() for p in points]

    # -- sampling steps -------------------------------------------------------------------
    def _orientation_key(self) -> float | None:
        # None keeps the cache keys of uniform orientations unchanged.
        return None if self.orientation_spread >= 180.0 else self.orientation_spread

    def _sample_orientation(self, rng: np.random.Generator) -> np.ndarray:
        """Axis-angle (3,) of the hand's global orientation."""
        if self.orientation_spread >= 180.0:
            return Rotation.random(random_state=rng).as_rotvec()
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.deg2rad(rng.uniform(0.0, self.orientation_spread))
        return (Rotation.from_rotvec(axis * angle) * _FACING_CAMERA).as_rotvec()

    def _sample_hand(self, rng: np.random.Generator):
        fingers = self.hand.sample_pose(1, rng)[0]
        orient = self._sample_orientation(rng)
        pose = np.concatenate([orient, fingers]).astype(np.float64)
        shape = np.zeros(10)
        k = 6 if self.hand.is_default else 10
        shape[:k] = np.clip(rng.normal(0.0, 1.0, k), -2.5, 2.5)
        with torch.no_grad():
            v, j = self.hand(torch.from_numpy(pose)[None], torch.from_numpy(shape)[None])
        return v[0].numpy(), j[0].numpy(), pose, shape

    def _sample_size(self, rng: np.random.Generator) -> tuple[int, int]:
        if self.image_size is not None:
            return self.image_size
        sizes = self.camera.sizes
        return sizes[int(rng.integers(len(sizes)))]

    def _sample_camera(self, verts: np.ndarray, height: int, width: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Intrinsics and a translation that puts the whole hand inside the image."""
        cam = self.camera
        centre = (verts.min(0) + verts.max(0)) / 2
        extent = 2 * np.linalg.norm(verts - centre, axis=1).max()
        short = min(height, width)
        z_lo, z_hi = cam.depth
        # Largest focal at which the hand still fits (85 % of the short side) at max depth.
        f_fit = z_hi * 0.85 * short / extent
        f_lo, f_hi = cam.focal
        f_hi = min(f_hi, f_fit)
        f_lo = min(f_lo, f_hi)
        f = float(np.exp(rng.uniform(np.log(f_lo), np.log(f_hi))))
        fy = f * rng.uniform(0.99, 1.01)
        cx = (width - 1) / 2 + rng.uniform(-1, 1) * cam.principal_jitter * width
        cy = (height - 1) / 2 + rng.uniform(-1, 1) * cam.principal_jitter * height
        K = np.array([[f, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        # Depth range where the hand spans 15-85 % of the short side.
        zmin = max(z_lo, f * extent / (0.85 * short))
        zmax = max(zmin, min(z_hi, f * extent / (0.15 * short)))
        k_inv = np.linalg.inv(K)
        for attempt in range(30):
            z = rng.uniform(zmin, zmax) * (1.0 + 0.05 * attempt)
            size = f * extent / z
            half = min(size / 2 + 2, short / 2)
            u = rng.uniform(half, max(half, width - 1 - half))
            v = rng.uniform(half, max(half, height - 1 - half))
            transl = z * (k_inv @ np.array([u, v, 1.0])) - centre
            uv = project(verts + transl, K)
            if ((uv >= 0.5).all() and (uv[:, 0] <= width - 1.5).all()
                    and (uv[:, 1] <= height - 1.5).all() and ((verts + transl)[:, 2] > 0.05).all()):
                break
        return K, transl

    def _skin_regions(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-vertex weights (V,) of the palmar side and of the nails, for the default hand.

        Palms are lighter than the back of the hand and nails are pinkish-pale: cues for which
        side of the hand faces the camera. The rest-pose axes of a MANO file differ, so other
        hand models get a uniform albedo.
        """
        n = self.hand.template.shape[0]
        if not self.hand.is_default:
            return np.zeros(n), np.zeros(n)
        tmpl = self.hand.template.numpy().astype(np.float64)
        normals = vertex_normals(tmpl, self._faces)
        palm = np.clip(-normals[:, 1] * 1.5, 0.0, 1.0)  # the palm faces -y at rest
        tips = tmpl[list(self.hand.tip_ids)]
        near_tip = np.linalg.norm(tmpl[:, None] - tips[None], axis=2).min(1)
        nails = (np.clip((0.014 - near_tip) / 0.004, 0.0, 1.0)
                 * np.clip((normals[:, 1] - 0.3) / 0.3, 0.0, 1.0))
        return palm, nails

    def _skin(self, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0, len(_SKIN) - 1)
        i = int(min(t, len(_SKIN) - 2))
        base = _SKIN[i] * (1 - (t - i)) + _SKIN[i + 1] * (t - i)
        base = base * rng.uniform(0.9, 1.1, 3)
        # Low-frequency blotches across the hand so shading is not a single flat albedo.
        tmpl = self.hand.template.numpy().astype(np.float64)
        freq = rng.normal(0, 60, (3, 3))
        phase = rng.uniform(0, 2 * np.pi, 3)
        var = 0.05 * np.sin(tmpl @ freq + phase).sum(1, keepdims=True) / 3
        colors = base[None] * (1 + var)
        palm_tone = base + (np.array([0.95, 0.78, 0.68]) - base) * rng.uniform(0.2, 0.5)
        nail_tone = base + (np.array([0.97, 0.85, 0.82]) - base) * rng.uniform(0.4, 0.7)
        colors += self._palm_side[:, None] * (palm_tone - colors)
        colors += self._nails[:, None] * (nail_tone - colors)
        return np.clip(colors, 0, 1)

    @staticmethod
    def _camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = image.astype(np.float32)
        img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        if rng.random() < 0.6:  # defocus / anti-aliasing of the rendered edges
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
        img += rng.uniform(0, 6) * rng.standard_normal(img.shape, dtype=np.float32)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)


_WORKER_DATASET: SyntheticHands | None = None


def _render_worker_init(dataset: SyntheticHands) -> None:
    global _WORKER_DATASET
    torch.set_num_threads(1)  # one process per core
    _WORKER_DATASET = dataset


def _render_worker_item(index: int) -> None:
    _WORKER_DATASET[index]  # renders into the cache; the sample goes back to nobody
