"""A mean over an index that a delta pins contracts the delta (identities._mean_of_terms): the gradient of a batch
mean such as ``mean_b(logsumexp_c(z_bc) - t_bc z_bc)`` is ``(softmax_c(z_bc) - t_bc) / n_b``, never a mean over
``δ_bi`` times the rest, which evaluates as a B×C×B array. Checked on every route against numpy and central
differences, and by its cost and the memory its compiled plan allocates."""

from __future__ import annotations

import re
import tracemalloc
import types

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.cli import main

LOSS = "z_bc = W_cj x_bj\nL = mean_b(logsumexp_c(z_bc) - t_bc z_bc)"
EXPR = "mean_b(logsumexp_c(W_cj x_bj) - t_bc W_cj x_bj)"
# An operator whose argument multiplies a two-index delta with something: the pattern the rule removes. (A mean of
# the delta alone, 1/n where no tensor gives n, is no larger than the delta.)
OP_OF_DELTA = re.compile(r"(mean|max|min|softmax|logsumexp|ismax|ismin)_[a-z]+\((?!δ_[a-z]{2}\))[^()]*δ_[a-z]{2}")


def _data(b: int, c: int, j: int, dtype: type = np.float64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.zeros((b, c))
    t[np.arange(b), rng.integers(0, c, b)] = 1.0  # one-hot targets
    arrays = {"W": rng.normal(size=(c, j)), "x": rng.normal(size=(b, j)), "t": t}
    return {k: v.astype(dtype) for k, v in arrays.items()}


def _by_hand(W: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """∂/∂W of the mean cross-entropy: ((softmax(x Wᵀ) - t) / B)ᵀ x, in float64."""
    W, x, t = (a.astype(np.float64) for a in (W, x, t))
    z = x @ W.T
    s = np.exp(z - z.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    return ((s - t) / len(x)).T @ x


def _gradient() -> ix.Program:
    return ix.grad(ix.parse(LOSS), "L", wrt=["W"])


def test_the_printed_gradient_has_no_mean_over_a_delta() -> None:
    text = str(_gradient())
    assert "mean_i(δ_bi" not in text and not OP_OF_DELTA.search(text)
    assert "δ" not in text  # the delta contracted away entirely
    assert ix.parse(text) == _gradient()  # prints readably and parses back to the same program


def test_the_cli_prints_the_contracted_gradient(tmp_path, capsys) -> None:
    path = tmp_path / "meanb.idx"
    path.write_text(LOSS + "\n")
    assert main(["-f", str(path), "--wrt", "W"]) == 0
    out = capsys.readouterr().out
    (dz,) = [line for line in out.splitlines() if line.startswith("dz_bc")]
    assert "δ" not in dz and "mean" not in dz and "softmax_c(z_bc)" in dz


def test_the_cost_has_no_b_by_c_by_b_intermediate() -> None:
    b, c, j = 3000, 10, 50
    cost = ix.cost(_gradient(), {"b": b, "c": c, "j": j})
    # before: mean_i(δ_bi softmax_c(z_ic) - t_ic δ_bi), 2 B·C·B = 1.8e8 flops over a B×C×B argument
    assert cost.largest_intermediate <= 3 * b * c * j
    assert cost.flops <= 6 * b * c * j
    assert cost.flops < b * c * b


def test_the_compiled_gradient_allocates_no_b_by_c_by_b_array() -> None:
    b, c, j = 3000, 10, 50
    arrays = _data(b, c, j, np.float32)
    compiled = ix.compile(_gradient())
    tracemalloc.start()
    try:
        loss, dW = compiled(**arrays)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # B×C×B float32 is 360 MB, even B×B (an identity for mean_i(δ_bi)) is 36 MB; the inputs are 0.7 MB
    assert peak < 4 * b * c * j
    assert dW.dtype == np.float32
    np.testing.assert_allclose(dW, _by_hand(**arrays), rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_route_matches_numpy_by_hand(dtype: type) -> None:
    arrays = _data(7, 4, 5, dtype, seed=1)
    expected = _by_hand(**arrays)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-4, "atol": 1e-6}
    gradient = _gradient()
    got = {
        "evaluate": ix.evaluate(gradient, arrays, output="dW"),
        "compile": ix.compile(gradient)(**arrays)[1],
        "print -> parse": ix.evaluate(ix.parse(str(gradient)), arrays, output="dW"),
    }
    module = types.ModuleType("generated")
    exec(ix.codegen(ix.parse(LOSS), "W", format="python"), module.__dict__)  # noqa: S102 - generated code
    got["module"] = module.gradients(**arrays)[1]
    for route, value in got.items():
        assert np.asarray(value).dtype == dtype, route
        np.testing.assert_allclose(value, expected, **tol, err_msg=route)


def test_the_expression_form_matches_numpy_and_has_no_mean_over_a_delta() -> None:
    e = ix.parse(EXPR)
    d = ix.diff(e, "W")
    assert not OP_OF_DELTA.search(str(d))
    arrays = _data(6, 3, 4, seed=2)
    # d's free indices are W's, sorted (c, j): W's own layout
    value = ix.evaluate(d, arrays)
    np.testing.assert_allclose(value, _by_hand(**arrays), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ix.compile(d)(**arrays), value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ix.evaluate(ix.parse(str(d)), arrays), value, rtol=1e-12, atol=1e-14)
    assert ix.check(e, "W").ok


@pytest.mark.parametrize(
    "loss",
    [
        "mean_bc(t_bc z_bc)",  # two pinned indices: 1/(n_b n_c)
        "mean_b(logsumexp_c(z_bc) - t_bc z_bc) + mean_bc(z_bc^2)",
        "mean_b(max_c(z_bc) + t_bc z_bc)",
        "mean_b(sum_c(z_bc) + 2)",  # a term constant along b
        "mean_b(softmax_c(z_bc) t_bc)",
        "max_b(logsumexp_c(z_bc) - t_bc z_bc)",
        "min_b(logsumexp_c(z_bc) - t_bc z_bc)",
        "logsumexp_b(logsumexp_c(z_bc) - t_bc z_bc)",
        "sum_b(softmax_b(logsumexp_c(z_bc) - t_bc z_bc) r_b)",
    ],
)
def test_reductions_over_the_batch_contract_and_match_central_differences(loss: str) -> None:
    p = ix.parse(f"z_bc = W_cj x_bj\nL = {loss}")
    gradient = ix.grad(p, "L", wrt=["W"])
    assert not OP_OF_DELTA.search(str(gradient))
    assert ix.check(p, "W").ok
    assert ix.check(ix.parse(f"L = {loss.replace('z_bc', '(W_cj x_bj)')}"), "W").ok


@pytest.mark.parametrize(
    ("text", "wrt"),
    [
        ("mean_j(x_ij)", "x"),  # no tensor left to give n_j: mean_j(δ_jl) stays
        ("mean_j(x_ij^2 + a_i)", "x"),
        ("mean_ij(A_ij x_j)", "x"),
        ("mean_i(x_i) mean_i(x_i^3)", "x"),
        ("mean_j(x_j) y_i", "x"),
    ],
)
def test_means_of_vectors_and_matrices_match_central_differences(text: str, wrt: str) -> None:
    e = ix.parse(text)
    assert ix.check(e, wrt).ok
    assert ix.check(e, wrt, dims={"i": 1, "j": 1}).ok  # an index of length 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's mean of an empty batch, and 1/0 beside it
def test_an_empty_batch_gives_a_nan_loss_and_a_zero_gradient_on_every_route() -> None:
    arrays = _data(0, 3, 4)
    gradient = _gradient()
    loss, dW = ix.compile(gradient)(**arrays)
    assert np.isnan(loss)  # np.mean of nothing
    for value in (dW, ix.evaluate(gradient, arrays, output="dW")):
        np.testing.assert_array_equal(value, np.zeros((3, 4)))
