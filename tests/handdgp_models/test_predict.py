"""predict on real inputs: folders with a boxes file (a left and a right hand), a video with a
detector and smoothing, left hands as mirrored right hands, the files written."""

import json

import cv2
import numpy as np
import pytest
import torch
import trimesh

from handdgp_models.camera import Camera
from handdgp_models.cli import main
from handdgp_models.config import PipelineConfig, load_config
from handdgp_models.data import InputPipeline
from handdgp_models.detections import HandBox
from handdgp_models.engine import Predictor
from handdgp_models.train import train

#: A left hand's prediction equals the mirrored prediction of the mirrored image to this
#: (metres): the two rectified crops are the same up to one grey level of rounding.
MIRROR_ATOL_M = 5e-4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    cfg = load_config("tiny", [f'cache_dir="{root / "cache"}"', "train.steps=1"])
    train(cfg, root / "run", progress=False)
    return root / "run" / "checkpoint.pt"


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_checkpoint(ckpt)


def _image(seed: int, size=(96, 128)) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _mirror_box(box, width):
    x0, y0, x1, y1 = box
    return [width - 1 - x1, y0, width - 1 - x0, y1]


def test_left_hand_is_the_mirrored_right_hand(predictor):
    """predict(mirror(image)) == mirror(predict(image)) with the faces' winding reversed."""
    image = _image(0)
    h, w = image.shape[:2]
    K = np.array([[110.0, 0, (w - 1) / 2], [0, 110.0, (h - 1) / 2], [0, 0, 1]])  # symmetric
    boxes = [[20.0, 15.0, 70.0, 75.0], [60.0, 30.0, 120.0, 90.0]]
    right = predictor.predict(image, K, [HandBox(np.array(b), True) for b in boxes])
    left = predictor.predict(np.ascontiguousarray(image[:, ::-1]), K,
                             [HandBox(np.array(_mirror_box(b, w)), False) for b in boxes])
    M = np.array([-1.0, 1.0, 1.0])
    for r, l in zip(right, left, strict=True):
        np.testing.assert_allclose(l.joints, r.joints * M, atol=MIRROR_ATOL_M)
        np.testing.assert_allclose(l.verts, r.verts * M, atol=MIRROR_ATOL_M)
        np.testing.assert_allclose(l.translation, r.translation * M, atol=MIRROR_ATOL_M)
        np.testing.assert_allclose(l.weights, r.weights, atol=1e-3)
        assert l.valid == r.valid and not l.right
    faces = predictor.faces_of(True)
    assert np.array_equal(predictor.faces_of(False), faces[:, ::-1])
    # the mirrored mesh with reversed faces is outward-facing like the right one
    vol = [trimesh.Trimesh(v, f, process=False).volume for v, f in
           ((right[0].verts, faces), (left[0].verts, predictor.faces_of(False)))]
    assert np.sign(vol[0]) == np.sign(vol[1]) and vol[1] == pytest.approx(vol[0], rel=1e-2)


@pytest.mark.parametrize("mode", ["perspective", "affine", "crop"])
def test_a_mirrored_view_is_exact(mode):
    """The pipeline's mirror: project(K, R (M X)) = H project(K_orig, X), and the crop of the
    mirrored image equals the crop of the image (one warp, no second resampling)."""
    pipe = InputPipeline(PipelineConfig(mode=mode, crop_first=False), out_size=48,
                         focal=120.0, train=False)
    image = _image(1)
    h, w = image.shape[:2]
    K = np.array([[100.0, 0, (w - 1) / 2], [0, 104.0, (h - 1) / 2], [0, 0, 1]])
    X = np.random.default_rng(2).uniform([-0.05, -0.05, 0.4], [0.08, 0.05, 0.6], (30, 3))
    uv = X @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    a = pipe({"image": image, "K": K, "box": np.array([70.0, 50.0, 40.0])})
    b = pipe({"image": np.ascontiguousarray(image[:, ::-1]), "K": K,
              "box": np.array([w - 1 - 70.0, 50.0, 40.0]), "mirror": True})
    assert (a["image"] - b["image"]).abs().max() <= 1.5 / 255
    torch.testing.assert_close(a["K"], b["K"])
    torch.testing.assert_close(a["R"], b["R"])
    # the geometry of one mirrored sample: its own image, with the mirrored world
    c = pipe({"image": image, "K": K, "box": np.array([70.0, 50.0, 40.0]), "mirror": True,
              "joints3d": X, "joints2d": uv})
    Hc, Kc, Rc = (c[k].double() for k in ("H", "K", "R"))
    proj = (X * np.array([-1.0, 1, 1])) @ (Kc @ Rc).numpy().T
    hom = np.concatenate([uv, np.ones((len(uv), 1))], 1) @ Hc.numpy().T
    np.testing.assert_allclose(proj[:, :2] / proj[:, 2:], hom[:, :2] / hom[:, 2:], atol=1e-3)
    np.testing.assert_allclose(c["joints2d"].numpy(), hom[:, :2] / hom[:, 2:], atol=1e-3)
    assert torch.linalg.det(Rc) == pytest.approx(1.0)


def _boxes_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, seed in (("a.png", 3), ("b.jpg", 4), ("c.png", 5)):
        cv2.imwrite(str(folder / name), _image(seed)[..., ::-1])
    boxes = {"a.png": [{"box": [10, 12, 60, 70], "right": True, "score": 0.9},
                       {"box": [64, 20, 120, 84], "right": False, "score": 0.7}],
             "b.jpg": [{"box": [30, 10, 90, 80], "right": False}]}  # c.png: no hands
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    return folder, boxes


def test_predict_folder_with_a_boxes_file(ckpt, predictor, tmp_path, capsys):
    folder, boxes = _boxes_folder(tmp_path)
    fs = cv2.FileStorage(str(tmp_path / "calib.yaml"), cv2.FILE_STORAGE_WRITE)
    K = np.array([[230.0, 0, 127.5], [0, 230.0, 95.5], [0, 0, 1]])  # calibrated at 256x192
    fs.write("image_width", 256)
    fs.write("image_height", 192)
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", np.zeros((1, 5)))
    fs.release()
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(ckpt), "--input", str(folder), "--boxes",
                 str(tmp_path / "boxes.json"), "--calibration", str(tmp_path / "calib.yaml"),
                 "--mesh-format", "both", "--out", str(out), "--quiet"]) == 0
    assert "images/s" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["hands"], summary["left"]) == (3, 3, 2)
    assert summary["without_hands"] == 1 and summary["images_per_s"] > 0
    a = json.loads((out / "predictions" / "a.json").read_text())
    K_half = [[115.0, 0, 63.5], [0, 115.0, 47.5], [0, 0, 1]]  # the calibration at 128x96
    np.testing.assert_allclose(a["camera"]["K"], K_half)
    assert a["units"] == "metres" and a["camera"]["distortion"] == [0.0] * 5
    image = cv2.imread(str(folder / "a.png"))[..., ::-1]
    want = predictor.predict(image, np.array(K_half),
                             [HandBox(np.array(h["box"], float), h["right"], h.get("score"))
                              for h in boxes["a.png"]])
    for k, (hand, ref) in enumerate(zip(a["hands"], want, strict=True)):
        assert hand["right"] == ref.right and hand["box"] == boxes["a.png"][k]["box"]
        assert hand["score"] == boxes["a.png"][k]["score"] and isinstance(hand["valid"], bool)
        assert np.asarray(hand["keypoint_weights"]).shape == (21,)
        # batched across images = one image at a time
        np.testing.assert_allclose(hand["joints"], ref.joints, atol=1e-5)
        np.testing.assert_allclose(hand["vertices"], ref.verts, atol=1e-5)
        uv = np.asarray(hand["joints"]) @ np.asarray(K_half).T
        np.testing.assert_allclose(hand["joints2d"], uv[:, :2] / uv[:, 2:], atol=1e-3)
        for fmt in ("obj", "ply"):
            mesh = trimesh.load(out / "meshes" / f"a_hand{k}.{fmt}", process=False)
            np.testing.assert_allclose(mesh.vertices, hand["vertices"], atol=1e-5)
            assert np.array_equal(mesh.faces, predictor.faces_of(hand["right"]))
    assert json.loads((out / "predictions" / "c.json").read_text())["hands"] == []
    for name in ("a", "b", "c"):
        over = cv2.imread(str(out / "overlays" / f"{name}.png"))
        assert over.shape == (96, 128, 3)
    # the hands are drawn where they are: the overlay differs from the image in a's boxes
    over = cv2.imread(str(out / "overlays" / "a.png"))[..., ::-1].astype(int)
    assert np.abs(over - image).max() > 50


def test_a_distorted_camera_is_predicted_through_its_lens(ckpt, predictor, tmp_path):
    folder, boxes = _boxes_folder(tmp_path)
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    dist = np.array([-0.25, 0.06, 0.001, -0.002, 0.0])
    fs = cv2.FileStorage(str(tmp_path / "calib.json"), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", dist[None])
    fs.release()
    out = tmp_path / "o"
    assert main(["predict", "--checkpoint", str(ckpt), "--input", str(folder), "--boxes",
                 str(tmp_path / "boxes.json"), "--calibration", str(tmp_path / "calib.json"),
                 "--out", str(out), "--quiet"]) == 0
    a = json.loads((out / "predictions" / "a.json").read_text())
    assert a["camera"]["distortion"] == dist.tolist()
    image = cv2.imread(str(folder / "a.png"))[..., ::-1]
    camera = Camera(K, dist)
    hands = [HandBox(np.array(h["box"], float), h["right"], h.get("score"))
             for h in boxes["a.png"]]
    want = predictor.predict(image, K, hands, camera)
    plain = predictor.predict(image, K, hands)
    for hand, ref, ideal in zip(a["hands"], want, plain, strict=True):
        np.testing.assert_allclose(hand["joints"], ref.joints, atol=1e-5)
        assert np.abs(ref.joints - ideal.joints).max() > 1e-4  # the lens changed the input
        # joints2d: the joints projected through the lens, as OpenCV projects them
        uv, _ = cv2.projectPoints(np.asarray(hand["joints"]), np.zeros(3), np.zeros(3), K, dist)
        np.testing.assert_allclose(hand["joints2d"], uv[:, 0], atol=1e-6)
    assert cv2.imread(str(out / "overlays" / "a.png")).shape == (96, 128, 3)


def test_thin_prism_distortion_is_refused(ckpt, tmp_path, capsys):
    folder, _ = _boxes_folder(tmp_path)
    fs = cv2.FileStorage(str(tmp_path / "calib.json"), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]]))
    fs.write("distortion_coefficients", np.array([[0.1, -0.02, 0, 0, 0, 0, 0, 0, 0.01, 0, 0,
                                                   0]]))
    fs.release()
    assert main(["predict", "--checkpoint", str(ckpt), "--input", str(folder), "--calibration",
                 str(tmp_path / "calib.json"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "calib.json" in err and "thin-prism" in err and "undistort" in err


DETECTOR = '''
def hands(image):
    h, w = image.shape[:2]
    d = int(image.mean()) % 7  # the boxes move from frame to frame
    return [{"box": [4 + d, 8, w // 2 + d, h - 8], "right": True, "score": 0.8},
            {"box": [w // 2 - 4 - d, 8 + d, w - 4, h - 8], "right": False, "score": 0.6}]
'''


def _write_video(path, frames=6):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (128, 96))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_image(10 + i)[..., ::-1])
    writer.release()


def test_predict_video_with_a_detector_and_smoothing(ckpt, tmp_path):
    _write_video(tmp_path / "clip.mp4")
    (tmp_path / "det.py").write_text(DETECTOR)
    runs = {}
    for name, extra in (("raw", []), ("smooth", ["--smooth", "--smooth-cutoff", "0.5"])):
        out = tmp_path / name
        assert main(["predict", "--checkpoint", str(ckpt), "--input", str(tmp_path / "clip.mp4"),
                     "--detector", f"{tmp_path / 'det.py'}:hands", "--fov", "60",
                     "--batch-size", "3", "--mesh-format", "none", "--out", str(out),
                     "--quiet", *extra]) == 0
        files = sorted((out / "predictions").glob("frame_*.json"))
        assert len(files) == 6 and not (out / "meshes").exists()
        frames = [json.loads(f.read_text()) for f in files]
        assert [f["index"] for f in frames] == list(range(6))
        assert frames[1]["time"] == pytest.approx(0.1)
        assert [h["right"] for h in frames[0]["hands"]] == [True, False]
        f = 0.5 * 128 / np.tan(np.radians(30))
        assert frames[0]["camera"]["K"][0][0] == pytest.approx(f)
        runs[name] = np.array([[h["joints"] for h in fr["hands"]] for fr in frames])
        cap = cv2.VideoCapture(str(out / "overlay.mp4"))
        assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
        ok, first = cap.read()
        cap.release()
        assert ok and first.shape == (96, 128, 3)
    raw, smooth = runs["raw"], runs["smooth"]
    np.testing.assert_allclose(smooth[0], raw[0], atol=1e-6)  # the first frame passes
    assert not np.array_equal(smooth[1:], raw[1:])
    jitter = [np.abs(np.diff(x, axis=0)).sum() for x in (raw, smooth)]
    assert jitter[1] < jitter[0]


def test_bad_hands_inputs_are_named(ckpt, tmp_path, capsys):
    folder, _ = _boxes_folder(tmp_path)
    cases = [({"a.png": [{"box": [10, 12, 60, 70]}]}, "right"),
             ({"a.png": [{"box": [60, 12, 10, 70], "right": True}]}, "x1 > x0"),
             ({"other.png": []}, "none of its 1 entries"),
             ([1, 2], "expected an object")]
    for content, message in cases:
        (tmp_path / "bad.json").write_text(json.dumps(content))
        assert main(["predict", "--checkpoint", str(ckpt), "--input", str(folder), "--boxes",
                     str(tmp_path / "bad.json"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "--boxes" in err and message in err, err
    for args, message in ((["--detector", "no_such_module_x:f"], "--detector"),
                          (["--boxes", str(tmp_path / "bad.json"), "--box", "5,5,5"], "one way"),
                          (["--fov", "200"], "--fov"),
                          (["--smooth"], "--smooth"),
                          (["--input", str(tmp_path / "clip.mp4"), str(folder)], "--input")):
        argv = ["predict", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--quiet"]
        if "--input" not in args:
            argv += ["--input", str(folder)]
        (tmp_path / "clip.mp4").touch()
        assert main(argv + args) == 2
        assert message in capsys.readouterr().err
