"""HandDGP network: ResNet backbone, 2D keypoint head, spiral mesh decoder, weight decoder, DGP."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .mesh_hierarchy import MeshHierarchy

__all__ = ["METHODS", "HandDGP", "NetworkConfig", "SpiralConv", "sample_features"]

METHODS = ("dgp", "dgp_uniform", "two_stage", "root_regression")
_BACKBONES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
UNIT = 0.2  # decoder output unit in metres


@dataclass
class NetworkConfig:
    """Network size and method.

    Attributes:
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"`` (torchvision, no download).
        backbone_weights: optional path to a torchvision state dict for the backbone.
        input_size: input side ``S`` in pixels (224 in the paper).
        mesh_channels: decoder feature channels at the 5 levels, coarse to fine.
        feature_channels: channels of the features sampled at the keypoints (256).
        weight_hidden: hidden channels of the weight decoder's first conv (1024).
        weight_channels: channels sampled per keypoint by the weight decoder (97).
        kp_hidden: hidden sizes of the per-keypoint 2D MLP (224, 112).
        method: one of :data:`METHODS`.
        focal: canonical focal length of the input (root regression uses it as depth scale).
        rescale: scale the predicted root-relative mesh so that its mean root-to-keypoint
            distance equals the template's before DGP (the supplement's reference-bone
            rescaling, with all non-root keypoints as the reference for robustness). Depth from
            DGP is proportional to this scale, so it keeps an early, shrunken mesh from
            putting the hand far too close.
    """

    backbone: str = "resnet50"
    backbone_weights: str | None = None
    input_size: int = 224
    mesh_channels: list[int] = field(default_factory=lambda: [256, 256, 128, 64, 32])
    feature_channels: int = 256
    weight_hidden: int = 1024
    weight_channels: int = 97
    kp_hidden: list[int] = field(default_factory=lambda: [224, 112])
    method: str = "dgp"
    focal: float = 1000.0
    rescale: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in _BACKBONES:
            raise ValueError(f"backbone: expected one of {list(_BACKBONES)}, got {self.backbone!r}")
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size: expected a multiple of 32 >= 32, got {self.input_size}")
        if len(self.mesh_channels) != 5:
            raise ValueError(f"mesh_channels: expected 5 values, got {self.mesh_channels}")

    def to_dict(self) -> dict:
        return asdict(self)


def sample_features(features: torch.Tensor, points: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinearly sample ``features`` (B, C, h, w) at input-pixel ``points`` (B, N, 2).

    Pixel ``u`` of an ``size``-wide input lies at feature column ``(u + 0.5) w / size - 0.5``
    (pixel centres at integers). Returns (B, N, C); outside points read the border.
    """
    h, w = features.shape[-2:]
    fu = (points[..., 0] + 0.5) * w / size - 0.5
    fv = (points[..., 1] + 0.5) * h / size - 0.5
    grid = torch.stack([2 * fu / max(w - 1, 1) - 1, 2 * fv / max(h - 1, 1) - 1], -1)
    out = F.grid_sample(features, grid[:, :, None], mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[..., 0].transpose(1, 2)


class SpiralConv(nn.Module):
    """Spiral convolution: gather each vertex's spiral (V, L) and apply one linear layer."""

    def __init__(self, in_ch: int, out_ch: int, spiral: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("spiral", spiral.long(), persistent=False)
        self.linear = nn.Linear(in_ch * spiral.shape[1], out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, V, C) -> (B, V, out)
        b, v, c = x.shape
        g = x[:, self.spiral.reshape(-1)].reshape(b, v, -1)
        return self.linear(g)


class _KeypointHead(nn.Module):
    def __init__(self, in_ch: int, hw: int, hidden: list[int], num_keypoints: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, num_keypoints, 1)
        layers: list[nn.Module] = []
        prev = hw
        for h in hidden:
            layers += [nn.Linear(prev, h, bias=False), nn.Hardtanh(0.0, 4.0)]
            prev = h
        layers.append(nn.Linear(prev, 2, bias=False))
        self.mlp = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:  # -> (B, K, 2) in [0, 1]-ish
        maps = self.conv(feat).flatten(2)
        # centred at init: keypoints start inside the crop, so the sampled features vary
        return 0.5 + self.mlp(maps)


class _MeshDecoder(nn.Module):
    def __init__(self, in_ch: int, cfg: NetworkConfig, hier: MeshHierarchy,
                 num_keypoints: int) -> None:
        super().__init__()
        c = cfg.feature_channels
        self.reduce = nn.Sequential(nn.Conv2d(in_ch, c, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(c, c, 1))
        sizes = hier.sizes  # fine -> coarse
        ch = cfg.mesh_channels  # coarse -> fine
        k = num_keypoints
        self.lift = nn.Parameter(torch.randn(sizes[-1], k) / k ** 0.5 + 1.0 / k)
        self.inp = nn.Linear(c, ch[0])
        for i, u in enumerate(hier.up):
            self.register_buffer(f"up{i}", u, persistent=False)
        levels = len(sizes) - 1
        self.convs = nn.ModuleList(
            SpiralConv(ch[k], ch[k + 1] if k + 1 < len(ch) else ch[k], hier.spirals[levels - 1 - k])
            for k in range(levels))
        self.out = SpiralConv(ch[-1], 3, hier.spirals[0])
        self.levels = levels

    def forward(self, feat: torch.Tensor, kp2d: torch.Tensor, size: int) -> torch.Tensor:
        f = sample_features(self.reduce(feat), kp2d, size)  # (B, K, C)
        x = self.inp(self.lift @ f)
        for k, conv in enumerate(self.convs):
            up = getattr(self, f"up{self.levels - 1 - k}")
            x = F.relu(conv(up @ x))
        return self.out(x)  # (B, V, 3) in units of UNIT


class _WeightDecoder(nn.Module):
    def __init__(self, in_ch: int, cfg: NetworkConfig, num_keypoints: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_ch, cfg.weight_hidden, 1, bias=False),
                                  nn.BatchNorm2d(cfg.weight_hidden), nn.LeakyReLU(0.01, True),
                                  nn.Conv2d(cfg.weight_hidden, cfg.weight_channels, 1))
        k = num_keypoints
        self.mlp = nn.Sequential(nn.Linear(k * cfg.weight_channels, 512), nn.LeakyReLU(0.01, True),
                                 nn.Linear(512, 256), nn.LeakyReLU(0.01, True), nn.Linear(256, k))

    def forward(self, feat: torch.Tensor, kp2d: torch.Tensor, size: int) -> torch.Tensor:
        s = sample_features(self.conv(feat), kp2d, size).flatten(1)
        return torch.sigmoid(self.mlp(s))


class HandDGP(nn.Module):
    """Camera-space mesh of a template model (a hand, a body) from a rectified crop and its
    intrinsics.

    Args:
        config: :class:`NetworkConfig`.
        hierarchy: mesh hierarchy of the template (:func:`load_hierarchy`).
        keypoint_regressor: (K, V) vertices → keypoints (the hand: 21 in OpenPose order; the
            body: 29); K sizes the keypoint head, the weight decoder and DGP.
        faces: (F, 3) template triangles (kept for losses and drawing).
        root_index: the root keypoint (hand: the wrist; body: the pelvis).

    ``forward(image (B,3,S,S) in [0,1], K (B,3,3) input intrinsics, R (B,3,3) or None)``
    returns a dict: ``kp2d`` (B,K,2) input pixels; ``verts_rel``/``joints_rel`` (B,V,3)/(B,K,3)
    metres about the root keypoint; ``weights`` (B,K) in (0,1); ``t`` (B,3) root in the input
    camera; ``valid`` (B,) bool (False for a degenerate DGP system); ``verts_cam``/``joints_cam``
    in the input camera; and with ``R`` given, ``verts_orig``/``joints_orig`` = Rᵀ(·) in the
    original camera.
    """

    def __init__(self, config: NetworkConfig, hierarchy: MeshHierarchy,
                 keypoint_regressor: torch.Tensor, faces: torch.Tensor,
                 root_index: int = 0) -> None:
        super().__init__()
        self.config = config
        num_keypoints = int(keypoint_regressor.shape[0])
        if not 0 <= root_index < num_keypoints:
            raise ValueError(f"root_index: expected a keypoint in [0, {num_keypoints}), "
                             f"got {root_index}")
        self.root_index = int(root_index)
        net = getattr(torchvision.models, config.backbone)(weights=None)
        if config.backbone_weights:
            net.load_state_dict(torch.load(config.backbone_weights, weights_only=True))
        self.backbone = nn.Sequential(*list(net.children())[:-2])
        ch = _BACKBONES[config.backbone]
        hw = (config.input_size // 32) ** 2
        self.keypoints = _KeypointHead(ch, hw, config.kp_hidden, num_keypoints)
        self.mesh = _MeshDecoder(ch, config, hierarchy, num_keypoints)
        self.weight_head = _WeightDecoder(ch, config, num_keypoints)
        if config.method == "root_regression":
            self.root_head = nn.Sequential(nn.Linear(ch, 256), nn.ReLU(True), nn.Linear(256, 3))
        self.register_buffer("regressor", keypoint_regressor.float().clone(), persistent=False)
        self.register_buffer("faces", faces.long().clone(), persistent=False)
        tj = keypoint_regressor.float() @ torch.from_numpy(hierarchy.vertices[0]).float()
        self.ref_spread = float(self._spread(tj[None] - tj[None, root_index:root_index + 1]))
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def _check(self, image: torch.Tensor, K: torch.Tensor) -> None:
        s = self.config.input_size
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1:] != (3, s, s):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image: expected (B, 3, {s}, {s}), got {shape}")
        if not isinstance(K, torch.Tensor) or K.shape != (image.shape[0], 3, 3):
            raise ValueError(f"K: expected ({image.shape[0]}, 3, 3)")

    def _spread(self, rel: torch.Tensor) -> torch.Tensor:
        """Mean distance (B,) of the keypoints other than the root from it."""
        others = [k for k in range(rel.shape[1]) if k != self.root_index]
        return rel[:, others].norm(dim=-1).mean(1)

    def _root_regression(self, feat: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        a = self.root_head(feat.mean((2, 3)))
        s = self.config.input_size
        z = torch.exp(a[:, 2].clamp(-5, 5)) * K[:, 0, 0] / self.config.focal * 0.5
        uv1 = torch.stack([(0.5 + a[:, 0]) * s, (0.5 + a[:, 1]) * s, torch.ones_like(z)], -1)
        ray = torch.linalg.solve(K, uv1[..., None])[..., 0]
        return ray * z[:, None]

    def forward(self, image: torch.Tensor, K: torch.Tensor,
                R: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        from dgp_ops import solve_translation

        self._check(image, K)
        s = self.config.input_size
        feat = self.backbone((image - self.mean) / self.std)
        kp2d = self.keypoints(feat) * s
        verts = self.mesh(feat, kp2d, s) * UNIT
        joints = self.regressor @ verts
        root = joints[:, self.root_index:self.root_index + 1]
        verts_rel, joints_rel = verts - root, joints - root
        if self.config.rescale:
            spread = self._spread(joints_rel).clamp(min=1e-4)
            scale = (self.ref_spread / spread)[:, None, None]
            verts_rel, joints_rel = verts_rel * scale, joints_rel * scale
        method = self.config.method
        if method == "dgp":
            weights = self.weight_head(feat, kp2d, s)
        else:
            weights = torch.ones_like(kp2d[..., 0])
        if method == "root_regression":
            t = self._root_regression(feat, K)
            valid = torch.isfinite(t).all(1)
        else:
            t, valid = solve_translation(joints_rel, kp2d, K.to(joints_rel.dtype), weights ** 2,
                                         return_valid=True)
        out = {"kp2d": kp2d, "verts_rel": verts_rel, "joints_rel": joints_rel,
               "weights": weights, "t": t, "valid": valid,
               "verts_cam": verts_rel + t[:, None], "joints_cam": joints_rel + t[:, None]}
        if R is not None:
            out["verts_orig"] = out["verts_cam"] @ R
            out["joints_orig"] = out["joints_cam"] @ R
        return out
