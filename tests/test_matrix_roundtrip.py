"""Round trip through both notations: matrix notation -> ix.parse_matrix -> ix.diff -> matrix form (to_matrix) ->
ix.parse_matrix again, which must evaluate to the index-notation derivative at random data; the derivative itself
is checked against central differences of the value. The corpus: the Matrix Cookbook's linear, quadratic, trace,
norm, determinant and inverse identities, least squares, ridge, logistic regression, softmax cross-entropy and
MLP layers. Derivatives whose matrix form falls back to index notation (listed by ``MatrixForm.fallback``) skip
the second parse; how many round-trip fully is counted and asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_routes import draw_wrt, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from strategies import case, rich_case

import indexdiff as ix
from indexdiff.data import random_arrays, sizes_for
from indexdiff.matrixform import to_matrix
from indexdiff.names import all_indices

N = 3

#: (matrix notation, variables to differentiate by: a name, or "x,x" for a second derivative)
CORPUS = [
    # linear (Cookbook 2.4.1)
    ("v' x", ["x", "v"]),
    ("x' v", ["x"]),
    ("A x", ["x", "A"]),
    ("x' A", ["x"]),
    ("x' A y", ["x", "y", "A"]),
    ("x' Aᵀ y", ["A"]),
    ("tr(A)", ["A"]),
    ("sum(A x)", ["x", "A"]),
    ("1' A 1", ["A"]),
    ("sum(diag(A))", ["A"]),
    # quadratic (2.4.2)
    ("x' A x", ["x", "A", "x,x"]),
    ("x' x", ["x", "x,x"]),
    ("(A x + v)' C (D x + w)", ["x"]),
    ("(x - s)' W (x - s)", ["x", "s", "W"]),
    ("norm2(A x - v)^2", ["x", "A", "v"]),
    ("(A x - v)' W (A x - v)", ["x", "W"]),
    ("norm2(B x)^2", ["B"]),
    ("v' Xᵀ X v", ["X", "v"]),
    ("x' A x + v' x + c", ["x", "c"]),
    ("x' A' A x", ["A"]),
    ("x' diag(v) x", ["v", "x"]),
    ("x' (A ∘ B) x", ["A"]),
    # trace (2.5)
    ("tr(A B)", ["A"]),
    ("tr(A' B)", ["A"]),
    ("tr(A B C)", ["B"]),
    ("tr(A' X B)", ["X"]),
    ("tr(X' X)", ["X"]),
    ("tr(X A X')", ["X"]),
    ("tr(X' A X)", ["X"]),
    ("tr(A X B X')", ["X"]),
    ("tr(X^2)", ["X"]),
    ("tr(X⁻¹ A)", ["X"]),
    ("tr(x x' A)", ["x"]),
    ("tr(X⁻¹)", ["X"]),
    # norms (2.6)
    ("norm2(x)", ["x"]),
    ("‖x - v‖₂", ["x"]),
    ("norm2(X)^2", ["X"]),
    ("sum(A.^2)", ["A"]),
    # determinants and inverses (2.1, 2.2)
    ("det(X)", ["X"]),
    ("logdet(X)", ["X"]),
    ("logdet(X' X)", ["X"]),
    ("det(A X B)", ["X"]),
    ("x' X⁻¹ x", ["X", "x"]),
    ("v' X⁻¹ w", ["X"]),
    ("inv(X) v", ["v"]),
    ("X⁻¹ v", ["X"]),
    ("logdet(S) + x' S⁻¹ x", ["S", "x"]),
    # least squares and ridge
    ("(1/2) norm2(X w - y)^2", ["w", "w,w", "X"]),
    ("norm2(X w - y)^2 + c norm2(w)^2", ["w", "c"]),
    ("(X' X + c eye)⁻¹ X' y", ["y"]),
    # logistic regression
    ("sum(log(1 + exp(-y ∘ (X w))))", ["w", "w,w"]),
    ("sum(softplus(X w)) - y' X w", ["w"]),
    ("-y' log(sigmoid(X w)) - (1 - y)' log(1 - sigmoid(X w))", ["w"]),
    ("sum(exp(X w))", ["w"]),
    # softmax cross-entropy
    ("-t' log(softmax(z))", ["z"]),
    ("logsumexp(z) - t' z", ["z", "z,z"]),
    ("logsumexp(W x) - t' W x", ["W", "x"]),
    ("sum(logsumexp(Z)) - sum(T ∘ Z)", ["Z"]),
    ("softmax(z)", ["z"]),
    # MLP layers
    ("sigmoid(W x + v)", ["x", "v", "W"]),
    ("relu(W x)", ["x"]),
    ("norm2(sigmoid(W x) - t)^2", ["W"]),
    ("sum(tanh(X W))", ["W"]),
    ("norm2(W2 tanh(W1 x) - t)^2", ["W1", "W2"]),
    ("t' log(softmax(W2 relu(W1 x)))", ["W2"]),
    ("sum(W x ∘ v)", ["W"]),
    # element-wise and scalar odds and ends
    ("v' (x ∘ w)", ["x"]),
    ("sum(x ./ z)", ["z"]),
    ("exp(c) x' x", ["c"]),
    ("c^2 + c x' x", ["c", "c,c"]),
]


def _data(e: ix.Expr, seed: int) -> dict[str, np.ndarray]:
    """Random arrays: matrices near the identity (invertible, positive determinant), positive vectors/scalars."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, rank in sorted(e.variables.items()):
        if rank == 2:
            out[name] = np.eye(N) + 0.25 * rng.uniform(-1, 1, (N, N))
        else:
            out[name] = rng.uniform(0.5, 1.5, (N,) * rank)
    return out


def _value(e: ix.Expr, arrays: dict[str, np.ndarray]) -> np.ndarray:
    dims = {i: N for i in all_indices(e.node) | set(e.free)}
    return np.asarray(ix.evaluate(e, arrays, dims=dims))


def _directional(e: ix.Expr, wrt: str, arrays: dict[str, np.ndarray], direction: np.ndarray) -> np.ndarray:
    """The derivative of e by wrt along ``direction``, by central differences (two evaluations)."""
    h = 1e-6
    plus = _value(e, {**arrays, wrt: arrays[wrt] + h * direction})
    minus = _value(e, {**arrays, wrt: arrays[wrt] - h * direction})
    return (plus - minus) / (2 * h)


def _cases() -> list[tuple[str, str]]:
    return [(text, wrt) for text, wrts in CORPUS for wrt in wrts]


ROUND_TRIPS: dict[tuple[str, str], bool] = {}


@pytest.mark.parametrize(("text", "wrt"), _cases(), ids=[f"{t} d/d{w}" for t, w in _cases()])
def test_matrix_form_of_the_derivative_parses_back_to_the_same_values(text, wrt):
    e = ix.parse_matrix(text)
    chain = wrt.split(",")
    d = ix.diff(e, *chain)
    arrays = _data(e, seed=len(text))
    expected = _value(d, arrays)
    # the derivative itself, against central differences of the value (or of the first derivative) along a
    # random direction
    before = ix.diff(e, *chain[:-1]) if len(chain) > 1 else e
    direction = np.random.default_rng(1).uniform(-1, 1, np.shape(arrays[chain[-1]]))
    along = np.tensordot(expected, direction, axes=direction.ndim)
    np.testing.assert_allclose(along, _directional(before, chain[-1], arrays, direction), rtol=1e-5, atol=1e-7)
    form = to_matrix(d)
    ROUND_TRIPS[(text, wrt)] = not form.fallback
    if form.fallback:
        assert "[index:" in form.text  # the fallback is visible, never silent
        return
    back = ix.parse_matrix(form.text, shapes=d.variables)
    assert back.free == d.free or len(back.free) == len(d.free)
    got = _value(back, arrays)
    assert got.shape == expected.shape, f"{form.text!r}: shape {got.shape} != {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=form.text)


def test_the_corpus_is_large_and_most_of_it_round_trips_fully():
    assert len(CORPUS) >= 60
    for text, wrt in _cases():
        if (text, wrt) not in ROUND_TRIPS:  # run alone: compute the forms here
            ROUND_TRIPS[(text, wrt)] = not to_matrix(ix.diff(ix.parse_matrix(text), *wrt.split(","))).fallback
    full = sum(ROUND_TRIPS[c] for c in _cases())
    fallback = sorted(f"{t} d/d{w}" for (t, w), ok in ROUND_TRIPS.items() if not ok)
    # derivatives of rank 3 (a vector by a matrix, A x by A) have no matrix form: those fall back, nothing else
    assert fallback == sorted(["A x d/dA", "X⁻¹ v d/dX", "sigmoid(W x + v) d/dW"]), fallback
    assert full == len(_cases()) - 3


@fuzz_settings(25, 2000)
@given(st.data())
def test_random_derivatives_round_trip_through_matrix_notation(data: st.DataObject) -> None:
    """Random index expressions (tests/strategies.py) and their first and second derivatives: the matrix form,
    parsed back by parse_matrix with the derivative's variables as shapes, evaluates to the index derivative."""
    text = data.draw(rich_case() if data.draw(st.booleans()) else case())
    e = ix.parse(text)
    if not isinstance(e, ix.Expr):
        return
    wrt = draw_wrt(data, e.variables)
    chain = wrt[: data.draw(st.integers(0, len(wrt)))]
    sizes = {i: 2 + n % 2 for i, n in sizes_for(e).items()}
    arrays = random_arrays(e, sizes)
    try:
        d = ix.diff(e, *chain)
        want = np.asarray(ix.evaluate(d, arrays))
    except ix.IndexDiffError:  # a length only dims knows, or a value outside a function's domain
        return
    if not np.all(np.isfinite(want)) or np.abs(want).max(initial=0) > 1e8:
        return
    form = to_matrix(d)
    if form.fallback or (form.text == "0" and d.free):  # a zero tensor printed as the number 0 has no shape
        return
    back = ix.parse_matrix(form.text, shapes=d.variables)
    assert len(back.free) == len(d.free), form.text
    dims = dict(zip(back.free, want.shape))  # a ones vector or eye alone takes its length from here
    got = np.asarray(ix.evaluate(back, arrays, dims=dims))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=f"{form.text}\n{back}")


def test_a_backward_pass_round_trips_statement_by_statement():
    """The MLP's gradient program in matrix notation (one `name = ...` line per statement): each line parsed back
    with its statement's variables as shapes evaluates to the statement (intermediates from the program)."""
    p = ix.parse(
        "z1_bi = W1_ij x_bj + b1_i; h1_bi = relu(z1_bi); z2_bi = W2_ij h1_bj + b2_i; "
        "L = sum_bi(log(1 + exp(z2_bi)) - y_bi z2_bi)"
    )
    g = ix.grad(p, None, ["W1", "b1", "W2", "b2"])
    rng = np.random.default_rng(2)
    arrays = {"x": rng.normal(size=(5, 3)), "W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4)}
    arrays |= {"W2": rng.normal(size=(2, 4)), "b2": rng.normal(size=2), "y": rng.uniform(0, 1, (5, 2))}
    values = {**arrays, **{s.name: ix.evaluate(g, arrays, output=s.name) for s in g.statements}}
    lines = to_matrix(g).text.splitlines()
    assert len(lines) == len(g.statements) and not to_matrix(g).fallback
    for s, line in zip(g.statements, lines):
        back = ix.parse_matrix(line, shapes=s.variables)
        assert back.name == s.name
        np.testing.assert_allclose(ix.evaluate(back, values), values[s.name], rtol=1e-10, err_msg=line)
    assert "dW1 = dz1ᵀ x" in lines
