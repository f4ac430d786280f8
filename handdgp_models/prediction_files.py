"""What ``predict`` writes: one JSON file per image, one mesh file per hand and format, an
overlay per image (or an overlay video), and a summary with the speed measured.

Every name comes from :class:`~handdgp_models.layout.RunFolder`. Camera-space points are in
metres in the image's camera (OpenCV axes); a left hand's mesh has its faces' winding
reversed, so every mesh file is outward-facing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .detections import HandSource
from .files import write_json
from .layout import RunFolder
from .media import Inputs, VideoOut
from .predict import FramePrediction, HandPredictor, PredictionLoop
from .predict_defaults import BATCH_SIZE

__all__ = ["MESH_FORMATS", "PredictSettings", "frame_record", "predict_to_folder",
           "write_meshes"]

#: Mesh file formats written by trimesh.
MESH_FORMATS = ("obj", "ply")


@dataclass(frozen=True)
class PredictSettings:
    """How ``predict`` runs and what it writes.

    Attributes:
        batch_size: hands per network call (across images).
        meshes: mesh formats to write, a subset of :data:`MESH_FORMATS`.
        overlays: write overlays (PNG per image, or the video for a video input).
        smooth: One-Euro smoothing of a video's hands, or None (off);
            ``(min_cutoff Hz, beta 1/m)``.
        progress: a progress bar.
    """

    batch_size: int = BATCH_SIZE
    meshes: tuple[str, ...] = ("obj",)
    overlays: bool = True
    smooth: tuple[float, float] | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        bad = [m for m in self.meshes if m not in MESH_FORMATS]
        if bad:
            raise ValueError(f"meshes: expected formats among {MESH_FORMATS}, got {bad}")


def frame_record(fp: FramePrediction, fps: float | None = None) -> dict:
    """The JSON content of one image's prediction (``fps``: a video's rate, for ``time``)."""
    cam = fp.camera
    record = {"image": fp.frame.name, "key": fp.frame.key, "index": fp.frame.index,
              "size": list(fp.frame.image.shape[:2]),
              "camera": {"K": cam.K.tolist(), "distortion": cam.distortion.tolist(),
                         "distortion_model": cam.model, "source": cam.source},
              "units": "metres", "hands": [h.to_json(cam) for h in fp.hands]}
    if fps is not None:
        record["time"] = fp.frame.index / fps
    return record


def write_meshes(folder: RunFolder, fp: FramePrediction,
                 faces_of: Callable[[bool], np.ndarray],
                 formats: tuple[str, ...] = ("obj",)) -> list:
    """Each hand of ``fp`` as a camera-space mesh file per format; returns the paths."""
    import trimesh

    paths = []
    for k, hand in enumerate(fp.hands):
        mesh = trimesh.Trimesh(hand.verts, faces_of(hand.right), process=False)
        for fmt in formats:
            path = folder.mesh(fp.frame.name, k, fmt)
            mesh.export(path, file_type=fmt)
            paths.append(path)
    return paths


class _Writer:
    """Writes each image's files as its prediction arrives."""

    def __init__(self, folder: RunFolder, predictor: HandPredictor, inputs: Inputs,
                 settings: PredictSettings) -> None:
        self.folder, self.predictor, self.inputs = folder, predictor, inputs
        self.settings = settings
        for sub in (folder.predictions, folder.meshes if settings.meshes else None,
                    folder.overlays if settings.overlays and not inputs.is_video else None):
            if sub is not None:
                sub.mkdir(parents=True, exist_ok=True)
        self.video = (VideoOut(folder.video, inputs.fps)
                      if settings.overlays and inputs.is_video else None)
        self.counts = {"right": 0, "left": 0, "invalid": 0, "without_hands": 0}

    def __call__(self, fp: FramePrediction) -> None:
        import cv2

        from .viz import draw_hands

        write_json(self.folder.prediction(fp.frame.name), frame_record(fp, self.inputs.fps))
        write_meshes(self.folder, fp, self.predictor.faces_of, self.settings.meshes)
        for h in fp.hands:
            self.counts["right" if h.right else "left"] += 1
            self.counts["invalid"] += not h.valid
        self.counts["without_hands"] += not fp.hands
        if not self.settings.overlays:
            return
        over = draw_hands(fp.frame.image, fp.camera, fp.hands, self.predictor.faces_of,
                          self.predictor.bones)
        if self.video is not None:
            self.video.write(over)
        else:
            cv2.imwrite(str(self.folder.prediction_overlay(fp.frame.name)), over[..., ::-1])


def predict_to_folder(predictor: HandPredictor, inputs: Inputs, out: str | os.PathLike,
                      camera: Callable[[int, int], Camera], hands: HandSource,
                      settings: PredictSettings | None = None) -> dict:
    """Predict every image of ``inputs`` and write the files into ``out``.

    Args:
        predictor: an :class:`~handdgp_models.engine.Predictor` or
            :class:`~handdgp_models.export.PackagedPredictor`.
        inputs: images or a video (:func:`~handdgp_models.media.open_inputs`).
        camera: the camera of an image of a given ``(height, width)``.
        hands: the hands of each image (:mod:`handdgp_models.detections`).

    Returns:
        The summary written to ``summary.json``: counts, ``seconds`` end to end,
        ``images_per_s`` end to end (reading, predicting, writing) and
        ``network_images_per_s`` (input pipeline and network only).
    """
    from tqdm import tqdm

    from .smoothing import HandSmoother

    settings = settings or PredictSettings()
    folder = RunFolder(out)
    folder.root.mkdir(parents=True, exist_ok=True)
    writer = _Writer(folder, predictor, inputs, settings)
    loop = PredictionLoop(predictor, inputs, camera, hands, settings.batch_size)
    smoother = None if settings.smooth is None else HandSmoother(*settings.smooth)
    t0 = time.perf_counter()
    try:
        for fp in tqdm(loop, total=len(inputs) or None, disable=not settings.progress,
                       unit="img", desc="predict"):
            if smoother is not None and inputs.is_video:
                smoother(fp.hands, fp.frame.index / inputs.fps)
            writer(fp)
    finally:
        if writer.video is not None:
            writer.video.close()
    seconds = time.perf_counter() - t0
    summary = {"images": loop.images, "hands": loop.hands_done, **writer.counts,
               "seconds": round(seconds, 3),
               "images_per_s": round(loop.images / max(seconds, 1e-9), 2),
               "network_images_per_s": round(loop.images / max(loop.seconds, 1e-9), 2),
               "batch_size": settings.batch_size, "smooth": settings.smooth,
               "video": str(folder.video) if writer.video is not None else None}
    write_json(folder.summary, summary, indent=2)
    return summary
