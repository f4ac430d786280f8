"""Named configurations: partial trees over the section defaults."""

from __future__ import annotations

import copy

__all__ = ["DEFAULT_CONFIG", "NAMED_CONFIGS"]

# The main job: a MobileNetV3-Small from scratch for 1700 steps on a CPU (2.4x the images/s of
# a ResNet-18 at this size, measured by benchmarks/bench_train_step.py). Hands within 90 degrees
# of a palm-to-camera view at 0.4-0.9 m, so the budget learns the relative mesh; the canonical
# focal makes the median hand about 80 px of the 128 px input (at 200 px it was 39 px and the
# network stayed at the mean hand). Perspective rectification with a zoom jitter and the
# reference-size rescale are the project's own options (labelled in docs/model.md).
_SMALL: dict = {
    "model": {"backbone": "mobilenet_v3_small", "input_size": 128,
              "mesh_channels": [64, 64, 48, 32, 16], "feature_channels": 64,
              "weight_hidden": 128, "weight_channels": 16, "kp_hidden": [128, 64],
              "focal": 400.0, "rescale": True},
    "input": {"mode": "perspective", "jitter": "zoom", "crop_first": False, "two_views": False},
    "data": {"train": [{"samples": 3200, "orientation_spread": 90.0, "depth": [0.4, 0.9]}],
             "test": {"samples": 200, "seed": 1000, "camera": "test",
                      "orientation_spread": 90.0, "depth": [0.4, 0.9]}},
    "train": {"batch_size": 16, "steps": 1700, "stage1_fraction": 0.5, "stage2_lr_factor": 0.3,
              "lr": 1e-3, "lr_decay_at": 0.85, "checkpoint_every": 50},
    "eval": {"batch_size": 32, "overlays": 6},
}

def _deep_merge(base: dict, update: dict) -> dict:
    """A named config over another: tables merge, values and lists replace."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        out[k] = (_deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict)
                  else copy.deepcopy(v))
    return out


# Smoke tests: the small config's shape at toy sizes, a few steps on a handful of samples.
_TINY: dict = _deep_merge(_SMALL, {
    "model": {"input_size": 64, "mesh_channels": [16, 16, 16, 16, 8], "feature_channels": 16,
              "weight_hidden": 16, "weight_channels": 4, "kp_hidden": [16, 16], "focal": 85.0},
    "data": {"train": [{"samples": 8, "orientation_spread": 90.0, "depth": [0.4, 0.9]}],
             "test": {"samples": 4, "seed": 1000, "camera": "test",
                      "orientation_spread": 90.0, "depth": [0.4, 0.9]}},
    "train": {"batch_size": 4, "steps": 4, "checkpoint_every": 2},
    "eval": {"batch_size": 4, "overlays": 2},
})

# The paper's settings (supplement): ResNet-50, 224 px, affine rectification to f_c, crop of
# 1.3 x the box, the crop jittered before rectification, two views sharing one rotation, DSConv
# decoder, supplement loss weights, two stages. ImageNet weights: --set model.backbone_weights.
_PAPER: dict = {
    "model": {"backbone": "resnet50", "input_size": 224, "decoder": "dsconv", "rescale": False},
    "input": {"mode": "affine", "jitter": "crop", "crop_first": True, "crop_scale": 1.3,
              "two_views": True},
}


def _real(dataset: str, focal: float) -> dict:
    return _deep_merge(_PAPER, {
        "model": {"focal": focal},
        "data": {"train": [{"dataset": dataset}],
                 "test": {"dataset": dataset, "samples": None, "seed": 0}}})


def _perspective(cfg: dict) -> dict:
    return _deep_merge(cfg, {"input": {"mode": "perspective"}})


# The body variant (supplement 7.2): SMPL instead of MANO, 29 keypoints, f_c = 400, the crop
# and its augmentation centred on the annotated body box; everything else as for hands.
_H36M: dict = _deep_merge(_real("h36m", 400.0), {"body": {}})

#: Named configs (partial trees over the defaults). ``*-perspective`` variants replace the
#: paper's affine map by the project's perspective (virtual-rotation) rectification.
NAMED_CONFIGS: dict[str, dict] = {
    "paper": _PAPER,
    "freihand": _real("freihand", 1000.0),
    "ho3d": _real("ho3d", 500.0),
    "h36m": _H36M,
    "small": _SMALL,
    "tiny": _TINY,
}
NAMED_CONFIGS.update({f"{k}-perspective": _perspective(NAMED_CONFIGS[k])
                      for k in ("paper", "freihand", "ho3d", "h36m")})

#: The named config of a command that is given none: the main job's.
DEFAULT_CONFIG = "small"
