"""An independent forward pass of the official HandDGP release, written from its layer list,
and writers of files in the release's and MobRecon's formats (random weights, small meshes).

The module names follow the release's, so ``ReleaseHandDGP().state_dict()`` is in the
release's checkpoint layout. Nothing here imports the project's network: the layers are built
from ``torch.nn`` and the forward pass is spelled out (dense up-sampling matrices, depth-wise
spiral convolutions as 3×3 kernels, the DGP solve with ``torch.linalg.lstsq`` over the
row-weighted system).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torchvision
from torch import nn

K_JOINTS = 21
LATENT = 256
CHANNELS = (32, 64, 128, 256)  # the release's spiral_out_channels, fine to coarse
HAND_SCALE = 0.2
#: MobRecon's j_reg.npy rows in the release's (OpenPose) order.
MANO_ROW_OF_OPENPOSE = (0, 13, 14, 15, 20, 1, 2, 3, 16, 4, 5, 6, 17, 10, 11, 12, 19, 7, 8, 9,
                        18)


class _Trunk(nn.Module):
    """ResNet-50 up to the stride-32 features, with the release's (timm's) module names."""

    def __init__(self) -> None:
        super().__init__()
        r = torchvision.models.resnet50(weights=None)
        self.conv1, self.bn1, self.act1, self.maxpool = r.conv1, r.bn1, r.relu, r.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class _SpiralDS(nn.Module):
    """MobRecon's DSConv: gather the 9-long spirals, a depth-wise 3×3 conv over them, a
    linear channel map (no biases)."""

    def __init__(self, cin: int, cout: int, spirals: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("spirals", spirals.long(), persistent=False)
        self.spatial_layer = nn.Conv2d(cin, cin, 3, groups=cin, bias=False)
        self.channel_layer = nn.Linear(cin, cout, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], self.spirals.shape[0]
        g = x[:, self.spirals.reshape(-1)].reshape(b * n, 9, -1).transpose(1, 2)
        g = self.spatial_layer(g.reshape(b * n, -1, 3, 3)).reshape(b, n, -1)
        return self.channel_layer(g)


class _UpConv(nn.Module):
    def __init__(self, cin: int, cout: int, spirals: torch.Tensor) -> None:
        super().__init__()
        self.conv = _SpiralDS(cin, cout, spirals)


class _Decoder3D(nn.Module):
    def __init__(self, spirals: list[torch.Tensor], up: list[torch.Tensor]) -> None:
        super().__init__()
        self.preprocess_layer = nn.Sequential(nn.Conv2d(LATENT, CHANNELS[-1], 1, bias=False))
        # coarse to fine: 256->256 (98 vertices), 256->128, 128->64, 64->32 (778)
        ins = (CHANNELS[-1], CHANNELS[-1], CHANNELS[-2], CHANNELS[-3])
        outs = (CHANNELS[-1], CHANNELS[-2], CHANNELS[-3], CHANNELS[-4])
        self.spiral_layers = nn.ModuleList(_UpConv(i, o, spirals[3 - k])
                                           for k, (i, o) in enumerate(zip(ins, outs, strict=True)))
        self.final_layer = _SpiralDS(CHANNELS[0], 3, spirals[0])
        self.upsample_matrix = nn.Parameter(torch.randn(up[-1].shape[1], K_JOINTS) * 0.1)
        self.up_transform = nn.ParameterList(nn.Parameter(u.float(), requires_grad=False)
                                             for u in up)


def _mlp_block(cin: int, cout: int, act: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(cin, cout, bias=False)]
    return nn.Sequential(*layers, nn.Hardtanh(0, 4)) if act else nn.Sequential(*layers)


class ReleaseHandDGP(nn.Module):
    """The release's network (ResNet-50, 224 px input) on a MobRecon-format hierarchy.

    Args:
        spirals: per level 0..3, (V_l, 9) spiral ids (MobRecon's order).
        up: per level 0..3, the dense (V_l, V_{l+1}) up-sampling matrices.
        j_reg: (21, 778) regressor in OpenPose order.
    """

    def __init__(self, spirals: list[torch.Tensor], up: list[torch.Tensor],
                 j_reg: torch.Tensor) -> None:
        super().__init__()
        self.backbone = _Trunk()
        self.decoder3d_latent = nn.Sequential(nn.Conv2d(2048, LATENT, 1), nn.ReLU())
        self.decoder2d_latent = nn.Conv2d(2048, K_JOINTS, 1)
        self.decoder2d = nn.Sequential(_mlp_block(49, 224, True), _mlp_block(224, 112, True),
                                       _mlp_block(112, 2, False))
        self.decoder3d = _Decoder3D(spirals, up)
        self.decoderw_latent = nn.Sequential(nn.Conv2d(2048, 1024, 1), nn.BatchNorm2d(1024),
                                             nn.LeakyReLU(), nn.Conv2d(1024, 97, 1))
        self.decoderw = nn.Sequential(nn.Linear(97 * K_JOINTS, 512), nn.LeakyReLU(),
                                      nn.Linear(512, 256), nn.LeakyReLU(),
                                      nn.Linear(256, K_JOINTS))
        self.j_reg = nn.Parameter(j_reg.float()[None], requires_grad=False)

    @staticmethod
    def _sample(feat: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        grid = torch.clamp((uv - 0.5) * 2, -1.0, 1.0)[:, :, None]
        return nn.functional.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros",
                                         align_corners=True)[..., 0]  # (B, C, K)

    def _mesh(self, latent: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        d = self.decoder3d
        x = self._sample(d.preprocess_layer(latent), uv).transpose(1, 2)  # (B, K, C)
        x = d.upsample_matrix @ x
        for i, layer in enumerate(d.spiral_layers):
            x = torch.relu(layer.conv(d.up_transform[len(d.spiral_layers) - 1 - i] @ x))
        return d.final_layer(x)

    @staticmethod
    def dgp(k3d: torch.Tensor, k2d: torch.Tensor, w: torch.Tensor, K: torch.Tensor):
        """Rows ``[-1, 0, u']·t = x - z u'``, ``[0, -1, v']·t = y - z v'``, each multiplied by
        the keypoint's weight, solved by least squares."""
        uv1 = torch.cat([k2d, torch.ones_like(k2d[..., :1])], -1)
        n = (torch.linalg.inv(K) @ uv1.transpose(1, 2)).transpose(1, 2)
        b, k = k2d.shape[:2]
        A = torch.zeros(b, 2 * k, 3, dtype=k3d.dtype)
        A[:, 0::2, 0] = -1
        A[:, 1::2, 1] = -1
        A[:, 0::2, 2], A[:, 1::2, 2] = n[..., 0], n[..., 1]
        rhs = torch.stack([k3d[..., 0] - k3d[..., 2] * n[..., 0],
                           k3d[..., 1] - k3d[..., 2] * n[..., 1]], -1).reshape(b, 2 * k, 1)
        ww = w.repeat_interleave(2, dim=1)[..., None]
        return torch.linalg.lstsq(ww * A, ww * rhs).solution[..., 0]

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict:
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=image.dtype).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=image.dtype).view(1, 3, 1, 1)
        feat = self.backbone((image - mean) / std)
        b, size = image.shape[0], image.shape[-1]
        uv = self.decoder2d(self.decoder2d_latent(feat).reshape(b, K_JOINTS, -1))
        verts = self._mesh(self.decoder3d_latent(feat), uv)
        k3d = self.j_reg @ (verts * HAND_SCALE)
        w = torch.sigmoid(self.decoderw(self._sample(self.decoderw_latent(feat), uv)
                                        .reshape(b, -1)))
        t = self.dgp(k3d, uv * size, w, K)
        verts_cs = verts * HAND_SCALE + t[:, None]
        return {"uv": uv, "weights": w, "t": t, "verts_cs": verts_cs,
                "joints_cs": self.j_reg @ verts_cs}


def randomise(net: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and the spiral kernels random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.num_batches_tracked.fill_(1000)


def write_release_checkpoint(path: Path, net: ReleaseHandDGP, **extra) -> dict:
    """``net``'s weights in the release's Lightning layout (``model.`` prefix); returns the
    state dict as written. ``extra`` entries are added to the top-level dict."""
    state = {f"model.{k}": v.clone() for k, v in net.state_dict().items()}
    torch.save({"epoch": 37, "global_step": 155000, "pytorch-lightning_version": "1.9.0",
                "state_dict": state, "hyper_parameters": {"batch_size": 32, "lr": 1e-3},
                **extra}, path)
    return state


def write_mobrecon_template(folder: Path, vertices: list[np.ndarray], faces: list[np.ndarray],
                            up_rows: list[tuple[np.ndarray, np.ndarray]],
                            regressor_openpose: np.ndarray) -> None:
    """``transform.pkl`` and ``j_reg.npy`` in MobRecon's format.

    Args:
        vertices, faces: per level, fine to coarse.
        up_rows: per level below the coarsest, ``(index, weight)`` each (V_l, 3): the stored
            entries of each up-sampling row (zeros are stored explicitly).
        regressor_openpose: (21, V_0), written in MANO's joint order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    up, down, adj = [], [], []
    for level, (index, weight) in enumerate(up_rows):
        n_fine, n_coarse = len(vertices[level]), len(vertices[level + 1])
        indptr = np.arange(0, 3 * n_fine + 1, 3)
        csr = sp.csr_matrix((weight.astype(np.float32).ravel(), index.ravel(), indptr),
                            shape=(n_fine, n_coarse))
        up.append(csr.tocsc())
        down.append(sp.csc_matrix((np.ones(n_coarse, np.float32),
                                   (np.arange(n_coarse), np.arange(n_coarse))),
                                  shape=(n_coarse, n_fine)))
    for v, f in zip(vertices, faces, strict=True):
        rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
        cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
        a = sp.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(v),) * 2)
        adj.append(((a + a.T) > 0).astype(np.float32).tocsc())
    data = {"vertices": [np.asarray(v, np.float64) for v in vertices],
            "face": [np.asarray(f, np.uint32) for f in faces], "adj": adj,
            "down_transform": down, "up_transform": up}
    with open(folder / "transform.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=3)
    mano = np.zeros_like(regressor_openpose)
    mano[list(MANO_ROW_OF_OPENPOSE)] = regressor_openpose
    np.save(folder / "j_reg.npy", mano)
