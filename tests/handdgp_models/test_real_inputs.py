"""The pieces of predict's real inputs: OpenCV calibration files, fields of view, boxes files
and detectors, image folders and videos, One-Euro smoothing."""

import json
import math

import cv2
import numpy as np
import pytest

from handdgp_models.camera import (
    Camera,
    default_camera,
    fov_camera,
    read_calibration,
    require_supported_lens,
)
from handdgp_models.detections import HandBox, boxes_file, detector, parse_hands
from handdgp_models.media import open_inputs
from handdgp_models.smoothing import OneEuroFilter

K = np.array([[600.0, 0.5, 319.5], [0, 610.0, 239.5], [0, 0, 1]])
DIST = np.array([[0.1, -0.05, 0.001, 0.002, 0.01]])


@pytest.mark.parametrize("ext", ["yaml", "json", "xml"])
def test_calibration_files_written_by_opencv(tmp_path, ext):
    path = tmp_path / f"calib.{ext}"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 640)
    fs.write("image_height", 480)
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", DIST)
    fs.release()
    cam = read_calibration(path)
    np.testing.assert_array_equal(cam.K, K)
    np.testing.assert_array_equal(cam.distortion, DIST[0])
    assert cam.size == (480, 640) and cam.model == "pinhole" and cam.distorted
    assert require_supported_lens(cam) is cam
    prism = Camera(K, np.r_[DIST[0], 0, 0, 0, 0.01, 0, 0, 0], source=f"calib.{ext}")
    with pytest.raises(ValueError, match=f"calib.{ext}.*thin-prism.*undistort"):
        require_supported_lens(prism)


def test_calibration_variants_and_errors(tmp_path):
    ros = tmp_path / "ros.yaml"  # ROS camera_info layout, fisheye model, no size
    ros.write_text("camera_matrix:\n  rows: 3\n  cols: 3\n  data: [500, 0, 320, 0, 500, 240, "
                   "0, 0, 1]\ndistortion_model: equidistant\ndistortion_coefficients:\n"
                   "  rows: 1\n  cols: 4\n  data: [0, 0, 0, 0]\n")
    cam = read_calibration(ros)
    # a fisheye with zero coefficients is the equidistant lens, still a distortion
    assert cam.model == "fisheye" and cam.size is None and cam.distorted
    assert require_supported_lens(cam) is cam
    plain = tmp_path / "plain.json"  # plain lists, no distortion: zeros
    plain.write_text(json.dumps({"K": K.tolist(), "image_size": [640, 480]}))
    cam = read_calibration(plain)
    np.testing.assert_array_equal(cam.distortion, np.zeros(5))
    assert cam.size == (480, 640)
    for content, message in (("{}", "no camera matrix"), ("a: [1, 2\n", "not a readable"),
                             (json.dumps({"K": [[1, 0], [0, 1]]}), "3x3"),
                             (json.dumps({"K": K.tolist(), "D": [0.1, 0.2, 0.3]}), "4 or 5"),
                             (json.dumps({"K": K.tolist(), "distortion_model": "x"}), "model")):
        path = tmp_path / "bad.yaml"
        path.write_text(content)
        with pytest.raises(ValueError, match=message):
            read_calibration(path)
    with pytest.raises(ValueError, match="--calibration: no such file"):
        read_calibration(tmp_path / "none.yaml")


def test_a_calibration_is_rescaled_to_the_image():
    cam = Camera(K, size=(480, 640), source="c")
    half = cam.at_size(240, 320)
    # the pixel centre convention: the image centre stays the image centre
    assert half.K[0, 2] == pytest.approx(159.5) and half.K[1, 2] == pytest.approx(119.5)
    assert half.K[0, 0] == 300 and half.K[1, 1] == 305 and half.K[0, 1] == 0.25
    np.testing.assert_array_equal(half.distortion, cam.distortion)
    with pytest.raises(ValueError, match="c: calibrated for 640x480.*320x320"):
        cam.at_size(320, 320)


def test_field_of_view_and_default_cameras():
    cam = fov_camera(90.0, 480, 640)
    assert cam.K[0, 0] == pytest.approx(320.0) and cam.K[0, 2] == 319.5
    u = cam.K[0, 0] * math.tan(math.radians(45)) + cam.K[0, 2]  # the edge ray at 45 degrees
    assert u == pytest.approx(639.5)
    assert default_camera(480, 640).K[0, 0] == 640
    with pytest.raises(ValueError, match="--fov"):
        fov_camera(180.0, 480, 640)


def test_hands_from_files_detectors_and_boxes(tmp_path):
    hand = HandBox.from_crop_box(np.array([50.0, 40.0, 20.0]), right=False)
    np.testing.assert_allclose(hand.box, [40, 30, 60, 50])
    np.testing.assert_allclose(hand.crop_box, [50, 40, 20])
    assert HandBox(np.array([0.0, 0, 10, 30])).crop_box[2] == 30  # the longer side
    parsed = parse_hands([{"box": [1, 2, 3, 4], "right": False, "score": 0.5, "extra": 1}], "w")
    assert parsed[0].right is False and parsed[0].score == 0.5
    for item, message in (({"box": [1, 2, 3]}, "missing right"),
                          ({"box": [1, 2, 3], "right": True}, "box must be"),
                          ({"box": [1, 2, 3, 4], "right": 1}, "true or false"),
                          ({"box": [1, 2, 3, float("nan")], "right": True}, "non-finite")):
        with pytest.raises(ValueError, match=message):
            parse_hands([item], "w")
    (tmp_path / "b.json").write_text(json.dumps({"x.png": [{"box": [0, 0, 5, 5],
                                                            "right": True}]}))
    source = boxes_file(tmp_path / "b.json", ["x.png", "y.png"])
    assert len(source("x.png", None)) == 1 and source("y.png", None) == []
    (tmp_path / "det.py").write_text("def f(image):\n    return [{'box': [0, 0, 1, 1], "
                                     "'right': image.shape[0] > 5}]\ndef bad(image):\n"
                                     "    return 3\n")
    assert detector(f"{tmp_path / 'det.py'}:f")("k", np.zeros((8, 8, 3)))[0].right is True
    with pytest.raises(ValueError, match="--detector .*bad on k"):
        detector(f"{tmp_path / 'det.py'}:bad")("k", np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="no callable 'nope'"):
        detector(f"{tmp_path / 'det.py'}:nope")
    with pytest.raises(ValueError, match="module:function"):
        detector("justamodule")


def test_folders_images_and_videos(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "g").mkdir()
    img = np.full((10, 12, 3), 7, np.uint8)
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / "f" / name), img)
    (tmp_path / "f" / "notes.txt").write_text("not an image")
    cv2.imwrite(str(tmp_path / "g" / "a.png"), img)
    inputs = open_inputs([tmp_path / "f", tmp_path / "g" / "a.png"])
    assert not inputs.is_video and len(inputs) == 3
    frames = list(inputs)
    assert [f.name for f in frames] == ["a", "b", "a_2"]  # sorted, names made unique
    assert [f.key for f in frames] == ["a.jpg", "b.png", "a.png"] == inputs.keys()
    assert frames[1].image.shape == (10, 12, 3)
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5.0,
                             (12, 10))
    for i in range(3):
        writer.write(np.full((10, 12, 3), 60 * i, np.uint8))
    writer.release()
    video = open_inputs([str(tmp_path / "v.avi")])
    assert video.is_video and video.fps == pytest.approx(5.0) and len(video) == 3
    frames = list(video)
    assert [f.key for f in frames] == ["0", "1", "2"] and frames[2].name == "frame_000002"
    assert abs(int(frames[2].image.mean()) - 120) <= 3
    (tmp_path / "empty").mkdir()
    for paths, message in (([tmp_path / "empty"], "holds no images"),
                           ([tmp_path / "none.png"], "no such file"),
                           ([tmp_path / "v.avi", tmp_path / "f"], "the only input")):
        with pytest.raises(ValueError, match=message):
            open_inputs(paths)


def test_one_euro_filter():
    # beta = 0: a first-order low-pass with alpha = 1 / (1 + 1 / (2 pi fc Te))
    f = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    x = np.array([0.0, 1.0, 1.0, 1.0])
    out = [f(np.array([v]), t)[0] for t, v in zip([0, 0.1, 0.2, 0.3], x, strict=True)]
    a = 1 / (1 + 1 / (2 * math.pi * 2.0 * 0.1))
    want = [x[0]]
    for v in x[1:]:
        want.append(a * v + (1 - a) * want[-1])
    np.testing.assert_allclose(out, want)
    # a constant passes unchanged; noise is reduced; a fast move follows with a high beta
    rng = np.random.default_rng(0)
    t = np.arange(100) / 30
    noisy = 0.5 + 0.01 * rng.standard_normal(100)
    f = OneEuroFilter()
    smooth = np.array([f(np.array([v]), s)[0] for s, v in zip(t, noisy, strict=True)])
    assert smooth[30:].std() < 0.5 * noisy[30:].std()
    ramp = 0.5 * t
    slow, fast = OneEuroFilter(beta=0.0), OneEuroFilter(beta=200.0)
    lag = [abs(ramp[-1] - [flt(np.array([v]), s)[0] for s, v in
                           zip(t, ramp, strict=True)][-1]) for flt in (slow, fast)]
    assert lag[1] < 0.5 * lag[0]
    with pytest.raises(ValueError, match="increase"):
        fast(np.array([0.0]), t[-1])
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
