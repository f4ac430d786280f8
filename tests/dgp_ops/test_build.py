"""setup.py's architecture list for a CUDA build without a visible GPU (FORCE_CUDA=1 and no
TORCH_CUDA_ARCH_LIST): every major architecture the toolkit supports plus PTX, in a form
torch's extension builder accepts."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest
from torch.utils import cpp_extension

ROOT = pathlib.Path(__file__).resolve().parents[2]


def setup_module_functions():
    spec = importlib.util.spec_from_file_location("dgp_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() itself runs only as __main__
    return module


CUDA_13 = "\n".join(f"compute_{a}" for a in
                    (75, 80, 86, 87, 88, 89, 90, 100, 110, 103, 120, 121)) + "\n"
CUDA_12_8 = "\n".join(f"compute_{a}" for a in
                      (50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 120))


@pytest.mark.parametrize(
    ("listing", "expected"),
    [(CUDA_13, "7.5;8.0;9.0;10.0;11.0;12.0+PTX"), (CUDA_12_8, "5.0;6.0;7.0;8.0;9.0;10.0;12.0+PTX")],
)
def test_default_arch_list(listing, expected):
    assert setup_module_functions().default_arch_list(listing) == expected


def _nvcc() -> str | None:
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    path = os.path.join(home, "bin", "nvcc")
    return path if os.path.exists(path) else shutil.which("nvcc")


@pytest.mark.skipif(_nvcc() is None, reason="needs a CUDA toolkit (nvcc)")
def test_torch_accepts_the_installed_toolkits_default_list(monkeypatch):
    """What FORCE_CUDA=1 without TORCH_CUDA_ARCH_LIST hands torch: gencode flags for every
    listed architecture and PTX of the last (torch itself failed here without a GPU)."""
    listing = subprocess.run([_nvcc(), "--list-gpu-arch"], capture_output=True, text=True,
                             check=True).stdout
    arch_list = setup_module_functions().default_arch_list(listing)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", arch_list)
    flags = cpp_extension._get_cuda_arch_flags()
    archs = arch_list.replace("+PTX", "").split(";")
    for a in archs:
        sm = a.replace(".", "")
        assert f"-gencode=arch=compute_{sm},code=sm_{sm}" in flags, (a, flags)
    newest = archs[-1].replace(".", "")
    assert f"-gencode=arch=compute_{newest},code=compute_{newest}" in flags


def test_the_extension_is_one_abi3_module_and_the_version_is_the_distributions():
    import dgp_ops
    import handdgp_models

    built = sorted(p.name for p in pathlib.Path(dgp_ops.__file__).parent.glob("_C.*.so"))
    assert built == ["_C.abi3.so"], built
    assert dgp_ops.__version__ == handdgp_models.__version__
