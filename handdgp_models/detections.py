"""Where the hands are: boxes and handedness from a JSON file, a user's detector, or a fixed box.

One hand is a :class:`HandBox`: a box ``[x0, y0, x1, y1]`` in pixels (pixel centres at
integers), whether it is a right hand, and an optional detector score. A boxes file is a JSON
object mapping each input's key (an image's file name, a video frame's number in decimal) to
a list of ``{"box": [x0, y0, x1, y1], "right": true|false, "score": s}`` (``score`` optional,
other keys ignored): what any hand detector can write. A detector is a Python callable
``function(image) -> list`` of such dicts (or :class:`HandBox`), given an RGB uint8
``(H, W, 3)`` image, named ``module:function`` or ``path/to/file.py:function``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import read_json
from .validate import require_finite

__all__ = ["HandBox", "HandSource", "boxes_file", "detector", "fixed_hands", "parse_hands"]


@dataclass(frozen=True)
class HandBox:
    """One hand to predict.

    Attributes:
        box: (4,) float64 ``[x0, y0, x1, y1]`` pixels, ``x1 > x0`` and ``y1 > y0``.
        right: a right hand (left hands are mirrored for the right-hand model).
        score: the detector's score, or None.
    """

    box: np.ndarray
    right: bool = True
    score: float | None = None

    @classmethod
    def from_crop_box(cls, crop: np.ndarray, right: bool = True) -> HandBox:
        """The hand of a square crop box ``(centre_u, centre_v, side)``."""
        cu, cv, side = (float(x) for x in crop)
        h = side / 2
        return cls(np.array([cu - h, cv - h, cu + h, cv + h]), right)

    @property
    def crop_box(self) -> np.ndarray:
        """float32 ``(centre_u, centre_v, side)``: the square about the box's centre whose
        side is the box's longer side (the input pipeline enlarges it by ``crop_scale``)."""
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)],
                        dtype=np.float32)

    def to_json(self) -> dict:
        """``{"box", "right", "score"}`` as written in prediction files."""
        return {"box": [float(x) for x in self.box], "right": bool(self.right),
                "score": None if self.score is None else float(self.score)}


#: What gives the hands of one input: ``hands(key, image) -> list[HandBox]``.
HandSource = Callable[[str, np.ndarray], list[HandBox]]


def _parse_hand(item: Any, where: str) -> HandBox:
    if isinstance(item, HandBox):
        return item
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object {{box, right, score}}, got "
                         f"{type(item).__name__}")
    if "box" not in item or "right" not in item:
        missing = [k for k in ("box", "right") if k not in item]
        raise ValueError(f"{where}: missing {' and '.join(missing)}")
    box = require_finite(item["box"], f"{where}: box")
    if box.shape != (4,) or not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"{where}: box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0, "
                         f"got {np.asarray(item['box']).tolist()}")
    if not isinstance(item["right"], bool):
        raise ValueError(f"{where}: right must be true or false, got {item['right']!r}")
    score = item.get("score")
    if score is not None:
        score = float(require_finite(score, f"{where}: score"))
    return HandBox(box, item["right"], score)


def parse_hands(items: Any, where: str) -> list[HandBox]:
    """Check a list of hands (dicts ``{box, right, score}`` or :class:`HandBox`).

    Raises:
        ValueError: naming ``where`` and the item that is wrong.
    """
    if isinstance(items, dict | str | bytes) or not isinstance(items, Iterable):
        raise ValueError(f"{where}: expected a list of hands, got {type(items).__name__}")
    return [_parse_hand(item, f"{where} hand {k}") for k, item in enumerate(items)]


def boxes_file(path: str | os.PathLike, keys: Iterable[str],
               option: str = "--boxes") -> HandSource:
    """The hands of a boxes JSON file (see the module docstring), checked at once.

    Args:
        keys: the keys of the inputs (file names, frame numbers); an input the file does not
            list has no hands.

    Raises:
        ValueError: naming ``option``, the file and the entry that is wrong, or saying that
            no entry names an input.
    """
    path = Path(path)
    data = read_json(path, option)
    if not isinstance(data, dict):
        raise ValueError(f"{option} {path}: expected an object mapping image names (or frame "
                         f"numbers) to lists of hands, got {type(data).__name__}")
    hands = {str(k): parse_hands(v, f"{option} {path} entry {k!r}") for k, v in data.items()}
    keys = set(keys)
    if hands and not keys & set(hands):
        raise ValueError(f"{option} {path}: none of its {len(hands)} entries names an input "
                         "(the keys are image file names, or frame numbers of a video)")
    return lambda key, image: hands.get(key, [])


def _import_callable(spec: str, option: str) -> Callable:
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{option}: expected 'module:function' or 'file.py:function', got "
                         f"{spec!r}")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise ValueError(f"{option}: no such file {file}")
            loader = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{option}: cannot import {module_name} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{option}: {module_name} has no callable {attr!r}")
    return fn


def detector(spec: str, option: str = "--detector") -> HandSource:
    """The hands a user's callable finds (``module:function`` or ``file.py:function``): it
    is called with each RGB uint8 image and returns a list of ``{box, right, score}``.

    Raises:
        ValueError: the callable cannot be imported; later, when it returns something that is
            not a list of hands (naming the input).
    """
    fn = _import_callable(spec, option)
    return lambda key, image: parse_hands(fn(image), f"{option} {spec} on {key}")


def fixed_hands(crop_box: Callable[[int, int], np.ndarray], right: bool = True) -> HandSource:
    """One hand per input in the box ``crop_box(height, width)`` gives (``(cu, cv, side)``:
    ``--box`` or the centred default)."""
    return lambda key, image: [HandBox.from_crop_box(crop_box(*image.shape[:2]), right)]
