"""The reference evaluator: agreement with numpy, deltas as diagonals, dtype, stability, input validation."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.errors import ShapeError


def test_matches_numpy_einsum_for_products(rng):
    A, B, C = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    e = ix.parse("A_ij B_jk C_kl")
    assert np.allclose(ix.evaluate(e, {"A": A, "B": B, "C": C}), A @ B @ C)


def test_delta_with_both_indices_free_is_written_on_a_diagonal(rng):
    x = rng.normal(size=4)
    d = ix.diff(ix.parse("z_i = x_i^2"), "x")  # 2 x_i δ_ik
    assert np.allclose(ix.evaluate(d, {"x": x}), np.diag(2 * x))


def test_three_index_diagonal(rng):
    x = rng.normal(size=3)
    h = ix.evaluate(ix.diff(ix.parse("z_i = x_i^3"), "x", "x"), {"x": x})
    expected = np.zeros((3, 3, 3))
    for i in range(3):
        expected[i, i, i] = 6 * x[i]
    assert np.allclose(h, expected)


def test_shadowed_indices_with_different_sizes(rng):
    x, y, z = rng.normal(size=3), rng.normal(size=3), rng.normal(size=5)
    # the summed i (length 3) and the free i (length 5) are different indices
    assert np.allclose(ix.evaluate(ix.parse("x_i y_i + z_i"), {"x": x, "y": y, "z": z}), x @ y + z)
    u = rng.normal(size=7)
    value = ix.evaluate(ix.parse("x_j x_j + u_j u_j"), {"x": x, "u": u})
    assert np.isclose(value, x @ x + u @ u)


def test_float32_in_float32_out(rng):
    A, x = rng.normal(size=(3, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    e = ix.diff(ix.parse("x_i A_ij x_j"), "x")
    assert ix.evaluate(e, {"A": A, "x": x}).dtype == np.float32


def test_integer_arrays_evaluate_in_float():
    out = ix.evaluate(ix.parse("x_i / y_i"), {"x": np.array([1, 2]), "y": np.array([2, 4])})
    assert out.dtype == np.float64 and np.allclose(out, [0.5, 0.5])


@pytest.mark.parametrize("z", [1000.0, -1000.0])
def test_sigmoid_and_softplus_are_stable(z):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to exactly 0 is the right answer
        s = ix.evaluate(ix.parse("sigmoid(x)"), {"x": np.float64(z)})
        p = ix.evaluate(ix.parse("softplus(x)"), {"x": np.float64(z)})
    assert np.isfinite(s) and np.isfinite(p)
    assert s == (1.0 if z > 0 else 0.0)
    assert p == pytest.approx(max(z, 0.0))


def test_missing_array():
    with pytest.raises(ShapeError) as info:
        ix.evaluate(ix.parse("x_i A_ij x_j"), {"x": np.ones(3)})
    msg = str(info.value)
    assert "no array given for 'A'" in msg and "x_i A_ij x_j" in msg
    assert msg.splitlines()[2].index("^") == msg.splitlines()[1].index("A")


def test_wrong_rank():
    with pytest.raises(ShapeError, match=r"'x' has 1 index but the array has 2 axes \(shape \(3, 1\)\)"):
        ix.evaluate(ix.parse("x_i A_ij x_j"), {"x": np.ones((3, 1)), "A": np.ones((3, 3))})


def test_inconsistent_sizes_name_the_index_both_tensors_and_sizes():
    with pytest.raises(ShapeError) as info:
        ix.evaluate(ix.parse("A_ij x_j"), {"A": np.ones((2, 3)), "x": np.ones(4)})
    msg = str(info.value)
    assert "index 'j' has size" in msg and "size 3 in A" in msg and "size 4 in x" in msg


def test_non_numeric_array():
    with pytest.raises(ShapeError, match="not numeric"):
        ix.evaluate(ix.parse("x_i x_i"), {"x": np.array(["a", "b"])})


def test_unknown_size_needs_dims():
    with pytest.raises(ShapeError, match="pass its size"):
        ix.evaluate(ix.parse("δ_ij"), {})
    assert ix.evaluate(ix.parse("δ_ij"), {}, dims={"i": 2, "j": 2}).shape == (2, 2)


def test_program_output_by_name(rng):
    p = ix.parse("h_i = 2 x_i\ng_i = h_i + 1\nL = g_i g_i")
    x = rng.normal(size=3)
    assert np.allclose(ix.evaluate(p, {"x": x}, output="h"), 2 * x)
    assert np.isclose(ix.evaluate(p, {"x": x}), np.sum((2 * x + 1) ** 2))
    with pytest.raises(ix.IndexDiffError, match="defines no 'q'"):
        ix.evaluate(p, {"x": x}, output="q")
