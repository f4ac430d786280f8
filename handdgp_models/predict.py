"""Prediction on real images: several hands per image, left hands, batches across images.

:class:`HandPredictor` is what :class:`handdgp_models.engine.Predictor` (a checkpoint) and
:class:`handdgp_models.export.PackagedPredictor` (an AOTInductor package) share: the input
pipeline, the mesh faces and skeleton, and ``network(image, K, R)`` on a batch of rectified
crops. On top of it:

- :meth:`HandPredictor.predict` runs the hands of one image in one batch;
- :class:`PredictionLoop` runs a stream of images (a folder, a video), batching hands across
  images, and yields each image's :class:`FramePrediction` in order.

Left hands: the model is right-handed. A left hand is shown to it mirrored in the rectified
view (the input pipeline's ``mirror``: the world mirrored, ``X ↦ M X`` with
``M = diag(-1, 1, 1)``, the crop flipped about the canonical camera's principal point inside
the one warp), predicted as a right hand, and mirrored back (``M Y``); its faces' winding is
reversed (:meth:`HandPredictor.faces_of`) so meshes stay outward-facing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .camera import Camera, require_supported_lens
from .detections import HandBox, HandSource
from .media import Frame
from .predict_defaults import BATCH_SIZE

__all__ = ["FramePrediction", "HandPrediction", "HandPredictor", "PredictionLoop"]

#: ``M``: camera-space mirror x ↦ -x.
_MIRROR = np.array([-1.0, 1.0, 1.0])


@dataclass
class HandPrediction:
    """One hand's prediction in the image's camera.

    Attributes:
        hand: the box and handedness it was predicted from.
        joints: (K, 3) and verts: (V, 3) float64 camera-space points in metres;
        translation: (3,) the root keypoint's position (DGP's solution), metres;
        weights: (K,) the keypoint weights of the DGP solve; valid: False for a degenerate
            DGP system (the hand's placement is then not to be trusted).
    """

    hand: HandBox
    joints: np.ndarray
    verts: np.ndarray
    translation: np.ndarray
    weights: np.ndarray
    valid: bool

    @property
    def right(self) -> bool:
        return self.hand.right

    def to_json(self, camera: Camera | np.ndarray) -> dict:
        """The hand as written in a prediction file (``camera``, or its (3, 3) ``K`` for an
        ideal pinhole: ``joints2d`` are the joints' pixels through its lens)."""
        if not isinstance(camera, Camera):
            camera = Camera(np.asarray(camera, dtype=np.float64))
        uv = camera.project(self.joints)
        return {**self.hand.to_json(), "valid": bool(self.valid),
                "translation": self.translation.tolist(), "joints": self.joints.tolist(),
                "joints2d": uv.tolist(), "vertices": self.verts.tolist(),
                "keypoint_weights": self.weights.tolist()}


@dataclass
class FramePrediction:
    """The hands of one image (``frame``) seen by ``camera``."""

    frame: Frame
    camera: Camera
    hands: list[HandPrediction] = field(default_factory=list)


class HandPredictor:
    """Camera-space hands from images with their intrinsics (subclasses set ``pipeline``,
    ``faces``, ``bones`` and implement :meth:`network`).

    Attributes:
        pipeline: the deterministic input pipeline; faces: (F, 3) mesh triangles of a right
            hand; bones: the skeleton's keypoint pairs.
    """

    pipeline: Callable[[dict], dict]
    faces: np.ndarray
    bones: tuple[tuple[int, int], ...]

    def network(self, image: torch.Tensor, K: torch.Tensor,
                R: torch.Tensor) -> dict[str, np.ndarray]:
        """The network on rectified crops ``image`` (B, 3, S, S), their intrinsics ``K`` and
        rotations ``R`` (B, 3, 3) from the original camera: numpy ``joints`` (B, K, 3),
        ``verts`` (B, V, 3), ``translation`` (B, 3) in the original camera, ``weights``
        (B, K), ``valid`` (B,) bool."""
        raise NotImplementedError

    def faces_of(self, right: bool) -> np.ndarray:
        """The faces of a right hand's mesh, or of a mirrored (left) one: winding reversed."""
        return self.faces if right else self.faces[:, ::-1].copy()

    def inputs(self, image: np.ndarray, K: np.ndarray, hand: HandBox,
               camera: Camera | None = None) -> dict:
        """The pipeline's tensors for one hand (mirrored for a left hand); ``camera`` (whose
        ``K`` is ``K``) gives the lens a distorted image is sampled through."""
        sample = {"image": image, "K": K, "box": hand.crop_box, "mirror": not hand.right}
        if camera is not None and camera.distorted:
            sample.update(dist=camera.lens_coefficients, dist_model=camera.model)
        return self.pipeline(sample)

    def run_inputs(self, hands: list[HandBox], inputs: list[dict]) -> list[HandPrediction]:
        """The network on the inputs of ``hands`` in one batch; left hands mirrored back."""
        if not inputs:
            return []
        out = self.network(*(torch.stack([x[k] for x in inputs]) for k in ("image", "K", "R")))
        preds = []
        for i, hand in enumerate(hands):
            m = 1.0 if hand.right else _MIRROR
            preds.append(HandPrediction(
                hand, out["joints"][i].astype(np.float64) * m,
                out["verts"][i].astype(np.float64) * m,
                out["translation"][i].astype(np.float64) * m,
                out["weights"][i].astype(np.float64), bool(out["valid"][i])))
        return preds

    def predict(self, image: np.ndarray, K: np.ndarray, hands: list[HandBox],
                camera: Camera | None = None) -> list[HandPrediction]:
        """Every hand of one RGB uint8 (H, W, 3) image with (3, 3) intrinsics, in one batch
        (``camera``: its lens, when the image is distorted)."""
        return self.run_inputs(hands, [self.inputs(image, K, h, camera) for h in hands])

    def __call__(self, image: np.ndarray, K: np.ndarray, box: np.ndarray,
                 right: bool = True) -> dict:
        """Camera-space prediction for one hand of one RGB uint8 (H, W, 3) image, its (3, 3)
        intrinsics and crop box ``(cu, cv, side)`` in pixels.

        Returns:
            numpy arrays: ``joints`` (K, 3) and ``verts`` (V, 3) in metres in the image's
            camera, ``translation`` (3,), ``weights`` (K,); and ``valid`` (bool, False for a
            degenerate DGP system).
        """
        p = self.predict(image, K, [HandBox.from_crop_box(box, right)])[0]
        return {"joints": p.joints, "verts": p.verts, "translation": p.translation,
                "weights": p.weights, "valid": p.valid}


class PredictionLoop:
    """Predict a stream of images, batching hands across images; yields a
    :class:`FramePrediction` per image, in order.

    Args:
        predictor: a :class:`HandPredictor`.
        frames: the images (:class:`~handdgp_models.media.Frame`).
        camera: the camera of an image of a given ``(height, width)``; a distorted image is
            sampled through its lens (:func:`~handdgp_models.camera.require_supported_lens`
            names what is not modelled).
        hands: the hands of each image (:mod:`handdgp_models.detections`).
        batch_size: hands per network call.

    Attributes:
        images, hands_done: counts so far; seconds: time spent in the input pipeline and the
        network (not reading or writing files).
    """

    def __init__(self, predictor: HandPredictor, frames: Iterable[Frame],
                 camera: Callable[[int, int], Camera], hands: HandSource,
                 batch_size: int = BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.predictor, self.frames, self.camera = predictor, frames, camera
        self.hand_source, self.batch_size = hands, batch_size
        self.images = self.hands_done = 0
        self.seconds = 0.0

    def _flush(self, pending: list) -> Iterator[FramePrediction]:
        t0 = time.perf_counter()
        hands = [h for _, _, hs, _ in pending for h in hs]
        preds = self.predictor.run_inputs(hands, [x for _, _, _, xs in pending for x in xs])
        self.seconds += time.perf_counter() - t0
        k = 0
        for frame, camera, hs, _ in pending:
            yield FramePrediction(frame, camera, preds[k:k + len(hs)])
            k += len(hs)
            self.images += 1
            self.hands_done += len(hs)

    def __iter__(self) -> Iterator[FramePrediction]:
        pending: list = []
        count = 0
        for frame in self.frames:
            h, w = frame.image.shape[:2]
            camera = require_supported_lens(self.camera(h, w))
            hands = self.hand_source(frame.key, frame.image)
            t0 = time.perf_counter()
            inputs = [self.predictor.inputs(frame.image, camera.K, hand, camera)
                      for hand in hands]
            self.seconds += time.perf_counter() - t0
            pending.append((frame, camera, hands, inputs))
            count += len(hands)
            if count >= self.batch_size:
                yield from self._flush(pending)
                pending, count = [], 0
        if pending:
            yield from self._flush(pending)
