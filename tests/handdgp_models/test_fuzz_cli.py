"""Bad command lines: one line on stderr naming the option or file, exit status 2, no traceback.

The commands run in-process through :func:`handdgp_models.cli.main`; one case runs the module
as a separate interpreter to check what really reaches stderr.
"""

import json
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handdgp_models.checkpoint import save_checkpoint
from handdgp_models.cli import main
from handdgp_models.errors import USAGE_ERROR, UserError, run_cli
from handdgp_models.inputs import parse_box, read_intrinsics
from handdgp_models.validate import require_intrinsics

H, W = 60, 80


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_inputs")
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(d / "ok.png"), img)
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    (d / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (d / "garbage.png").write_bytes(os.urandom(500))
    (d / "empty.jpg").write_bytes(b"")
    (d / "K.json").write_text(json.dumps({"fx": 100, "fy": 100, "cx": 40, "cy": 30}))
    ckpt = {"model": {"w": torch.ones(2)}, "config": json.dumps({"model": {"bogus": 1},
                                                                 "train": {}})}
    save_checkpoint(d / "mismatch.pt", ckpt)
    save_checkpoint(d / "noconfig.pt", {"model": {"w": torch.ones(2)}})
    save_checkpoint(d / "foreign.pt", {"state_dict": torch.ones(2)})
    save_checkpoint(d / "evil.pt", {"model": {"w": _Evil()}, "config": "{}"})
    good = (d / "mismatch.pt").read_bytes()
    (d / "truncated.pt").write_bytes(good[: len(good) // 2])
    (d / "garbage.pt").write_bytes(os.urandom(800))
    (d / "empty.pt").write_bytes(b"")
    (d / "pickle.pt").write_bytes(pickle.dumps({"model": {}}))
    return d


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _user_error(capsys, argv, *names):
    """Run ``main(argv)``; assert a one-line user error naming every one of ``names``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == USAGE_ERROR, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def _predict(files, tmp_path, **opts):
    argv = ["predict", "--checkpoint", opts.pop("checkpoint", files / "missing.pt"),
            "--image", opts.pop("image", files / "ok.png"), "--out", tmp_path / "out"]
    for key, value in opts.items():
        argv += [f"--{key}", value]
    return argv


@pytest.mark.parametrize("box", ["a,b,c", "80,60", "80,60,90,1", "", "80,60,inf", "80,60,-5",
                                 "80,60,0", "nan,30,20", "5000,30,20", "40,-900,100",
                                 "1e39,30,20", "40;30;20"])
def test_bad_box(files, tmp_path, capsys, box):
    _user_error(capsys, _predict(files, tmp_path, box=box), "--box")
    assert not (tmp_path / "out").exists()


_BAD_K = {
    "missing": None,
    "not json": "{fx: 1",
    "not utf8": b"\xff\xfe\x00",
    "zero K": [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
    "negative focal": {"fx": -100, "fy": 100, "cx": 40, "cy": 30},
    "NaN": '{"K": [[NaN, 0, 40], [0, 100, 30], [0, 0, 1]]}',
    "Infinity": '{"fx": Infinity, "fy": 100, "cx": 40, "cy": 30}',
    "too big for float32": {"fx": 1e39, "fy": 100, "cx": 40, "cy": 30},
    "2x2": [[1, 0], [0, 1]],
    "strings": [["a", "b", "c"]] * 3,
    "ragged": [[1, 0, 0], [0, 1], [0, 0, 1]],
    "missing cy": {"fx": 100, "fy": 100, "cx": 40},
    "projective last row": [[100, 0, 40], [0, 100, 30], [1, 1, 1]],
    "a number": 5,
}


@pytest.mark.parametrize("case", list(_BAD_K))
def test_bad_intrinsics(files, tmp_path, capsys, case):
    path = tmp_path / "K.json"
    value = _BAD_K[case]
    if isinstance(value, bytes):
        path.write_bytes(value)
    elif isinstance(value, str):
        path.write_text(value)
    elif value is not None:
        path.write_text(json.dumps(value))
    _user_error(capsys, _predict(files, tmp_path, intrinsics=path), "--intrinsics", "K.json")


@pytest.mark.parametrize("image", ["missing.png", "truncated.jpg", "garbage.png", "empty.jpg",
                                   "."])
def test_bad_image(files, tmp_path, capsys, image):
    _user_error(capsys, _predict(files, tmp_path, image=files / image), "--input")


@pytest.mark.parametrize("ckpt", ["missing.pt", "empty.pt", "garbage.pt", "truncated.pt",
                                  "pickle.pt", "evil.pt", "noconfig.pt", "foreign.pt",
                                  "mismatch.pt"])
@pytest.mark.parametrize("command", ["predict", "eval"])
def test_bad_checkpoint(files, tmp_path, capsys, ckpt, command):
    if command == "predict":
        argv = _predict(files, tmp_path, checkpoint=files / ckpt, intrinsics=files / "K.json",
                        box="40,30,50")
    else:
        argv = ["eval", "--checkpoint", files / ckpt, "--out", tmp_path / "ev", "--quiet"]
    line = _user_error(capsys, argv, ckpt)
    assert "weights_only" not in line
    if ckpt in ("evil.pt", "foreign.pt", "garbage.pt", "pickle.pt"):
        assert "not a checkpoint of this project" in line


@pytest.mark.parametrize("argv, names", [
    ([], ["command"]),
    (["frobnicate"], ["frobnicate"]),
    (["predict"], ["--checkpoint", "--input", "--out"]),
    (["predict", "--checkpoint", "x.pt", "--image", "y.png", "--out"], ["--out"]),
    (["train", "--out", "o", "--no-such-option"], ["--no-such-option"]),
    (["train", "--config", "nope", "--out", "o"], ["nope"]),
    (["eval", "--checkpoint", "none.pt", "--out", "o"], ["--checkpoint", "none.pt"]),
])
def test_bad_command_lines(tmp_path, capsys, monkeypatch, argv, names):
    monkeypatch.chdir(tmp_path)
    _user_error(capsys, argv, *names)


def test_debug_shows_the_traceback(files, tmp_path, capsys):
    for argv in (["--debug", *_predict(files, tmp_path, box="a,b,c")],
                 [*_predict(files, tmp_path, checkpoint=files / "garbage.pt"), "--debug"]):
        assert main([str(a) for a in argv]) == USAGE_ERROR
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_help_still_exits_zero(capsys):
    assert main(["--help"]) == 0 and "--debug" in capsys.readouterr().out


def test_run_cli_statuses(capsys):
    def raise_(exc):
        def entry(argv):
            raise exc
        return entry

    assert run_cli(raise_(UserError("--x: bad\nsecond line")), []) == USAGE_ERROR
    assert capsys.readouterr().err == "error: --x: bad; second line\n"
    assert run_cli(raise_(FileNotFoundError(2, "No such file or directory", "a.txt")), []) == 2
    assert capsys.readouterr().err == "error: a.txt: No such file or directory\n"
    assert run_cli(raise_(SystemExit("--y: wrong")), []) == USAGE_ERROR
    assert run_cli(raise_(RuntimeError("boom")), []) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "--debug" in err and "Traceback" not in err
    seen = []
    assert run_cli(lambda argv: seen.extend(argv), ["a", "--debug", "b", "--", "--debug"]) == 0
    assert seen == ["a", "b", "--", "--debug"]  # the flag is taken out only before "--"


def test_no_traceback_reaches_stderr_of_the_console_command(files, tmp_path):
    argv = _predict(files, tmp_path, checkpoint=files / "evil.pt")
    r = subprocess.run([sys.executable, "-m", "handdgp_models", *map(str, argv)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == USAGE_ERROR
    assert "Traceback" not in r.stderr and "pwned" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "evil.pt" in lines[0] and "weights_only" not in lines[0]


# -- the validators behind the options, over random values ----------------------------------

_numbers = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-10**6, 10**6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_numbers, min_size=0, max_size=5), st.sampled_from([",", ", ", ";"]))
def test_parse_box_accepts_exactly_the_valid_boxes(values, sep):
    text = sep.join(str(v) for v in values)
    try:
        box = parse_box(text, H, W)
    except UserError as exc:
        assert str(exc).startswith("--box:")
        return
    cu, cv, side = (float(v) for v in box)
    assert np.isfinite(box).all() and box.dtype == np.float32 and side > 0
    assert -0.5 - side / 2 < cu < W - 0.5 + side / 2 and -0.5 - side / 2 < cv < H - 0.5 + side / 2


@settings(max_examples=200, deadline=None)
@given(st.lists(_numbers, min_size=9, max_size=9))
def test_intrinsics_validator_over_random_matrices(values):
    K = np.array(values, dtype=np.float64).reshape(3, 3)
    structured = (K[1, 0] == 0 and K[2, 0] == 0 and K[2, 1] == 0 and K[2, 2] == 1)
    expected = bool(np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0 and structured)
    try:
        out = require_intrinsics(K, "K")
    except ValueError as exc:
        assert str(exc).startswith("K:")
        assert not expected or not np.isfinite(np.linalg.inv(K)).all()
        return
    assert expected and np.isfinite(np.linalg.inv(out)).all()


def test_read_intrinsics_accepts_the_documented_forms(tmp_path):
    K = [[100.0, 0.5, 40.0], [0.0, 110.0, 30.0], [0.0, 0.0, 1.0]]
    for i, content in enumerate([K, {"K": K}, {"fx": 100, "fy": 110, "cx": 40, "cy": 30}]):
        path = tmp_path / f"k{i}.json"
        path.write_text(json.dumps(content))
        out = read_intrinsics(path, H, W)
        assert out.dtype == np.float32 and out[1, 1] == 110 and out[0, 2] == 40
