"""HandDGP network: ResNet backbone, 2D keypoint head, spiral mesh decoder, weight decoder, DGP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..config import BACKBONES, DECODERS, METHODS, NetworkConfig
from .mesh_hierarchy import MeshHierarchy

__all__ = ["BACKBONES", "DECODERS", "METHODS", "DSConv", "HandDGP", "NetworkConfig", "SpiralConv",
           "backbone_channels", "sample_features", "spiral_layer_parameters", "upsample"]

# Layout of each backbone (:data:`~handdgp_models.config.BACKBONES`): output channels at
# stride 32, and how many leading children of the torchvision model form the trunk (the rest
# is global pooling and the classifier).
_BACKBONE_LAYOUT = {"resnet18": (512, -2), "resnet34": (512, -2), "resnet50": (2048, -2),
                    "mobilenet_v3_small": (576, 1), "mobilenet_v3_large": (960, 1),
                    "shufflenet_v2_x1_0": (1024, -1), "shufflenet_v2_x1_5": (1024, -1),
                    "regnet_x_400mf": (400, 2)}


def backbone_channels(name: str) -> int:
    """Feature channels of backbone ``name`` (one of :data:`BACKBONES`) at stride 32."""
    if name not in _BACKBONE_LAYOUT:
        raise ValueError(f"backbone: expected one of {list(BACKBONES)}, got {name!r}")
    return _BACKBONE_LAYOUT[name][0]


_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
UNIT = 0.2  # decoder output unit in metres


def sample_features(features: torch.Tensor, points: torch.Tensor, size: int,
                    variant: str = "project") -> torch.Tensor:
    """Bilinearly sample ``features`` (B, C, h, w) at input-pixel ``points`` (B, N, 2).

    ``variant="project"``: pixel ``u`` of an ``size``-wide input lies at feature column
    ``(u + 0.5) w / size - 0.5`` (pixel centres at integers); outside points read the border.
    ``variant="release"``: the official release's grid ``clamp((u / size - 0.5) · 2, -1, 1)``
    with ``align_corners=True`` (half a feature cell off at the border), zero padding.
    Returns (B, N, C).
    """
    if variant == "release":
        grid = ((points / size - 0.5) * 2).clamp(-1.0, 1.0)
        padding = "zeros"
    else:
        h, w = features.shape[-2:]
        fu = (points[..., 0] + 0.5) * w / size - 0.5
        fv = (points[..., 1] + 0.5) * h / size - 0.5
        grid = torch.stack([2 * fu / max(w - 1, 1) - 1, 2 * fv / max(h - 1, 1) - 1], -1)
        padding = "border"
    out = F.grid_sample(features, grid[:, :, None], mode="bilinear", padding_mode=padding,
                        align_corners=True)
    return out[..., 0].transpose(1, 2)


def upsample(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Interpolate coarse vertex features onto a finer mesh: a gather and a weighted sum.

    Args:
        x: (B, V_c, C) coarse features.
        index: (V_f, k) int64 coarse vertex ids per fine vertex (k = 3: a triangle).
        weight: (V_f, k) interpolation weights (cast to ``x``'s dtype).

    Returns:
        (B, V_f, C): ``out[b, i] = sum_j weight[i, j] * x[b, index[i, j]]``.
    """
    b, _, c = x.shape
    gathered = x.index_select(1, index.reshape(-1)).view(b, *index.shape, c)
    return (gathered * weight.to(x.dtype)[..., None]).sum(2)


class SpiralConv(nn.Module):
    """Dense spiral convolution: one linear layer (with bias) over each vertex's whole spiral.

    ``out[b, v] = W · concat_l x[b, spiral[v, l]] + bias``, ``W`` of shape (C', L·C).

    Args:
        in_ch: C. out_ch: C'. spiral: (V, L) vertex ids, first entry the vertex.
    """

    def __init__(self, in_ch: int, out_ch: int, spiral: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("spiral", spiral.long(), persistent=False)
        self.linear = nn.Linear(in_ch * spiral.shape[1], out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, V, C) -> (B, V, C')
        b, v, _ = x.shape
        return self.linear(x.index_select(1, self.spiral.reshape(-1)).view(b, v, -1))


class DSConv(nn.Module):
    """Depth-wise separable spiral convolution (MobRecon's DSConv), no biases.

    A depth-wise step weights each channel over the L spiral positions,
    ``y[b, v, c] = sum_l D[c, l] · x[b, spiral[v, l], c]``, then a point-wise linear layer
    maps channels, ``out[b, v] = P · y[b, v]`` with ``P`` of shape (C', C). Parameters:
    ``L·C + C·C'`` against the dense layer's ``L·C·C' + C'``.

    Args:
        in_ch: C. out_ch: C'. spiral: (V, L) vertex ids, first entry the vertex.
    """

    def __init__(self, in_ch: int, out_ch: int, spiral: torch.Tensor) -> None:
        super().__init__()
        # (L, V): one contiguous index per spiral position, for the accumulation in forward
        self.register_buffer("positions", spiral.long().t().contiguous(), persistent=False)
        length = spiral.shape[1]
        # variance 1/L: the depth-wise sum keeps the activation scale, so a DSConv layer starts
        # with the same gain as the dense layer under PyTorch's default Linear initialisation
        self.depthwise = nn.Parameter(torch.empty(in_ch, length).uniform_(-1, 1)
                                      * (3.0 / length) ** 0.5)
        self.pointwise = nn.Linear(in_ch, out_ch, bias=False)

    @property
    def spiral(self) -> torch.Tensor:
        """(V, L) spiral vertex ids."""
        return self.positions.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, V, C) -> (B, V, C')
        # accumulated one spiral position at a time: never materialises the (B, V, L, C)
        # gather, and measured faster on the CPU than gather-then-reduce
        y = x.index_select(1, self.positions[0]) * self.depthwise[:, 0]
        for pos in range(1, self.positions.shape[0]):
            y = y + x.index_select(1, self.positions[pos]) * self.depthwise[:, pos]
        return self.pointwise(y)


_SPIRAL_LAYERS = {"dsconv": DSConv, "dense": SpiralConv}


def spiral_layer_parameters(decoder: str, in_ch: int, out_ch: int, length: int) -> int:
    """Parameter count of one spiral layer of kind ``decoder`` (see :data:`DECODERS`)."""
    if decoder == "dsconv":
        return length * in_ch + in_ch * out_ch
    if decoder == "dense":
        return length * in_ch * out_ch + out_ch
    raise ValueError(f"decoder: expected one of {DECODERS}, got {decoder!r}")


class _KeypointHead(nn.Module):
    def __init__(self, in_ch: int, hw: int, hidden: list[int], num_keypoints: int,
                 offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.conv = nn.Conv2d(in_ch, num_keypoints, 1)
        layers: list[nn.Module] = []
        prev = hw
        for h in hidden:
            layers += [nn.Linear(prev, h, bias=False), nn.Hardtanh(0.0, 4.0)]
            prev = h
        layers.append(nn.Linear(prev, 2, bias=False))
        self.mlp = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:  # -> (B, N, 2) in [0, 1]-ish
        maps = self.conv(feat).flatten(2)
        # offset 0.5 (this project): keypoints start inside the crop, so the sampled
        # features vary from the first step
        return self.offset + self.mlp(maps)


class _MeshDecoder(nn.Module):
    """Keypoint features -> root-relative mesh on the template's vertices.

    Features sampled at the N keypoints are lifted to the coarsest level by a learnable
    (V_coarsest, N) matrix, then each finer level is reached by up-sampling (gather +
    barycentric weights) and a spiral layer + ReLU; a last spiral layer gives 3 coordinates.
    Sizes come from the hierarchy and N from the keypoint regressor, not from the hand.
    """

    def __init__(self, in_ch: int, cfg: NetworkConfig, hier: MeshHierarchy,
                 num_keypoints: int) -> None:
        super().__init__()
        c = cfg.feature_channels
        self.variant = cfg.variant
        release = cfg.variant == "release"
        self.reduce = nn.Sequential(nn.Conv2d(in_ch, c, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(c, c, 1, bias=not release))
        sizes = hier.sizes  # fine -> coarse
        ch = cfg.mesh_channels  # coarse -> fine
        if len(ch) != len(sizes):
            raise ValueError(f"mesh_channels: expected {len(sizes)} values (one per hierarchy "
                             f"level), got {ch}")
        self.lift = nn.Parameter(torch.randn(sizes[-1], num_keypoints) / num_keypoints ** 0.5
                                 + 1.0 / num_keypoints)
        self.inp = nn.Identity() if release else nn.Linear(c, ch[0])
        self.levels = len(sizes) - 1
        for i in range(self.levels):
            self.register_buffer(f"up_index{i}", hier.up_index[i].long(), persistent=False)
            self.register_buffer(f"up_weight{i}", hier.up_weight[i].float(), persistent=False)
        layer = _SPIRAL_LAYERS[cfg.decoder]
        self.convs = nn.ModuleList(layer(ch[k], ch[k + 1], hier.spirals[self.levels - 1 - k])
                                   for k in range(self.levels))
        self.out = layer(ch[-1], 3, hier.spirals[0])

    def forward(self, feat: torch.Tensor, kp2d: torch.Tensor, size: int) -> torch.Tensor:
        return self.decode(sample_features(self.reduce(feat), kp2d, size, self.variant))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """(B, N, C) keypoint features -> (B, V, 3) vertices in units of :data:`UNIT`."""
        x = self.inp(self.lift @ f)
        for k, conv in enumerate(self.convs):
            level = self.levels - 1 - k
            x = upsample(x, getattr(self, f"up_index{level}"), getattr(self, f"up_weight{level}"))
            x = F.relu(conv(x))
        return self.out(x)


class _WeightDecoder(nn.Module):
    def __init__(self, in_ch: int, cfg: NetworkConfig, num_keypoints: int) -> None:
        super().__init__()
        n = num_keypoints
        self.variant = cfg.variant
        # the release's first conv has a bias (in front of the BatchNorm, it changes nothing
        # in training and is equivalent to a shifted running mean in evaluation)
        self.conv = nn.Sequential(nn.Conv2d(in_ch, cfg.weight_hidden, 1,
                                            bias=cfg.variant == "release"),
                                  nn.BatchNorm2d(cfg.weight_hidden), nn.LeakyReLU(0.01, True),
                                  nn.Conv2d(cfg.weight_hidden, cfg.weight_channels, 1))
        self.mlp = nn.Sequential(nn.Linear(n * cfg.weight_channels, 512), nn.LeakyReLU(0.01, True),
                                 nn.Linear(512, 256), nn.LeakyReLU(0.01, True), nn.Linear(256, n))

    def forward(self, feat: torch.Tensor, kp2d: torch.Tensor, size: int) -> torch.Tensor:
        s = sample_features(self.conv(feat), kp2d, size, self.variant)  # (B, K, C)
        if self.variant == "release":  # the release flattens channel-first: c·K + k
            s = s.transpose(1, 2)
        return torch.sigmoid(self.mlp(s.flatten(1)))


class HandDGP(nn.Module):
    """Camera-space mesh of a template model (a hand, a body) from a rectified crop and its
    intrinsics.

    Args:
        config: :class:`NetworkConfig`.
        hierarchy: mesh hierarchy of the template (:func:`load_hierarchy`).
        keypoint_regressor: (N, V) vertices → keypoints (the hand: 21 in OpenPose order; the
            body: 29); every head and DGP take N from here, V is the template's vertex count.
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
        if keypoint_regressor.ndim != 2 or keypoint_regressor.shape[1] != hierarchy.sizes[0]:
            raise ValueError(f"keypoint_regressor: expected (N, {hierarchy.sizes[0]}), got "
                             f"{tuple(keypoint_regressor.shape)}")
        num_keypoints = int(keypoint_regressor.shape[0])
        if not 0 <= root_index < num_keypoints:
            raise ValueError(f"root_index: expected a keypoint in [0, {num_keypoints}), "
                             f"got {root_index}")
        self.root_index = int(root_index)
        net = getattr(torchvision.models, config.backbone)(weights=None)
        if config.backbone_weights:
            net.load_state_dict(torch.load(config.backbone_weights, weights_only=True))
        ch, trunk = _BACKBONE_LAYOUT[config.backbone]
        self.backbone = nn.Sequential(*list(net.children())[:trunk])
        hw = (config.input_size // 32) ** 2
        offset = 0.0 if config.variant == "release" else 0.5
        self.keypoints = _KeypointHead(ch, hw, config.kp_hidden, num_keypoints, offset)
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

    def _root_regression(self, head: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """The root from the root head's output (B, 3): a pixel offset and a log depth."""
        a = head
        s = self.config.input_size
        z = torch.exp(a[:, 2].clamp(-5, 5)) * K[:, 0, 0] / self.config.focal * 0.5
        uv1 = torch.stack([(0.5 + a[:, 0]) * s, (0.5 + a[:, 1]) * s, torch.ones_like(z)], -1)
        ray = torch.linalg.solve(K, uv1[..., None])[..., 0]
        return ray * z[:, None]

    def forward(self, image: torch.Tensor, K: torch.Tensor,
                R: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self._check(image, K)
        s = self.config.input_size
        feat = self.backbone((image - self.mean) / self.std)
        kp2d = self.keypoints(feat) * s
        verts = self.mesh(feat, kp2d, s) * UNIT
        method = self.config.method
        weights = self.weight_head(feat, kp2d, s) if method == "dgp" else None
        head = self.root_head(feat.mean((2, 3))) if method == "root_regression" else None
        # Under mixed precision the heads run in half precision; the geometry (mesh about its
        # root, DGP, camera-space outputs) always runs in full precision.
        with torch.autocast(image.device.type, enabled=False):
            kp2d, verts, weights, head = (_full(x) for x in (kp2d, verts, weights, head))
            return self._place(kp2d, verts, weights, head, K, R)

    def _place(self, kp2d: torch.Tensor, verts: torch.Tensor, weights: torch.Tensor | None,
               head: torch.Tensor | None, K: torch.Tensor,
               R: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Root-relative mesh and keypoints, the root translation, camera-space outputs."""
        from dgp_ops import solve_translation

        joints = self.regressor @ verts
        root = joints[:, self.root_index:self.root_index + 1]
        verts_rel, joints_rel = verts - root, joints - root
        if self.config.rescale:
            spread = self._spread(joints_rel).clamp(min=1e-4)
            scale = (self.ref_spread / spread)[:, None, None]
            verts_rel, joints_rel = verts_rel * scale, joints_rel * scale
        if weights is None:
            weights = torch.ones_like(kp2d[..., 0])
        if head is not None:
            t = self._root_regression(head, K.to(head.dtype))
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


def _full(x: torch.Tensor | None) -> torch.Tensor | None:
    """``x`` in float32 if it is a half-precision tensor (mixed-precision heads), else as is."""
    if x is not None and x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x
