"""FreiHAND loader: round trips through files written in the release format."""

import json

import numpy as np
import pytest

from handdgp_models.data import FreiHAND
from handdgp_models.data._io import box_from_points
from tests.handdgp_models.fixtures import write_freihand


def _project(x, K):
    p = x @ K.T
    return p[:, :2] / p[:, 2:]


@pytest.fixture(scope="module")
def fh(tmp_path_factory):
    root = tmp_path_factory.mktemp("freihand")
    return root, write_freihand(root, num=3)


def test_training_round_trip(fh):
    root, w = fh
    ds = FreiHAND(root, "training", version="gs")
    assert len(ds) == 3
    for i in range(3):
        s = ds[i]
        assert s["image"].dtype == np.uint8 and s["image"].shape == (224, 224, 3)
        assert np.abs(s["image"].astype(int) - w["images"][i]).max() <= 12  # JPEG
        np.testing.assert_allclose(s["K"], w["K"][i], rtol=1e-6)
        np.testing.assert_allclose(s["joints3d"], w["xyz"][i], atol=1e-6)
        np.testing.assert_allclose(s["verts3d"], w["verts"][i], atol=1e-6)
        np.testing.assert_allclose(s["pose"], w["mano"][i, :48], atol=1e-6)
        np.testing.assert_allclose(s["shape"], w["mano"][i, 48:58], atol=1e-6)
        np.testing.assert_allclose(s["joints2d"], _project(w["xyz"][i], w["K"][i]), atol=1e-3)
        for key, dtype in (("K", np.float32), ("joints3d", np.float32), ("box", np.float32)):
            assert s[key].dtype == dtype
        np.testing.assert_array_equal(s["mask"], w["masks"][i])
        uv = s["joints2d"]
        lo, hi = uv.min(0), uv.max(0)
        np.testing.assert_allclose(s["box"][:2], (lo + hi) / 2, atol=1e-4)
        assert s["box"][2] == pytest.approx((hi - lo).max(), abs=1e-4)
        assert s["name"] == "freihand" and s["index"] == i


def test_training_fixed_box(fh):
    root, _ = fh
    s = FreiHAND(root, box="fixed", fixed_side=90)[2]
    np.testing.assert_allclose(s["box"], [111.5, 111.5, 90.0])


@pytest.mark.parametrize("version, offset", [("hom", 1), (2, 2), ("auto", 3)])
def test_versions_pick_images_and_share_annotations(fh, version, offset):
    root, w = fh
    ds = FreiHAND(root, version=version)
    s = ds[1]
    assert np.abs(s["image"].astype(int) - w["images"][offset * 3 + 1]).max() <= 12
    np.testing.assert_allclose(s["joints3d"], w["xyz"][1], atol=1e-6)


def test_version_sequence_concatenates(fh):
    root, w = fh
    ds = FreiHAND(root, version=("gs", "sample"))
    assert len(ds) == 6
    assert np.abs(ds[4]["image"].astype(int) - w["images"][2 * 3 + 1]).max() <= 12
    np.testing.assert_allclose(ds[4]["joints3d"], w["xyz"][1], atol=1e-6)
    assert ds[-1]["index"] == 5
    with pytest.raises(IndexError):
        ds[6]


def test_evaluation_without_and_with_gt(tmp_path):
    w = write_freihand(tmp_path / "a", num=2, split="evaluation", with_gt=False)
    ds = FreiHAND(tmp_path / "a", "evaluation")
    s = ds[1]
    assert "joints3d" not in s and "verts3d" not in s
    np.testing.assert_allclose(s["box"], [111.5, 111.5, 100.0])
    np.testing.assert_allclose(s["K"], w["K"][1], rtol=1e-6)
    assert FreiHAND(tmp_path / "a", "evaluation", fixed_side=80)[0]["box"][2] == 80
    with pytest.raises(ValueError, match="evaluation_xyz.json"):
        FreiHAND(tmp_path / "a", "evaluation", box="keypoints")

    w = write_freihand(tmp_path / "b", num=2, split="evaluation")
    s = FreiHAND(tmp_path / "b", "evaluation")[0]
    np.testing.assert_allclose(s["verts3d"], w["verts"][0], atol=1e-6)
    np.testing.assert_allclose(s["box"], [111.5, 111.5, 100.0])  # the protocol, not the GT
    s = FreiHAND(tmp_path / "b", "evaluation", box="keypoints")[0]  # explicit opt-in only
    np.testing.assert_allclose(s["box"], box_from_points(s["joints2d"]))
    assert s["box"][2] != 100.0


def test_evaluation_inputs_do_not_depend_on_ground_truth(tmp_path):
    """Changing (or removing) the evaluation ground truth changes no evaluation input."""
    write_freihand(tmp_path, num=3, split="evaluation", seed=1)
    before = [FreiHAND(tmp_path, "evaluation")[i] for i in range(3)]
    other = write_freihand(tmp_path / "other", num=3, split="evaluation", seed=2)
    for name in ("xyz", "verts"):
        data = (other[name] * 1.7 + 0.05).tolist()
        (tmp_path / f"evaluation_{name}.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="stale"):
        after = FreiHAND(tmp_path, "evaluation")
    for i in range(3):
        np.testing.assert_allclose(after[i]["joints3d"], other["xyz"][i] * 1.7 + 0.05,
                                   atol=1e-6)  # the new ground truth is what is loaded
        np.testing.assert_array_equal(after[i]["box"], before[i]["box"])
        np.testing.assert_array_equal(after[i]["image"], before[i]["image"])
    for name in ("xyz", "verts", "mano"):
        (tmp_path / f"evaluation_{name}.json").unlink()
    without = FreiHAND(tmp_path, "evaluation")
    for i in range(3):
        np.testing.assert_array_equal(without[i]["box"], before[i]["box"])
        np.testing.assert_array_equal(without[i]["image"], before[i]["image"])


def test_missing_and_corrupt_files_are_named(tmp_path):
    write_freihand(tmp_path, num=2, num_versions=1, masks=False)
    with pytest.raises(FileNotFoundError, match="00000003.jpg"):
        FreiHAND(tmp_path, version="hom")[1]
    (tmp_path / "training" / "rgb" / "00000000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="00000000.jpg"):
        FreiHAND(tmp_path)[0]
    (tmp_path / "training_verts.json").write_text("[[1, 2")
    with pytest.warns(UserWarning, match="stale"), \
            pytest.raises(ValueError, match="training_verts.json"):
        FreiHAND(tmp_path)
    (tmp_path / "training_verts.json").write_text(json.dumps([[[0, 0, 1]]]))
    with pytest.warns(UserWarning, match="stale"), \
            pytest.raises(ValueError, match="training_verts.json"):
        FreiHAND(tmp_path)
    (tmp_path / "training_verts.json").write_text(json.dumps([[[0, 0, 1]] * 778]))
    with pytest.warns(UserWarning, match="stale"), \
            pytest.raises(ValueError, match="training_verts.json: 1 entries but the K file"):
        FreiHAND(tmp_path)
    (tmp_path / "training_xyz.json").unlink()
    with pytest.raises(FileNotFoundError, match="training_xyz.json"):
        FreiHAND(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        FreiHAND(tmp_path / "nowhere")


def test_bad_arguments(fh):
    root, _ = fh
    with pytest.raises(ValueError, match="split"):
        FreiHAND(root, "test")
    with pytest.raises(ValueError, match="version"):
        FreiHAND(root, version="green")
    with pytest.raises(ValueError, match="version"):
        FreiHAND(root, version=4)
    with pytest.raises(ValueError, match="box"):
        FreiHAND(root, box="tight")
