"""Build the dgp_ops._C extension.

CPU kernels are always built. CUDA kernels are built when a CUDA device is visible or when
``FORCE_CUDA=1`` (so a machine without a GPU can still compile and link them); target
architectures come from ``TORCH_CUDA_ARCH_LIST`` as usual for torch extensions.

Builds are incremental (``python setup.py build_ext --inplace``: ninja recompiles the sources
whose files or included headers changed); a change of torch version, of CUDA on/off, of the
architecture list or of the toolkit rebuilds everything. ``DGP_OPS_NO_EXTENSION=1`` installs the
packages without building the extension (``scripts/setup_env.sh`` then builds it in place).
"""

import glob
import json
import os
import shutil
import site
import sys

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import (
        CUDA_HOME,
        BuildExtension,
        CppExtension,
        CUDAExtension,
    )
except ImportError:  # pragma: no cover - only hit when torch is missing
    sys.exit(
        "dgp_ops needs PyTorch at build time. Install torch first, then build with\n"
        "  pip install --no-build-isolation -e ."
    )

ROOT = os.path.dirname(os.path.abspath(__file__))


def _want_cuda() -> bool:
    if os.environ.get("FORCE_CUDA", "0") == "1":
        if CUDA_HOME is None:
            sys.exit("FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME to its root.")
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def _wheel_cuda_includes() -> list[str]:
    """Headers that pip's CUDA wheels ship (cusparse.h, cublas_v2.h, ...) which torch's
    CUDA headers include but a minimal toolkit may lack."""
    dirs = []
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        dirs += glob.glob(os.path.join(sp, "nvidia", "*", "include"))
    return sorted(d for d in set(dirs) if os.path.isdir(d))


def _build_settings(with_cuda: bool) -> dict:
    """What the compiled objects depend on besides the sources and headers."""
    return {"torch": torch.__version__, "python": sys.version.split()[0], "cuda": with_cuda,
            "arch": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
            "cuda_home": CUDA_HOME if with_cuda else None}


class IncrementalBuild(BuildExtension.with_options(use_ninja=True)):
    """Rebuild from scratch when the build settings changed since the last build (a torch
    upgrade, CUDA switched on or off, another architecture list); otherwise setuptools and
    ninja rebuild only what changed."""

    def run(self):
        stamp = os.path.join(self.build_temp, "dgp_ops_build.json")
        want = _build_settings(_want_cuda())
        try:
            with open(stamp) as f:
                same = json.load(f) == want
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(self.build_temp, ignore_errors=True)
            self.force = True
        super().run()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            json.dump(want, f)


def _extension():
    with_cuda = _want_cuda()
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
    headers = sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True))
    cxx_flags = ["-O3", "-fopenmp"]
    include_dirs = [os.path.join(ROOT, "csrc")]
    kwargs = dict(
        name="dgp_ops._C",
        include_dirs=include_dirs,
        extra_link_args=["-fopenmp"],
        depends=headers,  # a changed header rebuilds (setuptools compares these with the .so)
    )
    if with_cuda:
        nvcc_flags = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
        return CUDAExtension(
            sources=cpp + cu,
            extra_compile_args={"cxx": cxx_flags + ["-DWITH_CUDA"], "nvcc": nvcc_flags},
            **{**kwargs, "include_dirs": include_dirs + _wheel_cuda_includes()},
        )
    return CppExtension(sources=cpp, extra_compile_args={"cxx": cxx_flags}, **kwargs)


setup(
    ext_modules=[] if os.environ.get("DGP_OPS_NO_EXTENSION") == "1" else [_extension()],
    cmdclass={"build_ext": IncrementalBuild},
)
