"""Images and videos in and out of ``predict``: images, folders of images, a video file
(OpenCV ``VideoCapture``), and an overlay video written with OpenCV ``VideoWriter``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Frame", "Inputs", "VideoOut", "open_inputs"]

#: File suffixes taken as images when a folder is listed.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: File suffixes read as videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
#: Frame rate written for a video whose own rate is unknown.
DEFAULT_FPS = 30.0


@dataclass
class Frame:
    """One input image.

    Attributes:
        name: the stem of its output files (unique among the inputs).
        key: its key in a boxes file: the image's file name, or the frame number of a video.
        image: (H, W, 3) uint8 RGB.
        index: its position among the inputs (the frame number of a video).
    """

    name: str
    key: str
    image: np.ndarray
    index: int


def _unique_names(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        names.append(p.stem if n == 1 else f"{p.stem}_{n}")
    return names


class Inputs:
    """The resolved inputs: images in order, or the frames of one video.

    Attributes:
        images: the image files (empty for a video); video: the video file or None;
        fps: the video's frame rate (None for images).
    """

    def __init__(self, images: Sequence[Path] = (), video: Path | None = None,
                 option: str = "--input") -> None:
        self.images, self.video, self.option = list(images), video, option
        self.fps: float | None = None
        self._count = len(self.images)
        if video is not None:
            import cv2

            cap = cv2.VideoCapture(str(video))
            try:
                if not cap.isOpened():
                    raise ValueError(f"{option}: cannot open the video {video}")
                self._count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
                fps = cap.get(cv2.CAP_PROP_FPS)
                self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS
            finally:
                cap.release()
        self._names = _unique_names(self.images)

    @property
    def is_video(self) -> bool:
        return self.video is not None

    def __len__(self) -> int:
        """The number of images (a video's frame count as its header states it)."""
        return self._count

    def keys(self) -> list[str]:
        """The boxes-file keys of the inputs, in order."""
        if self.is_video:
            return [str(i) for i in range(self._count)]
        return [p.name for p in self.images]

    def __iter__(self) -> Iterator[Frame]:
        if self.is_video:
            yield from self._frames()
            return
        from .inputs import read_image_option

        for i, (path, name) in enumerate(zip(self.images, self._names, strict=True)):
            yield Frame(name, path.name, read_image_option(path, self.option), i)

    def _frames(self) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(str(self.video))
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(f"frame_{i:06d}", str(i), np.ascontiguousarray(bgr[..., ::-1]), i)
                i += 1
        finally:
            cap.release()


def _listed(folder: Path, option: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{option}: the folder {folder} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    return files


def open_inputs(paths: Sequence[str | os.PathLike], option: str = "--input") -> Inputs:
    """Images (files or folders of images, in order; a folder's images sorted by name, not
    recursively) or one video file (by its suffix, :data:`VIDEO_SUFFIXES`).

    Raises:
        ValueError: a missing path, an empty folder, a video among other inputs or a video
            OpenCV cannot open, naming ``option``.
    """
    if not paths:
        raise ValueError(f"{option}: give at least one image, folder or video")
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise ValueError(f"{option}: no such file or folder {p}")
    videos = [p for p in paths if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        if len(paths) > 1:
            raise ValueError(f"{option}: a video ({videos[0]}) must be the only input")
        return Inputs(video=videos[0], option=option)
    images: list[Path] = []
    for p in paths:
        images += _listed(p, option) if p.is_dir() else [p]
    return Inputs(images, option=option)


class VideoOut:
    """An MP4 (``mp4v``) video written frame by frame; opened at the first frame's size.

    Args:
        path: the file; fps: frames per second.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path, self.fps = Path(path), float(fps)
        self._writer = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame (every frame the first one's size)."""
        import cv2

        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write an mp4v video here")
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoOut:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
