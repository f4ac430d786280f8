"""The z-buffered rasteriser and the mesh renderer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path

from handdgp_models.data.render import project, rasterize, render_mesh, vertex_normals
from handdgp_models.hand import load_mano

K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])


def _square(z: float, half: float = 0.1) -> np.ndarray:
    return np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])


@pytest.mark.parametrize("near_first", [True, False])
def test_zbuffer_picks_nearer_triangle(near_first):
    near = np.array([[-0.2, -0.2, 1.0], [0.2, -0.2, 1.0], [0.0, 0.2, 1.0]])
    far = np.array([[-0.3, -0.1, 2.0], [0.3, -0.1, 2.0], [0.0, 0.3, 2.0]]) * [2, 2, 1]
    verts = np.concatenate([near, far] if near_first else [far, near])
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    r = rasterize(project(verts, K), verts[:, 2], faces, 48, 64)
    near_id = 0 if near_first else 1
    # At the image centre both triangles overlap; the nearer one must win.
    assert r.face_id[24, 32] == near_id
    assert r.depth[24, 32] == pytest.approx(1.0)
    # Pixels covered only by the far triangle keep it, at its depth.
    only_far = (r.face_id == 1 - near_id)
    assert only_far.any()
    np.testing.assert_allclose(r.depth[only_far], 2.0)


def test_coverage_matches_point_in_polygon():
    """Pixel centres clearly inside (outside) a triangle are (not) covered, per matplotlib."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:36, 0:36]
    pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(float)
    for _ in range(20):
        uv = rng.uniform(-5, 40, (3, 2))
        r = rasterize(uv, rng.uniform(0.5, 2.0, 3), np.array([[0, 1, 2]]), 36, 36)
        covered = r.face_id.ravel() == 0
        path = Path(uv)
        # The sign of matplotlib's radius depends on the winding, so test both margins.
        grow, shrink = path.contains_points(pts, radius=0.01), path.contains_points(
            pts, radius=-0.01)
        assert covered[grow & shrink].all()
        assert not covered[~(grow | shrink)].any()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_perspective_correct_barycentrics(seed):
    rng = np.random.default_rng(seed)
    verts = np.concatenate([rng.uniform(-0.3, 0.3, (3, 2)), rng.uniform(0.5, 3.0, (3, 1))], 1)
    r = rasterize(project(verts, K), verts[:, 2], np.array([[0, 1, 2]]), 48, 64)
    m = r.face_id == 0
    if not m.any():
        return
    point = r.bary[m] @ verts  # 3D surface point seen at each covered pixel
    uv = project(point, K)
    v, u = np.nonzero(m)
    np.testing.assert_allclose(uv, np.stack([u, v], 1), atol=1e-6)
    np.testing.assert_allclose(point[:, 2], r.depth[m], rtol=1e-9)
    np.testing.assert_allclose(r.bary[m].sum(1), 1.0, atol=1e-12)


def test_behind_camera_and_offscreen_are_skipped():
    verts = np.concatenate([_square(-1.0), _square(1.0) + [100.0, 0, 0]])
    faces = np.array([[0, 1, 2], [4, 5, 6]])
    r = rasterize(project(verts, K), verts[:, 2], faces, 48, 64)
    assert (r.face_id == -1).all() and np.isinf(r.depth).all()


def test_large_triangle_fills_image():
    verts = np.array([[-10.0, -10.0, 1.0], [10.0, -10.0, 1.0], [0.0, 30.0, 1.0]])
    r = rasterize(project(verts, K), verts[:, 2], np.array([[0, 1, 2]]), 48, 64)
    assert (r.face_id == 0).all()


def test_vertex_normals_of_flat_square_face_camera():
    verts = _square(1.0)
    faces = np.array([[0, 2, 1], [0, 3, 2]])  # wound to face -z (towards the camera)
    np.testing.assert_allclose(vertex_normals(verts, faces), [[0, 0, -1]] * 4, atol=1e-12)


def test_rendered_hand_silhouette_covers_vertices_and_is_shaded():
    hand = load_mano()
    verts = hand.template.numpy().astype(np.float64) + [-0.09, 0.0, 0.6]
    k = np.array([[300.0, 0, 63.5], [0, 300.0, 63.5], [0, 0, 1]])
    img, mask = render_mesh(verts, hand.faces.numpy(), k, 128, 128, np.array([0.8, 0.6, 0.5]),
                            np.array([0.0, -1.0, -1.0]),
                            background=np.zeros((128, 128, 3), np.uint8))
    uv = np.round(project(verts, k)).astype(int)
    assert mask[uv[:, 1], uv[:, 0]].mean() > 0.9  # vertices exactly on the rim may round out
    grown = np.zeros_like(mask)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(mask, dy, 0), dx, 1)
    assert grown[uv[:, 1], uv[:, 0]].all()
    assert (img[mask == 0] == 0).all()
    assert img[mask == 1].mean() > 40 and img[mask == 1].std() > 3  # lit and not flat


def test_bad_input():
    with pytest.raises(ValueError, match="uv"):
        rasterize(np.zeros((3, 3)), np.ones(3), np.zeros((1, 3), int), 8, 8)
    with pytest.raises(ValueError, match="faces"):
        rasterize(np.zeros((3, 2)), np.ones(3), np.array([[0, 1, 3]]), 8, 8)
    with pytest.raises(ValueError, match="z"):
        rasterize(np.zeros((3, 2)), np.ones(2), np.array([[0, 1, 2]]), 8, 8)
    with pytest.raises(ValueError, match="points"):
        project(np.zeros((3, 2)), K)
    with pytest.raises(ValueError, match="background"):
        render_mesh(_square(1.0), np.array([[0, 1, 2]]), K, 8, 8, np.ones(3), np.ones(3),
                    background=np.zeros((4, 4, 3), np.uint8))
