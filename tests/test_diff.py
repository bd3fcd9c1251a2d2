"""Derivatives: the seed thread's results, the Jacobian layout, each function's rule, checked numerically."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.functions import FUNCTIONS

SEED = "x_i A_ij x_j"


def test_seed_gradient_hessian_and_matrix_derivative(rng):
    e = ix.parse(SEED)
    A, x = rng.normal(size=(4, 4)), rng.normal(size=4)
    g, h, dA = ix.diff(e, "x"), ix.diff(e, "x", "x"), ix.diff(e, "A")
    assert g == ix.parse("A_kj x_j + A_ik x_i")  # the thread's form
    assert dA == ix.parse("x_k x_l")
    assert h == ix.parse("A_kl + A_lk")
    assert (g.free, h.free, dA.free) == (("k",), ("k", "l"), ("k", "l"))
    arrays = {"A": A, "x": x}
    assert np.allclose(ix.evaluate(g, arrays), (A + A.T) @ x)
    assert np.allclose(ix.evaluate(h, arrays), A + A.T)
    assert np.allclose(ix.evaluate(dA, arrays), np.outer(x, x))


def test_user_named_indices():
    e = ix.parse(SEED)
    assert ix.diff(e, "x_q").free == ("q",)
    assert ix.diff(e, "A_{r,c}").free == ("r", "c")
    assert str(ix.diff(e, "A_{r,c}")) == "f_rc = x_c x_r"  # (r, c) is not alphabetical: a left-hand side


def test_fresh_indices_skip_used_ones():
    e = ix.parse("k_i A_ik")  # k is both a tensor's name and the output index
    assert e.free == ("k",)
    assert ix.diff(e, "A").free == ("k", "l", "m")


def test_jacobian_layout_outputs_then_inputs(rng):
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    e = ix.parse("W_ij x_j")
    J = ix.evaluate(ix.diff(e, "W"), {"W": W, "x": x})
    assert J.shape == (3, 3, 4)  # like jax.jacobian: output axes first
    expected = np.einsum("ik,l->ikl", np.eye(3), x)
    assert np.allclose(J, expected)


def test_gradient_of_a_scalar_has_the_variables_shape(rng):
    e = ix.parse("L = sum_i((A_ij x_j - b_i)^2)")
    A, x, b = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)
    g = ix.evaluate(ix.diff(e, "x"), {"A": A, "x": x, "b": b})
    assert g.shape == x.shape
    assert np.allclose(g, 2 * A.T @ (A @ x - b))


def test_third_derivative_and_mixed(rng):
    e = ix.parse("sum_i(x_i^3 y_i)")
    d3 = ix.diff(e, "x", "x", "x")
    assert d3.free == ("k", "l", "m")
    x, y = rng.normal(size=3), rng.normal(size=3)
    T = ix.evaluate(d3, {"x": x, "y": y})
    assert np.allclose(T, 6 * np.einsum("i,ik,il,im->klm", y, np.eye(3), np.eye(3), np.eye(3)))
    assert ix.check(e, "x", "y", "x").ok


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_rule_first_and_second_derivative(name):
    e = ix.parse(f"sum_i({name}(x_i + 0.1 y_i) z_i)")
    report = ix.check(e, "x", "x", arrays=None, dims={"i": 5})
    assert report.ok, str(report)


def test_powers_quotients_and_constants():
    for text in ["x_i^3", "x_i^-2", "x_i^0.5", "x_i^(1/3)", "u_i / x_i", "1 / (1 + x_i x_i)", "3 x_i - 2"]:
        assert ix.check(ix.parse(text), "x", "x").ok, text


def test_relu_derivative_is_step_and_abs_is_sign():
    assert str(ix.diff(ix.parse("relu(x)"), "x")) == "step(x)"
    assert str(ix.diff(ix.parse("abs(x)"), "x")) == "sign(x)"
    assert str(ix.diff(ix.parse("step(x) + sign(x)"), "x")) == "0"


def test_derivative_of_a_delta_and_a_constant_is_zero():
    e = ix.parse("δ_ij x_j + 1")
    assert str(ix.diff(e, "x", "x")) == "f_ikl = 0"


def test_variable_absent_after_differentiation_still_differentiates_to_zero(rng):
    e = ix.parse("b_i x_i")
    h = ix.diff(e, "x", "x")
    assert h.free == ("k", "l")
    b, x = rng.normal(size=3), rng.normal(size=3)
    assert np.array_equal(ix.evaluate(h, {"b": b, "x": x}), np.zeros((3, 3)))


def test_broadcast_derivative_keeps_the_batch_axis(rng):
    e = ix.parse("z_bi = W_ij x_bj + c_i")
    d = ix.diff(e, "c")
    assert d.free == ("b", "i", "k")
    W, x, c = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=3)
    J = ix.evaluate(d, {"W": W, "x": x, "c": c})
    assert np.allclose(J, np.broadcast_to(np.eye(3), (5, 3, 3)))
    assert ix.parse(str(d)) == d


def test_diff_of_a_program_differentiates_its_last_statement(rng):
    p = ix.parse("h_bi = tanh(W_ij x_bj)\nL = sum_bi(h_bi^2)")
    W, x = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    g = ix.evaluate(ix.diff(p, "W"), {"W": W, "x": x})
    h = np.tanh(x @ W.T)
    assert np.allclose(g, 2 * ((h * (1 - h**2)).T @ x))


def test_sum_of_constant_counts_its_terms(rng):
    e = ix.parse("sum_j(A_ij - a)")
    d = ix.diff(e, "a")
    A = rng.normal(size=(3, 7))
    assert np.allclose(ix.evaluate(d, {"A": A, "a": np.float64(1.0)}), -7.0 * np.ones(3))


def test_errors_raised_while_simplifying_quote_the_expression() -> None:
    for call in (lambda e: ix.diff(e, "x"), ix.compile):
        with pytest.raises(ix.IndexDiffError) as info:
            call(ix.parse("x / (a - a)"))
        assert "divides by zero" in str(info.value) and "x / (a - a)" in str(info.value)
    with pytest.raises(ix.IndexDiffError, match=r"out of range(.|\n)*1e300 x\^3"):
        ix.diff(ix.parse("1e300 x^3"), "x")
