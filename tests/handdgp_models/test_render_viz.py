"""Overlay drawing helpers and the preview command."""

import cv2
import numpy as np
import pytest

from handdgp_models.data.preview import main, preview
from handdgp_models.viz import SKELETON, draw_mesh_overlay, draw_skeleton, image_grid


def test_skeleton_has_20_bones_wrist_to_tips():
    assert len(SKELETON) == 20
    parents = {c: p for p, c in SKELETON}
    assert sorted(parents) == list(range(1, 21))
    for tip in (4, 8, 12, 16, 20):
        chain = [tip]
        while chain[-1] != 0:
            chain.append(parents[chain[-1]])
        assert chain == [tip, tip - 1, tip - 2, tip - 3, 0]


def test_draw_skeleton_marks_keypoints_and_copies():
    img = np.zeros((64, 64, 3), np.uint8)
    joints = np.random.default_rng(0).uniform(8, 56, (21, 2))
    out = draw_skeleton(img, joints)
    assert img.max() == 0 and out.shape == img.shape
    r = np.round(joints).astype(int)
    assert (out[r[:, 1], r[:, 0]].max(1) > 0).all()
    with pytest.raises(ValueError, match="joints2d"):
        draw_skeleton(img, joints[:20])
    with pytest.raises(ValueError, match="image"):
        draw_skeleton(img.astype(np.float32), joints)


def test_mesh_overlay_draws_edges_only_near_the_mesh():
    img = np.zeros((50, 50, 3), np.uint8)
    verts = np.array([[10.0, 10.0], [40.0, 10.0], [25.0, 40.0]])
    out = draw_mesh_overlay(img, verts, np.array([[0, 1, 2]]), alpha=1.0)
    assert out[10, 25].max() > 0  # on the top edge
    assert out[45, 5].max() == 0 and out[20, 25].max() == 0  # outside, and inside the face
    with pytest.raises(ValueError, match="alpha"):
        draw_mesh_overlay(img, verts, np.array([[0, 1, 2]]), alpha=2.0)


def test_image_grid_layout():
    grid = image_grid([np.full((10, 20, 3), 255, np.uint8)] * 3, cols=2, tile=32)
    assert grid.shape == (64, 64, 3)
    assert grid[16, 16].min() == 255 and grid[48, 48].max() == 32


def test_preview_writes_png(tmp_path, capsys):
    path = preview(tmp_path / "p.png", num=2, seed=1, tile=64)
    img = cv2.imread(str(path))
    assert img.shape == (64, 128, 3)
    assert main(["preview", "--out", str(tmp_path / "q.png"), "--num", "1"]) == 0
    assert (tmp_path / "q.png").is_file() and "wrote" in capsys.readouterr().out


def test_preview_of_a_dataset_root_uses_the_loader(tmp_path, monkeypatch):
    """The dataset branch imports the loader lazily and draws its samples."""
    import sys
    import types

    from handdgp_models.data import SyntheticHands

    seen = {}

    class FakeFreiHAND:
        def __init__(self, root, split):
            seen["args"] = (root, split)
            self._ds = SyntheticHands(3, seed=0, image_size=(64, 64))

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return self._ds[i]

    module = types.ModuleType("handdgp_models.data.freihand")
    module.FreiHAND = FakeFreiHAND
    monkeypatch.setitem(sys.modules, "handdgp_models.data.freihand", module)
    path = preview(tmp_path / "f.png", num=2, root="some/root", dataset="freihand", tile=32)
    assert seen["args"] == ("some/root", "training")  # FreiHAND's split name
    assert cv2.imread(str(path)).shape == (32, 64, 3)
    with pytest.raises(ValueError, match="dataset"):
        preview(tmp_path / "g.png", num=1, root="r", dataset="other")


def _quad(z: float = 0.5, x: float = 0.0):
    """A square facing the camera, 4 cm wide, outward (towards the camera) wound."""
    v = np.array([[-0.02, -0.02, z], [0.02, -0.02, z], [0.02, 0.02, z], [-0.02, 0.02, z]])
    v[:, 0] += x
    return v, np.array([[0, 2, 1], [0, 3, 2]])


def test_shaded_meshes_cover_their_silhouette_only():
    from handdgp_models.data.render import project
    from handdgp_models.viz import shade_meshes

    K = np.array([[100.0, 0, 31.5], [0, 100.0, 31.5], [0, 0, 1]])
    img = np.full((64, 64, 3), 10, np.uint8)
    v, f = _quad()
    out = shade_meshes(img, K, [(v, f, (1.0, 0.5, 0.2))], alpha=1.0)
    uv = project(v, K)
    lo, hi = np.ceil(uv.min(0)).astype(int), np.floor(uv.max(0)).astype(int)
    inside = out[lo[1] + 1:hi[1], lo[0] + 1:hi[0]]
    assert (inside[..., 0] > inside[..., 2]).all() and inside.min() > 10  # lit, orange
    outside = np.ones((64, 64), bool)
    outside[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = False
    assert (out[outside] == 10).all() and (img == 10).all()
    # a nearer mesh hides a farther one; a mesh with NaN vertices is skipped
    near = _quad(0.4)
    both = shade_meshes(img, K, [(v, f, (0.0, 0.0, 1.0)), (near[0], f, (1.0, 0.0, 0.0)),
                                 (v * np.nan, f, (0.0, 1.0, 0.0))], alpha=1.0)
    assert both[31, 31, 0] > 150 and both[31, 31, 1:].max() < 30  # red (a faint highlight)


def test_top_view_shows_depth_vertically():
    from handdgp_models.viz import top_view

    # squares lying flat (in the x-z plane), seen face-on from above
    f = np.array([[0, 1, 2], [0, 2, 3]])
    v = np.array([[-0.02, 0, 0.48], [0.02, 0, 0.48], [0.02, 0, 0.52], [-0.02, 0, 0.52]])
    far = v + [0, 0, 0.2]
    img = top_view([(v, f, (1.0, 0.0, 0.0)), (far, f, (0.0, 1.0, 0.0))], size=128)
    red = np.argwhere((img[..., 0] > 100) & (img[..., 1] < 60))
    green = np.argwhere((img[..., 1] > 100) & (img[..., 0] < 60))
    assert len(red) and len(green)
    assert green[:, 0].mean() < red[:, 0].mean() - 20  # farther: higher in the top view


def test_comparison_panel_and_contact_sheet():
    from handdgp_models.viz import GT_COLOR, comparison_panel, contact_sheet

    K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
    image = np.full((48, 64, 3), 90, np.uint8)
    v, f = _quad()
    joints = np.concatenate([v.mean(0, keepdims=True), v[:1]])
    bones = ((0, 1),)
    panel = comparison_panel(image, K, (v, joints), (v + [0.01, 0, 0.05], joints), f, bones,
                             title="x", tile=96)
    assert panel.shape == (96 + 24, 3 * 96, 3)
    gt_tile = panel[24:, 96:192]
    green = np.array(GT_COLOR) * 255
    assert (np.abs(gt_tile.astype(float) - green).sum(-1) < 120).any()  # the ground truth
    alone = comparison_panel(image, K, (v, joints), None, f, bones, tile=96)
    assert alone.shape == (120, 96, 3)
    sheet = contact_sheet({"worst": [panel, panel], "median": [panel], "none": []})
    assert sheet.shape[1] == 2 * (panel.shape[1] + 8)
    assert sheet.shape[0] == 32 + 2 * (panel.shape[0] + 8)
    with pytest.raises(ValueError, match="groups"):
        contact_sheet({})
