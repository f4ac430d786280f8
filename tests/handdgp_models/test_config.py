"""Run config: strict at every depth, typed values, named configs, checkpoint round trip."""

import dataclasses
import io
import json

import numpy as np
import pytest
import torch

from handdgp_models.config import (
    NAMED_CONFIGS,
    RunConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    to_dict,
)
from handdgp_models.data.mix import MixedDataset


def _leaf_keys(tree, prefix=""):
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            yield from _leaf_keys(v, key)
        else:
            yield key


@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
def test_named_configs_load_and_round_trip(name):
    cfg = load_config(name)
    plain = to_dict(cfg)
    buf = io.BytesIO()
    torch.save({"config": plain}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)["config"]
    assert config_from_dict(back) == cfg
    assert json.loads(json.dumps(plain)) == plain


def test_paper_settings_of_the_real_data_configs():
    for name, focal in (("freihand", 1000.0), ("ho3d", 500.0)):
        cfg = load_config(name)
        assert cfg.model.focal == focal and cfg.model.backbone == "resnet50"
        assert cfg.model.input_size == 224 and cfg.model.rescale is False
        assert cfg.input.mode == "affine" and cfg.input.jitter == "crop"
        assert cfg.input.crop_first and cfg.input.crop_scale == 1.3 and cfg.input.two_views
        assert cfg.data.train[0].dataset == name and cfg.data.test.dataset == name
        assert cfg.data.test.samples is None  # the whole evaluation split
        assert load_config(f"{name}-perspective").input.mode == "perspective"


def test_every_leaf_is_settable_and_unknown_keys_fail_everywhere(tmp_path):
    cfg = load_config("small")
    keys = list(_leaf_keys(to_dict(cfg)))
    assert "input.photometric.hue" in keys and "train.steps" in keys
    for key in keys:
        with pytest.raises(ValueError, match=f"{key}x"):
            apply_overrides(cfg, [f"{key}x=1"])
    files = {"": {"bogus": 1}, "model.": {"model": {"bogus": 1}},
             "input.photometric.": {"input": {"photometric": {"bogus": 1}}},
             "data.train.0.": {"data": {"train": [{"bogus": 1}]}},
             "data.test.": {"data": {"test": {"bogus": 1}}}}
    for where, tree in files.items():
        with pytest.raises(ValueError, match="unknown key"):
            apply_overrides(cfg, [f"{where}bogus=1"])
        path = tmp_path / "c.json"
        path.write_text(json.dumps(tree))
        with pytest.raises(ValueError, match=rf"{where}bogus.*c\.json"):
            load_config(path)


def test_values_are_typed():
    cfg = load_config("tiny")
    for bad in ('train.steps="many"', "train.steps=1.5", "model.rescale=1",
                'model.mesh_channels=["a"]', "train.lr=true", "data.train=3"):
        with pytest.raises(ValueError, match=bad.split("=")[0]):
            apply_overrides(cfg, [bad])
    # component checks report the full key
    with pytest.raises(ValueError, match="model.backbone"):
        apply_overrides(cfg, ['model.backbone="vgg"'])
    with pytest.raises(ValueError, match="data.test.dataset"):
        apply_overrides(cfg, ['data.test.dataset="coco"'])
    ok = apply_overrides(cfg, ["train.lr=1", "input.photometric=null"])
    assert ok.train.lr == 1.0 and isinstance(ok.train.lr, float) and ok.input.photometric is None
    back = apply_overrides(ok, ["input.photometric.hue=0.1"])
    assert back.input.photometric.hue == 0.1


def test_each_default_is_declared_once():
    """The config tree is made of the components' own settings classes, with their defaults;
    the input pipeline's runtime parameters are its constructor arguments, not settings."""
    import inspect

    from handdgp_models.data import InputPipeline, PipelineConfig
    from handdgp_models.losses import LossWeights
    from handdgp_models.model import NetworkConfig

    cfg = RunConfig()
    assert type(cfg.model) is NetworkConfig and cfg.model == NetworkConfig()
    assert type(cfg.input) is PipelineConfig and cfg.loss == LossWeights()
    runtime = {"out_size", "focal", "train", "root_index"}
    assert runtime <= set(inspect.signature(InputPipeline).parameters)
    assert not runtime & {f.name for f in dataclasses.fields(PipelineConfig)}
    assert not runtime & set(to_dict(cfg)["input"])


def test_list_items_by_index_and_a_mix():
    cfg = load_config("tiny", ['data.train=[{"samples": 4}, {"samples": 2, "weight": 3}]',
                               "data.train.1.seed=9"])
    assert [s.samples for s in cfg.data.train] == [4, 2] and cfg.data.train[1].seed == 9
    assert cfg.data.train[1].camera == "train"  # the rest from the source defaults
    with pytest.raises(ValueError, match="data.train.2"):
        apply_overrides(cfg, ["data.train.2.seed=1"])


class _Src:
    def __init__(self, tag, n):
        self.tag, self.n = tag, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        assert 0 <= i < self.n
        return (self.tag, i)


def test_mixed_dataset_proportions_and_determinism():
    mix = MixedDataset([_Src("a", 30), _Src("b", 10)], [1.0, 3.0], seed=4)
    assert len(mix) == 40 and mix.counts == [10, 30]
    items = [mix[i] for i in range(len(mix))]
    a = [i for t, i in items if t == "a"]
    b = [i for t, i in items if t == "b"]
    assert len(a) == 10 and len(set(a)) == 10  # no repeats within its share
    assert len(b) == 30 and sorted(set(b)) == list(range(10))  # cycled: each item 3 times
    assert np.bincount(b).tolist() == [3] * 10
    again = MixedDataset([_Src("a", 30), _Src("b", 10)], [1.0, 3.0], seed=4)
    assert [again[i] for i in range(40)] == items
    mix.set_epoch(1)
    assert [mix[i] for i in range(40)] != items
    with pytest.raises(ValueError, match="weights"):
        MixedDataset([_Src("a", 3)], [0.0])
