"""A restricted unpickler for model files (MANO, SMPL, dataset metadata) that never runs code.

The official MANO pickles reference chumpy (``chumpy.ch.Ch`` and its operator classes) and
scipy sparse matrices. Loading them with :func:`pickle.load` would need chumpy installed and
would let a tampered file call any importable function. :func:`safe_load_pickle` resolves
globals from a fixed allow-list only:

* chumpy classes become inert stand-ins, converted to ``numpy.ndarray`` after loading (a Ch
  keeps its value in its pickled state, under ``"x"``; operator nodes under ``"a"``);
* scipy ``csc_matrix`` / ``csr_matrix`` / ``coo_matrix`` become stand-ins rebuilt with scipy
  from their ``data``/``indices``/``indptr`` arrays (never through scipy's own ``__setstate__``);
* numpy's array/dtype/scalar reconstruction helpers are allowed, for plain numeric, boolean
  and string dtypes only; a dtype's pickled state is checked and the dtype rebuilt from it,
  never handed to numpy's ``dtype.__setstate__`` (which trusts its input: a malformed state
  corrupts the dtype and crashes the interpreter);
* a handful of harmless builtins (``object``, ``set``, ``frozenset``, ``slice``, ``complex``)
  and ``collections.OrderedDict``.

Every other global raises :class:`PickleLoadError` (a :class:`pickle.UnpicklingError` and a
:class:`ValueError`) naming it and the file.

Crafted files cannot stall or exhaust the loader: the conversion step visits each object once
(memoised by identity, so a file of shared references converts in time linear in its size),
refuses reference cycles and nesting deeper than :data:`MAX_DEPTH`, and refuses array values
that would expand to more than :data:`MAX_ELEMENTS` numbers. ``bytearray`` and numpy's array
reconstruction accept only the arguments that ordinary pickles pass (no size-only allocations).
"""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "PickleLoadError", "safe_load_pickle"]

#: Deepest nesting of containers and model objects accepted (model files nest < 10 deep).
MAX_DEPTH = 100
#: Most numbers a list-valued chumpy array may expand to (MANO's largest array has ~3e5).
MAX_ELEMENTS = 1 << 24


class PickleLoadError(pickle.UnpicklingError, ValueError):
    """A file that is not a readable, safe model pickle; the message names the file."""


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


def _safe_bytearray(source: Any = b"", encoding: str | None = None) -> bytearray:
    # Pickles pass bytes (protocol >= 3) or latin-1 text; an int would allocate that many bytes.
    if isinstance(source, bytes) and encoding is None:
        return bytearray(source)
    if isinstance(source, str) and encoding is not None:
        return bytearray(_safe_codecs_encode(source, encoding))
    raise pickle.UnpicklingError("bytearray is only allowed from bytes or latin-1 text")


#: dtype kinds a model file may hold: booleans, integers, floats, complex numbers, bytes, text.
_DTYPE_KINDS = frozenset("biufcSU")
_BYTE_ORDERS = frozenset("<>|=")


def _checked_dtype(dt: np.dtype) -> np.dtype:
    if dt.kind not in _DTYPE_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise pickle.UnpicklingError(f"dtype {dt!r} is not allowed (plain numeric, boolean and "
                                     "string dtypes only)")
    return dt


def _safe_dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype`` as pickles call it: ``dtype("f8", False, True)``."""
    if not isinstance(obj, str) or not isinstance(align, (bool, int)) \
            or not isinstance(copy, (bool, int)):
        raise pickle.UnpicklingError("numpy.dtype is only allowed from a type string")
    return _checked_dtype(np.dtype(obj))


def _dtype_from_state(dt: np.dtype, state: Any) -> np.dtype:
    """The dtype that ``dt.__setstate__(state)`` describes, for the states numpy writes for
    plain dtypes: ``(version, byte order, None, None, None, itemsize or -1, alignment or -1,
    flags[, metadata])``."""
    ok = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
          and isinstance(state[1], str) and state[1] in _BYTE_ORDERS
          and state[2] is None and state[3] is None and state[4] is None
          and all(isinstance(v, int) and not isinstance(v, bool) for v in state[5:8])
          and (len(state) == 8 or state[8] is None))
    if not ok:
        raise pickle.UnpicklingError("a numpy dtype's pickled state is malformed")
    dt = _checked_dtype(dt)
    order, itemsize = state[1], state[5]
    if dt.kind in "SU":
        unit = 4 if dt.kind == "U" else 1
        if itemsize < 0 or itemsize % unit:
            raise pickle.UnpicklingError(f"a {dt.kind} dtype's item size {itemsize} is invalid")
        dt = np.dtype(f"{dt.kind}{itemsize // unit}")
    elif itemsize != -1:
        raise pickle.UnpicklingError("a numeric dtype's pickled state names an item size")
    return dt.newbyteorder(order) if order in "<>" and dt.itemsize > 1 else dt


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: usable only as the first argument of ``_reconstruct``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("numpy.ndarray may only be rebuilt through _reconstruct")


def _make_safe_reconstruct(reconstruct: Any) -> Any:
    def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") + __setstate__(data).
        ok_shape = (isinstance(shape, tuple) and len(shape) <= 1
                    and all(isinstance(n, int) and 0 <= n <= 1 for n in shape))
        if subtype is not _NdarrayToken or not ok_shape:
            raise pickle.UnpicklingError(
                "numpy _reconstruct is only allowed for a plain ndarray of shape (0,)")
        return reconstruct(np.ndarray, shape, dtype)

    return _safe_reconstruct


def _numpy_core(name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    mod = getattr(core, name)
    return mod


def _build_allowlist() -> dict[tuple[str, str], Any]:
    multiarray = _numpy_core("multiarray")
    numeric = _numpy_core("numeric")
    allowed: dict[tuple[str, str], Any] = {}
    safe_reconstruct = _make_safe_reconstruct(multiarray._reconstruct)
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = safe_reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = _NdarrayToken
    allowed[("numpy", "dtype")] = _safe_dtype
    for builtins_mod in ("builtins", "__builtin__"):
        for name, obj in {
            "object": object,
            "set": set,
            "frozenset": frozenset,
            "slice": slice,
            "complex": complex,
            "bytearray": _safe_bytearray,
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


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcode table can be changed; model files are small), with
    globals from the allow-list and a checked BUILD for numpy dtypes."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f: BinaryIO, source: str) -> None:
        super().__init__(f, encoding="latin1")
        self.source = source

    def load_build(self) -> None:
        stack = self.stack
        if len(stack) >= 2 and isinstance(stack[-2], np.dtype):
            state = stack.pop()
            old = stack[-1]
            stack[-1] = new = _dtype_from_state(old, state)
            for key, value in self.memo.items():  # later references get the rebuilt dtype
                if value is old:
                    self.memo[key] = new
            return
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module == "numpy.dtypes" and name.endswith("DType"):
            import numpy.dtypes as npdt  # numpy >= 1.25 pickles dtypes through these classes

            cls = getattr(npdt, name, None)
            if isinstance(cls, type) and issubclass(cls, np.dtype) \
                    and cls not in (npdt.ObjectDType, npdt.VoidDType):
                return cls
        raise PickleLoadError(
            f"{self.source}: refusing to load global '{module}.{name}': model files may only "
            "contain arrays, containers and chumpy/scipy.sparse data"
        )


class _Converter:
    """Replaces stand-ins by arrays, visiting every object once (memoised by identity)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.done: dict[int, Any] = {}
        self.active: set[int] = set()
        self.sizes: dict[int, int] = {}

    def error(self, what: str) -> PickleLoadError:
        return PickleLoadError(f"{self.source}: {what}")

    def convert(self, obj: Any, depth: int = 0) -> Any:
        if not isinstance(obj, (dict, list, tuple, _Inert)):
            return obj
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise self.error("the pickle contains a reference cycle (an object inside itself)")
        if depth > MAX_DEPTH:
            raise self.error(f"the pickle nests objects deeper than {MAX_DEPTH} levels")
        self.active.add(key)
        try:
            result = self._convert_new(obj, depth + 1)
        finally:
            self.active.discard(key)
        self.done[key] = result
        return result

    def _convert_new(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, _ChumpyStandIn):
            return self._chumpy_to_numpy(obj, depth)
        if isinstance(obj, _SparseStandIn):
            return self._sparse_to_scipy(obj)
        if isinstance(obj, _Inert):
            raise self.error(f"unexpected stand-in {type(obj).__name__}")
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                out[k] = self.convert(v, depth)
            return out
        items = [self.convert(v, depth) for v in obj]
        return items if isinstance(obj, list) else tuple(items)

    def _chumpy_to_numpy(self, obj: _ChumpyStandIn, depth: int) -> np.ndarray:
        state = obj._state
        if (isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict)
                and (state[0] is None or isinstance(state[0], dict))):
            state = {**(state[0] or {}), **state[1]}  # (dict, slotstate) form
        if isinstance(state, dict):
            for key in ("x", "a"):
                if key in state:
                    value = self.convert(state[key], depth)
                    if self._expanded_size(value) > MAX_ELEMENTS:
                        raise self.error(f"a chumpy array in the file would expand to more "
                                         f"than {MAX_ELEMENTS} numbers")
                    try:
                        return np.asarray(value)
                    except (TypeError, ValueError) as exc:
                        raise self.error(
                            f"a chumpy object's value is not an array ({exc})") from exc
        raise self.error(
            "a chumpy object in the file has no array value (expected state key 'x' or 'a')"
        )

    def _expanded_size(self, obj: Any) -> int:
        """How many leaves ``np.asarray(obj)`` would visit, counting shared parts each time."""
        if not isinstance(obj, (list, tuple)):
            return 1
        key = id(obj)
        if key not in self.sizes:
            self.sizes[key] = sum(self._expanded_size(v) for v in obj)
        return self.sizes[key]

    def _sparse_to_scipy(self, obj: _SparseStandIn) -> Any:
        import scipy.sparse as sp

        state = obj._state
        if not isinstance(state, dict):
            raise self.error("a scipy.sparse matrix in the file has no state dict")

        def array(key: str) -> np.ndarray:
            value = state.get(key)
            if not isinstance(value, np.ndarray):
                raise self.error(f"a scipy.sparse matrix in the file has no array {key!r}")
            return value

        shape = state.get("_shape", state.get("shape", ()))
        if (not isinstance(shape, tuple) or len(shape) != 2
                or not all(isinstance(n, int) and n >= 0 for n in shape)):
            raise self.error("a scipy.sparse matrix in the file has no 2-D shape")
        try:
            if obj._format == "coo":
                if "coords" in state:
                    coords = state["coords"]
                    if not (isinstance(coords, tuple) and len(coords) == 2
                            and all(isinstance(c, np.ndarray) for c in coords)):
                        raise self.error("a scipy.sparse COO matrix has malformed 'coords'")
                    row, col = coords
                else:
                    row, col = array("row"), array("col")
                return sp.coo_matrix((array("data"), (row, col)), shape=shape)
            ctor = sp.csc_matrix if obj._format == "csc" else sp.csr_matrix
            return ctor((array("data"), array("indices"), array("indptr")), shape=shape)
        except (TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, PickleLoadError):
                raise
            raise self.error(f"a scipy.sparse matrix in the file is malformed ({exc})") from exc


def safe_load_pickle(path_or_fileobj: str | os.PathLike | BinaryIO | bytes) -> Any:
    """Load a pickle whose globals are restricted to arrays, containers and model classes.

    Args:
        path_or_fileobj: a file path, a binary file object, or the pickle's bytes.

    Returns:
        The unpickled object with chumpy objects replaced by ``numpy.ndarray`` and scipy sparse
        matrices rebuilt as scipy matrices. Python-2 pickles are read with ``latin1`` strings.
        Shared references stay shared.

    Raises:
        PickleLoadError: naming the file, when it references any other global (e.g.
            ``os.system``), is truncated or not a pickle, contains a reference cycle, nests
            deeper than :data:`MAX_DEPTH` or holds malformed model objects.
        OSError: the path cannot be opened.
        TypeError: ``path_or_fileobj`` is of an unsupported type.
    """
    if isinstance(path_or_fileobj, (bytes, bytearray)):
        return _load(io.BytesIO(path_or_fileobj), "<pickle bytes>")
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as f:
            return _load(f, os.fspath(path_or_fileobj))
    if hasattr(path_or_fileobj, "read"):
        return _load(path_or_fileobj, str(getattr(path_or_fileobj, "name", "<file object>")))
    raise TypeError(
        "path_or_fileobj must be a path, a binary file object or bytes, "
        f"got {type(path_or_fileobj).__name__}"
    )


def _load(f: BinaryIO, source: str) -> Any:
    try:
        obj = _RestrictedUnpickler(f, source).load()
    except PickleLoadError:
        raise
    except RecursionError as exc:
        raise PickleLoadError(f"{source}: the pickle nests objects too deeply") from exc
    except MemoryError as exc:
        raise PickleLoadError(f"{source}: the pickle asks for more memory than exists") from exc
    except Exception as exc:  # truncated or garbage data surfaces as many exception types
        raise PickleLoadError(f"{source}: not a readable pickle "
                              f"({type(exc).__name__}: {exc})") from exc
    return _Converter(source).convert(obj)
