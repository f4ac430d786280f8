"""Preview grids of dataset samples with the mesh and the keypoints drawn over them."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from ..viz import draw_mesh_overlay, draw_skeleton, image_grid
from .render import project

__all__ = ["overlay_sample", "preview", "main"]


def overlay_sample(sample: dict, faces: np.ndarray | None) -> np.ndarray:
    """A sample's image with its mesh wireframe (when ``faces`` is given), skeleton and box."""
    img = np.ascontiguousarray(sample["image"])
    if "verts3d" in sample:
        uv = project(np.asarray(sample["verts3d"], np.float64),
                     np.asarray(sample["K"], np.float64))
        if faces is not None:
            img = draw_mesh_overlay(img, uv, faces, alpha=0.18)
        else:  # unknown topology: translucent vertex dots
            layer = img.copy()
            for u, v in np.round(uv).astype(int):
                cv2.circle(layer, (int(u), int(v)), 1, (0, 255, 255), -1)
            img = cv2.addWeighted(layer, 0.4, img, 0.6, 0)
    img = draw_skeleton(img, sample["joints2d"])
    cu, cv, side = (float(x) for x in sample["box"])
    cv2.rectangle(img, (int(cu - side / 2), int(cv - side / 2)),
                  (int(cu + side / 2), int(cv + side / 2)), (255, 255, 255), 1)
    return img


def _dataset(root: str | None, name: str, num: int, seed: int, camera: str):
    """The dataset to preview and the faces to draw over its meshes (None: draw vertices)."""
    if root is None:
        from .synthetic import SyntheticHands

        ds = SyntheticHands(num, seed=seed, camera=camera)
        return ds, ds.hand.faces.numpy()
    # Real datasets use the MANO topology, which the embedded hand's faces do not match.
    if name == "freihand":
        from .freihand import FreiHAND

        return FreiHAND(root, split="training"), None
    if name == "ho3d":
        from .ho3d import HO3D

        return HO3D(root, split="train"), None
    raise ValueError(f"dataset: expected 'freihand' or 'ho3d', got {name!r}")


def preview(out: str | Path, *, num: int = 16, seed: int = 0, root: str | None = None,
            dataset: str = "freihand", camera: str = "train", tile: int = 256) -> Path:
    """Write a PNG grid of ``num`` samples (synthetic unless ``root`` is given).

    Args:
        out: output PNG path.
        num: number of samples (>= 1).
        seed: synthetic seed, or the seed picking random samples of a real dataset.
        root: dataset root for ``dataset``; None for synthetic samples.
        dataset: ``"freihand"`` or ``"ho3d"`` (only with ``root``).
        camera: synthetic camera domain, ``"train"`` or ``"test"``.
        tile: size of each grid cell in pixels.

    Returns:
        The written path.
    """
    if num < 1:
        raise ValueError(f"num: expected >= 1, got {num}")
    ds, faces = _dataset(root, dataset, num, seed, camera)
    if root is None:
        indices = range(num)
    else:
        # Real-dataset meshes may use another topology than the default hand's faces.
        indices = np.random.default_rng(seed).choice(len(ds), size=min(num, len(ds)),
                                                     replace=False)
    tiles = [overlay_sample(ds[int(i)], faces) for i in indices]
    grid = image_grid(tiles, cols=int(np.ceil(np.sqrt(len(tiles)))), tile=tile)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"out: could not write {str(out)!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handdgp_models.data")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="write a grid of samples with mesh and keypoints")
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--num", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None, help="dataset root (default: synthetic samples)")
    p.add_argument("--dataset", choices=("freihand", "ho3d"), default="freihand")
    p.add_argument("--camera", choices=("train", "test"), default="train",
                   help="synthetic camera domain")
    args = parser.parse_args(argv)
    path = preview(args.out, num=args.num, seed=args.seed, root=args.root,
                   dataset=args.dataset, camera=args.camera)
    print(f"wrote {path}")
    return 0
