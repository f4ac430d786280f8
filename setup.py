"""Build the dgp_ops._C extension.

CPU kernels are always built. CUDA kernels are built when a CUDA device is visible or when
``FORCE_CUDA=1`` (so a machine without a GPU can still compile and link them). Target
architectures come from ``TORCH_CUDA_ARCH_LIST`` as usual for torch extensions; without it, the
visible GPUs', or with no GPU visible every architecture the toolkit supports
(:func:`default_arch_list`).

Builds are incremental (``python setup.py build_ext --inplace``: ninja recompiles the sources
whose files or included headers changed); a change of torch version, of CUDA on/off, of the
architecture list or of the toolkit rebuilds everything. ``DGP_OPS_NO_EXTENSION=1`` installs the
packages without building the extension (``scripts/setup_env.sh`` then builds it in place).
"""

import glob
import json
import os
import re
import shutil
import site
import subprocess
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
        if CUDA_HOME is None or not os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
            sys.exit("FORCE_CUDA=1 but no CUDA toolkit was found (no bin/nvcc under "
                     f"{CUDA_HOME}): set CUDA_HOME to its root.")
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def default_arch_list(nvcc_arches: str) -> str:
    """``TORCH_CUDA_ARCH_LIST`` for a CUDA build without a visible GPU, from the output of
    ``nvcc --list-gpu-arch``: for every major compute capability the toolkit supports, code for
    its lowest minor version (which runs on every later minor version of that major), and PTX
    of the newest of these, which the driver compiles for GPUs newer than the toolkit. CUDA 13:
    ``7.5;8.0;9.0;10.0;11.0;12.0+PTX``."""
    caps = sorted(
        (int(m[:-1]), int(m[-1])) for m in re.findall(r"^compute_(\d+)$", nvcc_arches, re.M)
    )
    lowest: dict[int, int] = {}
    for major, minor in caps:
        lowest.setdefault(major, minor)
    if not lowest:
        sys.exit(f"could not read the architectures nvcc supports from {nvcc_arches!r}")
    return ";".join(f"{major}.{minor}" for major, minor in lowest.items()) + "+PTX"


def _set_default_arch_list() -> None:
    if os.environ.get("TORCH_CUDA_ARCH_LIST") or torch.cuda.is_available():
        return
    nvcc = os.path.join(CUDA_HOME, "bin", "nvcc")
    out = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True, check=True)
    os.environ["TORCH_CUDA_ARCH_LIST"] = default_arch_list(out.stdout)
    print(f"dgp_ops: no GPU visible; building for TORCH_CUDA_ARCH_LIST="
          f"{os.environ['TORCH_CUDA_ARCH_LIST']}")


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


def _remove_stale_modules(cmd) -> None:
    """Leave exactly one dgp_ops._C module where the build put it (the package for an in-place
    build, build/lib.* for a wheel): a copy with another suffix (a build for one Python version,
    from before the abi3 build) would be imported first or shipped in the wheel."""
    built = cmd.get_ext_fullpath("dgp_ops._C")
    for path in glob.glob(os.path.join(os.path.dirname(built), "_C.*.so")):
        if os.path.basename(path) != os.path.basename(built):
            os.remove(path)


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
        _remove_stale_modules(self)
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            json.dump(want, f)


def _extension():
    with_cuda = _want_cuda()
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
    headers = sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True)
                     + glob.glob(os.path.join("csrc", "**", "*.cuh"), recursive=True))
    cxx_flags = ["-O3", "-fopenmp"]
    include_dirs = [os.path.join(ROOT, "csrc")]
    kwargs = dict(
        name="dgp_ops._C",
        py_limited_api=True,  # csrc/dgp_ops.cpp uses only the limited API: an abi3 module
        include_dirs=include_dirs,
        extra_link_args=["-fopenmp"],
        depends=headers,  # a changed header rebuilds (setuptools compares these with the .so)
    )
    if with_cuda:
        _set_default_arch_list()
        nvcc_flags = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
        return CUDAExtension(
            sources=cpp + cu,
            extra_compile_args={"cxx": cxx_flags + ["-DWITH_CUDA"], "nvcc": nvcc_flags},
            **{**kwargs, "include_dirs": include_dirs + _wheel_cuda_includes()},
        )
    return CppExtension(sources=cpp, extra_compile_args={"cxx": cxx_flags}, **kwargs)


if __name__ == "__main__":
    setup(
        ext_modules=[] if os.environ.get("DGP_OPS_NO_EXTENSION") == "1" else [_extension()],
        cmdclass={"build_ext": IncrementalBuild},
        options={"bdist_wheel": {"py_limited_api": "cp310"}},
    )
