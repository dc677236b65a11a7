import numpy as np
import pytest

from sketchlearn._array_api import (
    Dispatch,
    get_namespace,
    is_numpy_namespace,
    move_to,
    result_float_dtype,
    to_numpy,
)

from .conftest import as_xp


def test_namespace_of_numpy_and_none():
    xp = get_namespace(np.ones(2), None)
    assert is_numpy_namespace(xp)


def test_mixed_libraries_raise_a_clear_type_error():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="different array libraries.*cupy.asarray"):
        get_namespace(np.ones(2), strict.asarray([1.0]))


def test_to_numpy_and_move_to_round_trip(xp):
    a = np.arange(6.0).reshape(2, 3)
    b = move_to(a, xp)
    assert get_namespace(b) is get_namespace(as_xp(xp, a))
    np.testing.assert_array_equal(to_numpy(b), a)
    assert isinstance(to_numpy(b), np.ndarray)


def test_result_float_dtype(xp):
    f32, f64 = as_xp(xp, np.ones(2), "float32"), as_xp(xp, np.ones(2), "float64")
    i64 = as_xp(xp, np.ones(2, dtype=np.int64))
    assert result_float_dtype(xp, f32, f32) == xp.float32
    assert result_float_dtype(xp, f32, f64) == xp.float64
    assert result_float_dtype(xp, f32, i64) == xp.float64


def _double_reference(xp, x):
    """Reference: 2 x."""
    return 2 * x


def test_dispatch_routes_by_namespace_and_loads_lazily():
    op = Dispatch(_double_reference, numba="math:fabs")
    assert op.__name__ == "_double" and op.__doc__ == "Reference: 2 x."
    assert op.backend_for(np) == "numba"
    strict = pytest.importorskip("array_api_strict")
    assert op.backend_for(strict) == "reference"
    assert to_numpy(op(strict, strict.asarray([1.5]))).tolist() == [3.0]
    assert op.implementation("numba") is __import__("math").fabs
    with pytest.raises(ValueError, match="no 'cupy' implementation"):
        op.implementation("cupy")
