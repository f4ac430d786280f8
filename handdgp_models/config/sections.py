"""The sections of a run configuration: one settings class per component, each default and
each allowed value declared once, here.

This module imports nothing heavier than the standard library, so that a configuration can be
loaded and checked (and a command line answer) before torch is imported. The components import
their settings class from here; the tables that implement a choice (a backbone's channels, a
camera domain's ranges, a dataset's fingertip ids) are keyed by the names declared below, and a
test checks that every declared name is implemented.

Every value check runs when a section is constructed, so a bad value fails at load, naming the
key (``config: model.focal: must be positive ... (from --set ...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BACKBONES", "BODY_DATASETS", "CAMERAS", "DATASETS", "DATASET_NAMES", "DECODERS",
           "DEVICES", "JITTERS", "MESH_SOURCES", "METHODS", "PADDING_MODES", "PRECISIONS",
           "RECTIFICATIONS", "TIP_ID_SETS", "VARIANTS",
           "BodyConfig", "DataConfig", "EvalConfig", "HandConfig", "LossWeights", "NetworkConfig",
           "PhotometricConfig", "PipelineConfig", "RunConfig", "SourceConfig", "TrainConfig"]

#: torchvision trunks the network can be built on (stride 32).
BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large",
             "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "regnet_x_400mf")
#: How the root translation is found: in-network DGP (learned or uniform weights), a DLT after
#: training only, or a regressed root.
METHODS = ("dgp", "dgp_uniform", "two_stage", "root_regression")
#: Spiral layer of the mesh decoder.
DECODERS = ("dsconv", "dense")
#: Network variant: this project's (the default) or the official release's layer details
#: (loads the released weights; see NetworkConfig).
VARIANTS = ("project", "release")
#: Where the mesh hierarchy and keypoint regressor come from: built from the template model,
#: or stored in the checkpoint (the official weights' MobRecon hierarchy).
MESH_SOURCES = ("template", "stored")
#: Input rectification: the paper's affine map, this project's perspective one, or none.
RECTIFICATIONS = ("perspective", "affine", "crop")
PADDING_MODES = ("zeros", "border", "reflection")
JITTERS = ("crop", "zoom")
#: Data sources (``h36m`` needs a ``body`` section, the others show hands).
DATASETS = ("synthetic", "freihand", "ho3d", "h36m")
#: Body datasets (they need a ``body`` section).
BODY_DATASETS = ("h36m",)
#: Synthetic camera domains.
CAMERAS = ("train", "test", "wide", "wide-radtan", "wide-fisheye")
#: Named fingertip vertex-id sets of the hand.
TIP_ID_SETS = ("freihand", "ho3d", "smplx")
DEVICES = ("auto", "cpu", "cuda")
#: Training arithmetic: full precision, or mixed precision with bfloat16 or float16 (autocast).
PRECISIONS = ("fp32", "bf16", "fp16")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {list(allowed)}, got {value!r}")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{name}: must be positive, got {value!r}")


def _in_unit_range(obj: object, name: str, high_open: bool = True) -> None:
    value = getattr(obj, name)
    if not (0 <= value < 1 if high_open else 0 <= value <= 1):
        raise ValueError(f"{name}: must be in [0, 1{')' if high_open else ']'}, got {value!r}")


@dataclass(frozen=True)
class NetworkConfig:
    """Network size and method.

    Attributes:
        backbone: a torchvision model name from :data:`BACKBONES` (``"resnet50"`` in the
            paper; the lighter ``mobilenet_v3_*``, ``shufflenet_v2_*`` and ``regnet_x_400mf``
            for CPU budgets), built without downloading weights.
        backbone_weights: optional path to a torchvision state dict for the backbone.
        input_size: input side ``S`` in pixels (224 in the paper).
        mesh_channels: decoder feature channels at the 5 levels, coarse to fine.
        feature_channels: channels of the features sampled at the keypoints (256).
        weight_hidden: hidden channels of the weight decoder's first conv (1024).
        weight_channels: channels sampled per keypoint by the weight decoder (97).
        kp_hidden: hidden sizes of the per-keypoint 2D MLP (224, 112).
        method: one of :data:`METHODS`.
        decoder: spiral layer of the mesh decoder, one of :data:`DECODERS`: ``"dsconv"``
            (the paper's depth-wise separable spiral conv) or ``"dense"`` (one linear layer
            over the whole spiral).
        focal: canonical focal length ``f_c`` of the input in pixels (HandDGP: 1000 FreiHAND,
            500 HO3D-v2, 400 Human3.6M); the input pipeline rectifies to it and root
            regression uses it as depth scale.
        rescale: scale the predicted root-relative mesh so that its mean root-to-keypoint
            distance equals the template's before DGP (the supplement's reference-bone
            rescaling, with all non-root keypoints as the reference for robustness). Depth from
            DGP is proportional to this scale, so it keeps an early, shrunken mesh from
            putting the hand far too close.
        variant: ``"project"`` (this project's network) or ``"release"`` (the official
            release's layer details, which its weights need): the 2D head has no +0.5 offset
            (``"project"`` starts the keypoints at the crop centre); features are sampled at
            ``clamp(2 u / S - 1)`` with ``align_corners=True`` (``"project"``: pixel centres
            exact, border padding); the mesh decoder has no input layer after the lifting
            matrix (so ``feature_channels`` must equal ``mesh_channels[0]``) and its second
            reduction conv no bias; the weight head's first conv has a bias, and its MLP reads
            the sampled features channel-first (index ``c·K + k``, ``"project"``: ``k·C + c``).
        mesh: ``"template"`` (the hierarchy is built from the template model and the
            keypoints regressed with the template's regressor) or ``"stored"`` (both are read
            from the checkpoint: the official weights' MobRecon hierarchy and regressor).
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
    decoder: str = "dsconv"
    focal: float = 1000.0
    rescale: bool = False
    variant: str = "project"
    mesh: str = "template"

    def __post_init__(self) -> None:
        _choice("backbone", self.backbone, BACKBONES)
        _choice("method", self.method, METHODS)
        _choice("decoder", self.decoder, DECODERS)
        _choice("variant", self.variant, VARIANTS)
        _choice("mesh", self.mesh, MESH_SOURCES)
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size: expected a multiple of 32 >= 32, got {self.input_size}")
        if len(self.mesh_channels) != 5 or min(self.mesh_channels) <= 0:
            raise ValueError(f"mesh_channels: expected 5 positive values, got "
                             f"{self.mesh_channels}")
        if not self.kp_hidden or min(self.kp_hidden) <= 0:
            raise ValueError(f"kp_hidden: expected positive sizes, got {self.kp_hidden}")
        _positive(self, "feature_channels", "weight_hidden", "weight_channels", "focal")
        if self.variant == "release" and self.feature_channels != self.mesh_channels[0]:
            raise ValueError(f"feature_channels: the release variant has no decoder input "
                             f"layer, so it must equal mesh_channels[0] "
                             f"({self.mesh_channels[0]}), got {self.feature_channels}")


@dataclass(frozen=True)
class PhotometricConfig:
    """Ranges of the per-view photometric augmentation.

    brightness, contrast, saturation: factors drawn uniformly in ``[1 - x, 1 + x]``.
    hue: shift drawn uniformly in ``[-hue, hue]`` (fraction of the colour wheel, ≤ 0.5).
    blur_prob: probability of a Gaussian blur with sigma uniform in ``blur_sigma`` (pixels).
    """

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.1, 1.5)

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            _in_unit_range(self, name)
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue: must be in [0, 0.5], got {self.hue!r}")
        _in_unit_range(self, "blur_prob", high_open=False)
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"blur_sigma: need 0 < low <= high, got {self.blur_sigma!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the input pipeline (:class:`~handdgp_models.data.InputPipeline`), the
    ``input`` section. The output size, the canonical focal, the role (training or evaluation)
    and the root keypoint are the pipeline's constructor arguments, taken from ``model`` and
    the template, not settings of this section.

    Attributes:
        mode: ``"affine"`` (the paper's scale + principal-point map ``K_c K⁻¹``),
            ``"perspective"`` (this project's virtual rotation onto the box centre) or
            ``"crop"`` (no rectification).
        crop_scale: the crop is a square of side ``crop_scale · box side`` (1.3 in the paper).
        crop_first: crop the image to that square before rectifying, so pixels outside it are
            black (the release's order: crop, then rectify).
        jitter: how the training shift/scale acts: ``"crop"`` moves and scales the crop box
            *before* rectification, so the network always sees the canonical intrinsics (the
            paper); ``"zoom"`` (this project's option) also zooms the rectified image about
            its principal point by the scale factor, so the output focal becomes
            ``f_c / factor`` (``K`` reports it exactly). In ``"crop"`` mode both behave alike.
        two_views: in training, return two augmented views of the sample plus their relation.
        shift: centre jitter, uniform in ``[-shift, shift] · side`` per axis.
        scale_jitter: box side factor uniform in ``[1 - x, 1 + x]``.
        rotation_deg: in-plane rotation uniform in ``[-r, r]`` degrees (shared by two views).
        photometric: colour jitter and blur ranges, or None for none.
        padding_mode: warp padding, ``"zeros"``, ``"border"`` or ``"reflection"``.
        undistort: a sample with lens distortion (``dist``, ``dist_model``) is sampled through
            its lens into the ideal canonical view (``dgp_ops.warp_perspective_distorted``);
            False ignores the coefficients (treats every camera as an ideal pinhole).
    """

    mode: str = "affine"
    crop_scale: float = 1.3
    crop_first: bool = True
    jitter: str = "crop"
    two_views: bool = False
    shift: float = 0.1
    scale_jitter: float = 0.2
    rotation_deg: float = 45.0
    photometric: PhotometricConfig | None = field(default_factory=PhotometricConfig)
    padding_mode: str = "zeros"
    undistort: bool = True

    def __post_init__(self) -> None:
        _positive(self, "crop_scale")
        _choice("mode", self.mode, RECTIFICATIONS)
        _choice("jitter", self.jitter, JITTERS)
        _choice("padding_mode", self.padding_mode, PADDING_MODES)
        _in_unit_range(self, "shift")
        _in_unit_range(self, "scale_jitter")
        if not 0 <= self.rotation_deg <= 180:
            raise ValueError(f"rotation_deg: must be in [0, 180], got {self.rotation_deg!r}")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (supplement defaults), the ``loss`` section."""

    verts: float = 1.0
    kp2d: float = 1.0
    normal: float = 0.05
    edge: float = 0.5
    consist2d: float = 1.0
    consist3d: float = 1.0
    transl: float = 1.0
    proj_verts: float = 1.0
    proj_joints: float = 0.5


@dataclass(frozen=True)
class SourceConfig:
    """One data source.

    Attributes:
        dataset: ``"synthetic"``, ``"freihand"``, ``"ho3d"`` or ``"h36m"``.
        weight: relative sampling weight of this source in a training mix.
        root: dataset directory (real datasets; ``--data-root`` sets it).
        split: the dataset's split; None picks the role's default (FreiHAND
            ``training``/``evaluation``, HO3D-v2 ``train``/``evaluation``, Human3.6M
            ``train``/``test``).
        versions: FreiHAND training image versions (``gs``, ``hom``, ``sample``, ``auto``).
        samples: synthetic: number of rendered images (required); real data: use only the
            first ``samples`` items (None: all).
        seed: synthetic: base seed of the rendered images.
        camera: synthetic camera domain (``"train"``, ``"test"``, or the wide-angle
            ``"wide"``, ``"wide-radtan"`` (barrel + tangential) and ``"wide-fisheye"``).
        occlusion_prob: synthetic: probability of random occluders over the hand.
        orientation_spread: synthetic: largest angle (degrees) from a palm-to-camera view.
        depth: synthetic: ``[min, max]`` depth of the hand in metres, or None for the
            camera domain's range.
    """

    dataset: str = "synthetic"
    weight: float = 1.0
    root: str | None = None
    split: str | None = None
    versions: list[str] = field(default_factory=lambda: ["gs", "hom", "sample", "auto"])
    samples: int | None = None
    seed: int = 0
    camera: str = "train"
    occlusion_prob: float = 0.3
    orientation_spread: float = 180.0
    depth: list[float] | None = None

    def __post_init__(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        _choice("camera", self.camera, CAMERAS)
        _positive(self, "weight")
        if self.samples is not None and self.samples < 0:
            raise ValueError(f"samples: must be >= 0, got {self.samples!r}")
        if self.depth is not None and (len(self.depth) != 2
                                       or not 0.0 < self.depth[0] <= self.depth[1]):
            raise ValueError(f"depth: expected [min, max] metres with 0 < min <= max, "
                             f"got {self.depth}")


def _default_train_sources() -> list[SourceConfig]:
    return [SourceConfig(samples=2000, seed=0, camera="train")]


def _default_test_source() -> SourceConfig:
    return SourceConfig(samples=300, seed=1000, camera="test")


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from.

    Attributes:
        train: training sources, mixed by their ``weight``.
        test: the evaluation source.
        num_workers: DataLoader worker processes.
    """

    train: list[SourceConfig] = field(default_factory=_default_train_sources)
    test: SourceConfig = field(default_factory=_default_test_source)
    num_workers: int = 0

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("train: needs at least one source")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")
        keyed = [(f"train.{k}", s) for k, s in enumerate(self.train)] + [("test", self.test)]
        for key, src in keyed:
            if src.dataset == "synthetic" and src.samples is None:
                raise ValueError(f"{key}.samples: a synthetic source needs a number of images")

    def sources(self, roles: tuple[str, ...] = ("train", "test")) -> list[tuple[str, SourceConfig]]:
        """``(config key, source)`` of the sources of ``roles`` (``"train"``, ``"test"``)."""
        out = [(f"data.train.{k}", s) for k, s in enumerate(self.train)] if "train" in roles \
            else []
        return out + ([("data.test", self.test)] if "test" in roles else [])


@dataclass(frozen=True)
class HandConfig:
    """The hand model.

    Attributes:
        mano: path of ``MANO_RIGHT.pkl`` (or the ``.npz`` layout); None for the embedded
            default hand. Real datasets need the real MANO mesh.
        tip_ids: fingertip vertex ids: ``"freihand"``, ``"ho3d"``, ``"smplx"``, or None for
            those of the first training source's dataset.
    """

    mano: str | None = None
    tip_ids: str | None = None

    def __post_init__(self) -> None:
        if self.tip_ids is not None:
            _choice("tip_ids", self.tip_ids, TIP_ID_SETS)


@dataclass(frozen=True)
class BodyConfig:
    """The body model of the full-body variant (a run with this section trains on bodies).

    Attributes:
        smpl: path of ``SMPL_NEUTRAL.pkl`` (or the ``.npz`` layout); None for the embedded
            default body (synthetic smoke runs only: Human3.6M needs the real SMPL mesh).
        h36m_regressor: path of ``J_regressor_h36m_correct.npy`` (Human3.6M's 17 joints from
            SMPL's vertices); with it, evaluation also scores the 17 H36M joints.
    """

    smpl: str | None = None
    h36m_regressor: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and checkpointing.

    Attributes:
        seed: seeds the initialisation, the data order and every augmentation draw.
        batch_size: images per step and process.
        steps: optimiser steps in total.
        stage1_fraction: share of the steps with relative-space losses only.
        stage2_lr_factor: learning-rate factor of stage 2 (all losses, end to end).
        consistency_stage: with two views, the stage from which the consistency terms count:
            1 (from the first step, the paper's) or 2 (only end to end, once the per-view terms
            have shaped the features).
        lr: Adam learning rate; weight_decay: Adam weight decay.
        lr_decay_at: fraction of the steps after which the rate drops tenfold.
        grad_clip: gradient-norm clip.
        checkpoint_every: steps between checkpoints (also every epoch and on interrupt).
        threads: torch intra-op threads; 0 chooses them during training from the cores other
            processes leave free (:class:`~handdgp_models.threads.ThreadGovernor`).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"``, or mixed precision: ``"bf16"``/``"fp16"`` run the backbone and
            heads under ``torch.autocast`` in that type (``"fp16"`` with a gradient scaler);
            the mesh geometry, the DGP solve and the losses stay in float32.
    """

    seed: int = 0
    batch_size: int = 32
    steps: int = 20000
    stage1_fraction: float = 0.5
    stage2_lr_factor: float = 0.1
    consistency_stage: int = 1
    lr: float = 1e-3
    lr_decay_at: float = 0.8
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    checkpoint_every: int = 500
    threads: int = 0
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _positive(self, "batch_size", "steps", "checkpoint_every", "lr", "grad_clip",
                  "stage2_lr_factor")
        if not 0.0 <= self.stage1_fraction <= 1.0:
            raise ValueError(f"stage1_fraction: must be in [0, 1], got {self.stage1_fraction}")
        if not 0.0 <= self.lr_decay_at <= 1.0:
            raise ValueError(f"lr_decay_at: must be in [0, 1], got {self.lr_decay_at}")
        if self.consistency_stage not in (1, 2):
            raise ValueError(f"consistency_stage: must be 1 or 2, got {self.consistency_stage!r}")
        if self.weight_decay < 0 or self.threads < 0:
            bad = "weight_decay" if self.weight_decay < 0 else "threads"
            raise ValueError(f"{bad}: must be >= 0, got {getattr(self, bad)}")
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings: batch size, number of overlay panels written (the first test
    samples) and of the worst and of the median samples on the contact sheet."""

    batch_size: int = 32
    overlays: int = 8
    contact_sheet: int = 4

    def __post_init__(self) -> None:
        _positive(self, "batch_size")
        for name in ("overlays", "contact_sheet"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


#: Display names of the real datasets.
DATASET_NAMES = {"freihand": "FreiHAND", "ho3d": "HO3D-v2", "h36m": "Human3.6M"}


@dataclass(frozen=True)
class RunConfig:
    """A whole run: one section per component.

    Attributes:
        cache_dir: where every cache goes (mesh hierarchies, rendered synthetic images,
            dataset annotation arrays); None: ``$HANDDGP_CACHE``, else ``~/.cache/handdgp``
            (see :mod:`handdgp_models.cache`).
    """

    model: NetworkConfig = field(default_factory=NetworkConfig)
    hand: HandConfig = field(default_factory=HandConfig)
    body: BodyConfig | None = None
    input: PipelineConfig = field(default_factory=PipelineConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for key, src in self.data.sources():
            if self.body is None and src.dataset in BODY_DATASETS:
                raise ValueError(f"{key}.dataset: {DATASET_NAMES[src.dataset]} shows bodies "
                                 "and needs the body model: use --config h36m (a config with a "
                                 "body section) and --smpl SMPL_NEUTRAL.pkl")
            if self.body is not None and src.dataset not in BODY_DATASETS:
                raise ValueError(f"{key}.dataset: {src.dataset!r} shows hands, but the config "
                                 "has a body section (the full-body variant); use a hand "
                                 "config")

    def real_datasets(self, roles: tuple[str, ...] = ("train", "test")) -> list[str]:
        """Names of the real datasets among the sources of ``roles``: they need the real
        template mesh (MANO's, or SMPL's for Human3.6M)."""
        return sorted({DATASET_NAMES[s.dataset] for _, s in self.data.sources(roles)
                       if s.dataset != "synthetic"})

    def tip_ids(self) -> str:
        """The hand's fingertip id set: ``hand.tip_ids``, else the first training source's."""
        if self.hand.tip_ids is not None:
            return self.hand.tip_ids
        return "ho3d" if self.data.train[0].dataset == "ho3d" else "freihand"
