"""A restricted unpickler for model files (MANO, SMPL, dataset metadata) that never runs code.

The official MANO pickles reference chumpy (``chumpy.ch.Ch`` and its operator classes) and
scipy sparse matrices. Loading them with :func:`pickle.load` would need chumpy installed and
would let a tampered file call any importable function. :func:`safe_load_pickle` resolves
globals from a fixed allow-list only:

* chumpy classes become inert stand-ins, converted to ``numpy.ndarray`` after loading (a Ch
  keeps its value in its pickled state, under ``"x"``; operator nodes under ``"a"``);
* scipy ``csc_matrix`` / ``csr_matrix`` / ``coo_matrix`` become stand-ins rebuilt with scipy
  from their ``data``/``indices``/``indptr`` arrays (never through scipy's own ``__setstate__``);
* numpy's array/dtype/scalar reconstruction helpers are allowed;
* a handful of harmless builtins (``object``, ``set``, ``frozenset``, ``slice``, ``complex``)
  and ``collections.OrderedDict``.

Every other global raises :class:`pickle.UnpicklingError` naming it.
"""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np

__all__ = ["safe_load_pickle"]


class _Inert:
    """Stand-in for a foreign class: remembers its constructor args and pickled state."""

    _source = "unknown"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        obj = object.__new__(cls)
        obj._args = args
        obj._state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never forwards anything
        pass

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def __reduce__(self):  # pragma: no cover - stand-ins are never re-pickled
        raise pickle.PicklingError(f"cannot pickle a stand-in for {self._source}")


class _ChumpyStandIn(_Inert):
    _source = "chumpy"


class _SparseStandIn(_Inert):
    _source = "scipy.sparse"
    _format = "csc"


class _CscStandIn(_SparseStandIn):
    _format = "csc"


class _CsrStandIn(_SparseStandIn):
    _format = "csr"


class _CooStandIn(_SparseStandIn):
    _format = "coo"


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Python 2's ``copy_reg._reconstructor`` restricted to stand-ins and plain objects."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)) or base is not object:
        raise pickle.UnpicklingError(
            f"copy_reg._reconstructor is only allowed for known model classes, got {cls!r}"
        )
    return cls.__new__(cls)


def _safe_codecs_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python-3 pickles of bytes under protocol < 3 use _codecs.encode(text, "latin1").
    if encoding.lower().replace("_", "-") not in {"latin1", "latin-1", "utf-8", "utf8"}:
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r} is not allowed")
    return obj.encode(encoding, errors)


def _numpy_core(name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    mod = getattr(core, name)
    return mod


def _build_allowlist() -> dict[tuple[str, str], Any]:
    multiarray = _numpy_core("multiarray")
    numeric = _numpy_core("numeric")
    allowed: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for builtins_mod in ("builtins", "__builtin__"):
        for name, obj in {
            "object": object,
            "set": set,
            "frozenset": frozenset,
            "slice": slice,
            "complex": complex,
            "bytearray": bytearray,
        }.items():
            allowed[(builtins_mod, name)] = obj
    for reg in ("copyreg", "copy_reg"):
        allowed[(reg, "_reconstructor")] = _safe_reconstructor
    allowed[("_codecs", "encode")] = _safe_codecs_encode
    allowed[("collections", "OrderedDict")] = OrderedDict
    sparse_stand_ins = {"csc_matrix": _CscStandIn, "csr_matrix": _CsrStandIn,
                        "coo_matrix": _CooStandIn}
    for name, stand_in in sparse_stand_ins.items():
        short = name.split("_")[0]
        for mod in ("scipy.sparse", f"scipy.sparse.{short}", f"scipy.sparse._{short}"):
            allowed[(mod, name)] = stand_in
    return allowed


_ALLOWED = _build_allowlist()


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module == "numpy.dtypes" and name.endswith("DType"):
            import numpy.dtypes as npdt  # numpy >= 1.25 pickles dtypes through these classes

            cls = getattr(npdt, name, None)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                return cls
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': model files may only contain "
            "arrays, containers and chumpy/scipy.sparse data"
        )


def _chumpy_to_numpy(obj: _ChumpyStandIn) -> np.ndarray:
    state = obj._state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slotstate) form
    if isinstance(state, dict):
        for key in ("x", "a"):
            if key in state:
                return np.asarray(_convert(state[key]))
    raise pickle.UnpicklingError(
        "a chumpy object in the file has no array value (expected state key 'x' or 'a')"
    )


def _sparse_to_scipy(obj: _SparseStandIn) -> Any:
    import scipy.sparse as sp

    state = obj._state
    if not isinstance(state, dict):
        raise pickle.UnpicklingError("a scipy.sparse matrix in the file has no state dict")
    shape = tuple(state.get("_shape", state.get("shape", ())))
    if len(shape) != 2:
        raise pickle.UnpicklingError("a scipy.sparse matrix in the file has no 2-D shape")
    data = np.asarray(state["data"])
    if obj._format == "coo":
        row = np.asarray(state.get("row", state.get("coords", [None, None])[0]))
        col = np.asarray(state.get("col", state.get("coords", [None, None])[1]))
        return sp.coo_matrix((data, (row, col)), shape=shape)
    ctor = sp.csc_matrix if obj._format == "csc" else sp.csr_matrix
    return ctor((data, np.asarray(state["indices"]), np.asarray(state["indptr"])), shape=shape)


def _convert(obj: Any) -> Any:
    if isinstance(obj, _ChumpyStandIn):
        return _chumpy_to_numpy(obj)
    if isinstance(obj, _SparseStandIn):
        return _sparse_to_scipy(obj)
    if isinstance(obj, dict):
        return {k: _convert(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_convert(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_convert(v) for v in obj)
    return obj


def safe_load_pickle(path_or_fileobj: str | os.PathLike | BinaryIO | bytes) -> Any:
    """Load a pickle whose globals are restricted to arrays, containers and model classes.

    Args:
        path_or_fileobj: a file path, a binary file object, or the pickle's bytes.

    Returns:
        The unpickled object with chumpy objects replaced by ``numpy.ndarray`` and scipy sparse
        matrices rebuilt as scipy matrices. Python-2 pickles are read with ``latin1`` strings.

    Raises:
        pickle.UnpicklingError: the file references any other global (e.g. ``os.system``).
        TypeError: ``path_or_fileobj`` is of an unsupported type.
    """
    if isinstance(path_or_fileobj, (bytes, bytearray)):
        return _load(io.BytesIO(path_or_fileobj))
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as f:
            return _load(f)
    if hasattr(path_or_fileobj, "read"):
        return _load(path_or_fileobj)
    raise TypeError(
        "path_or_fileobj must be a path, a binary file object or bytes, "
        f"got {type(path_or_fileobj).__name__}"
    )


def _load(f: BinaryIO) -> Any:
    return _convert(_RestrictedUnpickler(f, encoding="latin1").load())

