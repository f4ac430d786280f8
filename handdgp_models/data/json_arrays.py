"""Streaming parser of JSON files holding a list of equally shaped numeric arrays.

The FreiHAND annotations are such files (``training_verts.json``: 32,560 × 778 × 3 numbers,
about 1.5 GB of text). ``json.load`` turns each number into a Python float inside nested
lists, several GB for that file; this parser reads fixed-size chunks and converts each with
vectorised NumPy, so its memory stays near a few times the chunk size whatever the file size.

Accepted input is exactly a JSON list of ``N ≥ 1`` entries, each a nested list of numbers of
the given shape, with any JSON whitespace between tokens. Numbers must follow the JSON
grammar (``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``) and are converted exactly as
``float(text)`` then rounded to float32, i.e. the values of
``np.asarray(json.load(f), dtype=np.float32)``. ``NaN``/``Infinity``, strings, objects,
``true``/``false``/``null``, a wrong nesting or a wrong count anywhere are errors naming the
file and the entry.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["parse_json_array", "read_json_array"]

#: Bytes read per step; the parser's working memory is a small multiple of this.
CHUNK_BYTES = 8 << 20
#: Longest run of number characters accepted (a number longer than this is malformed).
_MAX_NUMBER_CHARS = 1 << 16

# byte classes: whitespace, number characters (digit . e/E + -), structure, anything else
_WS, _DIGIT, _DOT, _EXP, _PLUS, _MINUS, _OPEN, _CLOSE, _COMMA, _BAD = range(10)
_CLASS = np.full(256, _BAD, dtype=np.uint8)
for _chars, _code in ((b" \t\n\r", _WS), (b"0123456789", _DIGIT), (b".", _DOT), (b"eE", _EXP),
                      (b"+", _PLUS), (b"-", _MINUS), (b"[", _OPEN), (b"]", _CLOSE),
                      (b",", _COMMA)):
    _CLASS[np.frombuffer(_chars, np.uint8)] = _code
_FIRST_NUM, _LAST_NUM = _DIGIT, _MINUS  # number characters are the classes in this range
_ZERO = ord("0")

# token codes of the structural skeleton: a number, "[", "]", ","
_TOK_NUMBER, _TOK_OPEN, _TOK_CLOSE, _TOK_COMMA = 1, 2, 3, 4
_TOKEN_OF_CLASS = np.zeros(_BAD + 1, dtype=np.uint8)
_TOKEN_OF_CLASS[_FIRST_NUM:_LAST_NUM + 1] = _TOK_NUMBER
_TOKEN_OF_CLASS[[_OPEN, _CLOSE, _COMMA]] = [_TOK_OPEN, _TOK_CLOSE, _TOK_COMMA]


def _entry_skeleton(shape: tuple[int, ...]) -> list[int]:
    """Token codes of one entry of ``shape`` (``[[n,n,n],[n,n,n]]`` for (2, 3))."""
    if not shape:
        return [_TOK_NUMBER]
    inner = _entry_skeleton(shape[1:])
    out = [_TOK_OPEN]
    for k in range(shape[0]):
        if k:
            out.append(_TOK_COMMA)
        out.extend(inner)
    out.append(_TOK_CLOSE)
    return out


class _MalformedError(ValueError):
    """Raised inside the parser; re-raised with the file name by :func:`parse_json_array`."""


class _Skeleton:
    """Checks the token stream ``[ E , E , ... , E ]`` incrementally, counting entries."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        entry = _entry_skeleton(shape)
        self.shape = shape
        self.more = np.array(entry + [_TOK_COMMA], dtype=np.uint8)  # an entry and a comma
        self.last = np.array(entry + [_TOK_CLOSE], dtype=np.uint8)  # the final entry
        self.pending = np.zeros(0, dtype=np.uint8)
        self.started = self.finished = False
        self.entries = 0

    def feed(self, tokens: np.ndarray) -> None:
        if not len(tokens):
            return
        if self.finished:
            raise _MalformedError("unexpected data after the closing ']' of the list")
        if not self.started:
            if tokens[0] != _TOK_OPEN:
                raise _MalformedError("expected '[' at the start of the file")
            self.started = True
            tokens = tokens[1:]
        buf = np.concatenate([self.pending, tokens]) if len(self.pending) else tokens
        width = len(self.more)
        full = len(buf) // width
        blocks = buf[:full * width].reshape(full, width)
        bad = np.flatnonzero((blocks != self.more).any(axis=1))
        if len(bad):
            k = int(bad[0])
            if k == full - 1 and np.array_equal(blocks[k], self.last):
                self.finished = True
                if len(buf) > full * width:
                    raise _MalformedError("unexpected data after the closing ']' of the list")
            elif (k == 0 and self.entries == 0 and blocks[0, 0] == _TOK_CLOSE):
                raise _MalformedError("the list is empty")
            else:
                raise _MalformedError(f"entry {self.entries + k} is not a nested list of "
                                      f"shape {self.shape}")
        self.entries += full
        self.pending = buf[full * width:].copy()

    def close(self) -> None:
        if not self.started:
            raise _MalformedError("no JSON list found (empty file?)")
        if self.finished:
            return
        rest = self.pending
        if len(rest) == 1 and rest[0] == _TOK_CLOSE and self.entries == 0:
            raise _MalformedError("the list is empty")
        raise _MalformedError(f"entry {self.entries} is not a nested list of shape "
                              f"{self.shape} (or the file is truncated)")


def _check_numbers(buf: np.ndarray, cls: np.ndarray, starts: np.ndarray,
                   ends: np.ndarray) -> None:
    """Raise unless every number token ``buf[starts[i]:ends[i]]`` follows the JSON grammar.

    Only the neighbours of the non-digit characters are examined (a few per number), so the
    cost is proportional to the number of numbers, not of bytes. Repeated ``.``/``e`` within
    one token pass here and are caught by the conversion count.
    """
    sp = np.flatnonzero((cls >= _DOT) & (cls <= _MINUS))
    if len(sp):
        c, prev, nxt = cls[sp], cls[sp - 1], cls[sp + 1]  # sp ≥ 1 and < len - 1 by padding
        prev_num = (prev >= _FIRST_NUM) & (prev <= _LAST_NUM)
        next_sign = (nxt == _PLUS) | (nxt == _MINUS)
        bad = (((c == _PLUS) & (prev != _EXP))
               | ((c == _MINUS) & prev_num & (prev != _EXP))
               | ((c == _DOT) & ((prev != _DIGIT) | (nxt != _DIGIT)))
               | ((c == _EXP) & ((prev != _DIGIT) | ~((nxt == _DIGIT) | next_sign))))
        if bad.any():
            raise _MalformedError(f"malformed number near {_context(buf, int(sp[bad][0]))}")
    if len(ends) and (cls[ends - 1] != _DIGIT).any():
        p = int(ends[cls[ends - 1] != _DIGIT][0]) - 1
        raise _MalformedError(f"malformed number near {_context(buf, p)}")
    # no leading zero before another digit: "01", "-01" (exponents may have them: "1e-05")
    first = starts + (cls[starts] == _MINUS)
    lead = (buf[first] == _ZERO) & (cls[first + 1] == _DIGIT)
    if lead.any():
        raise _MalformedError(f"malformed number near {_context(buf, int(first[lead][0]))}")


def _context(buf: np.ndarray, p: int) -> str:
    return repr(bytes(buf[max(p - 20, 0):p + 20]).decode("ascii", "replace"))


def _convert(buf: np.ndarray, skeleton: _Skeleton) -> np.ndarray:
    """Check one chunk (whole tokens only, ``buf[0]`` whitespace) and return its numbers."""
    cls = _CLASS[buf]
    if (cls == _BAD).any():
        p = int(np.flatnonzero(cls == _BAD)[0])
        raise _MalformedError(f"unexpected character {chr(buf[p])!r} near {_context(buf, p)} "
                              "(only numbers and nested lists are accepted)")
    is_num = ((cls >= _FIRST_NUM) & (cls <= _LAST_NUM)).view(np.int8)
    edges = np.flatnonzero(np.diff(is_num, append=np.int8(0)))  # buf[0] is not a number
    starts, ends = edges[0::2] + 1, edges[1::2] + 1
    _check_numbers(buf, cls, starts, ends)
    structural = cls >= _OPEN
    token_at = structural.copy()
    token_at[starts] = True
    skeleton.feed(_TOKEN_OF_CLASS[cls[token_at]])
    text = np.where(structural, np.uint8(ord(" ")), buf)
    if not len(starts):
        return np.zeros(0, dtype=np.float32)
    try:
        values = np.fromstring(text.tobytes(), dtype=np.float64, sep=" ")
    except ValueError as exc:
        raise _MalformedError(f"malformed number ({exc})") from exc
    if len(values) != len(starts):
        raise _MalformedError(f"malformed number: {len(starts)} number tokens but "
                              f"{len(values)} values")
    return values.astype(np.float32)


def parse_json_array(path: str | os.PathLike, shape: tuple[int, ...], out: BinaryIO, *,
                     chunk_bytes: int = CHUNK_BYTES) -> int:
    """Convert a JSON list of ``shape`` arrays into raw little-endian float32 written to ``out``.

    Args:
        path: the JSON file.
        shape: shape of one entry, e.g. ``(778, 3)``.
        out: binary file receiving ``N · prod(shape)`` float32 values in C order.
        chunk_bytes: bytes read per step (bounds the working memory).

    Returns:
        ``N``, the number of entries.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: naming ``path`` when it is not such a list (malformed JSON, wrong nesting,
            wrong count, an empty list). ``out`` may then hold partial data.
    """
    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if any(s <= 0 for s in shape):
        raise ValueError(f"shape: every dimension must be positive, got {shape}")
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes: must be positive, got {chunk_bytes}")
    skeleton = _Skeleton(shape)
    little = np.dtype("<f4")
    try:
        with open(path, "rb") as f:
            carry = b""
            while True:
                block = f.read(chunk_bytes)
                eof = not block
                data = np.frombuffer(b" " + carry + block + (b" " if eof else b""), np.uint8)
                if eof:
                    cut = len(data)
                else:
                    # cut after the last byte that is not part of a number: no token is split
                    tail = _CLASS[data[-(_MAX_NUMBER_CHARS + 1):]]
                    seps = np.flatnonzero((tail < _FIRST_NUM) | (tail > _LAST_NUM))
                    if not len(seps):
                        raise _MalformedError("a number is longer than "
                                              f"{_MAX_NUMBER_CHARS} characters")
                    cut = len(data) - len(tail) + int(seps[-1]) + 1
                values = _convert(data[:cut], skeleton)
                out.write(values.astype(little, copy=False).tobytes())
                if eof:
                    break
                carry = data[cut:].tobytes()
        skeleton.close()
    except _MalformedError as exc:
        raise ValueError(f"{path}: expected a JSON list of arrays of shape {shape}: "
                         f"{exc}") from None
    return skeleton.entries


def read_json_array(path: str | os.PathLike, shape: tuple[int, ...], *,
                    chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """The JSON list of ``shape`` arrays in ``path`` as a float32 ``(N, *shape)`` array.

    Same checks as :func:`parse_json_array`; the result is held in memory.
    """
    buf = io.BytesIO()
    n = parse_json_array(path, shape, buf, chunk_bytes=chunk_bytes)
    return np.frombuffer(buf.getbuffer(), dtype="<f4").astype(np.float32).reshape(n, *shape)
