"""How a run is wired: the config resolved once and frozen, checked before anything is built,
the template built once per command, the run folder's names in one module, a quick CLI."""

import ast
import dataclasses
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from handdgp_models import config as config_mod
from handdgp_models.cli import main
from handdgp_models.config import (
    RunOptions,
    config_from_dict,
    load_config,
    resolve_config,
    to_dict,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "handdgp_models"
MAX_FUNCTION_LINES = 80


def _sections(cfg):
    yield cfg
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _sections(value)
        elif isinstance(value, list):
            for item in value:
                if dataclasses.is_dataclass(item):
                    yield from _sections(item)


def test_a_resolved_config_is_frozen_at_every_depth():
    cfg = load_config("small")
    sections = list(_sections(cfg))
    assert len(sections) >= 10
    for section in sections:
        name = dataclasses.fields(section)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, name, getattr(section, name))


def test_options_go_through_the_strict_path():
    cfg = resolve_config("freihand", ["train.steps=3"],
                         RunOptions(data_root="/data/fh", mano="M.pkl", test_split="training"))
    assert cfg.train.steps == 3 and cfg.hand.mano == "M.pkl"
    assert cfg.data.train[0].root == cfg.data.test.root == "/data/fh"
    assert cfg.data.test.split == "training"
    synthetic = resolve_config("freihand", options=RunOptions(test_dataset="synthetic",
                                                              data_root="/d"))
    assert synthetic.data.test == config_mod.RunConfig().data.test  # the synthetic test set
    assert synthetic.data.train[0].root == "/d"
    with pytest.raises(ValueError, match="--smpl.*no body section"):
        resolve_config("small", options=RunOptions(smpl="S.pkl"))
    with pytest.raises(ValueError, match=r"data.test.dataset.*from --dataset"):
        resolve_config("small", options=RunOptions(test_dataset="h36m"))


def test_every_value_check_runs_at_load_naming_key_and_source():
    cases = {"model.focal=0": "model.focal", "data.test.samples=null": "data.test.samples",
             'data.train.0.camera="moon"': "data.train.0.camera", "train.lr=0": "train.lr",
             'hand.tip_ids="mine"': "hand.tip_ids", "model.mesh_channels=[8,8,8,8,0]":
             "model.mesh_channels"}
    for item, key in cases.items():
        with pytest.raises(ValueError, match=rf"{key}.*from --set '{re.escape(item)}'") as info:
            load_config("small", [item])
        assert str(info.value).startswith(f"config: {key}:"), info.value


def test_a_bad_setting_fails_before_anything_is_built(tmp_path, monkeypatch, capsys):
    from handdgp_models import build

    def never(*args, **kwargs):
        pytest.fail("built something before the config was checked")

    for name in ("build_template", "build_train_data", "build_test_data", "build_network"):
        monkeypatch.setattr(build, name, never)
    out = tmp_path / "run"
    for command in (["train"], ["main"]):
        assert main([*command, "--set", "model.focal=0", "--out", str(out), "--quiet"]) == 2
        assert "model.focal" in capsys.readouterr().err
    assert not out.exists()


def test_the_command_line_answers_without_importing_torch():
    code = ("import sys\n"
            "from handdgp_models.cli import main\n"
            "assert main(['train', '--set', 'model.focal=0', '--out', 'x']) == 2\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'cv2') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "model.focal" in r.stderr and "predict" in r.stdout


def test_stored_configs_of_earlier_versions_still_load():
    plain = to_dict(load_config("tiny"))
    plain["data"]["cache_dir"] = "/old/data"
    plain["train"]["hierarchy_cache"] = "/old/hier"
    with pytest.raises(ValueError, match="data.cache_dir"):
        config_from_dict(plain)
    assert config_from_dict(plain, stored=True) == load_config("tiny")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("spine")
    return root, ["--set", f'cache_dir="{root / "cache"}"', "--set", "train.steps=2"]


def _count_templates(monkeypatch) -> list:
    from handdgp_models.hand import HandModel

    built = []
    init = HandModel.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(HandModel, "__init__", counting)
    return built


def test_the_template_is_built_once_per_command(tiny_run, monkeypatch):
    root, settings = tiny_run
    built = _count_templates(monkeypatch)
    assert main(["main", "--config", "tiny", "--out", str(root / "run"), "--quiet",
                 *settings]) == 0
    assert len(built) == 1, "main"
    ckpt = str(root / "run" / "checkpoint.pt")
    built.clear()
    assert main(["eval", "--checkpoint", ckpt, "--out", str(root / "ev"), "--quiet"]) == 0
    assert len(built) == 1, "eval"
    image = np.zeros((64, 80, 3), np.uint8)
    import cv2

    cv2.imwrite(str(root / "im.png"), image)
    built.clear()
    assert main(["predict", "--checkpoint", ckpt, "--image", str(root / "im.png"), "--out",
                 str(root / "p")]) == 0
    assert len(built) == 1, "predict"
    built.clear()
    assert main(["train", "--config", "tiny", "--out", str(root / "run2"), "--quiet",
                 *settings]) == 0
    assert len(built) == 1, "train"
    # evaluate returned what it wrote, and the report links exactly those overlays
    report = (root / "run" / "report.md").read_text()
    links = [line for line in report.splitlines() if line.startswith("![overlay]")]
    assert links and all((root / "run" / line[11:-1]).is_file() for line in links)
    assert json.loads((root / "run" / "metrics.json").read_text())["samples"] == 4


def _functions(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_function_is_longer_than_80_lines():
    long = [f"{p.relative_to(ROOT)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
            for p in sorted(PACKAGE.rglob("*.py")) for f in _functions(p)
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


RUN_FILES = ("config.json", "log.jsonl", "checkpoint.pt", "pred.json", "metrics.json",
             "metrics.md", "pck.png", "report.md", "contact_sheet.png", "predictions", "meshes",
             "overlay.mp4", "summary.json", "test_")


def test_the_run_folder_is_named_in_one_module():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    node.value == name or node.value.endswith("/" + name) for name in RUN_FILES):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not spelled, spelled


def test_benchmarks_use_the_library_not_the_command_line():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        assert "handdgp_models.cli" not in path.read_text(), path.name
