"""The summation rules (README, "Summation rules"), each checked numerically against numpy.einsum."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix


def ev(text: str, **arrays: np.ndarray) -> np.ndarray:
    return ix.evaluate(ix.parse(text), arrays)


def test_rule1_einstein_sums_an_index_in_two_factors(rng):
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    e = ix.parse("x_i A_ij x_j")
    assert e.free == ()
    assert np.isclose(ev("x_i A_ij x_j", x=x, A=A), x @ A @ x)


def test_rule1_repeated_index_in_one_tensor_is_the_trace(rng):
    A = rng.normal(size=(4, 4))
    assert ix.parse("A_ii").free == ()
    assert np.isclose(ev("A_ii", A=A), np.trace(A))


def test_rule1_summation_happens_at_its_own_product(rng):
    x, y, z = rng.normal(size=3), rng.normal(size=3), rng.normal(size=5)
    # (x_i y_i) is a scalar; the outer product sees i only once more, in z_i
    e = ix.parse("(x_i y_i) z_i")
    assert e.free == ("i",)
    assert np.allclose(ix.evaluate(e, {"x": x, "y": y, "z": z}), (x @ y) * z)


def test_rule1_star_is_the_same_product_as_juxtaposition(rng):
    A, B = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    assert ix.parse("A_ij * B_jk") == ix.parse("A_ij B_jk")
    assert np.allclose(ev("A_ij * B_jk", A=A, B=B), A @ B)


def test_rule2_terms_keep_their_indices(rng):
    W, x, b = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    assert ix.parse("W_ij x_j + b_i").free == ("i",)
    assert np.allclose(ev("W_ij x_j + b_i", W=W, x=x, b=b), W @ x + b)


def test_rule2_scalar_expansion(rng):
    x = rng.normal(size=3)
    assert np.allclose(ev("x_i + 1", x=x), x + 1)
    assert np.allclose(ev("x_i - x_j x_j", x=x), x - x @ x)


def test_rule2_bias_broadcast_over_a_bound_index(rng):
    W, x, c = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=3)
    e = ix.parse("z_bi = W_ij x_bj + c_i")
    assert e.free == ("b", "i") and e.name == "z"
    assert np.allclose(ix.evaluate(e, {"W": W, "x": x, "c": c}), x @ W.T + c)


def test_rule2_mismatched_terms_need_a_left_hand_side():
    with pytest.raises(ix.IndexDiffError) as err:
        ix.parse("W_ij x_bj + c_i")
    assert "different free indices" in str(err.value)
    assert "{b, i}" in str(err.value) and "{i}" in str(err.value)
    assert "f_bi = W_ij x_bj + c_i" in str(err.value)


def test_rule3_functions_are_element_wise(rng):
    W, x, b = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    e = ix.parse("sigmoid(W_ij x_j + b_i)")
    assert e.free == ("i",)
    assert np.allclose(ix.evaluate(e, {"W": W, "x": x, "b": b}), 1 / (1 + np.exp(-(W @ x + b))))


def test_rule3_nothing_is_summed_across_a_function_boundary(rng):
    x = rng.normal(size=3)
    e = ix.parse("exp(x_i) x_i")  # i in two factors of the outer product: summed there
    assert e.free == ()
    assert np.isclose(ix.evaluate(e, {"x": x}), np.exp(x) @ x)
    inner = ix.parse("exp(x_i x_i)")  # summed inside the argument
    assert np.isclose(ix.evaluate(inner, {"x": x}), np.exp(x @ x))


def test_rule3_powers_and_quotients_are_element_wise(rng):
    u, v = rng.uniform(1, 2, size=4), rng.uniform(1, 2, size=4)
    assert ix.parse("u_i / v_i").free == ("i",)
    assert np.allclose(ev("u_i / v_i", u=u, v=v), u / v)
    assert np.allclose(ev("(u_i - v_i)^2", u=u, v=v), (u - v) ** 2)
    assert np.allclose(ev("u_i^-0.5", u=u), u**-0.5)


def test_rule4_left_hand_side_binds_hadamard(rng):
    y, X, w = rng.normal(size=5), rng.normal(size=(5, 3)), rng.normal(size=3)
    e = ix.parse("z_i = y_i X_ij w_j")
    assert e.free == ("i",)
    assert np.allclose(ix.evaluate(e, {"y": y, "X": X, "w": w}), np.einsum("i,ij,j->i", y, X, w))


def test_rule4_sum_binds_its_index(rng):
    x, y, z = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    e = ix.parse("sum_i(x_i y_i z_i)")  # three times, but bound: a Hadamard product, then summed
    assert e.free == ()
    assert np.isclose(ix.evaluate(e, {"x": x, "y": y, "z": z}), np.sum(x * y * z))


def test_rule4_statement_sums_free_indices_missing_on_the_left(rng):
    z, t = rng.normal(size=4), rng.normal(size=4)
    e = ix.parse("L = (z_i - t_i)^2")
    assert e.free == () and e.name == "L"
    assert np.isclose(ix.evaluate(e, {"z": z, "t": t}), np.sum((z - t) ** 2))


def test_rule4_left_hand_side_orders_the_axes(rng):
    A = rng.normal(size=(2, 3))
    e = ix.parse("B_ji = A_ij")
    assert e.free == ("j", "i")
    assert np.allclose(ix.evaluate(e, {"A": A}), A.T)


def test_rule4_diagonal_under_a_left_hand_side(rng):
    A = rng.normal(size=(3, 3))
    assert np.allclose(ix.evaluate(ix.parse("d_i = A_ii"), {"A": A}), np.diag(A))


def test_rule5_bare_output_is_alphabetical_like_numpy_implicit_mode(rng):
    A = rng.normal(size=(2, 3))
    e = ix.parse("A_ji")
    assert e.free == ("i", "j")
    assert np.allclose(ix.evaluate(e, {"A": A}), np.einsum("ji", A))
    B = rng.normal(size=(3, 4))
    assert ix.parse("A_kj B_ja").free == ("a", "k")
    assert np.allclose(ev("A_kj B_ja", A=A, B=B), np.einsum("kj,ja", A, B))


def test_rule6_three_times_in_one_product_is_an_error():
    with pytest.raises(ix.IndexDiffError) as err:
        ix.parse("x_i y_i z_i")
    msg = str(err.value)
    assert "index 'i' occurs 3 times in one product" in msg
    assert "f_i = ..." in msg and "sum_i(...)" in msg


def test_multi_letter_indices_and_braces(rng):
    A, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    e = ix.parse("A_{row,col} x_{col,}")
    assert e.free == ("row",)
    assert np.allclose(ix.evaluate(e, {"A": A, "x": x}), A @ x)
    assert ix.parse("W1_{ij} h_j") == ix.parse("W1_ij h_j")


def test_delta_contracts_and_stays_as_identity(rng):
    x = rng.normal(size=3)
    assert np.allclose(ev("δ_ij x_j", x=x), x)
    assert np.allclose(ev("delta_ij x_j", x=x), x)
    assert np.allclose(ix.evaluate(ix.parse("δ_ij"), {}, dims={"i": 3, "j": 3}), np.eye(3))


def test_numbers_are_exact(rng):
    x = rng.normal(size=3)
    assert ix.parse("0.5 x_i x_i") == ix.parse("1/2 x_i x_i")
    assert np.isclose(ev("1e-3 x_i x_i", x=x), 1e-3 * x @ x)


def test_program_statements_and_semicolons(rng):
    p = ix.parse("h_i = relu(W_ij x_j); L = h_i h_i")
    assert isinstance(p, ix.Program) and p.names == ("h", "L")
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    h = np.maximum(W @ x, 0)
    assert np.isclose(ix.evaluate(p, {"W": W, "x": x}), h @ h)
    assert p.inputs == {"W": 2, "x": 1}
