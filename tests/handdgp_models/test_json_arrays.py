"""Streaming JSON array parser: the values of json.load, strict about everything else."""

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handdgp_models.data.json_arrays import parse_json_array, read_json_array

WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


def _number_text(draw, value: float, style: int) -> str:
    """One JSON number in one of several spellings json.dump and other writers produce."""
    if style == 0:
        return repr(value)  # json.dump's spelling
    if style == 1:
        return f"{value:.{draw(st.integers(0, 9))}e}"  # 1.234e-05
    if style == 2:
        return f"{value:.{draw(st.integers(1, 9))}E}".replace("E+", "E")  # 1.5E5, 2.0E-07
    if style == 3:
        return str(int(round(value)))  # integers
    return f"{value:.{draw(st.integers(1, 12))}f}"


@st.composite
def json_documents(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    n = draw(st.integers(1, 4))
    values = draw(st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e30,
                  max_value=1e30) | st.integers(-10**6, 10**6).map(float)
        | st.floats(-1e-3, 1e-3).map(lambda x: x * 1e-30),
        min_size=n * int(np.prod(shape)), max_size=n * int(np.prod(shape))))

    it = iter(values)

    def emit(dims):
        if not dims:
            return _number_text(draw, next(it), draw(st.integers(0, 4)))
        sep = draw(WHITESPACE) + "," + draw(WHITESPACE)
        items = [emit(dims[1:]) for _ in range(dims[0])]
        return "[" + draw(WHITESPACE) + sep.join(items) + draw(WHITESPACE) + "]"

    text = draw(WHITESPACE) + emit((n, *shape)) + draw(WHITESPACE)
    return text, shape


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(doc=json_documents(), chunk=st.integers(1, 40))
def test_values_equal_json_load(tmp_path, doc, chunk):
    text, shape = doc
    path = tmp_path / "a.json"
    path.write_text(text)
    expected = np.asarray(json.loads(text), dtype=np.float32)
    got = read_json_array(path, shape, chunk_bytes=chunk)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_release_formatting_and_count(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 778, 3)) * 0.1
    path = tmp_path / "training_verts.json"
    with open(path, "w") as f:
        json.dump(data.tolist(), f)
    out = io.BytesIO()
    assert parse_json_array(path, (778, 3), out, chunk_bytes=4096) == 5
    got = np.frombuffer(out.getvalue(), dtype="<f4").reshape(5, 778, 3)
    np.testing.assert_array_equal(got, data.astype(np.float32))


BAD = [
    "",  # empty file
    "   \n",
    "[]",  # no entries
    "[[1, 2, 3]",  # truncated
    "[[1, 2, 3], [4, 5]]",  # wrong count in an entry
    "[[1, 2, 3], [4, 5, 6, 7]]",
    "[[[1, 2, 3]]]",  # wrong nesting
    "[1, 2, 3]",
    "[[1, 2, [3]]]",
    "[[1, 2, 3],]",  # trailing comma
    "[[1, 2, 3]] [[1, 2, 3]]",  # data after the list
    "[[1, 2, 3]] x",
    "[[1 2, 3]]",  # missing comma
    "[[1, 2, NaN]]",  # not JSON numbers
    "[[1, 2, Infinity]]",
    "[[1, 2, null]]",
    "[[1, 2, \"3\"]]",
    "{\"a\": [1, 2, 3]}",
    "[[01, 2, 3]]",  # leading zero
    "[[-01, 2, 3]]",
    "[[1., 2, 3]]",
    "[[.5, 2, 3]]",
    "[[+1, 2, 3]]",
    "[[1e, 2, 3]]",
    "[[1e+, 2, 3]]",
    "[[--1, 2, 3]]",
    "[[1-2, 2, 3]]",
    "[[1.2.3, 2, 3]]",
    "[[1e5e3, 2, 3]]",
    "[[-, 2, 3]]",
]


def _reject(name):
    raise ValueError(f"{name} is not standard JSON")


@pytest.mark.parametrize("text", BAD)
@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_malformed_is_an_error_naming_the_file(tmp_path, text, chunk):
    # each case is really invalid: standard JSON (no NaN/Infinity) rejects it, or it is
    # not a non-empty list of 3-vectors of numbers
    try:
        data = json.loads(text, parse_constant=_reject)
    except ValueError:
        data = None
    assert not (isinstance(data, list) and data and all(
        isinstance(e, list) and len(e) == 3
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in e)
        for e in data))
    path = tmp_path / "training_xyz.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="training_xyz.json"):
        read_json_array(path, (3,), chunk_bytes=chunk)


def test_errors_name_the_entry_and_arguments(tmp_path):
    path = tmp_path / "k.json"
    path.write_text(json.dumps([[1, 2, 3]] * 4 + [[1, 2]] + [[1, 2, 3]]))
    with pytest.raises(ValueError, match="entry 4"):
        read_json_array(path, (3,))
    with pytest.raises(FileNotFoundError):
        read_json_array(tmp_path / "missing.json", (3,))
    with pytest.raises(ValueError, match="shape"):
        read_json_array(path, (0, 3))
    with pytest.raises(ValueError, match="chunk_bytes"):
        read_json_array(path, (3,), chunk_bytes=0)
    path.write_text("[[" + "1" * 70000 + ", 2, 3]]")
    with pytest.raises(ValueError, match="longer than"):
        read_json_array(path, (3,), chunk_bytes=1024)
