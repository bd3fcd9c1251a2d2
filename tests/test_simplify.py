"""Simplification rules: each named rule, on derivatives and on hand-built nodes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import indexdiff as ix
from indexdiff.expr import Add, Delta, Func, Mul, Number, Pow, Sum, Tensor
from indexdiff.simplify import simplify


def T(name: str, *idx: str) -> Tensor:
    return Tensor(name, idx)


def test_delta_contraction():
    node = Sum(("j",), Mul((T("A", "i", "j"), Delta(("j", "k")))))
    assert simplify(node) == T("A", "i", "k")


def test_delta_with_both_indices_free_stays():
    assert simplify(Mul((Delta(("i", "k")), T("x", "i")))) == Mul((T("x", "i"), Delta(("i", "k"))))


def test_delta_of_equal_indices_and_ones():
    assert simplify(Sum(("i",), Mul((T("x", "i"), Delta(("i", "i")))))) == Sum(("i",), T("x", "i"))


def test_zeros_and_ones_removed():
    x = T("x", "i")
    assert simplify(Mul((Number(Fraction(0)), x))) == Number(Fraction(0))
    assert simplify(Add((x, Number(Fraction(0))))) == x
    assert simplify(Mul((Number(Fraction(1)), x))) == x
    assert simplify(Pow(x, Fraction(1))) == x


def test_exact_constant_folding():
    assert simplify(Add((Number(Fraction(1, 3)), Number(Fraction(1, 6))))) == Number(Fraction(1, 2))
    assert simplify(Pow(Number(Fraction(4, 9)), Fraction(1, 2))) == Number(Fraction(2, 3))
    assert simplify(Pow(Number(Fraction(2)), Fraction(1, 2))) == Pow(Number(Fraction(2)), Fraction(1, 2))
    assert simplify(Func("exp", Number(Fraction(0)))) == Number(Fraction(1))


def test_like_terms_merge_up_to_renaming_of_summed_indices():
    a = Sum(("i",), Mul((T("x", "i"), T("A", "i", "k"))))
    b = Sum(("j",), Mul((T("A", "j", "k"), T("x", "j"))))
    merged = simplify(Add((a, b)))
    assert ix.Expr(merged, ("k",)) == ix.parse("2 x_i A_ik")


def test_like_terms_cancel():
    assert str(ix.diff(ix.parse("x_i y_i - y_j x_j"), "x")) == "f_k = 0"  # the zero vector keeps its index


def test_powers_combine():
    x = T("x", "i")
    assert simplify(Mul((x, x, x))) == Pow(x, Fraction(3))
    assert simplify(Mul((x, Pow(x, Fraction(-1)), T("y", "i")))) == T("y", "i")


def test_sign_normalization_and_distribution_of_numbers():
    node = Mul((Number(Fraction(-1)), Add((T("a"), Mul((Number(Fraction(-1)), T("b")))))))
    assert ix.Expr(simplify(node), ()) == ix.parse("b - a")
    assert str(ix.Expr(simplify(node), ())) == "b - a"


def test_stability_rewrites():
    e = ix.diff(ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))"), "w")
    assert "sigmoid" in str(e) and "exp" not in str(e)
    assert str(ix.diff(ix.parse("log(exp(x))"), "x")) == "1"


def test_simplify_is_idempotent_on_derivatives():
    for text, wrt in [("x_i A_ij x_j", "x"), ("sigmoid(W_ij x_j + b_i)", "W"), ("sum_i((A_ij x_j - b_i)^2)", "x")]:
        d = ix.diff(ix.parse(text), wrt)
        assert simplify(d.node, frozenset(d.free)) == d.node


def test_delta_to_the_zero_is_one_everywhere_not_a_delta(rng):
    # δ_ij^0 is 1 for every i, j (0^0 = 1): a size witness like x_i^0, never contracted or merged with δ_ij.
    A = rng.normal(size=(3, 4))
    e = ix.parse("A_jl δ_ji^0")  # Σ_j A_jl, broadcast along i (i has j's length)
    expected = np.broadcast_to(A.sum(axis=0), (3, 4))
    assert np.allclose(ix.evaluate(e, {"A": A}), expected)
    assert np.allclose(ix.compile(e)(A=A), expected)
    assert e != ix.parse("A_il")
    dij, zero = Delta(("i", "j")), Fraction(0)
    assert simplify(Mul((dij, Pow(dij, zero)))) == dij  # δ · 1 = δ
    assert simplify(Mul((Pow(dij, zero), T("x", "i"), T("y", "j")))) == Mul((T("x", "i"), T("y", "j")))
    assert simplify(Pow(dij, zero)) == Pow(dij, zero)


def test_derivative_of_a_delta_to_the_zero_keeps_it_a_witness():
    g = ix.diff(ix.parse("a δ_ij^0"), "a")
    assert str(g) == "δ_ij^0"
    assert np.array_equal(ix.evaluate(g, {"a": np.array(2.0)}, dims={"i": 3}), np.ones((3, 3)))


def test_products_over_small_sums_are_expanded_when_that_is_shorter():
    # The logistic loss's gradient: t (1 - σ) - σ (1 - t) reads as t - σ once expanded and merged.
    e = ix.parse("sum_i(t_i log(sigmoid(u_i)) + (1 - t_i) log(1 - sigmoid(u_i)))")
    g = ix.diff(e, "u")
    assert str(g) == "t_k - sigmoid(u_k)"
    u, t = np.array([-3.0, 0.2, 4.0]), np.array([0.0, 1.0, 1.0])
    np.testing.assert_allclose(ix.evaluate(g, {"u": u, "t": t}), t - 1 / (1 + np.exp(-u)))
    # Nothing is gained by expanding a (b + c) + d (e + f): it stays factored.
    assert str(ix.parse("a_i (b_i + c_i) + d_i (e_i + f_i)")) == "a_i (b_i + c_i) + d_i (e_i + f_i)"
    assert str(ix.diff(ix.parse("sum_i(a_i (b_i + c_i) x_i + d_i (e_i + f_i) x_i)"), "x")) == (
        "g_k = a_k (b_k + c_k) + d_k (e_k + f_k)"  # f is a tensor of the expression: the result is named g
    )


def test_equal_sums_cancel_up_to_the_names_of_their_indices():
    # Σ_i S_i T_ij / Σ_k S_k T_kj is 1 along j: its derivatives are zero.
    e = ix.parse("sum_j((S_i T_ij) / (S_k T_kj))")
    assert str(ix.diff(e, "S")) == "f_l = 0"
    assert str(ix.diff(e, "T")) == "f_lm = 0"
    g = ix.diff(ix.parse("(x_i x_i) / (x_j x_j)"), "x")
    assert str(g) == "f_k = 0"
