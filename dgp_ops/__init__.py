"""dgp_ops: fused, differentiable geometry ops for PyTorch.

Importing this package loads the compiled extension ``dgp_ops._C`` which registers the ops
under ``torch.ops.dgp_ops``; each Python module then registers fake (meta) kernels and
autograd for its ops and exposes validated public functions.
"""

import torch  # noqa: F401  (the extension links against libtorch)

try:
    from . import _C  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without a build
    raise ImportError(
        "dgp_ops: the compiled extension dgp_ops._C could not be loaded "
        f"({exc}). Build it from the repository root with\n"
        "    pip install --no-build-isolation -e .\n"
        "(or: python setup.py build_ext --inplace). Set FORCE_CUDA=1 and CUDA_HOME to also "
        "build the CUDA kernels on a machine without a visible GPU."
    ) from exc

from . import dlt, reference  # noqa: E402  (needs the ops registered by _C)
from .dlt import solve_translation  # noqa: E402

__version__ = "0.1.0"
__all__: list[str] = ["dlt", "reference", "solve_translation"]
