"""dgp_ops: fused, differentiable geometry ops for PyTorch.

Importing this package loads the compiled extension ``dgp_ops._C`` which registers the ops
under ``torch.ops.dgp_ops``; each Python module then registers fake (meta) kernels for its ops
and exposes the public functions (autograd and autocast are registered in C++).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

import torch  # noqa: F401  (the extension links against libtorch)

try:
    from . import _C  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without a build
    raise ImportError(
        "dgp_ops: the compiled extension dgp_ops._C could not be loaded "
        f"({exc}). Build it from the repository root with\n"
        "    pip install --no-build-isolation -e .\n"
        "(or: python setup.py build_ext --inplace). To also build the CUDA kernels on a machine "
        "without a visible GPU:\n"
        "    FORCE_CUDA=1 CUDA_HOME=/path/to/cuda pip install --no-build-isolation -e .\n"
        "(every architecture the toolkit supports unless TORCH_CUDA_ARCH_LIST is set)."
    ) from exc

from . import dlt, lens, rectify, reference  # noqa: E402  (needs the ops registered by _C)
from ._validation import MIN_REL_DET, invertible  # noqa: E402
from .distort import warp_perspective_distorted  # noqa: E402
from .dlt import solve_translation  # noqa: E402
from .lens import Distortion, distort_points, undistort_points  # noqa: E402
from .warp import warp_perspective  # noqa: E402

try:  # dgp_ops ships in the handdgp distribution, whose version is declared once
    __version__ = _distribution_version("handdgp")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__: list[str] = [
    "MIN_REL_DET",
    "Distortion",
    "distort_points",
    "dlt",
    "invertible",
    "lens",
    "rectify",
    "reference",
    "solve_translation",
    "undistort_points",
    "warp_perspective",
    "warp_perspective_distorted",
]
